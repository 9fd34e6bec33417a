//! DER contents of the object identifiers a certificate of ours uses.

/// ecdsa-with-SHA256, 1.2.840.10045.4.3.2
pub const ECDSA_WITH_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
/// id-ecPublicKey, 1.2.840.10045.2.1
pub const EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// prime256v1 / secp256r1, 1.2.840.10045.3.1.7
pub const PRIME256V1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// id-at-commonName, 2.5.4.3
pub const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
/// id-ce-basicConstraints, 2.5.29.19
pub const BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];
/// id-ce-keyUsage, 2.5.29.15
pub const KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x0f];
/// id-ce-extKeyUsage, 2.5.29.37
pub const EXT_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x25];
/// id-kp-serverAuth, 1.3.6.1.5.5.7.3.1
pub const SERVER_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];
/// id-kp-clientAuth, 1.3.6.1.5.5.7.3.2
pub const CLIENT_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02];
