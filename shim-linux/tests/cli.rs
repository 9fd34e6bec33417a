//! The subcommands end to end through `commands::execute`, and the binary's
//! exit codes and stderr through the built `bmclink`.

use std::path::PathBuf;

use bmclink_core::platform::{Record, Store};
use bmclink_core::records::{BmcCapsRecord, LinkRecord, PinRecord};
use bmclink_linux::cli::{Cli, Command, Exit, Failure};
use bmclink_linux::commands::{check_state, execute, run_config};
use bmclink_linux::platform::Backend;
use bmclink_linux::status::Status;
use bmclink_linux::store::FileStore;
use sha2::{Digest, Sha256};

use clap::Parser;
use std::fs;
use std::net::Ipv4Addr;

struct Rig {
    _t: tempfile::TempDir,
    state: PathBuf,
    config: PathBuf,
}

fn rig() -> Rig {
    let t = tempfile::tempdir().unwrap();
    let state = t.path().join("state");
    let config = t.path().join("bmclink.toml");
    fs::write(
        &config,
        format!(
            "state_dir = \"{}\"\nhosts_file = \"{}\"\n",
            state.display(),
            t.path().join("hosts").display()
        ),
    )
    .unwrap();
    Rig {
        _t: t,
        state,
        config,
    }
}

fn exec(rig: &Rig, args: &[&str]) -> (Result<(), Failure>, String) {
    let mut argv = vec!["bmclink", "--config", rig.config.to_str().unwrap()];
    argv.extend_from_slice(args);
    let cli = Cli::try_parse_from(argv).unwrap();
    let mut out = Vec::new();
    let r = execute(&cli, &mut out);
    (r, String::from_utf8(out).unwrap())
}

fn code(r: &Result<(), Failure>) -> i32 {
    r.as_ref().map(|()| 0).unwrap_or_else(|f| f.exit as i32)
}

#[test]
fn commands_on_a_missing_state_dir_say_not_installed_with_code_4() {
    let rig = rig();
    for args in [
        &["status"][..],
        &["link", "show"],
        &["link", "reset"],
        &["cert", "show"],
    ] {
        let (r, _) = exec(&rig, args);
        assert_eq!(code(&r), 4, "{args:?}");
        assert!(r.unwrap_err().message.contains("run `bmclink install`"));
    }
}

#[test]
fn status_prints_not_running_when_there_is_no_status_file() {
    let rig = rig();
    fs::create_dir_all(&rig.state).unwrap();
    let (r, out) = exec(&rig, &["status"]);
    assert_eq!(code(&r), 0);
    assert!(
        out.starts_with("○ bmclink\n          State: not running\n          Trust: "),
        "{out}"
    );
    let (r, out) = exec(&rig, &["status", "--json"]);
    assert_eq!(code(&r), 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["running"], false);
}

#[test]
fn status_json_reports_the_running_session() {
    let rig = rig();
    fs::create_dir_all(&rig.state).unwrap();
    let s = Status {
        pid: std::process::id(),
        family: Some("IPv4".into()),
        channel: Some("TLS 1.3".into()),
        tls_version: Some("TLSv1.3".into()),
        bmc_firmware: Some("3.30.30.30".into()),
        features: vec![],
        addresses: Default::default(),
        since: "2026-11-21T10:00:00.000Z".into(),
        trust: Some("enrollment-account".into()),
        bootstrap: Some("IPMI (DSP0270 over the kernel's IPMI device)".into()),
    };
    s.write(&rig.state).unwrap();
    let (r, out) = exec(&rig, &["status", "--json"]);
    assert_eq!(code(&r), 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["running"], true);
    assert_eq!(v["family"], "IPv4");
    assert_eq!(v["bmc_firmware"], "3.30.30.30");
    assert_eq!(v["trust"], "enrollment-account");
    assert_eq!(
        v["bootstrap"],
        "IPMI (DSP0270 over the kernel's IPMI device)"
    );
}

#[test]
fn link_show_decodes_the_record_and_reset_erases_it() {
    let rig = rig();
    let mut store = FileStore::new(&rig.state);
    let rec = LinkRecord {
        ipv4: Ipv4Addr::new(169, 254, 1, 2),
    };
    store.save(Record::Link, &rec.encode()).unwrap();
    let (r, out) = exec(&rig, &["link", "show"]);
    assert_eq!(code(&r), 0);
    assert!(out.contains("configured once, with 169.254.1.2"), "{out}");
    let (r, out) = exec(&rig, &["link", "reset"]);
    assert_eq!(code(&r), 0);
    assert!(out.starts_with("erased the link record"), "{out}");
    assert!(!store.path(Record::Link).exists());
    let (_, out) = exec(&rig, &["link", "show"]);
    assert!(out.starts_with("no link record"), "{out}");
    let (r, out) = exec(&rig, &["link", "reset"]);
    assert_eq!(code(&r), 0);
    assert!(out.starts_with("there was no link record"), "{out}");
}

