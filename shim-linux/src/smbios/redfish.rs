//! The Redfish-over-IP protocol record data (DSP0270 v1.3 §8.4.1, protocol
//! identifier 0x04): 91 fixed bytes and the service host name.
//!
//! Addresses are 16-byte fields; an IPv4 address takes the first 4 bytes
//! (the rest zero). The host address and mask are meaningful when the host
//! IP assignment type is Static or AutoConfigure, and the service address,
//! mask, port and VLAN when the service discovery type is: that is what
//! DSP0270 says and what dmidecode prints.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{le_u16, le_u32, HostInterfaceError};

mod field {
    pub type Field = core::ops::Range<usize>;

    pub const SERVICE_UUID: Field = 0..16;
    pub const HOST_ASSIGNMENT: usize = 16;
    pub const HOST_FORMAT: usize = 17;
    pub const HOST_ADDRESS: Field = 18..34;
    pub const HOST_MASK: Field = 34..50;
    pub const SERVICE_DISCOVERY: usize = 50;
    pub const SERVICE_FORMAT: usize = 51;
    pub const SERVICE_ADDRESS: Field = 52..68;
    pub const SERVICE_MASK: Field = 68..84;
    pub const PORT: Field = 84..86;
    pub const VLAN: Field = 86..90;
    pub const HOSTNAME_LEN: usize = 90;
    pub const HOSTNAME: usize = 91;
}

/// The protocol identifier of a Redfish-over-IP record.
pub const PROTOCOL_REDFISH_OVER_IP: u8 = 0x04;
/// The fixed part of the record: everything before the host name.
pub const MIN_LEN: usize = field::HOSTNAME;

/// How the host's (or the service's) address is assigned (§8.4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assignment {
    /// 0.
    Unknown,
    /// 1: the record carries the address.
    Static,
    /// 2: the host runs DHCP (or learns the service address by it).
    Dhcp,
    /// 3: IPv4 link-local or IPv6 SLAAC; the record carries the address.
    AutoConfigure,
    /// 4: the host picks.
    HostSelected,
    /// Out of spec.
    Other(u8),
}

impl From<u8> for Assignment {
    fn from(v: u8) -> Self {
        match v {
            0 => Assignment::Unknown,
            1 => Assignment::Static,
            2 => Assignment::Dhcp,
            3 => Assignment::AutoConfigure,
            4 => Assignment::HostSelected,
            other => Assignment::Other(other),
        }
    }
}

impl Assignment {
    /// dmidecode's word for it.
    pub fn text(self) -> &'static str {
        match self {
            Assignment::Unknown => "Unknown",
            Assignment::Static => "Static",
            Assignment::Dhcp => "DHCP",
            Assignment::AutoConfigure => "AutoConf",
            Assignment::HostSelected => "Host Selected",
            Assignment::Other(_) => super::OUT_OF_SPEC,
        }
    }

    /// Whether the record's address fields are meaningful (DSP0270: "used
    /// for Static and AutoConfigure").
    pub fn carries_address(self) -> bool {
        matches!(self, Assignment::Static | Assignment::AutoConfigure)
    }
}

/// An address field's format (§8.4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressFormat {
    /// 0.
    Unknown,
    /// 1.
    Ipv4,
    /// 2.
    Ipv6,
    /// Out of spec.
    Other(u8),
}

impl From<u8> for AddressFormat {
    fn from(v: u8) -> Self {
        match v {
            0 => AddressFormat::Unknown,
            1 => AddressFormat::Ipv4,
            2 => AddressFormat::Ipv6,
            other => AddressFormat::Other(other),
        }
    }
}

impl AddressFormat {
    /// dmidecode's word for it.
    pub fn text(self) -> &'static str {
        match self {
            AddressFormat::Unknown => "Unknown",
            AddressFormat::Ipv4 => "IPv4",
            AddressFormat::Ipv6 => "IPv6",
            AddressFormat::Other(_) => super::OUT_OF_SPEC,
        }
    }

    /// A 16-byte field in this format.
    pub fn address(self, field: [u8; 16]) -> Option<IpAddr> {
        match self {
            AddressFormat::Ipv4 => {
                let [a, b, c, d, ..] = field;
                Some(IpAddr::V4(Ipv4Addr::new(a, b, c, d)))
            }
            AddressFormat::Ipv6 => Some(IpAddr::V6(Ipv6Addr::from(field))),
            _ => None,
        }
    }
}

