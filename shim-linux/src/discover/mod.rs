//! The BMC's host interface from SMBIOS type 42 (DMTF DSP0270), and what
//! bmclink takes from it where the config file is silent: the interface
//! (through sysfs, [`sysfs`]), the BMC's IPv4 or IPv6 address, the host's
//! address, the BMC's host name, and the USB ids for the udev rule.
//!
//! Rules (README "Behaviour where the design left a choice"):
//! - Of several type-42 structures, the first network one (interface type
//!   0x40) with a Redfish-over-IP record is used; a KCS or serial one listed
//!   first is skipped. Without a Redfish record, the first network one still
//!   names the device.
//! - The host address: Static → that address, claimed with ACD like a
//!   configured `host_ipv4`; DHCP, AutoConfigure and Host Selected → the
//!   link-local claim as without type 42 (BMC + 1 first).
//! - bmclink works on IPv4 link-local: an IPv4 address outside
//!   169.254.0.0/16 (HPE iLO's 16.1.15.1) is shown, not used.
//! - A missing, unreadable or malformed table leaves the defaults and is
//!   said once; it never stops the agent.

pub mod sysfs;
pub mod text;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use crate::config::{ShimConfig, Source};
use crate::smbios::{HostInterface, RedfishOverIp, Smbios, SmbiosError};
use sysfs::Mapping;

/// The kernel's SMBIOS directory, relative to the sysfs root.
pub const DMI_TABLES: &str = "firmware/dmi/tables";
const NO_HOST_INTERFACE: &str = "no type-42 network host interface";

/// The USB ids of Dell's iDRAC USB NIC: the udev rule's default.
pub const DEFAULT_USB_IDS: (u16, u16) = (0x413c, 0xa102);

/// Where the table was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// `SYSFS/firmware/dmi/tables`.
    Sysfs(PathBuf),
    /// A `dmidecode --dump-bin` file.
    Dump(PathBuf),
}

impl Origin {
    /// The path, for messages.
    pub fn path(&self) -> &Path {
        match self {
            Origin::Sysfs(p) | Origin::Dump(p) => p,
        }
    }
}

/// What type 42 gave, and what it maps to on this host.
#[derive(Debug, Clone)]
pub struct Discovery {
    /// Where the table came from.
    pub origin: Origin,
    /// The table, when it could be read.
    pub smbios: Option<Smbios>,
    /// Why it could not be read.
    pub read_error: Option<String>,
    /// Every type-42 structure, in table order.
    pub interfaces: Vec<HostInterface>,
    /// The error that ended the table walk early, if any.
    pub walk_error: Option<SmbiosError>,
    /// Which of `interfaces` is the BMC's network host interface.
    pub chosen: Option<usize>,
    /// The Linux interface it maps to.
    pub linux: Option<Mapping>,
}

impl Discovery {
    /// Reads the table from `origin` and maps the chosen interface through
    /// `sysfs` (the sysfs root, `/sys` on a real host).
    pub fn read(origin: Origin, sysfs: &Path) -> Self {
        let read = match &origin {
            Origin::Sysfs(dir) => Smbios::read_sysfs(dir),
            Origin::Dump(file) => Smbios::read_dump(file),
        };
        let (smbios, read_error) = match read {
            Ok(s) => (Some(s), None),
            Err(e) => (None, Some(e.to_string())),
        };
        Self::from_table(origin, smbios, read_error, sysfs)
    }

    /// The running host's table (`sysfs/firmware/dmi/tables`).
    pub fn system(sysfs: &Path) -> Self {
        Self::read(Origin::Sysfs(sysfs.join(DMI_TABLES)), sysfs)
    }

    fn from_table(
        origin: Origin,
        smbios: Option<Smbios>,
        read_error: Option<String>,
        sysfs: &Path,
    ) -> Self {
        let (interfaces, walk_error) = smbios
            .as_ref()
            .map(Smbios::host_interfaces)
            .unwrap_or_default();
        let chosen = interfaces
            .iter()
            .position(|h| h.is_network() && h.redfish().is_some())
            .or_else(|| interfaces.iter().position(HostInterface::is_network));
        let linux = chosen
            .and_then(|i| interfaces.get(i))
            .and_then(|h| h.device.as_ref())
            .and_then(|d| sysfs::map(d, &sysfs::net_devices(sysfs)));
        Discovery {
            origin,
            smbios,
            read_error,
            interfaces,
            walk_error,
            chosen,
            linux,
        }
    }

