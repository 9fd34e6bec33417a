//! The SMBIOS entry point (DSP0134 §5.2): `_SM_` (2.1 to 2.x, 32-bit) and
//! `_SM3_` (3.x, 64-bit). On Linux it is
//! `/sys/firmware/dmi/tables/smbios_entry_point`; dmidecode's `--dump-bin`
//! files start with it (table address rewritten to 32, where the table
//! follows).

use super::{le_u16, le_u32, le_u64, SmbiosError};

mod field {
    pub type Field = core::ops::Range<usize>;

    /// `_SM_`: the anchor.
    pub const SM_ANCHOR: Field = 0..4;
    /// `_SM_`: checksum over the whole entry point.
    pub const SM_CHECKSUM: usize = 4;
    /// `_SM_`: entry point length (0x1F; 0x1E from a mistake in SMBIOS 2.1).
    pub const SM_LEN: usize = 5;
    /// `_SM_`: major and minor version.
    pub const SM_MAJOR: usize = 6;
    pub const SM_MINOR: usize = 7;
    /// `_SM_`: the intermediate `_DMI_` anchor and its own checksum.
    pub const SM_DMI_ANCHOR: Field = 16..21;
    pub const SM_DMI: Field = 16..31;
    /// `_SM_`: structure table length, address, structure count.
    pub const SM_TABLE_LEN: Field = 22..24;
    pub const SM_TABLE_ADDR: Field = 24..28;
    pub const SM_COUNT: Field = 28..30;
    /// `_SM_`: the shortest length accepted.
    pub const SM_MIN_LEN: u8 = 0x1E;

    /// `_SM3_`: the anchor.
    pub const SM3_ANCHOR: Field = 0..5;
    /// `_SM3_`: checksum over the whole entry point.
    pub const SM3_CHECKSUM: usize = 5;
    /// `_SM3_`: entry point length (0x18).
    pub const SM3_LEN: usize = 6;
    /// `_SM3_`: major, minor and docrev.
    pub const SM3_MAJOR: usize = 7;
    pub const SM3_MINOR: usize = 8;
    pub const SM3_DOCREV: usize = 9;
    /// `_SM3_`: entry point revision (1).
    pub const SM3_REVISION: usize = 10;
    /// `_SM3_`: structure table maximum size and address.
    pub const SM3_TABLE_MAX: Field = 12..16;
    pub const SM3_TABLE_ADDR: Field = 16..24;
    /// `_SM3_`: its length.
    pub const SM3_MIN_LEN: u8 = 0x18;
}

/// Which entry point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Anchor {
    /// `_SM_`: SMBIOS 2.x, 32-bit table address, structure count.
    Smbios2,
    /// `_SM3_`: SMBIOS 3.x, 64-bit address, maximum table size, no count.
    Smbios3,
}

impl Anchor {
    /// The anchor string.
    pub fn text(self) -> &'static str {
        match self {
            Anchor::Smbios2 => "_SM_",
            Anchor::Smbios3 => "_SM3_",
        }
    }
}

/// The SMBIOS version an entry point announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Version {
    /// Major version.
    pub major: u8,
    /// Minor version.
    pub minor: u8,
    /// Document revision (3.x only; 0 for 2.x).
    pub docrev: u8,
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.major >= 3 {
            write!(f, "{}.{}.{}", self.major, self.minor, self.docrev)
        } else {
            write!(f, "{}.{}", self.major, self.minor)
        }
    }
}

fn put(ep: &mut [u8], range: core::ops::Range<usize>, value: &[u8]) {
    if let Some(d) = ep.get_mut(range) {
        if d.len() == value.len() {
            d.copy_from_slice(value);
        }
    }
}

fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |s, b| s.wrapping_add(*b))
}

/// A view over an entry point's bytes.
#[derive(Debug, Clone)]
pub struct EntryPoint<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EntryPoint<T> {
    /// A view without any check; accessors return 0 for missing bytes.
    pub fn new_unchecked(buffer: T) -> Self {
        EntryPoint { buffer }
    }