/// A view over a Redfish-over-IP record's data (after its id and length).
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// A view without checks; missing bytes read as zero.
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// A view after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self, HostInterfaceError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// The fixed 91 bytes must be there (the host name is checked by
    /// [`hostname`](Self::hostname)).
    pub fn check_len(&self) -> Result<(), HostInterfaceError> {
        let len = self.buffer.as_ref().len();
        if len < MIN_LEN {
            return Err(HostInterfaceError::RedfishRecordShort { len });
        }
        Ok(())
    }

    fn byte(&self, at: usize) -> u8 {
        self.buffer.as_ref().get(at).copied().unwrap_or(0)
    }

    fn field16(&self, f: core::ops::Range<usize>) -> [u8; 16] {
        self.buffer
            .as_ref()
            .get(f)
            .and_then(|s| s.first_chunk::<16>())
            .copied()
            .unwrap_or([0; 16])
    }

    /// The Redfish service UUID (SMBIOS byte order: the first three fields
    /// little-endian).
    pub fn service_uuid(&self) -> [u8; 16] {
        self.field16(field::SERVICE_UUID)
    }
    /// Host IP assignment type.
    pub fn host_assignment(&self) -> Assignment {
        self.byte(field::HOST_ASSIGNMENT).into()
    }
    /// Host IP address format.
    pub fn host_format(&self) -> AddressFormat {
        self.byte(field::HOST_FORMAT).into()
    }
    /// Host IP address field.
    pub fn host_address(&self) -> [u8; 16] {
        self.field16(field::HOST_ADDRESS)
    }
    /// Host IP mask field.
    pub fn host_mask(&self) -> [u8; 16] {
        self.field16(field::HOST_MASK)
    }
    /// Redfish service IP discovery type.
    pub fn service_discovery(&self) -> Assignment {
        self.byte(field::SERVICE_DISCOVERY).into()
    }
    /// Redfish service IP address format.
    pub fn service_format(&self) -> AddressFormat {
        self.byte(field::SERVICE_FORMAT).into()
    }
    /// Service IP address field.
    pub fn service_address(&self) -> [u8; 16] {
        self.field16(field::SERVICE_ADDRESS)
    }
    /// Service IP mask field.
    pub fn service_mask(&self) -> [u8; 16] {
        self.field16(field::SERVICE_MASK)
    }
    /// Service TCP port.
    pub fn port(&self) -> u16 {
        le_u16(self.buffer.as_ref(), field::PORT.start)
    }
    /// Service VLAN ID.
    pub fn vlan(&self) -> u32 {
        le_u32(self.buffer.as_ref(), field::VLAN.start)
    }
    /// The host name length field.
    pub fn hostname_len(&self) -> u8 {
        self.byte(field::HOSTNAME_LEN)
    }
    /// The host name, cut at its first NUL (some firmware counts one); an
    /// error when the length field runs past the record.
    pub fn hostname(&self) -> Result<&[u8], HostInterfaceError> {
        let n = usize::from(self.hostname_len());
        let bytes = self.buffer.as_ref();
        let name = field::HOSTNAME
            .checked_add(n)
            .and_then(|end| bytes.get(field::HOSTNAME..end))
            .ok_or(HostInterfaceError::HostnameOverrun {
                len: self.hostname_len(),
                available: bytes.len().saturating_sub(field::HOSTNAME),
            })?;
        Ok(name.split(|b| *b == 0).next().unwrap_or(&[]))
    }
}

