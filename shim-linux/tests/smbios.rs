//! SMBIOS type 42 on crafted tables: vendor-like records, a KCS structure
//! listed first, SMBIOS 2.x, truncated tables and lying lengths. Each dump
//! is written in dmidecode's `--dump-bin` format; `bmclink discover
//! --from-dump` must print the fields Debian's `dmidecode --from-dump FILE
//! -t 42` prints for it, and map it to the expected interface of a fake
//! sysfs tree.
//!
//! dmidecode is an independent decoder, so agreeing with it field by field
//! checks the DSP0270 offsets. Where dmidecode differs on purpose (tables
//! before SMBIOS 3.2, the USB v2 / PCI v2 descriptors that dmidecode 3.4
//! prints as OEM), the comparison says so in `normalise`.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::Command;

use bmclink_linux::discover::sysfs::fake_usb_nic;
use bmclink_linux::smbios::redfish::{ipv4_field, AddressFormat, Assignment};
use bmclink_linux::smbios::{Anchor, EntryPointRepr, RedfishOverIp, Version};

// ---- building tables -------------------------------------------------------

/// One structure: header (length computed), the rest of the formatted area,
/// the string set.
fn structure(kind: u8, handle: u16, body: &[u8], strings: &[&str]) -> Vec<u8> {
    let mut s = vec![kind, 0];
    s.extend(handle.to_le_bytes());
    s.extend(body);
    s[1] = u8::try_from(s.len()).expect("formatted area fits a length byte");
    for st in strings {
        s.extend(st.as_bytes());
        s.push(0);
    }
    if strings.is_empty() {
        s.push(0);
    }
    s.push(0);
    s
}

/// A type-42 body: interface type, interface data, protocol records.
fn type42(interface_type: u8, data: &[u8], records: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut b = vec![interface_type, u8::try_from(data.len()).unwrap()];
    b.extend(data);
    b.push(u8::try_from(records.len()).unwrap());
    for (id, r) in records {
        b.push(*id);
        b.push(u8::try_from(r.len()).unwrap());
        b.extend(r);
    }
    b
}

/// DSP0270 §8.3.1 USB descriptor: device type 2, idVendor, idProduct, the
/// serial number as a USB string descriptor.
fn usb(vid: u16, pid: u16, serial: &str) -> Vec<u8> {
    let mut d = vec![0x02];
    d.extend(vid.to_le_bytes());
    d.extend(pid.to_le_bytes());
    let utf16: Vec<u8> = serial.encode_utf16().flat_map(u16::to_le_bytes).collect();
    d.push(u8::try_from(2 + utf16.len()).unwrap());
    d.push(0x03);
    d.extend(utf16);
    d
}

/// DSP0270 v1.3 §8.3.3 USB v2 descriptor: device type 4, length, ids,
/// serial string number, MAC, characteristics and credential handle.
fn usb_v2(vid: u16, pid: u16, serial: u8, mac: [u8; 6], v13: Option<(u16, u16)>) -> Vec<u8> {
    let mut d = vec![0x04, 0];
    d.extend(vid.to_le_bytes());
    d.extend(pid.to_le_bytes());
    d.push(serial);
    d.extend(mac);
    if let Some((chars, handle)) = v13 {
        d.extend(chars.to_le_bytes());
        d.extend(handle.to_le_bytes());
    }
    d[1] = u8::try_from(d.len()).unwrap();
    d
}

/// DSP0270 v1.3 §8.3.4 PCI v2 descriptor.
fn pci_v2(ids: [u16; 4], mac: [u8; 6], seg_bus_devfn: (u16, u8, u8)) -> Vec<u8> {
    let mut d = vec![0x05, 0];
    for id in ids {
        d.extend(id.to_le_bytes());
    }
    d.extend(mac);
    d.extend(seg_bus_devfn.0.to_le_bytes());
    d.push(seg_bus_devfn.1);
    d.push(seg_bus_devfn.2);
    d.extend(0u16.to_le_bytes());
    d.extend(0u16.to_le_bytes());
    d[1] = u8::try_from(d.len()).unwrap();
    d
}

#[allow(clippy::too_many_arguments)]
fn redfish(
    uuid: [u8; 16],
    host: (Assignment, AddressFormat, [u8; 16], [u8; 16]),
    service: (Assignment, AddressFormat, [u8; 16], [u8; 16]),
    port: u16,
    vlan: u32,
    hostname: &str,
) -> Vec<u8> {
    let r = RedfishOverIp {
        service_uuid: uuid,
        host_assignment: host.0,
        host_format: host.1,
        host_address: host.2,
        host_mask: host.3,
        service_discovery: service.0,
        service_format: service.1,
        service_address: service.2,
        service_mask: service.3,
        port,
        vlan,
        hostname: Ok(hostname.to_owned()),
    };
    let mut b = vec![0u8; r.buffer_len()];
    r.emit(&mut b);
    b
}

