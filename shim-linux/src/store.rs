//! The file [`Store`]: one file per [`Record`] under the state directory.
//!
//! Writes are atomic (temporary file in the same directory, fsync, rename,
//! fsync of the directory): a reader sees the old record or the new one.
//! Every record file is 0600 and the directory 0700, since two records are
//! secrets. A file that cannot be read, or is larger than any record, is an
//! error naming the file and the fix ([`FileStore::describe`]), never a
//! silent reset.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use bmclink_core::platform::{Record, Store, StoreError};

/// The default state directory.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/bmclink";

/// No record is larger than this; a bigger file is not a bmclink record.
pub const MAX_RECORD_FILE: u64 = 64 * 1024;

/// Records kept as files in one directory.
#[derive(Debug)]
pub struct FileStore {
    dir: PathBuf,
    last_io: Option<(Record, io::Error)>,
}

/// Creates `dir` mode 0700 (missing parents 0755) when missing; an existing
/// directory is tightened to 0700.
pub fn create_state_dir(dir: &Path) -> io::Result<()> {
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)?;
    }
    match DirBuilder::new().mode(0o700).create(dir) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
}

/// Refuses a state directory another user could change, as sshd's
/// `StrictModes` refuses a `~/.ssh` others can write: it must be owned by
/// root (when bmclink runs as root, as the shipped unit does) or by root or
/// the running user (a non-root run, e.g. the tests), and not be group or
/// world writable. Whoever can write it can plant a BMC pin, swap the
/// identity key or point a record at another file. A missing directory is
/// fine: it is created 0700 on first write. A symlinked directory is judged
/// by its target. Its parents are not checked (`/var/lib` is root's).
pub fn check_state_dir(dir: &Path) -> Result<(), String> {
    let meta = match fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(format!(
                "cannot check the state directory {}: {e}",
                dir.display()
            ))
        }
    };
    if !meta.is_dir() {
        return Err(format!(
            "the state directory {} is not a directory; move it away (bmclink creates the directory 0700)",
            dir.display()
        ));
    }
    use std::os::unix::fs::MetadataExt;
    state_dir_problem(
        dir,
        meta.uid(),
        meta.mode(),
        nix::unistd::geteuid().as_raw(),
    )
}

/// [`check_state_dir`]'s rule on an owner and mode, for a run as `euid`.
pub fn state_dir_problem(dir: &Path, owner: u32, mode: u32, euid: u32) -> Result<(), String> {
    let owner_ok = owner == 0 || (euid != 0 && owner == euid);
    let writable = mode & 0o022 != 0;
    if owner_ok && !writable {
        return Ok(());
    }
    let d = dir.display();
    let who = if euid == 0 {
        "root".to_owned()
    } else {
        format!("root or uid {euid} (bmclink's user)")
    };
    let problem = match (owner_ok, writable) {
        (false, true) => format!(
            "is owned by uid {owner}, not {who}, and is group or world writable (mode {:04o})",
            mode & 0o7777
        ),
        (false, _) => format!("is owned by uid {owner}, not {who}"),
        _ => format!("is group or world writable (mode {:04o})", mode & 0o7777),
    };
    let chown = if euid == 0 {
        "root:root".to_owned()
    } else {
        euid.to_string()
    };
    Err(format!(
        "the state directory {d} {problem}, so another user could replace the BMC pin or the          identity key; bmclink does not run on it: fix it with `chown {chown} {d} && chmod 0700 {d}`"
    ))
}

impl FileStore {
    /// A store over `dir`. The directory is created (0700) on first save.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FileStore {
            dir: dir.into(),
            last_io: None,
        }
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file that holds `record`.
    pub fn path(&self, record: Record) -> PathBuf {
        self.dir.join(record.name())
    }

    /// A sentence for a person: what failed, the full file path, and the fix.
    pub fn describe(&self, err: StoreError) -> String {
        let os = |r: Record| match &self.last_io {
            Some((rec, e)) if *rec == r => format!(": {e}"),
            _ => String::new(),
        };
        match err {
            StoreError::Io(r) => format!(
                "cannot read or write {}{}; check that {} exists, is a directory owned by root \
                 with mode 0700, and that the file system is writable",
                self.path(r).display(),
                os(r),
                self.dir.display()
            ),
            StoreError::TooLarge(r) => format!(
                "{} is larger than any {} record can be, so it is not one bmclink wrote; \
                 move it away, then {}",
                self.path(r).display(),
                r.name(),
                fix(r)
            ),
            StoreError::Corrupt(r) => format!(
                "{} is corrupt and was not used; {}",
                self.path(r).display(),
                fix(r)
            ),
        }
    }

    fn io(&mut self, record: Record, err: io::Error) -> StoreError {
        self.last_io = Some((record, err));
        StoreError::Io(record)
    }

    fn temp_path(&self, record: Record) -> PathBuf {
        self.dir
            .join(format!(".{}.tmp.{}", record.name(), std::process::id()))
    }

    fn write_atomic(&self, record: Record, data: &[u8]) -> io::Result<()> {
        create_state_dir(&self.dir)?;
        let tmp = self.temp_path(record);
        let result = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&tmp)?;
            // A stale temp file from a crashed run may carry other bits.
            f.set_permissions(fs::Permissions::from_mode(0o600))?;
            f.write_all(data)?;
            f.sync_all()?;
            fs::rename(&tmp, self.path(record))?;
            File::open(&self.dir)?.sync_all()
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }
}

