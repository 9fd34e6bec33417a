//! What each subcommand does. Output goes to the given writer (stdout in the
//! binary, a buffer in tests); errors come back as [`Failure`]s with their
//! exit code.

use std::io::Write;
use std::path::{Path, PathBuf};

use bmclink_core::agent::identity;
use bmclink_core::agent::{Agent, AgentBuffers};
use bmclink_core::cert::{self, Expiry};
use bmclink_core::platform::{Clock, Record, Store, StoreError};
use bmclink_core::records::{BmcCapsRecord, LinkRecord, PinRecord};
use clap::CommandFactory;

use crate::bootstrap;
use crate::cli::{CertCommand, Cli, Command, Exit, Failure, LinkCommand, RunArgs};
use crate::config::{self, ShimConfig};
use crate::frames::{parse_mac, StopSignal};
use crate::hosts::HostsFile;
use crate::install;
use crate::platform::{self, Backend, LinuxPlatform};
use crate::status::{
    recent_from_json_lines, Layout, Observed, Recent, Status, Trust, RECENT_EVENTS,
};
use crate::store::FileStore;
use crate::time::rfc3339_utc;

fn out_err(e: std::io::Error) -> Failure {
    Failure::new(Exit::Runtime, format!("cannot write the output: {e}"))
}

/// Loads the config and applies the global flags.
pub fn resolve_config(cli: &Cli) -> Result<ShimConfig, Failure> {
    let mut cfg = config::load(cli.config.as_deref())
        .map_err(|e| Failure::new(Exit::Usage, e.to_string()))?;
    if let Some(dir) = &cli.state_dir {
        cfg.state_dir = dir.clone();
    }
    Ok(cfg)
}

/// Runs the parsed command line.
pub fn execute(cli: &Cli, out: &mut dyn Write) -> Result<(), Failure> {
    match &cli.command {
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "bmclink", out);
            Ok(())
        }
        // Section 8: bmclink is a system administration command in /usr/sbin.
        Command::Man => clap_mangen::Man::new(Cli::command())
            .section("8")
            .render(out)
            .map_err(out_err),
        Command::Run(args) => run(cli, args),
        Command::Install {
            repair,
            root,
            bmc_fingerprint,
            account,
            secret_file,
            package_mode,
            no_identity,
        } => {
            if *package_mode {
                return install_package(cli, root, !*no_identity, out);
            }
            let trust = InstallTrust {
                bmc_fingerprint: bmc_fingerprint.as_deref(),
                account: account.as_deref().zip(secret_file.as_deref()),
            };
            install(cli, *repair, root, &trust, out)
        }
        Command::Uninstall { root, package_mode } => uninstall(cli, root, *package_mode, out),
        Command::Status { json } => status(cli, *json, out),
        Command::Discover(args) => crate::discover::command(cli, args, out),
        Command::Link(LinkCommand::Show) => link_show(cli, out),
        Command::Link(LinkCommand::Reset) => link_reset(cli, out),
        Command::Cert(CertCommand::Show) => cert_show(cli, out),
        Command::Cert(CertCommand::Renew) => cert_renew(cli, out),
        Command::Bootstrap(cmd) => crate::ipmi::command::execute(cmd, out),
    }
}

/// The config for `run`, with the run flags applied, and the backend.
pub fn run_config(cli: &Cli, args: &RunArgs) -> Result<(ShimConfig, Backend), Failure> {
    let mut cfg = resolve_config(cli)?;
    if let Some(p) = &args.audit_log {
        cfg.audit_log = Some(p.clone());
    }
    if let Some(p) = &args.pcap {
        cfg.pcap = Some(p.clone());
    }
    if let Some(m) = &args.mac {
        cfg.mac = Some(parse_mac(m).ok_or_else(|| {
            Failure::new(
                Exit::Usage,
                format!("--mac {m}: must be a unicast MAC address like 02:00:00:00:00:01"),
            )
        })?);
    }
    // The real USB NIC only: TAP runs are test rigs.
    if args.tap.is_none() {
        crate::discover::apply_from_system(&mut cfg, args.iface.is_some());
    }
    let backend = if let Some(t) = &args.tap {
        Backend::Tap(
            config::interface_name("--tap", t)
                .map_err(|e| Failure::new(Exit::Usage, e.to_string()))?,
        )
    } else {
        let name = args.iface.clone().unwrap_or_else(|| cfg.interface.clone());
        Backend::Iface(
            config::interface_name("--iface", &name)
                .map_err(|e| Failure::new(Exit::Usage, e.to_string()))?,
        )
    };
    Ok((cfg, backend))
}