#[test]
fn a_corrupt_link_record_is_a_state_error_naming_file_and_fix() {
    let rig = rig();
    FileStore::new(&rig.state)
        .save(Record::Link, b"garbage")
        .unwrap();
    let (r, _) = exec(&rig, &["link", "show"]);
    assert_eq!(code(&r), 3);
    let m = r.unwrap_err().message;
    assert!(
        m.contains(&rig.state.join("link").display().to_string())
            && m.contains("bmclink link reset"),
        "{m}"
    );
}

#[test]
fn run_stops_with_code_3_on_a_corrupt_record_before_opening_a_device() {
    let rig = rig();
    let mut store = FileStore::new(&rig.state);
    assert!(check_state(&mut store).is_ok(), "no state is fine");
    store
        .save(
            Record::BmcCaps,
            &BmcCapsRecord {
                firmware: [3, 0, 0, 1],
                caps: 1,
            }
            .encode(),
        )
        .unwrap();
    store
        .save(Record::BmcPin, &PinRecord { sha256: [1; 32] }.encode())
        .unwrap();
    assert!(check_state(&mut store).is_ok());
    store.save(Record::BmcPin, b"P\x01short").unwrap();
    let (r, _) = exec(&rig, &["run", "--tap", "blnever0"]);
    assert_eq!(code(&r), 3);
    let m = r.unwrap_err().message;
    assert!(
        m.contains("bmc.pin is corrupt") && m.contains("install --repair"),
        "{m}"
    );
}

fn fingerprint_line(out: &str) -> String {
    out.lines()
        .find_map(|l| l.trim().strip_prefix("SHA-256 fingerprint: "))
        .unwrap_or_else(|| panic!("no fingerprint in {out}"))
        .to_owned()
}

#[test]
fn cert_show_names_a_certificate_that_does_not_parse_and_the_pin() {
    let rig = rig();
    let mut store = FileStore::new(&rig.state);
    store.save(Record::IdentityCert, b"not really DER").unwrap();
    store
        .save(Record::BmcPin, &PinRecord { sha256: [0xab; 32] }.encode())
        .unwrap();
    let (r, out) = exec(&rig, &["cert", "show"]);
    assert_eq!(code(&r), 0);
    assert!(
        out.contains(&hex::encode(Sha256::digest(b"not really DER"))),
        "{out}"
    );
    assert!(out.contains("does not parse"), "{out}");
    assert!(out.contains(&"ab".repeat(32)), "{out}");
}

#[test]
fn cert_renew_makes_a_fresh_ten_year_identity_erases_the_pin_and_audits_bl4010() {
    let rig = rig();
    let audit = rig.state.with_file_name("audit.jsonl");
    let mut cfg = fs::read_to_string(&rig.config).unwrap();
    cfg.push_str(&format!("audit_log = \"{}\"\n", audit.display()));
    fs::write(&rig.config, cfg).unwrap();
    let mut store = FileStore::new(&rig.state);
    store
        .save(Record::BmcPin, &PinRecord { sha256: [0xab; 32] }.encode())
        .unwrap();
    let link = LinkRecord {
        ipv4: Ipv4Addr::new(169, 254, 1, 2),
    };
    store.save(Record::Link, &link.encode()).unwrap();

    let (r, out) = exec(&rig, &["cert", "renew"]);
    assert_eq!(code(&r), 0, "{r:?}");
    let first = fingerprint_line(&out);
    let (r, shown) = exec(&rig, &["cert", "show"]);
    assert_eq!(code(&r), 0);
    assert_eq!(fingerprint_line(&shown), first);
    assert!(
        shown.contains("3652 days left") || shown.contains("3653 days left"),
        "{shown}"
    );
    assert!(shown.contains("not pinned"), "{shown}");
    assert!(fs::read_to_string(&audit).unwrap().contains("BL4010"));

    let (r, out) = exec(&rig, &["cert", "renew"]);
    assert_eq!(code(&r), 0);
    assert_ne!(fingerprint_line(&out), first, "renewal reused the identity");
    let mut buf = [0u8; 64];
    let n = store.load(Record::Link, &mut buf).unwrap().unwrap();
    assert_eq!(LinkRecord::decode(&buf[..n]).unwrap(), link);
}

#[test]
fn a_bad_config_value_is_a_usage_error() {
    let rig = rig();
    fs::write(&rig.config, "bmc_ipv4 = \"10.0.0.1\"\n").unwrap();
    let (r, _) = exec(&rig, &["status"]);
    assert_eq!(code(&r), 2);
    assert_eq!(
        r.unwrap_err().message,
        "bmc_ipv4 = 10.0.0.1: must be an IPv4 link-local address (169.254.0.0/16)"
    );
}

