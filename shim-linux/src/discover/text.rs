//! `bmclink discover`: the type-42 structures in dmidecode's words (the same
//! field names and value formats as `dmidecode -t 42`, so the two can be
//! compared line by line), the Linux interface, and each value bmclink uses
//! with where it came from.

use std::fmt::Write as _;
use std::net::IpAddr;

use super::{Applied, Discovery};
use crate::frames::format_mac;
use crate::smbios::device::Characteristics;
use crate::smbios::{Device, HostInterface, Protocol, RedfishOverIp, OUT_OF_SPEC};

/// One printed line: depth (1 or 2 tabs), field name, value.
pub type Line = (u8, String, String);

/// Field names bmclink prints that dmidecode does not.
pub const EXTRA_FIELDS: [&str; 2] = ["Serial Number", "Problem"];

fn address(format: crate::smbios::redfish::AddressFormat, field: [u8; 16]) -> String {
    match format.address(field) {
        Some(IpAddr::V4(a)) => a.to_string(),
        Some(IpAddr::V6(a)) => a.to_string(),
        None => OUT_OF_SPEC.to_owned(),
    }
}

fn characteristics(lines: &mut Vec<Line>, v: &Option<Characteristics>) {
    let Some(c) = v else { return };
    let item = if c.credential_bootstrapping() {
        "Credential bootstrapping via IPMI is supported"
    } else {
        "None"
    };
    lines.push((1, "Device Characteristics".into(), String::new()));
    lines.push((2, String::new(), item.into()));
    if c.credential_bootstrapping() {
        lines.push((
            1,
            "Credential Bootstrapping Handle".into(),
            format!("0x{:04x}", c.credential_handle),
        ));
    }
}

fn device(lines: &mut Vec<Line>, d: &Device) {
    let mut attr = |k: &str, v: String| lines.push((1, k.to_owned(), v));
    attr("Device Type", Device::type_text(d.kind()).to_owned());
    let hex = |v: u16| format!("0x{v:04x}");
    match d {
        Device::Usb {
            vendor,
            product,
            serial,
        } => {
            attr("idVendor", hex(*vendor));
            attr("idProduct", hex(*product));
            if let Some(s) = serial {
                attr("Serial Number", s.clone());
            }
        }
        Device::Pci(ids) => {
            attr("VendorID", hex(ids.vendor));
            attr("DeviceID", hex(ids.device));
            attr("SubVendorID", hex(ids.subvendor));
            attr("SubDeviceID", hex(ids.subdevice));
        }
        Device::UsbV2 {
            vendor,
            product,
            serial,
            mac,
            v13,
        } => {
            attr("idVendor", hex(*vendor));
            attr("idProduct", hex(*product));
            attr("MAC Address", format_mac(*mac));
            characteristics(lines, v13);
            if let Some(s) = serial {
                lines.push((1, "Serial Number".into(), s.clone()));
            }
        }
        Device::PciV2 {
            ids,
            mac,
            segment,
            bus,
            devfn,
            v13,
        } => {
            attr("VendorID", hex(ids.vendor));
            attr("DeviceID", hex(ids.device));
            attr("SubVendorID", hex(ids.subvendor));
            attr("SubDeviceID", hex(ids.subdevice));
            attr("MAC Address", format_mac(*mac));
            if !(*segment == 0xFFFF && *bus == 0xFF && *devfn == 0xFF) {
                attr(
                    "Bus Address",
                    format!("{segment:04x}:{bus:02x}:{:02x}.{:x}", devfn >> 3, devfn & 7),
                );
            }
            characteristics(lines, v13);
        }
        Device::Oem { iana, .. } => {
            let [a, b, c, e] = iana;
            attr(
                "Vendor ID",
                format!("0x{a:02x}:0x{b:02x}:0x{c:02x}:0x{e:02x}"),
            );
        }
        Device::Unknown { .. } => {}
        Device::Short { len, need, .. } => attr(
            "Problem",
            format!("the device descriptor is {len} bytes; its type needs {need}"),
        ),
    }
}

