//! The journal sink: each audit event as one journal entry, sent to
//! journald over its native protocol (a datagram to
//! `/run/systemd/journal/socket`, see systemd's `systemd.journal-fields(7)`
//! and "Native Journal Protocol").
//!
//! An entry carries `MESSAGE` (`BLnnnn` and the text), `MESSAGE_ID` (a
//! fixed 128-bit id per audit ID, [`message_id_hex`], which the catalog
//! `bmclink.catalog` explains for `journalctl -x`), `PRIORITY` (the syslog
//! level), `SYSLOG_IDENTIFIER=bmclink`, `SYSLOG_FACILITY` (daemon),
//! `BMCLINK_AUDIT_ID`, `BMCLINK_SEVERITY`, and every field of the event as
//! `BMCLINK_<NAME>` (`BMCLINK_FAMILY=IPv6`, `BMCLINK_PORT=5443`).
//!
//! The wire format, per field: `KEY=value\n`; a value with a newline goes
//! as `KEY\n`, its length as a little-endian u64, the bytes, and `\n`.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use bmclink_core::audit::{AuditEvent, AuditId, Severity};

/// journald's native-protocol socket.
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// The journal's `SYSLOG_IDENTIFIER` of every entry (`journalctl -t bmclink`).
pub const IDENTIFIER: &str = "bmclink";

/// `SYSLOG_FACILITY` of every entry: daemon (3), as the syslog path uses.
const FACILITY_DAEMON: u8 = 3;

/// The `MESSAGE_ID` of audit event `id`: 32 lower-case hex digits of
/// [`AuditId::message_id`] (the first 128 bits of SHA-256 of
/// `bmclink audit BLnnnn`).
pub fn message_id_hex(id: AuditId) -> String {
    hex::encode(id.message_id())
}

/// The syslog level of a severity, as the journal's `PRIORITY` (0-7).
pub fn priority(severity: Severity) -> u8 {
    match severity {
        Severity::Error => 3,
        Severity::Warning => 4,
        Severity::Notice => 5,
        Severity::Info => 6,
    }
}

/// The journal field name of an event field: `BMCLINK_` and the name in
/// upper case, anything but `[A-Z0-9_]` made `_` (journal field names allow
/// nothing else).
pub fn field_name(name: &str) -> String {
    let mut out = String::from("BMCLINK_");
    out.extend(name.chars().map(|c| match c.to_ascii_uppercase() {
        c @ ('A'..='Z' | '0'..='9' | '_') => c,
        _ => '_',
    }));
    out
}

/// Appends one field in the native protocol's form.
fn push_field(buf: &mut Vec<u8>, key: &str, value: &[u8]) {
    buf.extend_from_slice(key.as_bytes());
    if value.contains(&b'\n') {
        buf.push(b'\n');
        buf.extend_from_slice(&(value.len() as u64).to_le_bytes());
        buf.extend_from_slice(value);
    } else {
        buf.push(b'=');
        buf.extend_from_slice(value);
    }
    buf.push(b'\n');
}

/// The datagram of one entry: `(name, value)` pairs in order.
pub fn encode(fields: &[(&str, &[u8])]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(512);
    for (k, v) in fields {
        push_field(&mut buf, k, v);
    }
    buf
}

/// The journal fields of `event`, in the order they are sent.
pub fn entry_fields(event: &AuditEvent) -> Vec<(String, Vec<u8>)> {
    let id = event.id();
    let mut out: Vec<(String, Vec<u8>)> = vec![
        ("MESSAGE".into(), format!("{id} {event}").into_bytes()),
        ("MESSAGE_ID".into(), message_id_hex(id).into_bytes()),
        (
            "PRIORITY".into(),
            priority(event.severity()).to_string().into_bytes(),
        ),
        ("SYSLOG_IDENTIFIER".into(), IDENTIFIER.into()),
        (
            "SYSLOG_FACILITY".into(),
            FACILITY_DAEMON.to_string().into_bytes(),
        ),
        ("BMCLINK_AUDIT_ID".into(), id.to_string().into_bytes()),
        (
            "BMCLINK_SEVERITY".into(),
            event.severity().as_str().as_bytes().to_vec(),
        ),
    ];
    event.for_each_field(&mut |name, value| {
        out.push((field_name(name), value.to_string().into_bytes()));
    });
    out
}

