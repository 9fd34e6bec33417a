//! SMBIOS (DMTF DSP0134), as far as bmclink needs it: the entry point, the
//! structure table, and type 42 with DSP0270 v1.3's Redfish host interface,
//! where the BMC publishes its USB NIC and addresses.
//!
//! Codecs in the style of `smoltcp::wire`: a view per layout
//! ([`entry::EntryPoint`], [`host_interface::Packet`], [`redfish::Packet`])
//! with its fields in a private `mod field`, and a decoded form (`Repr`).
//! Nothing here does I/O except [`Smbios::read_sysfs`] and
//! [`Smbios::read_dump`], and nothing panics on any input: every read goes
//! through `get`, a bad length is an error that names it, and whatever was
//! well formed before the error is kept (as dmidecode does).
//!
//! Sources: `/sys/firmware/dmi/tables/{smbios_entry_point,DMI}`, and
//! dmidecode's `--dump-bin` files (the entry point, padded to 32 bytes,
//! then the table).
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects
    )
)]

pub mod device;
pub mod entry;
pub mod host_interface;
pub mod redfish;
pub mod structure;

use std::io;
use std::path::{Path, PathBuf};

pub use device::Device;
pub use entry::{Anchor, EntryPoint, EntryPointRepr, Version};
pub use host_interface::{HostInterface, Protocol};
pub use redfish::RedfishOverIp;
pub use structure::{Structure, Structures};

/// dmidecode's word for a value outside the specification.
pub const OUT_OF_SPEC: &str = "<OUT OF SPEC>";

/// Where a `--dump-bin` file puts the table.
pub const DUMP_TABLE_OFFSET: usize = 32;

/// The entry point or the table is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmbiosError {
    /// Neither `_SM_` nor `_SM3_`.
    #[error("no SMBIOS entry point: the data starts with {found:02x?}, not \"_SM_\" or \"_SM3_\"")]
    NoEntryPoint {
        /// The first bytes found.
        found: [u8; 5],
    },
    /// The entry point's length field is below its layout's.
    #[error("the {} entry point says it is {len} bytes long; its layout needs {min}", anchor.text())]
    EntryLength {
        /// Which entry point.
        anchor: Anchor,
        /// The length field.
        len: u8,
        /// The layout's length.
        min: u8,
    },
    /// Fewer bytes than the entry point's length field.
    #[error("the {} entry point is cut short: {len} bytes of {need}", anchor.text())]
    EntryTruncated {
        /// Which entry point.
        anchor: Anchor,
        /// Bytes there.
        len: usize,
        /// Bytes announced.
        need: usize,
    },
    /// A checksum does not add up to zero.
    #[error("the {} entry point's checksum is wrong (its bytes add up to {sum:#04x}, not 0)", anchor.text())]
    EntryChecksum {
        /// Which entry point.
        anchor: Anchor,
        /// The byte sum.
        sum: u8,
    },
    /// A `_SM_` entry point without its `_DMI_` part.
    #[error("the _SM_ entry point has no _DMI_ anchor at offset 16")]
    NoIntermediateAnchor,
    /// A structure's length is below its 4-byte header.
    #[error("the structure at table offset {offset} (type {kind}) has length {length}, less than its 4-byte header; the rest of the table cannot be read")]
    StructureLength {
        /// Where it starts.
        offset: usize,
        /// Its type.
        kind: u8,
        /// Its length field.
        length: u8,
    },
    /// A structure runs past the end of the table.
    #[error("the structure at table offset {offset} (type {kind}, length {length}) runs past the end of the table ({table_len} bytes)")]
    StructureTruncated {
        /// Where it starts.
        offset: usize,
        /// Its type.
        kind: u8,
        /// Its length field.
        length: u8,
        /// The table's size.
        table_len: usize,
    },
    /// A dump file's table address is not the 32 dmidecode writes.
    #[error("the dump's entry point puts the table at {address:#x}, not at offset 32 as `dmidecode --dump-bin` does")]
    DumpAddress {
        /// The table address found.
        address: u64,
    },
}

/// A type-42 structure is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostInterfaceError {
    /// Shorter than header + type + data length + record count.
    #[error("the structure is {length} bytes, too short for a host interface (7)")]
    StructureShort {
        /// The length field.
        length: usize,
    },
    /// The interface data length runs past the structure.
    #[error("the interface data length {data_len} runs past the structure ({length} bytes)")]
    InterfaceDataOverrun {
        /// The data length field.
        data_len: u8,
        /// The structure length.
        length: usize,
    },
    /// A protocol record runs past the structure.
    #[error("protocol record {record} ({len} data bytes) runs past the structure ({available} bytes left)")]
    RecordOverrun {
        /// Which record (1-based).
        record: u8,
        /// Its length field.
        len: u8,
        /// What was left.
        available: usize,
    },
    /// A Redfish-over-IP record shorter than its fixed part.
    #[error("the Redfish-over-IP record is {len} bytes, shorter than its 91 fixed bytes")]
    RedfishRecordShort {
        /// Its length.
        len: usize,
    },
    /// The host name length runs past the record.
    #[error(
        "the Redfish service host name length {len} runs past the record ({available} bytes left)"
    )]
    HostnameOverrun {
        /// The length field.
        len: u8,
        /// What was left.
        available: usize,
    },
}

