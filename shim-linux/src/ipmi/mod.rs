//! The host-local bootstrap channel of DESIGN §5a on Linux: IPMI through the
//! kernel's IPMI device (`ipmi_si` + `ipmi_devintf`, `/dev/ipmi0`).
//!
//! - [`sys`]: the kernel's structs and ioctls, checked against the header;
//! - [`device`]: one request, one response, with a deadline;
//! - here: "Get Device ID" and DSP0270 "Get Bootstrap Account Credentials"
//!   (codecs in [`bmclink_core::ipmi`]), the [`Bootstrap`] they give the core
//!   ([`IpmiBootstrap`]), and which bootstrap source a config selects
//!   ([`BootstrapSource`]).
//!
//! The account is fetched once, when the core first asks (the BMC may make
//! a new account on every request), kept only in memory and offered to the
//! core until it retires it. When the core retires it after a proven
//! ENROLLED, [`disable_bootstrap`] sends `[0x52, 0x00]` (once) and the core
//! audits the outcome (BL4017/BL4018); a refused account is only dropped.

pub mod command;
pub mod device;
pub mod sys;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bmclink_core::ipmi::Command;
use bmclink_core::ipmi::{
    bootstrap_facts, bootstrap_request, BootstrapAccount, BootstrapAnswer, DeviceId, IpmiError,
    CC_BOOTSTRAP_DISABLED, CC_INVALID_COMMAND, CC_OK, GET_BOOTSTRAP_ACCOUNT, GET_DEVICE_ID,
};
use bmclink_core::platform::{BmcFacts, Bootstrap, Retire, Retired};

pub use device::{find_device, IpmiDevice, IpmiDeviceError, DEFAULT_TIMEOUT, DEVICE_PATHS};

use crate::bootstrap::FileBootstrap;
use crate::config::ShimConfig;

/// The bootstrap channel failed.
#[derive(Debug, thiserror::Error)]
pub enum IpmiBootstrapError {
    /// The device failed (no device, permission, timeout, ...).
    #[error(transparent)]
    Device(#[from] IpmiDeviceError),
    /// The BMC's answer is unusable (a completion code, a malformed response).
    #[error("{0}")]
    Answer(IpmiError),
}

impl From<IpmiError> for IpmiBootstrapError {
    fn from(e: IpmiError) -> Self {
        IpmiBootstrapError::Answer(e)
    }
}

/// Both answers of the bootstrap channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapReport {
    /// The device used.
    pub path: PathBuf,
    /// "Get Device ID".
    pub device: DeviceId,
    /// "Get Bootstrap Account Credentials" with `[0x52, 0xA5]`.
    pub answer: BootstrapAnswer,
}

impl BootstrapReport {
    /// The bootstrap facts of DESIGN §5a.
    pub fn facts(&self) -> BmcFacts {
        bootstrap_facts(&self.device, &self.answer)
    }
}

