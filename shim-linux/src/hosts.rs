//! P10 on the host: `idrac.local` and `drac.local` resolve to the BMC through
//! a managed block in the hosts file while an IPv4 session runs; with an
//! IPv6-only session, or on stop, the block is removed.
//!
//! Everything outside the block is kept byte for byte. The file is replaced
//! atomically (temp file + fsync + rename) when its directory is writable;
//! under the hardened unit only the file itself is writable (a bind mount
//! cannot be renamed over), so the shim then rewrites it in place.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The first line of the managed block.
pub const BEGIN: &str = "# BEGIN bmclink";
/// The last line of the managed block.
pub const END: &str = "# END bmclink";
/// The names the block maps to the BMC.
pub const NAMES: &str = "idrac.local drac.local";

/// A hosts file with a bmclink block.
#[derive(Debug, Clone)]
pub struct HostsFile {
    path: PathBuf,
    names: String,
}

/// Where the block starts and ends (byte offsets, end past its newline).
fn find_block(text: &str) -> Option<(usize, usize)> {
    let mut offset = 0;
    let mut start = None;
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\n', '\r']);
        if start.is_none() && bare.starts_with(BEGIN) {
            start = Some(offset);
        } else if let Some(s) = start {
            if bare.starts_with(END) {
                return Some((s, offset + line.len()));
            }
        }
        offset += line.len();
    }
    // A BEGIN without END (a crash mid-edit by hand) extends to the end.
    start.map(|s| (s, text.len()))
}

/// The block for `bmc`.
pub fn block(bmc: Ipv4Addr) -> String {
    block_named(bmc, NAMES)
}

/// The block mapping `names` (space-separated) to `bmc`.
pub fn block_named(bmc: Ipv4Addr, names: &str) -> String {
    format!("{BEGIN} (managed by bmclink, do not edit)\n{bmc} {names}\n{END}\n")
}

/// `text` with the block set to `bmc` (`Some`) or removed (`None`).
pub fn with_block(text: &str, bmc: Option<Ipv4Addr>) -> String {
    with_block_named(text, bmc, NAMES)
}

/// [`with_block`] mapping `names` instead of [`NAMES`].
pub fn with_block_named(text: &str, bmc: Option<Ipv4Addr>, names: &str) -> String {
    let new = bmc.map(|b| block_named(b, names)).unwrap_or_default();
    match find_block(text) {
        Some((s, e)) => {
            let mut out = String::with_capacity(text.len() + new.len());
            out.push_str(text.get(..s).unwrap_or(""));
            out.push_str(&new);
            out.push_str(text.get(e..).unwrap_or(""));
            out
        }
        None if new.is_empty() => text.to_owned(),
        None => {
            let mut out = text.to_owned();
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&new);
            out
        }
    }
}

impl HostsFile {
    /// The hosts file at `path` (`/etc/hosts` in production).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        HostsFile {
            path: path.into(),
            names: NAMES.to_owned(),
        }
    }

    /// Also maps `name`, the BMC's host name from SMBIOS type 42 (e.g.
    /// Dell's `idrac.local`, already there, or an AMI board's
    /// `bmc.host.interface`).
    pub fn with_bmc_hostname(mut self, name: Option<&str>) -> Self {
        if let Some(n) = name.filter(|n| !NAMES.split(' ').any(|x| x == *n)) {
            self.names = format!("{NAMES} {n}");
        }
        self
    }

    /// Maps the names to `bmc` (an IPv4 session is up).
    pub fn set(&self, bmc: Ipv4Addr) -> io::Result<()> {
        self.update(Some(bmc))
    }

    /// Removes the block (IPv6-only session, or stop).
    pub fn remove(&self) -> io::Result<()> {
        self.update(None)
    }

    fn update(&self, bmc: Option<Ipv4Addr>) -> io::Result<()> {
        // Follow a symlinked /etc/hosts to the real file, so the link stays.
        let path = fs::canonicalize(&self.path).or_else(|e| match e.kind() {
            io::ErrorKind::NotFound => Ok(self.path.clone()),
            _ => Err(e),
        })?;
        let old = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound && bmc.is_none() => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let text = String::from_utf8(old).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "the hosts file is not UTF-8 text",
            )
        })?;
        let new = with_block_named(&text, bmc, &self.names);
        if new == text {
            return Ok(());
        }
        match replace_atomically(&path, new.as_bytes()) {
            Ok(()) => Ok(()),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EROFS)
                        | Some(libc::EBUSY)
                        | Some(libc::EACCES)
                        | Some(libc::EPERM)
                        | Some(libc::EXDEV)
                ) =>
            {
                write_in_place(&path, new.as_bytes())
            }
            Err(e) => Err(e),
        }
    }
}

