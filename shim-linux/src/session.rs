//! What a session shows on the host: `status.json` for `bmclink status`, and
//! P10's hosts-file block (`idrac.local`, `drac.local`) while the session
//! runs over IPv4. The agent wiring calls [`SessionReport`] at each change.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use crate::hosts::BlockError;

use bmclink_core::policy::{Features, TrustSource};
use bmclink_core::{Channel, Family};

use crate::frames::format_mac;
use crate::hosts::HostsFile;
use crate::status::{Addresses, Feature, Status};
use crate::time::now_rfc3339;

/// A running session, as the agent knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionView {
    /// The family the session runs over.
    pub family: Family,
    /// Plain or TLS 1.3.
    pub channel: Channel,
    /// Firmware from WELCOME.
    pub bmc_firmware: [u8; 4],
    /// The host's claimed IPv4 address, if any.
    pub host_ipv4: Option<Ipv4Addr>,
    /// The host's IPv6 link-local address, if any.
    pub host_ipv6: Option<Ipv6Addr>,
    /// The BMC's IPv4 address, if known.
    pub bmc_ipv4: Option<Ipv4Addr>,
    /// The BMC's IPv6 address, if known.
    pub bmc_ipv6: Option<Ipv6Addr>,
    /// The P10 features this session offers (the core's
    /// [`Features::of_session`]): the status lists them by name and the
    /// hosts block is there exactly when `idrac.local` is one of them.
    pub features: Features,
    /// What the session's trust in the BMC rests on.
    pub trust: Option<TrustSource>,
}

/// A [`SessionReport`] update failed. The status file is written first, so
/// a hosts-file failure never keeps `bmclink status` stale.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The status file could not be written or removed.
    #[error("cannot write the status file under {dir}: {source}")]
    Status {
        /// The state directory.
        dir: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The hosts file's block could not be set or removed (a malformed
    /// block: [`ReportError::block`]).
    #[error("cannot update the bmclink block in {path}: {source}")]
    Hosts {
        /// The hosts file.
        path: PathBuf,
        /// The OS error, or the [`BlockError`] inside one.
        source: io::Error,
    },
}

impl ReportError {
    /// The malformed block a hosts-file failure is about, if that is it.
    pub fn block(&self) -> Option<&BlockError> {
        match self {
            ReportError::Hosts { source, .. } => BlockError::of(source),
            ReportError::Status { .. } => None,
        }
    }
}

/// Publishes session changes to the status file and the hosts file.
#[derive(Debug)]
pub struct SessionReport {
    state_dir: PathBuf,
    hosts: Option<HostsFile>,
    pid: u32,
    mac: [u8; 6],
    since: String,
    bootstrap: Option<String>,
}

fn addr<T: ToString>(a: Option<T>) -> Option<String> {
    a.map(|a| a.to_string())
}

impl SessionReport {
    /// Reports under `state_dir`; `hosts`: the hosts file to manage, if any.
    pub fn new(state_dir: impl Into<PathBuf>, hosts: Option<HostsFile>, mac: [u8; 6]) -> Self {
        SessionReport {
            state_dir: state_dir.into(),
            hosts,
            pid: std::process::id(),
            mac,
            since: now_rfc3339(),
            bootstrap: None,
        }
    }

    /// Names the bootstrap channel in every status written
    /// ([`crate::ipmi::BootstrapSource::describe`]).
    pub fn with_bootstrap(mut self, describe: String) -> Self {
        self.bootstrap = Some(describe);
        self
    }

    /// The state directory the status file is written under.
    pub fn state_dir(&self) -> &std::path::Path {
        &self.state_dir
    }

    fn base(&self) -> Status {
        Status {
            pid: self.pid,
            family: None,
            channel: None,
            tls_version: None,
            bmc_firmware: None,
            features: Features::NONE
                .names()
                .map(|(name, available)| Feature {
                    name: name.to_owned(),
                    available,
                })
                .collect(),
            addresses: Addresses {
                mac: Some(format_mac(self.mac)),
                ..Addresses::default()
            },
            since: self.since.clone(),
            trust: None,
            bootstrap: self.bootstrap.clone(),
        }
    }

