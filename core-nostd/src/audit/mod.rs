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

/// Declares one layer's audit events: the enum, its `id()`, `severity()`,
/// `Display` (the one-line text) and its `TABLE` rows, from one list so the
/// four can never disagree.
///
/// ```ignore
/// audit_events! {
///     /// Doc of the enum.
///     pub enum LinkEvent {
///         /// Doc of the event.
///         Claimed { addr: Ipv4Address } = (1001, Info, "IPv4 link-local address claimed")
///             => ("claimed {addr} on the USBNIC"),
///     }
/// }
/// ```
macro_rules! audit_events {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $(
                $(#[doc = $doc:literal])*
                $variant:ident { $($field:ident : $ty:ty),* $(,)? }
                    = ($id:literal, $sev:ident, $summary:literal)
                    => ($($fmt:tt)*),
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum $name {
            $(
                $(#[doc = $doc])*
                $variant { $(#[allow(missing_docs)] $field: $ty),* },
            )*
        }

        impl $name {
            /// The stable ID.
            pub fn id(&self) -> $crate::audit::AuditId {
                match self {
                    $( $name::$variant { .. } => $crate::audit::AuditId($id), )*
                }
            }

            /// The severity.
            pub fn severity(&self) -> $crate::audit::Severity {
                match self {
                    $( $name::$variant { .. } => $crate::audit::Severity::$sev, )*
                }
            }
        }

        impl core::fmt::Display for $name {
            #[allow(unused_variables)]
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                match self {
                    $( $name::$variant { $($field),* } => write!(f, $($fmt)*), )*
                }
            }
        }

        /// This layer's rows of the audit table.
        pub const TABLE: &[$crate::audit::AuditEntry] = &[
            $(
                $crate::audit::AuditEntry {
                    id: $crate::audit::AuditId($id),
                    severity: $crate::audit::Severity::$sev,
                    summary: $summary,
                },
            )*
        ];
    };
}

mod link;
mod policy;
mod session;
mod store;
mod tls;

pub use link::LinkEvent;
pub use policy::PolicyEvent;
pub use session::SessionEvent;
pub use store::StoreEvent;
pub use tls::TlsEvent;

/// How much an event matters, in syslog terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Severity {
    /// Something is broken and needs a person (syslog `err`).
    Error,
    /// Degraded or about to break (syslog `warning`).
    Warning,
    /// Normal but significant (syslog `notice`).
    Notice,
    /// Informational (syslog `info`).
    Info,
}

impl Severity {
    /// The lower-case name used in logs and JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Notice => "notice",
            Severity::Info => "info",
        }
    }
}

/// A stable audit identifier; displays as `BL` and four digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AuditId(pub u16);

impl fmt::Display for AuditId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BL{:04}", self.0)
    }
}

/// One row of the audit table: id, severity and a summary of the text.
#[derive(Debug, Clone, Copy)]
pub struct AuditEntry {
    /// The stable ID.
    pub id: AuditId,
    /// Its severity.
    pub severity: Severity,
    /// What it means and, where there is one, the fix.
    pub summary: &'static str,
}

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
}
