//! A network host interface's device descriptor (DSP0270 v1.3 §8.3):
//! the interface data of a type-42 structure with interface type 0x40,
//! starting with the device type.
//!
//! ```text
//! 0x02 USB        idVendor idProduct serial(USB string descriptor)
//! 0x03 PCI/PCIe   VendorID DeviceID SubVendorID SubDeviceID
//! 0x04 USB v2     len idVendor idProduct serial(SMBIOS string) MAC[6] characteristics handle
//! 0x05 PCI v2     len VendorID DeviceID SubVendorID SubDeviceID MAC[6] segment bus devfn characteristics handle
//! 0x80+ OEM       vendor IANA[4] ...
//! ```
//!
//! The minimum lengths are dmidecode's; characteristics and the credential
//! bootstrapping handle (v1.3) are read when the data is long enough.

use super::le_u16;

/// A network host interface's device (DSP0270 §8.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Device {
    /// 0x02: USB network interface.
    Usb {
        /// idVendor.
        vendor: u16,
        /// idProduct.
        product: u16,
        /// The serial number string descriptor's text, when present and well formed.
        serial: Option<String>,
    },
    /// 0x03: PCI/PCIe network interface.
    Pci(PciIds),
    /// 0x04: USB network interface v2.
    UsbV2 {
        /// idVendor.
        vendor: u16,
        /// idProduct.
        product: u16,
        /// The serial number (an SMBIOS string of this structure).
        serial: Option<String>,
        /// The network device's MAC address.
        mac: [u8; 6],
        /// Device characteristics and credential handle (DSP0270 v1.3).
        v13: Option<Characteristics>,
    },
    /// 0x05: PCI/PCIe network interface v2.
    PciV2 {
        /// The four ids.
        ids: PciIds,
        /// The network device's MAC address.
        mac: [u8; 6],
        /// Segment group, bus, device/function.
        segment: u16,
        /// Bus number.
        bus: u8,
        /// Device (bits 7:3) and function (2:0).
        devfn: u8,
        /// Device characteristics and credential handle (DSP0270 v1.3).
        v13: Option<Characteristics>,
    },
    /// 0x80 to 0xFF: OEM, with the vendor's IANA number bytes.
    Oem {
        /// The device type.
        kind: u8,
        /// The vendor IANA field, as stored.
        iana: [u8; 4],
    },
    /// Any other device type.
    Unknown {
        /// The device type.
        kind: u8,
    },
    /// The descriptor is shorter than its type needs.
    Short {
        /// The device type.
        kind: u8,
        /// The interface data length.
        len: u8,
        /// What the type needs.
        need: u8,
    },
}

/// The ids of a PCI function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PciIds {
    /// Vendor ID.
    pub vendor: u16,
    /// Device ID.
    pub device: u16,
    /// Subsystem vendor ID.
    pub subvendor: u16,
    /// Subsystem ID.
    pub subdevice: u16,
}

/// DSP0270 v1.3 device characteristics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Characteristics {
    /// The raw characteristics word.
    pub bits: u16,
    /// The credential bootstrapping handle (meaningful with bit 0).
    pub credential_handle: u16,
}

impl Characteristics {
    /// Bit 0: credential bootstrapping via IPMI is supported (DSP0270 §9).
    pub fn credential_bootstrapping(&self) -> bool {
        self.bits & 1 != 0
    }
}

