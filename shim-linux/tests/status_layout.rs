//! `bmclink status`'s human layout end to end (issue 19 item 6) on a
//! fixture state directory; the state check and `install --repair` on a
//! `stable.secret` of the wrong length; and `run --sim`, which the shipped
//! binary no longer carries (issue 14 item 6).

use std::fs;
use std::path::PathBuf;

use bmclink_core::platform::{Record, Store};
use bmclink_core::records::PinRecord;
use bmclink_linux::cli::{Cli, Failure};
use bmclink_linux::commands::execute;
use bmclink_linux::status::{Addresses, Feature, Status};
use bmclink_linux::store::FileStore;
use clap::Parser;

struct Rig {
    t: tempfile::TempDir,
    state: PathBuf,
    config: PathBuf,
    audit: PathBuf,
}

fn rig() -> Rig {
    let t = tempfile::tempdir().unwrap();
    let state = t.path().join("state");
    let config = t.path().join("bmclink.toml");
    let audit = t.path().join("audit.jsonl");
    fs::write(
        &config,
        format!(
            "state_dir = \"{}\"\nhosts_file = \"{}\"\naudit_log = \"{}\"\n",
            state.display(),
            t.path().join("hosts").display(),
            audit.display()
        ),
    )
    .unwrap();
    fs::create_dir_all(&state).unwrap();
    Rig {
        t,
        state,
        config,
        audit,
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

fn ipv6_session(pid: u32) -> Status {
    Status {
        trust: None,
        bootstrap: None,
        pid,
        family: Some("IPv6".into()),
        channel: Some("TLS 1.3".into()),
        tls_version: Some("TLSv1.3".into()),
        bmc_firmware: Some("3.30.30.30".into()),
        features: [
            ("inband-bmc-access", false),
            ("inband-snmp-get", false),
            ("idrac.local", false),
            ("auto-update", false),
            ("monitoring", true),
        ]
        .into_iter()
        .map(|(n, available)| Feature {
            name: n.into(),
            available,
        })
        .collect(),
        addresses: Addresses {
            host_ipv6: Some("fe80::5eed:1".into()),
            bmc_ipv6: Some("fe80::1".into()),
            mac: Some("02:00:5e:10:00:02".into()),
            ..Addresses::default()
        },
        since: "2026-12-02T18:00:00.000Z".into(),
    }
}

#[test]
fn status_shows_the_session_trust_and_last_audit_events() {
    let rig = rig();
    ipv6_session(std::process::id()).write(&rig.state).unwrap();
    FileStore::new(&rig.state)
        .save(Record::BmcPin, &PinRecord { sha256: [0x5c; 32] }.encode())
        .unwrap();
    let mut log = String::new();
    for (i, (id, sev, text)) in [
        ("BL1101", "info", "claimed fe80::5eed:1 on the USBNIC"),
        ("BL3004", "warning", "IPv4 failed; trying IPv6"),
        ("BL4003", "info", "TLS 1.3 to the pinned certificate"),
        ("BL2001", "notice", "session 7 started over IPv6 (TLS 1.3)"),
        ("BL3012", "notice", "IPv6-only session: monitoring only"),
        ("BL2003", "info", "heartbeat answered"),
    ]
    .into_iter()
    .enumerate()
    {
        log.push_str(&format!(
            "{{\"time\":\"2026-12-02T18:00:0{i}.000Z\",\"id\":\"{id}\",\"severity\":\"{sev}\",\"text\":\"{text}\"}}\n"
        ));
    }
    fs::write(&rig.audit, log).unwrap();

    let (r, out) = exec(&rig, &["status"]);
    assert!(r.is_ok(), "{r:?}");
    let expected = format!(
        "● bmclink
          State: connected (pid {pid})
          Since: 2026-12-02T18:00:00.000Z
        Channel: TLS 1.3 (TLSv1.3), port 5443, IPv6
   Host address: fe80::5eed:1 (IPv6)
    BMC address: fe80::1 (IPv6)
            MAC: 02:00:5e:10:00:02
   BMC firmware: 3.30.30.30
       Features: monitoring
    Unavailable: inband-bmc-access, inband-snmp-get, idrac.local, auto-update
          Trust: pin (enrolled), BMC certificate SHA-256 {pin}
      State dir: {state}

Last audit events ({audit}):
  2026-12-02T18:00:01.000Z BL3004 warning IPv4 failed; trying IPv6
  2026-12-02T18:00:02.000Z BL4003 info    TLS 1.3 to the pinned certificate
  2026-12-02T18:00:03.000Z BL2001 notice  session 7 started over IPv6 (TLS 1.3)
  2026-12-02T18:00:04.000Z BL3012 notice  IPv6-only session: monitoring only
  2026-12-02T18:00:05.000Z BL2003 info    heartbeat answered
",
        pid = std::process::id(),
        pin = "5c".repeat(32),
        state = rig.state.display(),
        audit = rig.audit.display(),
    );
    assert_eq!(out, expected);

    // --json is the status file as before, untouched by the layout.
    let (r, out) = exec(&rig, &["status", "--json"]);
    assert!(r.is_ok());
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["running"], true);
    assert_eq!(v["family"], "IPv6");
    assert_eq!(v["addresses"]["bmc_ipv6"], "fe80::1");
    assert!(v.get("trust").is_none() && v.get("port").is_none(), "{v}");
}

#[test]
fn before_enrollment_status_names_the_administrator_fingerprint_and_the_account() {
    let rig = rig();
    let secret = rig.t.path().join("secret");
    fs::write(&secret, "s3cret-one-time\n").unwrap();
    let root = rig.t.path().join("root");
    // Install into a root whose state dir is the rig's: the config's
    // state_dir is absolute, so it is re-rooted; point the rig at it.
    let (r, _) = exec(
        &rig,
        &[
            "install",
            "--root",
            root.to_str().unwrap(),
            "--bmc-fingerprint",
            &"a1".repeat(32),
            "--account",
            "bmclink-enroll",
            "--secret-file",
            secret.to_str().unwrap(),
        ],
    );
    assert!(r.is_ok(), "{r:?}");
    let installed = root.join(rig.state.strip_prefix("/").unwrap());
    let cli = Cli::try_parse_from([
        "bmclink",
        "--config",
        rig.config.to_str().unwrap(),
        "--state-dir",
        installed.to_str().unwrap(),
        "status",
    ])
    .unwrap();
    let mut out = Vec::new();
    execute(&cli, &mut out).unwrap();
    let out = String::from_utf8(out).unwrap();
    // The bootstrap part depends on the host (an IPMI device or none).
    let trust = out
        .lines()
        .find(|l| l.starts_with("          Trust: "))
        .unwrap_or_default();
    assert!(
        trust.starts_with(&format!(
            "          Trust: administrator fingerprint {}; enrollment account bmclink-enroll; bootstrap: ",
            "a1".repeat(32)
        )) && trust.ends_with("; not enrolled yet"),
        "{out}"
    );
    assert!(!out.contains("s3cret"), "the secret is never shown: {out}");
    // `install` audited the new certificate into the configured log.
    assert!(
        out.contains("\nLast audit events (") && out.contains(" BL4010 notice  "),
        "{out}"
    );
}

#[test]
fn a_stable_secret_of_the_wrong_length_stops_run_and_repair_replaces_only_it() {
    let rig = rig();
    let root = rig.t.path().join("root");
    let root_s = root.to_str().unwrap();
    let (r, _) = exec(&rig, &["install", "--root", root_s]);
    assert!(r.is_ok(), "{r:?}");
    let state = root.join(rig.state.strip_prefix("/").unwrap());
    let mut store = FileStore::new(&state);
    store.save(Record::StableSecret, &[9; 16]).unwrap();
    let with_state = |args: &[&str]| {
        let mut argv = vec![
            "bmclink",
            "--config",
            rig.config.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
        ];
        argv.extend_from_slice(args);
        let cli = Cli::try_parse_from(argv).unwrap();
        let mut out = Vec::new();
        let r = execute(&cli, &mut out);
        (r, String::from_utf8(out).unwrap())
    };
    let (r, _) = with_state(&["run", "--tap", "blnever1"]);
    let e = r.unwrap_err();
    assert_eq!(e.exit as i32, 3, "{}", e.message);
    assert!(
        e.message.contains("stable.secret is corrupt") && e.message.contains("install --repair"),
        "{}",
        e.message
    );
    // The bad secret is still there: nothing was reset by `run`.
    let mut buf = [0u8; 64];
    assert_eq!(
        store.load(Record::StableSecret, &mut buf).unwrap(),
        Some(16)
    );

    let (r, out) = exec(&rig, &["install", "--repair", "--root", root_s]);
    assert!(r.is_ok(), "{r:?}");
    assert!(
        out.contains("stable.secret: it was not a 256-bit secret"),
        "{out}"
    );
    assert_eq!(store.load(Record::StableSecret, &mut buf).unwrap(), None);

    // A good secret survives a repair (the host's IPv6 address stays).
    store.save(Record::StableSecret, &[7; 32]).unwrap();
    let (r, out) = exec(&rig, &["install", "--repair", "--root", root_s]);
    assert!(r.is_ok(), "{r:?}");
    assert!(!out.contains("stable.secret"), "{out}");
    assert_eq!(
        store.load(Record::StableSecret, &mut buf).unwrap(),
        Some(32)
    );
    assert_eq!(&buf[..32], &[7; 32]);
}

#[test]
fn run_sim_says_the_simulation_moved_to_xtask() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bmclink"))
        .args(["run", "--sim"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with("bmclink: --sim:") && err.contains("cargo xtask run --plain"),
        "{err}"
    );
}