fn v4(a: [u8; 4]) -> [u8; 16] {
    ipv4_field(Ipv4Addr::from(a))
}

fn v6(text: &str) -> [u8; 16] {
    text.parse::<Ipv6Addr>().unwrap().octets()
}

const REDFISH: u8 = 0x04;

/// A system information structure (type 1), so the walk has something
/// before type 42.
fn system(vendor: &str) -> Vec<u8> {
    let mut body = vec![1, 2, 0, 0];
    body.extend([0u8; 16]); // UUID
    body.push(6); // wake-up type
    structure(1, 0x0100, &body, &[vendor, "Server"])
}

fn end_of_table() -> Vec<u8> {
    structure(127, 0xFEFF, &[], &[])
}

/// A `--dump-bin` file: the entry point at 0 (table address 32), padding to
/// 32, the table.
fn dump(anchor: Anchor, version: (u8, u8, u8), structures: &[Vec<u8>]) -> Vec<u8> {
    let table: Vec<u8> = structures.concat();
    let entry = EntryPointRepr {
        anchor,
        version: Version {
            major: version.0,
            minor: version.1,
            docrev: version.2,
        },
        table_len: u32::try_from(table.len()).unwrap(),
        table_address: 32,
        structures: (anchor == Anchor::Smbios2).then(|| u16::try_from(structures.len()).unwrap()),
    };
    let mut d = vec![0u8; 32];
    entry.emit(&mut d);
    d.extend(table);
    d
}

const DELL_MAC: [u8; 6] = [0x4a, 0x3b, 0x2c, 0x1d, 0x0e, 0xf1];

fn dell_structure() -> Vec<u8> {
    // A real iDRAC 9 record (PowerEdge R740, dmidecode output in
    // nhorman/redfish-finder#2): 118 bytes, USB 413c:a102, host DHCP,
    // service 169.254.2.2/24 static, port 443, VLAN 0xFFFFFFFF, UUID unset.
    structure(
        42,
        0x2A00,
        &type42(
            0x40,
            &usb(0x413c, 0xa102, ""),
            &[(
                REDFISH,
                redfish(
                    [0; 16],
                    (Assignment::Dhcp, AddressFormat::Ipv4, [0; 16], [0; 16]),
                    (
                        Assignment::Static,
                        AddressFormat::Ipv4,
                        v4([169, 254, 2, 2]),
                        v4([255, 255, 255, 0]),
                    ),
                    443,
                    u32::MAX,
                    "idrac.local",
                ),
            )],
        ),
        &[],
    )
}

/// A crafted table, what the fake sysfs tree holds, and what bmclink must
/// take from it (from DSP0270's meaning of the record, written by hand).
struct Case {
    name: &'static str,
    dump: Vec<u8>,
    /// USB NICs in the fake tree.
    nics: Vec<Nic>,
    /// The `Linux interface:` it must map to (`None`: no match).
    linux: Option<&'static str>,
    /// `bmc_ipv4` and its source.
    bmc_ipv4: (&'static str, &'static str),
    /// `host_ipv4` and its source.
    host_ipv4: (&'static str, &'static str),
    /// `bmc_hostname` and its source.
    bmc_hostname: (&'static str, &'static str),
    /// Text the report must contain (a warning, the explanation).
    says: &'static [&'static str],
}

/// A USB NIC in the fake sysfs tree: name, ids, serial, MAC.
type Nic = (&'static str, (u16, u16), Option<&'static str>, [u8; 6]);

const DECOY: Nic = (
    "enp0s20f0u9",
    (0x0bda, 0x8153),
    Some("000001"),
    [0x00, 0xe0, 0x4c, 1, 2, 3],
);

