//! [`Audit`] sinks: the journal (journald's native protocol, with
//! `MESSAGE_ID` and the event's fields, [`crate::journal`]) or, where no
//! journal runs, syslog; a JSON-lines file (`--audit-log FILE`); and stderr
//! for a foreground run.
//!
//! An event's text is the core's `Display` of it, its fields the core's
//! `for_each_field`; events never carry key material, and nothing here adds
//! any.

use std::ffi::CString;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use bmclink_core::audit::{AuditEvent, FieldValue, Severity};
use bmclink_core::platform::Audit;
use serde::Serialize;
use smoltcp::time::Instant;

use crate::journal::{JournalSink, JOURNAL_SOCKET};
use crate::private_file::{open_private, Existing, PrivateFileError};
use crate::time::now_rfc3339;

/// The syslog priority of a severity (facility added by `openlog`).
pub fn syslog_priority(severity: Severity) -> libc::c_int {
    match severity {
        Severity::Error => libc::LOG_ERR,
        Severity::Warning => libc::LOG_WARNING,
        Severity::Notice => libc::LOG_NOTICE,
        Severity::Info => libc::LOG_INFO,
    }
}

/// One line of the JSON-lines audit log.
#[derive(Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct AuditLine {
    /// RFC 3339 UTC.
    pub time: String,
    /// The stable ID, `BL` and four digits.
    pub id: String,
    /// `error`, `warning`, `notice` or `info`.
    pub severity: String,
    /// The one-line text.
    pub text: String,
    /// The event's fields by name (`family`, `addr`, `port`, ...): numbers
    /// as JSON numbers, everything else as strings.
    #[serde(default)]
    pub fields: serde_json::Map<String, serde_json::Value>,
}

/// The fields of `event` as a JSON object.
pub fn fields_json(event: &AuditEvent) -> serde_json::Map<String, serde_json::Value> {
    let mut fields = serde_json::Map::new();
    event.for_each_field(&mut |name, value| {
        let v = match value {
            FieldValue::U64(n) => serde_json::Value::from(n),
            other => serde_json::Value::from(other.to_string()),
        };
        fields.insert(name.to_owned(), v);
    });
    fields
}

impl AuditLine {
    /// The line for `event`, stamped now.
    pub fn new(event: &AuditEvent) -> Self {
        AuditLine {
            time: now_rfc3339(),
            id: event.id().to_string(),
            severity: event.severity().as_str().to_owned(),
            text: event.to_string(),
            fields: fields_json(event),
        }
    }
}

/// Where audit events go.
#[derive(Debug, Default)]
pub struct LinuxAudit {
    journal: Option<JournalSink>,
    journal_failed: bool,
    syslog: bool,
    json: Option<(PathBuf, File)>,
    stderr: bool,
}

static IDENT: &std::ffi::CStr = c"bmclink";

fn open_syslog() {
    // SAFETY: IDENT is a 'static C string, as openlog requires.
    unsafe {
        libc::openlog(
            IDENT.as_ptr(),
            libc::LOG_PID | libc::LOG_NDELAY,
            libc::LOG_DAEMON,
        )
    };
}

impl LinuxAudit {
    /// No sinks yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends events to the journal when journald runs
    /// ([`JOURNAL_SOCKET`]), else to syslog.
    pub fn with_journal_or_syslog(self) -> Self {
        self.with_journal_at_or_syslog(Path::new(JOURNAL_SOCKET))
    }

    /// Sends events to the journal socket at `socket`, or to syslog when
    /// nothing listens there.
    pub fn with_journal_at_or_syslog(mut self, socket: &Path) -> Self {
        match JournalSink::connect(socket) {
            Ok(j) => {
                self.journal = Some(j);
                self
            }
            Err(e) => {
                log::debug!(
                    "no journal at {} ({e}); audit events go to syslog",
                    socket.display()
                );
                self.with_syslog()
            }
        }
    }

    /// Whether events go to the journal (else syslog, if enabled).
    pub fn uses_journal(&self) -> bool {
        self.journal.is_some() && !self.journal_failed
    }

