//! Audit events: stable IDs (`BL` + four digits), a severity and a one-line
//! text naming the cause and, where there is one, the fix.
//!
//! Each layer owns its events in a file of its own here, in its own ID range:
//!
//! | range  | file          | layer                                   |
//! |--------|---------------|-----------------------------------------|
//! | BL1xxx | `link.rs`     | link-local addressing (ACD, DAD)        |
//! | BL2xxx | `session.rs`  | the channel session and its protocol    |
//! | BL3xxx | `policy.rs`   | the fallback policy                     |
//! | BL4xxx | `tls.rs`      | TLS, certificates, enrollment           |
//! | BL5xxx | `store.rs`    | persistent records                      |
//!
//! An event's `Display` is its one-line text; [`TABLE`] lists every ID with
//! its severity and summary so the README's table is generated, not copied.

use core::fmt;

#[macro_use]
mod entry;
mod fields;
mod link;
mod policy;
mod session;
mod store;
mod tls;

pub use entry::{AuditEntry, AuditId, Severity};
pub use fields::{AuditField, FieldValue};
pub use link::LinkEvent;
pub use policy::PolicyEvent;
pub use session::SessionEvent;
pub use store::StoreEvent;
pub use tls::TlsEvent;

/// Every audit event the core emits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditEvent {
    /// Link-local addressing.
    Link(LinkEvent),
    /// The channel session.
    Session(SessionEvent),
    /// The fallback policy.
    Policy(PolicyEvent),
    /// TLS, certificates and enrollment.
    Tls(TlsEvent),
    /// Persistent records.
    Store(StoreEvent),
}

impl AuditEvent {
    /// The stable ID.
    pub fn id(&self) -> AuditId {
        match self {
            AuditEvent::Link(e) => e.id(),
            AuditEvent::Session(e) => e.id(),
            AuditEvent::Policy(e) => e.id(),
            AuditEvent::Tls(e) => e.id(),
            AuditEvent::Store(e) => e.id(),
        }
    }

    /// The severity.
    pub fn severity(&self) -> Severity {
        match self {
            AuditEvent::Link(e) => e.severity(),
            AuditEvent::Session(e) => e.severity(),
            AuditEvent::Policy(e) => e.severity(),
            AuditEvent::Tls(e) => e.severity(),
            AuditEvent::Store(e) => e.severity(),
        }
    }

    /// Calls `f` with each of the event's fields by name, in order; no
    /// allocation (the values borrow from the event).
    pub fn for_each_field(&self, f: &mut dyn FnMut(&str, FieldValue<'_>)) {
        match self {
            AuditEvent::Link(e) => e.for_each_field(f),
            AuditEvent::Session(e) => e.for_each_field(f),
            AuditEvent::Policy(e) => e.for_each_field(f),
            AuditEvent::Tls(e) => e.for_each_field(f),
            AuditEvent::Store(e) => e.for_each_field(f),
        }
    }
}

impl fmt::Display for AuditEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuditEvent::Link(e) => e.fmt(f),
            AuditEvent::Session(e) => e.fmt(f),
            AuditEvent::Policy(e) => e.fmt(f),
            AuditEvent::Tls(e) => e.fmt(f),
            AuditEvent::Store(e) => e.fmt(f),
        }
    }
}

