//! WELCOME's capability bits.

use core::fmt;
use core::ops::BitOr;

/// The BMC's capabilities, as announced in WELCOME's `caps` byte.
///
/// Reserved bits are kept (so a WELCOME re-emits to the same bytes) and
/// ignored by the accessors: capabilities are an offer, and a newer BMC
/// advertising more must not break this agent. Use [`Caps::known`] to drop
/// them, e.g. before persisting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Caps(u8);

impl Caps {
    /// Bit 0: the BMC offers the TLS channel.
    pub const TLS: Caps = Caps(0x01);
    /// Bit 1: the BMC refuses the plain channel (T6).
    pub const TLS_REQUIRED: Caps = Caps(0x02);
    /// Bit 2: the BMC's firmware supports IPv6 on the USBNIC (P7).
    pub const IPV6_USBNIC: Caps = Caps(0x04);
    /// Every bit v1 defines.
    pub const KNOWN_BITS: u8 = 0x07;

    /// No capability.
    pub const fn empty() -> Caps {
        Caps(0)
    }

    /// From the wire byte, reserved bits included.
    pub const fn from_bits(bits: u8) -> Caps {
        Caps(bits)
    }

    /// The wire byte, reserved bits included.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether the BMC offers TLS.
    pub const fn tls(self) -> bool {
        self.contains(Caps::TLS)
    }

    /// Whether the BMC refuses the plain channel.
    pub const fn tls_required(self) -> bool {
        self.contains(Caps::TLS_REQUIRED)
    }

    /// Whether the BMC supports IPv6 on the USBNIC.
    pub const fn ipv6_usbnic(self) -> bool {
        self.contains(Caps::IPV6_USBNIC)
    }

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: Caps) -> bool {
        self.0 & other.0 == other.0
    }

    /// The bits of both.
    pub const fn union(self, other: Caps) -> Caps {
        Caps(self.0 | other.0)
    }

    /// Only the bits v1 defines.
    pub const fn known(self) -> Caps {
        Caps(self.0 & Self::KNOWN_BITS)
    }

    /// The reserved bits that are set (0 from a v1 BMC).
    pub const fn unknown_bits(self) -> u8 {
        self.0 & !Self::KNOWN_BITS
    }
}

impl BitOr for Caps {
    type Output = Caps;

    fn bitor(self, rhs: Caps) -> Caps {
        self.union(rhs)
    }
}

impl fmt::Display for Caps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (self.tls(), "tls"),
            (self.tls_required(), "tls-required"),
            (self.ipv6_usbnic(), "ipv6-usbnic"),
        ];
        let mut first = true;
        for (_, name) in names.iter().filter(|(set, _)| *set) {
            if !first {
                f.write_str(",")?;
            }
            f.write_str(name)?;
            first = false;
        }
        if self.unknown_bits() != 0 {
            if !first {
                f.write_str(",")?;
            }
            write!(f, "0x{:02x}", self.unknown_bits())?;
            first = false;
        }
        if first {
            f.write_str("none")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors_follow_the_wire_bits() {
        let c = Caps::from_bits(0b101);
        assert!(c.tls() && !c.tls_required() && c.ipv6_usbnic());
        assert_eq!(c, Caps::TLS | Caps::IPV6_USBNIC);
        assert_eq!(c.bits(), 5);
        assert!(!Caps::empty().tls());
    }

    #[test]
    fn reserved_bits_are_kept_but_ignored() {
        let c = Caps::from_bits(0xf2);
        assert_eq!(c.bits(), 0xf2);
        assert!(c.tls_required() && !c.tls() && !c.ipv6_usbnic());
        assert_eq!(c.unknown_bits(), 0xf0);
        assert_eq!(c.known(), Caps::TLS_REQUIRED);
    }
}
