//! Which Linux interface is the BMC's: the one whose USB (or PCI) ids, and
//! serial number or MAC address, match the type-42 device descriptor, read
//! through sysfs (`SYSFS/class/net/NAME/{address,device}`). The sysfs root
//! is a parameter so tests run on a fake tree.

use std::fs;
use std::path::{Path, PathBuf};

use crate::frames::format_mac;
use crate::smbios::device::PciIds;
use crate::smbios::Device;

/// A network interface as sysfs shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetDevice {
    /// The interface name.
    pub name: String,
    /// Its MAC address.
    pub mac: Option<[u8; 6]>,
    /// USB idVendor, idProduct of its device.
    pub usb: Option<(u16, u16)>,
    /// Its USB device's serial number.
    pub usb_serial: Option<String>,
    /// Its PCI function's ids.
    pub pci: Option<PciIds>,
}

/// The interface the descriptor maps to, and how.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Mapping {
    /// The interface name.
    pub name: String,
    /// What matched, e.g. `USB 413c:a102` or `MAC 02:..`.
    pub matched: String,
    /// Other interfaces that matched as well (the first by name is used).
    pub also: Vec<String>,
}

fn read_trimmed(p: &Path) -> Option<String> {
    fs::read_to_string(p).ok().map(|s| s.trim().to_owned())
}

fn read_hex(p: &Path) -> Option<u16> {
    let t = read_trimmed(p)?;
    u16::from_str_radix(t.trim_start_matches("0x"), 16).ok()
}

/// The network interfaces under `sysfs/class/net`, by name.
pub fn net_devices(sysfs: &Path) -> Vec<NetDevice> {
    let Ok(dir) = fs::read_dir(sysfs.join("class/net")) else {
        return Vec::new();
    };
    let mut names: Vec<String> = dir
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let base = sysfs.join("class/net").join(&name);
            let mac = read_trimmed(&base.join("address")).and_then(|a| parse_any_mac(&a));
            let mut d = NetDevice {
                name,
                mac,
                ..NetDevice::default()
            };
            if let Ok(dev) = fs::canonicalize(base.join("device")) {
                // A USB NIC's `device` is the USB interface; its ids are on
                // the USB device, one level up.
                let usb_dir: Option<PathBuf> =
                    [Some(dev.clone()), dev.parent().map(Path::to_path_buf)]
                        .into_iter()
                        .flatten()
                        .find(|p| p.join("idVendor").is_file());
                if let Some(u) = usb_dir {
                    d.usb = read_hex(&u.join("idVendor")).zip(read_hex(&u.join("idProduct")));
                    d.usb_serial = read_trimmed(&u.join("serial"));
                } else if dev.join("vendor").is_file() {
                    d.pci = Some(PciIds {
                        vendor: read_hex(&dev.join("vendor")).unwrap_or(0),
                        device: read_hex(&dev.join("device")).unwrap_or(0),
                        subvendor: read_hex(&dev.join("subsystem_vendor")).unwrap_or(0),
                        subdevice: read_hex(&dev.join("subsystem_device")).unwrap_or(0),
                    });
                }
            }
            d
        })
        .collect()
}