/// Builds the platform for `run` (the seam the agent wiring uses).
pub fn run_platform(cfg: &ShimConfig, backend: &Backend) -> Result<LinuxPlatform, Failure> {
    let stop = StopSignal::install().map_err(|e| {
        Failure::new(
            Exit::Runtime,
            format!("cannot install the SIGTERM handler: {e}"),
        )
    })?;
    // Under systemd stderr already goes to the journal, as syslog does.
    let foreground = std::env::var_os("JOURNAL_STREAM").is_none();
    platform::build(cfg, backend, Some(stop), foreground).map_err(platform_failure)
}

/// A refused `--pcap` or `--audit-log` (a symlink, another owner, ...) is
/// a configuration error, exit 2; anything else failing is exit 1.
fn platform_failure(e: platform::PlatformError) -> Failure {
    let exit = match &e {
        platform::PlatformError::Private(p) if p.is_refusal() => Exit::Usage,
        _ => Exit::Runtime,
    };
    Failure::new(exit, e.to_string())
}

/// Checks that every record present under the state directory reads and,
/// where the shim knows its format, decodes: a bad record stops `run` with
/// exit code 3 and the fix, before any session (never a silent reset).
pub fn check_state(store: &mut FileStore) -> Result<(), Failure> {
    let mut buf = vec![0u8; 4096];
    for record in Record::ALL {
        let Some(n) = store
            .load(record, &mut buf)
            .map_err(|e| state_failure(store, e))?
        else {
            continue;
        };
        let bytes = buf.get(..n).unwrap_or(&[]);
        let decodes = match record {
            Record::Link => LinkRecord::decode(bytes).is_ok(),
            Record::BmcPin => PinRecord::decode(bytes).is_ok(),
            Record::BmcCaps => BmcCapsRecord::decode(bytes).is_ok(),
            Record::IdentityKey | Record::IdentityCert => n > 0,
            // RFC 7217's secret: 256 bits, never replaced silently (BL5003).
            Record::StableSecret => n == STABLE_SECRET_LEN,
            Record::AdminFingerprint => n == 32,
        };
        if !decodes {
            return Err(state_failure(store, StoreError::Corrupt(record)));
        }
    }
    Ok(())
}

/// The length of `stable.secret` (the core's RFC 7217 secret).
const STABLE_SECRET_LEN: usize = 32;

/// `install --repair`: removes a `stable.secret` that is not 256 bits (the
/// agent keeps IPv6 off over it, BL5003), so the next run makes a new one.
/// A good secret is kept: the host's stable IPv6 address stays.
fn repair_stable_secret(store: &mut FileStore, out: &mut dyn Write) -> Result<(), Failure> {
    let mut buf = [0u8; STABLE_SECRET_LEN];
    let unusable = match store.load(Record::StableSecret, &mut buf) {
        Ok(None) => false,
        Ok(Some(n)) => n != STABLE_SECRET_LEN,
        Err(StoreError::TooLarge(_) | StoreError::Corrupt(_)) => true,
        Err(e) => return Err(state_failure(store, e)),
    };
    if !unusable {
        return Ok(());
    }
    store
        .erase(Record::StableSecret)
        .map_err(|e| state_failure(store, e))?;
    writeln!(
        out,
        "removed {}: it was not a 256-bit secret; the next run makes a new one (the host's stable IPv6 address changes)",
        store.path(Record::StableSecret).display()
    )
    .map_err(out_err)
}

