//! When the client certificate needs attention (T3, B4).

use super::CertView;

/// Days before the end of validity from which renewal is urged (B4).
pub const RENEW_WARNING_DAYS: u64 = 30;

const SECS_PER_DAY: u64 = 86_400;

/// Where a certificate stands at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Expiry {
    /// Valid for more than [`RENEW_WARNING_DAYS`].
    Valid,
    /// Valid, but ends within [`RENEW_WARNING_DAYS`] (`days_left` rounded down).
    Expiring {
        /// Whole days until the end of validity.
        days_left: u64,
    },
    /// Past its end of validity: no connection is attempted (T3).
    Expired {
        /// The end of validity, Unix seconds.
        not_after: u64,
    },
    /// Not valid yet: the wall clock is behind the certificate's start.
    /// Treated as usable (a clock problem is not the identity's fault).
    NotYetValid,
}

impl Expiry {
    /// Classifies `cert` at `now` (Unix seconds).
    pub fn at(cert: &CertView, now: u64) -> Expiry {
        if now > cert.not_after {
            Expiry::Expired {
                not_after: cert.not_after,
            }
        } else if now < cert.not_before {
            Expiry::NotYetValid
        } else {
            let days_left = cert.not_after.saturating_sub(now) / SECS_PER_DAY;
            if days_left < RENEW_WARNING_DAYS {
                Expiry::Expiring { days_left }
            } else {
                Expiry::Valid
            }
        }
    }
}