/// The datagram for `event`.
pub fn entry(event: &AuditEvent) -> Vec<u8> {
    let fields = entry_fields(event);
    let borrowed: Vec<(&str, &[u8])> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_slice()))
        .collect();
    encode(&borrowed)
}

/// A datagram that is not in the native protocol's form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A field ended without its `\n`.
    #[error("field {0} is not terminated by a newline")]
    Unterminated(String),
    /// A binary field's length is missing or runs past the datagram.
    #[error("field {0} has a bad binary length")]
    BadLength(String),
    /// A field name is empty or not `[A-Z0-9_]`.
    #[error("bad field name {0:?}")]
    BadName(String),
}

/// Parses a native-protocol datagram back into its fields (what journald
/// does with it); used by tests and by anyone checking what was sent.
pub fn parse(mut data: &[u8]) -> Result<Vec<(String, Vec<u8>)>, ParseError> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let end = data
            .iter()
            .position(|b| *b == b'=' || *b == b'\n')
            .ok_or_else(|| ParseError::Unterminated(String::from_utf8_lossy(data).into()))?;
        let name = String::from_utf8_lossy(&data[..end]).into_owned();
        let valid = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            return Err(ParseError::BadName(name));
        }
        if data[end] == b'=' {
            let rest = &data[end + 1..];
            let nl = rest
                .iter()
                .position(|b| *b == b'\n')
                .ok_or_else(|| ParseError::Unterminated(name.clone()))?;
            out.push((name, rest[..nl].to_vec()));
            data = &rest[nl + 1..];
        } else {
            let rest = &data[end + 1..];
            let len_bytes: [u8; 8] = rest
                .get(..8)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| ParseError::BadLength(name.clone()))?;
            let len = usize::try_from(u64::from_le_bytes(len_bytes))
                .map_err(|_| ParseError::BadLength(name.clone()))?;
            let value = rest
                .get(8..)
                .and_then(|r| r.get(..len))
                .ok_or_else(|| ParseError::BadLength(name.clone()))?;
            if rest.get(8 + len) != Some(&b'\n') {
                return Err(ParseError::Unterminated(name));
            }
            out.push((name, value.to_vec()));
            data = &rest[8 + len + 1..];
        }
    }
    Ok(out)
}

/// A connection to journald's native socket.
#[derive(Debug)]
pub struct JournalSink {
    socket: UnixDatagram,
    path: PathBuf,
}

impl JournalSink {
    /// The sink for the socket at `path` (normally [`JOURNAL_SOCKET`]);
    /// an error when nothing listens there, so the caller falls back.
    pub fn connect(path: &Path) -> io::Result<Self> {
        let socket = UnixDatagram::unbound()?;
        socket.connect(path)?;
        Ok(JournalSink {
            socket,
            path: path.to_owned(),
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sends `event` as one entry.
    pub fn send(&self, event: &AuditEvent) -> io::Result<()> {
        let datagram = entry(event);
        let n = self.socket.send(&datagram)?;
        if n != datagram.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("journal took {n} of {} bytes", datagram.len()),
            ));
        }
        Ok(())
    }