/// A Redfish-over-IP record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedfishOverIp {
    /// Service UUID (SMBIOS byte order).
    pub service_uuid: [u8; 16],
    /// Host IP assignment type.
    pub host_assignment: Assignment,
    /// Host IP address format.
    pub host_format: AddressFormat,
    /// Host IP address field.
    pub host_address: [u8; 16],
    /// Host IP mask field.
    pub host_mask: [u8; 16],
    /// Service IP discovery type.
    pub service_discovery: Assignment,
    /// Service IP address format.
    pub service_format: AddressFormat,
    /// Service IP address field.
    pub service_address: [u8; 16],
    /// Service IP mask field.
    pub service_mask: [u8; 16],
    /// Service TCP port.
    pub port: u16,
    /// Service VLAN ID.
    pub vlan: u32,
    /// The host name; `Err` when its length field overruns the record.
    pub hostname: Result<String, HostInterfaceError>,
}

impl RedfishOverIp {
    /// Parses the record data.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Self, HostInterfaceError> {
        p.check_len()?;
        Ok(RedfishOverIp {
            service_uuid: p.service_uuid(),
            host_assignment: p.host_assignment(),
            host_format: p.host_format(),
            host_address: p.host_address(),
            host_mask: p.host_mask(),
            service_discovery: p.service_discovery(),
            service_format: p.service_format(),
            service_address: p.service_address(),
            service_mask: p.service_mask(),
            port: p.port(),
            vlan: p.vlan(),
            hostname: p
                .hostname()
                .map(|h| String::from_utf8_lossy(h).into_owned()),
        })
    }

    /// The host address, when the record carries one.
    pub fn host_ip(&self) -> Option<IpAddr> {
        if !self.host_assignment.carries_address() {
            return None;
        }
        self.host_format.address(self.host_address)
    }

    /// The service (BMC) address, when the record carries one.
    pub fn service_ip(&self) -> Option<IpAddr> {
        if !self.service_discovery.carries_address() {
            return None;
        }
        self.service_format.address(self.service_address)
    }

    /// The service UUID as dmidecode prints it (`Not Present` when all
    /// 0xFF, `Not Settable` when all zero, as its system UUID printer says).
    pub fn uuid_text(&self) -> String {
        let u = self.service_uuid;
        if u.iter().all(|b| *b == 0xFF) {
            return "Not Present".to_owned();
        }
        if u.iter().all(|b| *b == 0) {
            return "Not Settable".to_owned();
        }
        let [a0, a1, a2, a3, b0, b1, c0, c1, rest @ ..] = u;
        let tail: String = rest.iter().map(|b| format!("{b:02x}")).collect();
        let (d, e) = tail.split_at(4);
        format!("{a3:02x}{a2:02x}{a1:02x}{a0:02x}-{b1:02x}{b0:02x}-{c1:02x}{c0:02x}-{d}-{e}")
    }

    /// The record data's length: 91 plus the host name.
    pub fn buffer_len(&self) -> usize {
        let name = self.hostname.as_ref().map(|h| h.len()).unwrap_or(0);
        MIN_LEN.saturating_add(name.min(255))
    }

    /// Writes the record data into `buf` (at least
    /// [`buffer_len`](Self::buffer_len) bytes; a shorter buffer gets what fits).
    pub fn emit(&self, buf: &mut [u8]) {
        let mut put = |at: usize, value: &[u8]| {
            if let Some(d) = at
                .checked_add(value.len())
                .and_then(|end| buf.get_mut(at..end))
            {
                d.copy_from_slice(value);
            }
        };
        let raw = |a: Assignment| match a {
            Assignment::Unknown => 0,
            Assignment::Static => 1,
            Assignment::Dhcp => 2,
            Assignment::AutoConfigure => 3,
            Assignment::HostSelected => 4,
            Assignment::Other(v) => v,
        };
        let fmt = |f: AddressFormat| match f {
            AddressFormat::Unknown => 0,
            AddressFormat::Ipv4 => 1,
            AddressFormat::Ipv6 => 2,
            AddressFormat::Other(v) => v,
        };
        put(field::SERVICE_UUID.start, &self.service_uuid);
        put(field::HOST_ASSIGNMENT, &[raw(self.host_assignment)]);
        put(field::HOST_FORMAT, &[fmt(self.host_format)]);
        put(field::HOST_ADDRESS.start, &self.host_address);
        put(field::HOST_MASK.start, &self.host_mask);
        put(field::SERVICE_DISCOVERY, &[raw(self.service_discovery)]);
        put(field::SERVICE_FORMAT, &[fmt(self.service_format)]);
        put(field::SERVICE_ADDRESS.start, &self.service_address);
        put(field::SERVICE_MASK.start, &self.service_mask);
        put(field::PORT.start, &self.port.to_le_bytes());
        put(field::VLAN.start, &self.vlan.to_le_bytes());
        let name = self.hostname.as_deref().unwrap_or("").as_bytes();
        let name = name.get(..name.len().min(255)).unwrap_or(&[]);
        put(
            field::HOSTNAME_LEN,
            &[u8::try_from(name.len()).unwrap_or(0)],
        );
        put(field::HOSTNAME, name);
    }
}

