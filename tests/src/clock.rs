//! The virtual clock every simulated party shares.

use std::cell::Cell;
use std::rc::Rc;

use smoltcp::time::{Duration, Instant};

/// A clock that moves only when the simulation moves it. Clones share time.
#[derive(Debug, Clone)]
pub struct VirtualClock {
    now: Rc<Cell<Instant>>,
    /// Wall-clock seconds at virtual time zero (for certificate validity).
    epoch_unix: Rc<Cell<u64>>,
}

/// 2026-01-01T00:00:00Z: the default wall-clock time at virtual time zero.
pub const DEFAULT_EPOCH_UNIX: u64 = 1_767_225_600;

impl VirtualClock {
    /// A clock at zero, with the wall clock at [`DEFAULT_EPOCH_UNIX`].
    pub fn new() -> Self {
        VirtualClock {
            now: Rc::new(Cell::new(Instant::ZERO)),
            epoch_unix: Rc::new(Cell::new(DEFAULT_EPOCH_UNIX)),
        }
    }

    /// The current virtual time.
    pub fn now(&self) -> Instant {
        self.now.get()
    }

    /// Moves time forward to `t` (never backwards).
    pub fn advance_to(&self, t: Instant) {
        if t > self.now.get() {
            self.now.set(t);
            crate::timeline::set_now(t);
        }
    }

    /// Moves time forward by `d`.
    pub fn advance(&self, d: Duration) {
        self.advance_to(self.now() + d);
    }

    /// Wall-clock seconds since the Unix epoch at the current virtual time.
    pub fn unix_time(&self) -> u64 {
        let secs = u64::try_from(self.now().total_millis() / 1000).unwrap_or(0);
        self.epoch_unix.get() + secs
    }

    /// Jumps the wall clock by `secs` without moving monotonic time (a
    /// host whose clock is set forward, or ten years passing in a test).
    pub fn jump_wall_clock(&self, secs: u64) {
        self.epoch_unix.set(self.epoch_unix.get() + secs);
    }
}

impl Default for VirtualClock {
    fn default() -> Self {
        Self::new()
    }
}
