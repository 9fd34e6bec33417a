//! Small vocabulary types shared by every layer.

use core::fmt;

/// An IP family on the USBNIC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Family {
    /// IPv4 link-local (169.254/16).
    V4,
    /// IPv6 link-local (fe80::/64).
    V6,
}

impl Family {
    /// The value carried in HELLO's `family` field.
    pub const fn wire(self) -> u8 {
        match self {
            Family::V4 => 4,
            Family::V6 => 6,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        })
    }
}

/// The channel a session runs over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Channel {
    /// The legacy plain channel (old firmware without TLS, T5).
    Plain,
    /// Mutually authenticated TLS 1.3.
    Tls13,
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Channel::Plain => "plain",
            Channel::Tls13 => "TLS 1.3",
        })
    }
}