fn run(cli: &Cli, args: &RunArgs) -> Result<(), Failure> {
    if args.sim {
        return Err(Failure::new(
            Exit::Usage,
            "--sim: the shipped bmclink does not carry the simulated BMC; \
             run `cargo xtask run --plain` in the source tree (the same plain-channel run)",
        ));
    }
    let (cfg, backend) = run_config(cli, args)?;
    crate::store::check_state_dir(&cfg.state_dir).map_err(|e| Failure::new(Exit::State, e))?;
    check_state(&mut FileStore::new(&cfg.state_dir))?;
    let mut platform = run_platform(&cfg, &backend)?;
    log::info!("platform ready: {platform:?}");
    // Also finishes a hosts-file update an earlier run left half done.
    if let Some(sink) = &mut platform.status {
        let r = sink.report.waiting();
        platform
            .after_publish(r)
            .map_err(|e| Failure::new(Exit::Runtime, e.to_string()))?;
    }
    let mut bufs = Box::new(AgentBuffers::new());
    let ended = match Agent::new(cfg.core.clone(), &mut bufs, &mut platform) {
        Ok(mut agent) => {
            let mut frame = [0; bmclink_core::platform::MAX_FRAME_LEN];
            bmclink_core::drive::run(&mut agent, &mut platform, &mut frame);
            Ok(())
        }
        Err(e) => Err(Failure::new(
            Exit::Usage,
            format!("the agent cannot start on the {backend}: {e:?}; pass a unicast --mac"),
        )),
    };
    if let Some(sink) = &mut platform.status {
        if let Err(e) = sink.report.stopped() {
            log::warn!("cannot remove the status file or the hosts block: {e}");
        }
    }
    ended
}

/// The platform `install` and `cert renew` work on: `cfg` with its state
/// directory under `root`.
fn offline_platform(cfg: &ShimConfig, root: &Path) -> Result<LinuxPlatform, Failure> {
    let cfg = ShimConfig {
        state_dir: install::under(root, &cfg.state_dir),
        ..cfg.clone()
    };
    let foreground = std::env::var_os("JOURNAL_STREAM").is_none();
    platform::offline(&cfg, foreground).map_err(platform_failure)
}

/// Reads `--secret-file` and checks the account for the account file.
fn read_account(name: &str, file: &Path) -> Result<(String, String), Failure> {
    let usage = |what: String| Failure::new(Exit::Usage, what);
    let data =
        std::fs::read(file).map_err(|e| usage(format!("--secret-file {}: {e}", file.display())))?;
    let secret = data.strip_suffix(b"\n").unwrap_or(&data);
    let secret = std::str::from_utf8(secret).map_err(|_| {
        usage(format!(
            "--secret-file {}: the secret must be text",
            file.display()
        ))
    })?;
    bootstrap::check_account(name, secret.as_bytes()).map_err(|why| {
        usage(format!(
            "--account {name:?} / --secret-file {}: {why}",
            file.display()
        ))
    })?;
    Ok((name.to_owned(), secret.to_owned()))
}

/// Writes `data` to `path` 0600 (created so, never through a symlink).
fn write_private(path: &Path, data: &[u8]) -> Result<(), String> {
    use std::io::Write as _;
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = crate::private_file::open_private(&tmp, crate::private_file::Existing::Truncate)
        .map_err(|e| e.to_string())?;
    let io = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    f.write_all(data).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// Makes a fresh identity (T2, T8, B4): key and self-signed certificate,
/// the BMC pin erased so the next `run` enrolls again. Prints what it made.
fn new_identity(
    p: &mut LinuxPlatform,
    common_name: &str,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let id = identity::reinstall(p, common_name).map_err(|e| identity_failure(&p.store, e))?;
    let now = p.clock.unix_time().unwrap_or(0);
    writeln!(
        out,
        "new client identity (P-256) for {common_name}: {}\n  {}\n  SHA-256 fingerprint: {}\n\
         the BMC pin is erased: the next `bmclink run` enrolls with the one-time account (`install --account`, or the bootstrap channel)",
        p.store.path(Record::IdentityCert).display(),
        validity(id.cert(), now),
        hex::encode(id.fingerprint()),
    )
    .map_err(out_err)
}

fn identity_failure(store: &FileStore, e: identity::IdentityError) -> Failure {
    match e {
        identity::IdentityError::Store(e) => state_failure(store, e),
        identity::IdentityError::Corrupt(r) => state_failure(store, StoreError::Corrupt(r)),
        identity::IdentityError::Cert(e) => Failure::new(
            Exit::Runtime,
            format!("cannot make the client certificate: {e:?}"),
        ),
    }
}

/// "valid from .. until .. (N days left)" for a DER certificate at `now`.
pub fn validity(der: &[u8], now: u64) -> String {
    let Ok(view) = cert::parse(der) else {
        return "validity: the certificate does not parse".to_owned();
    };
    let span = format!(
        "valid from {} until {}",
        rfc3339_utc(view.not_before, 0),
        rfc3339_utc(view.not_after, 0)
    );
    match Expiry::at(&view, now) {
        Expiry::Valid => format!(
            "{span} ({} days left)",
            view.not_after.saturating_sub(now) / 86_400
        ),
        Expiry::Expiring { days_left } => {
            format!("{span} ({days_left} days left: renew it with `bmclink cert renew`)")
        }
        Expiry::Expired { .. } => {
            format!("{span} (EXPIRED: no connection is attempted; run `bmclink cert renew`)")
        }
        Expiry::NotYetValid => {
            format!("{span} (not valid yet: check the system clock)")
        }
    }
}

/// The trust sources `install` was given (DESIGN §5a).
struct InstallTrust<'a> {
    bmc_fingerprint: Option<&'a str>,
    account: Option<(&'a str, &'a Path)>,
}