/// Little-endian u16 at `at`; 0 when the bytes are not there.
pub(crate) fn le_u16(b: &[u8], at: usize) -> u16 {
    b.get(at..)
        .and_then(|s| s.first_chunk::<2>())
        .map(|c| u16::from_le_bytes(*c))
        .unwrap_or(0)
}

/// Little-endian u32 at `at`; 0 when the bytes are not there.
pub(crate) fn le_u32(b: &[u8], at: usize) -> u32 {
    b.get(at..)
        .and_then(|s| s.first_chunk::<4>())
        .map(|c| u32::from_le_bytes(*c))
        .unwrap_or(0)
}

/// Little-endian u64 at `at`; 0 when the bytes are not there.
pub(crate) fn le_u64(b: &[u8], at: usize) -> u64 {
    b.get(at..)
        .and_then(|s| s.first_chunk::<8>())
        .map(|c| u64::from_le_bytes(*c))
        .unwrap_or(0)
}

/// SMBIOS data could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The data is not a usable SMBIOS table.
    #[error("{path}: {source}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: SmbiosError,
    },
}

/// An SMBIOS entry point and its table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Smbios {
    /// The entry point.
    pub entry: EntryPointRepr,
    /// The table bytes (at most the entry point's length).
    pub table: Vec<u8>,
    /// The entry point announced more table than there was (dmidecode says
    /// the same, and reads what is there).
    pub short_by: Option<usize>,
}

impl Smbios {
    /// From an entry point and the table bytes.
    pub fn new(entry: &[u8], table: &[u8]) -> Result<Self, SmbiosError> {
        let e = EntryPointRepr::parse(&EntryPoint::new_unchecked(entry))?;
        let announced = usize::try_from(e.table_len).unwrap_or(usize::MAX);
        let table = table.get(..announced.min(table.len())).unwrap_or(&[]);
        // A 3.x length is only a maximum; a 2.x one is exact.
        let short_by = (e.anchor == Anchor::Smbios2 && table.len() < announced)
            .then(|| announced.saturating_sub(table.len()));
        Ok(Smbios {
            entry: e,
            table: table.to_vec(),
            short_by,
        })
    }

    /// From the bytes of a `dmidecode --dump-bin` file.
    pub fn from_dump(dump: &[u8]) -> Result<Self, SmbiosError> {
        let e = EntryPointRepr::parse(&EntryPoint::new_unchecked(dump))?;
        if e.table_address != DUMP_TABLE_OFFSET as u64 {
            return Err(SmbiosError::DumpAddress {
                address: e.table_address,
            });
        }
        Self::new(dump, dump.get(DUMP_TABLE_OFFSET..).unwrap_or(&[]))
    }

    /// Reads `dir/smbios_entry_point` and `dir/DMI` (`dir` is
    /// `/sys/firmware/dmi/tables` on Linux).
    pub fn read_sysfs(dir: &Path) -> Result<Self, ReadError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|source| ReadError::Io { path, source })
        };
        let entry = read("smbios_entry_point")?;
        let table = read("DMI")?;
        Self::new(&entry, &table).map_err(|source| ReadError::Format {
            path: dir.join("smbios_entry_point"),
            source,
        })
    }

    /// Reads a `dmidecode --dump-bin` file.
    pub fn read_dump(path: &Path) -> Result<Self, ReadError> {
        let bytes = std::fs::read(path).map_err(|source| ReadError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_dump(&bytes).map_err(|source| ReadError::Format {
            path: path.to_owned(),
            source,
        })
    }

    /// The table's structures (2.x: as many as announced; 3.x: up to the
    /// end-of-table structure).
    pub fn structures(&self) -> Structures<'_> {
        Structures::new(&self.table, self.entry.structures)
    }

    /// Every type-42 structure, decoded, and the error that ended the
    /// table walk early, if one did.
    pub fn host_interfaces(&self) -> (Vec<HostInterface>, Option<SmbiosError>) {
        let mut found = Vec::new();
        for s in self.structures() {
            match s {
                Ok(s) if s.kind() == host_interface::TYPE => found.push(HostInterface::parse(&s)),
                Ok(_) => {}
                Err(e) => return (found, Some(e)),
            }
        }
        (found, None)
    }
}

/// The body of the `smbios` fuzz target (and of its corpus replay in
/// `cargo test`): `data` is read as a dump, as a bare table and as a type-42
/// structure; nothing may panic, and every host interface found must print.
pub fn fuzz(data: &[u8]) {
    let mut printed = String::new();
    if let Ok(s) = Smbios::from_dump(data) {
        let (his, _) = s.host_interfaces();
        for hi in &his {
            printed.push_str(&format!("{hi:?}"));
        }
    }
    for s in Structures::new(data, None).take(64).flatten() {
        let hi = HostInterface::parse(&s);
        printed.push_str(&format!("{hi:?}"));
        if let Some(r) = hi.redfish() {
            printed.push_str(&r.uuid_text());
            let _ = (r.host_ip(), r.service_ip());
        }
    }
    let p = redfish::Packet::new_unchecked(data);
    let _ = (p.hostname(), p.port(), p.vlan(), p.service_address());
    if let Ok(p) = redfish::Packet::new_checked(data) {
        if let Ok(r) = RedfishOverIp::parse(&p) {
            // What parses re-emits to the bytes it came from (up to the
            // host name, which is cut at a NUL).
            let mut buf = vec![0u8; r.buffer_len()];
            r.emit(&mut buf);
            assert_eq!(buf.get(..90), data.get(..90), "re-emit differs");
        }
    }
    std::hint::black_box(printed);
}
