//! Certificate fingerprints: what both sides pin (DESIGN T1), in full and
//! in the short form the audit log shows.

use core::fmt;

use sha2::{Digest, Sha256};

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