fn install(
    cli: &Cli,
    repair: bool,
    root: &Path,
    trust: &InstallTrust<'_>,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let mut cfg = resolve_config(cli)?;
    // Checked before anything is written.
    let fingerprint = trust
        .bmc_fingerprint
        .map(|text| {
            bootstrap::parse_fingerprint(text).ok_or_else(|| {
                Failure::new(
                    Exit::Usage,
                    format!(
                        "--bmc-fingerprint {text:?}: must be a SHA-256 fingerprint, 64 hex digits (colons allowed)"
                    ),
                )
            })
        })
        .transpose()?;
    let account = trust
        .account
        .map(|(name, file)| read_account(name, file))
        .transpose()?;
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/usr/sbin/bmclink"));
    // An image built under --root is for another machine: its BMC is not
    // this host's, so type 42 is read for the real root only.
    let applied = (root == Path::new("/"))
        .then(|| crate::discover::apply_from_system(&mut cfg, false))
        .flatten();
    let usb = applied
        .as_ref()
        .map(|a| a.usb_ids.value)
        .unwrap_or(crate::discover::DEFAULT_USB_IDS);
    let changes = install::install_files_matching(root, &cfg.state_dir, &exe, &cfg.interface, usb)
        .map_err(|e| {
            Failure::new(
                Exit::Runtime,
                format!("{e}; run as root, or pass --root DIR"),
            )
        })?;
    for p in &changes.written {
        writeln!(out, "wrote {}", p.display()).map_err(out_err)?;
    }
    catalog_compiled(root, out)?;
    if let Some(a) = &applied {
        writeln!(
            out,
            "the udev rule matches USB {:04x}:{:04x} ({}), the unit runs on {} ({}); `bmclink discover` says why",
            usb.0,
            usb.1,
            a.usb_ids.source.text(),
            cfg.interface,
            a.interface.source.text()
        )
        .map_err(out_err)?;
    }
    let mut p = offline_platform(&cfg, root)?;
    if repair {
        writeln!(
            out,
            "repair: a new identity replaces the old one; the link record is kept"
        )
        .map_err(out_err)?;
        repair_stable_secret(&mut p.store, out)?;
    }
    new_identity(&mut p, cfg.core.hostname, out)?;
    if let Some(fp) = fingerprint {
        p.store
            .save(Record::AdminFingerprint, &fp)
            .map_err(|e| state_failure(&p.store, e))?;
        writeln!(
            out,
            "BMC fingerprint {} saved: enrollment talks only to that certificate",
            hex::encode(fp)
        )
        .map_err(out_err)?;
    }
    if let Some((name, secret)) = account {
        let path = cfg
            .credential
            .as_ref()
            .map(|c| install::under(root, c))
            .unwrap_or_else(|| install::under(root, &cfg.state_dir).join(bootstrap::ACCOUNT_FILE));
        write_private(
            &path,
            bootstrap::account_file_text(&name, &secret).as_bytes(),
        )
        .map_err(|e| Failure::new(Exit::Runtime, e))?;
        writeln!(
            out,
            "one-time account {name} saved in {} (0600) until the agent has enrolled with it",
            path.display()
        )
        .map_err(out_err)?;
    }
    let source = crate::ipmi::BootstrapSource::for_host(&cfg);
    writeln!(out, "bootstrap (trust source): {}", source.describe()).map_err(out_err)?;
    if root == Path::new("/") {
        writeln!(
            out,
            "to activate: systemctl daemon-reload && udevadm control --reload"
        )
        .map_err(out_err)?;
    }
    Ok(())
}

