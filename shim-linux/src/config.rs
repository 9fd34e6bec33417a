//! The config file (TOML, `/etc/bmclink/bmclink.toml` or `--config`).
//!
//! Every key is optional; a missing key keeps the core's default (DESIGN §3).
//! Unknown keys and out-of-range values are rejected with the key name and
//! the accepted range; command-line flags override the file.
//!
//! ```toml
//! interface = "idrac"          # the USBNIC (systemd's name for USB 413c:a102)
//! state_dir = "/var/lib/bmclink"
//! ipv4 = true
//! ipv6 = true
//! bmc_ipv4 = "169.254.1.1"
//! # host_ipv4 = "169.254.1.2"  # default: BMC + 1
//! # bmc_ipv6 = "fe80::1"       # default: learned by NDP
//! tls_port = 5443
//! plain_port = 5080
//! heartbeat_secs = 10
//! race = false
//! # audit_log = "/var/log/bmclink/audit.jsonl"
//! # pcap = "/var/tmp/bmclink.pcap"
//! hosts_file = "/etc/hosts"
//! smbios = true                # fill interface, bmc_ipv4, host_ipv4, bmc_ipv6
//!                              # left out here from SMBIOS type 42 (DSP0270)
//! # bootstrap = "ipmi"       # default: "ipmi" when the host has an IPMI device
//! ```

use std::fs;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use bmclink_core::Config;
use serde::Deserialize;
use smoltcp::time::Duration;

use crate::frames::parse_mac;
use crate::store::DEFAULT_STATE_DIR;

/// The default config file.
pub const DEFAULT_CONFIG: &str = "/etc/bmclink/bmclink.toml";
/// The default hosts file for P10's managed block.
pub const DEFAULT_HOSTS_FILE: &str = "/etc/hosts";
/// The default USBNIC interface name.
pub const DEFAULT_INTERFACE: &str = "idrac";

/// The config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Not TOML, a wrong type or an unknown key.
    #[error("config file {path}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message, naming the key.
        message: String,
    },
    /// A value outside its accepted range.
    #[error("{key} = {value}: {rule}")]
    Value {
        /// The key (or flag) name.
        key: &'static str,
        /// The value given.
        value: String,
        /// What is accepted.
        rule: String,
    },
}

/// The file as written: every key optional, no unknown keys.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// The USBNIC interface.
    pub interface: Option<String>,
    /// The state directory.
    pub state_dir: Option<PathBuf>,
    /// JSON-lines audit log file.
    pub audit_log: Option<PathBuf>,
    /// pcap capture file.
    pub pcap: Option<PathBuf>,
    /// Hosts file for P10's managed block.
    pub hosts_file: Option<PathBuf>,
    /// The agent's MAC address (default: a fresh locally administered one).
    pub mac: Option<String>,
    /// The bootstrap source: `"ipmi"` (DSP0270 over the kernel's IPMI
    /// device), or a facts file (test rigs). Unset: IPMI when the host has
    /// an IPMI device (see [`crate::ipmi::BootstrapSource`]).
    pub bootstrap: Option<PathBuf>,
    /// One-time enrollment credential file (test rigs).
    pub credential: Option<PathBuf>,
    /// Try IPv4 at all.
    pub ipv4: Option<bool>,
    /// Try IPv6 at all.
    pub ipv6: Option<bool>,
    /// BMC IPv4 address.
    pub bmc_ipv4: Option<String>,
    /// Preferred host IPv4 address.
    pub host_ipv4: Option<String>,
    /// BMC IPv6 address.
    pub bmc_ipv6: Option<String>,
    /// TLS channel port.
    pub tls_port: Option<u32>,
    /// Plain channel port.
    pub plain_port: Option<u32>,
    /// Heartbeat interval, seconds.
    pub heartbeat_secs: Option<u64>,
    /// Missed heartbeats before the BMC is considered gone.
    pub heartbeat_misses: Option<u64>,
    /// TCP connect timeout, seconds.
    pub connect_timeout_secs: Option<u64>,
    /// Overall TLS handshake deadline, seconds.
    pub handshake_timeout_secs: Option<u64>,
    /// Overall deadline from HELLO to WELCOME, seconds.
    pub welcome_timeout_secs: Option<u64>,
    /// The BMC firmware has no TLS: use the plain channel (never once pinned).
    pub legacy_plain: Option<bool>,
    /// First retry delay, seconds.
    pub backoff_min_secs: Option<u64>,
    /// Largest retry delay, seconds.
    pub backoff_max_secs: Option<u64>,
    /// Race IPv6 against IPv4.
    pub race: Option<bool>,
    /// IPv6 start delay in race mode, milliseconds.
    pub race_delay_ms: Option<u64>,
    /// Host name sent in HELLO (default: the system's host name, else `host`).
    pub hostname: Option<String>,
    /// Read SMBIOS type 42 for the values the file leaves out (default true).
    pub smbios: Option<bool>,
}

