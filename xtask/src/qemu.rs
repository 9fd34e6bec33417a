//! `cargo xtask qemu [--bench] [--scenario ipv4|ipv6-fallback|impostor]`: the
//! firmware image booted on QEMU's `mps2-an386` (Cortex-M4F, LAN9118)
//! against the kernel BMC, in a network namespace this command creates.
//!
//! For each scenario: a namespace with a TAP device whose kernel side is
//! the BMC (169.254.1.1/16 and fe80::1; the `ipv6-fallback` scenario
//! leaves IPv4 off; in `impostor` the TLS port presents a certificate the
//! image does not expect, which must fail the image), the kernel BMC (`bmclink_tests::kernel_bmc`) on
//! TLS 1.3 port 5443 from a thread inside the namespace, and QEMU attached
//! to the TAP (`-nic tap,...,model=lan9118`). The image carries the
//! bootstrap facts (the BMC certificate's fingerprint and the one-time
//! credential), built in at compile time. Its defmt log leaves over
//! semihosting and is decoded with `defmt-print`. The command prints both
//! sides as one timeline, checks the story (ARP probes, TLS 1.3, enrollment,
//! WELCOME, PING/PONG, BYE; the IPv6 fallback in the second scenario) and
//! exits non-zero on any failure. The namespace and QEMU are removed on
//! every path.
//!
//! `--bench` runs the IPv4 scenario with `-icount shift=0` and the image's
//! `bench` feature, and writes the on-target table into BENCHMARKS.md.
//!
//! Needs root, `ip`, `/dev/net/tun`, `qemu-system-arm` and `defmt-print`;
//! without them it says why and exits 0, or fails under
//! `BMCLINK_REQUIRE_ROOT=1` (CI).

use std::fmt::Write as _;
use std::fs;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use bmclink_tests::bmc_tls::{server_config, TlsIdentity};
use bmclink_tests::kernel_bmc::KernelBmc;
use bmclink_tests::BmcConfig;

use crate::size::{self, Image};

/// The TAP device inside the namespace.
const TAP: &str = "blq0";
/// The image's MAC on the LAN9118 (QEMU's `-nic ...,mac=`; the chip's
/// EEPROM, as the driver reads it).
const FIRMWARE_MAC: &str = "02:62:6c:00:00:02";
/// The BMC certificate: a fixed seed and start of validity, so its
/// fingerprint (built into the image) is the same on every run and the
/// image is not rebuilt. The board has no calendar clock, so validity is
/// not checked there.
const BMC_CERT_SEED: u64 = 0x626d_636c;
const BMC_CERT_NOT_BEFORE: u64 = 1_767_225_600; // 2026-01-01
/// The image runs this long on its own clock (`RUN_SECS` in main.rs).
const RUN_SECS: u64 = 22;
/// Wall-clock limit for one QEMU run (icount runs slower than real time).
const QEMU_LIMIT: Duration = Duration::from_secs(RUN_SECS + 90);

/// The BMC's TLS identity (the same on every run).
fn bmc_identity() -> TlsIdentity {
    TlsIdentity::generate(BMC_CERT_SEED, "idrac", BMC_CERT_NOT_BEFORE, true)
}

/// The bootstrap facts built into the image, as the environment of its
/// build (read by `option_env!` in `firmware/src/board/mod.rs`).
pub fn bootstrap_env() -> [(&'static str, String); 2] {
    let fingerprint: String = bmc_identity()
        .fingerprint()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    [
        ("BMCLINK_FW_BMC_FINGERPRINT", fingerprint),
        ("BMCLINK_FW_CREDENTIAL", BmcConfig::default().credential),
    ]
}

/// One way of booting the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    /// The BMC on 169.254.1.1 and fe80::1: a session over IPv4.
    Ipv4,
    /// The BMC without IPv4 on the USBNIC: the agent falls back to IPv6.
    Ipv6Fallback,
    /// A man in the middle: the TLS port presents another certificate than
    /// the one built into the image. The image must refuse it (BL4002),
    /// never enroll, and QEMU must exit non-zero: the check can fail.
    Impostor,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Ipv4 => "ipv4",
            Scenario::Ipv6Fallback => "ipv6-fallback",
            Scenario::Impostor => "impostor",
        }
    }
}

