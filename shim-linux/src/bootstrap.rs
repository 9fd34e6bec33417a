//! A file-based [`Bootstrap`]: the BMC's published facts in a small TOML
//! file (test rigs), and the one-time enrollment account (DESIGN §5a) in a
//! 0600 file of its own: the account name on the first line, the secret on
//! the second (`bmclink install --account NAME --secret-file FILE` writes
//! it). The account file is read, not consumed, by every enrollment attempt
//! and removed only when the agent retires it (enrolled, or the BMC answered
//! bad-credential), so a dropped connection does not burn it.
//!
//! A facts file that is missing, unreadable or malformed is no answer: the
//! agent then tries TLS, never the plain channel.
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

use bmclink_core::platform::{BmcFacts, Bootstrap, Retire, Retired};
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

/// Bootstrap facts and the enrollment account from files.
#[derive(Debug, Clone)]
pub struct FileBootstrap {
    facts: Option<PathBuf>,
    credential: PathBuf,
}

/// The account file's name in the state directory.
pub const ACCOUNT_FILE: &str = "enroll.credential";

/// The longest account name and secret the account file may hold.
pub const ACCOUNT_LIMITS: (usize, usize) = (
    bmclink_core::platform::ACCOUNT_NAME_MAX,
    bmclink_core::platform::ACCOUNT_SECRET_MAX,
);

/// The account file's text for `account` and `secret`.
pub fn account_file_text(account: &str, secret: &str) -> String {
    format!("{account}\n{secret}\n")
}

/// Checks an account name and secret for the account file; the error says
/// what is accepted.
pub fn check_account(account: &str, secret: &[u8]) -> Result<(), String> {
    if account.is_empty() || account.len() > ACCOUNT_LIMITS.0 || account.contains(['\n', '\r']) {
        return Err(format!(
            "the account name must be 1 to {} bytes on one line",
            ACCOUNT_LIMITS.0
        ));
    }
    if secret.is_empty() || secret.len() > ACCOUNT_LIMITS.1 || secret.contains(&b'\n') {
        return Err(format!(
            "the secret must be 1 to {} bytes on one line",
            ACCOUNT_LIMITS.1
        ));
    }
    Ok(())
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
    /// Facts from `facts`, the one-time account from `credential`.
    pub fn new(facts: impl Into<PathBuf>, credential: impl Into<PathBuf>) -> Self {
        FileBootstrap {
            facts: Some(facts.into()),
            credential: credential.into(),
        }
    }

    /// No facts file (a real host until IPMI is there): only the account.
    pub fn account_only(credential: impl Into<PathBuf>) -> Self {
        FileBootstrap {
            facts: None,
            credential: credential.into(),
        }
    }

    /// Reads and checks the facts file, with an error a person can act on.
    pub fn load_facts(&self) -> Result<BmcFacts, BootstrapError> {
        match &self.facts {
            Some(path) => parse_facts(path),
            None => Err(BootstrapError::Read {
                path: PathBuf::new(),
                source: io::Error::from(io::ErrorKind::NotFound),
            }),
        }
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
    // `tls = true` without a fingerprint is fine: the enrollment proofs
    // authenticate the BMC (DESIGN §5a).
    Ok(BmcFacts {
        fingerprint,
        firmware,
        tls: raw.tls,
        ipv6_usbnic: raw.ipv6_usbnic,
    })
}

impl Bootstrap for FileBootstrap {
    fn bmc_facts(&mut self) -> Option<BmcFacts> {
        self.facts.as_ref()?;
        match self.load_facts() {
            Ok(f) => Some(f),
            Err(e) => {
                // No evidence of anything: the agent tries TLS.
                log::warn!("{e}; the bootstrap channel counts as not answering");
                None
            }
        }
    }

    fn enrollment_account(&mut self, name: &mut [u8], secret: &mut [u8]) -> Option<(usize, usize)> {
        let data = match fs::read(&self.credential) {
            Ok(d) => zeroize_on_drop(d),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
            Err(e) => {
                log::warn!(
                    "cannot read the enrollment account {}: {e}",
                    self.credential.display()
                );
                return None;
            }
        };
        let mut lines = data.0.split(|b| *b == b'\n');
        let (Some(account), Some(pass)) = (lines.next(), lines.next()) else {
            log::warn!(
                "enrollment account {} must hold the account name and the secret on two lines; not used",
                self.credential.display()
            );
            return None;
        };
        let rest_empty = lines.all(|l| l.is_empty());
        let ok = std::str::from_utf8(account)
            .ok()
            .is_some_and(|a| check_account(a, pass).is_ok());
        if !ok || !rest_empty || account.len() > name.len() || pass.len() > secret.len() {
            log::warn!(
                "enrollment account {} is malformed ({}); not used",
                self.credential.display(),
                check_account(&String::from_utf8_lossy(account), pass)
                    .err()
                    .unwrap_or_else(|| "extra lines".into())
            );
            return None;
        }
        name.get_mut(..account.len())?.copy_from_slice(account);
        secret.get_mut(..pass.len())?.copy_from_slice(pass);
        Some((account.len(), pass.len()))
    }

    /// The file is the only copy: erased whether the account was spent or
    /// refused (a file channel has no bootstrapping to disable).
    fn retire_account(&mut self, _why: Retire) -> Retired {
        // Overwrite first, so a failed unlink leaves no secret behind.
        if let Ok(meta) = fs::metadata(&self.credential) {
            let zeros = vec![0u8; usize::try_from(meta.len()).unwrap_or(0)];
            let _ = fs::write(&self.credential, zeros);
        }
        match fs::remove_file(&self.credential) {
            Ok(()) => log::info!(
                "one-time enrollment account {} used up and removed",
                self.credential.display()
            ),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => log::warn!(
                "cannot remove the used enrollment account {}: {e}",
                self.credential.display()
            ),
        }
        Retired::Erased
    }
}

/// Bytes zeroed when dropped (the secret's copy in memory).
struct Secret(Vec<u8>);

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.fill(0);
    }
}