    fn status_result(&self, r: io::Result<()>) -> Result<(), ReportError> {
        r.map_err(|source| ReportError::Status {
            dir: self.state_dir.clone(),
            source,
        })
    }

    /// The status result first, then the hosts one.
    fn both(&self, status: io::Result<()>, hosts: io::Result<()>) -> Result<(), ReportError> {
        self.status_result(status)?;
        hosts.map_err(|source| ReportError::Hosts {
            path: self
                .hosts
                .as_ref()
                .map(|h| h.path().to_owned())
                .unwrap_or_default(),
            source,
        })
    }

    /// Running, no session yet (or the session was lost): the status says
    /// "not connected" and the hosts block is removed.
    pub fn waiting(&mut self) -> Result<(), ReportError> {
        self.since = now_rfc3339();
        let status = self.base().write(&self.state_dir);
        let hosts = self.hosts.as_ref().map(|h| h.remove()).unwrap_or(Ok(()));
        self.both(status, hosts)
    }

    /// A session started: status with family, channel, firmware, features
    /// and addresses; the hosts block follows the features (P10: there
    /// exactly when the session offers `idrac.local`).
    pub fn connected(&mut self, s: &SessionView) -> Result<(), ReportError> {
        self.since = now_rfc3339();
        let [a, b, c, d] = s.bmc_firmware;
        let mut st = self.base();
        st.family = Some(s.family.to_string());
        st.channel = Some(s.channel.to_string());
        st.tls_version = match s.channel {
            Channel::Tls13 => Some("TLSv1.3".to_owned()),
            Channel::Plain => None,
        };
        st.bmc_firmware = Some(format!("{a}.{b}.{c}.{d}"));
        st.features = s
            .features
            .names()
            .map(|(name, available)| Feature {
                name: name.to_owned(),
                available,
            })
            .collect();
        st.addresses.host_ipv4 = addr(s.host_ipv4);
        st.addresses.host_ipv6 = addr(s.host_ipv6);
        st.addresses.bmc_ipv4 = addr(s.bmc_ipv4);
        st.addresses.bmc_ipv6 = addr(s.bmc_ipv6);
        st.trust = s.trust.map(|t| t.name().to_owned());
        let status = st.write(&self.state_dir);
        let names = s.features.contains(Features::BMC_LOCAL_NAMES);
        let hosts = match (&self.hosts, names, s.bmc_ipv4) {
            (None, ..) => Ok(()),
            (Some(h), true, Some(bmc)) => h.set(bmc),
            (Some(h), ..) => h.remove(),
        };
        self.both(status, hosts)
    }