    /// The chosen network host interface.
    pub fn host_interface(&self) -> Option<&HostInterface> {
        self.chosen.and_then(|i| self.interfaces.get(i))
    }

    /// Its Redfish-over-IP record.
    pub fn redfish(&self) -> Option<&RedfishOverIp> {
        self.host_interface().and_then(HostInterface::redfish)
    }

    /// Why nothing usable was found, when nothing was; `None` when a
    /// network host interface was found.
    pub fn nothing_found(&self) -> Option<String> {
        if let Some(e) = &self.read_error {
            return Some(format!("no SMBIOS table: {e}"));
        }
        if self.chosen.is_some() {
            return None;
        }
        let mut why = if self.interfaces.is_empty() {
            "the SMBIOS table has no type-42 structure (Management Controller Host Interface): \
             the firmware does not publish a Redfish host interface"
                .to_owned()
        } else {
            format!(
                "the SMBIOS table's {} type-42 structure(s) describe no network host interface \
                 (interface type 0x40)",
                self.interfaces.len()
            )
        };
        if let Some(e) = &self.walk_error {
            why.push_str(&format!("; the table walk stopped early: {e}"));
        }
        Some(why)
    }
}

/// A value bmclink uses, where it came from, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Sourced<T> {
    /// The value.
    pub value: T,
    /// Where it came from.
    pub source: Source,
    /// Why, in a few words.
    pub note: String,
}

fn sourced<T>(value: T, source: Source, note: impl Into<String>) -> Sourced<T> {
    Sourced {
        value,
        source,
        note: note.into(),
    }
}

/// What [`apply`] set, value by value.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Applied {
    /// `interface`.
    pub interface: Sourced<String>,
    /// `bmc_ipv4`.
    pub bmc_ipv4: Sourced<Ipv4Addr>,
    /// `host_ipv4` (`None`: the link-local claim, BMC + 1 first).
    pub host_ipv4: Sourced<Option<Ipv4Addr>>,
    /// `bmc_ipv6` (`None`: learned by NDP).
    pub bmc_ipv6: Sourced<Option<Ipv6Addr>>,
    /// The BMC's host name for the hosts-file block.
    pub bmc_hostname: Sourced<Option<String>>,
    /// The USB ids the udev rule matches.
    pub usb_ids: Sourced<(u16, u16)>,
}

