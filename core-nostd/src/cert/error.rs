//! What certificate generation and parsing can fail with, and the limits
//! they hold to.

use core::fmt;

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