fn redfish(lines: &mut Vec<Line>, r: &RedfishOverIp) {
    let mut sub = |k: String, v: String| lines.push((2, k, v));
    sub("Service UUID".into(), r.uuid_text());
    sub(
        "Host IP Assignment Type".into(),
        r.host_assignment.text().into(),
    );
    let fmt = r.host_format.text();
    sub("Host IP Address Format".into(), fmt.into());
    if r.host_assignment.carries_address() {
        sub(
            format!("{fmt} Address"),
            address(r.host_format, r.host_address),
        );
        sub(format!("{fmt} Mask"), address(r.host_format, r.host_mask));
    }
    sub(
        "Redfish Service IP Discovery Type".into(),
        r.service_discovery.text().into(),
    );
    let fmt = r.service_format.text();
    sub("Redfish Service IP Address Format".into(), fmt.into());
    if r.service_discovery.carries_address() {
        sub(
            format!("{fmt} Redfish Service Address"),
            address(r.service_format, r.service_address),
        );
        sub(
            format!("{fmt} Redfish Service Mask"),
            address(r.service_format, r.service_mask),
        );
        sub("Redfish Service Port".into(), r.port.to_string());
        sub("Redfish Service Vlan".into(), r.vlan.to_string());
    }
    sub(
        "Redfish Service Hostname".into(),
        match &r.hostname {
            Ok(h) => h.clone(),
            Err(_) => OUT_OF_SPEC.to_owned(),
        },
    );
    if let Err(e) = &r.hostname {
        sub("Problem".into(), e.to_string());
    }
}

fn protocol(lines: &mut Vec<Line>, p: &Protocol) {
    lines.push((
        1,
        "Protocol ID".into(),
        format!("{:02x} ({})", p.id, Protocol::type_text(p.id)),
    ));
    match &p.redfish {
        Some(Ok(r)) => redfish(lines, r),
        Some(Err(e)) => lines.push((2, "Problem".into(), e.to_string())),
        None => {}
    }
}

/// The fields of one type-42 structure, as dmidecode names them.
pub fn fields(h: &HostInterface) -> Vec<Line> {
    let mut lines = Vec::new();
    use crate::smbios::HostInterfaceError as E;
    // dmidecode prints nothing of a structure whose interface data overruns it.
    let unreadable = matches!(
        h.error,
        Some(E::StructureShort { .. } | E::InterfaceDataOverrun { .. })
    );
    if !unreadable {
        lines.push((
            1,
            "Host Interface Type".into(),
            HostInterface::type_text(h.interface_type).into(),
        ));
    }
    if let Some(d) = &h.device {
        device(&mut lines, d);
    }
    for p in &h.protocols {
        protocol(&mut lines, p);
    }
    if let Some(e) = &h.error {
        lines.push((1, "Problem".into(), e.to_string()));
    }
    lines
}

/// One structure in dmidecode's layout.
pub fn structure_text(h: &HostInterface) -> String {
    let mut t = format!(
        "Handle 0x{:04X}, DMI type 42, {} bytes\nManagement Controller Host Interface\n",
        h.handle, h.length
    );
    for (depth, k, v) in fields(h) {
        let tabs = "\t".repeat(usize::from(depth));
        match (k.is_empty(), v.is_empty()) {
            (true, _) => {
                let _ = writeln!(t, "{tabs}{v}");
            }
            (false, true) => {
                let _ = writeln!(t, "{tabs}{k}:");
            }
            (false, false) => {
                let _ = writeln!(t, "{tabs}{k}: {v}");
            }
        }
    }
    t
}

fn value_text<T: std::fmt::Display>(v: &Option<T>, none: &str) -> String {
    v.as_ref()
        .map(|v| v.to_string())
        .unwrap_or_else(|| none.to_owned())
}