    /// The agent stops: remove the hosts block and the status file.
    pub fn stopped(&mut self) -> Result<(), ReportError> {
        let hosts = self.hosts.as_ref().map(|h| h.remove()).unwrap_or(Ok(()));
        let status = Status::remove(&self.state_dir);
        self.both(status, hosts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::Observed;
    use std::fs;

    const HOSTS: &str = "127.0.0.1 localhost\n";

    fn rig() -> (tempfile::TempDir, SessionReport, PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let hosts = t.path().join("hosts");
        fs::write(&hosts, HOSTS).unwrap();
        let r = SessionReport::new(t.path(), Some(HostsFile::new(&hosts)), [2, 0, 0, 0, 0, 5]);
        (t, r, hosts)
    }

    fn view(family: Family) -> SessionView {
        SessionView {
            family,
            channel: Channel::Tls13,
            bmc_firmware: [3, 30, 30, 30],
            host_ipv4: Some(Ipv4Addr::new(169, 254, 1, 2)),
            host_ipv6: None,
            bmc_ipv4: Some(Ipv4Addr::new(169, 254, 1, 1)),
            bmc_ipv6: Some("fe80::1".parse().unwrap()),
            features: Features::of_session(Some(family)),
            trust: Some(TrustSource::Pin),
        }
    }

    fn observed(t: &tempfile::TempDir) -> Status {
        match Status::observe(t.path()).unwrap() {
            Observed::Running(s) => s,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_ipv4_session_maps_idrac_local_and_offers_every_feature() {
        let (t, mut r, hosts) = rig();
        r.connected(&view(Family::V4)).unwrap();
        assert!(fs::read_to_string(&hosts)
            .unwrap()
            .contains("169.254.1.1 idrac.local drac.local"));
        let s = observed(&t);
        assert_eq!(s.family.as_deref(), Some("IPv4"));
        assert_eq!(s.tls_version.as_deref(), Some("TLSv1.3"));
        assert_eq!(s.bmc_firmware.as_deref(), Some("3.30.30.30"));
        assert_eq!(s.addresses.mac.as_deref(), Some("02:00:00:00:00:05"));
        assert!(s.features.iter().all(|f| f.available));
    }

    #[test]
    fn an_ipv6_only_session_removes_the_block_and_reports_only_its_features() {
        let (t, mut r, hosts) = rig();
        r.connected(&view(Family::V4)).unwrap();
        r.connected(&view(Family::V6)).unwrap();
        assert_eq!(fs::read_to_string(&hosts).unwrap(), HOSTS);
        let s = observed(&t);
        assert_eq!(s.family.as_deref(), Some("IPv6"));
        assert_eq!(s.features.len(), 5);
        let offered: Vec<&str> = s
            .features
            .iter()
            .filter(|f| f.available)
            .map(|f| f.name.as_str())
            .collect();
        assert_eq!(offered, ["monitoring"]);
    }

    #[test]
    fn stopping_restores_the_hosts_file_and_removes_the_status() {
        let (t, mut r, hosts) = rig();
        r.waiting().unwrap();
        assert_eq!(observed(&t).family, None);
        r.connected(&view(Family::V4)).unwrap();
        r.stopped().unwrap();
        assert_eq!(fs::read_to_string(&hosts).unwrap(), HOSTS);
        assert_eq!(Status::observe(t.path()).unwrap(), Observed::NotRunning);
    }

    #[test]
    fn the_status_names_the_trust_source_and_the_bootstrap_channel() {
        let (t, r, _) = rig();
        let mut r = r.with_bootstrap("IPMI (DSP0270 over the kernel's IPMI device)".to_owned());
        r.waiting().unwrap();
        let s = observed(&t);
        assert_eq!(s.trust, None);
        assert_eq!(
            s.bootstrap.as_deref(),
            Some("IPMI (DSP0270 over the kernel's IPMI device)")
        );
        let mut v = view(Family::V4);
        v.trust = Some(TrustSource::EnrollmentAccount);
        r.connected(&v).unwrap();
        let s = observed(&t);
        assert_eq!(s.trust.as_deref(), Some("enrollment-account"));
        assert!(s
            .bootstrap
            .as_deref()
            .is_some_and(|b| b.starts_with("IPMI")));
        // A status file of an agent without these fields still reads.
        let text = fs::read_to_string(crate::status::path(t.path())).unwrap();
        let mut old: serde_json::Value = serde_json::from_str(&text).unwrap();
        old.as_object_mut().unwrap().remove("trust");
        old.as_object_mut().unwrap().remove("bootstrap");
        let back: Status = serde_json::from_value(old).unwrap();
        assert_eq!((back.trust, back.bootstrap), (None, None));
    }

    #[test]
    fn a_malformed_hosts_block_still_writes_the_status_and_names_the_block() {
        let (t, mut r, hosts) = rig();
        let bad = "127.0.0.1 localhost\n# BEGIN bmclink\n10.0.0.5 db\n";
        fs::write(&hosts, bad).unwrap();
        let e = r.connected(&view(Family::V4)).unwrap_err();
        assert_eq!(e.block(), Some(&BlockError::Unterminated { line: 2 }));
        assert!(e.to_string().contains("line 2"), "{e}");
        assert_eq!(observed(&t).family.as_deref(), Some("IPv4"));
        assert_eq!(fs::read_to_string(&hosts).unwrap(), bad);
    }
}
