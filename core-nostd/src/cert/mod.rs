//! P-256 self-signed X.509 v3 certificates: generation into a caller's buffer
//! (no alloc) and parsing of what the core needs.
//!
//! Both ends of the channel authenticate with a self-signed certificate and
//! pin the other's by its SHA-256 [`fingerprint`] (DESIGN T1); there is no CA.
//! The host's identity is a P-256 key ([`identity`]) and a certificate made by
//! [`generate`]: valid exactly ten years from its creation (T2), subject and
//! issuer naming the host, key usage digitalSignature, extended key usage
//! clientAuth (serverAuth too when [`CertParams::server_auth`] is set, so the
//! simulated BMC uses the same generator), CA:false, signed ecdsa-with-SHA256.
//!
//! [`parse`] reads back what the core uses: validity, the P-256 public key,
//! the signed bytes and the signature. It never panics on any input.

mod der;
mod expiry;
mod generate;
pub mod identity;
mod time;
mod view;

#[cfg(test)]
mod tests;

use core::fmt;

use sha2::{Digest, Sha256};

pub use expiry::{Expiry, RENEW_WARNING_DAYS};
pub use generate::{generate, CertParams, VALIDITY_YEARS};
pub use view::{parse, CertView};

/// Largest certificate the core generates, stores or accepts from a BMC.
/// Ours take about 400 bytes with a 64-character common name.
pub const MAX_CERT_LEN: usize = 512;

/// Longest common name accepted (X.520 `ub-common-name`).
pub const MAX_COMMON_NAME_LEN: usize = 64;

/// What went wrong generating or parsing a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CertError {
    /// The output buffer is too small; [`MAX_CERT_LEN`] always suffices.
    BufferTooSmall {
        /// The buffer's length.
        capacity: usize,
    },
    /// The common name is empty or longer than [`MAX_COMMON_NAME_LEN`].
    CommonName {
        /// Its length in bytes.
        len: usize,
    },
    /// The validity period would end after the year 9999.
    NotBefore {
        /// The requested start, Unix seconds.
        unix: u64,
    },
    /// The signature could not be made or encoded.
    Signing,
    /// An internal encoding invariant failed (a bug, reported not panicked).
    Encoding,
    /// The input ends inside the element starting at `offset`.
    Truncated {
        /// Byte offset in the certificate.
        offset: usize,
    },
    /// An element's header is not valid DER.
    Malformed {
        /// Byte offset in the certificate.
        offset: usize,
    },
    /// An element carries the wrong tag.
    UnexpectedTag {
        /// Byte offset in the certificate.
        offset: usize,
        /// The tag X.509 requires there.
        expected: u8,
        /// The tag found.
        found: u8,
    },
    /// Bytes follow the element that should have been the last one.
    TrailingData {
        /// Byte offset in the certificate.
        offset: usize,
    },
    /// Not an X.509 v3 certificate.
    Version,
    /// A time is not a valid DER UTCTime/GeneralizedTime from 1970 on.
    Time {
        /// Byte offset in the certificate.
        offset: usize,
    },
    /// The signature algorithm is not ecdsa-with-SHA256.
    SignatureAlgorithm,
    /// The key is not an uncompressed P-256 point on the curve.
    PublicKey,
    /// The signature does not verify with the certificate's own key.
    Signature,
    /// A stored identity key is not 32 bytes of a valid P-256 scalar.
    IdentityKey {
        /// Its length in bytes.
        len: usize,
    },
}

impl fmt::Display for CertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertError::BufferTooSmall { capacity } => {
                write!(f, "certificate buffer of {capacity} bytes is too small")
            }
            CertError::CommonName { len } => write!(
                f,
                "common name of {len} bytes (must be 1 to {MAX_COMMON_NAME_LEN})"
            ),
            CertError::NotBefore { unix } => {
                write!(f, "validity starting at {unix} ends after the year 9999")
            }
            CertError::Signing => f.write_str("the certificate could not be signed"),
            CertError::Encoding => f.write_str("internal DER encoding error"),
            CertError::Truncated { offset } => write!(f, "truncated DER at byte {offset}"),
            CertError::Malformed { offset } => write!(f, "malformed DER at byte {offset}"),
            CertError::UnexpectedTag {
                offset,
                expected,
                found,
            } => write!(
                f,
                "DER tag {found:#04x} at byte {offset} where {expected:#04x} belongs"
            ),
            CertError::TrailingData { offset } => write!(f, "trailing data at byte {offset}"),
            CertError::Version => f.write_str("not an X.509 v3 certificate"),
            CertError::Time { offset } => write!(f, "invalid time at byte {offset}"),
            CertError::SignatureAlgorithm => {
                f.write_str("signature algorithm is not ECDSA P-256 SHA-256")
            }
            CertError::PublicKey => f.write_str("public key is not a P-256 point"),
            CertError::Signature => f.write_str("self-signature does not verify"),
            CertError::IdentityKey { len } => {
                write!(f, "identity key of {len} bytes is not a P-256 private key")
            }
        }
    }
}

/// The SHA-256 of a certificate's DER: what both sides pin.
pub fn fingerprint(der: &[u8]) -> [u8; 32] {
    Sha256::digest(der).into()
}

/// The first bytes of a fingerprint, for audit texts: `ab12cd34ef56`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ShortFingerprint(pub [u8; 6]);

impl ShortFingerprint {
    /// The first six bytes of `fp`.
    pub fn of(fp: &[u8; 32]) -> Self {
        let mut s = [0u8; 6];
        s.copy_from_slice(&fp[..6]);
        ShortFingerprint(s)
    }
}

impl fmt::Display for ShortFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A whole fingerprint, for audit texts an administrator copies into
/// `bmclink install --bmc-fingerprint`: 64 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Fingerprint(pub [u8; 32]);

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// DER contents of the object identifiers a certificate of ours uses.
pub(crate) mod oid {
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
}