#[test]
fn install_under_a_root_writes_files_and_an_identity_and_repair_keeps_the_link_record() {
    let rig = rig();
    let root = rig.config.parent().unwrap().join("root");
    let root_s = root.to_str().unwrap();
    let (r, out) = exec(&rig, &["install", "--root", root_s]);
    assert_eq!(code(&r), 0, "{r:?}");
    assert!(
        out.contains("70-bmclink.rules") && out.contains("bmclink.service"),
        "{out}"
    );
    let first = fingerprint_line(&out);
    let state = root.join(rig.state.strip_prefix("/").unwrap());
    let mut store = FileStore::new(&state);
    let link = LinkRecord {
        ipv4: Ipv4Addr::new(169, 254, 7, 9),
    };
    store.save(Record::Link, &link.encode()).unwrap();

    let (r, out) = exec(&rig, &["install", "--repair", "--root", root_s]);
    assert_eq!(code(&r), 0, "{r:?}");
    assert_ne!(
        fingerprint_line(&out),
        first,
        "T8: repair makes a new identity"
    );
    let mut buf = [0u8; 64];
    let n = store.load(Record::Link, &mut buf).unwrap().unwrap();
    assert_eq!(LinkRecord::decode(&buf[..n]).unwrap(), link);

    let (r, out) = exec(&rig, &["uninstall", "--root", root_s]);
    assert_eq!(code(&r), 0);
    assert!(out.contains("removed"), "{out}");
    assert!(
        !store.path(Record::IdentityCert).exists(),
        "uninstall left the identity behind"
    );
}

#[test]
fn completions_and_man_page_are_generated() {
    let rig = rig();
    let (r, out) = exec(&rig, &["completions", "bash"]);
    assert_eq!(code(&r), 0);
    assert!(out.contains("bmclink") && out.contains("link"));
    let (r, out) = exec(&rig, &["man"]);
    assert_eq!(code(&r), 0);
    assert!(
        out.contains(".TH bmclink"),
        "{}",
        &out[..200.min(out.len())]
    );
}

#[test]
fn run_flags_override_the_config_file() {
    let rig = rig();
    fs::write(
        &rig.config,
        "interface = \"usb0\"\npcap = \"/tmp/a.pcap\"\n",
    )
    .unwrap();
    let cli = Cli::try_parse_from([
        "bmclink",
        "--config",
        rig.config.to_str().unwrap(),
        "run",
        "--pcap",
        "/tmp/b.pcap",
    ])
    .unwrap();
    let Command::Run(args) = &cli.command else {
        panic!()
    };
    let (cfg, backend) = run_config(&cli, args).unwrap();
    assert_eq!(backend, Backend::Iface("usb0".into()));
    assert_eq!(cfg.pcap, Some(PathBuf::from("/tmp/b.pcap")));
    let cli = Cli::try_parse_from(["bmclink", "run", "--tap", "x/y"]).unwrap();
    let Command::Run(args) = &cli.command else {
        panic!()
    };
    let e = run_config(&cli, args).unwrap_err();
    assert_eq!(e.exit, Exit::Usage);
}

fn bmclink(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bmclink"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn the_binary_exits_with_the_documented_codes_and_one_sentence_on_stderr() {
    let rig = rig();
    let cfg = rig.config.to_str().unwrap();
    let (c, out, _) = bmclink(&["--help"]);
    assert_eq!(c, 0);
    assert!(out.contains("Exit codes: 0 ok"));
    let (c, _, err) = bmclink(&["--config", cfg, "status"]);
    assert_eq!(c, 4);
    assert!(
        err.starts_with("bmclink: bmclink is not installed"),
        "{err}"
    );
    let (c, _, err) = bmclink(&["--config", cfg, "nonsense"]);
    assert_eq!(c, 2, "{err}");
    std::fs::write(&rig.config, "tls_port = 0\n").unwrap();
    let (c, _, err) = bmclink(&["--config", cfg, "status"]);
    assert_eq!(c, 2);
    assert_eq!(
        err,
        "bmclink: tls_port = 0: must be a TCP port, 1 to 65535\n"
    );
    let (c, _, err) = bmclink(&["--config", "/nonexistent.toml", "link", "show"]);
    assert_eq!(c, 2);
    assert!(
        err.contains("cannot read the config file /nonexistent.toml"),
        "{err}"
    );
}

// Issue 12 item 7: the files a local user could aim at.

