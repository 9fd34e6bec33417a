//! An audit event's fields by name, for structured sinks (the JSON-lines
//! log's `fields`, the journal's `BMCLINK_*` fields), without allocation.
//!
//! Every event enumerates its fields with `for_each_field`, in declaration
//! order, under the names of the event's own fields (`addr`, `family`,
//! `port`, ...). [`AuditField`] says how each field type shows itself: a
//! number stays a number, an address or a fingerprint gets its usual text
//! form, an error its one-line description.

use core::fmt;

use smoltcp::wire::{EthernetAddress, Ipv4Address, Ipv6Address};

use crate::cert::{Fingerprint, ShortFingerprint};
use crate::link::ipv4ll::Retry;
use crate::platform::Record;
use crate::policy::{RecordProblem, StayReason};
use crate::proto::ProtoError;
use crate::tls::TlsError;
use crate::types::{Channel, Family};

/// One field's value, borrowed from the event for the length of a callback.
#[derive(Clone, Copy)]
pub enum FieldValue<'a> {
    /// A stable token (`IPv4`, `TLS 1.3`, `link`, `another`).
    Str(&'a str),
    /// A number (a port, a count, a code, seconds, Unix time).
    U64(u64),
    /// An IPv4 address.
    Ipv4(Ipv4Address),
    /// An IPv6 address.
    Ipv6(Ipv6Address),
    /// An Ethernet MAC address (`02-00-5e-10-00-02`, smoltcp's form).
    Mac(EthernetAddress),
    /// Bytes shown as lower-case hex: a fingerprint or its first bytes.
    Hex(&'a [u8]),
    /// A firmware version, `3.30.30.30`.
    Version([u8; 4]),
    /// A description in words (an error, a reason).
    Text(&'a dyn fmt::Display),
}

impl FieldValue<'_> {
    /// Whether the value is a number (JSON writes it unquoted).
    pub fn is_number(&self) -> bool {
        matches!(self, FieldValue::U64(_))
    }
}

impl fmt::Debug for FieldValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for FieldValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldValue::Str(s) => f.write_str(s),
            FieldValue::U64(n) => write!(f, "{n}"),
            FieldValue::Ipv4(a) => write!(f, "{a}"),
            FieldValue::Ipv6(a) => write!(f, "{a}"),
            FieldValue::Mac(m) => write!(f, "{m}"),
            FieldValue::Hex(bytes) => {
                for b in bytes.iter() {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
            FieldValue::Version([a, b, c, d]) => write!(f, "{a}.{b}.{c}.{d}"),
            FieldValue::Text(t) => t.fmt(f),
        }
    }
}

/// A type an audit event may carry as a field.
pub trait AuditField {
    /// The value as a sink shows it.
    fn value(&self) -> FieldValue<'_>;
}

macro_rules! numbers {
    ($($t:ty),*) => {
        $(impl AuditField for $t {
            fn value(&self) -> FieldValue<'_> {
                FieldValue::U64(u64::from(*self))
            }
        })*
    };
}

numbers!(u8, u16, u32, u64);

impl AuditField for Ipv4Address {
    fn value(&self) -> FieldValue<'_> {
        FieldValue::Ipv4(*self)
    }
}

impl AuditField for Ipv6Address {
    fn value(&self) -> FieldValue<'_> {
        FieldValue::Ipv6(*self)
    }
}

impl AuditField for EthernetAddress {
    fn value(&self) -> FieldValue<'_> {
        FieldValue::Mac(*self)
    }
}

/// A firmware version.
impl AuditField for [u8; 4] {
    fn value(&self) -> FieldValue<'_> {
        FieldValue::Version(*self)
    }
}

impl AuditField for Family {
    fn value(&self) -> FieldValue<'_> {
        FieldValue::Str(match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        })
    }
}

impl AuditField for Channel {
    fn value(&self) -> FieldValue<'_> {
        FieldValue::Str(match self {
            Channel::Plain => "plain",
            Channel::Tls13 => "TLS 1.3",
        })
    }
}

impl AuditField for Retry {
    fn value(&self) -> FieldValue<'_> {
        FieldValue::Str(match self {
            Retry::Another => "another",
            Retry::Same => "same",
        })
    }
}

impl AuditField for Record {
    fn value(&self) -> FieldValue<'_> {
        FieldValue::Str(self.name())
    }
}

impl AuditField for ShortFingerprint {
    fn value(&self) -> FieldValue<'_> {
        FieldValue::Hex(&self.0)
    }
}

impl AuditField for Fingerprint {
    fn value(&self) -> FieldValue<'_> {
        FieldValue::Hex(&self.0)
    }
}

impl AuditField for ProtoError {
    fn value(&self) -> FieldValue<'_> {
        FieldValue::Text(self)
    }
}

impl AuditField for TlsError {
    fn value(&self) -> FieldValue<'_> {
        FieldValue::Text(self)
    }
}

impl AuditField for RecordProblem {
    fn value(&self) -> FieldValue<'_> {
        FieldValue::Text(self)
    }
}

impl AuditField for StayReason {
    fn value(&self) -> FieldValue<'_> {
        FieldValue::Text(self)
    }
}