/// The full audit table, in ID order within each layer.
pub const TABLE: &[&[AuditEntry]] = &[
    link::TABLE,
    session::TABLE,
    policy::TABLE,
    tls::TABLE,
    store::TABLE,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_ids_are_unique_and_in_their_layer_range() {
        let mut seen: heapless::Vec<u16, 256> = heapless::Vec::new();
        for (layer, entries) in TABLE.iter().enumerate() {
            let base = (layer as u16 + 1) * 1000;
            for e in entries.iter() {
                assert!(
                    e.id.0 >= base && e.id.0 < base + 1000,
                    "{} outside its layer range",
                    e.id
                );
                assert!(!seen.contains(&e.id.0), "{} listed twice", e.id);
                seen.push(e.id.0).unwrap();
                assert!(!e.summary.is_empty());
            }
        }
    }

    fn hex16(id: [u8; 16]) -> heapless::String<32> {
        use core::fmt::Write;
        let mut s = heapless::String::new();
        for b in id {
            write!(s, "{b:02x}").unwrap();
        }
        s
    }

    #[test]
    fn message_ids_are_the_sha256_prefix_of_the_audit_id_and_unique() {
        // Python: hashlib.sha256(b"bmclink audit BL1001").hexdigest()[:32]
        assert_eq!(
            hex16(AuditId(1001).message_id()),
            "ca091b6ea0d506ce5f8c70f3bf49c894"
        );
        assert_eq!(
            hex16(AuditId(2006).message_id()),
            "398dc1e939c9423f980a5e5b9f4df5cb"
        );
        let mut seen: heapless::Vec<[u8; 16], 256> = heapless::Vec::new();
        for e in TABLE.iter().flat_map(|l| l.iter()) {
            let id = e.id.message_id();
            assert!(!seen.contains(&id), "{} shares its MESSAGE_ID", e.id);
            seen.push(id).unwrap();
        }
    }

    #[test]
    fn an_event_gives_its_fields_by_name_in_the_order_of_its_table_row() {
        extern crate std;
        use std::string::{String, ToString};
        use std::vec::Vec;

        use smoltcp::wire::{EthernetAddress, Ipv4Address};

        let event = AuditEvent::Link(LinkEvent::Ipv4Conflict {
            addr: Ipv4Address::new(169, 254, 1, 2),
            mac: EthernetAddress([2, 0xba, 0xd0, 0, 0, 3]),
            then: crate::link::ipv4ll::Retry::Another,
        });
        let mut got: Vec<(String, String, bool)> = Vec::new();
        event.for_each_field(&mut |name, value| {
            got.push((name.to_string(), value.to_string(), value.is_number()))
        });
        let expect = [
            ("addr", "169.254.1.2", false),
            ("mac", "02-ba-d0-00-00-03", false),
            ("then", "another", false),
        ];
        assert_eq!(got.len(), expect.len());
        for ((n, v, num), (en, ev, enum_)) in got.iter().zip(expect) {
            assert_eq!((n.as_str(), v.as_str(), *num), (en, ev, enum_));
        }
        let row = TABLE
            .iter()
            .flat_map(|l| l.iter())
            .find(|e| e.id == event.id())
            .unwrap();
        assert_eq!(row.fields, ["addr", "mac", "then"]);

        let failed = AuditEvent::Session(SessionEvent::ConnectFailed {
            family: crate::types::Family::V6,
            port: 5443,
        });
        let mut got: Vec<(String, String, bool)> = Vec::new();
        failed.for_each_field(&mut |name, value| {
            got.push((name.to_string(), value.to_string(), value.is_number()))
        });
        assert_eq!(got[0], ("family".into(), "IPv6".into(), false));
        assert_eq!(got[1], ("port".into(), "5443".into(), true));

        let mitm = AuditEvent::Tls(TlsEvent::handshake_failed(
            crate::tls::TlsError::PinMismatch {
                pinned: [0x11; 32],
                presented: [0xab; 32],
            },
        ));
        let mut got: Vec<(String, String)> = Vec::new();
        mitm.for_each_field(&mut |name, value| got.push((name.to_string(), value.to_string())));
        assert_eq!(got[0], ("pinned".into(), "111111111111".into()));
        assert_eq!(got[1], ("presented".into(), "abababababab".into()));

        // Every row names fields an event of it really has: none empty.
        for e in TABLE.iter().flat_map(|l| l.iter()) {
            assert!(e.fields.iter().all(|f| !f.is_empty()), "{}", e.id);
        }
    }
}
