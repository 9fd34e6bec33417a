//! `bmclink`: the Linux shim's binary. See `bmclink --help`; exit codes are
//! documented in `bmclink_linux::cli`.

use std::io::Write;

use bmclink_linux::cli::{Cli, Exit};
use bmclink_linux::commands::execute;
use clap::Parser;

/// Log records on stderr, level chosen by `-v`.
struct StderrLog;

impl log::Log for StderrLog {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::max_level()
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            eprintln!(
                "bmclink: {}: {}",
                r.level().as_str().to_lowercase(),
                r.args()
            );
        }
    }
    fn flush(&self) {}
}

fn main() {
    let cli = Cli::parse();
    let level = match cli.verbose {
        0 => log::LevelFilter::Warn,
        1 => log::LevelFilter::Info,
        2 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    };
    if log::set_logger(&StderrLog).is_ok() {
        log::set_max_level(level);
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let code = match execute(&cli, &mut out) {
        Ok(()) => Exit::Ok,
        Err(f) => {
            let _ = out.flush();
            eprintln!("bmclink: {}", f.message);
            f.exit
        }
    };
    let _ = out.flush();
    std::process::exit(code as i32);
}
