//! The host's P-256 identity key and its stored form.
//!
//! The key is kept in [`crate::platform::Record::IdentityKey`] as its 32-byte
//! big-endian scalar, nothing else: the record is secret (0600 on disk) and
//! fixed-size, and a value that is not a valid P-256 scalar is an error, never
//! a silently fresh identity (T2: a new identity is made only by `install`).

use p256::ecdsa::SigningKey;
use rand_core::CryptoRngCore;

use super::CertError;

/// Length of the stored identity key.
pub const KEY_LEN: usize = 32;

/// Makes a fresh identity key.
pub fn random(rng: &mut impl CryptoRngCore) -> SigningKey {
    SigningKey::random(rng)
}

/// The key's stored form: the 32-byte big-endian scalar.
pub fn encode(key: &SigningKey) -> [u8; KEY_LEN] {
    key.to_bytes().into()
}

/// Reads a stored key; fails unless `bytes` is 32 bytes of a non-zero scalar
/// below the curve order.
pub fn decode(bytes: &[u8]) -> Result<SigningKey, CertError> {
    if bytes.len() != KEY_LEN {
        return Err(CertError::IdentityKey { len: bytes.len() });
    }
    SigningKey::from_slice(bytes).map_err(|_| CertError::IdentityKey { len: bytes.len() })
}
