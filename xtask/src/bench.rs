//! `cargo xtask bench`: bmclink measured against rustls and OpenSSL, in one
//! run on this machine, as ratios (machines are noisy: compare within a run,
//! not across runs). Re-runs itself as a release build, prints a table and
//! writes BENCHMARKS.md. Nothing here is a pass/fail timing; only the
//! handshake stack budget (16 KiB) fails the command.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bmclink_core::tls::{PinnedTls, TlsBuffers};
use bmclink_tests::bench_stack::peak_stack;
use bmclink_tests::bench_tls::{
    bmclink_handshake, rustls_client, rustls_handshake, sec1_der, serve_one, server_config, Pki,
    Stream,
};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// Handshakes timed per client.
const HANDSHAKES: usize = 200;
/// Bytes sent per throughput run.
const BULK: usize = 32 << 20;
/// Application write size in the throughput runs (one channel frame).
const CHUNK: usize = 1024;

/// A seeded CSPRNG (reproducible runs).
fn seeded(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// One row of the result table.
struct Row {
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
    let (bmc, rus) = handshakes(&pki, &server);
    if args.iter().any(|a| a == "--handshake-only") {
        // For profiling: `perf record target/release/xtask bench --handshake-only`.
        println!("bmclink {bmc:?}, rustls {rus:?}");
        return ExitCode::SUCCESS;
    }
    rows.push(Row::new(
        "full mutual TLS 1.3 handshake, client share (vs rustls server, in memory)",
        format!("{:.2} ms", ms(bmc)),
        format!("{:.2} ms (rustls+ring client)", ms(rus)),
        format!("{:.1}x", bmc.as_secs_f64() / rus.as_secs_f64()),
        "<= 2x",
    ));

    println!("== handshake: loopback TCP against openssl s_server");
    rows.extend(openssl_rows(&pki));

    println!("== throughput: {} MiB in {CHUNK}-byte writes", BULK >> 20);
    // Best of three, interleaved: throughput only loses to noise.
    let (mut kernel_rustls, mut kernel_bmclink, mut link) = (0f64, 0f64, Err(String::new()));
    for _ in 0..3 {
        kernel_rustls = kernel_rustls.max(throughput_rustls(&pki, &server));
        kernel_bmclink = kernel_bmclink.max(throughput_bmclink_tcp(&pki, &server));
        let l = bmclink_tests::bench_link::throughput(&pki, &server, BULK / 4, CHUNK);
        link = match (link, l) {
            (Ok(a), Ok(b)) => Ok(f64::max(a, b)),
            (_, l) => l,
        };
    }
    rows.push(Row::new(
        "channel throughput, TLS over kernel loopback TCP",
        format!("{:.0} MB/s (embedded-tls)", kernel_bmclink),
        format!("{:.0} MB/s (rustls+ring)", kernel_rustls),
        format!("{:.2}x", kernel_bmclink / kernel_rustls),
        ">= 0.5x",
    ));
    match link {
        Ok(link) => rows.push(Row::new(
            "channel throughput, embedded-tls + smoltcp over the simulated link",
            format!("{link:.0} MB/s"),
            format!("{:.0} MB/s (rustls, kernel loopback)", kernel_rustls),
            format!("{:.2}x", link / kernel_rustls),
            ">= 0.5x",
        )),
        Err(e) => rows.push(Row::new(
            "channel throughput, embedded-tls + smoltcp over the simulated link",
            format!("failed: {e}"),
            String::new(),
            String::new(),
            ">= 0.5x",
        )),
    }

    println!("== start to session, virtual time");
    rows.extend(start_to_session());
    rows.push(Row::new(
        "idle CPU of `bmclink run` over TAP, 60 s (getrusage)",
        "not measured yet (shim)".into(),
        String::new(),
        String::new(),
        "< 0.1% of a core",
    ));

    println!("== handshake peak stack (release, stack painting)");
    let stack = handshake_stack(&pki);
    rows.push(Row::new(
        "peak stack of a full handshake (x86_64, release)",
        format!("{stack} B"),
        "16384 B budget".into(),
        format!("{:.0}%", stack as f64 * 100.0 / 16384.0),
        "<= 16 KiB",
    ));

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
    if stack > 16 * 1024 {
        eprintln!("xtask bench: handshake stack {stack} B exceeds 16 KiB");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Medians of the client's share (total minus time inside the server).
fn handshakes(pki: &Pki, server: &Arc<rustls::ServerConfig>) -> (Duration, Duration) {
    let client = rustls_client(pki);
    let mut rng = seeded(1);
    let mut buffers = Box::new(TlsBuffers::new());
    for _ in 0..5 {
        bmclink_handshake(pki, server, &mut buffers, &mut rng);
        rustls_handshake(&client, server);
    }
    let mut bmc = Vec::new();
    let mut rus = Vec::new();
    // Interleaved, so a noisy neighbour hurts both alike.
    for _ in 0..HANDSHAKES {
        let t = Instant::now();
        let s = bmclink_handshake(pki, server, &mut buffers, &mut rng);
        bmc.push(t.elapsed().saturating_sub(s));
        let t = Instant::now();
        let s = rustls_handshake(&client, server);
        rus.push(t.elapsed().saturating_sub(s));
    }
    (median(bmc), median(rus))
}

/// Peak stack of one handshake over a Unix socket pair (server on another
/// thread, so only the client's stack is painted).
fn handshake_stack(pki: &Pki) -> usize {
    let config = server_config(pki);
    let Ok((client_end, server_end)) = std::os::unix::net::UnixStream::pair() else {
        return usize::MAX;
    };
    let server = std::thread::spawn(move || serve_one(config, server_end));
    let mut buffers = Box::new(TlsBuffers::new());
    let key = pki.client_key.clone();
    let cert = pki.client_der.clone();
    let pin = pki.server_pin();
    let (ok, used) = peak_stack(move || {
        let mut rng = seeded(2);
        let id = bmclink_core::tls::Identity::new(key, &cert);
        // One echo after the handshake, so the server has seen our last
        // flight before the stream closes.
        let Ok(mut tls) = PinnedTls::open(Stream(client_end), &mut buffers, pin, id, &mut rng)
        else {
            return false;
        };
        let mut echo = [0u8; 4];
        tls.send(b"ping").is_ok() && tls.read(&mut echo).is_ok_and(|n| echo[..n] == b"ping"[..n])
    });
    let served = server.join().unwrap_or(false);
    if !(ok && served) {
        eprintln!("handshake for the stack measurement failed: client {ok}, server {served}");
    }
    if ok && served {
        used.peak
    } else {
        usize::MAX
    }
}

/// Runs `f` once per handshake against a TLS server on `port`, `n` times;
/// the median wall time per handshake (client and server together).
fn timed_connects(n: usize, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let mut v = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        if !f() {
            return None;
        }
        v.push(t.elapsed());
    }
    Some(median(v))
}

/// Writes `der` as PEM with `label`.
fn pem(label: &str, der: &[u8]) -> String {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut text = String::new();
    for chunk in der.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                text.push(B64[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                text.push('=');
            }
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in text.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or(""));
        out.push('\n');
    }
    let _ = writeln!(out, "-----END {label}-----");
    out
}

/// A free loopback port.
fn free_port() -> Option<u16> {
    TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()
        .map(|a| a.port())
}

/// Kills and reaps a child we started.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The handshake against `openssl s_server -tls1_3` on loopback: bmclink's
/// client, a rustls client and `openssl s_time`, all against the same server.
fn openssl_rows(pki: &Pki) -> Vec<Row> {
    let title = "full mutual TLS 1.3 handshake vs openssl s_server, loopback TCP (client + server)";
    let missing = |why: String| vec![Row::new(title, why, String::new(), String::new(), "")];
    if Command::new("openssl").arg("version").output().is_err() {
        return missing("not measured: no openssl".into());
    }
    let dir = std::env::temp_dir().join(format!("bmclink-bench-{}", std::process::id()));
    if std::fs::create_dir_all(&dir).is_err() {
        return missing("not measured: no temp dir".into());
    }
    let files = [
        ("server.pem", pem("CERTIFICATE", &pki.server_der)),
        (
            "server.key",
            pem("EC PRIVATE KEY", &sec1_der(&pki.server_key)),
        ),
        ("client.pem", pem("CERTIFICATE", &pki.client_der)),
        (
            "client.key",
            pem("EC PRIVATE KEY", &sec1_der(&pki.client_key)),
        ),
    ];
    for (name, text) in &files {
        if std::fs::write(dir.join(name), text).is_err() {
            return missing("not measured: cannot write PEM files".into());
        }
    }
    let Some(port) = free_port() else {
        return missing("not measured: no free port".into());
    };
    let p = |f: &str| dir.join(f).display().to_string();
    let server = Command::new("openssl")
        .args(["s_server", "-tls1_3", "-naccept", "1000000", "-quiet"])
        .args(["-accept", &port.to_string()])
        .args(["-cert", &p("server.pem"), "-key", &p("server.key")])
        .args(["-Verify", "1", "-CAfile", &p("client.pem")])
        .args([
            "-groups",
            "P-256",
            "-ciphersuites",
            "TLS_AES_128_GCM_SHA256",
        ])
        .args(["-no_ticket", "-www"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(server) = server else {
        return missing("not measured: cannot start openssl s_server".into());
    };
    let _server = Reaped(server);
    // Wait for the listener.
    let up = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(20));
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    if !up {
        return missing("not measured: openssl s_server did not listen".into());
    }
    let n = HANDSHAKES / 2;
    let mut rng = seeded(3);
    let mut buffers = Box::new(TlsBuffers::new());
    let bmc = timed_connects(n, || {
        let Ok(tcp) = TcpStream::connect(("127.0.0.1", port)) else {
            return false;
        };
        let _ = tcp.set_nodelay(true);
        let tls = PinnedTls::open(
            Stream(tcp),
            &mut buffers,
            pki.server_pin(),
            pki.identity(),
            &mut rng,
        );
        tls.is_ok()
    });
    let client = rustls_client(pki);
    let rus = timed_connects(n, || {
        let Ok(mut tcp) = TcpStream::connect(("127.0.0.1", port)) else {
            return false;
        };
        let _ = tcp.set_nodelay(true);
        let Ok(name) = rustls::pki_types::ServerName::try_from("bmc") else {
            return false;
        };
        let Ok(mut conn) = rustls::ClientConnection::new(client.clone(), name) else {
            return false;
        };
        while conn.is_handshaking() {
            if conn.complete_io(&mut tcp).is_err() {
                return false;
            }
        }
        true
    });
    let s_time = Command::new("openssl")
        .args([
            "s_time",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-new",
            "-time",
            "4",
        ])
        .args(["-cert", &p("client.pem"), "-key", &p("client.key")])
        .stdin(Stdio::null())
        .output();
    let _ = std::fs::remove_dir_all(&dir);
    let s_time = s_time
        .ok()
        .and_then(|o| parse_s_time(&String::from_utf8_lossy(&o.stdout)));
    let mut rows = Vec::new();
    match (bmc, rus) {
        (Some(b), Some(r)) => rows.push(Row::new(
            title,
            format!("{:.2} ms", ms(b)),
            format!("{:.2} ms (rustls+ring client)", ms(r)),
            format!("{:.1}x", b.as_secs_f64() / r.as_secs_f64()),
            "<= 2x",
        )),
        _ => rows.extend(missing(
            "not measured: a client failed against s_server".into(),
        )),
    }
    if let (Some(b), Some(per)) = (bmc, s_time) {
        rows.push(Row::new(
            "same, vs `openssl s_time -new` (OpenSSL client, incl. its TCP connect)",
            format!("{:.2} ms", ms(b)),
            format!("{:.2} ms (openssl s_time)", ms(per)),
            format!("{:.1}x", b.as_secs_f64() / per.as_secs_f64()),
            "",
        ));
    } else {
        rows.push(Row::new(
            "same, vs `openssl s_time -new`",
            "not measured: s_time gave no result".into(),
            String::new(),
            String::new(),
            "",
        ));
    }
    rows
}

/// Time per connection from `s_time`'s "N connections in T real seconds".
fn parse_s_time(out: &str) -> Option<Duration> {
    let line = out
        .lines()
        .find(|l| l.contains("connections in") && l.contains("real seconds"))?;
    let mut words = line.split_whitespace();
    let n: f64 = words.next()?.parse().ok()?;
    let secs: f64 = line
        .split("connections in ")
        .nth(1)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    (n > 0.0).then(|| Duration::from_secs_f64(secs / n))
}

/// A sink server on loopback TCP; returns its port and a handle yielding
/// whether it served.
fn sink_server(config: Arc<rustls::ServerConfig>) -> Option<(u16, std::thread::JoinHandle<usize>)> {
    let listener = TcpListener::bind("127.0.0.1:0").ok()?;
    let port = listener.local_addr().ok()?.port();
    let handle = std::thread::spawn(move || {
        let Ok((mut tcp, _)) = listener.accept() else {
            return 0;
        };
        let Ok(mut conn) = rustls::ServerConnection::new(config) else {
            return 0;
        };
        let mut total = 0;
        let mut plain = vec![0u8; 64 * 1024];
        loop {
            match conn.complete_io(&mut tcp) {
                Ok((0, 0)) | Err(_) => break,
                Ok(_) => {}
            }
            loop {
                match conn.reader().read(&mut plain) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => total += n,
                }
            }
            if total >= BULK {
                // Acknowledge the end so the client can stop the clock.
                let _ = conn.writer().write_all(b"k");
                let _ = conn.complete_io(&mut tcp);
                break;
            }
        }
        total
    });
    Some((port, handle))
}

/// MB/s of a rustls client streaming [`BULK`] bytes to a rustls sink over
/// kernel loopback TCP (handshake excluded).
fn throughput_rustls(pki: &Pki, server: &Arc<rustls::ServerConfig>) -> f64 {
    let Some((port, handle)) = sink_server(server.clone()) else {
        return f64::NAN;
    };
    let Ok(tcp) = TcpStream::connect(("127.0.0.1", port)) else {
        return f64::NAN;
    };
    let Ok(name) = rustls::pki_types::ServerName::try_from("bmc") else {
        return f64::NAN;
    };
    let Ok(conn) = rustls::ClientConnection::new(rustls_client(pki), name) else {
        return f64::NAN;
    };
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let chunk = [0x5au8; CHUNK];
    let _ = tls.write_all(&[]);
    while tls.conn.is_handshaking() {
        if tls.conn.complete_io(&mut tls.sock).is_err() {
            return f64::NAN;
        }
    }
    let t = Instant::now();
    for _ in 0..BULK / CHUNK {
        if tls.write_all(&chunk).is_err() {
            return f64::NAN;
        }
    }
    let mut ack = [0u8; 1];
    let _ = tls.read_exact(&mut ack);
    let secs = t.elapsed().as_secs_f64();
    let served = handle.join().unwrap_or(0);
    mb_per_s(served, secs)
}

/// MB/s of bmclink's TLS client streaming [`BULK`] bytes to the same rustls
/// sink over kernel loopback TCP (handshake excluded).
fn throughput_bmclink_tcp(pki: &Pki, server: &Arc<rustls::ServerConfig>) -> f64 {
    let Some((port, handle)) = sink_server(server.clone()) else {
        return f64::NAN;
    };
    let Ok(tcp) = TcpStream::connect(("127.0.0.1", port)) else {
        return f64::NAN;
    };
    let mut buffers = Box::new(TlsBuffers::new());
    let mut rng = seeded(4);
    let Ok(mut tls) = PinnedTls::open(
        Stream(tcp),
        &mut buffers,
        pki.server_pin(),
        pki.identity(),
        &mut rng,
    ) else {
        return f64::NAN;
    };
    let chunk = [0x5au8; CHUNK];
    let t = Instant::now();
    for _ in 0..BULK / CHUNK {
        // One record per channel frame, as the agent sends them.
        if tls.send(&chunk).is_err() {
            return f64::NAN;
        }
    }
    let mut ack = [0u8; 1];
    let _ = tls.read(&mut ack);
    let secs = t.elapsed().as_secs_f64();
    let served = handle.join().unwrap_or(0);
    mb_per_s(served, secs)
}

fn mb_per_s(bytes: usize, secs: f64) -> f64 {
    if bytes < BULK {
        return f64::NAN;
    }
    bytes as f64 / secs / 1e6
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