/// Where a value bmclink uses came from (`bmclink discover` shows it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// The config file, or a command-line flag.
    Config,
    /// SMBIOS type 42, the BMC's Redfish host interface (DSP0270).
    Type42,
    /// bmclink's default (DESIGN §3).
    Default,
}

impl Source {
    /// How `bmclink discover` names it.
    pub fn text(self) -> &'static str {
        match self {
            Source::Config => "config",
            Source::Type42 => "type 42",
            Source::Default => "default",
        }
    }
}

/// Which of the values SMBIOS type 42 can give the config file set itself
/// (those keep the file's value).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Given {
    /// `interface`.
    pub interface: bool,
    /// `bmc_ipv4`.
    pub bmc_ipv4: bool,
    /// `host_ipv4`.
    pub host_ipv4: bool,
    /// `bmc_ipv6`.
    pub bmc_ipv6: bool,
}

/// The shim's whole configuration: the core's plus its own.
#[derive(Debug, Clone)]
pub struct ShimConfig {
    /// The core's configuration.
    pub core: Config,
    /// The USBNIC interface (`--iface` default).
    pub interface: String,
    /// The state directory.
    pub state_dir: PathBuf,
    /// JSON-lines audit log, if any.
    pub audit_log: Option<PathBuf>,
    /// pcap capture, if any.
    pub pcap: Option<PathBuf>,
    /// Hosts file for P10's managed block.
    pub hosts_file: PathBuf,
    /// The agent's MAC; `None`: a fresh locally administered one.
    pub mac: Option<[u8; 6]>,
    /// `bootstrap` as written: `"ipmi"` or a facts file (test rigs), if any.
    pub bootstrap: Option<PathBuf>,
    /// One-time enrollment account file (`install --account` writes
    /// `STATE_DIR/enroll.credential` when this is not set).
    pub credential: Option<PathBuf>,
    /// Which type-42 values the file set itself.
    pub given: Given,
    /// Whether to read SMBIOS type 42 for the others.
    pub smbios: bool,
    /// The BMC's host name from type 42, mapped in the hosts-file block.
    pub bmc_hostname: Option<String>,
}

impl Default for ShimConfig {
    fn default() -> Self {
        ShimConfig {
            core: Config::default(),
            interface: DEFAULT_INTERFACE.to_owned(),
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
            audit_log: None,
            pcap: None,
            hosts_file: PathBuf::from(DEFAULT_HOSTS_FILE),
            mac: None,
            bootstrap: None,
            credential: None,
            given: Given::default(),
            smbios: true,
            bmc_hostname: None,
        }
    }
}

fn bad(key: &'static str, value: impl ToString, rule: impl Into<String>) -> ConfigError {
    ConfigError::Value {
        key,
        value: value.to_string(),
        rule: rule.into(),
    }
}

/// Parses a link-local IPv4 address (169.254.0.0/16, not .0.x or .255.x:
/// RFC 3927 reserves those).
pub fn link_local_ipv4(key: &'static str, text: &str) -> Result<Ipv4Addr, ConfigError> {
    let rule = "must be an IPv4 link-local address (169.254.0.0/16)";
    let addr: Ipv4Addr = text.parse().map_err(|_| bad(key, text, rule))?;
    if !addr.is_link_local() {
        return Err(bad(key, text, rule));
    }
    Ok(addr)
}