fn replace_atomically(path: &Path, data: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.bmclink.{}", std::process::id()));
    let mode = fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o644);
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Rewrites the file in place (readers may briefly see a partial file; only
/// used where the directory is read-only).
pub(crate) fn write_in_place(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut f = OpenOptions::new().write(true).truncate(true).open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

#[cfg(test)]
mod smbios_name_tests {
    use super::*;

    #[test]
    fn the_bmc_host_name_from_type_42_joins_the_block_once() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("hosts");
        std::fs::write(&p, "127.0.0.1 localhost\n").unwrap();
        let bmc = Ipv4Addr::new(169, 254, 2, 2);
        HostsFile::new(&p)
            .with_bmc_hostname(Some("bmc.host.interface"))
            .set(bmc)
            .unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(
            text.contains("\n169.254.2.2 idrac.local drac.local bmc.host.interface\n"),
            "{text}"
        );
        HostsFile::new(&p)
            .with_bmc_hostname(Some("idrac.local"))
            .set(bmc)
            .unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(
            text.contains("\n169.254.2.2 idrac.local drac.local\n"),
            "{text}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BMC: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);
    const HOSTS: &str =
        "127.0.0.1\tlocalhost\n::1 localhost ip6-localhost\n\n# comment  kept\r\n10.0.0.5 db\n";

    fn file(text: &[u8]) -> (tempfile::TempDir, HostsFile, PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("hosts");
        fs::write(&p, text).unwrap();
        (t, HostsFile::new(&p), p)
    }

    #[test]
    fn an_ipv4_session_adds_the_block_and_stop_restores_the_file_byte_for_byte() {
        let (_t, h, p) = file(HOSTS.as_bytes());
        h.set(BMC).unwrap();
        let with = fs::read_to_string(&p).unwrap();
        assert!(with.starts_with(HOSTS));
        assert!(
            with.contains("\n169.254.1.1 idrac.local drac.local\n# END bmclink\n"),
            "{with}"
        );
        h.remove().unwrap();
        assert_eq!(fs::read(&p).unwrap(), HOSTS.as_bytes());
    }

    #[test]
    fn a_new_bmc_address_replaces_the_block_in_place() {
        let text = format!("a\n{}z\n", block(BMC));
        let (_t, h, p) = file(text.as_bytes());
        h.set(Ipv4Addr::new(169, 254, 0, 1)).unwrap();
        let got = fs::read_to_string(&p).unwrap();
        assert_eq!(
            got,
            format!("a\n{}z\n", block(Ipv4Addr::new(169, 254, 0, 1)))
        );
        assert_eq!(got.matches(BEGIN).count(), 1);
    }

    #[test]
    fn an_ipv6_only_session_removes_a_block_between_other_lines() {
        let text = format!("first\n{}last\n", block(BMC));
        let (_t, h, p) = file(text.as_bytes());
        h.remove().unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "first\nlast\n");
    }

    #[test]
    fn removing_from_a_file_without_a_block_leaves_it_untouched() {
        let (_t, h, p) = file(HOSTS.as_bytes());
        let before = fs::metadata(&p).unwrap().modified().unwrap();
        h.remove().unwrap();
        assert_eq!(fs::read(&p).unwrap(), HOSTS.as_bytes());
        assert_eq!(fs::metadata(&p).unwrap().modified().unwrap(), before);
    }

    #[test]
    fn a_file_without_a_final_newline_gets_one_before_the_block() {
        assert_eq!(with_block("a b", Some(BMC)), format!("a b\n{}", block(BMC)));
        assert_eq!(with_block("", Some(BMC)), block(BMC));
    }

    #[test]
    fn an_unterminated_block_is_replaced_to_the_end_of_the_file() {
        let text = "x\n# BEGIN bmclink\n169.254.9.9 idrac.local\n";
        assert_eq!(with_block(text, None), "x\n");
    }

    #[test]
    fn the_file_mode_is_kept_and_in_place_writes_work() {
        let (_t, h, p) = file(b"x\n");
        fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
        h.set(BMC).unwrap();
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o640
        );
        write_in_place(&p, b"y\n").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"y\n");
    }

    #[test]
    fn a_symlinked_hosts_file_keeps_its_link() {
        let (t, h, real) = file(b"x\n");
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        HostsFile::new(&link).set(BMC).unwrap();
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert!(fs::read_to_string(&real).unwrap().contains("idrac.local"));
        drop(h);
    }
}
