//! `bmclink install` / `uninstall`: the state directory, the systemd unit,
//! the udev rule and the journal message catalog, under a root directory
//! (`/`, or a scratch one in tests).

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use bmclink_core::platform::Record;

use crate::store::create_state_dir;

/// The hardened unit, as shipped.
pub const UNIT: &str = include_str!("../packaging/bmclink.service");
/// The udev rule, as shipped.
pub const UDEV_RULE: &str = include_str!("../packaging/70-bmclink.rules");
/// Where the unit goes, relative to the root.
pub const UNIT_PATH: &str = "etc/systemd/system/bmclink.service";
/// Where the rule goes, relative to the root.
pub const RULE_PATH: &str = "etc/udev/rules.d/70-bmclink.rules";
/// The journal message catalog, as shipped (generated from the core's audit
/// table, `cargo xtask audit-table --write`; a test keeps it current).
pub const CATALOG: &str = include_str!("../packaging/bmclink.catalog");
/// Where the catalog goes, relative to the root (systemd's catalog
/// directory; `journalctl --update-catalog` compiles it).
pub const CATALOG_PATH: &str = "usr/lib/systemd/catalog/bmclink.catalog";

/// The files `install` wrote or `uninstall` removed, for the report.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Paths written or created.
    pub written: Vec<PathBuf>,
    /// Paths removed.
    pub removed: Vec<PathBuf>,
}

/// An install step failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot {what} {path}: {source}")]
pub struct InstallError {
    /// What was being done.
    pub what: &'static str,
    /// The path.
    pub path: PathBuf,
    /// The OS error.
    #[source]
    pub source: io::Error,
}

fn err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> InstallError + 'a {
    move |source| InstallError {
        what,
        path: path.to_owned(),
        source,
    }
}