/// Parses a link-local IPv6 address (fe80::/10).
pub fn link_local_ipv6(key: &'static str, text: &str) -> Result<Ipv6Addr, ConfigError> {
    let rule = "must be an IPv6 link-local address (fe80::/10)";
    let addr: Ipv6Addr = text.parse().map_err(|_| bad(key, text, rule))?;
    if addr.segments()[0] & 0xffc0 != 0xfe80 {
        return Err(bad(key, text, rule));
    }
    Ok(addr)
}

fn ranged(key: &'static str, v: u64, lo: u64, hi: u64, unit: &str) -> Result<u64, ConfigError> {
    if v < lo || v > hi {
        return Err(bad(key, v, format!("must be {lo} to {hi}{unit}")));
    }
    Ok(v)
}

fn port(key: &'static str, v: u32) -> Result<u16, ConfigError> {
    u16::try_from(v)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| bad(key, v, "must be a TCP port, 1 to 65535"))
}

/// Checks an interface name the way the kernel does.
pub fn interface_name(key: &'static str, text: &str) -> Result<String, ConfigError> {
    crate::frames::check_ifname(text).map_err(|_| {
        bad(
            key,
            format!("{text:?}"),
            "must be an interface name of 1 to 15 bytes without '/'",
        )
    })?;
    Ok(text.to_owned())
}

impl ConfigFile {
    /// Parses TOML text; `path` is only for messages.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_owned(),
            message: syntax_message(&e, text),
        })
    }

    /// Reads `path`.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Checks every value and applies it over the defaults.
    pub fn resolve(self) -> Result<ShimConfig, ConfigError> {
        let mut c = ShimConfig::default();
        let core = &mut c.core;
        if let Some(v) = self.interface {
            c.interface = interface_name("interface", &v)?;
            c.given.interface = true;
        }
        c.smbios = self.smbios.unwrap_or(true);
        if let Some(v) = self.state_dir {
            if !v.is_absolute() {
                return Err(bad("state_dir", v.display(), "must be an absolute path"));
            }
            c.state_dir = v;
        }
        c.audit_log = self.audit_log;
        c.pcap = self.pcap;
        if let Some(v) = self.hosts_file {
            c.hosts_file = v;
        }
        if let Some(v) = self.mac {
            c.mac = Some(parse_mac(&v).ok_or_else(|| {
                bad(
                    "mac",
                    &v,
                    "must be a unicast MAC address like 02:00:00:00:00:01",
                )
            })?);
        }
        c.bootstrap = self.bootstrap;
        c.credential = self.credential;
        if let Some(v) = self.ipv4 {
            core.ipv4 = v;
        }
        if let Some(v) = self.ipv6 {
            core.ipv6 = v;
        }
        if !core.ipv4 && !core.ipv6 {
            return Err(bad("ipv4", false, "ipv4 and ipv6 cannot both be false"));
        }
        if let Some(v) = self.bmc_ipv4 {
            core.bmc_ipv4 = link_local_ipv4("bmc_ipv4", &v)?;
            c.given.bmc_ipv4 = true;
        }
        if let Some(v) = self.host_ipv4 {
            let a = link_local_ipv4("host_ipv4", &v)?;
            if a == core.bmc_ipv4 {
                return Err(bad("host_ipv4", &v, "must differ from bmc_ipv4"));
            }
            core.host_ipv4 = Some(a);
            c.given.host_ipv4 = true;
        }
        if let Some(v) = self.bmc_ipv6 {
            core.bmc_ipv6 = Some(link_local_ipv6("bmc_ipv6", &v)?);
            c.given.bmc_ipv6 = true;
        }
        if let Some(v) = self.tls_port {
            core.tls_port = port("tls_port", v)?;
        }
        if let Some(v) = self.plain_port {
            core.plain_port = port("plain_port", v)?;
        }
        if core.tls_port == core.plain_port {
            return Err(bad(
                "plain_port",
                core.plain_port,
                "must differ from tls_port",
            ));
        }
        if let Some(v) = self.heartbeat_secs {
            core.heartbeat = Duration::from_secs(ranged("heartbeat_secs", v, 1, 3600, " seconds")?);
        }
        if let Some(v) = self.heartbeat_misses {
            core.heartbeat_misses = ranged("heartbeat_misses", v, 1, 100, "")? as u8;
        }
        if let Some(v) = self.connect_timeout_secs {
            core.connect_timeout =
                Duration::from_secs(ranged("connect_timeout_secs", v, 1, 300, " seconds")?);
        }
        if let Some(v) = self.handshake_timeout_secs {
            core.handshake_timeout =
                Duration::from_secs(ranged("handshake_timeout_secs", v, 1, 300, " seconds")?);
        }
        if let Some(v) = self.welcome_timeout_secs {
            core.welcome_timeout =
                Duration::from_secs(ranged("welcome_timeout_secs", v, 1, 300, " seconds")?);
        }
        if let Some(v) = self.legacy_plain {
            core.legacy_plain = v;
        }
        if let Some(v) = self.backoff_min_secs {
            core.backoff_min =
                Duration::from_secs(ranged("backoff_min_secs", v, 1, 3600, " seconds")?);
        }
        if let Some(v) = self.backoff_max_secs {
            core.backoff_max =
                Duration::from_secs(ranged("backoff_max_secs", v, 1, 86_400, " seconds")?);
        }
        if core.backoff_max < core.backoff_min {
            return Err(bad(
                "backoff_max_secs",
                core.backoff_max.secs(),
                format!(
                    "must be at least backoff_min_secs ({})",
                    core.backoff_min.secs()
                ),
            ));
        }
        if let Some(v) = self.race {
            core.race = v;
        }
        if let Some(v) = self.race_delay_ms {
            core.race_delay = Duration::from_millis(ranged("race_delay_ms", v, 10, 10_000, " ms")?);
        }
        let hostname = self.hostname.or_else(system_hostname);
        if let Some(v) = hostname {
            if v.is_empty() || v.len() > 64 || !v.chars().all(|ch| ch.is_ascii_graphic()) {
                return Err(bad(
                    "hostname",
                    format!("{v:?}"),
                    "must be 1 to 64 printable ASCII characters",
                ));
            }
            // Config::hostname is 'static: the one config of a process lives
            // as long as the process.
            core.hostname = Box::leak(v.into_boxed_str());
        }
        Ok(c)
    }
}

