//! P10 on the host: `idrac.local` and `drac.local` resolve to the BMC through
//! a managed block in the hosts file while an IPv4 session runs; with an
//! IPv6-only session, or on stop, the block is removed.
//!
//! # The block
//!
//! The block runs from a `# BEGIN bmclink` line to the next `# END bmclink`
//! line. A marker counts only as a whole line (trailing blanks and a CR
//! allowed): a user line that merely starts with it is user text. A BEGIN
//! without its END, or a second BEGIN inside a block, is a [`BlockError`]:
//! the file is left unchanged and the error names the line and the fix.
//! Everything outside the block is kept byte for byte.
//!
//! # Writing without losing anything
//!
//! When the hosts file's directory is writable the file is replaced
//! atomically: temp file in the same directory, fsync, rename, fsync of the
//! directory. Under the shipped unit `/etc` is read-only and only
//! `/etc/hosts` itself is writable (a bind mount: a rename over it fails
//! with `EROFS`, `EBUSY` or `EXDEV`), so the file is rewritten in place,
//! through a journal:
//!
//! 1. the journal (old and new content, the target's path, a SHA-256 over
//!    all of it) is written to a temp file beside it, fsynced, renamed into
//!    place and its directory fsynced: from here on a crash is recovered;
//! 2. the new content is written over the file from offset 0 (never a
//!    truncation first), fsynced, the file cut to the new length and
//!    fsynced;
//! 3. the journal is removed and its directory fsynced.
//!
//! Every update starts with [`HostsFile::recover`]: a journal left by a
//! crash or a failed write is rolled forward when the file holds the old
//! content, the new content or a torn mix of the two, and discarded when
//! someone has edited the file since (their edit wins). A crash at any
//! step so leaves the old content, the new content, or a journal the next
//! run finishes with. The journal lives in the state directory
//! ([`HostsFile::with_journal`]), the one directory the unit can write.
//!
//! The file operations go through [`FileOps`], so the tests fail each step
//! in turn and check what recovery makes of it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The first line of the managed block, as a marker.
pub const BEGIN: &str = "# BEGIN bmclink";
/// The first line of the managed block, as bmclink writes it.
pub const BEGIN_LINE: &str = "# BEGIN bmclink (managed by bmclink, do not edit)";
/// The last line of the managed block.
pub const END: &str = "# END bmclink";
/// The names the block maps to the BMC.
pub const NAMES: &str = "idrac.local drac.local";

/// The journal's first bytes.
const JOURNAL_MAGIC: &[u8] = b"bmclink hosts journal 1\n";

/// The hosts file's managed block is malformed; the file was not changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// A BEGIN line with no END line after it.
    #[error(
        "line {line} is `{BEGIN}` with no `{END}` line after it, so the file was left unchanged; \
         remove that line, or add a `{END}` line where the bmclink block ends"
    )]
    Unterminated {
        /// The BEGIN line (1-based).
        line: usize,
    },
    /// A second BEGIN before the block's END.
    #[error(
        "line {line} is a second `{BEGIN}` inside the block opened on line {open}, so the file \
         was left unchanged; remove one of them"
    )]
    Nested {
        /// The second BEGIN line (1-based).
        line: usize,
        /// The first BEGIN line (1-based).
        open: usize,
    },
}

impl BlockError {
    /// The offending line (1-based).
    pub fn line(&self) -> usize {
        match self {
            BlockError::Unterminated { line } | BlockError::Nested { line, .. } => *line,
        }
    }

    /// The block error inside an [`io::Error`] from [`HostsFile`], if any.
    pub fn of(e: &io::Error) -> Option<&BlockError> {
        e.get_ref().and_then(|i| i.downcast_ref::<BlockError>())
    }
}