#[test]
fn run_refuses_a_symlinked_pcap_or_audit_log_with_code_2_before_any_device() {
    let rig = rig();
    let cfg = rig.config.to_str().unwrap();
    let dir = rig.config.parent().unwrap();
    let victim = dir.join("victim");
    fs::write(&victim, "keep me\n").unwrap();
    for flag in ["--pcap", "--audit-log"] {
        let link = dir.join(format!("link{flag}"));
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        // The interface does not exist: a run that got past the file check
        // would fail on it with code 1 (root or not).
        let (c, _, err) = bmclink(&[
            "--config",
            cfg,
            "run",
            "--iface",
            "blnope0",
            flag,
            link.to_str().unwrap(),
        ]);
        assert_eq!(c, 2, "{flag}: {err}");
        assert!(err.contains("is a symbolic link"), "{flag}: {err}");
        assert!(err.contains(link.to_str().unwrap()), "{flag}: {err}");
        assert_eq!(fs::read_to_string(&victim).unwrap(), "keep me\n");
    }
}

#[test]
fn run_creates_the_pcap_and_audit_log_0600_under_a_permissive_umask() {
    use std::os::unix::fs::PermissionsExt;
    let rig = rig();
    let dir = rig.config.parent().unwrap();
    let (pcap, log) = (dir.join("cap.pcap"), dir.join("audit.jsonl"));
    fs::write(&log, "").unwrap();
    fs::set_permissions(&log, fs::Permissions::from_mode(0o666)).unwrap();
    // umask 0 through a shell: the files must still be 0600.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "umask 0; exec '{}' --config '{}' run --iface blnope0 --pcap '{}' --audit-log '{}'",
            env!("CARGO_BIN_EXE_bmclink"),
            rig.config.display(),
            pcap.display(),
            log.display()
        ))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    // The interface is missing (or, not root, cannot be opened): code 1 after
    // the files were opened.
    assert_eq!(out.status.code(), Some(1), "{err}");
    for p in [&pcap, &log] {
        let mode = fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", p.display());
    }
}

#[test]
fn run_refuses_a_group_or_world_writable_state_dir_with_code_3_and_the_fix() {
    use std::os::unix::fs::PermissionsExt;
    let rig = rig();
    fs::create_dir(&rig.state).unwrap();
    fs::set_permissions(&rig.state, fs::Permissions::from_mode(0o777)).unwrap();
    let cfg = rig.config.to_str().unwrap();
    let (c, _, err) = bmclink(&["--config", cfg, "run", "--iface", "blnope0"]);
    assert_eq!(c, 3, "{err}");
    let d = rig.state.display();
    assert!(err.contains("group or world writable (mode 0777)"), "{err}");
    assert!(err.contains(&format!("chmod 0700 {d}`")), "{err}");
    // Fixed as told, the run gets past the check (to the missing interface).
    fs::set_permissions(&rig.state, fs::Permissions::from_mode(0o700)).unwrap();
    let (c, _, err) = bmclink(&["--config", cfg, "run", "--iface", "blnope0"]);
    assert_eq!(c, 1, "{err}");
}

#[test]
fn run_refuses_a_state_dir_owned_by_another_user_with_code_3() {
    if !nix::unistd::geteuid().is_root() {
        assert!(
            std::env::var("BMCLINK_REQUIRE_ROOT").as_deref() != Ok("1"),
            "BMCLINK_REQUIRE_ROOT=1 but not root"
        );
        eprintln!("skipping: needs root to chown the state directory (BMCLINK_REQUIRE_ROOT=1 makes this a failure)");
        return;
    }
    let rig = rig();
    fs::create_dir(&rig.state).unwrap();
    std::os::unix::fs::chown(&rig.state, Some(65534), Some(65534)).unwrap();
    let cfg = rig.config.to_str().unwrap();
    let (c, _, err) = bmclink(&["--config", cfg, "run", "--iface", "blnope0"]);
    assert_eq!(c, 3, "{err}");
    let d = rig.state.display();
    assert!(err.contains("owned by uid 65534, not root"), "{err}");
    assert!(
        err.contains(&format!("`chown root:root {d} && chmod 0700 {d}`")),
        "{err}"
    );
}

#[test]
fn uninstall_leaves_a_hosts_file_with_an_unterminated_block_unchanged() {
    let rig = rig();
    let root = rig.config.parent().unwrap().join("root");
    // The configured hosts file, re-rooted under --root as uninstall does.
    let configured = rig.config.with_file_name("hosts");
    let hosts = root.join(configured.strip_prefix("/").unwrap());
    fs::create_dir_all(hosts.parent().unwrap()).unwrap();
    let text = "127.0.0.1 localhost\n# BEGIN bmclink\n10.0.0.5 db\n10.0.0.6 web\n";
    fs::write(&hosts, text).unwrap();
    let (r, _) = exec(&rig, &["uninstall", "--root", root.to_str().unwrap()]);
    let f = r.unwrap_err();
    assert_eq!(f.exit, Exit::Runtime);
    assert!(f.message.contains("line 2"), "{}", f.message);
    assert!(f.message.contains("left unchanged"), "{}", f.message);
    assert_eq!(fs::read_to_string(&hosts).unwrap(), text);
}
