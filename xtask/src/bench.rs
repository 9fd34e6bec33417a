//! `cargo xtask bench`: bmclink measured against rustls and OpenSSL, in one
//! run on this machine, as ratios (machines are noisy: compare within a run,
//! not across runs). Re-runs itself as a release build, prints a table and
//! writes BENCHMARKS.md. Nothing here is a pass/fail timing; only the
//! handshake stack budget (16 KiB) fails the command.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bmclink_core::tls::TlsBuffers;
use bmclink_tests::bench_tls::{
    bmclink_handshake, rustls_client, rustls_handshake, server_config, Pki,
};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

mod openssl;
mod throughput;

use self::openssl::openssl_rows;
use self::throughput::{throughput_bmclink_tcp, throughput_rustls};

/// Handshakes timed per client.
pub(crate) const HANDSHAKES: usize = 200;
/// Bytes sent per throughput run.
pub(crate) const BULK: usize = 32 << 20;
/// Application write size in the throughput runs (one channel frame).
pub(crate) const CHUNK: usize = 1024;

/// Runs `f` and returns its result and the CPU seconds (user + system) the
/// whole process spent meanwhile, all threads included.
fn cpu_time<T>(f: impl FnOnce() -> T) -> (T, f64) {
    fn now() -> f64 {
        // SAFETY: getrusage writes one `rusage` into the zeroed struct.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        tv(u.ru_utime) + tv(u.ru_stime)
    }
    let start = now();
    let out = f();
    (out, now() - start)
}