    /// Sends raw `(name, value)` fields as one entry (tests, and entries
    /// that are not audit events).
    pub fn send_fields(&self, fields: &[(&str, &[u8])]) -> io::Result<()> {
        self.socket.send(&encode(fields)).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bmclink_core::audit::{LinkEvent, SessionEvent, TlsEvent};
    use bmclink_core::tls::TlsError;
    use bmclink_core::Family;
    use smoltcp::wire::{EthernetAddress, Ipv4Address};
    use std::collections::BTreeMap;

    fn stand_in() -> (tempfile::TempDir, UnixDatagram, PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("socket");
        let server = UnixDatagram::bind(&path).unwrap();
        (t, server, path)
    }

    fn receive(server: &UnixDatagram) -> BTreeMap<String, Vec<u8>> {
        let mut buf = vec![0u8; 65536];
        let n = server.recv(&mut buf).unwrap();
        parse(&buf[..n]).unwrap().into_iter().collect()
    }

    fn text(m: &BTreeMap<String, Vec<u8>>, k: &str) -> String {
        String::from_utf8(m.get(k).unwrap_or_else(|| panic!("no {k}: {m:?}")).clone()).unwrap()
    }

    #[test]
    fn an_audit_event_reaches_the_journal_socket_with_its_id_priority_and_fields() {
        let (_t, server, path) = stand_in();
        let sink = JournalSink::connect(&path).unwrap();
        let event = AuditEvent::Link(LinkEvent::Ipv4Conflict {
            addr: Ipv4Address::new(169, 254, 1, 2),
            mac: EthernetAddress([2, 0xba, 0xd0, 0, 0, 3]),
            then: bmclink_core::link::ipv4ll::Retry::Same,
        });
        sink.send(&event).unwrap();
        let got = receive(&server);
        assert_eq!(text(&got, "MESSAGE"), format!("BL1002 {event}"));
        // The first 128 bits of SHA-256("bmclink audit BL1002"), as the
        // README documents (computed independently with Python's hashlib).
        assert_eq!(
            text(&got, "MESSAGE_ID"),
            hex::encode(&sha2_256(b"bmclink audit BL1002")[..16])
        );
        assert_eq!(text(&got, "PRIORITY"), "4");
        assert_eq!(text(&got, "SYSLOG_IDENTIFIER"), "bmclink");
        assert_eq!(text(&got, "SYSLOG_FACILITY"), "3");
        assert_eq!(text(&got, "BMCLINK_AUDIT_ID"), "BL1002");
        assert_eq!(text(&got, "BMCLINK_SEVERITY"), "warning");
        assert_eq!(text(&got, "BMCLINK_ADDR"), "169.254.1.2");
        assert_eq!(text(&got, "BMCLINK_MAC"), "02-ba-d0-00-00-03");
        assert_eq!(text(&got, "BMCLINK_THEN"), "same");
        assert_eq!(got.len(), 10, "{got:?}");

        let failed = AuditEvent::Session(SessionEvent::ConnectFailed {
            family: Family::V6,
            port: 5443,
        });
        sink.send(&failed).unwrap();
        let got = receive(&server);
        assert_eq!(text(&got, "BMCLINK_FAMILY"), "IPv6");
        assert_eq!(text(&got, "BMCLINK_PORT"), "5443");
        assert_eq!(text(&got, "PRIORITY"), "4");
    }

    fn sha2_256(data: &[u8]) -> Vec<u8> {
        use sha2::Digest;
        sha2::Sha256::digest(data).to_vec()
    }

    #[test]
    fn a_value_with_newlines_goes_in_the_binary_form_and_parses_back() {
        let (_t, server, path) = stand_in();
        let sink = JournalSink::connect(&path).unwrap();
        let multi = b"first line\nsecond = line\n\nlast";
        sink.send_fields(&[
            ("MESSAGE", b"one line"),
            ("BMCLINK_DETAIL", multi),
            ("PRIORITY", b"6"),
        ])
        .unwrap();
        let mut buf = vec![0u8; 4096];
        let n = server.recv(&mut buf).unwrap();
        let raw = &buf[..n];
        // The binary form on the wire: name, newline, LE64 length, bytes.
        let at = raw
            .windows(15)
            .position(|w| w == b"BMCLINK_DETAIL\n")
            .expect("binary field name");
        let len = u64::from_le_bytes(raw[at + 15..at + 23].try_into().unwrap());
        assert_eq!(len, multi.len() as u64);
        let got = parse(raw).unwrap();
        assert_eq!(
            got,
            vec![
                ("MESSAGE".to_owned(), b"one line".to_vec()),
                ("BMCLINK_DETAIL".to_owned(), multi.to_vec()),
                ("PRIORITY".to_owned(), b"6".to_vec()),
            ]
        );
    }

    #[test]
    fn the_parser_refuses_what_journald_would() {
        assert!(matches!(
            parse(b"MESSAGE=no newline"),
            Err(ParseError::Unterminated(_))
        ));
        assert!(matches!(parse(b"lower=x\n"), Err(ParseError::BadName(_))));
        assert!(matches!(
            parse(b"BIN\n\x05\x00\x00\x00\x00\x00\x00\x00ab\n"),
            Err(ParseError::BadLength(_))
        ));
    }

    #[test]
    fn field_names_are_upper_case_journal_names() {
        assert_eq!(field_name("family"), "BMCLINK_FAMILY");
        assert_eq!(field_name("wait_secs"), "BMCLINK_WAIT_SECS");
        assert_eq!(field_name("a-b.c"), "BMCLINK_A_B_C");
        // Every field name of the audit table makes a valid journal name.
        for row in bmclink_core::audit::TABLE.iter().flat_map(|l| l.iter()) {
            for f in row.fields {
                let n = field_name(f);
                assert!(parse(format!("{n}=x\n").as_bytes()).is_ok(), "{n}");
            }
        }
    }

    #[test]
    fn connecting_where_no_journal_listens_fails_so_the_caller_falls_back() {
        let t = tempfile::tempdir().unwrap();
        assert!(JournalSink::connect(&t.path().join("absent")).is_err());
    }

    /// The real journal, where one runs: write an entry, read it back with
    /// journalctl. Skips (saying why) where there is none; not a matter of
    /// root, so BMCLINK_REQUIRE_ROOT does not turn the skip into a failure.
    #[test]
    fn the_real_journal_gets_the_entry_and_journalctl_reads_it_back() {
        let socket = Path::new(JOURNAL_SOCKET);
        if !socket.exists() {
            eprintln!(
                "skipped: no journald here ({JOURNAL_SOCKET} is absent; containers and CI often \
                 run without systemd-journald; not a root matter)"
            );
            return;
        }
        let works = std::process::Command::new("journalctl")
            .args(["--version"])
            .output()
            .is_ok_and(|o| o.status.success());
        if !works {
            eprintln!("skipped: journalctl does not run here (not a root matter)");
            return;
        }
        let sink = JournalSink::connect(socket).expect("journald's socket accepts a connection");
        let token = format!("{}-{}", std::process::id(), crate::time::now_rfc3339());
        let event = AuditEvent::Tls(TlsEvent::handshake_failed(TlsError::PinMismatch {
            pinned: [0x11; 32],
            presented: [0x22; 32],
        }));
        let mut fields = entry_fields(&event);
        fields.push(("BMCLINK_TEST_TOKEN".into(), token.clone().into_bytes()));
        let borrowed: Vec<(&str, &[u8])> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()))
            .collect();
        sink.send_fields(&borrowed).unwrap();
        // journald writes asynchronously: look a bounded number of times.
        let mut found = None;
        for _ in 0..50 {
            let out = std::process::Command::new("journalctl")
                .args([
                    "--no-pager",
                    "-o",
                    "json",
                    &format!("BMCLINK_TEST_TOKEN={token}"),
                ])
                .output()
                .expect("journalctl runs");
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            if let Some(line) = text.lines().find(|l| !l.trim().is_empty()) {
                found = Some(line.to_owned());
                break;
            }
            if !out.status.success() {
                eprintln!(
                    "skipped: journalctl cannot read the journal here ({}; not a root matter: \
                     needs the systemd-journal group)",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let Some(line) = found else {
            eprintln!(
                "skipped: journald accepted the entry but journalctl never showed it (a \
                 journal that does not persist or forward here; not a root matter)"
            );
            return;
        };
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["MESSAGE_ID"], message_id_hex(event.id()));
        assert_eq!(v["SYSLOG_IDENTIFIER"], "bmclink");
        assert_eq!(v["PRIORITY"], "3");
        assert_eq!(v["BMCLINK_AUDIT_ID"], "BL4002");
        assert_eq!(v["BMCLINK_PINNED"], "111111111111");
        assert_eq!(v["BMCLINK_PRESENTED"], "222222222222");
    }
}
