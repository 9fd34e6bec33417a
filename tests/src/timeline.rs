//! A readable timeline of a simulation: virtual time, who, what.
//!
//! The simulator, the simulated BMC and the agent's `log` output all write
//! here, so `cargo xtask run` can print one ordered story and tests can assert
//! on it. Lines are kept per thread (each test has its own).

use std::cell::{Cell, RefCell};

use smoltcp::time::Instant;

/// One line of the timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Virtual time.
    pub at: Instant,
    /// Who speaks: `agent`, `bmc`, `wire`, `audit`, `sim`.
    pub who: &'static str,
    /// What happened.
    pub text: String,
}

thread_local! {
    static NOW: Cell<Instant> = const { Cell::new(Instant::ZERO) };
    static LINES: RefCell<Vec<Line>> = const { RefCell::new(Vec::new()) };
    static ECHO: Cell<bool> = const { Cell::new(false) };
}

pub(crate) fn set_now(t: Instant) {
    NOW.with(|n| n.set(t));
}

/// The virtual time of the simulation running on this thread.
pub fn now() -> Instant {
    NOW.with(|n| n.get())
}

/// Prints every line to stdout as it is written (for `cargo xtask run`).
pub fn echo(on: bool) {
    ECHO.with(|e| e.set(on));
}

/// Adds a line at the current virtual time.
pub fn emit(who: &'static str, text: impl Into<String>) {
    let line = Line {
        at: now(),
        who,
        text: text.into(),
    };
    if ECHO.with(|e| e.get()) {
        println!("{}", format_line(&line));
    }
    LINES.with(|l| l.borrow_mut().push(line));
}

/// Takes the lines written so far on this thread.
pub fn take() -> Vec<Line> {
    LINES.with(|l| std::mem::take(&mut *l.borrow_mut()))
}

/// `   12.345678 s  who    text`
pub fn format_line(line: &Line) -> String {
    let us = line.at.total_micros();
    format!(
        "{:>6}.{:06} s  {:<6} {}",
        us / 1_000_000,
        us % 1_000_000,
        line.who,
        line.text
    )
}

/// A `log` backend that writes the core's log lines into the timeline as
/// `agent` lines (install once per process with [`Logger::install`]).
pub struct Logger {
    level: log::LevelFilter,
}

static LOGGER: Logger = Logger {
    level: log::LevelFilter::Debug,
};

impl Logger {
    /// Installs the logger (idempotent) with `level` as the maximum level.
    pub fn install(level: log::LevelFilter) {
        let _ = log::set_logger(&LOGGER);
        log::set_max_level(level);
    }
}

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= self.level && metadata.target().starts_with("bmclink")
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            emit("agent", record.args().to_string());
        }
    }

    fn flush(&self) {}
}