/// The fix for a bad record file, by record.
pub fn fix(record: Record) -> &'static str {
    match record {
        Record::Link => "run `bmclink link reset` to configure the host side again",
        Record::BmcCaps => "remove the file: it is a cache the next session rewrites",
        Record::AdminFingerprint => {
            "run `bmclink install --bmc-fingerprint HEX` with the fingerprint the BMC's UI shows"
        }
        Record::IdentityKey | Record::IdentityCert | Record::BmcPin | Record::StableSecret => {
            "run `bmclink install --repair` to create a new identity and enroll again"
        }
    }
}

impl Store for FileStore {
    fn load(&mut self, record: Record, buf: &mut [u8]) -> Result<Option<usize>, StoreError> {
        let path = self.path(record);
        let mut f = match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io(record, e)),
        };
        let meta = f.metadata().map_err(|e| self.io(record, e))?;
        if !meta.is_file() {
            let e = io::Error::new(io::ErrorKind::InvalidData, "not a regular file");
            return Err(self.io(record, e));
        }
        if meta.len() > MAX_RECORD_FILE || meta.len() > buf.len() as u64 {
            return Err(StoreError::TooLarge(record));
        }
        // Read up to one byte past the buffer to catch a file that grew.
        let mut data = Vec::with_capacity(buf.len().saturating_add(1));
        (&mut f)
            .take(buf.len() as u64 + 1)
            .read_to_end(&mut data)
            .map_err(|e| self.io(record, e))?;
        let Some(dst) = buf.get_mut(..data.len()) else {
            return Err(StoreError::TooLarge(record));
        };
        dst.copy_from_slice(&data);
        Ok(Some(data.len()))
    }

    fn save(&mut self, record: Record, data: &[u8]) -> Result<(), StoreError> {
        self.write_atomic(record, data)
            .map_err(|e| self.io(record, e))
    }

    fn erase(&mut self, record: Record) -> Result<(), StoreError> {
        match fs::remove_file(self.path(record)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(self.io(record, e)),
        }
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| self.io(record, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, FileStore) {
        let t = tempfile::tempdir().unwrap();
        let s = FileStore::new(t.path().join("state"));
        (t, s)
    }

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_saved_record_loads_back_byte_for_byte() {
        let (_t, mut s) = store();
        let mut buf = [0u8; 64];
        assert_eq!(s.load(Record::Link, &mut buf), Ok(None));
        s.save(Record::Link, b"L\x01\xa9\xfe\x01\x02").unwrap();
        assert_eq!(s.load(Record::Link, &mut buf), Ok(Some(6)));
        assert_eq!(&buf[..6], b"L\x01\xa9\xfe\x01\x02");
        s.save(Record::Link, b"xy").unwrap();
        assert_eq!(s.load(Record::Link, &mut buf), Ok(Some(2)));
        s.erase(Record::Link).unwrap();
        assert_eq!(s.load(Record::Link, &mut buf), Ok(None));
        s.erase(Record::Link).unwrap();
    }

    #[test]
    fn every_record_file_is_0600_in_a_0700_directory() {
        let (_t, mut s) = store();
        for r in Record::ALL {
            s.save(r, b"data").unwrap();
            assert_eq!(mode(&s.path(r)), 0o600, "{}", r.name());
        }
        assert_eq!(mode(s.dir()), 0o700);
    }

    #[test]
    fn the_state_dir_rule_is_sshds_strict_modes() {
        let d = Path::new("/var/lib/bmclink");
        // As root: root's, not group/world writable.
        assert_eq!(state_dir_problem(d, 0, 0o40700, 0), Ok(()));
        assert_eq!(state_dir_problem(d, 0, 0o40755, 0), Ok(()));
        let e = state_dir_problem(d, 1000, 0o40700, 0).unwrap_err();
        assert!(e.contains("owned by uid 1000, not root"), "{e}");
        assert!(
            e.contains("`chown root:root /var/lib/bmclink && chmod 0700 /var/lib/bmclink`"),
            "{e}"
        );
        let e = state_dir_problem(d, 0, 0o40770, 0).unwrap_err();
        assert!(e.contains("group or world writable (mode 0770)"), "{e}");
        assert!(state_dir_problem(d, 0, 0o41777, 0).is_err());
        assert!(state_dir_problem(d, 0, 0o40702, 0).is_err());
        // Not root: the running user's or root's.
        assert_eq!(state_dir_problem(d, 1000, 0o40700, 1000), Ok(()));
        assert_eq!(state_dir_problem(d, 0, 0o40755, 1000), Ok(()));
        let e = state_dir_problem(d, 1001, 0o40700, 1000).unwrap_err();
        assert!(e.contains("`chown 1000 /var/lib/bmclink"), "{e}");
        assert!(state_dir_problem(d, 1000, 0o40720, 1000).is_err());
    }

    #[test]
    fn a_tempdir_state_dir_passes_and_a_world_writable_one_does_not() {
        let (_t, s) = store();
        assert_eq!(check_state_dir(s.dir()), Ok(()), "missing is fine");
        create_state_dir(s.dir()).unwrap();
        assert_eq!(check_state_dir(s.dir()), Ok(()));
        fs::set_permissions(s.dir(), fs::Permissions::from_mode(0o777)).unwrap();
        let e = check_state_dir(s.dir()).unwrap_err();
        assert!(e.contains("chmod 0700"), "{e}");
    }

    #[test]
    fn missing_parents_of_the_state_dir_are_created_0755() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("var/lib/bmclink");
        create_state_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&t.path().join("var/lib")), 0o755);
        create_state_dir(&dir).unwrap();
    }

    #[test]
    fn a_leftover_temp_file_does_not_count_as_a_record() {
        let (_t, mut s) = store();
        create_state_dir(s.dir()).unwrap();
        fs::write(s.dir().join(".link.tmp.1"), b"half").unwrap();
        fs::write(s.temp_path(Record::Link), b"half").unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(s.load(Record::Link, &mut buf), Ok(None));
        s.save(Record::Link, b"whole").unwrap();
        assert_eq!(s.load(Record::Link, &mut buf), Ok(Some(5)));
        assert_eq!(&buf[..5], b"whole");
        assert!(!s.temp_path(Record::Link).exists());
    }

    #[test]
    fn an_oversized_file_is_an_error_naming_the_path_and_fix() {
        let (_t, mut s) = store();
        create_state_dir(s.dir()).unwrap();
        fs::write(s.path(Record::BmcPin), [0u8; 100]).unwrap();
        let mut buf = [0u8; 34];
        let err = s.load(Record::BmcPin, &mut buf).unwrap_err();
        assert_eq!(err, StoreError::TooLarge(Record::BmcPin));
        let text = s.describe(err);
        assert!(
            text.contains(&s.path(Record::BmcPin).display().to_string()),
            "{text}"
        );
        assert!(text.contains("bmclink install --repair"), "{text}");
    }

    #[test]
    fn an_unreadable_record_is_an_io_error_with_the_os_reason() {
        let (_t, mut s) = store();
        create_state_dir(s.dir()).unwrap();
        // A directory where the file should be cannot be read as a record.
        fs::create_dir(s.path(Record::Link)).unwrap();
        let mut buf = [0u8; 16];
        let err = s.load(Record::Link, &mut buf).unwrap_err();
        assert_eq!(err, StoreError::Io(Record::Link));
        let text = s.describe(err);
        assert!(text.contains("state/link"), "{text}");
        assert!(text.contains("0700"), "{text}");
    }

    #[test]
    fn a_corrupt_record_description_names_the_reset_command() {
        let (_t, s) = store();
        let text = s.describe(StoreError::Corrupt(Record::Link));
        assert!(text.contains("state/link is corrupt"), "{text}");
        assert!(text.contains("bmclink link reset"), "{text}");
    }

    #[test]
    fn a_symlink_in_place_of_a_record_is_not_followed() {
        let (t, mut s) = store();
        create_state_dir(s.dir()).unwrap();
        fs::write(t.path().join("elsewhere"), b"secret").unwrap();
        std::os::unix::fs::symlink(t.path().join("elsewhere"), s.path(Record::Link)).unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(
            s.load(Record::Link, &mut buf),
            Err(StoreError::Io(Record::Link))
        );
    }
}
