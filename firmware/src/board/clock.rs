//! The clock: SysTick on the core clock, interrupting every 10 ms.
//!
//! [`ticks`] is the time since start-up in core-clock ticks: the count of
//! periods kept by the SysTick exception plus the counter's progress
//! within the current period, so it resolves one tick (40 ns at 25 MHz).
//! The period is also how late `Frames::wait` may notice a deadline (a
//! frame wakes it at once, through the MAC's interrupt); 10 ms is far below
//! the agent's shortest timer and keeps wake-ups and QEMU's timer overhead
//! (which makes a 1 ms SysTick lose about 9% against wall time) low. Under QEMU's `-icount shift=0` one instruction is one
//! nanosecond of virtual time, so 1 tick = 40 instructions and differences
//! of [`ticks`] count instructions (QEMU is not cycle-accurate: these are
//! instructions, not cycles of a real Cortex-M4).

use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::{SCB, SYST};
use cortex_m_rt::exception;

use super::CORE_CLOCK_HZ;

/// SysTick exceptions per second.
const PERIODS_PER_SEC: u32 = 100;
/// Core-clock ticks per SysTick period (at most 2^24).
const PERIOD: u32 = CORE_CLOCK_HZ / PERIODS_PER_SEC;

/// Periods since start-up, counted by the SysTick exception.
static PERIODS: AtomicU32 = AtomicU32::new(0);

/// Starts SysTick: core clock, 10 ms period, exception on wrap.
pub fn start(mut syst: SYST) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(PERIOD - 1);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

/// Core-clock ticks since [`start`]. Never goes back: a wrap whose
/// exception has not run yet (interrupts masked, as while logging) is
/// counted from the pending bit.
pub fn ticks() -> u64 {
    loop {
        let before = PERIODS.load(Ordering::Acquire);
        let current = SYST::get_current();
        let wrapped = SCB::is_pendst_pending();
        let after = PERIODS.load(Ordering::Acquire);
        // The exception ran between the two loads: read again.
        if before != after {
            continue;
        }
        // Pending with the counter freshly reloaded: that wrap is not in
        // PERIODS yet. Pending with the counter near zero: the wrap came
        // after the counter was read, so `current` is from before it.
        let missed = u64::from(wrapped && current > PERIOD / 2);
        let within = (PERIOD - 1).saturating_sub(current);
        return (u64::from(before) + missed) * u64::from(PERIOD) + u64::from(within);
    }
}

/// Microseconds since [`start`].
pub fn micros() -> u64 {
    ticks() / u64::from(CORE_CLOCK_HZ / 1_000_000)
}

#[cfg_attr(not(feature = "bench"), allow(dead_code))]
/// Core-clock ticks as instructions under `-icount shift=0` (1 ns each).
pub fn ticks_to_instructions(ticks: u64) -> u64 {
    ticks * (1_000_000_000 / u64::from(CORE_CLOCK_HZ))
}

#[exception]
fn SysTick() {
    PERIODS.fetch_add(1, Ordering::Release);
}

/// Core-clock ticks spent asleep (WFI) since start-up.
static IDLE: critical_section::Mutex<core::cell::Cell<u64>> =
    critical_section::Mutex::new(core::cell::Cell::new(0));

/// Adds a sleep of `ticks` to the idle count.
pub fn add_idle(ticks: u64) {
    critical_section::with(|cs| {
        let idle = IDLE.borrow(cs);
        idle.set(idle.get().saturating_add(ticks));
    });
}

#[cfg_attr(not(feature = "bench"), allow(dead_code))]
/// Core-clock ticks spent awake since start-up: under `-icount`, the
/// instructions executed (÷ 40), whatever the BMC's latency was.
pub fn busy_ticks() -> u64 {
    let idle = critical_section::with(|cs| IDLE.borrow(cs).get());
    ticks().saturating_sub(idle)
}