    /// A view after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self, SmbiosError> {
        let e = Self::new_unchecked(buffer);
        e.check_len()?;
        Ok(e)
    }

    fn bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    fn byte(&self, at: usize) -> u8 {
        self.bytes().get(at).copied().unwrap_or(0)
    }

    /// Which anchor the bytes start with.
    pub fn anchor(&self) -> Result<Anchor, SmbiosError> {
        let b = self.bytes();
        if b.get(field::SM3_ANCHOR) == Some(b"_SM3_") {
            Ok(Anchor::Smbios3)
        } else if b.get(field::SM_ANCHOR) == Some(b"_SM_") {
            Ok(Anchor::Smbios2)
        } else {
            let mut found = [0u8; 5];
            for (d, s) in found.iter_mut().zip(b) {
                *d = *s;
            }
            Err(SmbiosError::NoEntryPoint { found })
        }
    }

    /// The entry point's own length field.
    pub fn length(&self) -> u8 {
        match self.anchor() {
            Ok(Anchor::Smbios3) => self.byte(field::SM3_LEN),
            _ => self.byte(field::SM_LEN),
        }
    }

    /// Checks the anchor, the length field against the layout and the
    /// buffer, and the checksums (dmidecode refuses an entry point whose
    /// checksum is wrong, and so does this).
    pub fn check_len(&self) -> Result<(), SmbiosError> {
        let anchor = self.anchor()?;
        let (min, len) = match anchor {
            Anchor::Smbios2 => (field::SM_MIN_LEN, self.byte(field::SM_LEN)),
            Anchor::Smbios3 => (field::SM3_MIN_LEN, self.byte(field::SM3_LEN)),
        };
        let have = self.bytes().len();
        if len < min {
            return Err(SmbiosError::EntryLength { anchor, len, min });
        }
        let Some(ep) = self.bytes().get(..usize::from(len)) else {
            return Err(SmbiosError::EntryTruncated {
                anchor,
                len: have,
                need: usize::from(len),
            });
        };
        let sum = checksum(ep);
        if sum != 0 {
            return Err(SmbiosError::EntryChecksum { anchor, sum });
        }
        if anchor == Anchor::Smbios2 {
            if self.bytes().get(field::SM_DMI_ANCHOR) != Some(b"_DMI_") {
                return Err(SmbiosError::NoIntermediateAnchor);
            }
            let sum = self.bytes().get(field::SM_DMI).map(checksum).unwrap_or(1);
            if sum != 0 {
                return Err(SmbiosError::EntryChecksum { anchor, sum });
            }
        }
        Ok(())
    }

    /// The SMBIOS version.
    pub fn version(&self) -> Version {
        match self.anchor() {
            Ok(Anchor::Smbios3) => Version {
                major: self.byte(field::SM3_MAJOR),
                minor: self.byte(field::SM3_MINOR),
                docrev: self.byte(field::SM3_DOCREV),
            },
            _ => Version {
                major: self.byte(field::SM_MAJOR),
                minor: self.byte(field::SM_MINOR),
                docrev: 0,
            },
        }
    }

    /// The table length (2.x: exact; 3.x: the maximum).
    pub fn table_len(&self) -> u32 {
        match self.anchor() {
            Ok(Anchor::Smbios3) => le_u32(self.bytes(), field::SM3_TABLE_MAX.start),
            _ => u32::from(le_u16(self.bytes(), field::SM_TABLE_LEN.start)),
        }
    }

    /// The table's physical address (32 in a `--dump-bin` file).
    pub fn table_address(&self) -> u64 {
        match self.anchor() {
            Ok(Anchor::Smbios3) => le_u64(self.bytes(), field::SM3_TABLE_ADDR.start),
            _ => u64::from(le_u32(self.bytes(), field::SM_TABLE_ADDR.start)),
        }
    }

    /// The number of structures (2.x only).
    pub fn structure_count(&self) -> Option<u16> {
        match self.anchor() {
            Ok(Anchor::Smbios2) => Some(le_u16(self.bytes(), field::SM_COUNT.start)),
            _ => None,
        }
    }
}

/// What an entry point says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct EntryPointRepr {
    /// Which entry point.
    pub anchor: Anchor,
    /// The SMBIOS version.
    pub version: Version,
    /// The table length (2.x: exact; 3.x: the maximum).
    pub table_len: u32,
    /// The table's physical address.
    pub table_address: u64,
    /// The number of structures (2.x only).
    pub structures: Option<u16>,
}

impl EntryPointRepr {
    /// Parses a checked view.
    pub fn parse<T: AsRef<[u8]>>(e: &EntryPoint<T>) -> Result<Self, SmbiosError> {
        e.check_len()?;
        Ok(EntryPointRepr {
            anchor: e.anchor()?,
            version: e.version(),
            table_len: e.table_len(),
            table_address: e.table_address(),
            structures: e.structure_count(),
        })
    }

    /// The entry point's length: 0x1F or 0x18.
    pub fn buffer_len(&self) -> usize {
        match self.anchor {
            Anchor::Smbios2 => 0x1F,
            Anchor::Smbios3 => usize::from(field::SM3_MIN_LEN),
        }
    }