/// A seeded CSPRNG (reproducible runs).
pub(crate) fn seeded(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// One row of the result table.
pub(crate) struct Row {
    what: String,
    bmclink: String,
    reference: String,
    ratio: String,
    goal: &'static str,
}

impl Row {
    fn new(
        what: &str,
        bmclink: String,
        reference: String,
        ratio: String,
        goal: &'static str,
    ) -> Row {
        Row {
            what: what.into(),
            bmclink,
            reference,
            ratio,
            goal,
        }
    }
}

pub fn main(args: &[String]) -> ExitCode {
    if cfg!(debug_assertions) {
        // Measure optimised code only: hand over to a release build.
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["run", "--release", "-q", "-p", "xtask", "--", "bench"])
            .args(args)
            .status();
        return match status {
            Ok(s) if s.success() => ExitCode::SUCCESS,
            _ => ExitCode::FAILURE,
        };
    }
    let started = Instant::now();
    let mut rows = Vec::new();
    let pki = Pki::new(8);
    let server = server_config(&pki);

    println!("== handshake: in-memory, {HANDSHAKES} full mutual TLS 1.3 handshakes per client");
    let (bmc, portable, rus) = handshakes(&pki, &server);
    if args.iter().any(|a| a == "--handshake-only") {
        // For profiling: `perf record target/release/xtask bench --handshake-only`.
        println!("bmclink {bmc:?} (RustCrypto {portable:?}), rustls {rus:?}");
        println!(
            "stack: RustCrypto {:?}, aws-lc-rs {:?}",
            handshake_stack(&pki, &bmclink_core::tls::RUST_CRYPTO),
            handshake_stack(&pki, &bmclink_core::tls::AWS_LC)
        );
        return ExitCode::SUCCESS;
    }
    rows.push(Row::new(
        "full mutual TLS 1.3 handshake, client share, shim's backend aws-lc-rs (vs rustls server, in memory)",
        format!("{:.2} ms", ms(bmc)),
        format!("{:.2} ms (rustls+ring client)", ms(rus)),
        format!("{:.1}x", bmc.as_secs_f64() / rus.as_secs_f64()),
        "<= 1.5x",
    ));
    rows.push(Row::new(
        "the same, RustCrypto p256 backend (every target's default)",
        format!("{:.2} ms", ms(portable)),
        format!("{:.2} ms (rustls+ring client)", ms(rus)),
        format!("{:.1}x", portable.as_secs_f64() / rus.as_secs_f64()),
        "reported",
    ));

    println!("== handshake: loopback TCP against openssl s_server");
    rows.extend(openssl_rows(&pki));

    println!("== throughput: {} MiB in {CHUNK}-byte writes", BULK >> 20);
    // Best of three, interleaved: throughput only loses to noise. Each run
    // is also charged the CPU time of the whole process (client, server
    // and kernel, on any thread), which other builders on the machine do
    // not inflate: MB per CPU-second is the steadier ratio.
    let mut best = [(0f64, 0f64); 3];
    let mut link_error = None;
    for _ in 0..3 {
        let runs: [(f64, usize, f64); 3] = [
            {
                let (mbs, cpu) = cpu_time(|| throughput_rustls(&pki, &server));
                (mbs, BULK, cpu)
            },
            {
                let (mbs, cpu) = cpu_time(|| throughput_bmclink_tcp(&pki, &server));
                (mbs, BULK, cpu)
            },
            {
                let (r, cpu) = cpu_time(|| {
                    bmclink_tests::bench_link::throughput(&pki, &server, BULK / 4, CHUNK)
                });
                let mbs = r.unwrap_or_else(|e| {
                    link_error = Some(e);
                    f64::NAN
                });
                (mbs, BULK / 4, cpu)
            },
        ];
        for (slot, (mbs, bytes, cpu)) in best.iter_mut().zip(runs) {
            if mbs.is_finite() {
                slot.0 = slot.0.max(mbs);
                slot.1 = slot.1.max(bytes as f64 / cpu / 1e6);
            }
        }
    }
    let [rus, bmc, link] = best;
    let show = |(wall, cpu): (f64, f64)| format!("{wall:.0} MB/s wall, {cpu:.0} MB/CPU-s");
    let ratio =
        |a: (f64, f64), b: (f64, f64)| format!("{:.2}x CPU ({:.2}x wall)", a.1 / b.1, a.0 / b.0);
    rows.push(Row::new(
        "channel throughput, TLS over kernel loopback TCP (embedded-tls vs rustls+ring)",
        show(bmc),
        show(rus),
        ratio(bmc, rus),
        ">= 0.5x",
    ));
    rows.push(Row::new(
        "channel throughput, embedded-tls + smoltcp over the simulated link vs rustls over kernel loopback",
        match link_error {
            Some(e) => format!("failed: {e}"),
            None => show(link),
        },
        show(rus),
        ratio(link, rus),
        ">= 0.5x",
    ));

    println!("== CPU per received frame, the agent's ingress vs a bare smoltcp interface");
    rows.extend(ingress_rows());

    println!("== start to session, virtual time");
    rows.extend(start_to_session());
    println!("== idle CPU of the connected agent over TAP, 60 s (root, network namespace)");
    rows.push(Row::new(
        "idle CPU of `bmclink run` over TAP, connected, default 10 s heartbeat, 60 s (the process's CPU-time clock)",
        idle_cpu(),
        String::new(),
        String::new(),
        "< 0.02% of a core",
    ));

    println!("== handshake peak stack (release, stack painting)");
    // The 16 KiB budget is the firmware's, whose backend is RustCrypto;
    // the shim's aws-lc-rs runs on an 8 MiB thread stack (reported).
    let stack = handshake_stack(&pki, &bmclink_core::tls::RUST_CRYPTO);
    if let Ok(fast) = handshake_stack(&pki, &bmclink_core::tls::AWS_LC) {
        rows.push(Row::new(
            "peak stack of the same with the shim's aws-lc-rs backend",
            format!("{fast} B"),
            String::new(),
            String::new(),
            "reported",
        ));
    }
    rows.push(match &stack {
        Ok(stack) => Row::new(
            "peak stack of a full handshake + one echo, RustCrypto (x86_64, release, max of 5)",
            format!("{stack} B"),
            "16384 B budget".into(),
            format!("{:.0}%", *stack as f64 * 100.0 / 16384.0),
            "<= 16 KiB",
        ),
        Err(e) => Row::new(
            "peak stack of a full handshake (x86_64, release)",
            format!("failed: {e}"),
            "16384 B budget".into(),
            String::new(),
            "<= 16 KiB",
        ),
    });

    let table = render(&rows);
    println!("\n{table}");
    let machine = machine();
    println!("{machine}");
    println!("whole run: {:.0} s", started.elapsed().as_secs_f64());
    let path = report_path();
    if let Err(e) = write_report(&path, &machine, &table) {
        eprintln!("xtask bench: cannot write {}: {e}", path.display());
        return ExitCode::FAILURE;
    }
    println!("wrote {}", path.display());
    match stack {
        Ok(stack) if stack <= 16 * 1024 => ExitCode::SUCCESS,
        Ok(stack) => {
            eprintln!("xtask bench: handshake stack {stack} B exceeds 16 KiB");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("xtask bench: the stack measurement failed: {e}");
            ExitCode::FAILURE
        }
    }
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub(crate) fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Medians of the client's share (total minus time inside the server):
/// bmclink with the shim's backend (aws-lc-rs), bmclink with RustCrypto,
/// the rustls+ring client.
fn handshakes(pki: &Pki, server: &Arc<rustls::ServerConfig>) -> (Duration, Duration, Duration) {
    use bmclink_core::tls::{AWS_LC, RUST_CRYPTO};
    let client = rustls_client(pki);
    let mut rng = seeded(1);
    let mut buffers = Box::new(TlsBuffers::new());
    for _ in 0..5 {
        bmclink_handshake(pki, server, &mut buffers, &mut rng, &AWS_LC);
        bmclink_handshake(pki, server, &mut buffers, &mut rng, &RUST_CRYPTO);
        rustls_handshake(&client, server);
    }
    let mut fast = Vec::new();
    let mut portable = Vec::new();
    let mut rus = Vec::new();
    // Interleaved, so a noisy neighbour hurts all alike.
    for _ in 0..HANDSHAKES {
        let t = Instant::now();
        let s = bmclink_handshake(pki, server, &mut buffers, &mut rng, &AWS_LC);
        fast.push(t.elapsed().saturating_sub(s));
        let t = Instant::now();
        let s = bmclink_handshake(pki, server, &mut buffers, &mut rng, &RUST_CRYPTO);
        portable.push(t.elapsed().saturating_sub(s));
        let t = Instant::now();
        let s = rustls_handshake(&client, server);
        rus.push(t.elapsed().saturating_sub(s));
    }
    (median(fast), median(portable), median(rus))
}

/// Largest peak stack of a handshake over a few seeds (each picks other
/// keys and randoms), or why a run failed.
fn handshake_stack(
    pki: &Pki,
    backend: &'static dyn bmclink_core::tls::P256Backend,
) -> Result<usize, String> {
    let mut peak = 0;
    for seed in 1..=5 {
        let used = bmclink_tests::bench_tls::handshake_peak_stack(pki, seed, backend)
            .map_err(|e| format!("seed {seed}: {e}"))?;
        peak = peak.max(used.peak);
    }
    Ok(peak)
}

/// Frames per CPU-per-frame run, and runs (best of).
const INGRESS_FRAMES: usize = 1_000_000;
const INGRESS_ROUNDS: usize = 5;

/// Wall nanoseconds per frame through the agent's ingress (the claims'
/// hook, then a one-frame `Port` into smoltcp and the egress after it, as
/// `Agent::handle_frame` and `poll_transmit` do) against a
/// bare smoltcp `Interface` with the same address on the same frames: the
/// flood scenario's junk and its ARP between other hosts.
fn ingress_rows() -> Vec<Row> {
    use bmclink_tests::bench_link::{ingress_ns_per_frame, IngressLoad};
    [
        (IngressLoad::Junk, "CPU per junk frame (random bytes, bad ethertype, truncated, other MAC) through the agent's ingress"),
        (IngressLoad::ArpForOthers, "CPU per ARP frame between other hosts through the agent's ingress"),
    ]
    .into_iter()
    .map(|(load, what)| {
        let (agent, bare) = ingress_ns_per_frame(load, INGRESS_FRAMES, INGRESS_ROUNDS);
        Row::new(
            what,
            format!("{agent:.0} ns/frame"),
            format!("{bare:.0} ns/frame (bare smoltcp Interface)"),
            format!("{:.2}x", agent / bare),
            "reported",
        )
    })
    .collect()
}

/// Seeds per start-to-session path (each draws its own RFC random waits).
const SEEDS: u64 = 10;

/// Start to session in virtual time (the BL2001 audit time) per path, over
/// [`SEEDS`] seeds, against the floor the RFC timers allow; and the agent's
/// own share: from the address coming into use to the session.
fn start_to_session() -> Vec<Row> {
    use bmclink_tests::bench_link::{session_start, StartPath};
    let mut rows = Vec::new();
    for path in StartPath::ALL {
        let (what, floor, note) = path.describe();
        let runs: Vec<_> = (1..=SEEDS).filter_map(|s| session_start(path, s)).collect();
        let reference = format!("{:.3} s floor ({note})", vsecs(floor));
        if runs.is_empty() {
            rows.push(Row::new(
                what,
                "no session".into(),
                reference,
                String::new(),
                "",
            ));
            continue;
        }
        let mut sessions: Vec<f64> = runs.iter().map(|r| vsecs(r.1)).collect();
        sessions.sort_by(f64::total_cmp);
        let mut shares: Vec<f64> = runs.iter().map(|r| vsecs(r.1) - vsecs(r.0)).collect();
        shares.sort_by(f64::total_cmp);
        rows.push(Row::new(
            what,
            format!(
                "min {:.3} s, median {:.3} s ({} of {SEEDS} seeds)",
                sessions[0],
                sessions[sessions.len() / 2],
                runs.len()
            ),
            reference,
            format!("min +{:.0} ms", (sessions[0] - vsecs(floor)) * 1e3),
            "",
        ));
        rows.push(Row::new(
            "  of which address in use to session (agent's own share)",
            format!(
                "median {:.1} ms, max {:.1} ms",
                shares[shares.len() / 2] * 1e3,
                shares[shares.len() - 1] * 1e3
            ),
            String::new(),
            String::new(),
            "<= 50 ms",
        ));
    }
    rows
}

/// Runs the shim's 60 s idle test (`netns.rs`, root only: it makes a
/// network namespace and a TAP device) and returns its measurement.
fn idle_cpu() -> String {
    const TEST: &str = "idle_cpu_while_connected_over_60_s";
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return format!("not measured: needs root (`cargo test -p bmclink-linux --test netns -- --ignored {TEST}`)");
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "test",
            "--release",
            "-q",
            "-p",
            "bmclink-linux",
            "--test",
            "netns",
            "--",
        ])
        .args(["--ignored", "--exact", TEST, "--nocapture"])
        .env("BMCLINK_REQUIRE_ROOT", "1")
        .output();
    let out = match out {
        Ok(out) => out,
        Err(e) => return format!("failed to run the test: {e}"),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    // "idle CPU while connected: 4.12 ms of CPU over 60.0 s (0.0069% of a core), 6 heartbeats 10 s apart"
    match stdout
        .lines()
        .find_map(|l| l.strip_prefix("idle CPU while connected: "))
    {
        Some(line) if out.status.success() => {
            format!("{line} (release build, as shipped)")
        }
        _ => format!(
            "failed: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .rev()
                .take(3)
                .collect::<Vec<_>>()
                .join(" / ")
        ),
    }
}