/// `install --package-mode` (the package's postinst): the state directory
/// (0700) and, with `identity`, a client identity when there is none. The
/// package ships the unit and the rule; an existing identity, pin and link
/// record are kept. A corrupt identity is named, kept and not fatal (the
/// agent audits it too): a failing postinst would leave the package
/// half-configured over a state the administrator has to repair anyway.
fn install_package(
    cli: &Cli,
    root: &Path,
    identity: bool,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let cfg = resolve_config(cli)?;
    let state = install::under(root, &cfg.state_dir);
    crate::store::create_state_dir(&state).map_err(|e| {
        Failure::new(
            Exit::Runtime,
            format!(
                "cannot create the state directory {}: {e}; run as root, or pass --root DIR",
                state.display()
            ),
        )
    })?;
    writeln!(out, "state directory {} (0700)", state.display()).map_err(out_err)?;
    if !identity {
        return writeln!(
            out,
            "no client identity made here: the agent makes one on its first run on each machine"
        )
        .map_err(out_err);
    }
    let mut p = offline_platform(&cfg, root)?;
    match identity::ClientIdentity::load(&mut p) {
        Ok(Some(id)) => writeln!(
            out,
            "client identity kept: SHA-256 fingerprint {}",
            hex::encode(id.fingerprint())
        )
        .map_err(out_err),
        Ok(None) => new_identity(&mut p, cfg.core.hostname, out),
        Err(e) => writeln!(
            out,
            "the client identity is unusable and was kept: {}",
            identity_failure(&p.store, e).message
        )
        .map_err(out_err),
    }
}

fn cert_renew(cli: &Cli, out: &mut dyn Write) -> Result<(), Failure> {
    let cfg = resolve_config(cli)?;
    require_installed(&cfg)?;
    let mut p = offline_platform(&cfg, Path::new("/"))?;
    new_identity(&mut p, cfg.core.hostname, out)?;
    writeln!(
        out,
        "restart the agent to use it: systemctl restart bmclink"
    )
    .map_err(out_err)
}

/// Compiles the journal catalogs under `root` (best effort: the catalog
/// file is in place either way; the message says what is left to do).
fn catalog_compiled(root: &Path, out: &mut dyn Write) -> Result<(), Failure> {
    let said = match install::update_catalog(root) {
        Ok(true) => "compiled the journal catalog (journalctl --update-catalog)".to_owned(),
        Ok(false) => {
            "no journalctl here: run `journalctl --update-catalog` where journald runs".to_owned()
        }
        Err(e) => format!("{e}; run `journalctl --update-catalog` later"),
    };
    writeln!(out, "{said}").map_err(out_err)
}

fn uninstall(
    cli: &Cli,
    root: &Path,
    package_mode: bool,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let cfg = resolve_config(cli)?;
    // The block first: its removal may finish through the journal in the
    // state directory, which goes next.
    let hosts = install::under(root, &cfg.hosts_file);
    let state = install::under(root, &cfg.state_dir);
    HostsFile::new(&hosts)
        .with_journal(state.join(platform::HOSTS_JOURNAL))
        .remove()
        .map_err(|e| {
            Failure::new(
                Exit::Runtime,
                format!(
                    "cannot remove the bmclink block from {}: {e}",
                    hosts.display()
                ),
            )
        })?;
    let removed = if package_mode {
        install::uninstall_package_files(root, &cfg.state_dir)
    } else {
        install::uninstall_files(root, &cfg.state_dir)
    };
    let changes = removed.map_err(|e| {
        Failure::new(
            Exit::Runtime,
            format!("{e}; run as root, or pass --root DIR"),
        )
    })?;
    for p in &changes.removed {
        writeln!(out, "removed {}", p.display()).map_err(out_err)?;
    }
    if !changes.removed.is_empty() {
        catalog_compiled(root, out)?;
    }
    if package_mode {
        writeln!(
            out,
            "the records under {} are kept until the package is purged",
            install::under(root, &cfg.state_dir).display()
        )
        .map_err(out_err)?;
    } else if changes.removed.is_empty() {
        writeln!(out, "bmclink was not installed; nothing to remove").map_err(out_err)?;
    }
    Ok(())
}

