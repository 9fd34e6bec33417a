//! `status.json` in the state directory: what the running agent reports
//! about its session, read by `bmclink status`.

use std::fs::{self, File};
use std::io::{self, Write};

use crate::private_file::Existing;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The file name under the state directory.
pub const STATUS_FILE: &str = "status.json";

/// Addresses of the session.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Addresses {
    /// The host's IPv4 link-local address claimed by the agent.
    pub host_ipv4: Option<String>,
    /// The host's IPv6 link-local address.
    pub host_ipv6: Option<String>,
    /// The BMC's IPv4 address.
    pub bmc_ipv4: Option<String>,
    /// The BMC's IPv6 address.
    pub bmc_ipv6: Option<String>,
    /// The agent's MAC.
    pub mac: Option<String>,
}

/// One P10 feature and whether this session offers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Feature {
    /// e.g. `in-band BMC access`, `idrac.local`.
    pub name: String,
    /// Whether it works over this session.
    pub available: bool,
}

/// What the running agent writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The agent's process id.
    pub pid: u32,
    /// `IPv4` or `IPv6`; `None` while not connected.
    pub family: Option<String>,
    /// `TLS 1.3` or `plain`; `None` while not connected.
    pub channel: Option<String>,
    /// The TLS version negotiated, e.g. `TLSv1.3`.
    pub tls_version: Option<String>,
    /// The BMC firmware from WELCOME, e.g. `3.30.30.30`.
    pub bmc_firmware: Option<String>,
    /// P10 features.
    pub features: Vec<Feature>,
    /// Session addresses.
    pub addresses: Addresses,
    /// When the session (or the wait for one) began, RFC 3339 UTC.
    pub since: String,
}

/// What `bmclink status` found.
#[derive(Debug, PartialEq, Eq)]
pub enum Observed {
    /// No status file: the agent is not running.
    NotRunning,
    /// A status file whose process is gone (killed without cleanup).
    Stale(Status),
    /// The agent is running.
    Running(Status),
}

/// The status file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The file is not a status.
    #[error("{path} is not a valid status file ({message}); it is rewritten by the next `bmclink run`, or remove it")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
}

/// The status file path under `state_dir`.
pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(STATUS_FILE)
}

fn process_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // Signal 0 checks existence; EPERM still means it exists.
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) => true,
        Err(e) => e == nix::errno::Errno::EPERM,
    }
}

impl Status {
    /// Writes atomically (0600, never through a symlink; temp file + fsync
    /// + rename).
    pub fn write(&self, state_dir: &Path) -> io::Result<()> {
        let text = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        let tmp = state_dir.join(format!(".{STATUS_FILE}.tmp.{}", std::process::id()));
        let mut f = crate::private_file::open_private(&tmp, Existing::Truncate).map_err(|e| {
            match e {
                crate::private_file::PrivateFileError::Io { source, .. } => source,
                refused => io::Error::new(io::ErrorKind::PermissionDenied, refused),
            }
        })?;
        f.write_all(&text)?;
        f.sync_all()?;
        fs::rename(&tmp, path(state_dir))?;
        File::open(state_dir)?.sync_all()
    }

    /// Removes the status file (clean stop).
    pub fn remove(state_dir: &Path) -> io::Result<()> {
        match fs::remove_file(path(state_dir)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Reads the status file and checks that its process lives.
    pub fn observe(state_dir: &Path) -> Result<Observed, StatusError> {
        let p = path(state_dir);
        let text = match fs::read(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Observed::NotRunning),
            Err(source) => return Err(StatusError::Read { path: p, source }),
        };
        let status: Status = serde_json::from_slice(&text).map_err(|e| StatusError::Corrupt {
            path: p.clone(),
            message: e.to_string(),
        })?;
        Ok(if process_alive(status.pid) {
            Observed::Running(status)
        } else {
            Observed::Stale(status)
        })
    }

    /// A few lines for a person.
    pub fn to_text(&self) -> String {
        let or = |v: &Option<String>, d: &str| v.clone().unwrap_or_else(|| d.to_owned());
        let mut out = format!(
            "running (pid {}) since {}\nfamily:       {}\nchannel:      {}\nTLS version:  {}\nBMC firmware: {}\n",
            self.pid,
            self.since,
            or(&self.family, "not connected"),
            or(&self.channel, "-"),
            or(&self.tls_version, "-"),
            or(&self.bmc_firmware, "-"),
        );
        let a = &self.addresses;
        for (name, v) in [
            ("host IPv4", &a.host_ipv4),
            ("host IPv6", &a.host_ipv6),
            ("BMC IPv4", &a.bmc_ipv4),
            ("BMC IPv6", &a.bmc_ipv6),
            ("MAC", &a.mac),
        ] {
            if let Some(v) = v {
                out.push_str(&format!("{:<14}{v}\n", format!("{name}:")));
            }
        }
        for f in &self.features {
            let state = if f.available {
                "available"
            } else {
                "unavailable"
            };
            out.push_str(&format!("feature:      {} ({state})\n", f.name));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(pid: u32) -> Status {
        Status {
            pid,
            family: Some("IPv6".into()),
            channel: Some("TLS 1.3".into()),
            tls_version: Some("TLSv1.3".into()),
            bmc_firmware: Some("3.30.30.30".into()),
            features: vec![Feature {
                name: "idrac.local".into(),
                available: false,
            }],
            addresses: Addresses {
                host_ipv6: Some("fe80::2".into()),
                ..Addresses::default()
            },
            since: "2026-11-21T10:00:00.000Z".into(),
        }
    }

    #[test]
    fn no_status_file_means_not_running() {
        let t = tempfile::tempdir().unwrap();
        assert_eq!(Status::observe(t.path()).unwrap(), Observed::NotRunning);
    }

    #[test]
    fn a_written_status_reads_back_as_running_for_a_live_pid() {
        let t = tempfile::tempdir().unwrap();
        let s = sample(std::process::id());
        s.write(t.path()).unwrap();
        assert_eq!(
            Status::observe(t.path()).unwrap(),
            Observed::Running(s.clone())
        );
        let text = s.to_text();
        assert!(
            text.contains("family:       IPv6") && text.contains("idrac.local (unavailable)"),
            "{text}"
        );
        Status::remove(t.path()).unwrap();
        assert_eq!(Status::observe(t.path()).unwrap(), Observed::NotRunning);
    }

    #[test]
    fn a_status_of_a_dead_process_is_stale() {
        let t = tempfile::tempdir().unwrap();
        // pid_max is at most 2^22: this pid never exists.
        sample(4_194_304 + 1).write(t.path()).unwrap();
        assert!(matches!(
            Status::observe(t.path()).unwrap(),
            Observed::Stale(_)
        ));
    }

    #[test]
    fn a_corrupt_status_file_is_named() {
        let t = tempfile::tempdir().unwrap();
        fs::write(path(t.path()), b"{not json").unwrap();
        let e = Status::observe(t.path()).unwrap_err().to_string();
        assert!(e.contains("status.json is not a valid status file"), "{e}");
    }
}
