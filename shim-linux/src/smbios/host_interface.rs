//! Type 42, Management Controller Host Interface (DSP0134 §7.43, SMBIOS
//! 3.x layout), with the network interface data of DSP0270 v1.3 §8.3.
//!
//! ```text
//! 0x00 header (type 42, length, handle)
//! 0x04 interface type          0x40 network host interface (DSP0270); 0x02 KCS, ...
//! 0x05 n: interface data length
//! 0x06 interface data[n]       network: device type, device descriptor
//! 6+n  protocol record count
//! 7+n  records: id, len, data[len]   (0x04 Redfish over IP, 0x02 IPMI, ...)
//! ```
//!
//! Decoded whatever the SMBIOS version says: interface type 0x40 only
//! exists in this layout. dmidecode decodes type 42 only from SMBIOS 3.2 on
//! (older tables: just the interface type).

use super::device::Device;
use super::redfish::{self, RedfishOverIp};
use super::structure::Structure;
use super::HostInterfaceError;

mod field {
    pub const INTERFACE_TYPE: usize = 4;
    pub const DATA_LEN: usize = 5;
    pub const DATA: usize = 6;
    /// Header, interface type, data length, record count.
    pub const MIN_LEN: usize = 7;
}

/// The structure type.
pub const TYPE: u8 = 42;
/// Interface type: network host interface (DSP0270).
pub const INTERFACE_NETWORK: u8 = 0x40;

/// A view over one type-42 structure's formatted area (header included).
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// A view without checks; missing bytes read as zero or empty.
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// A view after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self, HostInterfaceError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    fn bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// The interface data and the record count must lie inside the
    /// structure (the records are checked one by one by [`records`](Self::records)).
    pub fn check_len(&self) -> Result<(), HostInterfaceError> {
        let length = self.bytes().len();
        if length < field::MIN_LEN {
            return Err(HostInterfaceError::StructureShort { length });
        }
        let need = field::MIN_LEN.saturating_add(usize::from(self.data_len()));
        if need > length {
            return Err(HostInterfaceError::InterfaceDataOverrun {
                data_len: self.data_len(),
                length,
            });
        }
        Ok(())
    }

    /// The interface type (0x40: network).
    pub fn interface_type(&self) -> u8 {
        self.bytes()
            .get(field::INTERFACE_TYPE)
            .copied()
            .unwrap_or(0)
    }

    /// The interface data length field.
    pub fn data_len(&self) -> u8 {
        self.bytes().get(field::DATA_LEN).copied().unwrap_or(0)
    }

    /// The interface data (what of it lies inside the structure).
    pub fn interface_data(&self) -> &[u8] {
        let end = field::DATA.saturating_add(usize::from(self.data_len()));
        let b = self.bytes();
        b.get(field::DATA..end.min(b.len())).unwrap_or(&[])
    }

    fn count_at(&self) -> usize {
        field::DATA.saturating_add(usize::from(self.data_len()))
    }

    /// The protocol record count.
    pub fn record_count(&self) -> u8 {
        self.bytes().get(self.count_at()).copied().unwrap_or(0)
    }

    /// The protocol records; the first one that runs past the structure is
    /// an error and ends the walk (as in dmidecode).
    pub fn records(&self) -> Records<'_> {
        let start = self.count_at().saturating_add(1);
        Records {
            area: self.bytes().get(start..).unwrap_or(&[]),
            remaining: self.record_count(),
            index: 0,
        }
    }
}

/// One protocol record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProtocolRecord<'a> {
    /// Protocol identifier (0x04 Redfish over IP, 0x02 IPMI, 0x03 MCTP, 0xF0 OEM).
    pub id: u8,
    /// The record data.
    pub data: &'a [u8],
}

