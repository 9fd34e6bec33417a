//! B5: retry delays, 1 s doubling to 60 s, with jitter from a seeded PRNG.

use smoltcp::time::Duration;

/// SplitMix64: a tiny deterministic PRNG for jitter only (never for keys).
/// The caller seeds it, so a simulation is reproducible.
#[derive(Debug, Clone)]
struct Jitter(u64);

impl Jitter {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// The retry schedule: the n-th consecutive failed round waits
/// `min(min * 2^n, max)` minus up to a quarter of it at random, so retries
/// never exceed `max` and agents restarted together spread out.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    step: u8,
    jitter: Jitter,
}

/// Doubling beyond this many steps overflows nothing but is pointless.
const MAX_STEP: u8 = 32;

impl Backoff {
    pub(crate) fn new(seed: u64) -> Self {
        Backoff {
            step: 0,
            jitter: Jitter(seed),
        }
    }

    /// Consecutive delays handed out since the last reset.
    pub(crate) fn step(&self) -> u8 {
        self.step
    }

    /// The un-jittered delay of the next call to [`Backoff::next`].
    pub(crate) fn base(&self, min: Duration, max: Duration) -> Duration {
        let min_us = min.total_micros().max(1);
        let max_us = max.total_micros().max(min_us);
        let micros = min_us.saturating_mul(1u64 << self.step.min(63));
        Duration::from_micros(micros.min(max_us))
    }

    /// The next delay, and one more step of doubling.
    pub(crate) fn next(&mut self, min: Duration, max: Duration) -> Duration {
        let base = self.base(min, max).total_micros();
        let quarter = base / 4;
        let cut = match quarter.checked_add(1) {
            Some(span) => self.jitter.next().checked_rem(span).unwrap_or(0),
            None => 0,
        };
        if self.step < MAX_STEP {
            self.step = self.step.saturating_add(1);
        }
        Duration::from_micros(base.saturating_sub(cut))
    }

    /// Back to `min` (after a good session, a link up, a new configuration).
    pub(crate) fn reset(&mut self) {
        self.step = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_to_sixty_with_jitter_below_the_base() {
        let (min, max) = (Duration::from_secs(1), Duration::from_secs(60));
        let mut b = Backoff::new(7);
        let bases = [1u64, 2, 4, 8, 16, 32, 60, 60, 60];
        for want in bases {
            let base = b.base(min, max);
            assert_eq!(base, Duration::from_secs(want));
            let d = b.next(min, max);
            assert!(
                d <= base && d >= base - base / 4,
                "{d} not in [3/4, 1] of {base}"
            );
        }
        for _ in 0..100 {
            assert!(b.next(min, max) <= max);
        }
        b.reset();
        assert_eq!(b.base(min, max), min);
    }

    #[test]
    fn same_seed_gives_same_delays_and_seeds_differ() {
        let (min, max) = (Duration::from_secs(1), Duration::from_secs(60));
        let run = |seed| {
            let mut b = Backoff::new(seed);
            [(); 8].map(|_| b.next(min, max))
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }
}
