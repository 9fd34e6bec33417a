//! `bmclink-conform`: see the crate docs and README "Testing a BMC".

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use bmclink_conform::checks::{self, Options, Rig, Target, Trust, CHECKS};
use bmclink_conform::link::{Link, LinkAddrs};
use bmclink_conform::report;
use bmclink_linux::clock::LinuxClock;
use bmclink_linux::frames;
use clap::Parser;

/// Plays the host against a BMC under test and checks its side of the
/// bmclink channel, rule by rule (DESIGN §4 T1/T4/T6, §5, §5a).
#[derive(Debug, Parser)]
#[command(name = "bmclink-conform", version)]
struct Cli {
    /// The BMC's TLS channel port over kernel sockets: HOST:PORT, or HOST
    /// for the default ports (TLS 5443, plain 5080). Link checks are then
    /// not run (kernel sockets show no link layer).
    #[arg(long, value_name = "ADDR", required_unless_present_any = ["list", "tap", "iface"])]
    connect: Option<String>,
    /// Run the link checks on raw frames through this TAP device (its
    /// kernel side, a VM or an emulator is the BMC); with --connect the
    /// channel checks run too, over kernel sockets.
    #[arg(long, value_name = "NAME", conflicts_with = "iface")]
    tap: Option<String>,
    /// Run the link checks on this real interface (the USBNIC) through an
    /// AF_PACKET socket.
    #[arg(long, value_name = "NAME")]
    iface: Option<String>,
    /// The BMC's IPv4 address on the link.
    #[arg(long, value_name = "ADDR", default_value = "169.254.1.1")]
    bmc_ipv4: std::net::Ipv4Addr,
    /// The BMC's IPv6 link-local address (no IPv6 link checks without it).
    #[arg(long, value_name = "ADDR")]
    bmc_ipv6: Option<std::net::Ipv6Addr>,
    /// The host's IPv4 address, which the rig uses and the BMC must never claim.
    #[arg(long, value_name = "ADDR", default_value = "169.254.1.2")]
    host_ipv4: std::net::Ipv4Addr,
    /// The rig's MAC on the link (default: a random locally administered one).
    #[arg(long, value_name = "MAC")]
    mac: Option<String>,
    /// The BMC's plain channel port (T6); default HOST:5080 when --connect
    /// names no port.
    #[arg(long, value_name = "ADDR")]
    plain: Option<String>,
    /// Bootstrap facts file (TOML, as `bmclink run --bootstrap`):
    /// fingerprint, firmware, tls, ipv6_usbnic.
    #[arg(long, value_name = "FILE")]
    facts: Option<PathBuf>,
    /// The one-time account file: account name on the first line, secret
    /// on the second (as `bmclink install` writes it).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["account", "secret_file"])]
    account_file: Option<PathBuf>,
    /// The one-time account's name (with --secret-file).
    #[arg(long, value_name = "NAME", requires = "secret_file")]
    account: Option<String>,
    /// A file holding the one-time account's secret (one line).
    #[arg(long, value_name = "FILE", requires = "account")]
    secret_file: Option<PathBuf>,
    /// The BMC certificate's SHA-256 fingerprint (64 hex digits, colons
    /// allowed), as read from the BMC's own UI; overrides the facts file's.
    #[arg(long, value_name = "HEX")]
    bmc_fingerprint: Option<String>,
    /// The longest wait for any one reply, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    wait: u64,
    /// The heartbeat interval: PONG must come within it, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    heartbeat: u64,
    /// Connections opened at once by many-connections.
    #[arg(long, value_name = "N", default_value_t = 50)]
    flood: usize,
    /// Also write the report as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Also write the report as JUnit XML to FILE.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// List the checks and the rule each covers, and exit.
    #[arg(long)]
    list: bool,
    /// Run only these checks (see --list).
    #[arg(long, value_name = "CHECK", num_args = 1..)]
    only: Vec<String>,
    /// Checks that could not run do not fail the run.
    #[arg(long)]
    allow_skip: bool,
}

fn resolve(text: &str, default_port: u16) -> Result<(SocketAddr, bool), String> {
    let with_port = text.parse::<SocketAddr>().is_ok()
        || text
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.contains(':') && p.parse::<u16>().is_ok());
    let spec = if with_port {
        text.to_string()
    } else if text.contains(':') {
        format!("[{text}]:{default_port}")
    } else {
        format!("{text}:{default_port}")
    };
    let addr = spec
        .to_socket_addrs()
        .map_err(|e| format!("{text}: {e}"))?
        .next()
        .ok_or_else(|| format!("{text}: no address"))?;
    Ok((addr, with_port))
}

fn read_account(cli: &Cli) -> Result<Option<(String, Vec<u8>)>, String> {
    if let Some(path) = &cli.account_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut lines = text.lines();
        let (Some(name), Some(secret)) = (lines.next(), lines.next()) else {
            return Err(format!(
                "{}: expected the account name on line 1 and the secret on line 2",
                path.display()
            ));
        };
        return Ok(Some((name.to_string(), secret.as_bytes().to_vec())));
    }
    match (&cli.account, &cli.secret_file) {
        (Some(name), Some(path)) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let secret = text.lines().next().unwrap_or_default();
            if secret.is_empty() {
                return Err(format!("{}: the secret is empty", path.display()));
            }
            Ok(Some((name.clone(), secret.as_bytes().to_vec())))
        }
        _ => Ok(None),
    }
}