    /// Writes the entry point, checksums included, into the first
    /// [`buffer_len`](Self::buffer_len) bytes of `buf` (bytes missing from
    /// a short buffer are skipped: the result then fails `check_len`).
    pub fn emit(&self, buf: &mut [u8]) {
        let n = self.buffer_len().min(buf.len());
        let Some(ep) = buf.get_mut(..n) else { return };
        ep.fill(0);
        match self.anchor {
            Anchor::Smbios2 => {
                put(ep, field::SM_ANCHOR, b"_SM_");
                put(ep, field::SM_LEN..field::SM_LEN + 1, &[0x1F]);
                put(
                    ep,
                    field::SM_MAJOR..field::SM_MAJOR + 1,
                    &[self.version.major],
                );
                put(
                    ep,
                    field::SM_MINOR..field::SM_MINOR + 1,
                    &[self.version.minor],
                );
                put(ep, field::SM_DMI_ANCHOR, b"_DMI_");
                let len = u16::try_from(self.table_len).unwrap_or(u16::MAX);
                put(ep, field::SM_TABLE_LEN, &len.to_le_bytes());
                let addr = u32::try_from(self.table_address).unwrap_or(u32::MAX);
                put(ep, field::SM_TABLE_ADDR, &addr.to_le_bytes());
                put(
                    ep,
                    field::SM_COUNT,
                    &self.structures.unwrap_or(0).to_le_bytes(),
                );
                // BCD revision, as dmidecode's legacy view reads it.
                let bcd = self.version.major.wrapping_shl(4) | (self.version.minor & 0x0F);
                put(ep, 30..31, &[bcd]);
                let dmi = ep.get(field::SM_DMI).map(checksum).unwrap_or(0);
                put(ep, 21..22, &[0u8.wrapping_sub(dmi)]);
                let all = checksum(ep);
                put(
                    ep,
                    field::SM_CHECKSUM..field::SM_CHECKSUM + 1,
                    &[0u8.wrapping_sub(all)],
                );
            }
            Anchor::Smbios3 => {
                put(ep, field::SM3_ANCHOR, b"_SM3_");
                put(
                    ep,
                    field::SM3_LEN..field::SM3_LEN + 1,
                    &[field::SM3_MIN_LEN],
                );
                put(
                    ep,
                    field::SM3_MAJOR..field::SM3_MAJOR + 1,
                    &[self.version.major],
                );
                put(
                    ep,
                    field::SM3_MINOR..field::SM3_MINOR + 1,
                    &[self.version.minor],
                );
                put(
                    ep,
                    field::SM3_DOCREV..field::SM3_DOCREV + 1,
                    &[self.version.docrev],
                );
                put(ep, field::SM3_REVISION..field::SM3_REVISION + 1, &[1]);
                put(ep, field::SM3_TABLE_MAX, &self.table_len.to_le_bytes());
                put(ep, field::SM3_TABLE_ADDR, &self.table_address.to_le_bytes());
                let all = checksum(ep);
                put(
                    ep,
                    field::SM3_CHECKSUM..field::SM3_CHECKSUM + 1,
                    &[0u8.wrapping_sub(all)],
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repr(anchor: Anchor) -> EntryPointRepr {
        EntryPointRepr {
            anchor,
            version: Version {
                major: if anchor == Anchor::Smbios3 { 3 } else { 2 },
                minor: if anchor == Anchor::Smbios3 { 2 } else { 8 },
                docrev: 0,
            },
            table_len: 0x1234,
            table_address: 32,
            structures: (anchor == Anchor::Smbios2).then_some(7),
        }
    }

    #[test]
    fn both_entry_points_round_trip_with_valid_checksums() {
        for anchor in [Anchor::Smbios2, Anchor::Smbios3] {
            let r = repr(anchor);
            let mut buf = vec![0u8; r.buffer_len()];
            r.emit(&mut buf);
            assert_eq!(buf.iter().fold(0u8, |s, b| s.wrapping_add(*b)), 0);
            let e = EntryPoint::new_checked(&buf[..]).unwrap();
            assert_eq!(EntryPointRepr::parse(&e).unwrap(), r);
        }
    }

    #[test]
    fn a_wrong_checksum_a_short_buffer_and_no_anchor_are_errors() {
        let r = repr(Anchor::Smbios3);
        let mut buf = vec![0u8; 0x18];
        r.emit(&mut buf);
        buf[0x0C] ^= 1;
        assert!(matches!(
            EntryPoint::new_checked(&buf[..]),
            Err(SmbiosError::EntryChecksum { .. })
        ));
        assert!(matches!(
            EntryPoint::new_checked(&buf[..10]),
            Err(SmbiosError::EntryTruncated { need: 0x18, .. })
        ));
        assert!(matches!(
            EntryPoint::new_checked(&b"_DMI_ xx"[..]),
            Err(SmbiosError::NoEntryPoint { .. })
        ));
        // An unchecked view over nothing answers zeros, never panics.
        let e = EntryPoint::new_unchecked(&[][..]);
        assert_eq!((e.table_len(), e.table_address(), e.length()), (0, 0, 0));
    }
}