/// One IPMI request to the local BMC and its response (completion code
/// first): the kernel's device, or a simulated BMC in tests.
pub trait IpmiTransport {
    /// Sends `command` with `data` and waits at most `timeout` for the answer.
    fn request(
        &mut self,
        command: Command,
        data: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, IpmiDeviceError>;
    /// Where the requests go (for `status` and the logs).
    fn path(&self) -> &Path;
}

impl IpmiTransport for IpmiDevice {
    fn request(
        &mut self,
        command: Command,
        data: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, IpmiDeviceError> {
        IpmiDevice::request(self, command, data, timeout)
    }
    fn path(&self) -> &Path {
        IpmiDevice::path(self)
    }
}

/// Opens the transport of an [`IpmiBootstrap`] for each exchange.
pub type OpenTransport = Box<dyn FnMut() -> Result<Box<dyn IpmiTransport>, IpmiDeviceError>>;

/// Asks the BMC behind `dev` for its device ID and a bootstrap account,
/// keeping bootstrapping enabled.
pub fn read_bootstrap(
    dev: &mut dyn IpmiTransport,
    timeout: Duration,
) -> Result<BootstrapReport, IpmiBootstrapError> {
    let rsp = dev.request(GET_DEVICE_ID, &[], timeout)?;
    let device = DeviceId::parse(&rsp)?;
    let rsp = dev.request(GET_BOOTSTRAP_ACCOUNT, &bootstrap_request(true), timeout)?;
    let answer = BootstrapAnswer::parse(&rsp)?;
    Ok(BootstrapReport {
        path: dev.path().to_owned(),
        device,
        answer,
    })
}

/// What [`disable_bootstrap`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disabled {
    /// The BMC disabled bootstrapping (the account it handed out with the
    /// request is dropped unread).
    Now,
    /// Bootstrapping was already disabled (0x80).
    Already,
    /// The BMC does not implement DSP0270 (0xC1): nothing to disable.
    NotImplemented,
}

/// Sends `[0x52, 0x00]`: bootstrapping is disabled after this request.
pub fn disable_bootstrap(
    dev: &mut dyn IpmiTransport,
    timeout: Duration,
) -> Result<Disabled, IpmiBootstrapError> {
    let rsp = dev.request(GET_BOOTSTRAP_ACCOUNT, &bootstrap_request(false), timeout)?;
    match rsp.first() {
        Some(&CC_OK) => {
            // Check the answer is DSP0270's, then drop (and zero) the account.
            BootstrapAccount::parse(&rsp)?;
            Ok(Disabled::Now)
        }
        Some(&CC_BOOTSTRAP_DISABLED) => Ok(Disabled::Already),
        Some(&CC_INVALID_COMMAND) => Ok(Disabled::NotImplemented),
        _ => Err(BootstrapAccount::parse(&rsp).err().map_or_else(
            || {
                IpmiBootstrapError::Answer(IpmiError::Short {
                    command: GET_BOOTSTRAP_ACCOUNT,
                    len: rsp.len(),
                    need: 1,
                })
            },
            IpmiBootstrapError::Answer,
        )),
    }
}

/// How long after a failed read the channel is asked again: a BMC that is
/// still booting answers "busy" for a while, and a silent one costs the
/// agent the whole timeout on every question.
pub const RETRY_AFTER: Duration = Duration::from_secs(60);

/// The [`Bootstrap`] of a host with an IPMI device. The first question the
/// core asks reads both answers; the facts are kept, the account is offered
/// to every enrollment attempt until the core retires it. A failed read
/// counts as "no answer" and is retried after [`RETRY_AFTER`].
pub struct IpmiBootstrap {
    open: OpenTransport,
    timeout: Duration,
    report: Option<BootstrapReport>,
    last_try: Option<Instant>,
    /// The core has read the account and not retired it yet.
    offered: bool,
}

impl std::fmt::Debug for IpmiBootstrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IpmiBootstrap")
            .field("timeout", &self.timeout)
            .field("report", &self.report.as_ref().map(|r| &r.path))
            .field("offered", &self.offered)
            .finish_non_exhaustive()
    }
}

impl IpmiBootstrap {
    /// The channel through the kernel's device at `path` (default: the
    /// first of [`DEVICE_PATHS`]), opened for each exchange.
    pub fn new(path: Option<PathBuf>, timeout: Duration) -> Self {
        Self::over(
            Box::new(move || {
                IpmiDevice::open(path.as_deref()).map(|d| Box::new(d) as Box<dyn IpmiTransport>)
            }),
            timeout,
        )
    }

    /// The channel through the transports `open` returns (a simulated BMC
    /// in tests).
    pub fn over(open: OpenTransport, timeout: Duration) -> Self {
        IpmiBootstrap {
            open,
            timeout,
            report: None,
            last_try: None,
            offered: false,
        }
    }

    fn report(&mut self) -> Option<&mut BootstrapReport> {
        let due = self.last_try.is_none_or(|t| t.elapsed() >= RETRY_AFTER);
        if self.report.is_none() && due {
            self.last_try = Some(Instant::now());
            let timeout = self.timeout;
            let read = (self.open)()
                .map_err(IpmiBootstrapError::from)
                .and_then(|mut d| read_bootstrap(d.as_mut(), timeout));
            match read {
                Ok(r) => self.report = Some(r),
                Err(e) => log::warn!("bootstrap over IPMI: {e}"),
            }
        }
        self.report.as_mut()
    }