fn require_installed(cfg: &ShimConfig) -> Result<(), Failure> {
    if cfg.state_dir.is_dir() {
        return Ok(());
    }
    Err(Failure::new(
        Exit::NotInstalled,
        format!(
            "bmclink is not installed: {} does not exist; run `bmclink install`",
            cfg.state_dir.display()
        ),
    ))
}

#[derive(serde::Serialize)]
struct StatusReport<'a> {
    running: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stale_pid: Option<u32>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    status: Option<&'a Status>,
}

fn status(cli: &Cli, json: bool, out: &mut dyn Write) -> Result<(), Failure> {
    let cfg = resolve_config(cli)?;
    require_installed(&cfg)?;
    let observed =
        Status::observe(&cfg.state_dir).map_err(|e| Failure::new(Exit::State, e.to_string()))?;
    if json {
        let report = match &observed {
            Observed::NotRunning => StatusReport {
                running: false,
                stale_pid: None,
                status: None,
            },
            Observed::Stale(s) => StatusReport {
                running: false,
                stale_pid: Some(s.pid),
                status: None,
            },
            Observed::Running(s) => StatusReport {
                running: true,
                stale_pid: None,
                status: Some(s),
            },
        };
        let j = serde_json::to_string_pretty(&report)
            .map_err(|e| Failure::new(Exit::Runtime, e.to_string()))?;
        return writeln!(out, "{j}").map_err(out_err);
    }
    let trust = trust_source(&cfg);
    let recent = recent_events(&cfg);
    let layout = Layout {
        observed: &observed,
        ports: (cfg.core.tls_port, cfg.core.plain_port),
        trust: &trust,
        state_dir: &cfg.state_dir,
        recent: &recent,
    };
    write!(out, "{}", layout.render()).map_err(out_err)
}

/// The trust source the state directory holds (DESIGN §5a): the pin, the
/// administrator's fingerprint, the one-time account, the bootstrap channel.
fn trust_source(cfg: &ShimConfig) -> Trust {
    let mut store = FileStore::new(&cfg.state_dir);
    let mut buf = [0u8; 64];
    let (pin, pin_unreadable) = match store.load(Record::BmcPin, &mut buf) {
        Ok(None) => (None, false),
        Ok(Some(n)) => match PinRecord::decode(buf.get(..n).unwrap_or(&[])) {
            Ok(p) => (Some(p.sha256), false),
            Err(_) => (None, true),
        },
        Err(_) => (None, true),
    };
    let admin_fingerprint = match store.load(Record::AdminFingerprint, &mut buf) {
        Ok(Some(32)) => buf.get(..32).and_then(|b| b.try_into().ok()),
        _ => None,
    };
    let account_file = cfg
        .credential
        .clone()
        .unwrap_or_else(|| cfg.state_dir.join(bootstrap::ACCOUNT_FILE));
    // The name only (the first line); the secret is never read here.
    let account = std::fs::read_to_string(&account_file)
        .ok()
        .and_then(|t| t.lines().next().map(str::to_owned))
        .filter(|n| !n.is_empty());
    Trust {
        pin,
        pin_unreadable,
        admin_fingerprint,
        account,
        bootstrap: crate::ipmi::BootstrapSource::for_host(cfg).describe(),
    }
}