/// `path` (absolute) re-rooted under `root`.
pub fn under(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

/// The unit with `ExecStart` pointing at `exe` and `--iface` at `interface`.
pub fn unit_text(exe: &Path, interface: &str) -> String {
    UNIT.replace(
        "ExecStart=/usr/sbin/bmclink run --iface idrac",
        &format!("ExecStart={} run --iface {interface}", exe.display()),
    )
    .replace(
        "sys-subsystem-net-devices-idrac.device",
        &format!("sys-subsystem-net-devices-{interface}.device"),
    )
}

fn write_file(path: &Path, text: &str, changes: &mut Changes) -> Result<(), InstallError> {
    if let Some(dir) = path.parent() {
        DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(err("create directory", dir))?;
    }
    let tmp = path.with_extension("bmclink-tmp");
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(&tmp)
        .map_err(err("write", &tmp))?;
    f.set_permissions(fs::Permissions::from_mode(0o644))
        .and_then(|()| f.write_all(text.as_bytes()))
        .and_then(|()| f.sync_all())
        .map_err(err("write", &tmp))?;
    fs::rename(&tmp, path).map_err(err("write", path))?;
    changes.written.push(path.to_owned());
    Ok(())
}

/// The udev rule matching the USB NIC `vid:pid` (Dell iDRAC's 413c:a102
/// as shipped; SMBIOS type 42's device where the firmware publishes one).
pub fn udev_rule(usb: (u16, u16)) -> String {
    if usb == (0x413c, 0xa102) {
        return UDEV_RULE.to_owned();
    }
    let (vid, pid) = (format!("{:04x}", usb.0), format!("{:04x}", usb.1));
    UDEV_RULE
        .replace(
            "ATTRS{idVendor}==\"413c\", ATTRS{idProduct}==\"a102\"",
            &format!("ATTRS{{idVendor}}==\"{vid}\", ATTRS{{idProduct}}==\"{pid}\""),
        )
        .replace(
            "(Dell iDRAC, USB 413c:a102; `bmclink install` writes the USB ids the\n\
             # firmware's SMBIOS type 42 names, where it names some)",
            &format!(
                "(USB {vid}:{pid}, as the firmware's SMBIOS type 42 names it;\n\
                 # written by `bmclink install`)"
            ),
        )
}

/// Creates the state directory (0700) and writes the unit and the rule
/// for Dell's USB NIC (413c:a102).
pub fn install_files(
    root: &Path,
    state_dir: &Path,
    exe: &Path,
    interface: &str,
) -> Result<Changes, InstallError> {
    install_files_matching(root, state_dir, exe, interface, (0x413c, 0xa102))
}

/// [`install_files`] with the udev rule matching the USB NIC `usb`.
pub fn install_files_matching(
    root: &Path,
    state_dir: &Path,
    exe: &Path,
    interface: &str,
    usb: (u16, u16),
) -> Result<Changes, InstallError> {
    let mut changes = Changes::default();
    let state = under(root, state_dir);
    create_state_dir(&state).map_err(err("create the state directory", &state))?;
    changes.written.push(state);
    write_file(
        &under(root, Path::new(UNIT_PATH)),
        &unit_text(exe, interface),
        &mut changes,
    )?;
    write_file(
        &under(root, Path::new(RULE_PATH)),
        &udev_rule(usb),
        &mut changes,
    )?;
    write_file(&under(root, Path::new(CATALOG_PATH)), CATALOG, &mut changes)?;
    Ok(changes)
}

/// Compiles the catalogs under `root` into journald's database
/// (`journalctl --root ROOT --update-catalog`), so `journalctl -x` explains
/// bmclink's entries: `Ok(false)` when there is no journalctl here (then
/// the next `journalctl --update-catalog`, or the package's, does it).
pub fn update_catalog(root: &Path) -> io::Result<bool> {
    let run = std::process::Command::new("journalctl")
        .arg("--root")
        .arg(root)
        .arg("--update-catalog")
        .stdin(std::process::Stdio::null())
        .output();
    match run {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
        Ok(o) if o.status.success() => Ok(true),
        Ok(o) => Err(io::Error::other(format!(
            "journalctl --update-catalog failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ))),
    }
}

fn remove(path: &Path, changes: &mut Changes) -> Result<(), InstallError> {
    match fs::remove_file(path) {
        Ok(()) => {
            changes.removed.push(path.to_owned());
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(err("remove", path)(e)),
    }
}

/// Removes the unit, the rule, every record, the status file and the state
/// directory when it is then empty (anything else in it is kept).
pub fn uninstall_files(root: &Path, state_dir: &Path) -> Result<Changes, InstallError> {
    let mut changes = Changes::default();
    remove(&under(root, Path::new(UNIT_PATH)), &mut changes)?;
    remove(&under(root, Path::new(RULE_PATH)), &mut changes)?;
    remove(&under(root, Path::new(CATALOG_PATH)), &mut changes)?;
    let state = under(root, state_dir);
    for r in Record::ALL {
        remove(&state.join(r.name()), &mut changes)?;
    }
    remove(&crate::status::path(&state), &mut changes)?;
    match fs::remove_dir(&state) {
        Ok(()) => changes.removed.push(state),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) => {}
        Err(e) => return Err(err("remove", &state)(e)),
    }
    Ok(changes)
}

/// The package's prerm (`uninstall --package-mode`): removes what `bmclink
/// install` wrote to /etc (the package's own unit and rule are dpkg's) and
/// the status file; the records stay until the package is purged.
pub fn uninstall_package_files(root: &Path, state_dir: &Path) -> Result<Changes, InstallError> {
    let mut changes = Changes::default();
    remove(&under(root, Path::new(UNIT_PATH)), &mut changes)?;
    remove(&under(root, Path::new(RULE_PATH)), &mut changes)?;
    remove(&crate::status::path(&under(root, state_dir)), &mut changes)?;
    Ok(changes)
}

/// Whether bmclink is installed under `root`: the state directory exists.
pub fn is_installed(root: &Path, state_dir: &Path) -> bool {
    under(root, state_dir).is_dir()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_writes_the_unit_rule_and_a_0700_state_dir_under_root() {
        let t = tempfile::tempdir().unwrap();
        let state = Path::new("/var/lib/bmclink");
        let c = install_files(
            t.path(),
            state,
            Path::new("/usr/local/bin/bmclink"),
            "idrac",
        )
        .unwrap();
        assert_eq!(c.written.len(), 4);
        let catalog = t.path().join(CATALOG_PATH);
        assert_eq!(fs::read_to_string(&catalog).unwrap(), CATALOG);
        assert_eq!(
            fs::metadata(&catalog).unwrap().permissions().mode() & 0o777,
            0o644
        );
        let unit = fs::read_to_string(t.path().join(UNIT_PATH)).unwrap();
        assert!(unit.contains("ExecStart=/usr/local/bin/bmclink run --iface idrac\n"));
        assert!(unit.contains("ProtectSystem=strict"));
        let rule = fs::read_to_string(t.path().join(RULE_PATH)).unwrap();
        assert!(rule.contains("ENV{SYSTEMD_WANTS}+=\"bmclink.service\""));
        let mode = fs::metadata(t.path().join("var/lib/bmclink"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        assert!(is_installed(t.path(), state));
    }

    #[test]
    fn the_udev_rule_never_runs_a_program() {
        for line in UDEV_RULE.lines().filter(|l| !l.starts_with('#')) {
            assert!(!line.contains("RUN"), "{line}");
        }
        assert!(UDEV_RULE.contains("ATTRS{idVendor}==\"413c\", ATTRS{idProduct}==\"a102\""));
    }

    #[test]
    fn the_unit_is_hardened() {
        for key in [
            "ProtectSystem=strict",
            "ReadWritePaths=/var/lib/bmclink",
            "CapabilityBoundingSet=CAP_NET_RAW CAP_NET_ADMIN",
            "NoNewPrivileges=yes",
            "PrivateTmp=yes",
            "ProtectHome=yes",
            "RestrictAddressFamilies=AF_UNIX AF_PACKET AF_NETLINK",
        ] {
            assert!(UNIT.lines().any(|l| l == key), "missing {key}");
        }
    }

    #[test]
    fn uninstall_removes_what_install_wrote_and_keeps_foreign_files() {
        let t = tempfile::tempdir().unwrap();
        let state = Path::new("/var/lib/bmclink");
        install_files(t.path(), state, Path::new("/usr/sbin/bmclink"), "idrac").unwrap();
        let dir = t.path().join("var/lib/bmclink");
        fs::write(dir.join("link"), b"L").unwrap();
        let c = uninstall_files(t.path(), state).unwrap();
        assert_eq!(c.removed.len(), 5, "{c:?}");
        assert!(!dir.exists() && !t.path().join(UNIT_PATH).exists());
        assert!(!t.path().join(CATALOG_PATH).exists());
        // A second uninstall has nothing to do.
        assert_eq!(
            uninstall_files(t.path(), state).unwrap(),
            Changes::default()
        );

        install_files(t.path(), state, Path::new("/usr/sbin/bmclink"), "idrac").unwrap();
        fs::write(dir.join("notes.txt"), b"mine").unwrap();
        uninstall_files(t.path(), state).unwrap();
        assert!(dir.join("notes.txt").exists());
    }

    #[test]
    fn the_udev_rule_matches_the_usb_ids_it_is_given() {
        assert_eq!(udev_rule((0x413c, 0xa102)), UDEV_RULE);
        let r = udev_rule((0x0b05, 0x1976));
        let rule = r.lines().find(|l| !l.starts_with('#')).unwrap();
        assert!(
            rule.contains("ATTRS{idVendor}==\"0b05\", ATTRS{idProduct}==\"1976\""),
            "{r}"
        );
        assert!(!r.contains("413c") && !r.contains("a102"), "{r}");
        let t = tempfile::tempdir().unwrap();
        let state = Path::new("/var/lib/bmclink");
        install_files_matching(
            t.path(),
            state,
            Path::new("/usr/sbin/bmclink"),
            "usb0",
            (0x1d6b, 0x0104),
        )
        .unwrap();
        let written = fs::read_to_string(t.path().join(RULE_PATH)).unwrap();
        assert!(written.contains("ATTRS{idVendor}==\"1d6b\", ATTRS{idProduct}==\"0104\""));
    }

    /// systemd's own parser reads the installed catalog: every audit ID's
    /// entry comes back from `journalctl --dump-catalog` under its
    /// MESSAGE_ID. Skips (saying why) without journalctl; not a root matter.
    #[test]
    fn journalctl_compiles_the_installed_catalog_and_finds_every_entry() {
        let t = tempfile::tempdir().unwrap();
        install_files(
            t.path(),
            Path::new("/var/lib/bmclink"),
            Path::new("/usr/sbin/bmclink"),
            "idrac",
        )
        .unwrap();
        match update_catalog(t.path()) {
            Ok(true) => {}
            Ok(false) => {
                eprintln!("skipped: no journalctl on this machine (not a root matter)");
                return;
            }
            Err(e) => panic!("journalctl rejects the catalog: {e}"),
        }
        let out = std::process::Command::new("journalctl")
            .arg("--root")
            .arg(t.path())
            .arg("--dump-catalog")
            .output()
            .unwrap();
        let dump = String::from_utf8_lossy(&out.stdout);
        for row in bmclink_core::audit::TABLE.iter().flat_map(|l| l.iter()) {
            let header = format!(
                "-- {}\nSubject: {} ",
                crate::journal::message_id_hex(row.id),
                row.id
            );
            assert!(
                dump.contains(&header),
                "{} missing from journalctl's catalog",
                row.id
            );
        }
    }

    #[test]
    fn the_unit_follows_the_configured_interface() {
        let u = unit_text(Path::new("/usr/sbin/bmclink"), "usb0");
        assert!(u.contains("--iface usb0") && u.contains("net-devices-usb0.device"));
        assert!(!u.contains("idrac.device"));
    }
}