/// The records of a type-42 structure.
#[derive(Debug, Clone)]
pub struct Records<'a> {
    area: &'a [u8],
    remaining: u8,
    index: u8,
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<ProtocolRecord<'a>, HostInterfaceError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining = self.remaining.saturating_sub(1);
        self.index = self.index.saturating_add(1);
        let overrun = |len: u8, available: usize| HostInterfaceError::RecordOverrun {
            record: self.index,
            len,
            available,
        };
        let (id, len) = match self.area {
            [id, len, ..] => (*id, *len),
            _ => {
                self.remaining = 0;
                return Some(Err(overrun(0, 0)));
            }
        };
        let rest = self.area.get(2..).unwrap_or(&[]);
        let Some(data) = rest.get(..usize::from(len)) else {
            self.remaining = 0;
            return Some(Err(overrun(len, rest.len())));
        };
        self.area = rest.get(usize::from(len)..).unwrap_or(&[]);
        Some(Ok(ProtocolRecord { id, data }))
    }
}

/// A protocol record, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protocol {
    /// Protocol identifier.
    pub id: u8,
    /// The record data length.
    pub len: u8,
    /// For Redfish over IP: the record, or why it does not parse.
    pub redfish: Option<Result<RedfishOverIp, HostInterfaceError>>,
}

impl Protocol {
    /// dmidecode's name of the protocol.
    pub fn type_text(id: u8) -> &'static str {
        match id {
            0 | 1 => "Reserved",
            2 => "IPMI",
            3 => "MCTP",
            4 => "Redfish over IP",
            0xF0 => "OEM",
            _ => super::OUT_OF_SPEC,
        }
    }
}

/// One type-42 structure, decoded as far as it is well formed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostInterface {
    /// The structure's handle.
    pub handle: u16,
    /// The structure's length field.
    pub length: u8,
    /// The interface type (0x40: network).
    pub interface_type: u8,
    /// For a network interface with interface data: its device.
    pub device: Option<Device>,
    /// The protocol records read before any error.
    pub protocols: Vec<Protocol>,
    /// What was wrong with the structure, if anything.
    pub error: Option<HostInterfaceError>,
}

impl HostInterface {
    /// dmidecode's name of the interface type.
    pub fn type_text(kind: u8) -> &'static str {
        match kind {
            0x02 => "KCS: Keyboard Controller Style",
            0x03 => "8250 UART Register Compatible",
            0x04 => "16450 UART Register Compatible",
            0x05 => "16550/16550A UART Register Compatible",
            0x06 => "16650/16650A UART Register Compatible",
            0x07 => "16750/16750A UART Register Compatible",
            0x08 => "16850/16850A UART Register Compatible",
            0x00..=0x3F => "MCTP",
            0x40 => "Network",
            0xF0 => "OEM",
            _ => super::OUT_OF_SPEC,
        }
    }

    /// Whether this is a network host interface (DSP0270).
    pub fn is_network(&self) -> bool {
        self.interface_type == INTERFACE_NETWORK
    }

    /// The first Redfish-over-IP record that parses.
    pub fn redfish(&self) -> Option<&RedfishOverIp> {
        self.protocols
            .iter()
            .find_map(|p| p.redfish.as_ref().and_then(|r| r.as_ref().ok()))
    }

    /// Decodes a type-42 structure. The device and the records are decoded
    /// for network interfaces only.
    pub fn parse(s: &Structure<'_>) -> Self {
        let p = Packet::new_unchecked(s.formatted());
        let mut hi = HostInterface {
            handle: s.handle(),
            length: s.length(),
            interface_type: p.interface_type(),
            device: None,
            protocols: Vec::new(),
            error: None,
        };
        if let Err(e) = p.check_len() {
            hi.error = Some(e);
            return hi;
        }
        if !hi.is_network() {
            return hi;
        }
        hi.device = Device::parse(p.interface_data(), |i| s.string(i));
        for r in p.records() {
            match r {
                Ok(r) => hi.protocols.push(Protocol {
                    id: r.id,
                    len: u8::try_from(r.data.len()).unwrap_or(u8::MAX),
                    redfish: (r.id == redfish::PROTOCOL_REDFISH_OVER_IP).then(|| {
                        redfish::Packet::new_checked(r.data).and_then(|p| RedfishOverIp::parse(&p))
                    }),
                }),
                Err(e) => {
                    hi.error = Some(e);
                    break;
                }
            }
        }
        hi
    }
}