fn cases() -> Vec<Case> {
    let hpe = structure(
        42,
        0x0042,
        &type42(
            0x40,
            // HPE-like: iLO's virtual NIC as a DSP0270 v1.3 USB v2 device
            // with IPMI credential bootstrapping; iLO at 16.1.15.1/30.
            &usb_v2(
                0x03f0,
                0x2927,
                1,
                [0x0a, 0xca, 0xfe, 0, 0, 1],
                Some((1, 0x0011)),
            ),
            // An OEM record (HPE's IANA number 11) before the Redfish one.
            &[
                (0xF0, vec![0x0b, 0x00, 0x00, 0x00, 0x01]),
                (
                    REDFISH,
                    redfish(
                        [
                            0x61, 0x4c, 0x4f, 0x00, 0x11, 0x22, 0x33, 0x44, 0x80, 0x12, 0x34, 0x56,
                            0x78, 0x9a, 0xbc, 0xde,
                        ],
                        (
                            Assignment::Static,
                            AddressFormat::Ipv4,
                            v4([16, 1, 15, 2]),
                            v4([255, 255, 255, 252]),
                        ),
                        (
                            Assignment::Static,
                            AddressFormat::Ipv4,
                            v4([16, 1, 15, 1]),
                            v4([255, 255, 255, 252]),
                        ),
                        443,
                        0,
                        "ilo.example",
                    ),
                ),
            ],
        ),
        &["CZJ1234ILO"],
    );
    let lenovo = structure(
        42,
        0x002A,
        &type42(
            0x40,
            // Lenovo-like: XCC's LAN over USB (USB 04b3:4010), XCC at
            // 169.254.95.118, the host at .120, both static, no host name.
            &usb(0x04b3, 0x4010, "XCC0"),
            &[(
                REDFISH,
                redfish(
                    [0x11; 16],
                    (
                        Assignment::Static,
                        AddressFormat::Ipv4,
                        v4([169, 254, 95, 120]),
                        v4([255, 255, 0, 0]),
                    ),
                    (
                        Assignment::Static,
                        AddressFormat::Ipv4,
                        v4([169, 254, 95, 118]),
                        v4([255, 255, 0, 0]),
                    ),
                    443,
                    0,
                    "",
                ),
            )],
        ),
        &[],
    );
    let openbmc = structure(
        42,
        0x0030,
        &type42(
            0x40,
            // OpenBMC-like: the usb0 gadget (Linux Foundation 1d6b:0104),
            // IPv6 link-local auto-configured on both sides.
            &usb_v2(
                0x1d6b,
                0x0104,
                1,
                [0x02, 0x00, 0x00, 0x00, 0x00, 0x01],
                Some((0, 0)),
            ),
            &[(
                REDFISH,
                redfish(
                    [0xFF; 16],
                    (
                        Assignment::AutoConfigure,
                        AddressFormat::Ipv6,
                        v6("fe80::2"),
                        v6("ffff:ffff:ffff:ffff::"),
                    ),
                    (
                        Assignment::AutoConfigure,
                        AddressFormat::Ipv6,
                        v6("fe80::1"),
                        v6("ffff:ffff:ffff:ffff::"),
                    ),
                    443,
                    0,
                    "bmc.local",
                ),
            )],
        ),
        &["OBMC0001"],
    );
    // The server of fwupd/fwupd#6348: a KCS structure (17 bytes) before the
    // network one, a USB v2 device, static 10.234.147.x addresses.
    let kcs = structure(
        42,
        0x0015,
        &type42(0x02, &[0x01, 0xA2, 0x0C, 0x00], &[(0x02, vec![0; 4])]),
        &[],
    );
    let kcs_network = structure(
        42,
        0x0037,
        &type42(
            0x40,
            &usb_v2(
                0x1809,
                0x1914,
                0,
                [0x9a, 0x02, 0x03, 0x04, 0x05, 0x06],
                Some((0, 0)),
            ),
            &[(
                REDFISH,
                redfish(
                    [
                        0x65, 0xeb, 0x4f, 0x89, 0xa8, 0x2c, 0x78, 0x43, 0xa5, 0xd3, 0x41, 0xc7,
                        0x8f, 0xf5, 0xb5, 0x9f,
                    ],
                    (
                        Assignment::Static,
                        AddressFormat::Ipv4,
                        v4([10, 234, 147, 2]),
                        v4([255, 255, 255, 0]),
                    ),
                    (
                        Assignment::Static,
                        AddressFormat::Ipv4,
                        v4([10, 234, 147, 1]),
                        v4([255, 255, 255, 0]),
                    ),
                    443,
                    0,
                    "10.234.147.1",
                ),
            )],
        ),
        &[],
    );
    // AMI-based board (ASUS), from nhorman/redfish-finder#4: 129 bytes,
    // USB 0b05:1976, DHCP on both sides.
    let ami = structure(
        42,
        0x0021,
        &type42(
            0x40,
            &usb(0x0b05, 0x1976, "01"),
            &[(
                REDFISH,
                redfish(
                    [
                        0x78, 0x30, 0x91, 0x24, 0xb7, 0xee, 0x42, 0x58, 0xb0, 0x8b, 0x73, 0x24,
                        0x25, 0xcc, 0x09, 0xea,
                    ],
                    (Assignment::Dhcp, AddressFormat::Ipv4, [0; 16], [0; 16]),
                    (Assignment::Dhcp, AddressFormat::Ipv4, [0; 16], [0; 16]),
                    0,
                    0,
                    "bmc.host.interface",
                ),
            )],
        ),
        &[],
    );
    let pci = structure(
        42,
        0x000F,
        &type42(
            0x40,
            &pci_v2(
                [0x10ec, 0x8168, 0x7470, 0x3468],
                [0x02, 0x10, 0xec, 0, 0, 5],
                (0, 3, 0x08),
            ),
            &[(
                REDFISH,
                redfish(
                    [0x22; 16],
                    (
                        Assignment::HostSelected,
                        AddressFormat::Ipv4,
                        [0; 16],
                        [0; 16],
                    ),
                    (
                        Assignment::Static,
                        AddressFormat::Ipv4,
                        v4([169, 254, 0, 1]),
                        v4([255, 255, 0, 0]),
                    ),
                    8443,
                    7,
                    "bmc-pci",
                ),
            )],
        ),
        &[],
    );
    let sm3 = |v: (u8, u8, u8), structures: Vec<Vec<u8>>| {
        let mut s = vec![system("Vendor")];
        s.extend(structures);
        s.push(end_of_table());
        dump(Anchor::Smbios3, v, &s)
    };
    let dell = sm3((3, 2, 0), vec![dell_structure()]);

    // Lying lengths, each in a structure of its own.
    let mut lying_record = type42(
        0x40,
        &usb(0x413c, 0xa102, ""),
        &[(0x02, vec![1, 2]), (REDFISH, vec![0; 10])],
    );
    lying_record.truncate(lying_record.len() - 6); // record 2 says 10 bytes, 4 are there
    let lying_record = structure(42, 0x2A01, &lying_record, &[]);
    let lying_data = {
        let mut b = type42(0x40, &usb(0x413c, 0xa102, ""), &[]);
        b[1] = 200;
        structure(42, 0x2A02, &b, &[])
    };
    let lying_hostname = {
        let mut r = redfish(
            [1; 16],
            (Assignment::Dhcp, AddressFormat::Ipv4, [0; 16], [0; 16]),
            (
                Assignment::Static,
                AddressFormat::Ipv4,
                v4([169, 254, 2, 2]),
                v4([255, 255, 255, 0]),
            ),
            443,
            0,
            "idrac.local",
        );
        r[90] = 60; // host name length past the record
        structure(
            42,
            0x2A03,
            &type42(0x40, &usb(0x413c, 0xa102, ""), &[(REDFISH, r)]),
            &[],
        )
    };
    let short_record = structure(
        42,
        0x2A04,
        &type42(0x40, &usb(0x413c, 0xa102, ""), &[(REDFISH, vec![0; 60])]),
        &[],
    );
    // A structure length below 4 before type 42: the walk stops there.
    let mut broken = system("Vendor");
    broken[1] = 2;
    // The table cut in the middle of the type-42 structure.
    let mut truncated = dell.clone();
    truncated.truncate(truncated.len() - 60);
    let mut bad_checksum = dell.clone();
    bad_checksum[12] ^= 0x40;

    let dell_nic = ("idrac", (0x413c, 0xa102), None, DELL_MAC);
    vec![
        Case {
            name: "dell_idrac9",
            dump: dell.clone(),
            nics: vec![DECOY, dell_nic],
            linux: Some("idrac"),
            bmc_ipv4: ("169.254.2.2", "type 42"),
            host_ipv4: ("link-local claim", "type 42"),
            bmc_hostname: ("idrac.local", "type 42"),
            says: &["host IP assignment DHCP"],
        },
        Case {
            name: "hpe_ilo_virtual_nic",
            dump: sm3((3, 3, 0), vec![hpe]),
            nics: vec![
                DECOY,
                ("usb0", (0x03f0, 0x2927), None, [0x0a, 0xca, 0xfe, 0, 0, 1]),
            ],
            linux: Some("usb0"),
            bmc_ipv4: ("169.254.1.1", "default"),
            host_ipv4: ("link-local claim", "default"),
            bmc_hostname: ("ilo.example", "type 42"),
            says: &[
                "16.1.15.1 is not IPv4 link-local",
                "MAC 0a:ca:fe:00:00:01 matches",
            ],
        },
        Case {
            name: "lenovo_xcc_lan_over_usb",
            dump: sm3((3, 2, 0), vec![lenovo]),
            nics: vec![
                (
                    "usb1",
                    (0x04b3, 0x4010),
                    Some("OTHER"),
                    [2, 0, 0, 0, 0, 0x10],
                ),
                (
                    "usb0",
                    (0x04b3, 0x4010),
                    Some("XCC0"),
                    [2, 0, 0, 0, 0, 0x11],
                ),
            ],
            linux: Some("usb0"),
            bmc_ipv4: ("169.254.95.118", "type 42"),
            host_ipv4: ("169.254.95.120", "type 42"),
            bmc_hostname: ("none", "default"),
            says: &["USB 04b3:4010 serial XCC0 matches"],
        },
        Case {
            name: "openbmc_usb0_gadget",
            dump: sm3((3, 5, 0), vec![openbmc]),
            nics: vec![
                DECOY,
                (
                    "usb0",
                    (0x1d6b, 0x0104),
                    Some("OBMC0001"),
                    [2, 0, 0, 0, 0, 1],
                ),
            ],
            linux: Some("usb0"),
            bmc_ipv4: ("169.254.1.1", "default"),
            host_ipv4: ("link-local claim", "type 42"),
            bmc_hostname: ("bmc.local", "type 42"),
            says: &["bmc_ipv6      fe80::1"],
        },
        Case {
            name: "kcs_first_then_network",
            dump: sm3((3, 5, 0), vec![kcs, kcs_network]),
            nics: vec![
                DECOY,
                ("usb0", (0x1809, 0x1914), None, [0x9a, 2, 3, 4, 5, 6]),
            ],
            linux: Some("usb0"),
            bmc_ipv4: ("169.254.1.1", "default"),
            host_ipv4: ("link-local claim", "default"),
            bmc_hostname: ("none", "default"),
            says: &["handle 0x0037", "10.234.147.1 is not IPv4 link-local"],
        },
        Case {
            name: "ami_asus_dhcp",
            dump: sm3((3, 3, 0), vec![ami]),
            nics: vec![DECOY, ("usb0", (0x0b05, 0x1976), None, [2, 0, 0, 0, 0, 7])],
            linux: Some("usb0"),
            bmc_ipv4: ("169.254.1.1", "default"),
            host_ipv4: ("link-local claim", "type 42"),
            bmc_hostname: ("bmc.host.interface", "type 42"),
            says: &["no IPv4 service address (discovery DHCP)"],
        },
        Case {
            name: "pci_v2_host_selected",
            dump: sm3((3, 6, 0), vec![pci]),
            nics: vec![DECOY],
            linux: None,
            bmc_ipv4: ("169.254.0.1", "type 42"),
            host_ipv4: ("link-local claim", "type 42"),
            bmc_hostname: ("bmc-pci", "type 42"),
            says: &["none matches the host interface's device"],
        },
        Case {
            name: "smbios28_sm_entry_point",
            dump: dump(
                Anchor::Smbios2,
                (2, 8, 0),
                &[system("Dell Inc."), dell_structure(), end_of_table()],
            ),
            nics: vec![dell_nic],
            linux: Some("idrac"),
            bmc_ipv4: ("169.254.2.2", "type 42"),
            host_ipv4: ("link-local claim", "type 42"),
            bmc_hostname: ("idrac.local", "type 42"),
            says: &["SMBIOS 2.8 (_SM_ entry point)"],
        },
        Case {
            name: "lying_lengths",
            dump: sm3(
                (3, 2, 0),
                vec![lying_data, lying_record, short_record, lying_hostname],
            ),
            nics: vec![dell_nic],
            linux: Some("idrac"),
            bmc_ipv4: ("169.254.2.2", "type 42"),
            host_ipv4: ("link-local claim", "type 42"),
            bmc_hostname: ("none", "default"),
            says: &[
                "interface data length 200 runs past the structure",
                "protocol record 2 (10 data bytes) runs past the structure",
                "shorter than its 91 fixed bytes",
                "host name length 60 runs past the record",
            ],
        },
        Case {
            name: "truncated_table",
            dump: truncated,
            nics: vec![dell_nic],
            linux: None,
            bmc_ipv4: ("169.254.1.1", "default"),
            host_ipv4: ("link-local claim", "default"),
            bmc_hostname: ("none", "default"),
            says: &[
                "runs past the end of the table",
                "No BMC host interface found",
            ],
        },
        Case {
            name: "structure_length_below_header",
            dump: sm3((3, 2, 0), vec![broken, dell_structure()]),
            nics: vec![dell_nic],
            linux: None,
            bmc_ipv4: ("169.254.1.1", "default"),
            host_ipv4: ("link-local claim", "default"),
            bmc_hostname: ("none", "default"),
            says: &["less than its 4-byte header", "no type-42 structure"],
        },
        Case {
            name: "no_type42",
            dump: sm3((3, 2, 0), vec![]),
            nics: vec![dell_nic],
            linux: None,
            bmc_ipv4: ("169.254.1.1", "default"),
            host_ipv4: ("link-local claim", "default"),
            bmc_hostname: ("none", "default"),
            says: &["does not publish a Redfish host interface"],
        },
        Case {
            name: "bad_entry_point_checksum",
            dump: bad_checksum,
            nics: vec![dell_nic],
            linux: None,
            bmc_ipv4: ("169.254.1.1", "default"),
            host_ipv4: ("link-local claim", "default"),
            bmc_hostname: ("none", "default"),
            says: &["checksum is wrong", "No BMC host interface found"],
        },
    ]
}

