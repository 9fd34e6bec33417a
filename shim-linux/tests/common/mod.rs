//! What the root-only test suites share: the root check and the network
//! namespace guard.
#![allow(dead_code)]

use std::net::TcpListener;
use std::process::Command;

/// Whether the test may run; prints the reason when it may not. Under
/// `BMCLINK_REQUIRE_ROOT=1` a missing requirement fails the test instead.
pub fn may_run(test: &str) -> bool {
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

/// Runs `ip ARGS`, failing the test on error; returns its stdout.
pub fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A network namespace, deleted on drop (panics included).
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Netns {
        let name = format!("bmclink-{tag}-{}", std::process::id());
        ip(&["netns", "add", &name]);
        Netns { name }
    }

    /// Moves the calling thread into the namespace.
    pub fn enter(&self) {
        let f = std::fs::File::open(format!("/run/netns/{}", self.name)).expect("open netns");
        nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
    }

    /// `ip -n NAME ARGS`.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// A listener on `[::]:port` inside the namespace (IPv4 and IPv6).
    pub fn listen(&self, port: u16) -> TcpListener {
        std::thread::scope(|s| {
            s.spawn(|| {
                self.enter();
                TcpListener::bind(("::", port)).expect("listen in the namespace")
            })
            .join()
            .expect("listener thread")
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