#[cfg(test)]
mod tests {
    use super::super::device::Characteristics;
    use super::super::structure::Structures;
    use super::*;

    fn structure(formatted: &[u8], strings: &[&str]) -> Vec<u8> {
        let mut t = formatted.to_vec();
        for s in strings {
            t.extend(s.as_bytes());
            t.push(0);
        }
        if strings.is_empty() {
            t.push(0);
        }
        t.push(0);
        t
    }

    fn parse(table: &[u8]) -> HostInterface {
        let s = Structures::new(table, None).next().unwrap().unwrap();
        HostInterface::parse(&s)
    }

    #[test]
    fn a_usb_v2_descriptor_reads_ids_serial_mac_and_the_credential_handle() {
        let mut f = vec![42, 0, 0x37, 0x00, 0x40, 0x11];
        // device type, length 0x11, vid, pid, serial string 1, MAC, chars, handle
        f.extend([0x04, 0x11, 0x6b, 0x1d, 0x04, 0x01, 0x01]);
        f.extend([0x02, 0x11, 0x22, 0x33, 0x44, 0x55, 0x01, 0x00, 0x05, 0x00]);
        f.push(0); // no records
        f[1] = f.len() as u8;
        let hi = parse(&structure(&f, &["SN42"]));
        assert_eq!(hi.error, None);
        assert_eq!(
            hi.device,
            Some(Device::UsbV2 {
                vendor: 0x1d6b,
                product: 0x0104,
                serial: Some("SN42".into()),
                mac: [0x02, 0x11, 0x22, 0x33, 0x44, 0x55],
                v13: Some(Characteristics {
                    bits: 1,
                    credential_handle: 5
                }),
            })
        );
        assert_eq!(
            hi.device.as_ref().unwrap().usb_ids(),
            Some((0x1d6b, 0x0104))
        );
    }

    #[test]
    fn a_usb_descriptor_reads_its_utf16_serial_string_descriptor() {
        let f = [
            42, 19, 0, 0, 0x40, 11, 0x02, 0x3c, 0x41, 0x02, 0xa1, 6, 3, b'A', 0, b'7', 0, 0,
        ];
        let mut f = f.to_vec();
        f[1] = f.len() as u8;
        let hi = parse(&structure(&f, &[]));
        assert_eq!(hi.error, None, "{hi:?}");
        assert_eq!(hi.device.unwrap().serial(), Some("A7"));
    }

    #[test]
    fn lying_lengths_keep_what_was_good_and_name_what_was_not() {
        // Interface data length past the structure.
        let f = [42, 8, 0, 0, 0x40, 200, 2, 0];
        let hi = parse(&structure(&f, &[]));
        assert_eq!(
            hi.error,
            Some(HostInterfaceError::InterfaceDataOverrun {
                data_len: 200,
                length: 8
            })
        );
        // Two records announced, the second runs past the structure.
        let f = [42, 14, 0, 0, 0x40, 0, 2, 0x02, 1, 0xAA, 0x04, 50, 0, 0];
        let hi = parse(&structure(&f, &[]));
        assert_eq!(hi.protocols.len(), 1);
        assert_eq!(
            hi.error,
            Some(HostInterfaceError::RecordOverrun {
                record: 2,
                len: 50,
                available: 2
            })
        );
        // A descriptor too short for its type.
        let f = [42, 11, 0, 0, 0x40, 3, 0x04, 1, 2, 0, 0];
        let hi = parse(&structure(&f, &[]));
        assert_eq!(
            hi.device,
            Some(Device::Short {
                kind: 4,
                len: 3,
                need: 13
            })
        );
    }

    #[test]
    fn a_kcs_interface_is_named_and_not_decoded_further() {
        let f = [42, 17, 0x15, 0, 0x02, 4, 1, 2, 3, 4, 1, 0x02, 4, 0, 0, 0, 0];
        let hi = parse(&structure(&f, &[]));
        assert!(!hi.is_network());
        assert_eq!(
            HostInterface::type_text(hi.interface_type),
            "KCS: Keyboard Controller Style"
        );
        assert_eq!((hi.device, hi.protocols.len()), (None, 0));
    }
}
