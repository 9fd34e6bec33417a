//! `status.json` in the state directory: what the running agent reports
//! about its session, read by `bmclink status`; and the human layout of
//! `bmclink status` ([`Layout`], after `networkctl status`), which adds what
//! the host knows beside the file: the port, the trust source and the last
//! audit events.

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
    /// What the session's trust in the BMC rests on: `pin`,
    /// `admin-fingerprint`, `bootstrap-fingerprint`, `enrollment-account`
    /// (the account came from [`Status::bootstrap`]) or `plain`; `None`
    /// while not connected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust: Option<String>,
    /// The bootstrap channel this agent reads (`IPMI (...)`, `facts file
    /// PATH`, `none (...)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<String>,
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
        let mut f =
            crate::private_file::open_private(&tmp, Existing::Truncate).map_err(|e| match e {
                crate::private_file::PrivateFileError::Io { source, .. } => source,
                refused => io::Error::new(io::ErrorKind::PermissionDenied, refused),
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
}

/// Where the BMC's certificate is trusted from (DESIGN §5a, strongest
/// first), as the state directory says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Trust {
    /// The pin of a checked enrollment (`bmc.pin`), when there is one.
    pub pin: Option<[u8; 32]>,
    /// A pin record exists but does not read or decode (never plain, B1).
    pub pin_unreadable: bool,
    /// The administrator's fingerprint (`install --bmc-fingerprint`).
    pub admin_fingerprint: Option<[u8; 32]>,
    /// The one-time enrollment account's name (`install --account`).
    pub account: Option<String>,
    /// The bootstrap channel, described (`ipmi::BootstrapSource::describe`).
    pub bootstrap: String,
}

impl Trust {
    /// One line: the source the next TLS connection authenticates the BMC by.
    pub fn describe(&self) -> String {
        if let Some(pin) = &self.pin {
            return format!(
                "pin (enrolled), BMC certificate SHA-256 {}",
                hex::encode(pin)
            );
        }
        if self.pin_unreadable {
            return "pin record unreadable: no connection until `bmclink install --repair`"
                .to_owned();
        }
        let mut parts = Vec::new();
        if let Some(fp) = &self.admin_fingerprint {
            parts.push(format!("administrator fingerprint {}", hex::encode(fp)));
        }
        if let Some(name) = &self.account {
            parts.push(format!("enrollment account {name}"));
        }
        parts.push(format!("bootstrap: {}", self.bootstrap));
        format!("{}; not enrolled yet", parts.join("; "))
    }
}

/// The last audit events, and where they were read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Recent {
    /// Where they come from, e.g. the audit log's path; `None`: nowhere to
    /// read them (the layout then says where they go).
    pub source: Option<String>,
    /// One line per event, oldest first.
    pub lines: Vec<String>,
}

/// How many audit events `status` shows.
pub const RECENT_EVENTS: usize = 5;

/// The last `n` events of a JSON-lines audit log (`--audit-log`), as
/// `TIME ID SEVERITY TEXT`; lines that are not audit JSON are skipped.
pub fn recent_from_json_lines(text: &str, n: usize) -> Vec<String> {
    let events: Vec<String> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| {
            let field = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
            Some(format!(
                "{} {} {:<7} {}",
                field("time")?,
                field("id")?,
                field("severity").unwrap_or_default(),
                field("text").unwrap_or_default()
            ))
        })
        .collect();
    let skip = events.len().saturating_sub(n);
    events.into_iter().skip(skip).collect()
}

/// Everything `bmclink status` shows in its human layout.
#[derive(Debug)]
pub struct Layout<'a> {
    /// What the status file says.
    pub observed: &'a Observed,
    /// The configured TLS and plain ports (`tls_port`, `plain_port`).
    pub ports: (u16, u16),
    /// The trust source.
    pub trust: &'a Trust,
    /// The state directory.
    pub state_dir: &'a Path,
    /// The last audit events.
    pub recent: &'a Recent,
}

/// Label column width: labels are right-aligned to it, as networkctl does.
const LABEL: usize = 15;

fn row(out: &mut String, label: &str, values: &[String]) {
    for (i, v) in values.iter().enumerate() {
        let l = if i == 0 {
            format!("{label}:")
        } else {
            String::new()
        };
        out.push_str(&format!("{l:>w$} {v}\n", w = LABEL + 1));
    }
}

