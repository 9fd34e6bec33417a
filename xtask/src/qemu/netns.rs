//! The network namespace a scenario runs in, and `ip`.

use std::fs;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::process::Command;

/// A network namespace, deleted on drop (its TAP goes with it).
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Result<Netns, String> {
        let name = format!("blqemu-{tag}-{}", std::process::id());
        ip(&["netns", "add", &name])?;
        Ok(Netns { name })
    }

    pub fn ip(&self, args: &[&str]) -> Result<(), String> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// A listener bound inside the namespace (from a thread that entered it).
    pub fn listen(&self, port: u16) -> Result<TcpListener, String> {
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
