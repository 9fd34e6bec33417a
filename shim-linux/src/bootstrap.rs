//! A file-based [`Bootstrap`] for test rigs: the BMC's published facts in a
//! small TOML file, and a one-time enrollment credential in a separate file
//! that is deleted when read.
//!
//! ```toml
//! fingerprint = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
//! firmware = "3.30.30.30"
//! tls = true
//! ipv6_usbnic = true
//! ```

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use bmclink_core::platform::{BmcFacts, Bootstrap};
use serde::Deserialize;

/// The facts file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// The file could not be read.
    #[error("cannot read the bootstrap file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The file is not valid TOML or has unknown keys.
    #[error("bootstrap file {path}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message (line and key).
        message: String,
    },
    /// A value is out of range.
    #[error("bootstrap file {path}: {key} = {value:?}: {rule}")]
    Value {
        /// The file.
        path: PathBuf,
        /// The key.
        key: &'static str,
        /// The value found.
        value: String,
        /// What is accepted.
        rule: &'static str,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FactsFile {
    fingerprint: Option<String>,
    firmware: String,
    tls: bool,
    ipv6_usbnic: bool,
}

/// Bootstrap facts and credential from files.
#[derive(Debug, Clone)]
pub struct FileBootstrap {
    facts: PathBuf,
    credential: PathBuf,
}