    /// Takes the account, if the BMC handed one out and it was not taken.
    pub fn take_account(&mut self) -> Option<BootstrapAccount> {
        let r = self.report()?;
        match std::mem::replace(&mut r.answer, BootstrapAnswer::Disabled) {
            BootstrapAnswer::Account(a) => Some(a),
            other => {
                r.answer = other;
                None
            }
        }
    }

    /// Disables bootstrapping on the BMC (after enrollment succeeded).
    pub fn disable(&mut self) -> Result<Disabled, IpmiBootstrapError> {
        let mut dev = (self.open)()?;
        disable_bootstrap(dev.as_mut(), self.timeout)
    }
}

impl Bootstrap for IpmiBootstrap {
    fn bmc_facts(&mut self) -> Option<BmcFacts> {
        self.report().map(|r| r.facts())
    }

    /// The account, offered to every attempt until the agent retires it:
    /// a dropped connection does not use it up (DESIGN §5a).
    fn enrollment_account(&mut self, name: &mut [u8], secret: &mut [u8]) -> Option<(usize, usize)> {
        let r = self.report()?;
        let BootstrapAnswer::Account(account) = &r.answer else {
            return None;
        };
        let (user, password) = (account.user().as_bytes(), account.password().as_bytes());
        name.get_mut(..user.len())?.copy_from_slice(user);
        secret.get_mut(..password.len())?.copy_from_slice(password);
        let lens = (user.len(), password.len());
        self.offered = true;
        Some(lens)
    }

    /// Forgets (and zeroes) the account. After a proven enrollment with it,
    /// disables bootstrapping on the BMC (`[0x52, 0x00]`, sent once); a
    /// refused account is only forgotten (the BMC may hand out another).
    fn retire_account(&mut self, why: Retire) -> Retired {
        drop(self.take_account());
        let offered = std::mem::take(&mut self.offered);
        if why != Retire::Enrolled || !offered {
            return Retired::Erased;
        }
        match self.disable() {
            Ok(Disabled::Now) => {
                log::info!("bootstrap over IPMI: bootstrapping disabled on the BMC");
                Retired::BootstrapDisabled
            }
            Ok(Disabled::Already) => {
                log::info!("bootstrap over IPMI: bootstrapping was already disabled on the BMC");
                Retired::BootstrapDisabled
            }
            Ok(Disabled::NotImplemented) => {
                log::warn!("bootstrap over IPMI: the BMC cannot disable bootstrapping (0xC1)");
                Retired::BootstrapNotDisabled
            }
            Err(e) => {
                log::warn!("bootstrap over IPMI: cannot disable bootstrapping: {e}");
                Retired::BootstrapNotDisabled
            }
        }
    }
}

/// Where the bootstrap facts and the one-time account come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootstrapSource {
    /// The kernel's IPMI device (`bootstrap = "ipmi"`, or no `bootstrap` key
    /// on a host that has one).
    Ipmi,
    /// A facts file and a credential file (test rigs).
    File {
        /// The facts file.
        facts: PathBuf,
        /// The one-time credential file.
        credential: PathBuf,
    },
    /// No bootstrap channel: no `bootstrap` key and no IPMI device.
    None,
}

/// The `bootstrap` value that selects IPMI.
pub const IPMI_KEYWORD: &str = "ipmi";

impl BootstrapSource {
    /// The source `cfg` selects; `ipmi_present` says whether the host has an
    /// IPMI device, which is the default when no `bootstrap` key is given.
    pub fn of(cfg: &ShimConfig, ipmi_present: bool) -> BootstrapSource {
        match &cfg.bootstrap {
            Some(p) if p == Path::new(IPMI_KEYWORD) => BootstrapSource::Ipmi,
            Some(facts) => BootstrapSource::File {
                facts: facts.clone(),
                credential: cfg
                    .credential
                    .clone()
                    .unwrap_or_else(|| cfg.state_dir.join("enroll.credential")),
            },
            None if ipmi_present => BootstrapSource::Ipmi,
            None => BootstrapSource::None,
        }
    }

    /// The source for this host: [`BootstrapSource::of`] with whether an
    /// IPMI device exists now.
    pub fn for_host(cfg: &ShimConfig) -> BootstrapSource {
        BootstrapSource::of(cfg, find_device().is_some())
    }

