//! [`Audit`] sinks: syslog (journald reads it too), a JSON-lines file
//! (`--audit-log FILE`), and stderr for a foreground run.
//!
//! An event's text is the core's `Display` of it; events never carry key
//! material, and nothing here adds any.

use std::ffi::CString;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use bmclink_core::audit::{AuditEvent, Severity};
use bmclink_core::platform::Audit;
use serde::Serialize;
use smoltcp::time::Instant;

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
}

impl AuditLine {
    /// The line for `event`, stamped now.
    pub fn new(event: &AuditEvent) -> Self {
        AuditLine {
            time: now_rfc3339(),
            id: event.id().to_string(),
            severity: event.severity().as_str().to_owned(),
            text: event.to_string(),
        }
    }
}

/// Where audit events go.
#[derive(Debug, Default)]
pub struct LinuxAudit {
    syslog: bool,
    json: Option<(PathBuf, File)>,
    stderr: bool,
}

static IDENT: &std::ffi::CStr = c"bmclink";

impl LinuxAudit {
    /// No sinks yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends events to syslog, facility `LOG_DAEMON`, ident `bmclink`.
    pub fn with_syslog(mut self) -> Self {
        // SAFETY: IDENT is a 'static C string, as openlog requires.
        unsafe {
            libc::openlog(
                IDENT.as_ptr(),
                libc::LOG_PID | libc::LOG_NDELAY,
                libc::LOG_DAEMON,
            )
        };
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

impl Audit for LinuxAudit {
    fn record(&mut self, _now: Instant, event: &AuditEvent) {
        let line = AuditLine::new(event);
        if self.syslog {
            if let Ok(msg) = CString::new(format!("{} {}", line.id, line.text)) {
                // SAFETY: "%s" with one valid C string argument.
                unsafe {
                    libc::syslog(
                        syslog_priority(event.severity()),
                        c"%s".as_ptr(),
                        msg.as_ptr(),
                    )
                };
            }
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
    fn severities_map_to_syslog_priorities() {
        assert_eq!(syslog_priority(Severity::Error), libc::LOG_ERR);
        assert_eq!(syslog_priority(Severity::Warning), libc::LOG_WARNING);
        assert_eq!(syslog_priority(Severity::Notice), libc::LOG_NOTICE);
        assert_eq!(syslog_priority(Severity::Info), libc::LOG_INFO);
    }
}