/// Parses `a.b.c.d` with each part 0..=255.
pub fn parse_firmware(text: &str) -> Option<[u8; 4]> {
    let mut out = [0u8; 4];
    let mut parts = text.split('.');
    for b in out.iter_mut() {
        *b = parts.next()?.parse().ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// Parses 64 hex digits (colons allowed, as `openssl x509 -fingerprint` prints).
pub fn parse_fingerprint(text: &str) -> Option<[u8; 32]> {
    let clean: String = text.chars().filter(|c| *c != ':').collect();
    let mut out = [0u8; 32];
    hex::decode_to_slice(clean, &mut out).ok()?;
    Some(out)
}

impl FileBootstrap {
    /// Facts from `facts`, the one-time credential from `credential`.
    pub fn new(facts: impl Into<PathBuf>, credential: impl Into<PathBuf>) -> Self {
        FileBootstrap {
            facts: facts.into(),
            credential: credential.into(),
        }
    }

    /// Reads and checks the facts file, with an error a person can act on.
    pub fn load_facts(&self) -> Result<BmcFacts, BootstrapError> {
        parse_facts(&self.facts)
    }
}

fn parse_facts(path: &Path) -> Result<BmcFacts, BootstrapError> {
    let text = fs::read_to_string(path).map_err(|source| BootstrapError::Read {
        path: path.to_owned(),
        source,
    })?;
    let raw: FactsFile = toml::from_str(&text).map_err(|e| BootstrapError::Syntax {
        path: path.to_owned(),
        message: e.message().to_owned(),
    })?;
    let value = |key, value: &str, rule| BootstrapError::Value {
        path: path.to_owned(),
        key,
        value: value.to_owned(),
        rule,
    };
    let firmware = parse_firmware(&raw.firmware).ok_or_else(|| {
        value(
            "firmware",
            &raw.firmware,
            "four numbers 0-255 separated by dots, e.g. 3.30.30.30",
        )
    })?;
    let fingerprint = match raw.fingerprint {
        None => None,
        Some(f) => Some(parse_fingerprint(&f).ok_or_else(|| {
            value(
                "fingerprint",
                &f,
                "a SHA-256 fingerprint: 64 hex digits, colons allowed",
            )
        })?),
    };
    if raw.tls && fingerprint.is_none() {
        return Err(value("fingerprint", "", "required when tls = true"));
    }
    Ok(BmcFacts {
        fingerprint,
        firmware,
        tls: raw.tls,
        ipv6_usbnic: raw.ipv6_usbnic,
    })
}

impl Bootstrap for FileBootstrap {
    fn bmc_facts(&mut self) -> Option<BmcFacts> {
        match self.load_facts() {
            Ok(f) => Some(f),
            Err(e) => {
                log::warn!("{e}");
                None
            }
        }
    }

    fn enrollment_credential(&mut self, buf: &mut [u8]) -> Option<usize> {
        let data = fs::read(&self.credential).ok()?;
        let data = data.strip_suffix(b"\n").unwrap_or(&data);
        if data.is_empty() || data.len() > buf.len() {
            log::warn!(
                "enrollment credential {} is empty or longer than {} bytes; not used",
                self.credential.display(),
                buf.len()
            );
            return None;
        }
        // One-time: a credential that cannot be deleted is not handed out.
        if let Err(e) = fs::remove_file(&self.credential) {
            log::warn!(
                "cannot delete the one-time credential {}: {e}; not used",
                self.credential.display()
            );
            return None;
        }
        buf.get_mut(..data.len())?.copy_from_slice(data);
        Some(data.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FP: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn rig(facts: &str) -> (tempfile::TempDir, FileBootstrap) {
        let t = tempfile::tempdir().unwrap();
        fs::write(t.path().join("facts.toml"), facts).unwrap();
        let b = FileBootstrap::new(t.path().join("facts.toml"), t.path().join("credential"));
        (t, b)
    }

    #[test]
    fn facts_file_parses_into_bmc_facts() {
        let (_t, mut b) = rig(&format!(
            "fingerprint = \"{FP}\"\nfirmware = \"3.30.30.30\"\ntls = true\nipv6_usbnic = false\n"
        ));
        let f = b.bmc_facts().unwrap();
        assert_eq!(f.firmware, [3, 30, 30, 30]);
        assert!(f.tls && !f.ipv6_usbnic);
        assert_eq!(f.fingerprint.unwrap()[0], 0x9f);
    }

    #[test]
    fn bad_values_and_unknown_keys_are_named() {
        let (_t, b) = rig("firmware = \"3.300.1.1\"\ntls = false\nipv6_usbnic = true\n");
        let e = b.load_facts().unwrap_err().to_string();
        assert!(e.contains("firmware = \"3.300.1.1\""), "{e}");
        let (_t, b) = rig("firmware = \"3.0.0.1\"\ntls = false\nipv6_usbnic = true\ncolour = 1\n");
        let e = b.load_facts().unwrap_err().to_string();
        assert!(e.contains("colour"), "{e}");
        let (_t, b) = rig("firmware = \"3.0.0.1\"\ntls = true\nipv6_usbnic = true\n");
        let e = b.load_facts().unwrap_err().to_string();
        assert!(e.contains("required when tls = true"), "{e}");
    }

    #[test]
    fn a_missing_facts_file_means_the_channel_does_not_answer() {
        let t = tempfile::tempdir().unwrap();
        let mut b = FileBootstrap::new(t.path().join("none"), t.path().join("cred"));
        assert_eq!(b.bmc_facts(), None);
    }

    #[test]
    fn the_credential_is_handed_out_once_and_deleted() {
        let (t, mut b) = rig("");
        fs::write(t.path().join("credential"), b"one-time-secret\n").unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(b.enrollment_credential(&mut buf), Some(15));
        assert_eq!(&buf[..15], b"one-time-secret");
        assert!(!t.path().join("credential").exists());
        assert_eq!(b.enrollment_credential(&mut buf), None);
    }

    #[test]
    fn a_credential_larger_than_the_buffer_is_kept_and_not_used() {
        let (t, mut b) = rig("");
        fs::write(t.path().join("credential"), [b'x'; 100]).unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(b.enrollment_credential(&mut buf), None);
        assert!(t.path().join("credential").exists());
    }

    #[test]
    fn fingerprints_accept_colons_and_reject_short_ones() {
        let colons: Vec<String> = FP
            .as_bytes()
            .chunks(2)
            .map(|c| String::from_utf8(c.to_vec()).unwrap())
            .collect();
        assert_eq!(parse_fingerprint(&colons.join(":")), parse_fingerprint(FP));
        assert!(parse_fingerprint(&FP[..62]).is_none());
        assert_eq!(parse_firmware("2.1.0.255"), Some([2, 1, 0, 255]));
        assert_eq!(parse_firmware("2.1.0"), None);
        assert_eq!(parse_firmware("2.1.0.1.1"), None);
    }
}