/// The file operations an update is made of; every one but `read` is one
/// step that can fail (or, in the tests, crash).
pub trait FileOps {
    /// The file's content and mode, `None` when it does not exist.
    fn read(&mut self, path: &Path) -> io::Result<Option<(Vec<u8>, u32)>>;
    /// Creates `path` afresh (a stale one is removed first; never through
    /// a symlink) with `mode` and writes `data`.
    fn create(&mut self, path: &Path, mode: u32, data: &[u8]) -> io::Result<()>;
    /// fsync of a file.
    fn sync(&mut self, path: &Path) -> io::Result<()>;
    /// rename(2).
    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()>;
    /// fsync of a directory.
    fn sync_dir(&mut self, dir: &Path) -> io::Result<()>;
    /// Writes `data` over the file from offset 0, without truncating it.
    fn overwrite(&mut self, path: &Path, data: &[u8]) -> io::Result<()>;
    /// ftruncate(2) to `len`.
    fn truncate(&mut self, path: &Path, len: u64) -> io::Result<()>;
    /// unlink(2); a missing file is fine.
    fn remove(&mut self, path: &Path) -> io::Result<()>;
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealOps;

fn open_existing(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

impl FileOps for RealOps {
    fn read(&mut self, path: &Path) -> io::Result<Option<(Vec<u8>, u32)>> {
        match fs::read(path) {
            Ok(b) => {
                let mode = fs::metadata(path)?.permissions().mode() & 0o7777;
                Ok(Some((b, mode)))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn create(&mut self, path: &Path, mode: u32, data: &[u8]) -> io::Result<()> {
        self.remove(path)?;
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)?;
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.write_all(data)
    }

    fn sync(&mut self, path: &Path) -> io::Result<()> {
        open_existing(path)?.sync_all()
    }

    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn sync_dir(&mut self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    fn overwrite(&mut self, path: &Path, data: &[u8]) -> io::Result<()> {
        open_existing(path)?.write_all_at(data, 0)
    }

    fn truncate(&mut self, path: &Path, len: u64) -> io::Result<()> {
        open_existing(path)?.set_len(len)
    }

    fn remove(&mut self, path: &Path) -> io::Result<()> {
        match fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// What [`HostsFile::recover`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovered {
    /// No journal: the last update finished.
    Clean,
    /// The file already held the journal's new content.
    AlreadyNew,
    /// The file held the old content or a torn mix: the new content was
    /// written.
    RolledForward,
    /// The file was edited since the journal was written, or the journal
    /// was for another file or does not verify: the journal was dropped and
    /// the file left as it is.
    Discarded,
}

/// A hosts file with a bmclink block.
#[derive(Debug, Clone)]
pub struct HostsFile {
    path: PathBuf,
    names: String,
    journal: Option<PathBuf>,
}

/// One line's text without its line end and trailing blanks.
fn bare(line: &str) -> &str {
    line.trim_end_matches(['\n', '\r', ' ', '\t'])
}

fn is_begin(line: &str) -> bool {
    matches!(bare(line), BEGIN | BEGIN_LINE)
}

fn is_end(line: &str) -> bool {
    bare(line) == END
}

/// Every block's byte range (end past its END line's newline).
fn find_blocks(text: &str) -> Result<Vec<(usize, usize)>, BlockError> {
    let mut blocks = Vec::new();
    let mut offset = 0;
    let mut open: Option<(usize, usize)> = None; // (offset, line number)
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let number = i + 1;
        if is_begin(line) {
            if let Some((_, first)) = open {
                return Err(BlockError::Nested {
                    line: number,
                    open: first,
                });
            }
            open = Some((offset, number));
        } else if is_end(line) {
            // An END outside a block is user text.
            if let Some((start, _)) = open.take() {
                blocks.push((start, offset + line.len()));
            }
        }
        offset += line.len();
    }
    match open {
        Some((_, line)) => Err(BlockError::Unterminated { line }),
        None => Ok(blocks),
    }
}

/// The block for `bmc`.
pub fn block(bmc: Ipv4Addr) -> String {
    block_named(bmc, NAMES)
}

/// The block mapping `names` (space-separated) to `bmc`.
pub fn block_named(bmc: Ipv4Addr, names: &str) -> String {
    format!("{BEGIN_LINE}\n{bmc} {names}\n{END}\n")
}

/// `text` with the block set to `bmc` (`Some`) or removed (`None`).
pub fn with_block(text: &str, bmc: Option<Ipv4Addr>) -> Result<String, BlockError> {
    with_block_named(text, bmc, NAMES)
}

/// [`with_block`] mapping `names` instead of [`NAMES`]. Every block is
/// removed; the new one takes the first one's place, or goes at the end.
pub fn with_block_named(
    text: &str,
    bmc: Option<Ipv4Addr>,
    names: &str,
) -> Result<String, BlockError> {
    let new = bmc.map(|b| block_named(b, names)).unwrap_or_default();
    let blocks = find_blocks(text)?;
    let mut out = String::with_capacity(text.len() + new.len());
    let Some(&(first, _)) = blocks.first() else {
        out.push_str(text);
        if !new.is_empty() {
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&new);
        }
        return Ok(out);
    };
    let mut kept = 0;
    for &(s, e) in &blocks {
        out.push_str(text.get(kept..s).unwrap_or(""));
        if s == first {
            out.push_str(&new);
        }
        kept = e;
    }
    out.push_str(text.get(kept..).unwrap_or(""));
    Ok(out)
}

/// The journal's bytes: magic, the target path, old and new content (each
/// length-prefixed, u64 little-endian), then SHA-256 over all of it.
fn encode_journal(target: &Path, old: &[u8], new: &[u8]) -> Vec<u8> {
    let path = target.as_os_str().as_bytes();
    let mut j = Vec::with_capacity(JOURNAL_MAGIC.len() + 24 + path.len() + old.len() + new.len());
    j.extend_from_slice(JOURNAL_MAGIC);
    for part in [path, old, new] {
        j.extend_from_slice(&(part.len() as u64).to_le_bytes());
        j.extend_from_slice(part);
    }
    let sum = Sha256::digest(&j);
    j.extend_from_slice(&sum);
    j
}

/// The journal's target path, old and new content, if it verifies.
fn decode_journal(j: &[u8]) -> Option<(PathBuf, Vec<u8>, Vec<u8>)> {
    let (body, sum) = j.split_at_checked(j.len().checked_sub(32)?)?;
    if Sha256::digest(body).as_slice() != sum {
        return None;
    }
    let mut rest = body.strip_prefix(JOURNAL_MAGIC)?;
    let mut parts = Vec::with_capacity(3);
    for _ in 0..3 {
        let (len, tail) = rest.split_at_checked(8)?;
        let len = usize::try_from(u64::from_le_bytes(len.try_into().ok()?)).ok()?;
        let (part, tail) = tail.split_at_checked(len)?;
        parts.push(part.to_vec());
        rest = tail;
    }
    if !rest.is_empty() {
        return None;
    }
    let new = parts.pop()?;
    let old = parts.pop()?;
    let path = PathBuf::from(std::ffi::OsStr::from_bytes(&parts.pop()?));
    Some((path, old, new))
}

/// Whether `cur` can be what an interrupted in-place write of `new` over
/// `old` left: every byte is the new one, the old one, or a zero (a block
/// the file system allocated but had not written), and the length is
/// between the two.
fn torn(cur: &[u8], old: &[u8], new: &[u8]) -> bool {
    let (lo, hi) = (old.len().min(new.len()), old.len().max(new.len()));
    (lo..=hi).contains(&cur.len())
        && cur
            .iter()
            .enumerate()
            .all(|(i, b)| *b == 0 || old.get(i) == Some(b) || new.get(i) == Some(b))
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{suffix}"))
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// The errors that mean "this directory cannot take a rename over the
/// file": a read-only `/etc`, a bind-mounted file.
fn cannot_rename(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EROFS | libc::EBUSY | libc::EACCES | libc::EPERM | libc::EXDEV)
    )
}

impl HostsFile {
    /// The hosts file at `path` (`/etc/hosts` in production). Its journal
    /// defaults to a hidden file beside it; [`HostsFile::with_journal`]
    /// puts it in the state directory.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        HostsFile {
            path: path.into(),
            names: NAMES.to_owned(),
            journal: None,
        }
    }

    /// Keeps the in-place write's journal at `path` (the state directory's
    /// `hosts.journal`: the unit can write there, not in `/etc`). Its
    /// directory is created 0700 when missing.
    pub fn with_journal(mut self, path: impl Into<PathBuf>) -> Self {
        self.journal = Some(path.into());
        self
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

    /// The hosts file's path as configured.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The journal's path for the file at `target` (canonical).
    pub fn journal_path(&self) -> PathBuf {
        self.journal
            .clone()
            .unwrap_or_else(|| sibling(&self.path, "bmclink-journal"))
    }

    /// Maps the names to `bmc` (an IPv4 session is up).
    pub fn set(&self, bmc: Ipv4Addr) -> io::Result<()> {
        self.update_with(&mut RealOps, Some(bmc))
    }

    /// Removes the block (IPv6-only session, or stop).
    pub fn remove(&self) -> io::Result<()> {
        self.update_with(&mut RealOps, None)
    }

    /// Follows a symlinked hosts file to the real file, so the link stays.
    fn target(&self) -> io::Result<PathBuf> {
        fs::canonicalize(&self.path).or_else(|e| match e.kind() {
            io::ErrorKind::NotFound => Ok(self.path.clone()),
            _ => Err(e),
        })
    }

    /// Finishes an update a crash or an error interrupted (see the module
    /// documentation); [`HostsFile::set`] and [`HostsFile::remove`] call it
    /// first.
    pub fn recover(&self) -> io::Result<Recovered> {
        self.recover_with(&mut RealOps)
    }

    /// [`HostsFile::recover`] through `ops`.
    pub fn recover_with(&self, ops: &mut dyn FileOps) -> io::Result<Recovered> {
        let target = self.target()?;
        // A temp file the atomic path left (its directory may be read-only,
        // then there is none).
        let _ = ops.remove(&sibling(&target, "bmclink-tmp"));
        let journal = self.journal_path();
        let _ = ops.remove(&sibling(&journal, "tmp"));
        let Some((bytes, _)) = ops.read(&journal)? else {
            return Ok(Recovered::Clean);
        };
        let drop_journal = |ops: &mut dyn FileOps| -> io::Result<()> {
            ops.remove(&journal)?;
            ops.sync_dir(parent(&journal))
        };
        let Some((path, old, new)) = decode_journal(&bytes) else {
            log::warn!(
                "{}: the hosts-file journal does not verify; removed it, {} is left as it is",
                journal.display(),
                target.display()
            );
            drop_journal(ops)?;
            return Ok(Recovered::Discarded);
        };
        let cur = ops.read(&target)?.map(|(b, _)| b).unwrap_or_default();
        let outcome = if path != target {
            log::warn!(
                "{}: the hosts-file journal is for {}, not {}; removed it",
                journal.display(),
                path.display(),
                target.display()
            );
            Recovered::Discarded
        } else if cur == new {
            Recovered::AlreadyNew
        } else if torn(&cur, &old, &new) {
            write_over(ops, &target, &new)?;
            log::info!(
                "{}: finished the bmclink block update an interrupted run left",
                target.display()
            );
            Recovered::RolledForward
        } else {
            log::warn!(
                "{}: edited since bmclink's interrupted update; kept the edit and dropped the journal",
                target.display()
            );
            Recovered::Discarded
        };
        drop_journal(ops)?;
        Ok(outcome)
    }

    /// Sets (`Some`) or removes (`None`) the block through `ops`. A
    /// malformed block is an [`io::ErrorKind::InvalidData`] error carrying
    /// a [`BlockError`] ([`BlockError::of`]), the file unchanged.
    pub fn update_with(&self, ops: &mut dyn FileOps, bmc: Option<Ipv4Addr>) -> io::Result<()> {
        self.recover_with(ops)?;
        let path = self.target()?;
        let (old, mode) = match ops.read(&path)? {
            Some(read) => read,
            None if bmc.is_none() => return Ok(()),
            None => (Vec::new(), 0o644),
        };
        let text = String::from_utf8(old).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is not UTF-8 text", path.display()),
            )
        })?;
        let new = with_block_named(&text, bmc, &self.names)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        if new == text {
            return Ok(());
        }
        match replace_atomically(ops, &path, mode, new.as_bytes()) {
            Err(e) if cannot_rename(&e) => {
                self.write_in_place(ops, &path, text.as_bytes(), new.as_bytes())
            }
            other => other,
        }
    }

    /// Rewrites `path` in place through the journal (module documentation).
    fn write_in_place(
        &self,
        ops: &mut dyn FileOps,
        path: &Path,
        old: &[u8],
        new: &[u8],
    ) -> io::Result<()> {
        let journal = self.journal_path();
        let dir = parent(&journal);
        if self.journal.is_some() && !dir.exists() {
            crate::store::create_state_dir(dir)?;
        }
        let tmp = sibling(&journal, "tmp");
        let staged = (|| {
            ops.create(&tmp, 0o600, &encode_journal(path, old, new))?;
            ops.sync(&tmp)?;
            ops.rename(&tmp, &journal)?;
            ops.sync_dir(dir)
        })();
        if let Err(e) = staged {
            let _ = ops.remove(&tmp);
            return Err(io::Error::new(
                e.kind(),
                format!(
                    "cannot write the journal {} the in-place update of {} needs: {e}",
                    journal.display(),
                    path.display()
                ),
            ));
        }
        // From here a failure leaves the journal: the next update (or the
        // next run) finishes the write.
        write_over(ops, path, new)?;
        ops.remove(&journal)?;
        ops.sync_dir(dir)
    }
}