    /// Sends events to syslog, facility `LOG_DAEMON`, ident `bmclink`.
    pub fn with_syslog(mut self) -> Self {
        open_syslog();
        self.syslog = true;
        self
    }

    /// Appends events as JSON lines to `path`: created 0600 when missing,
    /// tightened to 0600 when looser, never through a symlink
    /// ([`crate::private_file`]).
    pub fn with_json_file(mut self, path: &Path) -> Result<Self, PrivateFileError> {
        let file = open_private(path, Existing::Append)?;
        self.json = Some((path.to_owned(), file));
        Ok(self)
    }

    /// Also prints events on stderr (foreground runs).
    pub fn with_stderr(mut self) -> Self {
        self.stderr = true;
        self
    }

    fn write_syslog(&self, severity: Severity, line: &AuditLine) {
        if let Ok(msg) = CString::new(format!("{} {}", line.id, line.text)) {
            // SAFETY: "%s" with one valid C string argument.
            unsafe { libc::syslog(syslog_priority(severity), c"%s".as_ptr(), msg.as_ptr()) };
        }
    }

    /// To the journal; when journald went away, to syslog from then on
    /// (said once on stderr), so no event is lost with it.
    fn write_journal(&mut self, event: &AuditEvent, line: &AuditLine) {
        let Some(journal) = self.journal.as_ref() else {
            return;
        };
        if !self.journal_failed {
            match journal.send(event) {
                Ok(()) => return,
                Err(e) => {
                    eprintln!(
                        "bmclink: cannot write to the journal at {}: {e}; audit events go to syslog",
                        journal.path().display()
                    );
                    self.journal_failed = true;
                    if !self.syslog {
                        open_syslog();
                        self.syslog = true;
                    }
                }
            }
        }
        self.write_syslog(event.severity(), line);
    }

    fn write_json(&mut self, line: &AuditLine) {
        let Some((path, file)) = self.json.as_mut() else {
            return;
        };
        let Ok(mut text) = serde_json::to_string(line) else {
            return;
        };
        text.push('\n');
        // One write per line keeps concurrent appenders from interleaving.
        if let Err(e) = file.write_all(text.as_bytes()).and_then(|()| file.flush()) {
            eprintln!(
                "bmclink: cannot append to the audit log {}: {e}",
                path.display()
            );
        }
    }
}