/// The whole `bmclink discover` text.
pub fn report(d: &Discovery, a: &Applied) -> String {
    let mut t = String::new();
    match &d.smbios {
        Some(s) => {
            let _ = writeln!(
                t,
                "SMBIOS {} ({} entry point) from {}: {} type-42 structure(s)",
                s.entry.version,
                s.entry.anchor.text(),
                d.origin.path().display(),
                d.interfaces.len()
            );
            if let Some(n) = s.short_by {
                let _ = writeln!(
                    t,
                    "warning: the table is {n} bytes shorter than its entry point announces; read what is there"
                );
            }
        }
        None => {
            let _ = writeln!(t, "SMBIOS: nothing read from {}", d.origin.path().display());
        }
    }
    if let Some(e) = &d.walk_error {
        let _ = writeln!(t, "warning: {e}");
    }
    for h in &d.interfaces {
        t.push('\n');
        t.push_str(&structure_text(h));
    }
    t.push('\n');
    match (d.nothing_found(), d.host_interface()) {
        (Some(why), _) => {
            let _ = writeln!(
                t,
                "No BMC host interface found: {why}.\nbmclink uses the config file's values and its defaults."
            );
        }
        (None, Some(h)) => {
            let kind = if h.redfish().is_some() {
                "network, Redfish over IP"
            } else {
                "network, no usable Redfish-over-IP record"
            };
            let _ = writeln!(
                t,
                "The BMC's host interface: handle 0x{:04X} ({kind})",
                h.handle
            );
            match &d.linux {
                Some(m) => {
                    let _ = write!(t, "Linux interface: {} ({} matches)", m.name, m.matched);
                    if !m.also.is_empty() {
                        let _ = write!(t, "; also matching: {}", m.also.join(", "));
                    }
                    t.push('\n');
                }
                None => {
                    let _ = writeln!(
                        t,
                        "Linux interface: none matches the host interface's device (is the USB NIC up? is its driver loaded?)"
                    );
                }
            }
        }
        (None, None) => {}
    }
    let _ = writeln!(t, "\nWhat bmclink uses:");
    let rows = [
        (
            "interface",
            a.interface.value.clone(),
            a.interface.source,
            &a.interface.note,
        ),
        (
            "bmc_ipv4",
            a.bmc_ipv4.value.to_string(),
            a.bmc_ipv4.source,
            &a.bmc_ipv4.note,
        ),
        (
            "host_ipv4",
            value_text(&a.host_ipv4.value, "link-local claim"),
            a.host_ipv4.source,
            &a.host_ipv4.note,
        ),
        (
            "bmc_ipv6",
            value_text(&a.bmc_ipv6.value, "learned"),
            a.bmc_ipv6.source,
            &a.bmc_ipv6.note,
        ),
        (
            "bmc_hostname",
            value_text(&a.bmc_hostname.value, "none"),
            a.bmc_hostname.source,
            &a.bmc_hostname.note,
        ),
        (
            "udev rule",
            format!("USB {:04x}:{:04x}", a.usb_ids.value.0, a.usb_ids.value.1),
            a.usb_ids.source,
            &a.usb_ids.note,
        ),
    ];
    for (key, value, source, note) in rows {
        let _ = writeln!(t, "  {key:<13} {value:<22} {:<8} {note}", source.text());
    }
    t
}

/// The `--json` form: the same structures as lists of `[depth, field,
/// value]`, and the values with their sources.
pub fn report_json(d: &Discovery, a: &Applied) -> serde_json::Value {
    let structures: Vec<serde_json::Value> = d
        .interfaces
        .iter()
        .map(|h| {
            serde_json::json!({
                "handle": h.handle,
                "length": h.length,
                "interface_type": h.interface_type,
                "fields": fields(h),
            })
        })
        .collect();
    serde_json::json!({
        "source": d.origin.path(),
        "smbios_version": d.smbios.as_ref().map(|s| s.entry.version.to_string()),
        "read_error": d.read_error,
        "walk_error": d.walk_error.as_ref().map(|e| e.to_string()),
        "structures": structures,
        "chosen_handle": d.host_interface().map(|h| h.handle),
        "linux_interface": d.linux,
        "nothing_found": d.nothing_found(),
        "uses": a,
    })
}
