//! Root only: `bmclink-conform --tap` against the kernel BMC in a network
//! namespace this test creates: the kernel side of a TAP device is the
//! BMC's network stack (169.254.1.1/16 and fe80::1), its protocol is the
//! kernel BMC (kernel TCP + rustls) listening inside the namespace. The rig
//! runs inside the namespace too (`ip netns exec`), attached to the TAP:
//! the link checks on raw frames, the channel checks with --connect.
//!
//! Then two broken links, each caught by exactly its checks: the BMC side
//! also holding the host's address (link-host-address, and link-arp: it
//! then ignores the host's ARP requests), and ARP switched off on the BMC
//! side (link-arp, link-acd-dad).
//!
//! Not root: prints why and passes, unless `BMCLINK_REQUIRE_ROOT=1` (CI),
//! which makes it fail.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

use bmclink_tests::bmc_tls::TlsIdentity;
use bmclink_tests::kernel_bmc::{mutant_server_config, KernelBmc};
use bmclink_tests::BmcConfig;

const BIN: &str = env!("CARGO_BIN_EXE_bmclink-conform");
const TAP: &str = "blconf0";

fn may_run(test: &str) -> bool {
    let required = std::env::var("BMCLINK_REQUIRE_ROOT").is_ok_and(|v| v == "1");
    let reason = if !nix::unistd::geteuid().is_root() {
        Some("it needs root (network namespaces, TAP devices)")
    } else if !std::path::Path::new("/dev/net/tun").exists() {
        Some("/dev/net/tun is missing")
    } else if Command::new("ip").arg("-V").output().is_err() {
        Some("the `ip` command (iproute2) is missing")
    } else {
        None
    };
    match reason {
        None => true,
        Some(r) if required => panic!("{test}: BMCLINK_REQUIRE_ROOT=1 but {r}"),
        Some(r) => {
            eprintln!(
                "skipping {test}: {r}; run as root (BMCLINK_REQUIRE_ROOT=1 makes this a failure)"
            );
            false
        }
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A network namespace, deleted on drop.
struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Netns {
        let name = format!("blconf-{tag}-{}", std::process::id());
        ip(&["netns", "add", &name]);
        Netns(name)
    }

    fn ip(&self, args: &[&str]) {
        let mut all = vec!["-n", self.0.as_str()];
        all.extend_from_slice(args);
        ip(&all);
    }

    fn listen(&self, port: u16) -> TcpListener {
        std::thread::scope(|s| {
            s.spawn(|| {
                let f = std::fs::File::open(format!("/run/netns/{}", self.0)).expect("netns");
                nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
                TcpListener::bind(("::", port)).expect("listen in the namespace")
            })
            .join()
            .expect("listener thread")
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// The namespace with the TAP and the kernel BMC on 5443 and 5080; the
/// facts and account files in `dir`.
fn rig(tag: &str, dir: &std::path::Path, extra_addr: Option<&str>) -> (Netns, KernelBmc) {
    let ns = Netns::new(tag);
    ns.ip(&["link", "set", "lo", "up"]);
    ns.ip(&["tuntap", "add", "dev", TAP, "mode", "tap"]);
    ns.ip(&["link", "set", TAP, "addrgenmode", "none"]);
    ns.ip(&["addr", "add", "169.254.1.1/16", "dev", TAP]);
    if let Some(a) = extra_addr {
        ns.ip(&["addr", "add", a, "dev", TAP]);
    }
    ns.ip(&["-6", "addr", "add", "fe80::1/64", "dev", TAP, "nodad"]);
    ns.ip(&["link", "set", TAP, "up"]);
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let id = TlsIdentity::generate(0x7a9, "idrac", unix - 3600, true);
    let cfg = BmcConfig {
        firmware: [3, 30, 30, 30],
        tls: true,
        credential: "netns-one-time-secret".into(),
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
    let server = mutant_server_config(&id, None).unwrap();
    let tls = KernelBmc::spawn_tls(
        ns.listen(5443),
        cfg.clone(),
        server,
        id.fingerprint(),
        false,
    );
    let _plain = KernelBmc::spawn(ns.listen(5080), cfg, false);
    (ns, tls)
}

fn conform(ns: &Netns, dir: &std::path::Path, json: &std::path::Path) -> Output {
    let d = dir.display();
    let args = format!(
        "netns exec {} {BIN} --tap {TAP} --bmc-ipv6 fe80::1 --connect 169.254.1.1 \
         --facts {d}/facts.toml --account-file {d}/account --wait 10 --heartbeat 5 --json {}",
        ns.0,
        json.display()
    );
    Command::new("ip")
        .args(args.split(' '))
        .output()
        .expect("run bmclink-conform")
}

fn failed(json: &std::path::Path) -> BTreeSet<String> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(json).unwrap()).unwrap();
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["verdict"] != "pass")
        .map(|c| c["check"].as_str().unwrap().to_string())
        .collect()
}

fn run(tag: &str, extra_addr: Option<&str>, arp_off: bool) -> (Output, BTreeSet<String>, String) {
    let dir = tempfile::tempdir().unwrap();
    let (ns, bmc) = rig(tag, dir.path(), extra_addr);
    if arp_off {
        ns.ip(&["link", "set", TAP, "arp", "off"]);
    }
    let json = dir.path().join("r.json");
    let o = conform(&ns, dir.path(), &json);
    let text = format!(
        "status {:?}\n{}\n{}\n--- BMC timeline ---\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
        bmc.timeline()
    );
    let bad = if json.exists() {
        failed(&json)
    } else {
        BTreeSet::new()
    };
    (o, bad, text)
}

#[test]
fn tap_against_the_kernel_bmc_passes_every_check() {
    if !may_run("tap_against_the_kernel_bmc_passes_every_check") {
        return;
    }
    let (o, bad, text) = run("ok", None, false);
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert!(bad.is_empty(), "{bad:?}\n{text}");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains(&format!(
            "{n} checks: {n} passed",
            n = bmclink_conform::CHECKS.len()
        )),
        "{text}"
    );
}

#[test]
fn tap_catches_a_bmc_claiming_the_host_address() {
    if !may_run("tap_catches_a_bmc_claiming_the_host_address") {
        return;
    }
    let (o, bad, text) = run("claim", Some("169.254.1.2/16"), false);
    assert_eq!(o.status.code(), Some(1), "{text}");
    // Holding the host's address, the BMC's kernel takes the host's ARP
    // requests (sender 169.254.1.2) for a conflict and does not answer
    // them: the host cannot resolve the BMC either.
    assert_eq!(
        bad,
        BTreeSet::from(["link-arp".to_string(), "link-host-address".to_string()]),
        "{text}"
    );
}

#[test]
fn tap_catches_a_bmc_without_arp() {
    if !may_run("tap_catches_a_bmc_without_arp") {
        return;
    }
    let (o, bad, text) = run("noarp", None, true);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert_eq!(
        bad,
        BTreeSet::from(["link-arp".to_string(), "link-acd-dad".to_string()]),
        "{text}"
    );
}