impl Device {
    /// dmidecode's name of the device type.
    pub fn type_text(kind: u8) -> &'static str {
        match kind {
            0x02 => "USB",
            0x03 => "PCI/PCIe",
            0x04 => "USB v2",
            0x05 => "PCI/PCIe v2",
            0x80..=0xFF => "OEM",
            _ => super::OUT_OF_SPEC,
        }
    }

    /// The device type byte.
    pub fn kind(&self) -> u8 {
        match self {
            Device::Usb { .. } => 0x02,
            Device::Pci(_) => 0x03,
            Device::UsbV2 { .. } => 0x04,
            Device::PciV2 { .. } => 0x05,
            Device::Oem { kind, .. } | Device::Unknown { kind } | Device::Short { kind, .. } => {
                *kind
            }
        }
    }

    /// USB vendor and product, for USB devices.
    pub fn usb_ids(&self) -> Option<(u16, u16)> {
        match self {
            Device::Usb {
                vendor, product, ..
            }
            | Device::UsbV2 {
                vendor, product, ..
            } => Some((*vendor, *product)),
            _ => None,
        }
    }

    /// The MAC address, for v2 descriptors that carry a usable one.
    pub fn mac(&self) -> Option<[u8; 6]> {
        match self {
            Device::UsbV2 { mac, .. } | Device::PciV2 { mac, .. } => {
                let usable = *mac != [0; 6] && *mac != [0xFF; 6];
                usable.then_some(*mac)
            }
            _ => None,
        }
    }

    /// The serial number, for USB devices that give one.
    pub fn serial(&self) -> Option<&str> {
        match self {
            Device::Usb { serial, .. } | Device::UsbV2 { serial, .. } => serial.as_deref(),
            _ => None,
        }
    }

    /// Decodes the interface data of a network host interface (`data`
    /// starts with the device type); `strings` resolves SMBIOS string
    /// numbers. Minimum lengths are dmidecode's.
    pub fn parse<'a>(data: &'a [u8], strings: impl Fn(u8) -> Option<&'a [u8]>) -> Option<Self> {
        let (&kind, d) = data.split_first()?;
        let len = u8::try_from(data.len()).unwrap_or(u8::MAX);
        let short = |need: u8| Device::Short { kind, len, need };
        let mac_at = |at: usize| -> [u8; 6] {
            d.get(at..)
                .and_then(|s| s.first_chunk::<6>())
                .copied()
                .unwrap_or([0; 6])
        };
        let v13_at = |at: usize| Characteristics {
            bits: le_u16(d, at),
            credential_handle: le_u16(d, at.saturating_add(2)),
        };
        Some(match kind {
            0x02 if len >= 5 => Device::Usb {
                vendor: le_u16(d, 0),
                product: le_u16(d, 2),
                serial: usb_string_descriptor(d.get(4..).unwrap_or(&[])),
            },
            0x02 => short(5),
            0x03 if len >= 9 => Device::Pci(PciIds {
                vendor: le_u16(d, 0),
                device: le_u16(d, 2),
                subvendor: le_u16(d, 4),
                subdevice: le_u16(d, 6),
            }),
            0x03 => short(9),
            0x04 if len >= 0x0D => Device::UsbV2 {
                vendor: le_u16(d, 1),
                product: le_u16(d, 3),
                serial: d
                    .get(5)
                    .and_then(|i| strings(*i))
                    .map(|s| String::from_utf8_lossy(s).into_owned()),
                mac: mac_at(6),
                v13: (len >= 0x11).then(|| v13_at(12)),
            },
            0x04 => short(0x0D),
            0x05 if len >= 0x14 => Device::PciV2 {
                ids: PciIds {
                    vendor: le_u16(d, 1),
                    device: le_u16(d, 3),
                    subvendor: le_u16(d, 5),
                    subdevice: le_u16(d, 7),
                },
                mac: mac_at(9),
                segment: le_u16(d, 15),
                bus: d.get(17).copied().unwrap_or(0),
                devfn: d.get(18).copied().unwrap_or(0),
                v13: (len >= 0x18).then(|| v13_at(19)),
            },
            0x05 => short(0x14),
            0x80..=0xFF if len >= 5 => Device::Oem {
                kind,
                iana: d.first_chunk::<4>().copied().unwrap_or([0; 4]),
            },
            0x80..=0xFF => short(5),
            _ => Device::Unknown { kind },
        })
    }
}

/// A USB string descriptor (bLength, bDescriptorType 3, UTF-16LE text).
fn usb_string_descriptor(d: &[u8]) -> Option<String> {
    let (&len, rest) = d.split_first()?;
    let (&kind, text) = rest.split_first()?;
    let n = usize::from(len).checked_sub(2)?;
    if kind != 3 || n == 0 || n % 2 != 0 {
        return None;
    }
    let units: Vec<u16> = text
        .get(..n)?
        .chunks_exact(2)
        .map(|c| {
            u16::from_le_bytes([
                c.first().copied().unwrap_or(0),
                c.get(1).copied().unwrap_or(0),
            ])
        })
        .collect();
    Some(String::from_utf16_lossy(&units))
}