fn zeroize_on_drop(d: Vec<u8>) -> Secret {
    Secret(d)
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
        // TLS without a published fingerprint is a valid answer (§5a).
        let (_t, b) = rig("firmware = \"3.0.0.1\"\ntls = true\nipv6_usbnic = true\n");
        let f = b.load_facts().unwrap();
        assert!(f.tls && f.fingerprint.is_none());
    }

    #[test]
    fn a_missing_facts_file_means_the_channel_does_not_answer() {
        let t = tempfile::tempdir().unwrap();
        let mut b = FileBootstrap::new(t.path().join("none"), t.path().join("cred"));
        assert_eq!(b.bmc_facts(), None);
    }

    fn account(b: &mut FileBootstrap) -> Option<(String, String)> {
        let (mut n, mut s) = ([0u8; 255], [0u8; 64]);
        let (nl, sl) = b.enrollment_account(&mut n, &mut s)?;
        Some((
            String::from_utf8(n[..nl].to_vec()).unwrap(),
            String::from_utf8(s[..sl].to_vec()).unwrap(),
        ))
    }

    #[test]
    fn the_account_is_kept_until_retired_then_removed() {
        let (t, mut b) = rig("");
        let path = t.path().join("credential");
        fs::write(&path, account_file_text("enroll-7", "s3cret-0123456789")).unwrap();
        let want = Some(("enroll-7".to_owned(), "s3cret-0123456789".to_owned()));
        // A dropped connection reads it again: not used up by reading.
        assert_eq!(account(&mut b), want);
        assert_eq!(account(&mut b), want);
        assert!(path.exists());
        assert_eq!(b.retire_account(Retire::Enrolled), Retired::Erased);
        assert!(!path.exists());
        assert_eq!(account(&mut b), None);
    }

    #[test]
    fn a_malformed_or_oversized_account_is_kept_and_not_used() {
        let (t, mut b) = rig("");
        let path = t.path().join("credential");
        for bad in [
            b"only-one-line\n".to_vec(),
            [b"a\n".to_vec(), vec![b'x'; 100], b"\n".to_vec()].concat(),
            b"\nsecret\n".to_vec(),
            b"a\nb\nc\n".to_vec(),
        ] {
            fs::write(&path, &bad).unwrap();
            assert_eq!(account(&mut b), None, "{bad:?}");
            assert!(path.exists());
        }
    }

    #[test]
    fn without_a_facts_file_only_the_account_answers() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("enroll.credential");
        fs::write(&path, account_file_text("a", "b")).unwrap();
        let mut b = FileBootstrap::account_only(&path);
        assert_eq!(b.bmc_facts(), None);
        assert_eq!(account(&mut b), Some(("a".into(), "b".into())));
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
