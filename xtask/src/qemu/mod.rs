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
//! `bench` feature, once per P-256 backend (RustCrypto and `p256-cm4`, two
//! images), and writes the on-target table with both columns into
//! BENCHMARKS.md. `--backend rustcrypto|cm4|both` picks the images; without
//! it the scenarios boot the RustCrypto image only (CI's run: the `p256-cm4`
//! image is another full LTO build, and its column is a benchmark).
//!
//! Needs root, `ip`, `/dev/net/tun`, `qemu-system-arm` and `defmt-print`;
//! without them it says why and exits 0, or fails under
//! `BMCLINK_REQUIRE_ROOT=1` (CI).

mod netns;
mod report;
mod story;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use bmclink_tests::bmc_tls::{server_config, TlsIdentity};
use bmclink_tests::kernel_bmc::KernelBmc;
use bmclink_tests::BmcConfig;

use crate::size;

use self::netns::Netns;
use self::report::bench_report;

use self::story::{check, print_timelines};

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
pub fn bootstrap_env() -> [(&'static str, String); 3] {
    let fingerprint: String = bmc_identity()
        .fingerprint()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    [
        ("BMCLINK_FW_BMC_FINGERPRINT", fingerprint),
        ("BMCLINK_FW_CREDENTIAL", BmcConfig::default().credential),
        ("BMCLINK_FW_ACCOUNT", BmcConfig::default().account),
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

/// The P-256 backend an image is built with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    /// RustCrypto `p256` (the default of every target).
    RustCrypto,
    /// The `p256-cm4` Cortex-M4 assembly (the firmware's `p256-cm4` feature).
    Cm4,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::RustCrypto => "RustCrypto",
            Backend::Cm4 => "p256-cm4",
        }
    }
}

const USAGE: &str = "usage: cargo xtask qemu [--bench] [--backend rustcrypto|cm4|both] [--scenario ipv4|ipv6-fallback|impostor]";

pub fn main(args: &[String]) -> ExitCode {
    let bench = args.iter().any(|a| a == "--bench");
    let mut scenarios = vec![Scenario::Ipv4, Scenario::Ipv6Fallback, Scenario::Impostor];
    // The scenarios boot the RustCrypto image (CI's); `--bench` measures
    // both backends side by side.
    let mut backends = if bench {
        vec![Backend::RustCrypto, Backend::Cm4]
    } else {
        vec![Backend::RustCrypto]
    };
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
            "--backend" => {
                backends = match it.next().map(String::as_str) {
                    Some("rustcrypto") => vec![Backend::RustCrypto],
                    Some("cm4") => vec![Backend::Cm4],
                    Some("both") => vec![Backend::RustCrypto, Backend::Cm4],
                    other => {
                        eprintln!(
                            "xtask qemu: --backend takes rustcrypto, cm4 or both, not {other:?}"
                        );
                        return ExitCode::from(2);
                    }
                }
            }
            other => {
                eprintln!("xtask qemu: unknown argument `{other}`; {USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    if bench {
        scenarios = vec![Scenario::Ipv4];
        if !backends.contains(&Backend::RustCrypto) {
            eprintln!("xtask qemu --bench: the table needs the RustCrypto column; use --backend both or rustcrypto");
            return ExitCode::from(2);
        }
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
    let mut ok = true;
    let mut walls = Vec::new();
    let mut figures: Vec<(Backend, report::Figures)> = Vec::new();
    for backend in backends {
        let elf = match size::build_firmware(bench, backend == Backend::Cm4) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("xtask qemu: {e}");
                return ExitCode::FAILURE;
            }
        };
        for &scenario in &scenarios {
            let label = format!("{} ({})", scenario.name(), backend.name());
            println!(
                "\n==> qemu scenario {label}{}",
                if bench {
                    " (bench, -icount shift=0)"
                } else {
                    ""
                }
            );
            let run = match run(scenario, bench, &elf, &tools, &identity, &credential) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("xtask qemu: {label}: {e}");
                    ok = false;
                    continue;
                }
            };
            print_timelines(&run);
            let problems = check(scenario, &run);
            walls.push((label.clone(), run.wall));
            if problems.is_empty() {
                println!(
                    "qemu {label}: passed in {:.1} s wall",
                    run.wall.as_secs_f64()
                );
            } else {
                ok = false;
                for p in &problems {
                    eprintln!("qemu {label}: FAILED: {p}");
                }
            }
            if bench && problems.is_empty() {
                match report::Figures::read(&run.log, &elf) {
                    Ok(f) => figures.push((backend, f)),
                    Err(e) => {
                        eprintln!("xtask qemu --bench: {label}: {e}");
                        ok = false;
                    }
                }
            }
        }
    }
    for (name, wall) in &walls {
        println!(
            "qemu {name}: {:.1} s wall (QEMU only, build excluded)",
            wall.as_secs_f64()
        );
    }
    let of = |b: Backend| figures.iter().find(|(x, _)| *x == b).map(|(_, f)| f);
    if let (true, Some(rust_crypto)) = (bench && ok, of(Backend::RustCrypto)) {
        let cm4 = of(Backend::Cm4);
        let table = bench_report(rust_crypto, cm4);
        println!("\n{table}");
        if let Some(c) = cm4 {
            println!(
                "p256-cm4 handshake goal (<= 5.5 M instructions): {}",
                report::handshake_verdict(c)
            );
        }
        let path = crate::bench::report_path();
        if let Err(e) = crate::bench::write_section(&path, "qemu", &table) {
            eprintln!("xtask qemu: cannot write {}: {e}", path.display());
            ok = false;
        } else {
            println!("wrote {}", path.display());
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
    let bmc = KernelBmc::spawn_tls(ns.listen(5443)?, cfg, tls, presented.fingerprint(), false);

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