    /// The [`Bootstrap`] reading this source.
    pub fn open(&self) -> Box<dyn Bootstrap> {
        match self {
            BootstrapSource::Ipmi => Box::new(IpmiBootstrap::new(None, DEFAULT_TIMEOUT)),
            BootstrapSource::File { facts, credential } => {
                Box::new(FileBootstrap::new(facts, credential))
            }
            BootstrapSource::None => Box::new(crate::platform::NoBootstrap),
        }
    }

    /// One line for `install` and `status`: which trust source is used.
    pub fn describe(&self) -> String {
        match self {
            BootstrapSource::Ipmi => "IPMI (DSP0270 over the kernel's IPMI device)".to_owned(),
            BootstrapSource::File { facts, .. } => {
                format!("facts file {}", facts.display())
            }
            BootstrapSource::None => "none (no IPMI device, no bootstrap file)".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipmi_is_the_default_only_where_a_device_exists() {
        let cfg = ShimConfig::default();
        assert_eq!(BootstrapSource::of(&cfg, true), BootstrapSource::Ipmi);
        assert_eq!(BootstrapSource::of(&cfg, false), BootstrapSource::None);
    }

    #[test]
    fn the_bootstrap_key_selects_ipmi_or_a_facts_file() {
        let mut cfg = ShimConfig {
            bootstrap: Some(PathBuf::from("ipmi")),
            ..ShimConfig::default()
        };
        assert_eq!(BootstrapSource::of(&cfg, false), BootstrapSource::Ipmi);
        cfg.bootstrap = Some(PathBuf::from("/etc/bmclink/facts.toml"));
        let BootstrapSource::File { facts, credential } = BootstrapSource::of(&cfg, true) else {
            panic!("a facts file wins over the device")
        };
        assert_eq!(facts, PathBuf::from("/etc/bmclink/facts.toml"));
        assert_eq!(credential, cfg.state_dir.join("enroll.credential"));
    }

    #[test]
    fn bootstrap_ipmi_in_the_config_file_selects_ipmi() {
        let path = Path::new("/etc/bmclink/bmclink.toml");
        let cfg = crate::config::ConfigFile::parse(path, "bootstrap = \"ipmi\"\n")
            .unwrap()
            .resolve()
            .unwrap();
        assert_eq!(BootstrapSource::of(&cfg, false), BootstrapSource::Ipmi);
        assert!(BootstrapSource::of(&cfg, false).describe().contains("IPMI"));
    }

    #[test]
    fn the_unit_allows_the_tun_and_ipmi_devices_only() {
        let allowed: Vec<&str> = crate::install::UNIT
            .lines()
            .filter_map(|l| l.strip_prefix("DeviceAllow="))
            .collect();
        assert_eq!(allowed, ["/dev/net/tun rw", "char-ipmidev rw"]);
        assert!(crate::install::UNIT.contains("\nDevicePolicy=closed\n"));
    }

    #[test]
    fn without_a_device_the_bootstrap_says_so_and_never_blocks() {
        let t = tempfile::tempdir().unwrap();
        let missing = t.path().join("ipmi0");
        let e = IpmiDevice::open(Some(&missing)).unwrap_err();
        assert!(matches!(e, IpmiDeviceError::Missing { .. }), "{e}");
        assert!(e.to_string().contains(&*missing.to_string_lossy()), "{e}");
        let mut b = IpmiBootstrap::new(Some(missing), Duration::from_millis(10));
        assert_eq!(b.bmc_facts(), None);
        let (mut name, mut secret) = ([0u8; 64], [0u8; 64]);
        assert_eq!(b.enrollment_account(&mut name, &mut secret), None);
    }

    #[test]
    fn a_device_that_is_not_ipmi_fails_the_command_by_name() {
        // /dev/null opens but has no IPMI ioctls: the send fails at once.
        let mut d = IpmiDevice::open(Some(Path::new("/dev/null"))).unwrap();
        let e = d
            .request(GET_DEVICE_ID, &[], Duration::from_millis(100))
            .unwrap_err();
        assert!(matches!(e, IpmiDeviceError::Send { .. }), "{e}");
        assert!(e.to_string().contains("Get Device ID"), "{e}");
    }
}