/// The system's host name, when it is usable in HELLO.
fn system_hostname() -> Option<String> {
    let name = nix::unistd::gethostname().ok()?.into_string().ok()?;
    let ok = !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_graphic());
    ok.then_some(name)
}

/// toml's message with the line number, without its multi-line excerpt.
fn syntax_message(e: &toml::de::Error, text: &str) -> String {
    match e.span() {
        Some(span) => {
            let line = text
                .get(..span.start)
                .map(|s| s.matches('\n').count() + 1)
                .unwrap_or(0);
            format!("line {line}: {}", e.message())
        }
        None => e.message().to_owned(),
    }
}

/// Loads the config: `explicit` must exist; without it the default file is
/// used when present, else the defaults.
pub fn load(explicit: Option<&Path>) -> Result<ShimConfig, ConfigError> {
    match explicit {
        Some(p) => ConfigFile::read(p)?.resolve(),
        None => {
            let p = Path::new(DEFAULT_CONFIG);
            if p.exists() {
                ConfigFile::read(p)?.resolve()
            } else {
                ConfigFile::default().resolve()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::wire::Ipv4Address;

    fn resolve(text: &str) -> Result<ShimConfig, ConfigError> {
        ConfigFile::parse(Path::new("test.toml"), text)?.resolve()
    }

    #[test]
    fn an_empty_file_gives_the_design_defaults() {
        let c = resolve("").unwrap();
        let system = system_hostname().unwrap_or_else(|| "host".to_owned());
        assert_eq!(
            c.core,
            Config {
                hostname: Box::leak(system.into_boxed_str()),
                ..Config::default()
            }
        );
        assert_eq!(c.interface, "idrac");
        assert_eq!(c.state_dir, Path::new("/var/lib/bmclink"));
        assert_eq!(c.hosts_file, Path::new("/etc/hosts"));
    }

    #[test]
    fn every_key_is_applied() {
        let c = resolve(
            r#"
            interface = "usb0"
            state_dir = "/tmp/x"
            audit_log = "/tmp/a.jsonl"
            pcap = "/tmp/c.pcap"
            hosts_file = "/tmp/hosts"
            mac = "02:00:00:00:00:09"
            ipv4 = true
            ipv6 = false
            bmc_ipv4 = "169.254.0.1"
            host_ipv4 = "169.254.0.5"
            bmc_ipv6 = "fe80::1"
            tls_port = 6443
            plain_port = 6080
            heartbeat_secs = 30
            heartbeat_misses = 5
            connect_timeout_secs = 7
            backoff_min_secs = 2
            backoff_max_secs = 120
            race = true
            race_delay_ms = 300
            hostname = "node7"
            "#,
        )
        .unwrap();
        assert_eq!(c.interface, "usb0");
        assert_eq!(c.mac, Some([2, 0, 0, 0, 0, 9]));
        assert!(!c.core.ipv6);
        assert_eq!(c.core.bmc_ipv4, Ipv4Address::new(169, 254, 0, 1));
        assert_eq!(c.core.host_ipv4, Some(Ipv4Address::new(169, 254, 0, 5)));
        assert_eq!(c.core.bmc_ipv6, Some("fe80::1".parse().unwrap()));
        assert_eq!((c.core.tls_port, c.core.plain_port), (6443, 6080));
        assert_eq!(c.core.heartbeat, Duration::from_secs(30));
        assert_eq!(c.core.heartbeat_misses, 5);
        assert_eq!(c.core.backoff_max, Duration::from_secs(120));
        assert!(c.core.race);
        assert_eq!(c.core.race_delay, Duration::from_millis(300));
        assert_eq!(c.core.hostname, "node7");
    }

    #[test]
    fn a_bad_address_names_the_key_and_the_accepted_range() {
        let e = resolve("bmc_ipv4 = \"10.0.0.1\"").unwrap_err().to_string();
        assert_eq!(
            e,
            "bmc_ipv4 = 10.0.0.1: must be an IPv4 link-local address (169.254.0.0/16)"
        );
        let e = resolve("bmc_ipv6 = \"2001:db8::1\"")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("bmc_ipv6 = 2001:db8::1: must be an IPv6 link-local"),
            "{e}"
        );
        let e = resolve("host_ipv4 = \"169.254.1.1\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("must differ from bmc_ipv4"), "{e}");
    }

    #[test]
    fn out_of_range_numbers_name_the_range() {
        let e = resolve("tls_port = 70000").unwrap_err().to_string();
        assert_eq!(e, "tls_port = 70000: must be a TCP port, 1 to 65535");
        let e = resolve("heartbeat_secs = 0").unwrap_err().to_string();
        assert_eq!(e, "heartbeat_secs = 0: must be 1 to 3600 seconds");
        let e = resolve("plain_port = 5443").unwrap_err().to_string();
        assert!(e.contains("must differ from tls_port"), "{e}");
        let e = resolve("backoff_min_secs = 30\nbackoff_max_secs = 10")
            .unwrap_err()
            .to_string();
        assert!(e.contains("at least backoff_min_secs (30)"), "{e}");
        let e = resolve("ipv4 = false\nipv6 = false")
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot both be false"), "{e}");
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_rejected_with_the_line() {
        let e = resolve("\nheartbeat = 10").unwrap_err().to_string();
        assert!(
            e.contains("line 2") && e.contains("unknown field `heartbeat`"),
            "{e}"
        );
        let e = resolve("race = \"yes\"").unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("bool"), "{e}");
        let e = resolve("mac = \"01:00:5e:00:00:01\"")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("mac = 01:00:5e:00:00:01: must be a unicast MAC"),
            "{e}"
        );
        let e = resolve("interface = \"much-too-long-name\"")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("interface = \"much-too-long-name\""), "{e}");
    }

    #[test]
    fn the_file_says_which_type42_values_it_sets() {
        let c = resolve("").unwrap();
        assert_eq!(c.given, Given::default());
        assert!(c.smbios);
        let c =
            resolve("interface = \"usb0\"\nbmc_ipv4 = \"169.254.0.1\"\nsmbios = false").unwrap();
        assert_eq!(
            c.given,
            Given {
                interface: true,
                bmc_ipv4: true,
                ..Given::default()
            }
        );
        assert!(!c.smbios);
    }

    #[test]
    fn an_explicit_config_file_that_is_missing_is_an_error() {
        let e = load(Some(Path::new("/nonexistent/bmclink.toml")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/bmclink.toml"), "{e}");
    }
}
