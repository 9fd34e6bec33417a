//! REJECT's reason codes.

use core::fmt;

/// Why the BMC refused a session or an enrollment (REJECT `code`).
///
/// An unknown code is not a protocol error: it parses as
/// [`RejectCode::Unknown`] with the number kept, because the refusal itself
/// is what matters and the number goes to the audit log. `Unknown` is only
/// produced for values outside 1..=4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RejectCode {
    /// 1: the BMC requires TLS and the agent came over the plain channel (T6).
    TlsRequired,
    /// 2: the agent's certificate is not bound to this BMC; enroll first.
    NotEnrolled,
    /// 3: the BMC does not speak the agent's protocol version.
    BadVersion,
    /// 4: the enrollment credential was wrong, used or expired.
    BadCredential,
    /// Any other code, kept as sent.
    Unknown(u8),
}

impl From<u8> for RejectCode {
    fn from(value: u8) -> Self {
        match value {
            1 => RejectCode::TlsRequired,
            2 => RejectCode::NotEnrolled,
            3 => RejectCode::BadVersion,
            4 => RejectCode::BadCredential,
            other => RejectCode::Unknown(other),
        }
    }
}

impl From<RejectCode> for u8 {
    fn from(value: RejectCode) -> Self {
        match value {
            RejectCode::TlsRequired => 1,
            RejectCode::NotEnrolled => 2,
            RejectCode::BadVersion => 3,
            RejectCode::BadCredential => 4,
            RejectCode::Unknown(other) => other,
        }
    }
}

impl fmt::Display for RejectCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RejectCode::TlsRequired => f.write_str("tls-required"),
            RejectCode::NotEnrolled => f.write_str("not-enrolled"),
            RejectCode::BadVersion => f.write_str("bad-version"),
            RejectCode::BadCredential => f.write_str("bad-credential"),
            RejectCode::Unknown(code) => write!(f, "unknown code {code}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_and_only_1_to_4_are_named() {
        for b in 0..=255u8 {
            let c = RejectCode::from(b);
            assert_eq!(u8::from(c), b);
            assert_eq!(matches!(c, RejectCode::Unknown(_)), !(1..=4).contains(&b));
        }
        assert_eq!(RejectCode::from(1), RejectCode::TlsRequired);
        assert_eq!(RejectCode::from(4), RejectCode::BadCredential);
    }
}