fn parse_fp(text: &str) -> Result<[u8; 32], String> {
    let clean: String = text.chars().filter(|c| *c != ':').collect();
    let mut out = [0u8; 32];
    hex::decode_to_slice(&clean, &mut out).map_err(|_| {
        format!("{text:?}: a SHA-256 fingerprint is 64 hex digits (colons allowed)")
    })?;
    Ok(out)
}

#[derive(serde::Deserialize)]
struct Facts {
    fingerprint: Option<String>,
    #[allow(dead_code)]
    firmware: Option<String>,
    tls: Option<bool>,
    #[allow(dead_code)]
    ipv6_usbnic: Option<bool>,
}

fn trust(cli: &Cli) -> Result<Trust, String> {
    let mut t = Trust {
        account: read_account(cli)?,
        ..Trust::default()
    };
    if let Some(path) = &cli.facts {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let f: Facts =
            toml::from_str(&text).map_err(|e| format!("{}: {}", path.display(), e.message()))?;
        t.firmware_tls = f.tls;
        if let Some(fp) = f.fingerprint {
            t.bmc_fp =
                Some(parse_fp(&fp).map_err(|e| format!("{}: fingerprint {e}", path.display()))?);
        }
    }
    if let Some(fp) = &cli.bmc_fingerprint {
        t.bmc_fp = Some(parse_fp(fp).map_err(|e| format!("--bmc-fingerprint {e}"))?);
    }
    Ok(t)
}

/// Opens the raw-frame link for --tap / --iface.
fn link(cli: &Cli) -> Result<Option<Link>, String> {
    let mac = match &cli.mac {
        Some(m) => frames::parse_mac(m).ok_or_else(|| {
            format!("--mac {m:?}: expected six hex bytes, e.g. 02:62:6c:00:00:02")
        })?,
        None => frames::local_mac(&mut rand_core::OsRng),
    };
    let clock = LinuxClock::start();
    let frames: Box<dyn bmclink_core::platform::Frames> = match (&cli.tap, &cli.iface) {
        (Some(t), _) => {
            Box::new(frames::TapFrames::open(t, mac, clock).map_err(|e| e.to_string())?)
        }
        (None, Some(i)) => {
            Box::new(frames::PacketFrames::open(i, mac, clock).map_err(|e| e.to_string())?)
        }
        (None, None) => return Ok(None),
    };
    let addrs = LinkAddrs {
        bmc_ipv4: Some(cli.bmc_ipv4),
        bmc_ipv6: cli.bmc_ipv6,
        host_ipv4: cli.host_ipv4,
    };
    Ok(Some(Link::new(frames, Box::new(clock), addrs)))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.list {
        for c in CHECKS {
            println!("{:<24} {:<26} {}", c.name, c.rule, c.what);
        }
        return ExitCode::SUCCESS;
    }
    for o in &cli.only {
        if checks::info(o).is_none() {
            eprintln!("bmclink-conform: no check named {o:?} (see --list)");
            return ExitCode::from(2);
        }
    }
    let setup = (|| -> Result<(Target, Trust, String, Option<Link>), String> {
        let mut name = Vec::new();
        let (tls, plain) = match &cli.connect {
            Some(text) => {
                let (tls, had_port) = resolve(text, 5443)?;
                let plain = match (&cli.plain, had_port) {
                    (Some(p), _) => Some(resolve(p, 5080)?.0),
                    (None, false) => Some(SocketAddr::new(tls.ip(), 5080)),
                    (None, true) => None,
                };
                name.push(format!("--connect {tls}"));
                (Some(tls), plain)
            }
            None => (None, None),
        };
        let link = link(&cli)?;
        if let Some(n) = cli.tap.as_ref().or(cli.iface.as_ref()) {
            name.insert(
                0,
                format!("--{} {n}", if cli.tap.is_some() { "tap" } else { "iface" }),
            );
        }
        let target = Target {
            tls,
            plain,
            no_link: "not run: --connect uses kernel sockets, the link layer is not visible (use --tap or --iface)",
        };
        Ok((target, trust(&cli)?, name.join(" "), link))
    })();
    let (target, trust, name, link) = match setup {
        Ok(s) => s,
        Err(e) => {
            eprintln!("bmclink-conform: {e}");
            return ExitCode::from(2);
        }
    };
    let opts = Options {
        wait: Duration::from_secs(cli.wait.max(1)),
        heartbeat: Duration::from_secs(cli.heartbeat.max(1)),
        flood: cli.flood,
    };
    println!("bmclink-conform {name}");
    println!("{}", report::row(None));
    let mut rig = Rig::new(target, trust, opts);
    if let Some(l) = link {
        rig = rig.with_link(l);
    }
    let outcomes = rig.run(&cli.only, |o| println!("{}", report::row(Some(o))));
    println!("{}", report::summary_line(&outcomes, cli.allow_skip));
    let mut code = if report::passed(&outcomes, cli.allow_skip) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    };
    for (path, text) in [
        (
            &cli.json,
            cli.json
                .as_ref()
                .map(|_| report::json(&name, &outcomes, cli.allow_skip)),
        ),
        (
            &cli.junit,
            cli.junit.as_ref().map(|_| report::junit(&name, &outcomes)),
        ),
    ] {
        if let (Some(path), Some(text)) = (path, text) {
            if let Err(e) = std::fs::write(path, text) {
                eprintln!("bmclink-conform: cannot write {}: {e}", path.display());
                code = ExitCode::from(2);
            }
        }
    }
    code
}