/// An IPv4 address in a 16-byte field.
pub fn ipv4_field(a: Ipv4Addr) -> [u8; 16] {
    let mut f = [0u8; 16];
    if let Some(d) = f.first_chunk_mut::<4>() {
        *d = a.octets();
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dell() -> RedfishOverIp {
        RedfishOverIp {
            service_uuid: [0; 16],
            host_assignment: Assignment::Dhcp,
            host_format: AddressFormat::Ipv4,
            host_address: [0; 16],
            host_mask: [0; 16],
            service_discovery: Assignment::Static,
            service_format: AddressFormat::Ipv4,
            service_address: ipv4_field(Ipv4Addr::new(169, 254, 2, 2)),
            service_mask: ipv4_field(Ipv4Addr::new(255, 255, 255, 0)),
            port: 443,
            vlan: u32::MAX,
            hostname: Ok("idrac.local".to_owned()),
        }
    }

    #[test]
    fn a_record_round_trips_and_reads_at_the_dsp0270_offsets() {
        let r = dell();
        let mut buf = vec![0u8; r.buffer_len()];
        r.emit(&mut buf);
        assert_eq!(buf.len(), 91 + 11);
        // DSP0270 §8.4.1 offsets, by hand.
        assert_eq!((buf[16], buf[17], buf[50], buf[51]), (2, 1, 1, 1));
        assert_eq!(&buf[52..56], &[169, 254, 2, 2]);
        assert_eq!(&buf[84..86], &443u16.to_le_bytes());
        assert_eq!((buf[90], &buf[91..]), (11, &b"idrac.local"[..]));
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(RedfishOverIp::parse(&p).unwrap(), r);
        assert_eq!(r.host_ip(), None, "DHCP: no host address");
        assert_eq!(r.service_ip(), Some("169.254.2.2".parse().unwrap()));
        assert_eq!(r.uuid_text(), "Not Settable");
    }

    #[test]
    fn short_records_and_lying_host_name_lengths_are_errors() {
        let r = dell();
        let mut buf = vec![0u8; r.buffer_len()];
        r.emit(&mut buf);
        assert_eq!(
            Packet::new_checked(&buf[..90]).err(),
            Some(HostInterfaceError::RedfishRecordShort { len: 90 })
        );
        buf[90] = 200;
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(
            p.hostname(),
            Err(HostInterfaceError::HostnameOverrun {
                len: 200,
                available: 11
            })
        );
        // A NUL inside the counted name ends it.
        buf[90] = 11;
        buf[96] = 0;
        assert_eq!(
            Packet::new_checked(&buf[..]).unwrap().hostname(),
            Ok(&b"idrac"[..])
        );
    }

    #[test]
    fn the_uuid_prints_like_smbios_with_little_endian_first_fields() {
        let mut r = dell();
        r.service_uuid = [
            0x78, 0x30, 0x91, 0x24, 0xb7, 0xee, 0x42, 0x58, 0xb0, 0x8b, 0x73, 0x24, 0x25, 0xcc,
            0x09, 0xea,
        ];
        assert_eq!(r.uuid_text(), "24913078-eeb7-5842-b08b-732425cc09ea");
        r.service_uuid = [0xFF; 16];
        assert_eq!(r.uuid_text(), "Not Present");
    }
}