/// The last audit events: from the JSON-lines audit log when one is
/// configured, else from the journal (`journalctl -t bmclink`) when it
/// answers.
fn recent_events(cfg: &ShimConfig) -> Recent {
    if let Some(path) = &cfg.audit_log {
        return Recent {
            source: Some(path.display().to_string()),
            lines: std::fs::read_to_string(path)
                .map(|t| recent_from_json_lines(&t, RECENT_EVENTS))
                .unwrap_or_default(),
        };
    }
    let journal = std::process::Command::new("journalctl")
        .args([
            "-t",
            "bmclink",
            "-n",
            "5",
            "-o",
            "short-iso",
            "-q",
            "--no-pager",
        ])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output();
    match journal {
        Ok(o) if o.status.success() && !o.stdout.is_empty() => Recent {
            source: Some("journalctl -t bmclink".to_owned()),
            lines: String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::to_owned)
                .collect(),
        },
        // No journal here, or nothing in it: the layout says where to look.
        _ => Recent::default(),
    }
}

fn state_failure(store: &FileStore, e: StoreError) -> Failure {
    Failure::new(Exit::State, store.describe(e))
}

fn link_show(cli: &Cli, out: &mut dyn Write) -> Result<(), Failure> {
    let cfg = resolve_config(cli)?;
    require_installed(&cfg)?;
    let mut store = FileStore::new(&cfg.state_dir);
    let mut buf = [0u8; 64];
    let text = match store
        .load(Record::Link, &mut buf)
        .map_err(|e| state_failure(&store, e))?
    {
        None => {
            "no link record: bmclink has not configured the host side of the USB NIC yet".to_owned()
        }
        Some(n) => {
            let rec = LinkRecord::decode(buf.get(..n).unwrap_or(&[]))
                .map_err(|_| state_failure(&store, StoreError::Corrupt(Record::Link)))?;
            format!(
                "link record {}: the host side of the USB NIC was configured once, with {}\n\
                 bmclink will not configure it again; `bmclink link reset` erases the record",
                store.path(Record::Link).display(),
                rec.ipv4
            )
        }
    };
    writeln!(out, "{text}").map_err(out_err)
}

fn link_reset(cli: &Cli, out: &mut dyn Write) -> Result<(), Failure> {
    let cfg = resolve_config(cli)?;
    require_installed(&cfg)?;
    let mut store = FileStore::new(&cfg.state_dir);
    let path = store.path(Record::Link);
    let existed = path.exists();
    store
        .erase(Record::Link)
        .map_err(|e| state_failure(&store, e))?;
    let text = if existed {
        format!(
            "erased the link record {}: the next `bmclink run` configures the host side of the USB NIC again \
             (restart the service if it is running: systemctl restart bmclink)",
            path.display()
        )
    } else {
        format!(
            "there was no link record ({}); nothing to erase",
            path.display()
        )
    };
    writeln!(out, "{text}").map_err(out_err)
}

fn cert_show(cli: &Cli, out: &mut dyn Write) -> Result<(), Failure> {
    let cfg = resolve_config(cli)?;
    require_installed(&cfg)?;
    let mut store = FileStore::new(&cfg.state_dir);
    let mut der = vec![0u8; 4096];
    let Some(n) = store
        .load(Record::IdentityCert, &mut der)
        .map_err(|e| state_failure(&store, e))?
    else {
        return Err(Failure::new(
            Exit::NotInstalled,
            format!(
                "no client certificate at {}; run `bmclink install`",
                store.path(Record::IdentityCert).display()
            ),
        ));
    };
    der.truncate(n);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let subject = cert::parse(&der)
        .ok()
        .and_then(|v| v.common_name())
        .unwrap_or("?")
        .to_owned();
    let mut text = format!(
        "client certificate {} ({n} bytes DER), CN {subject}\n  SHA-256 fingerprint: {}\n  {}\n",
        store.path(Record::IdentityCert).display(),
        hex::encode(cert::fingerprint(&der)),
        validity(&der, now)
    );
    let mut pin = [0u8; 64];
    match store
        .load(Record::BmcPin, &mut pin)
        .map_err(|e| state_failure(&store, e))?
    {
        None => text.push_str("BMC certificate: not pinned (not enrolled yet)\n"),
        Some(n) => {
            let p = PinRecord::decode(pin.get(..n).unwrap_or(&[]))
                .map_err(|_| state_failure(&store, StoreError::Corrupt(Record::BmcPin)))?;
            text.push_str(&format!(
                "BMC certificate pinned, SHA-256 fingerprint: {}\n",
                hex::encode(p.sha256)
            ));
        }
    }
    write!(out, "{text}").map_err(out_err)
}