// ---- reading dmidecode's text (and ours, which uses its layout) ------------

/// A structure as printed: handle, length, fields (depth, name, value).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Printed {
    handle: String,
    length: String,
    fields: Vec<(usize, String, String)>,
}

fn printed(text: &str) -> Vec<Printed> {
    let mut out: Vec<Printed> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("Handle ") {
            let mut parts = rest.split(", ");
            let handle = parts.next().unwrap_or("").to_owned();
            let _ = parts.next();
            let length = parts
                .next()
                .unwrap_or("")
                .trim_end_matches(" bytes")
                .to_owned();
            out.push(Printed {
                handle,
                length,
                fields: Vec::new(),
            });
            continue;
        }
        let depth = line.len() - line.trim_start_matches('\t').len();
        let (Some(p), true) = (out.last_mut(), depth > 0) else {
            continue;
        };
        let body = line.trim_start_matches('\t');
        let (k, v) = match body.split_once(": ") {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None if body.ends_with(':') => (body.trim_end_matches(':').to_owned(), String::new()),
            None => (String::new(), body.to_owned()),
        };
        p.fields.push((depth, k, v));
    }
    out
}

fn dmidecode_version() -> Option<(u32, u32)> {
    let out = Command::new("dmidecode").arg("--version").output().ok()?;
    let v = String::from_utf8_lossy(&out.stdout);
    let (a, b) = v.trim().split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// dmidecode present, or why the cross-check cannot run: a failure under
/// CI=true or BMCLINK_REQUIRE_ROOT=1, a printed skip otherwise.
fn dmidecode_or_skip(test: &str) -> Option<(u32, u32)> {
    let required = std::env::var("BMCLINK_REQUIRE_ROOT").is_ok_and(|v| v == "1")
        || std::env::var("CI").is_ok_and(|v| v == "true");
    match dmidecode_version() {
        Some(v) => Some(v),
        None if required => {
            panic!("{test}: dmidecode is missing (apt-get install dmidecode; .ci/run installs it)")
        }
        None => {
            eprintln!("skipping {test}: dmidecode is not installed (apt-get install dmidecode)");
            None
        }
    }
}

/// Our structure brought to what this dmidecode version prints: dmidecode
/// before 3.6 decodes device types 4 and 5 as OEM ("Vendor ID" with the
/// first four descriptor bytes) and does not know their fields; before
/// SMBIOS 3.2 it prints only "Interface Type". Our extra fields go.
fn normalise(ours: &Printed, dmi_version: (u32, u32), smbios: (u8, u8), raw: &[u8]) -> Printed {
    let mut fields: Vec<(usize, String, String)> = ours
        .fields
        .iter()
        .filter(|(_, k, _)| !bmclink_linux::discover::text::EXTRA_FIELDS.contains(&k.as_str()))
        .cloned()
        .collect();
    if smbios < (3, 2) {
        fields = fields
            .into_iter()
            .filter(|(_, k, _)| k == "Host Interface Type")
            .map(|(d, _, v)| (d, "Interface Type".to_owned(), v))
            .collect();
    } else if dmi_version < (3, 6) {
        if let Some(at) = fields
            .iter()
            .position(|(_, k, v)| k == "Device Type" && v.ends_with(" v2"))
        {
            // Drop the v2 fields; dmidecode 3.4 prints the descriptor's
            // first four bytes instead.
            let end = fields
                .iter()
                .skip(at + 1)
                .position(|(_, k, _)| k == "Protocol ID")
                .map_or(fields.len(), |p| at + 1 + p);
            // (its OEM branch tests `type == 0x4`; PCI v2 gets nothing).
            let usb_v2 = fields[at].2 == "USB v2";
            let d = structure_device_bytes(raw, &ours.handle);
            let mut theirs = vec![(1, "Device Type".to_owned(), "<OUT OF SPEC>".to_owned())];
            if usb_v2 {
                theirs.push((
                    1,
                    "Vendor ID".to_owned(),
                    format!(
                        "0x{:02x}:0x{:02x}:0x{:02x}:0x{:02x}",
                        d[0], d[1], d[2], d[3]
                    ),
                ));
            }
            fields.splice(at..end, theirs);
        }
    }
    Printed {
        fields,
        ..ours.clone()
    }
}

/// The four bytes after the device type of structure `handle` in a dump.
fn structure_device_bytes(dump: &[u8], handle: &str) -> [u8; 4] {
    let h = u16::from_str_radix(handle.trim_start_matches("0x"), 16).unwrap();
    let table = &dump[32..];
    for s in bmclink_linux::smbios::Structures::new(table, None).flatten() {
        if s.kind() == 42 && s.handle() == h {
            let f = s.formatted();
            return [f[7], f[8], f[9], f[10]];
        }
    }
    panic!("no structure {handle}")
}

struct Run {
    dir: tempfile::TempDir,
}

impl Run {
    fn new(case: &Case) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("dump.bin"), &case.dump).unwrap();
        std::fs::write(dir.path().join("bmclink.toml"), "").unwrap();
        let sysfs = dir.path().join("sys");
        std::fs::create_dir_all(sysfs.join("class/net")).unwrap();
        for (name, ids, serial, mac) in &case.nics {
            fake_usb_nic(&sysfs, name, *ids, *serial, *mac).unwrap();
        }
        Run { dir }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn discover(&self, json: bool) -> String {
        let mut args = vec![
            "--config".into(),
            self.path("bmclink.toml").into_os_string(),
            "discover".into(),
            "--from-dump".into(),
            self.path("dump.bin").into_os_string(),
            "--sysfs".into(),
            self.path("sys").into_os_string(),
        ];
        if json {
            args.push("--json".into());
        }
        let out = Command::new(env!("CARGO_BIN_EXE_bmclink"))
            .args(&args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "bmclink discover: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn dmidecode(&self) -> String {
        let out = Command::new("dmidecode")
            .arg("--from-dump")
            .arg(self.path("dump.bin"))
            .args(["-t", "42"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

fn uses_row<'a>(report: &'a str, key: &str) -> Vec<&'a str> {
    let line = report
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{key} ")))
        .unwrap_or_else(|| panic!("no `{key}` row in:\n{report}"));
    // value, then source (one or two words), then the note.
    let rest = line.trim_start().strip_prefix(key).unwrap().trim_start();
    let (value, rest) = rest.split_once("  ").unwrap_or((rest, ""));
    vec![value.trim(), rest.trim()]
}

#[test]
fn discover_prints_what_dmidecode_prints_for_every_crafted_dump() {
    let Some(dmi) =
        dmidecode_or_skip("discover_prints_what_dmidecode_prints_for_every_crafted_dump")
    else {
        return;
    };
    let mut compared = 0;
    for case in cases() {
        let run = Run::new(&case);
        let ours_text = run.discover(false);
        let theirs_text = run.dmidecode();
        let smbios = bmclink_linux::smbios::Smbios::from_dump(&case.dump)
            .map(|s| (s.entry.version.major, s.entry.version.minor))
            .unwrap_or((0, 0));
        let ours = printed(&ours_text);
        let theirs = printed(&theirs_text);
        // A structure dmidecode shows as <TRUNCATED> is one we report as
        // running past the table.
        let theirs: Vec<Printed> = theirs
            .into_iter()
            .filter(|p| {
                let truncated = p.fields.iter().any(|(_, _, v)| v == "<TRUNCATED>");
                if truncated {
                    assert!(
                        ours_text.contains("runs past the end of the table"),
                        "{}: dmidecode says {} is truncated, bmclink does not:\n{ours_text}",
                        case.name,
                        p.handle
                    );
                }
                !truncated
            })
            .collect();
        let ours: Vec<Printed> = ours
            .iter()
            .map(|p| normalise(p, dmi, smbios, &case.dump))
            .collect();
        assert_eq!(
            ours, theirs,
            "{}: bmclink and dmidecode {}.{} disagree\n--- bmclink:\n{ours_text}\n--- dmidecode:\n{theirs_text}",
            case.name, dmi.0, dmi.1
        );
        compared += ours.len();
    }
    assert!(compared >= 12, "only {compared} structures compared");
}

#[test]
fn discover_maps_each_dump_to_the_expected_interface_and_values() {
    for case in cases() {
        let run = Run::new(&case);
        let report = run.discover(false);
        let ctx = |what: &str| format!("{}: {what}\n{report}", case.name);
        match case.linux {
            Some(name) => assert!(
                report.contains(&format!("Linux interface: {name} (")),
                "{}",
                ctx("wrong Linux interface")
            ),
            None => assert!(
                !report.contains("Linux interface: usb")
                    && !report.contains("Linux interface: idrac ("),
                "{}",
                ctx("unexpected mapping")
            ),
        }
        let iface = uses_row(&report, "interface");
        match case.linux {
            Some(name) => assert!(
                iface[0] == name && iface[1].starts_with("type 42"),
                "{}",
                ctx("interface row")
            ),
            None => assert!(
                iface[0] == "idrac" && iface[1].starts_with("default"),
                "{}",
                ctx("interface row")
            ),
        }
        for (key, (value, source)) in [
            ("bmc_ipv4", case.bmc_ipv4),
            ("host_ipv4", case.host_ipv4),
            ("bmc_hostname", case.bmc_hostname),
        ] {
            let row = uses_row(&report, key);
            assert!(
                row[0] == value && row[1].starts_with(source),
                "{}",
                ctx(&format!("{key}: want {value} from {source}, got {row:?}"))
            );
        }
        for s in case.says {
            assert!(report.contains(s), "{}", ctx(&format!("missing {s:?}")));
        }
        // The JSON form says the same.
        let j: serde_json::Value = serde_json::from_str(&run.discover(true)).unwrap();
        assert_eq!(
            j["uses"]["interface"]["value"],
            iface[0],
            "{}",
            ctx("json interface")
        );
        assert_eq!(
            j["linux_interface"]["name"].as_str(),
            case.linux,
            "{}",
            ctx("json linux_interface")
        );
    }
}

#[test]
fn the_config_file_wins_over_type_42_and_says_so() {
    let case = cases()
        .into_iter()
        .find(|c| c.name == "dell_idrac9")
        .unwrap();
    let run = Run::new(&case);
    std::fs::write(
        run.path("bmclink.toml"),
        "interface = \"bmc0\"\nbmc_ipv4 = \"169.254.0.1\"\n",
    )
    .unwrap();
    let report = run.discover(false);
    assert_eq!(uses_row(&report, "interface")[0], "bmc0");
    assert!(uses_row(&report, "interface")[1].starts_with("config"));
    assert_eq!(uses_row(&report, "bmc_ipv4")[0], "169.254.0.1");
    assert!(uses_row(&report, "bmc_ipv4")[1].starts_with("config"));
    // What the file left out still comes from type 42.
    assert!(uses_row(&report, "bmc_hostname")[1].starts_with("type 42"));
}

#[test]
fn a_missing_dump_file_is_a_runtime_error_naming_it() {
    let out = Command::new(env!("CARGO_BIN_EXE_bmclink"))
        .args([
            "discover",
            "--from-dump",
            "/nonexistent/dump.bin",
            "--sysfs",
            "/nonexistent",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/dump.bin"));
}

#[test]
fn the_sysfs_tables_read_like_the_dump() {
    // /sys/firmware/dmi/tables holds the entry point as the firmware wrote
    // it (the real table address) and the table in a file of its own.
    let case = cases()
        .into_iter()
        .find(|c| c.name == "dell_idrac9")
        .unwrap();
    let run = Run::new(&case);
    let tables = run.path("sys/firmware/dmi/tables");
    std::fs::create_dir_all(&tables).unwrap();
    let from_dump = bmclink_linux::smbios::Smbios::from_dump(&case.dump).unwrap();
    let mut entry = from_dump.entry;
    entry.table_address = 0x7f00_0000;
    let mut ep = vec![0u8; entry.buffer_len()];
    entry.emit(&mut ep);
    std::fs::write(tables.join("smbios_entry_point"), &ep).unwrap();
    std::fs::write(tables.join("DMI"), &case.dump[32..]).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_bmclink"))
        .arg("--config")
        .arg(run.path("bmclink.toml"))
        .args(["discover", "--sysfs"])
        .arg(run.path("sys"))
        .output()
        .unwrap();
    let report = String::from_utf8(out.stdout).unwrap();
    assert!(
        report.contains("Linux interface: idrac (USB 413c:a102 matches)"),
        "{report}"
    );
    assert_eq!(uses_row(&report, "bmc_ipv4")[0], "169.254.2.2");
    // The same structures as from the dump.
    assert_eq!(printed(&report), printed(&run.discover(false)));
}

// ---- the fuzz corpus -------------------------------------------------------

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/smbios")
}

#[test]
fn smbios_corpus_replays_without_failures() {
    let mut n = 0;
    for entry in std::fs::read_dir(corpus_dir()).expect("fuzz/corpus/smbios") {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        bmclink_linux::smbios::fuzz(&data);
        n += 1;
    }
    assert!(n >= cases().len(), "corpus has {n} files");
}

#[test]
fn the_seed_corpus_holds_every_crafted_dump() {
    for case in cases() {
        let seed = std::fs::read(corpus_dir().join(case.name)).unwrap_or_default();
        assert!(
            seed == case.dump,
            "fuzz/corpus/smbios/{} is stale; run `cargo test -p bmclink-linux --test smbios -- --ignored write_smbios_seeds`",
            case.name
        );
    }
}

/// Regenerates the `smbios` seeds from the crafted dumps.
/// `cargo test -p bmclink-linux --test smbios -- --ignored write_smbios_seeds`
#[test]
#[ignore]
fn write_smbios_seeds() {
    std::fs::create_dir_all(corpus_dir()).unwrap();
    for case in cases() {
        std::fs::write(corpus_dir().join(case.name), &case.dump).unwrap();
    }
}
