//! Encodings of the persistent records kept through [`crate::platform::Store`].
//!
//! Each record is a few bytes: a magic byte naming the record, a format
//! version, then fixed fields. Decoding checks all three, so a truncated,
//! foreign or corrupt file is an error ([`RecordError`]), never a silent reset.

use smoltcp::wire::Ipv4Address;

/// Decoding failures of a stored record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RecordError {
    /// Wrong length for this record and version.
    Length(usize),
    /// The magic byte names another record.
    Magic(u8),
    /// A format version this build does not know.
    Version(u8),
    /// A field holds a value outside its range.
    Field,
}

const VERSION: u8 = 1;

/// The link record (P2/P3): the host side of the USBNIC was configured once,
/// with this IPv4 address. Its presence alone means "configured once".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LinkRecord {
    /// The IPv4 link-local address the host side was configured with.
    pub ipv4: Ipv4Address,
}

impl LinkRecord {
    const MAGIC: u8 = b'L';
    /// Encoded length in bytes.
    pub const LEN: usize = 6;

    /// Encodes into a fixed array.
    pub fn encode(&self) -> [u8; Self::LEN] {
        let [a, b, c, d] = self.ipv4.octets();
        [Self::MAGIC, VERSION, a, b, c, d]
    }

    /// Decodes, checking magic, version and that the address is link-local.
    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        let [m, v, a, b, c, d] = check::<{ Self::LEN }>(bytes, Self::MAGIC)?;
        let _ = (m, v);
        let ipv4 = Ipv4Address::new(a, b, c, d);
        if !ipv4.is_link_local() {
            return Err(RecordError::Field);
        }
        Ok(LinkRecord { ipv4 })
    }
}

/// The BMC capabilities cached from the last WELCOME (P7: a BMC without IPv6
/// on the USBNIC is remembered across restarts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BmcCapsRecord {
    /// Firmware version from WELCOME.
    pub firmware: [u8; 4],
    /// WELCOME `caps` bits (bit0 tls, bit1 tls-required, bit2 ipv6-usbnic).
    pub caps: u8,
}

impl BmcCapsRecord {
    const MAGIC: u8 = b'C';
    /// Encoded length in bytes.
    pub const LEN: usize = 7;

    /// Encodes into a fixed array.
    pub fn encode(&self) -> [u8; Self::LEN] {
        let [a, b, c, d] = self.firmware;
        [Self::MAGIC, VERSION, a, b, c, d, self.caps]
    }

    /// Decodes, checking magic, version and that no unknown caps bit is set.
    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        let [_, _, a, b, c, d, caps] = check::<{ Self::LEN }>(bytes, Self::MAGIC)?;
        if caps & !0b111 != 0 {
            return Err(RecordError::Field);
        }
        Ok(BmcCapsRecord {
            firmware: [a, b, c, d],
            caps,
        })
    }
}

/// The pinned BMC certificate fingerprint (SHA-256), B1: once present, the
/// plain channel is never used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PinRecord {
    /// SHA-256 of the BMC certificate's DER.
    pub sha256: [u8; 32],
}

impl PinRecord {
    const MAGIC: u8 = b'P';
    /// Encoded length in bytes.
    pub const LEN: usize = 34;

    /// Encodes into a fixed array.
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[0] = Self::MAGIC;
        out[1] = VERSION;
        out[2..].copy_from_slice(&self.sha256);
        out
    }

    /// Decodes, checking magic and version.
    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        let raw = check::<{ Self::LEN }>(bytes, Self::MAGIC)?;
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(&raw[2..]);
        Ok(PinRecord { sha256 })
    }
}

fn check<const N: usize>(bytes: &[u8], magic: u8) -> Result<[u8; N], RecordError> {
    let raw: [u8; N] = bytes
        .try_into()
        .map_err(|_| RecordError::Length(bytes.len()))?;
    match raw.first().copied() {
        Some(m) if m != magic => return Err(RecordError::Magic(m)),
        _ => {}
    }
    match raw.get(1).copied() {
        Some(VERSION) => Ok(raw),
        Some(v) => Err(RecordError::Version(v)),
        None => Err(RecordError::Length(bytes.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_record_round_trips_and_rejects_foreign_bytes() {
        let r = LinkRecord {
            ipv4: Ipv4Address::new(169, 254, 1, 2),
        };
        assert_eq!(LinkRecord::decode(&r.encode()), Ok(r));
        assert_eq!(LinkRecord::decode(&[]), Err(RecordError::Length(0)));
        assert_eq!(
            LinkRecord::decode(&[b'C', 1, 169, 254, 1, 2]),
            Err(RecordError::Magic(b'C'))
        );
        assert_eq!(
            LinkRecord::decode(&[b'L', 9, 169, 254, 1, 2]),
            Err(RecordError::Version(9))
        );
        assert_eq!(
            LinkRecord::decode(&[b'L', 1, 10, 0, 0, 1]),
            Err(RecordError::Field)
        );
    }

    #[test]
    fn caps_and_pin_records_round_trip() {
        let c = BmcCapsRecord {
            firmware: [3, 30, 30, 30],
            caps: 0b101,
        };
        assert_eq!(BmcCapsRecord::decode(&c.encode()), Ok(c));
        let mut bad = c.encode();
        bad[6] = 0x80;
        assert_eq!(BmcCapsRecord::decode(&bad), Err(RecordError::Field));
        let p = PinRecord { sha256: [7; 32] };
        assert_eq!(PinRecord::decode(&p.encode()), Ok(p));
        assert!(PinRecord::decode(&p.encode()[..33]).is_err());
    }
}
