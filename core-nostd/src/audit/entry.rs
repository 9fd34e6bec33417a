//! What every audit event is made of: its stable ID, its severity, its row
//! in the audit table, and the macro each layer declares its events with.

use core::fmt;

/// Declares one layer's audit events: the enum, its `id()`, `severity()`,
/// `Display` (the one-line text), `for_each_field` (the fields by name) and
/// its `TABLE` rows, from one list so the five can never disagree.
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

            /// Calls `f` with each field's name and value, in declaration
            /// order (the names of the table row's `fields`).
            #[allow(unused_variables)]
            pub fn for_each_field(
                &self,
                f: &mut dyn FnMut(&str, $crate::audit::FieldValue<'_>),
            ) {
                match self {
                    $( $name::$variant { $($field),* } => {
                        $( f(stringify!($field), $crate::audit::AuditField::value($field)); )*
                    } )*
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
                    fields: &[$(stringify!($field)),*],
                },
            )*
        ];
    };
}

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

impl AuditId {
    /// The journal's `MESSAGE_ID` of this event: the first 128 bits of
    /// SHA-256 of `bmclink audit BLnnnn` (e.g. `bmclink audit BL1001`).
    /// Derived, not assigned, so it is stable for as long as the ID is and
    /// the catalog (`bmclink.catalog`) and every sink agree by construction.
    pub fn message_id(self) -> [u8; 16] {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(b"bmclink audit BL");
        // Four digits, as the ID displays (IDs are below 10000 by the
        // layer ranges; a larger one keeps its low four digits).
        let n = self.0 % 10_000;
        // Each quotient digit is below 10, so the additions cannot wrap.
        let digit = |d: u16| b'0'.wrapping_add((d % 10) as u8);
        let digits = [digit(n / 1000), digit(n / 100), digit(n / 10), digit(n)];
        h.update(digits);
        let digest = h.finalize();
        let mut id = [0u8; 16];
        for (d, s) in id.iter_mut().zip(digest.iter()) {
            *d = *s;
        }
        id
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
    /// The names of the event's fields (`for_each_field`), in order.
    pub fields: &'static [&'static str],
}
