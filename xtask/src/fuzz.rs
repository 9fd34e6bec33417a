//! `cargo xtask fuzz [TARGET] [--seconds N]`: runs the cargo-fuzz targets in
//! `fuzz/` with libFuzzer (nightly), one after another, and reports for each
//! its executions per second, its final coverage (libFuzzer's `cov:` edges
//! and `ft:` features) and the crashes it saved.
//!
//! New inputs go to `fuzz/target/work-corpus/<target>/`; the seed and
//! regression corpus in `fuzz/corpus/<target>/` is read, never written, so
//! the repository only grows by the inputs a person copies there.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::SystemTime;

/// Every target, in the order `cargo xtask fuzz` runs them.
pub const TARGETS: [&str; 8] = [
    "proto",
    "frames",
    "policy",
    "cert",
    "tls_server",
    "tls_session",
    "smbios",
    "ipmi",
];

/// What one run of a target showed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Executions in total.
    pub execs: u64,
    /// Executions per second over the run.
    pub exec_per_sec: u64,
    /// Coverage: edges (`cov:`).
    pub cov: u64,
    /// Coverage: features (`ft:`).
    pub ft: u64,
    /// Crash, leak, timeout and OOM inputs saved during the run.
    pub crashes: Vec<PathBuf>,
}

pub fn main(args: &[String]) -> ExitCode {
    let mut seconds = 60u64;
    let mut targets: Vec<&str> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seconds" => match it.next().and_then(|s| s.parse().ok()) {
                Some(s) if s > 0 => seconds = s,
                _ => {
                    eprintln!("xtask fuzz: --seconds takes a whole number > 0");
                    return ExitCode::from(2);
                }
            },
            t if TARGETS.contains(&t) => targets.push(t),
            other => {
                eprintln!(
                    "xtask fuzz: unknown argument `{other}` (targets: {})",
                    TARGETS.join(", ")
                );
                return ExitCode::from(2);
            }
        }
    }
    if targets.is_empty() {
        targets = TARGETS.to_vec();
    }
    if !cargo_fuzz_installed() {
        println!("==> installing cargo-fuzz");
        let ok = Command::new("cargo")
            .args(["install", "cargo-fuzz"])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("xtask fuzz: `cargo install cargo-fuzz` failed");
            return ExitCode::FAILURE;
        }
    }
    let fuzz_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut failed = false;
    let mut rows = Vec::new();
    for t in targets {
        match run_target(&fuzz_dir, t, seconds) {
            Ok(r) => {
                failed |= !r.crashes.is_empty();
                rows.push((t, r));
            }
            Err(e) => {
                eprintln!("xtask fuzz: {t}: {e}");
                failed = true;
            }
        }
    }
    println!("\n| target | seconds | executions | exec/s | cov | ft | crashes |");
    println!("|---|---|---|---|---|---|---|");
    for (t, r) in &rows {
        println!(
            "| {t} | {seconds} | {} | {} | {} | {} | {} |",
            r.execs,
            r.exec_per_sec,
            r.cov,
            r.ft,
            r.crashes.len()
        );
        for c in &r.crashes {
            println!("    crash: {}", c.display());
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn cargo_fuzz_installed() -> bool {
    Command::new("cargo")
        .args(["+nightly", "fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `target` for `seconds`, its libFuzzer output going to
/// `fuzz/target/logs/<target>.log`, and reads the report from that log.
fn run_target(fuzz_dir: &Path, target: &str, seconds: u64) -> Result<Report, String> {
    let work = fuzz_dir.join("target/work-corpus").join(target);
    let logs = fuzz_dir.join("target/logs");
    for d in [&work, &logs] {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    let log_path = logs.join(format!("{target}.log"));
    let log = std::fs::File::create(&log_path).map_err(|e| e.to_string())?;
    let started = SystemTime::now();
    println!(
        "==> fuzzing {target} for {seconds} s (log: {})",
        log_path.display()
    );
    let status = Command::new("cargo")
        .current_dir(fuzz_dir)
        .args(["+nightly", "fuzz", "run", target])
        .arg(&work)
        .arg(format!("corpus/{target}"))
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg("-print_final_stats=1")
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .status()
        .map_err(|e| format!("cargo fuzz: {e}"))?;
    let text = std::fs::read_to_string(&log_path).map_err(|e| e.to_string())?;
    let mut report = parse_log(&text);
    report.crashes = new_artifacts(&fuzz_dir.join("artifacts").join(target), started);
    if !status.success() && report.crashes.is_empty() {
        return Err(format!(
            "cargo fuzz exited with {status}; see {}",
            log_path.display()
        ));
    }
    Ok(report)
}

/// Reads libFuzzer's status lines (`#N ... cov: C ft: F ... exec/s: E`) and
/// final stats (`stat::number_of_executed_units`, `stat::average_exec_per_sec`).
pub fn parse_log(text: &str) -> Report {
    let mut r = Report::default();
    let field = |line: &str, key: &str| -> Option<u64> {
        let mut words = line.split_whitespace();
        words.find(|w| *w == key)?;
        words.next()?.parse().ok()
    };
    for line in text.lines() {
        if line.starts_with('#') {
            if let (Some(cov), Some(ft)) = (field(line, "cov:"), field(line, "ft:")) {
                r.cov = cov;
                r.ft = ft;
            }
            if let Some(e) = field(line, "exec/s:") {
                r.exec_per_sec = e;
            }
        }
        let stat = |name: &str| {
            line.strip_prefix(name)
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        if let Some(n) = stat("stat::number_of_executed_units:") {
            r.execs = n;
        }
        if let Some(n) = stat("stat::average_exec_per_sec:") {
            r.exec_per_sec = n;
        }
    }
    r
}

/// Files in `dir` modified at or after `since` (the artifacts of this run).
fn new_artifacts(dir: &Path, since: SystemTime) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| {
            e.metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t >= since)
        })
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_log_reads_final_coverage_and_exec_rate() {
        let log = "\
INFO: Seed: 1
#2\tINITED cov: 10 ft: 11 corp: 1/1b exec/s: 0 rss: 30Mb
#4096\tpulse  cov: 120 ft: 300 corp: 20/1Kb lim: 4 exec/s: 2048 rss: 40Mb
#60000\tDONE   cov: 130 ft: 333 corp: 25/2Kb lim: 8 exec/s: 1000 rss: 41Mb
Done 60000 runs in 61 second(s)
stat::number_of_executed_units: 60000
stat::average_exec_per_sec:     983
stat::new_units_added:          24
";
        let r = parse_log(log);
        assert_eq!(
            r,
            Report {
                execs: 60000,
                exec_per_sec: 983,
                cov: 130,
                ft: 333,
                crashes: Vec::new(),
            }
        );
    }
}