/// Any MAC in sysfs notation (unicast or not: it is only compared).
fn parse_any_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for b in &mut mac {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// The interface `device` maps to among `devs`: a MAC match wins (a v2
/// descriptor names one device exactly); else USB or PCI ids, narrowed by
/// the USB serial number when several match.
pub fn map(device: &Device, devs: &[NetDevice]) -> Option<Mapping> {
    let pick = |found: Vec<&NetDevice>, matched: String| -> Option<Mapping> {
        let (first, rest) = found.split_first()?;
        Some(Mapping {
            name: first.name.clone(),
            matched,
            also: rest.iter().map(|d| d.name.clone()).collect(),
        })
    };
    if let Some(mac) = device.mac() {
        let by_mac: Vec<&NetDevice> = devs.iter().filter(|d| d.mac == Some(mac)).collect();
        if !by_mac.is_empty() {
            return pick(by_mac, format!("MAC {}", format_mac(mac)));
        }
    }
    if let Some((vid, pid)) = device.usb_ids() {
        let by_ids: Vec<&NetDevice> = devs.iter().filter(|d| d.usb == Some((vid, pid))).collect();
        let ids = format!("USB {vid:04x}:{pid:04x}");
        if let Some(serial) = device.serial().filter(|s| !s.is_empty()) {
            let by_serial: Vec<&NetDevice> = by_ids
                .iter()
                .copied()
                .filter(|d| d.usb_serial.as_deref() == Some(serial))
                .collect();
            if !by_serial.is_empty() {
                return pick(by_serial, format!("{ids} serial {serial}"));
            }
        }
        return pick(by_ids, ids);
    }
    let ids = match device {
        Device::Pci(ids) | Device::PciV2 { ids, .. } => *ids,
        _ => return None,
    };
    let by_ids: Vec<&NetDevice> = devs.iter().filter(|d| d.pci == Some(ids)).collect();
    pick(
        by_ids,
        format!(
            "PCI {:04x}:{:04x} subsystem {:04x}:{:04x}",
            ids.vendor, ids.device, ids.subvendor, ids.subdevice
        ),
    )
}

/// Test support: writes a fake sysfs entry for a USB NIC under `sysfs`.
pub fn fake_usb_nic(
    sysfs: &Path,
    name: &str,
    ids: (u16, u16),
    serial: Option<&str>,
    mac: [u8; 6],
) -> std::io::Result<()> {
    let usb = sysfs.join(format!("devices/usb1/1-{name}"));
    let intf = usb.join(format!("1-{name}:1.0"));
    fs::create_dir_all(&intf)?;
    fs::write(usb.join("idVendor"), format!("{:04x}\n", ids.0))?;
    fs::write(usb.join("idProduct"), format!("{:04x}\n", ids.1))?;
    if let Some(s) = serial {
        fs::write(usb.join("serial"), format!("{s}\n"))?;
    }
    let net = sysfs.join("class/net").join(name);
    fs::create_dir_all(&net)?;
    fs::write(net.join("address"), format!("{}\n", format_mac(mac)))?;
    std::os::unix::fs::symlink(&intf, net.join("device"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_usb_nic_maps_by_ids_then_serial_and_a_v2_mac_wins() {
        let t = tempfile::tempdir().unwrap();
        fake_usb_nic(
            t.path(),
            "usb0",
            (0x1d6b, 0x0104),
            Some("A"),
            [2, 0, 0, 0, 0, 1],
        )
        .unwrap();
        fake_usb_nic(
            t.path(),
            "usb1",
            (0x1d6b, 0x0104),
            Some("B"),
            [2, 0, 0, 0, 0, 2],
        )
        .unwrap();
        std::fs::create_dir_all(t.path().join("class/net/lo")).unwrap();
        let devs = net_devices(t.path());
        assert_eq!(devs.len(), 3);
        assert_eq!(devs[1].usb, Some((0x1d6b, 0x0104)));
        assert_eq!(devs[1].usb_serial.as_deref(), Some("A"));
        let usb = |serial: Option<&str>| Device::Usb {
            vendor: 0x1d6b,
            product: 0x0104,
            serial: serial.map(str::to_owned),
        };
        let m = map(&usb(None), &devs).unwrap();
        assert_eq!(
            (m.name.as_str(), m.also.clone()),
            ("usb0", vec!["usb1".to_owned()])
        );
        assert_eq!(map(&usb(Some("B")), &devs).unwrap().name, "usb1");
        let v2 = Device::UsbV2 {
            vendor: 0xffff,
            product: 0xffff,
            serial: None,
            mac: [2, 0, 0, 0, 0, 2],
            v13: None,
        };
        let m = map(&v2, &devs).unwrap();
        assert_eq!(
            (m.name.as_str(), m.matched.as_str()),
            ("usb1", "MAC 02:00:00:00:00:02")
        );
        let other = Device::Usb {
            vendor: 0x413c,
            product: 0xa102,
            serial: None,
        };
        assert_eq!(map(&other, &devs), None);
    }
}