fn render(rows: &[Row]) -> String {
    let mut out = String::from(
        "| measurement | bmclink | reference | ratio | goal |\n|---|---|---|---|---|\n",
    );
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            r.what, r.bmclink, r.reference, r.ratio, r.goal
        );
    }
    out
}

/// The machine, described: cores, CPU model, rustc.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let rustc = Command::new("rustc")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let openssl = Command::new("openssl")
        .arg("version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|_| "none".into());
    format!("machine: {cores} cores (nproc), CPU {cpu}; {rustc}; {openssl}; release profile")
}

/// Where `cargo xtask bench` and `cargo xtask size` write their tables.
pub fn report_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../BENCHMARKS.md")
}

/// Replaces the generated part of BENCHMARKS.md (between markers), keeping
/// the hand-written notes around it.
fn write_report(path: &Path, machine: &str, table: &str) -> std::io::Result<()> {
    write_section(path, "bench", &format!("{machine}\n\n{table}"))
}

/// Replaces the text between `<!-- {name}:begin -->` and `<!-- {name}:end -->`
/// in the file at `path`, appending the section when the markers are missing.
pub fn write_section(path: &Path, name: &str, text: &str) -> std::io::Result<()> {
    let begin = format!("<!-- {name}:begin -->\n");
    let end = format!("<!-- {name}:end -->");
    let generated = format!("{begin}{text}{end}");
    let old = std::fs::read_to_string(path).unwrap_or_else(|_| "# bmclink benchmarks\n".into());
    let new = match (old.find(&begin), old.find(&end)) {
        (Some(b), Some(e)) if b < e => {
            format!("{}{}{}", &old[..b], generated, &old[e + end.len()..])
        }
        _ => format!("{old}\n{generated}\n"),
    };
    std::fs::write(path, new)
}

/// Seconds of a virtual-time duration.
fn vsecs(d: smoltcp::time::Duration) -> f64 {
    d.total_micros() as f64 / 1e6
}
