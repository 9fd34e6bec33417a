//! Files only the agent's user may read: the `--pcap` capture, the
//! `--audit-log` JSON lines, the status file and other state written
//! outside [`crate::store`]'s records.
//!
//! [`open_private`] opens with `O_NOFOLLOW | O_CREAT | O_CLOEXEC` and mode
//! 0600, so a symbolic link at the path is refused (a local user who can
//! write the directory, e.g. `/tmp`, cannot redirect the write to another
//! file), and then checks the open file itself: it must be a regular file,
//! owned by the user bmclink runs as, with one link (a hard link planted to
//! `/etc/shadow` is refused before anything is written or truncated). An
//! existing file with a looser mode is tightened to 0600 (`fchmod`): the
//! administrator named it for bmclink's output, and what bmclink writes is
//! for root only. A capture is truncated only after those checks pass
//! (never `O_TRUNC` at open).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// How an existing file is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Appended to (the audit log).
    Append,
    /// Emptied (a capture, a temp file).
    Truncate,
}

/// A private file was refused or could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum PrivateFileError {
    /// The path is a symbolic link.
    #[error(
        "{path} is a symbolic link, and bmclink does not follow one there (whoever can write \
         its directory could point it at another file); remove the link or name a regular file"
    )]
    Symlink {
        /// The path.
        path: PathBuf,
    },
    /// Not a regular file (a directory, FIFO, device, socket).
    #[error("{path} is not a regular file; name a regular file (it is created 0600 when missing)")]
    NotRegular {
        /// The path.
        path: PathBuf,
    },
    /// Owned by another user.
    #[error(
        "{path} is owned by uid {owner}, not by uid {euid} that bmclink runs as, so another user \
         could read what bmclink writes; remove it (bmclink creates it 0600) or `chown {euid} {path}`"
    )]
    Owner {
        /// The path.
        path: PathBuf,
        /// The file's owner.
        owner: u32,
        /// The effective uid.
        euid: u32,
    },
    /// More than one hard link.
    #[error(
        "{path} has {links} hard links, so writing it would change another file too; remove it \
         (bmclink creates it 0600)"
    )]
    HardLinked {
        /// The path.
        path: PathBuf,
        /// The link count.
        links: u64,
    },
    /// The OS refused otherwise.
    #[error("cannot open {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

impl PrivateFileError {
    /// Whether bmclink refused the file (a configuration problem, exit 2)
    /// rather than the OS failing to open it (exit 1).
    pub fn is_refusal(&self) -> bool {
        !matches!(self, PrivateFileError::Io { .. })
    }
}

