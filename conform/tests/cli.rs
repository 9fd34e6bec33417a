//! The `bmclink-conform` binary end to end against the kernel BMC on
//! loopback: the table, `--json`, `--junit`, `--list`, `--only`, the exit
//! codes and `--allow-skip`.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

use bmclink_tests::bmc_tls::TlsIdentity;
use bmclink_tests::kernel_bmc::{mutant_server_config, KernelBmc, Mutation};
use bmclink_tests::BmcConfig;

const BIN: &str = env!("CARGO_BIN_EXE_bmclink-conform");

/// A kernel BMC on loopback; returns its TLS and plain addresses, with
/// the facts and account files written into `dir`.
fn bmc(dir: &Path, mutation: Option<Mutation>) -> (String, String) {
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let id = TlsIdentity::generate(0xc11, "idrac", unix - 3600, true);
    let cfg = BmcConfig {
        firmware: [3, 30, 30, 30],
        tls: true,
        credential: "cli-one-time-secret".into(),
        ..BmcConfig::default()
    };
    std::fs::write(
        dir.join("facts.toml"),
        format!(
            "fingerprint = \"{}\"\nfirmware = \"3.30.30.30\"\ntls = true\nipv6_usbnic = true\n",
            hex::encode(id.fingerprint())
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("account"),
        format!("{}\n{}\n", cfg.account, cfg.credential),
    )
    .unwrap();
    let tls_l = TcpListener::bind("127.0.0.1:0").unwrap();
    let plain_l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addrs = (
        tls_l.local_addr().unwrap().to_string(),
        plain_l.local_addr().unwrap().to_string(),
    );
    let server = mutant_server_config(&id, mutation).unwrap();
    std::mem::forget(KernelBmc::spawn_mutant(
        tls_l,
        cfg.clone(),
        Some((server, id.fingerprint())),
        mutation,
        false,
    ));
    std::mem::forget(KernelBmc::spawn_mutant(plain_l, cfg, None, mutation, false));
    addrs
}

fn conform(dir: &Path, addrs: &(String, String), extra: &[&str]) -> Output {
    let d = dir.display();
    let mut args = vec![
        "--connect".to_string(),
        addrs.0.clone(),
        "--plain".into(),
        addrs.1.clone(),
        "--facts".into(),
        format!("{d}/facts.toml"),
        "--account-file".into(),
        format!("{d}/account"),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    Command::new(BIN)
        .args(&args)
        .output()
        .expect("run bmclink-conform")
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\n{}\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn a_correct_bmc_passes_with_json_and_junit() {
    let dir = tempfile::tempdir().unwrap();
    let addrs = bmc(dir.path(), None);
    let json = dir.path().join("r.json");
    let junit = dir.path().join("r.xml");
    let o = conform(
        dir.path(),
        &addrs,
        &[
            "--allow-skip",
            "--wait",
            "10",
            "--json",
            json.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    for c in bmclink_conform::CHECKS {
        assert!(
            out.lines()
                .any(|l| l.starts_with(c.name) && l.contains(c.rule)),
            "no row for {}\n{out}",
            c.name
        );
    }
    assert!(
        out.contains("0 failed, 4 not run (allowed: --allow-skip)"),
        "{out}"
    );
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(v["passed"], true, "{v}");
    assert_eq!(v["summary"]["fail"], 0, "{v}");
    assert_eq!(v["summary"]["skip"], 4, "{v}");
    assert_eq!(
        v["checks"].as_array().unwrap().len(),
        bmclink_conform::CHECKS.len()
    );
    let x = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(
        x.matches("<testcase ").count(),
        bmclink_conform::CHECKS.len(),
        "{x}"
    );
    assert!(x.contains("failures=\"0\" skipped=\"4\""), "{x}");
    assert_eq!(x.matches("<skipped ").count(), 4, "{x}");
}

#[test]
fn a_check_that_cannot_run_fails_the_run_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let addrs = bmc(dir.path(), None);
    let only = ["--only", "link-arp", "t6-plain-hello"];
    let o = conform(dir.path(), &addrs, &only);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        out.lines().count(),
        5,
        "title, header, two rows, summary\n{out}"
    );
    assert!(
        out.contains("2 checks: 1 passed, 0 failed, 1 not run"),
        "{out}"
    );
    let o = conform(dir.path(), &addrs, &[&only[..], &["--allow-skip"]].concat());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn a_broken_bmc_fails_with_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let addrs = bmc(dir.path(), Some(Mutation::IgnorePing));
    let json = dir.path().join("r.json");
    let o = conform(
        dir.path(),
        &addrs,
        &[
            "--only",
            "ping-pong",
            "--heartbeat",
            "2",
            "--json",
            json.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let c = &v["checks"][0];
    assert_eq!(c["check"], "ping-pong", "{v}");
    assert_eq!(c["verdict"], "fail", "{v}");
    assert!(
        c["evidence"]
            .as_str()
            .unwrap()
            .contains("heartbeat interval (2 s)"),
        "{v}"
    );
}

#[test]
fn list_and_bad_arguments() {
    let o = Command::new(BIN).arg("--list").output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.lines().count(), bmclink_conform::CHECKS.len(), "{out}");
    let o = Command::new(BIN)
        .args(["--connect", "127.0.0.1:1", "--only", "no-such-check"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no-such-check"));
    let o = Command::new(BIN)
        .args(["--connect", "127.0.0.1:1", "--bmc-fingerprint", "abc"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("64 hex digits"));
}