/// New bytes over the old from offset 0, then the cut: the file is never
/// shorter than its new content before the new content is on disk.
fn write_over(ops: &mut dyn FileOps, path: &Path, new: &[u8]) -> io::Result<()> {
    ops.overwrite(path, new)?;
    ops.sync(path)?;
    ops.truncate(path, new.len() as u64)?;
    ops.sync(path)
}

fn replace_atomically(
    ops: &mut dyn FileOps,
    path: &Path,
    mode: u32,
    data: &[u8],
) -> io::Result<()> {
    let tmp = sibling(path, "bmclink-tmp");
    let result = (|| {
        ops.create(&tmp, mode, data)?;
        ops.sync(&tmp)?;
        ops.rename(&tmp, path)?;
        ops.sync_dir(parent(path))
    })();
    if result.is_err() {
        let _ = ops.remove(&tmp);
    }
    result
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
        assert_eq!(
            with_block("a b", Some(BMC)).unwrap(),
            format!("a b\n{}", block(BMC))
        );
        assert_eq!(with_block("", Some(BMC)).unwrap(), block(BMC));
    }

    #[test]
    fn the_file_mode_is_kept() {
        let (_t, h, p) = file(b"x\n");
        fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
        h.set(BMC).unwrap();
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o640
        );
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

    // Markers are whole lines (issue 12 item 7).

    #[test]
    fn a_user_line_that_merely_starts_with_a_marker_is_user_text() {
        let text =
            "# BEGIN bmclinkage of the rack\n10.0.0.1 a\n# END bmclink-ish note\n10.0.0.2 b\n";
        // No block in it: removing changes nothing, setting appends.
        assert_eq!(with_block(text, None).unwrap(), text);
        let set = with_block(text, Some(BMC)).unwrap();
        assert_eq!(set, format!("{text}{}", block(BMC)));
        // And a real block after such lines is found and replaced alone.
        let both = format!("{text}{}tail\n", block(BMC));
        assert_eq!(with_block(&both, None).unwrap(), format!("{text}tail\n"));
    }

    #[test]
    fn the_bare_marker_and_a_crlf_or_trailing_blank_still_count() {
        let text = "a\n# BEGIN bmclink\r\n1.2.3.4 idrac.local\n# END bmclink  \nz\n";
        assert_eq!(with_block(text, None).unwrap(), "a\nz\n");
    }

    #[test]
    fn an_unterminated_block_is_an_error_naming_the_line() {
        let text = "x\n# BEGIN bmclink\n169.254.9.9 idrac.local\n10.0.0.5 db\n";
        let e = with_block(text, None).unwrap_err();
        assert_eq!(e, BlockError::Unterminated { line: 2 });
        let msg = e.to_string();
        assert!(
            msg.contains("line 2") && msg.contains("# END bmclink"),
            "{msg}"
        );
        assert_eq!(
            with_block(text, Some(BMC)).unwrap_err(),
            BlockError::Unterminated { line: 2 }
        );
    }

    #[test]
    fn a_second_begin_inside_a_block_is_an_error() {
        let text = format!("x\n# BEGIN bmclink\n{}y\n", block(BMC));
        assert_eq!(
            with_block(&text, None).unwrap_err(),
            BlockError::Nested { line: 3, open: 2 }
        );
    }

    #[test]
    fn an_end_without_begin_is_user_text_and_two_blocks_become_one() {
        assert_eq!(
            with_block("# END bmclink\n", None).unwrap(),
            "# END bmclink\n"
        );
        let text = format!("a\n{}b\n{}c\n", block(BMC), block(BMC));
        let other = Ipv4Addr::new(169, 254, 0, 9);
        assert_eq!(
            with_block(&text, Some(other)).unwrap(),
            format!("a\n{}b\nc\n", block(other))
        );
    }

    #[test]
    fn an_unterminated_block_leaves_the_file_unchanged_and_says_why() {
        let text = "127.0.0.1 localhost\n# BEGIN bmclink\n10.0.0.5 db\n10.0.0.6 web\n";
        for set in [true, false] {
            let (_t, h, p) = file(text.as_bytes());
            let before = fs::metadata(&p).unwrap().modified().unwrap();
            let e = if set { h.set(BMC) } else { h.remove() }.unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData);
            assert_eq!(
                BlockError::of(&e),
                Some(&BlockError::Unterminated { line: 2 })
            );
            assert!(e.to_string().contains("left unchanged"), "{e}");
            assert_eq!(fs::read_to_string(&p).unwrap(), text);
            assert_eq!(fs::metadata(&p).unwrap().modified().unwrap(), before);
        }
    }

    // The write never loses anything (issue 12 item 7).

    /// How the directory behaves.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Dir {
        /// Writable: the atomic rename works.
        Writable,
        /// A bind-mounted file in a writable directory: rename over it is
        /// EBUSY.
        BindMount,
        /// A read-only directory (ProtectSystem=strict) with the file
        /// bind-mounted writable: creating the temp file is EROFS.
        ReadOnly,
    }

    /// What the injected failure does to the rest of the run.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Fault {
        /// The step fails with EIO; the code goes on (cleanup runs).
        Error,
        /// The process dies at the step: it and every later one do nothing
        /// (a write at the step lands half).
        Crash,
    }

    /// [`RealOps`] with the directory's behaviour and one failing step.
    struct Injected {
        dir: Dir,
        target: PathBuf,
        fail_at: usize,
        fault: Fault,
        steps: usize,
        log: Vec<String>,
    }

    impl Injected {
        fn new(dir: Dir, target: &Path, fail_at: usize, fault: Fault) -> Self {
            Injected {
                dir,
                target: target.to_owned(),
                fail_at,
                fault,
                steps: 0,
                log: Vec::new(),
            }
        }

        /// Counts a step: `Ok(true)` to do it, `Ok(false)` to do half of a
        /// write and fail, `Err` to fail without doing it.
        fn step(&mut self, what: &str, partial: bool) -> io::Result<bool> {
            let k = self.steps;
            self.steps += 1;
            self.log.push(format!("{k}: {what}"));
            let dead = self.fault == Fault::Crash && k > self.fail_at;
            if dead || (k == self.fail_at && !partial) {
                return Err(io::Error::from_raw_os_error(libc::EIO));
            }
            Ok(k != self.fail_at)
        }

        fn in_dir_of_target(&self, p: &Path) -> bool {
            p.parent() == self.target.parent()
        }
    }

    /// What a write cut short leaves: all but the last byte.
    fn half(data: &[u8]) -> &[u8] {
        &data[..data.len().saturating_sub(1)]
    }

    impl FileOps for Injected {
        fn read(&mut self, path: &Path) -> io::Result<Option<(Vec<u8>, u32)>> {
            RealOps.read(path)
        }
        fn create(&mut self, path: &Path, mode: u32, data: &[u8]) -> io::Result<()> {
            if self.dir == Dir::ReadOnly && self.in_dir_of_target(path) {
                return Err(io::Error::from_raw_os_error(libc::EROFS));
            }
            if self.step(&format!("create {}", path.display()), true)? {
                RealOps.create(path, mode, data)
            } else {
                RealOps.create(path, mode, half(data))?;
                Err(io::Error::from_raw_os_error(libc::EIO))
            }
        }
        fn sync(&mut self, path: &Path) -> io::Result<()> {
            self.step(&format!("sync {}", path.display()), false)?;
            RealOps.sync(path)
        }
        fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
            if self.dir != Dir::Writable && to == self.target {
                return Err(io::Error::from_raw_os_error(libc::EBUSY));
            }
            self.step(
                &format!("rename {} {}", from.display(), to.display()),
                false,
            )?;
            RealOps.rename(from, to)
        }
        fn sync_dir(&mut self, dir: &Path) -> io::Result<()> {
            self.step(&format!("sync_dir {}", dir.display()), false)?;
            RealOps.sync_dir(dir)
        }
        fn overwrite(&mut self, path: &Path, data: &[u8]) -> io::Result<()> {
            if self.step(&format!("overwrite {}", path.display()), true)? {
                RealOps.overwrite(path, data)
            } else {
                RealOps.overwrite(path, half(data))?;
                Err(io::Error::from_raw_os_error(libc::EIO))
            }
        }
        fn truncate(&mut self, path: &Path, len: u64) -> io::Result<()> {
            self.step(&format!("truncate {} {len}", path.display()), false)?;
            RealOps.truncate(path, len)
        }
        fn remove(&mut self, path: &Path) -> io::Result<()> {
            if !path.exists() {
                return Ok(());
            }
            if self.dir == Dir::ReadOnly && self.in_dir_of_target(path) {
                return Err(io::Error::from_raw_os_error(libc::EROFS));
            }
            self.step(&format!("remove {}", path.display()), false)?;
            RealOps.remove(path)
        }
    }

    const USER: &str = "127.0.0.1 localhost\n# BEGIN bmclinkage note\n10.0.0.5 db\n";

    /// The updates tried: a short file growing, a long one shrinking, a
    /// block replaced by a longer one and removed.
    fn cases() -> Vec<(String, Option<Ipv4Addr>)> {
        let long = format!("{USER}{}", "10.9.9.9 padding-padding-padding\n".repeat(8));
        vec![
            (USER.to_owned(), Some(BMC)),
            (format!("{long}{}", block(BMC)), None),
            (
                format!("{USER}{}z\n", block(BMC)),
                Some(Ipv4Addr::new(169, 254, 200, 201)),
            ),
        ]
    }

    /// Runs one update with `ops`, returns the content before and after.
    fn rig(old: &str, journal_in_state: bool) -> (tempfile::TempDir, HostsFile, PathBuf) {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir(t.path().join("etc")).unwrap();
        let p = t.path().join("etc/hosts");
        fs::write(&p, old).unwrap();
        let mut h = HostsFile::new(&p);
        if journal_in_state {
            h = h.with_journal(t.path().join("state/hosts.journal"));
        }
        (t, h, p)
    }

    #[test]
    fn a_failure_at_every_step_leaves_the_old_or_the_new_content_after_recovery() {
        for (dir, journal_in_state) in [
            (Dir::Writable, false),
            (Dir::BindMount, false),
            (Dir::BindMount, true),
            (Dir::ReadOnly, true),
        ] {
            for (old, bmc) in cases() {
                let new = with_block(&old, bmc).unwrap();
                assert_ne!(new, old);
                // The whole update, counted.
                let (_t, h, p) = rig(&old, journal_in_state);
                let mut count = Injected::new(dir, &p, usize::MAX, Fault::Error);
                h.update_with(&mut count, bmc).unwrap();
                assert_eq!(fs::read_to_string(&p).unwrap(), new);
                let n = count.steps;
                let expected = match dir {
                    Dir::Writable => 4,
                    // create, sync, remove of the temp; 4 journal; 4 write; 2 drop.
                    Dir::BindMount => 13,
                    Dir::ReadOnly => 10,
                };
                assert_eq!(n, expected, "{dir:?}: {:#?}", count.log);
                for fault in [Fault::Error, Fault::Crash] {
                    for k in 0..n {
                        let (_t, h, p) = rig(&old, journal_in_state);
                        let mut ops = Injected::new(dir, &p, k, fault);
                        let r = h.update_with(&mut ops, bmc);
                        let at = ops.log.get(k).cloned().unwrap_or_default();
                        let what = format!("{dir:?} {fault:?} at step {at}");
                        // Only a failed cleanup of the atomic path's temp
                        // file goes on (the next update removes it).
                        if r.is_ok() {
                            assert!(fault == Fault::Error && at.contains("remove"), "{what}");
                            assert_eq!(fs::read_to_string(&p).unwrap(), new, "{what}");
                        }
                        // Right after the failure: never anything but old,
                        // new, or what the journal will finish.
                        let mid = fs::read(&p).unwrap();
                        let journal = h.journal_path().exists();
                        assert!(
                            mid == old.as_bytes()
                                || mid == new.as_bytes()
                                || (journal && torn(&mid, old.as_bytes(), new.as_bytes())),
                            "{what}: {:?}",
                            String::from_utf8_lossy(&mid)
                        );
                        // The next run recovers.
                        let rec = h.recover().unwrap();
                        let after = fs::read_to_string(&p).unwrap();
                        assert!(
                            after == old || after == new,
                            "{what}: recovery ({rec:?}) left {after:?}"
                        );
                        assert!(after.starts_with(USER), "{what}: user lines lost");
                        assert!(!h.journal_path().exists(), "{what}");
                        assert_eq!(h.recover().unwrap(), Recovered::Clean, "{what}");
                        // And the next update then lands.
                        h.update_with(&mut RealOps, bmc).unwrap();
                        assert_eq!(fs::read_to_string(&p).unwrap(), new, "{what}");
                        let leftovers: Vec<_> = fs::read_dir(p.parent().unwrap())
                            .unwrap()
                            .map(|e| e.unwrap().file_name())
                            .collect();
                        assert_eq!(leftovers, ["hosts"], "{what}");
                        if let Ok(state) = fs::read_dir(p.parent().unwrap().with_file_name("state"))
                        {
                            assert_eq!(state.count(), 0, "{what}: files left in the state dir");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_crash_during_recovery_is_recovered_by_the_next_run() {
        let (old, bmc) = cases().remove(2);
        let new = with_block(&old, bmc).unwrap();
        // Crash at the in-place overwrite (step 7 in the bind-mount order,
        // after the journal is durable): the file is torn.
        let (_t, h, p) = rig(&old, true);
        let mut ops = Injected::new(Dir::BindMount, &p, 7, Fault::Crash);
        assert!(h.update_with(&mut ops, bmc).is_err());
        assert!(ops.log[7].contains("overwrite"), "{:#?}", ops.log);
        let torn_text = fs::read(&p).unwrap();
        assert!(torn_text != old.as_bytes() && torn_text != new.as_bytes());
        // Recovery: count its steps, then crash it at each.
        let mut count = Injected::new(Dir::BindMount, &p, usize::MAX, Fault::Error);
        let snapshot = (fs::read(&p).unwrap(), fs::read(h.journal_path()).unwrap());
        assert_eq!(
            h.recover_with(&mut count).unwrap(),
            Recovered::RolledForward
        );
        let n = count.steps;
        assert_eq!(n, 6, "{:#?}", count.log);
        for k in 0..n {
            fs::write(&p, &snapshot.0).unwrap();
            fs::write(h.journal_path(), &snapshot.1).unwrap();
            let mut ops = Injected::new(Dir::BindMount, &p, k, Fault::Crash);
            assert!(h.recover_with(&mut ops).is_err(), "step {k}");
            h.recover().unwrap();
            assert_eq!(fs::read_to_string(&p).unwrap(), new, "step {k}");
        }
    }

    #[test]
    fn a_journal_the_user_edited_past_is_dropped_and_the_edit_kept() {
        let (old, bmc) = cases().remove(0);
        let (_t, h, p) = rig(&old, true);
        // A crash in the overwrite leaves the journal; the administrator
        // then rewrites the file before bmclink runs again.
        let mut ops = Injected::new(Dir::BindMount, &p, 7, Fault::Crash);
        assert!(h.update_with(&mut ops, bmc).is_err());
        let edited = "192.168.0.1 mine\n";
        fs::write(&p, edited).unwrap();
        assert!(h.journal_path().exists());
        assert_eq!(h.recover().unwrap(), Recovered::Discarded);
        assert_eq!(fs::read_to_string(&p).unwrap(), edited);
        assert!(!h.journal_path().exists());
    }

    #[test]
    fn a_journal_that_does_not_verify_is_dropped() {
        let (old, _) = cases().remove(0);
        let (_t, h, p) = rig(&old, true);
        let j = encode_journal(&p, old.as_bytes(), b"new\n");
        fs::create_dir_all(h.journal_path().parent().unwrap()).unwrap();
        let mut bad = j.clone();
        let last = bad.len() - 40;
        bad[last] ^= 1;
        fs::write(h.journal_path(), &bad).unwrap();
        assert_eq!(h.recover().unwrap(), Recovered::Discarded);
        assert_eq!(fs::read_to_string(&p).unwrap(), old);
        assert_eq!(
            decode_journal(&j),
            Some((p.clone(), old.as_bytes().to_vec(), b"new\n".to_vec()))
        );
    }

    #[test]
    fn a_read_only_dir_without_a_journal_place_is_an_error_and_the_file_unchanged() {
        let (old, bmc) = cases().remove(0);
        let (_t, h, p) = rig(&old, false);
        let mut ops = Injected::new(Dir::ReadOnly, &p, usize::MAX, Fault::Error);
        let e = h.update_with(&mut ops, bmc).unwrap_err();
        assert!(e.to_string().contains("cannot write the journal"), "{e}");
        assert_eq!(fs::read_to_string(&p).unwrap(), old);
    }

    #[test]
    fn the_journal_in_the_state_dir_is_0600_and_its_dir_made_0700() {
        let (old, bmc) = cases().remove(0);
        let (t, h, p) = rig(&old, true);
        // Stop right after the journal is durable, to look at it.
        let mut ops = Injected::new(Dir::ReadOnly, &p, 4, Fault::Crash);
        assert!(h.update_with(&mut ops, bmc).is_err());
        assert!(ops.log[4].contains("overwrite"), "{:#?}", ops.log);
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&h.journal_path()), 0o600);
        assert_eq!(mode(&t.path().join("state")), 0o700);
    }
}
