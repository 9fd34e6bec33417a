//! Saturating time arithmetic: smoltcp's `Instant + Duration` and
//! `Duration + Duration` overflow (and panic in debug builds) at the ends of
//! their range, while a deadline that far away simply means "never".

use smoltcp::time::{Duration, Instant};

/// Addition that stops at the largest value instead of overflowing.
pub trait SaturatingAdd {
    /// `self + wait`, or the largest representable value if that overflows.
    fn saturating_add(self, wait: Duration) -> Self;
}

impl SaturatingAdd for Instant {
    fn saturating_add(self, wait: Duration) -> Instant {
        let wait = i64::try_from(wait.total_micros()).unwrap_or(i64::MAX);
        Instant::from_micros(self.total_micros().saturating_add(wait))
    }
}

impl SaturatingAdd for Duration {
    fn saturating_add(self, wait: Duration) -> Duration {
        Duration::from_micros(self.total_micros().saturating_add(wait.total_micros()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instant_plus_duration_saturates_at_the_end_of_time() {
        let now = Instant::from_micros(i64::MAX - 5);
        assert_eq!(
            now.saturating_add(Duration::from_micros(10)),
            Instant::from_micros(i64::MAX)
        );
        assert_eq!(
            Instant::from_secs(1).saturating_add(Duration::from_millis(500)),
            Instant::from_millis(1500)
        );
    }

    #[test]
    fn duration_plus_duration_saturates() {
        let long = Duration::from_micros(u64::MAX - 1);
        assert_eq!(
            long.saturating_add(Duration::from_secs(1)),
            Duration::from_micros(u64::MAX)
        );
        assert_eq!(
            Duration::from_secs(1).saturating_add(Duration::from_secs(2)),
            Duration::from_secs(3)
        );
    }
}
