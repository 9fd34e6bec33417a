//! The Linux [`Clock`]: a monotonic origin taken at start, and wall-clock
//! time from `SystemTime`.
//!
//! Every backend's `wait(deadline)` converts the core's deadline back to a
//! `poll(2)` timeout with the same [`LinuxClock`], so the two never disagree.

use std::time::{Duration, SystemTime};

use bmclink_core::platform::Clock;
use smoltcp::time::Instant;

/// Monotonic time since the moment [`LinuxClock::start`] was called.
#[derive(Debug, Clone, Copy)]
pub struct LinuxClock {
    origin: std::time::Instant,
}

impl LinuxClock {
    /// Takes the origin now (CLOCK_MONOTONIC through `std::time::Instant`).
    pub fn start() -> Self {
        LinuxClock {
            origin: std::time::Instant::now(),
        }
    }

    /// How long from now until `deadline` (zero when it has passed).
    pub fn until(&self, deadline: Instant) -> Duration {
        let now = self.now().total_micros();
        let micros = deadline.total_micros().saturating_sub(now).max(0);
        Duration::from_micros(u64::try_from(micros).unwrap_or(0))
    }
}

impl Clock for LinuxClock {
    fn now(&self) -> Instant {
        let micros = self.origin.elapsed().as_micros();
        Instant::from_micros(i64::try_from(micros).unwrap_or(i64::MAX))
    }

    fn unix_time(&self) -> Option<u64> {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_secs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_time_starts_near_zero_and_never_goes_back() {
        let c = LinuxClock::start();
        let a = c.now();
        let b = c.now();
        assert!(a.total_micros() >= 0);
        assert!(b >= a);
        // The origin is ours: a fresh clock reads far less than an hour.
        assert!(a.total_micros() < 3_600_000_000);
    }

    #[test]
    fn until_is_zero_for_a_past_deadline_and_positive_for_a_future_one() {
        let c = LinuxClock::start();
        assert_eq!(c.until(Instant::from_micros(0)), Duration::ZERO);
        let future = c.now() + smoltcp::time::Duration::from_secs(100);
        let d = c.until(future);
        assert!(d > Duration::from_secs(99) && d <= Duration::from_secs(100));
    }

    #[test]
    fn unix_time_is_after_2024() {
        let t = LinuxClock::start().unix_time().unwrap();
        assert!(t > 1_704_067_200);
    }
}