/// What one run produced.
struct Run {
    log: String,
    bmc: KernelBmc,
    qemu_ok: bool,
    wall: Duration,
    /// QEMU's start on the BMC's clock (which starts when it listens).
    qemu_at: Duration,
    /// Virtual time ran apart from wall time (`-icount`).
    icount: bool,
}

pub fn main(args: &[String]) -> ExitCode {
    let bench = args.iter().any(|a| a == "--bench");
    let mut scenarios = vec![Scenario::Ipv4, Scenario::Ipv6Fallback, Scenario::Impostor];
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--bench" => {}
            "--scenario" => {
                scenarios = match it.next().map(String::as_str) {
                    Some("ipv4") => vec![Scenario::Ipv4],
                    Some("ipv6-fallback") => vec![Scenario::Ipv6Fallback],
                    Some("impostor") => vec![Scenario::Impostor],
                    other => {
                        eprintln!(
                            "xtask qemu: --scenario takes ipv4, ipv6-fallback or impostor, not {other:?}"
                        );
                        return ExitCode::from(2);
                    }
                }
            }
            other => {
                eprintln!("xtask qemu: unknown argument `{other}`; usage: cargo xtask qemu [--bench] [--scenario ipv4|ipv6-fallback|impostor]");
                return ExitCode::from(2);
            }
        }
    }
    if bench {
        scenarios = vec![Scenario::Ipv4];
    }
    let tools = match prerequisites() {
        Ok(t) => t,
        Err(why) => {
            if std::env::var("BMCLINK_REQUIRE_ROOT").is_ok_and(|v| v == "1") {
                eprintln!("xtask qemu: BMCLINK_REQUIRE_ROOT=1 but {why}");
                return ExitCode::FAILURE;
            }
            println!("xtask qemu: skipped: {why} (BMCLINK_REQUIRE_ROOT=1 makes this a failure)");
            return ExitCode::SUCCESS;
        }
    };
    let identity = bmc_identity();
    let credential = BmcConfig::default().credential;
    let elf = match size::build_firmware(bench) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("xtask qemu: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut ok = true;
    let mut walls = Vec::new();
    let mut bench_log = None;
    for scenario in scenarios {
        println!(
            "\n==> qemu scenario {}{}",
            scenario.name(),
            if bench {
                " (bench, -icount shift=0)"
            } else {
                ""
            }
        );
        let run = match run(scenario, bench, &elf, &tools, &identity, &credential) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("xtask qemu: {}: {e}", scenario.name());
                ok = false;
                continue;
            }
        };
        print_timelines(&run);
        let problems = check(scenario, &run);
        walls.push((scenario.name(), run.wall));
        if problems.is_empty() {
            println!(
                "qemu {}: passed in {:.1} s wall",
                scenario.name(),
                run.wall.as_secs_f64()
            );
        } else {
            ok = false;
            for p in &problems {
                eprintln!("qemu {}: FAILED: {p}", scenario.name());
            }
        }
        if bench {
            bench_log = Some(run.log);
        }
    }
    for (name, wall) in &walls {
        println!(
            "qemu {name}: {:.1} s wall (QEMU only, build excluded)",
            wall.as_secs_f64()
        );
    }
    if let (true, Some(log)) = (ok, bench_log) {
        match bench_report(&log, &elf) {
            Ok(table) => {
                println!("\n{table}");
                let path = crate::bench::report_path();
                if let Err(e) = crate::bench::write_section(&path, "qemu", &table) {
                    eprintln!("xtask qemu: cannot write {}: {e}", path.display());
                    ok = false;
                } else {
                    println!("wrote {}", path.display());
                }
            }
            Err(e) => {
                eprintln!("xtask qemu --bench: {e}");
                ok = false;
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The host tools a run needs.
struct Tools {
    qemu: PathBuf,
    defmt_print: PathBuf,
}

/// Finds `name` on PATH or in cargo's bin directory.
fn find(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        dirs.push(PathBuf::from(home).join("bin"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cargo/bin"));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

fn prerequisites() -> Result<Tools, String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err("it needs root (a network namespace and a TAP device)".into());
    }
    if !Path::new("/dev/net/tun").exists() {
        return Err("/dev/net/tun is missing".into());
    }
    if find("ip").is_none() {
        return Err("the `ip` command (iproute2) is missing".into());
    }
    let qemu = find("qemu-system-arm")
        .ok_or("qemu-system-arm is missing (apt-get install qemu-system-arm)")?;
    let defmt_print =
        find("defmt-print").ok_or("defmt-print is missing (cargo install defmt-print --locked)")?;
    Ok(Tools { qemu, defmt_print })
}

/// A network namespace, deleted on drop (its TAP goes with it).
struct Netns {
    name: String,
}

impl Netns {
    fn new(tag: &str) -> Result<Netns, String> {
        let name = format!("blqemu-{tag}-{}", std::process::id());
        ip(&["netns", "add", &name])?;
        Ok(Netns { name })
    }

    fn ip(&self, args: &[&str]) -> Result<(), String> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// A listener bound inside the namespace (from a thread that entered it).
    fn listen(&self, port: u16) -> Result<TcpListener, String> {
        let path = format!("/var/run/netns/{}", self.name);
        std::thread::scope(|s| {
            s.spawn(|| {
                let ns = fs::File::open(&path).map_err(|e| format!("open {path}: {e}"))?;
                // SAFETY: setns on this thread only, with a namespace fd.
                if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    return Err(format!("setns {path}: {}", std::io::Error::last_os_error()));
                }
                TcpListener::bind(("::", port)).map_err(|e| format!("listen on [::]:{port}: {e}"))
            })
            .join()
            .map_err(|_| "listener thread panicked".to_string())?
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// QEMU, killed on drop.
struct Qemu(Child);

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run(
    scenario: Scenario,
    bench: bool,
    elf: &Path,
    tools: &Tools,
    identity: &TlsIdentity,
    credential: &str,
) -> Result<Run, String> {
    let ns = Netns::new(scenario.name())?;
    ns.ip(&["link", "set", "lo", "up"])?;
    ns.ip(&["tuntap", "add", "dev", TAP, "mode", "tap"])?;
    // Only fe80::1, so the BMC's IPv6 address is the one the agent learns.
    ns.ip(&["link", "set", TAP, "addrgenmode", "none"])?;
    if scenario != Scenario::Ipv6Fallback {
        ns.ip(&["addr", "add", "169.254.1.1/16", "dev", TAP])?;
    }
    ns.ip(&["-6", "addr", "add", "fe80::1/64", "dev", TAP, "nodad"])?;
    ns.ip(&["link", "set", TAP, "up"])?;
    let cfg = BmcConfig {
        firmware: [3, 30, 30, 30],
        tls: true,
        credential: credential.to_string(),
        ..BmcConfig::default()
    };
    let impostor;
    let presented = if scenario == Scenario::Impostor {
        impostor = TlsIdentity::generate(BMC_CERT_SEED + 1, "idrac", BMC_CERT_NOT_BEFORE, true);
        &impostor
    } else {
        identity
    };
    let tls = server_config(presented, false).map_err(|e| format!("rustls server config: {e}"))?;
    let bmc_at = Instant::now();
    let bmc = KernelBmc::spawn_tls(ns.listen(5443)?, cfg, tls, false);

    let dir = elf.parent().unwrap_or(Path::new(".")).to_path_buf();
    let raw = dir.join(format!("qemu-{}.defmt", scenario.name()));
    let err = dir.join(format!("qemu-{}.stderr", scenario.name()));
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &ns.name])
        .arg(&tools.qemu)
        .args(["-M", "mps2-an386", "-nographic"])
        .args(["-semihosting-config", "enable=on,target=native"])
        .arg("-nic")
        .arg(format!(
            "tap,ifname={TAP},script=no,downscript=no,model=lan9118,mac={FIRMWARE_MAC}"
        ));
    if bench {
        cmd.args(["-icount", "shift=0"]);
    }
    cmd.arg("-kernel")
        .arg(elf)
        .stdin(Stdio::null())
        .stdout(fs::File::create(&raw).map_err(|e| format!("{}: {e}", raw.display()))?)
        .stderr(fs::File::create(&err).map_err(|e| format!("{}: {e}", err.display()))?);
    let start = Instant::now();
    let qemu_at = start.duration_since(bmc_at);
    let mut qemu = Qemu(cmd.spawn().map_err(|e| format!("cannot start QEMU: {e}"))?);
    let status = loop {
        match qemu.0.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if start.elapsed() > QEMU_LIMIT => break None,
            Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => return Err(format!("waiting for QEMU: {e}")),
        }
    };
    let wall = start.elapsed();
    drop(qemu);
    // Let the BMC's threads note the close.
    std::thread::sleep(Duration::from_millis(200));
    let stderr = fs::read_to_string(&err).unwrap_or_default();
    let log = decode(&tools.defmt_print, elf, &raw)?;
    let qemu_ok = match status {
        Some(s) if s.success() => true,
        Some(s) => {
            println!("QEMU exited with {s} (the image's verdict)\n{stderr}");
            false
        }
        None => {
            eprintln!(
                "QEMU did not exit within {} s; killed\n{stderr}",
                QEMU_LIMIT.as_secs()
            );
            false
        }
    };
    Ok(Run {
        log,
        bmc,
        qemu_ok,
        wall,
        qemu_at,
        icount: bench,
    })
}

/// Decodes the raw defmt stream with `defmt-print`.
fn decode(defmt_print: &Path, elf: &Path, raw: &Path) -> Result<String, String> {
    let out = Command::new(defmt_print)
        .arg("-e")
        .arg(elf)
        .args(["--log-format", "{t} {L} {s}"])
        .arg("stdin")
        .stdin(fs::File::open(raw).map_err(|e| format!("{}: {e}", raw.display()))?)
        .output()
        .map_err(|e| format!("cannot run defmt-print: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "defmt-print failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Prints the image's log and the BMC's timeline as one timeline on the
/// BMC's clock: the board's SysTick time plus an offset (the two sides'
/// views of the first TCP connection). Under `-icount` virtual time runs
/// apart from wall time: two timelines.
fn print_timelines(run: &Run) {
    let board: Vec<(f64, String)> = run
        .log
        .lines()
        .map(|l| {
            let (t, rest) = l.split_once(' ').unwrap_or(("", l));
            let t = t.parse::<f64>().unwrap_or(0.0);
            let rest = rest
                .trim_start()
                .strip_prefix("INFO")
                .unwrap_or(rest)
                .trim_start();
            (t, rest.to_string())
        })
        .collect();
    let bmc: Vec<(f64, String)> = run
        .bmc
        .timeline()
        .lines()
        .map(|l| {
            let l = l.trim_start();
            let (t, rest) = l.split_once(" s ").unwrap_or(("", l));
            (
                t.parse::<f64>().unwrap_or(0.0),
                rest.trim_start().to_string(),
            )
        })
        .collect();
    let line = |t: f64, who: &str, text: &str| println!("{t:>10.6} s  {who:<6} {text}");
    if run.icount {
        println!("--- board (Cortex-M4F, decoded defmt; virtual seconds under -icount) ---");
        for (t, text) in &board {
            line(*t, "board", text);
        }
        println!("--- kernel BMC (wall seconds since it started listening) ---");
        for (t, text) in &bmc {
            line(*t, "", text);
        }
        return;
    }
    // The board's clock starts when QEMU has booted, a little after QEMU
    // started: align the two on the first TCP connection when both saw it.
    let first = |lines: &[(f64, String)], what: &str| {
        lines
            .iter()
            .find(|(_, text)| text.contains(what))
            .map(|(t, _)| *t)
    };
    let (offset, how) = match (first(&board, "TCP connected"), first(&bmc, "accepted")) {
        (Some(b), Some(k)) => (k - b, "aligned on the first TCP connection"),
        _ => (run.qemu_at.as_secs_f64(), "from QEMU's start"),
    };
    println!(
        "--- timeline: the board (Cortex-M4F, decoded defmt) and the kernel BMC, wall seconds \
         since the BMC listened; board time + {offset:.3} s ({how}) ---"
    );
    let mut all: Vec<(f64, u8, &str, &str)> = board
        .iter()
        .map(|(t, text)| (t + offset, 0, "board", text.as_str()))
        .chain(bmc.iter().map(|(t, text)| (*t, 1, "", text.as_str())))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    for (t, _, who, text) in all {
        line(t, who, text);
    }
}

/// What a run must show; empty when it passed.
fn check(scenario: Scenario, run: &Run) -> Vec<String> {
    let mut problems = Vec::new();
    let log = &run.log;
    let timeline = run.bmc.timeline();
    let mut need = |ok: bool, what: &str| {
        if !ok {
            problems.push(what.to_string());
        }
    };
    need(
        log.contains("-> ARP probe for"),
        "no RFC 5227 ARP probe from the image",
    );
    need(
        log.contains("audit BL1001"),
        "no IPv4 link-local address claimed (BL1001)",
    );
    need(
        log.contains("TLS ClientHello"),
        "no TLS ClientHello on the wire",
    );
    need(!log.contains("panic"), "the image panicked");
    if scenario == Scenario::Impostor {
        need(
            !run.qemu_ok,
            "QEMU exited 0 although the BMC presented the wrong certificate",
        );
        need(
            log.contains("audit BL4002"),
            "the wrong certificate was not refused (BL4002)",
        );
        need(
            !log.contains("audit BL4006"),
            "the image enrolled with an impostor (BL4006)",
        );
        need(
            !log.contains("audit BL2001"),
            "a session came up with an impostor (BL2001)",
        );
        need(
            !timeline.contains("ENROLL"),
            "the impostor received an ENROLL",
        );
        need(
            run.bmc.count("BMC0001") == 0,
            "the impostor saw a session (BMC0001)",
        );
        return problems;
    }
    need(
        run.qemu_ok,
        "QEMU did not exit 0 (the image's verdict: enrolled, TLS 1.3 session, BYE, no error event)",
    );
    need(log.contains("audit BL4006"), "not enrolled (BL4006)");
    let family = match scenario {
        Scenario::Ipv6Fallback => "IPv6",
        _ => "IPv4",
    };
    need(
        log.lines()
            .any(|l| l.contains("audit BL2001") && l.contains(family) && l.contains("TLS 1.3")),
        &format!("no TLS 1.3 session over {family} (BL2001)"),
    );
    need(log.contains("WELCOME"), "no WELCOME in the image's log");
    need(
        log.contains("audit BL2002"),
        "the image did not end the session with BYE (BL2002)",
    );
    need(!log.contains(" ERROR "), "the image logged an error");
    if scenario == Scenario::Ipv6Fallback {
        need(log.contains("audit BL3004"), "no fallback to IPv6 (BL3004)");
        need(
            log.contains("audit BL1101"),
            "no IPv6 link-local address claimed (BL1101)",
        );
    }
    need(
        run.bmc.count("BMC0001") >= 1,
        "the BMC saw no session (BMC0001)",
    );
    need(run.bmc.pings() >= 1, "the BMC saw no PING");
    need(timeline.contains("-> PONG"), "the BMC sent no PONG");
    need(timeline.contains("ENROLL"), "the BMC saw no ENROLL");
    need(
        run.bmc.count("BMC0002") >= 1,
        "the BMC saw no BYE (BMC0002)",
    );
    problems
}

/// `bench NAME VALUE ...` lines of the image's log.
fn figure(log: &str, name: &str) -> Option<u64> {
    log.lines().find_map(|l| {
        let rest = l.split_once(&format!("bench {name} "))?.1;
        rest.split_whitespace().next()?.parse().ok()
    })
}

fn bench_report(log: &str, elf: &Path) -> Result<String, String> {
    let bytes = fs::read(elf).map_err(|e| format!("{}: {e}", elf.display()))?;
    let sections = size::sections(&bytes).ok_or("the image is not an ELF file")?;
    let image = Image::of(&sections);
    let get = |name: &str| figure(log, name).ok_or(format!("the image printed no `bench {name}`"));
    let (keygen, ecdh, sign, verify) = (
        get("p256 keygen")?,
        get("p256 ecdh")?,
        get("p256 sign")?,
        get("p256 verify")?,
    );
    let handshake = get("handshake")?;
    let heartbeat = get("heartbeat")?;
    let stack = get("stack")?;
    let start_up = log
        .lines()
        .find_map(|l| {
            l.split_once("stack peak while building the agent ")?
                .1
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .ok_or("the image printed no start-up stack peak")?;
    let m = |n: u64| format!("{:.2} M", n as f64 / 1e6);
    let k = |n: u64| format!("{:.0} k", n as f64 / 1e3);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "QEMU {} `mps2-an386` (Cortex-M4F model), `-icount shift=0`: figures are instructions \
         executed, not cycles (QEMU is not cycle-accurate); time asleep in WFI is not counted. \
         Image: `firmware/` release (opt-level z, the P-256 crates at 3, fat LTO), `--features bench`.\n",
        qemu_version()
    );
    let _ = writeln!(
        out,
        "| measurement | RustCrypto `p256` 0.13 | `p256-cm4` | goal |"
    );
    let _ = writeln!(out, "|---|---|---|---|");
    let _ = writeln!(out, "| full mutual TLS 1.3 handshake + enrollment (SYN to BL2001) | {} | not yet linked | <= 5.5 M with `p256-cm4` |", m(handshake));
    let _ = writeln!(out, "| P-256 key share (scalar + public point) | {} | not yet linked | 327 k cycles (P256-Cortex-M4) |", k(keygen));
    let _ = writeln!(out, "| P-256 ECDH | {} | not yet linked | 906 k |", k(ecdh));
    let _ = writeln!(
        out,
        "| ECDSA P-256 sign (SHA-256 of 130 bytes incl.) | {} | not yet linked | 375 k |",
        k(sign)
    );
    let _ = writeln!(
        out,
        "| ECDSA P-256 verify, `ecdsa` 0.16 stock | {} | not yet linked | 976 k |",
        k(verify)
    );
    let _ = writeln!(
        out,
        "| one heartbeat round trip (PING out, PONG in, TLS both ways) | {} | | |",
        k(heartbeat)
    );
    let _ = writeln!(
        out,
        "| peak stack of the running agent, painted on target | {stack} B | | <= 16 KiB |"
    );
    let _ = writeln!(
        out,
        "| peak stack once at start-up (`AgentBuffers::new()` and `Agent::new` return by value) | {start_up} B | | |"
    );
    let _ = writeln!(
        out,
        "| image `.text` / `.rodata` / `.data` / `.bss` | {} / {} / {} / {} B | | |",
        image.text, image.rodata, image.data, image.bss
    );
    let _ = writeln!(
        out,
        "| flash (text + rodata + data) / RAM (data + bss + running stack) | {:.1} KiB / {:.1} KiB | | flash <= 256 KiB, RAM <= 64 KiB |",
        image.flash() as f64 / 1024.0,
        (image.ram() + stack) as f64 / 1024.0
    );
    Ok(out)
}

fn qemu_version() -> String {
    Command::new("qemu-system-arm")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(3).map(str::to_string))
        })
        .unwrap_or_else(|| "?".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines as `defmt-print --log-format "{t} {L} {s}"` prints them.
    const LOG: &str = "0.048338 INFO  bench p256 keygen 6791880 instructions\n\
                       22.000467 INFO  bench handshake 31641640 instructions\n\
                       22.000470 INFO  bench stack 11780 bytes\n";

    #[test]
    fn bench_figures_are_read_from_the_decoded_log() {
        assert_eq!(figure(LOG, "p256 keygen"), Some(6_791_880));
        assert_eq!(figure(LOG, "handshake"), Some(31_641_640));
        assert_eq!(figure(LOG, "stack"), Some(11_780));
    }

    #[test]
    fn a_figure_the_image_did_not_print_is_none() {
        assert_eq!(figure(LOG, "heartbeat"), None);
        // "stack-so-far" is another figure, not "stack".
        assert_eq!(
            figure("1.0 INFO  bench stack-so-far 4432 bytes at BL1001", "stack"),
            None
        );
    }

    #[test]
    fn the_bench_table_needs_every_figure() {
        let elf = std::env::current_exe().expect("the test binary is an ELF file");
        let err = bench_report(LOG, &elf).expect_err("heartbeat and ECDH are missing");
        assert!(err.contains("bench p256 ecdh"), "{err}");
    }
}