impl Audit<AuditEvent> for LinuxAudit {
    fn record(&mut self, _now: Instant, event: &AuditEvent) {
        let line = AuditLine::new(event);
        if self.journal.is_some() {
            self.write_journal(event, &line);
        } else if self.syslog {
            self.write_syslog(event.severity(), &line);
        }
        if self.stderr {
            eprintln!("bmclink: {} {} {}", line.severity, line.id, line.text);
        }
        self.write_json(&line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bmclink_core::audit::StoreEvent;
    use bmclink_core::platform::Record;

    #[test]
    fn each_event_is_one_json_line_with_time_id_severity_text() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("audit.jsonl");
        let mut a = LinuxAudit::new().with_json_file(&path).unwrap();
        let e1 = AuditEvent::Store(StoreEvent::Corrupt {
            record: Record::Link,
        });
        let e2 = AuditEvent::Store(StoreEvent::Failed {
            record: Record::BmcPin,
        });
        a.record(Instant::from_secs(1), &e1);
        a.record(Instant::from_secs(2), &e2);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<AuditLine> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].id, "BL5002");
        assert_eq!(lines[0].severity, "error");
        assert_eq!(lines[0].text, e1.to_string());
        assert!(lines[0].time.ends_with('Z') && lines[0].time.len() == 24);
        assert_eq!(lines[1].id, "BL5001");
    }

    #[test]
    fn the_audit_log_is_appended_not_truncated_and_is_0600() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("audit.jsonl");
        std::fs::write(&path, "{\"earlier\":1}\n").unwrap();
        let mut a = LinuxAudit::new().with_json_file(&path).unwrap();
        a.record(
            Instant::from_secs(1),
            &AuditEvent::Store(StoreEvent::Corrupt {
                record: Record::Link,
            }),
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("{\"earlier\":1}\n"));
        assert_eq!(text.lines().count(), 2);
        let t2 = tempfile::tempdir().unwrap();
        let fresh = t2.path().join("new.jsonl");
        let _ = LinuxAudit::new().with_json_file(&fresh).unwrap();
        assert_eq!(
            std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn each_json_line_carries_the_events_fields_by_name() {
        use bmclink_core::audit::{SessionEvent, TlsEvent};
        use bmclink_core::{Channel, Family};
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("audit.jsonl");
        let mut a = LinuxAudit::new().with_json_file(&path).unwrap();
        a.record(
            Instant::from_secs(1),
            &AuditEvent::Session(SessionEvent::Started {
                family: Family::V6,
                channel: Channel::Tls13,
                firmware: [3, 30, 30, 30],
            }),
        );
        a.record(
            Instant::from_secs(2),
            &AuditEvent::Session(SessionEvent::ConnectFailed {
                family: Family::V4,
                port: 5443,
            }),
        );
        a.record(
            Instant::from_secs(3),
            &AuditEvent::Tls(TlsEvent::Enrolled {
                bmc: bmclink_core::cert::ShortFingerprint([0xe8, 0xa4, 0xdd, 0x75, 0xa3, 0xf8]),
                client: bmclink_core::cert::ShortFingerprint([1, 2, 3, 4, 5, 6]),
            }),
        );
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            lines[0]["fields"],
            serde_json::json!({"family": "IPv6", "channel": "TLS 1.3", "firmware": "3.30.30.30"})
        );
        assert_eq!(
            lines[1]["fields"],
            serde_json::json!({"family": "IPv4", "port": 5443})
        );
        assert_eq!(
            lines[2]["fields"],
            serde_json::json!({"bmc": "e8a4dd75a3f8", "client": "010203040506"})
        );
        // An event without fields still has the object.
        assert_eq!(
            AuditLine::new(&AuditEvent::Tls(TlsEvent::PlainChannel {})).fields,
            serde_json::Map::new()
        );
    }

    #[test]
    fn events_go_to_the_journal_socket_when_one_listens_else_to_syslog() {
        use std::os::unix::net::UnixDatagram;
        let t = tempfile::tempdir().unwrap();
        let sock = t.path().join("journal.socket");
        let server = UnixDatagram::bind(&sock).unwrap();
        let mut a = LinuxAudit::new().with_journal_at_or_syslog(&sock);
        assert!(a.uses_journal());
        let e = AuditEvent::Store(StoreEvent::Corrupt {
            record: Record::Link,
        });
        a.record(Instant::from_secs(1), &e);
        let mut buf = vec![0u8; 4096];
        let n = server.recv(&mut buf).unwrap();
        let got = crate::journal::parse(&buf[..n]).unwrap();
        assert!(got.contains(&("BMCLINK_AUDIT_ID".into(), b"BL5002".to_vec())));
        assert!(got.contains(&("BMCLINK_RECORD".into(), b"link".to_vec())));
        assert!(got.contains(&("PRIORITY".into(), b"3".to_vec())));

        // journald goes away: the next events go to syslog instead.
        drop(server);
        std::fs::remove_file(&sock).unwrap();
        a.record(Instant::from_secs(2), &e);
        assert!(!a.uses_journal() && a.syslog);

        let absent = LinuxAudit::new().with_journal_at_or_syslog(&t.path().join("none"));
        assert!(!absent.uses_journal() && absent.syslog);
    }

    #[test]
    fn severities_map_to_syslog_priorities() {
        assert_eq!(syslog_priority(Severity::Error), libc::LOG_ERR);
        assert_eq!(syslog_priority(Severity::Warning), libc::LOG_WARNING);
        assert_eq!(syslog_priority(Severity::Notice), libc::LOG_NOTICE);
        assert_eq!(syslog_priority(Severity::Info), libc::LOG_INFO);
    }
}