/// Opens (creating 0600) `path` for writing; see the module documentation.
pub fn open_private(path: &Path, existing: Existing) -> Result<File, PrivateFileError> {
    let p = || path.to_owned();
    let mut opts = OpenOptions::new();
    match existing {
        Existing::Append => opts.append(true),
        Existing::Truncate => opts.write(true),
    };
    let file = opts
        .create(true)
        .mode(0o600)
        // O_NONBLOCK: opening a FIFO with no reader fails instead of hanging
        // (it has no effect on regular files).
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .map_err(|source| {
            let link = std::fs::symlink_metadata(path)
                .map(|m| m.file_type().is_symlink())
                .unwrap_or(false);
            if source.raw_os_error() == Some(libc::ELOOP) && link {
                PrivateFileError::Symlink { path: p() }
            } else {
                PrivateFileError::Io { path: p(), source }
            }
        })?;
    let meta = file
        .metadata()
        .map_err(|source| PrivateFileError::Io { path: p(), source })?;
    if !meta.is_file() {
        return Err(PrivateFileError::NotRegular { path: p() });
    }
    let euid = nix::unistd::geteuid().as_raw();
    if meta.uid() != euid {
        return Err(PrivateFileError::Owner {
            path: p(),
            owner: meta.uid(),
            euid,
        });
    }
    if meta.nlink() > 1 {
        return Err(PrivateFileError::HardLinked {
            path: p(),
            links: meta.nlink(),
        });
    }
    let io = |source| PrivateFileError::Io { path: p(), source };
    if meta.mode() & 0o7777 != 0o600 {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(io)?;
    }
    if existing == Existing::Truncate {
        file.set_len(0).map_err(io)?;
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn a_new_file_is_0600_whatever_the_umask_allows() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("cap.pcap");
        open_private(&p, Existing::Truncate).unwrap();
        assert_eq!(mode(&p), 0o600);
    }

    #[test]
    fn an_existing_looser_file_is_tightened_and_appended_or_emptied() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("audit.jsonl");
        std::fs::write(&p, "earlier\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o666)).unwrap();
        let mut f = open_private(&p, Existing::Append).unwrap();
        f.write_all(b"later\n").unwrap();
        assert_eq!(mode(&p), 0o600);
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "earlier\nlater\n");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        open_private(&p, Existing::Truncate).unwrap();
        assert_eq!(mode(&p), 0o600);
        assert_eq!(std::fs::read(&p).unwrap(), b"");
    }

    #[test]
    fn a_symlink_is_refused_and_its_target_untouched() {
        let t = tempfile::tempdir().unwrap();
        let target = t.path().join("passwd");
        std::fs::write(&target, "root:x:0:0\n").unwrap();
        let link = t.path().join("cap.pcap");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        for how in [Existing::Append, Existing::Truncate] {
            let e = open_private(&link, how).unwrap_err();
            assert!(matches!(e, PrivateFileError::Symlink { .. }), "{e}");
            assert!(e.is_refusal());
            assert!(e.to_string().contains("symbolic link"), "{e}");
        }
        // A dangling link is refused too, and nothing is created behind it.
        let dangling = t.path().join("audit.jsonl");
        std::os::unix::fs::symlink(t.path().join("made-by-us"), &dangling).unwrap();
        let e = open_private(&dangling, Existing::Append).unwrap_err();
        assert!(matches!(e, PrivateFileError::Symlink { .. }), "{e}");
        assert!(!t.path().join("made-by-us").exists());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "root:x:0:0\n");
        assert_eq!(mode(&target), 0o644 & !umask());
    }

    fn umask() -> u32 {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("probe");
        std::fs::write(&p, "").unwrap();
        0o666 & !mode(&p)
    }

    #[test]
    fn a_hard_link_is_refused_before_anything_is_truncated() {
        let t = tempfile::tempdir().unwrap();
        let target = t.path().join("shadow");
        std::fs::write(&target, "secret\n").unwrap();
        let link = t.path().join("cap.pcap");
        std::fs::hard_link(&target, &link).unwrap();
        let e = open_private(&link, Existing::Truncate).unwrap_err();
        assert!(
            matches!(e, PrivateFileError::HardLinked { links: 2, .. }),
            "{e}"
        );
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "secret\n");
    }

    #[test]
    fn a_directory_or_fifo_is_not_a_regular_file() {
        let t = tempfile::tempdir().unwrap();
        let e = open_private(t.path(), Existing::Append).unwrap_err();
        // A directory cannot be opened for writing at all.
        assert!(!matches!(e, PrivateFileError::Symlink { .. }), "{e}");
        let fifo = t.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid C string path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // No reader: ENXIO rather than a hang.
        assert!(open_private(&fifo, Existing::Append).is_err());
    }

    #[test]
    fn a_file_owned_by_another_user_is_refused() {
        if !nix::unistd::geteuid().is_root() {
            assert!(
                std::env::var("BMCLINK_REQUIRE_ROOT").as_deref() != Ok("1"),
                "BMCLINK_REQUIRE_ROOT=1 but not root"
            );
            eprintln!("skipping: needs root to make a file owned by another user (BMCLINK_REQUIRE_ROOT=1 makes this a failure)");
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("audit.jsonl");
        std::fs::write(&p, "").unwrap();
        std::os::unix::fs::chown(&p, Some(65534), Some(65534)).unwrap();
        let e = open_private(&p, Existing::Append).unwrap_err();
        assert!(
            matches!(
                e,
                PrivateFileError::Owner {
                    owner: 65534,
                    euid: 0,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("chown 0"), "{e}");
    }
}