impl Layout<'_> {
    /// The layout, after `networkctl status`: a headline with a state dot,
    /// then right-aligned labels, then the last audit events.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let (dot, state, status) = match self.observed {
            Observed::NotRunning => ("○", "not running".to_owned(), None),
            Observed::Stale(s) => (
                "×",
                format!(
                    "not running (pid {} ended without cleaning up its status file)",
                    s.pid
                ),
                None,
            ),
            Observed::Running(s) if s.family.is_some() => {
                ("●", format!("connected (pid {})", s.pid), Some(s))
            }
            Observed::Running(s) => (
                "○",
                format!("running (pid {}), waiting for a session", s.pid),
                Some(s),
            ),
        };
        out.push_str(&format!("{dot} bmclink\n"));
        row(&mut out, "State", &[state]);
        if let Some(s) = status {
            row(&mut out, "Since", std::slice::from_ref(&s.since));
            if let (Some(family), Some(channel)) = (&s.family, &s.channel) {
                let port = if channel == "plain" {
                    self.ports.1
                } else {
                    self.ports.0
                };
                let version = s
                    .tls_version
                    .as_ref()
                    .map(|v| format!(" ({v})"))
                    .unwrap_or_default();
                row(
                    &mut out,
                    "Channel",
                    &[format!("{channel}{version}, port {port}, {family}")],
                );
            }
            let a = &s.addresses;
            let pair = |v4: &Option<String>, v6: &Option<String>| -> Vec<String> {
                [(v4, "IPv4"), (v6, "IPv6")]
                    .into_iter()
                    .filter_map(|(v, fam)| v.as_ref().map(|v| format!("{v} ({fam})")))
                    .collect()
            };
            let host = pair(&a.host_ipv4, &a.host_ipv6);
            if !host.is_empty() {
                row(&mut out, "Host address", &host);
            }
            let bmc = pair(&a.bmc_ipv4, &a.bmc_ipv6);
            if !bmc.is_empty() {
                row(&mut out, "BMC address", &bmc);
            }
            if let Some(mac) = &a.mac {
                row(&mut out, "MAC", std::slice::from_ref(mac));
            }
            if let Some(fw) = &s.bmc_firmware {
                row(&mut out, "BMC firmware", std::slice::from_ref(fw));
            }
            if s.family.is_some() {
                let names = |available: bool| -> String {
                    let v: Vec<&str> = s
                        .features
                        .iter()
                        .filter(|f| f.available == available)
                        .map(|f| f.name.as_str())
                        .collect();
                    if v.is_empty() {
                        "none".to_owned()
                    } else {
                        v.join(", ")
                    }
                };
                row(&mut out, "Features", &[names(true)]);
                row(&mut out, "Unavailable", &[names(false)]);
            }
        }
        let trust = match status {
            Some(s) if s.channel.as_deref() == Some("plain") => {
                "none: plain channel (the BMC firmware has no TLS)".to_owned()
            }
            _ => self.trust.describe(),
        };
        row(&mut out, "Trust", &[trust]);
        row(
            &mut out,
            "State dir",
            &[self.state_dir.display().to_string()],
        );
        out.push('\n');
        match &self.recent.source {
            None => out.push_str(
                "Audit events: no audit log is configured (audit_log in the config file); \
                 the journal has them: journalctl -t bmclink\n",
            ),
            Some(src) if self.recent.lines.is_empty() => {
                out.push_str(&format!("Audit events ({src}): none yet\n"))
            }
            Some(src) => {
                out.push_str(&format!("Last audit events ({src}):\n"));
                for l in &self.recent.lines {
                    out.push_str(&format!("  {l}\n"));
                }
            }
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
            trust: Some("pin".into()),
            bootstrap: None,
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

    /// The fixture of the layout tests: an IPv4 TLS session.
    fn connected() -> Status {
        Status {
            trust: None,
            bootstrap: None,
            pid: 4242,
            family: Some("IPv4".into()),
            channel: Some("TLS 1.3".into()),
            tls_version: Some("TLSv1.3".into()),
            bmc_firmware: Some("3.30.30.30".into()),
            features: [
                ("inband-bmc-access", true),
                ("inband-snmp-get", true),
                ("idrac.local", true),
                ("auto-update", false),
                ("monitoring", true),
            ]
            .into_iter()
            .map(|(n, a)| Feature {
                name: n.into(),
                available: a,
            })
            .collect(),
            addresses: Addresses {
                host_ipv4: Some("169.254.1.2".into()),
                host_ipv6: Some("fe80::2".into()),
                bmc_ipv4: Some("169.254.1.1".into()),
                bmc_ipv6: Some("fe80::1".into()),
                mac: Some("02:00:00:00:00:05".into()),
            },
            since: "2026-11-21T10:00:00.000Z".into(),
        }
    }

    const AUDIT_LOG: &str = concat!(
        r#"{"time":"2026-11-21T09:59:58.000Z","id":"BL1001","severity":"info","text":"claimed 169.254.1.2"}"#,
        "\n",
        "not json\n",
        r#"{"time":"2026-11-21T10:00:00.000Z","id":"BL2001","severity":"notice","text":"session started","fields":{"family":"IPv4"}}"#,
        "\n",
    );

    #[test]
    fn the_layout_of_a_tls_session_reads_like_networkctl_status() {
        let observed = Observed::Running(connected());
        let trust = Trust {
            pin: Some([0xab; 32]),
            bootstrap: "none (no IPMI device, no bootstrap file)".into(),
            ..Trust::default()
        };
        let recent = Recent {
            source: Some("/var/log/bmclink/audit.jsonl".into()),
            lines: recent_from_json_lines(AUDIT_LOG, RECENT_EVENTS),
        };
        let text = Layout {
            observed: &observed,
            ports: (5443, 5080),
            trust: &trust,
            state_dir: Path::new("/var/lib/bmclink"),
            recent: &recent,
        }
        .render();
        let pin = "ab".repeat(32);
        let expected = format!(
            "● bmclink
          State: connected (pid 4242)
          Since: 2026-11-21T10:00:00.000Z
        Channel: TLS 1.3 (TLSv1.3), port 5443, IPv4
   Host address: 169.254.1.2 (IPv4)
                 fe80::2 (IPv6)
    BMC address: 169.254.1.1 (IPv4)
                 fe80::1 (IPv6)
            MAC: 02:00:00:00:00:05
   BMC firmware: 3.30.30.30
       Features: inband-bmc-access, inband-snmp-get, idrac.local, monitoring
    Unavailable: auto-update
          Trust: pin (enrolled), BMC certificate SHA-256 {pin}
      State dir: /var/lib/bmclink

Last audit events (/var/log/bmclink/audit.jsonl):
  2026-11-21T09:59:58.000Z BL1001 info    claimed 169.254.1.2
  2026-11-21T10:00:00.000Z BL2001 notice  session started
"
        );
        assert_eq!(text, expected);
    }

    #[test]
    fn a_plain_session_shows_its_port_and_no_trust() {
        let mut s = connected();
        s.channel = Some("plain".into());
        s.tls_version = None;
        s.family = Some("IPv6".into());
        let observed = Observed::Running(s);
        let text = Layout {
            observed: &observed,
            ports: (5443, 5080),
            trust: &Trust::default(),
            state_dir: Path::new("/s"),
            recent: &Recent::default(),
        }
        .render();
        assert!(
            text.contains("\n        Channel: plain, port 5080, IPv6\n"),
            "{text}"
        );
        assert!(
            text.contains("\n          Trust: none: plain channel (the BMC firmware has no TLS)\n"),
            "{text}"
        );
        assert!(text.contains("no audit log is configured"), "{text}");
    }

    #[test]
    fn waiting_and_stopped_agents_show_state_and_trust_only() {
        let mut waiting = connected();
        waiting.family = None;
        waiting.channel = None;
        waiting.tls_version = None;
        waiting.bmc_firmware = None;
        waiting.addresses = Addresses {
            mac: Some("02:00:00:00:00:05".into()),
            ..Addresses::default()
        };
        let trust = Trust {
            admin_fingerprint: Some([1; 32]),
            account: Some("bmclink-enroll".into()),
            bootstrap: "IPMI (DSP0270 over the kernel's IPMI device)".into(),
            ..Trust::default()
        };
        let recent = Recent {
            source: Some("/a.jsonl".into()),
            lines: vec![],
        };
        let render = |o: &Observed| {
            Layout {
                observed: o,
                ports: (5443, 5080),
                trust: &trust,
                state_dir: Path::new("/s"),
                recent: &recent,
            }
            .render()
        };
        let text = render(&Observed::Running(waiting));
        assert!(
            text.starts_with(
                "○ bmclink\n          State: running (pid 4242), waiting for a session\n"
            ),
            "{text}"
        );
        assert!(
            !text.contains("Channel:") && !text.contains("Features:"),
            "{text}"
        );
        assert!(
            text.contains(&format!(
            "          Trust: administrator fingerprint {}; enrollment account bmclink-enroll; \
             bootstrap: IPMI (DSP0270 over the kernel's IPMI device); not enrolled yet\n",
            "01".repeat(32)
        )),
            "{text}"
        );
        assert!(
            text.ends_with("Audit events (/a.jsonl): none yet\n"),
            "{text}"
        );
        let text = render(&Observed::NotRunning);
        assert!(
            text.starts_with("○ bmclink\n          State: not running\n          Trust: "),
            "{text}"
        );
        let text = render(&Observed::Stale(connected()));
        assert!(
            text.starts_with("× bmclink\n          State: not running (pid 4242 ended"),
            "{text}"
        );
        assert!(!text.contains("Since:"), "{text}");
    }

    #[test]
    fn recent_events_are_the_last_ones_of_the_log() {
        let mut log = String::new();
        for i in 0..8 {
            log.push_str(&format!(
                "{{\"time\":\"t{i}\",\"id\":\"BL300{i}\",\"severity\":\"info\",\"text\":\"e{i}\"}}\n"
            ));
        }
        let r = recent_from_json_lines(&log, 3);
        assert_eq!(
            r,
            [
                "t5 BL3005 info    e5",
                "t6 BL3006 info    e6",
                "t7 BL3007 info    e7"
            ]
        );
    }
}