fn usable_hostname(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.parse::<IpAddr>().is_err()
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

/// Fills the values `cfg` leaves open from `d`; `iface_flag`: `--iface`
/// was given (it counts as configured). Returns what came from where.
pub fn apply(cfg: &mut ShimConfig, d: &Discovery, iface_flag: bool) -> Applied {
    let rf = d.redfish();
    let from_file = "set in the config file";
    let interface = if cfg.given.interface || iface_flag {
        sourced(cfg.interface.clone(), Source::Config, from_file)
    } else if let Some(m) = &d.linux {
        cfg.interface = m.name.clone();
        sourced(
            m.name.clone(),
            Source::Type42,
            format!("{} matches", m.matched),
        )
    } else {
        let why = match (
            d.host_interface(),
            d.host_interface().and_then(|h| h.device.as_ref()),
        ) {
            (None, _) => NO_HOST_INTERFACE,
            (Some(_), Some(_)) => "no Linux interface matches the type-42 device",
            (Some(_), None) => "type 42 names no device",
        };
        sourced(cfg.interface.clone(), Source::Default, why)
    };

    let service = rf.and_then(RedfishOverIp::service_ip);
    let bmc_ipv4 = match (cfg.given.bmc_ipv4, service) {
        (true, _) => sourced(cfg.core.bmc_ipv4, Source::Config, from_file),
        (false, Some(IpAddr::V4(a))) if a.is_link_local() => {
            cfg.core.bmc_ipv4 = a;
            sourced(a, Source::Type42, "Redfish service address")
        }
        (false, Some(IpAddr::V4(a))) => sourced(
            cfg.core.bmc_ipv4,
            Source::Default,
            format!("type 42's service address {a} is not IPv4 link-local, which bmclink needs"),
        ),
        (false, _) => sourced(
            cfg.core.bmc_ipv4,
            Source::Default,
            match rf {
                Some(r) => format!(
                    "type 42 gives no IPv4 service address (discovery {})",
                    r.service_discovery.text()
                ),
                None if d.chosen.is_none() => NO_HOST_INTERFACE.to_owned(),
                None => "no Redfish-over-IP record".to_owned(),
            },
        ),
    };

    let host_ipv4 = if cfg.given.host_ipv4 {
        sourced(cfg.core.host_ipv4, Source::Config, from_file)
    } else {
        match rf {
            Some(r) => match (r.host_assignment, r.host_ip()) {
                (crate::smbios::redfish::Assignment::Static, Some(IpAddr::V4(a)))
                    if a.is_link_local() && a != cfg.core.bmc_ipv4 =>
                {
                    cfg.core.host_ipv4 = Some(a);
                    sourced(Some(a), Source::Type42, "static host address, claimed with ACD")
                }
                (crate::smbios::redfish::Assignment::Static, Some(a)) => sourced(
                    None,
                    Source::Default,
                    format!("type 42's static host address {a} is not a usable IPv4 link-local one; link-local claim, BMC + 1 first"),
                ),
                (a, _) => sourced(
                    None,
                    Source::Type42,
                    format!("host IP assignment {}: link-local claim, BMC + 1 first", a.text()),
                ),
            },
            None => sourced(None, Source::Default, "link-local claim, BMC + 1 first"),
        }
    };

    let bmc_ipv6 = match (cfg.given.bmc_ipv6, service) {
        (true, _) => sourced(cfg.core.bmc_ipv6, Source::Config, from_file),
        (false, Some(IpAddr::V6(a))) if a.segments()[0] & 0xffc0 == 0xfe80 => {
            cfg.core.bmc_ipv6 = Some(a);
            sourced(Some(a), Source::Type42, "Redfish service address")
        }
        (false, _) => sourced(cfg.core.bmc_ipv6, Source::Default, "learned by NDP"),
    };

    let bmc_hostname = match rf.map(|r| &r.hostname) {
        Some(Ok(h)) if usable_hostname(h) => {
            cfg.bmc_hostname = Some(h.clone());
            sourced(Some(h.clone()), Source::Type42, "Redfish service host name")
        }
        Some(Ok(h)) if !h.is_empty() => sourced(
            None,
            Source::Default,
            format!("type 42's host name {h:?} is not a DNS name"),
        ),
        _ => sourced(None, Source::Default, "idrac.local and drac.local only"),
    };

    let usb_ids = match d
        .host_interface()
        .and_then(|h| h.device.as_ref())
        .and_then(|dev| dev.usb_ids())
    {
        Some(ids) => sourced(ids, Source::Type42, "the host interface's USB device"),
        None => sourced(DEFAULT_USB_IDS, Source::Default, "Dell iDRAC's USB NIC"),
    };

    Applied {
        interface,
        bmc_ipv4,
        host_ipv4,
        bmc_ipv6,
        bmc_hostname,
        usb_ids,
    }
}

/// For `run --iface` and `install`: fills `cfg` from the running host's
/// type 42 unless the config says `smbios = false`, and logs what it took.
pub fn apply_from_system(cfg: &mut ShimConfig, iface_flag: bool) -> Option<Applied> {
    if !cfg.smbios {
        return None;
    }
    let d = Discovery::system(Path::new("/sys"));
    if let Some(why) = d.nothing_found() {
        log::info!("SMBIOS type 42: {why}; using the configured and default values");
    }
    let applied = apply(cfg, &d, iface_flag);
    if d.chosen.is_some() {
        log::info!(
            "SMBIOS type 42: interface {} ({}), BMC {} ({})",
            applied.interface.value,
            applied.interface.source.text(),
            applied.bmc_ipv4.value,
            applied.bmc_ipv4.source.text()
        );
    }
    Some(applied)
}

/// `bmclink discover [--json] [--from-dump FILE] [--sysfs DIR]`.
pub fn command(
    cli: &crate::cli::Cli,
    args: &crate::cli::DiscoverArgs,
    out: &mut dyn std::io::Write,
) -> Result<(), crate::cli::Failure> {
    use crate::cli::{Exit, Failure};
    let mut cfg = crate::commands::resolve_config(cli)?;
    let origin = match &args.from_dump {
        Some(f) => {
            if let Err(e) = std::fs::metadata(f) {
                return Err(Failure::new(
                    Exit::Runtime,
                    format!("cannot read the dump {}: {e}", f.display()),
                ));
            }
            Origin::Dump(f.clone())
        }
        None => Origin::Sysfs(args.sysfs.join(DMI_TABLES)),
    };
    let d = Discovery::read(origin, &args.sysfs);
    let applied = apply(&mut cfg, &d, false);
    let text = if args.json {
        serde_json::to_string_pretty(&text::report_json(&d, &applied))
            .map_err(|e| Failure::new(Exit::Runtime, e.to_string()))?
    } else {
        text::report(&d, &applied)
    };
    writeln!(out, "{}", text.trim_end())
        .map_err(|e| Failure::new(Exit::Runtime, format!("cannot write the output: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/corpus/smbios")
            .join(name)
    }

    #[test]
    fn without_type_42_the_config_is_left_as_it_was() {
        let t = tempfile::tempdir().unwrap();
        for origin in [
            Origin::Sysfs(t.path().join(DMI_TABLES)),
            Origin::Dump(corpus("no_type42")),
            Origin::Dump(corpus("bad_entry_point_checksum")),
            Origin::Dump(corpus("structure_length_below_header")),
        ] {
            let d = Discovery::read(origin.clone(), t.path());
            assert!(d.nothing_found().is_some(), "{origin:?}");
            let before = ShimConfig::default();
            let mut cfg = before.clone();
            let a = apply(&mut cfg, &d, false);
            assert_eq!(cfg.core, before.core, "{origin:?}");
            assert_eq!(
                (cfg.interface.as_str(), &cfg.bmc_hostname),
                ("idrac", &None)
            );
            assert_eq!(a.usb_ids.value, DEFAULT_USB_IDS);
            for s in [a.interface.source, a.bmc_ipv4.source, a.host_ipv4.source] {
                assert_eq!(s, Source::Default, "{origin:?}");
            }
        }
    }

    #[test]
    fn a_dell_record_sets_what_the_file_leaves_out_and_keeps_the_rest() {
        let t = tempfile::tempdir().unwrap();
        sysfs::fake_usb_nic(
            t.path(),
            "idrac",
            (0x413c, 0xa102),
            None,
            [2, 0, 0, 0, 0, 9],
        )
        .unwrap();
        let d = Discovery::read(Origin::Dump(corpus("dell_idrac9")), t.path());
        let mut cfg = ShimConfig::default();
        cfg.core.ipv6 = false; // not a type-42 value: untouched
        apply(&mut cfg, &d, false);
        assert_eq!(cfg.core.bmc_ipv4, Ipv4Addr::new(169, 254, 2, 2));
        // DHCP: the link-local claim, BMC + 1 first, as without type 42.
        assert_eq!(cfg.core.host_ipv4, None);
        assert_eq!(
            cfg.core.preferred_host_ipv4(),
            Ipv4Addr::new(169, 254, 2, 3)
        );
        assert_eq!(cfg.bmc_hostname.as_deref(), Some("idrac.local"));
        assert!(!cfg.core.ipv6);

        // The file's values and --iface win.
        let mut cfg = ShimConfig {
            interface: "bmc0".into(),
            ..ShimConfig::default()
        };
        cfg.given.interface = true;
        cfg.core.bmc_ipv4 = Ipv4Addr::new(169, 254, 0, 1);
        cfg.given.bmc_ipv4 = true;
        let a = apply(&mut cfg, &d, false);
        assert_eq!(
            (cfg.interface.as_str(), a.interface.source),
            ("bmc0", Source::Config)
        );
        assert_eq!(cfg.core.bmc_ipv4, Ipv4Addr::new(169, 254, 0, 1));
        let mut cfg = ShimConfig::default();
        let a = apply(&mut cfg, &d, true);
        assert_eq!(a.interface.source, Source::Config);
    }

    #[test]
    fn a_static_link_local_host_address_is_the_one_claimed() {
        let t = tempfile::tempdir().unwrap();
        let d = Discovery::read(Origin::Dump(corpus("lenovo_xcc_lan_over_usb")), t.path());
        let mut cfg = ShimConfig::default();
        apply(&mut cfg, &d, false);
        assert_eq!(cfg.core.bmc_ipv4, Ipv4Addr::new(169, 254, 95, 118));
        assert_eq!(cfg.core.host_ipv4, Some(Ipv4Addr::new(169, 254, 95, 120)));
        // No matching interface in an empty tree: the default name stays.
        assert_eq!(cfg.interface, "idrac");
    }
}
