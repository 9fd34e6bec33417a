//! [`LinuxPlatform`]: the Linux pieces composed into one value that
//! implements every trait of `bmclink_core::platform` (and so `Platform`),
//! and [`build`], which makes one from the resolved config and the backend
//! chosen on the command line.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;

use bmclink_core::agent::Status;
use bmclink_core::audit::{AuditEvent, StoreEvent};
use bmclink_core::platform::{
    Audit, BmcFacts, Bootstrap, Clock, Frames, HostFacts, HostNet, Nic, OsEvents, Record, Retire,
    Retired, Store, StoreError, Wake,
};
use rand_core::{CryptoRng, OsRng, RngCore};
use smoltcp::time::Instant;

use crate::audit::LinuxAudit;
use crate::clock::LinuxClock;
use crate::config::ShimConfig;
use crate::frames::{local_mac, FramesError, PacketFrames, StopSignal, TapFrames, Wakers};
use crate::hostnet::{HostWatch, LinuxHostNet};
use crate::hosts::HostsFile;
use crate::ipmi::BootstrapSource;
use crate::pcap::PcapFrames;
use crate::private_file::{open_private, Existing, PrivateFileError};
use crate::session::{ReportError, SessionReport, SessionView};
use crate::store::FileStore;

/// Which `Frames` backend `bmclink run` uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// `--tap NAME`: a TAP device (tests, the kernel as the BMC's stack).
    Tap(String),
    /// `--iface NAME`: an AF_PACKET socket on the real USBNIC.
    Iface(String),
}

impl Backend {
    /// The device the frames go through.
    pub fn device(&self) -> &str {
        match self {
            Backend::Tap(n) | Backend::Iface(n) => n,
        }
    }

    /// The interface whose host facts ([`HostNet`]) the policy reads: the
    /// AF_PACKET interface itself; for a TAP, the configured
    /// USBNIC name, since the kernel side of a TAP plays the BMC, not the host
    /// (in a test namespace that interface is absent: a host without IP).
    pub fn host_interface<'a>(&'a self, cfg: &'a ShimConfig) -> &'a str {
        match self {
            Backend::Iface(n) => n,
            Backend::Tap(_) => &cfg.interface,
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backend::Tap(n) => write!(f, "TAP device {n}"),
            Backend::Iface(n) => write!(f, "interface {n} (AF_PACKET)"),
        }
    }
}

/// No bootstrap channel (no IPMI device and no facts file): it never
/// answers, which the core treats as "no channel".
#[derive(Debug, Default, Clone, Copy)]
pub struct NoBootstrap;

impl Bootstrap for NoBootstrap {
    fn bmc_facts(&mut self) -> Option<BmcFacts> {
        None
    }
    fn enrollment_account(&mut self, _: &mut [u8], _: &mut [u8]) -> Option<(usize, usize)> {
        None
    }
    fn retire_account(&mut self, _why: Retire) -> Retired {
        Retired::Erased
    }
}

/// No device: the platform of the commands that use the core without a
/// link (`install`, `cert renew`). Sends nothing, receives nothing, and
/// `wait` stops at once.
#[derive(Debug, Clone, Copy)]
pub struct NoFrames {
    /// The MAC it reports.
    pub mac: [u8; 6],
}

impl Nic for NoFrames {
    fn mac(&self) -> [u8; 6] {
        self.mac
    }
    fn link_up(&self) -> bool {
        false
    }
}

impl Frames for NoFrames {
    fn recv(&mut self, _buf: &mut [u8]) -> Option<usize> {
        None
    }
    fn send(&mut self, _frame: &[u8]) {}
    fn wait(&mut self, _deadline: Option<Instant>) -> Wake {
        Wake::Stop
    }
}

/// Where the agent's status goes: `status.json` and P10's hosts block
/// through [`SessionReport`], with the BMC's configured IPv4 address (the
/// core's status carries the addresses it learns, not the configured one).
#[derive(Debug)]
pub struct StatusSink {
    /// The status and hosts files.
    pub report: SessionReport,
    /// The BMC's IPv4 address from the config.
    pub bmc_ipv4: Ipv4Addr,
    /// The malformed hosts block already audited (its line), so BL5004 is
    /// said once until the block is fixed.
    pub hosts_block_audited: Option<usize>,
}

impl StatusSink {
    /// Publishes `status`: a session up writes its view, otherwise the
    /// status says "not connected" and the hosts block goes.
    pub fn publish(&mut self, status: &Status) -> Result<(), ReportError> {
        match (status.family, status.channel, status.firmware) {
            (Some(family), Some(channel), Some(bmc_firmware)) => {
                self.report.connected(&SessionView {
                    family,
                    channel,
                    bmc_firmware,
                    host_ipv4: status.host_ipv4,
                    host_ipv6: status.host_ipv6,
                    bmc_ipv4: (family == bmclink_core::Family::V4).then_some(self.bmc_ipv4),
                    bmc_ipv6: status.bmc_ipv6,
                    features: status.features(),
                    trust: status.trust,
                })
            }
            _ => self.report.waiting(),
        }
    }
}

/// Every platform trait, on Linux.
pub struct LinuxPlatform {
    /// The frame backend (TAP, AF_PACKET, possibly pcap-wrapped, or a simulator's).
    pub frames: Box<dyn Frames>,
    /// The monotonic clock shared with the frame backend's `wait`.
    pub clock: LinuxClock,
    /// Records under the state directory.
    pub store: FileStore,
    /// Host facts about the USBNIC.
    pub hostnet: LinuxHostNet,
    /// The bootstrap channel.
    pub bootstrap: Box<dyn Bootstrap>,
    /// Audit sinks.
    pub audit: LinuxAudit,
    /// Where status changes go (`run` only).
    pub status: Option<StatusSink>,
}

impl std::fmt::Debug for LinuxPlatform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinuxPlatform")
            .field("mac", &crate::frames::format_mac(self.frames.mac()))
            .field("store", &self.store)
            .field("hostnet", &self.hostnet)
            .finish_non_exhaustive()
    }
}

/// [`build`] failed.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    /// The frame backend could not be opened.
    #[error(transparent)]
    Frames(#[from] FramesError),
    /// The pcap or audit file was refused (a symlink, another owner, ...)
    /// or could not be opened.
    #[error(transparent)]
    Private(#[from] PrivateFileError),
    /// The pcap file's header could not be written.
    #[error("cannot write {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Opens the backend and composes the platform: the agent's MAC from the
/// config or fresh, the pcap decorator when asked, syslog always, the
/// JSON-lines log when asked, stderr when `foreground`.
pub fn build(
    cfg: &ShimConfig,
    backend: &Backend,
    stop: Option<StopSignal>,
    foreground: bool,
) -> Result<LinuxPlatform, PlatformError> {
    // The files first: a refused --pcap or --audit-log stops the run
    // before any device is opened.
    let pcap = cfg
        .pcap
        .as_ref()
        .map(|p| open_private(p, Existing::Truncate).map(|f| (p.clone(), f)))
        .transpose()?;
    let audit = audit_sinks(cfg, foreground)?;
    let clock = LinuxClock::start();
    let mac = cfg.mac.unwrap_or_else(|| local_mac(&mut OsRng));
    // The host's change notifications: the facts are then read when the
    // kernel announces a change, not every second. Without them (a kernel
    // or sandbox without rtnetlink) the core polls, as on any platform.
    let iface = backend.host_interface(cfg);
    let watch = match HostWatch::open(&[iface, backend.device()]) {
        Ok(w) => Some(Arc::new(w)),
        Err(e) => {
            log::warn!("no rtnetlink notifications ({e}): host facts are read every second");
            None
        }
    };
    let wakers = Wakers {
        stop,
        host: watch.clone(),
    };
    let frames: Box<dyn Frames> = match backend {
        Backend::Tap(name) => {
            wrap_pcap(TapFrames::open(name, mac, clock)?.waking_on(wakers), pcap)?
        }
        Backend::Iface(name) => wrap_pcap(
            PacketFrames::open(name, mac, clock)?.waking_on(wakers),
            pcap,
        )?,
    };
    let mac = frames.mac();
    Ok(LinuxPlatform {
        frames,
        clock,
        store: FileStore::new(&cfg.state_dir),
        hostnet: LinuxHostNet::new(iface).watching(watch),
        bootstrap: bootstrap_of(cfg),
        audit,
        status: Some(StatusSink {
            report: SessionReport::new(&cfg.state_dir, Some(hosts_file(cfg)), mac)
                .with_bootstrap(BootstrapSource::for_host(cfg).describe()),
            bmc_ipv4: cfg.core.bmc_ipv4,
            hosts_block_audited: None,
        }),
    })
}

/// The journal of the hosts file's in-place writes, in the state directory.
pub const HOSTS_JOURNAL: &str = "hosts.journal";

/// The hosts file of `cfg`, its journal in the state directory.
pub fn hosts_file(cfg: &ShimConfig) -> HostsFile {
    HostsFile::new(&cfg.hosts_file)
        .with_bmc_hostname(cfg.bmc_hostname.as_deref())
        .with_journal(cfg.state_dir.join(HOSTS_JOURNAL))
}

impl LinuxPlatform {
    /// Takes what a status publication returned: a hosts-file failure is
    /// logged and does not stop the agent (a malformed block is also
    /// audited, BL5004, once until it is fixed); a status-file failure
    /// comes back.
    pub fn after_publish(&mut self, r: Result<(), ReportError>) -> Result<(), ReportError> {
        let Some(sink) = self.status.as_mut() else {
            return r;
        };
        let e = match r {
            Ok(()) => {
                sink.hosts_block_audited = None;
                return Ok(());
            }
            Err(e @ ReportError::Status { .. }) => return Err(e),
            Err(e) => e,
        };
        log::warn!("{e}");
        if let Some(block) = e.block() {
            let line = block.line();
            if sink.hosts_block_audited != Some(line) {
                sink.hosts_block_audited = Some(line);
                let event = AuditEvent::Store(StoreEvent::HostsBlockMalformed {
                    line: u32::try_from(line).unwrap_or(u32::MAX),
                });
                let now = self.clock.now();
                self.audit.record(now, &event);
            }
        }
        Ok(())
    }
}

fn bootstrap_of(cfg: &ShimConfig) -> Box<dyn Bootstrap> {
    let credential = cfg
        .credential
        .clone()
        .unwrap_or_else(|| cfg.state_dir.join(crate::bootstrap::ACCOUNT_FILE));
    match BootstrapSource::for_host(cfg) {
        // No bootstrap channel: the account `install --account` stored.
        BootstrapSource::None => {
            Box::new(crate::bootstrap::FileBootstrap::account_only(credential))
        }
        source => source.open(),
    }
}

/// The platform without a device for `install` and `cert renew`: the
/// store, the bootstrap, syslog and the JSON-lines audit log of `cfg`,
/// stderr when `foreground`.
pub fn offline(cfg: &ShimConfig, foreground: bool) -> Result<LinuxPlatform, PlatformError> {
    let audit = audit_sinks(cfg, foreground)?;
    Ok(LinuxPlatform {
        frames: Box::new(NoFrames {
            mac: cfg.mac.unwrap_or_else(|| local_mac(&mut OsRng)),
        }),
        clock: LinuxClock::start(),
        store: FileStore::new(&cfg.state_dir),
        hostnet: LinuxHostNet::new(&cfg.interface),
        bootstrap: bootstrap_of(cfg),
        audit,
        status: None,
    })
}

/// Syslog always, stderr when `foreground`, the JSON-lines log when asked.
fn audit_sinks(cfg: &ShimConfig, foreground: bool) -> Result<LinuxAudit, PlatformError> {
    let mut audit = LinuxAudit::new().with_journal_or_syslog();
    if foreground {
        audit = audit.with_stderr();
    }
    if let Some(p) = &cfg.audit_log {
        audit = audit.with_json_file(p)?;
    }
    Ok(audit)
}

fn wrap_pcap<F: Frames + 'static>(
    f: F,
    pcap: Option<(PathBuf, std::fs::File)>,
) -> Result<Box<dyn Frames>, PlatformError> {
    Ok(match pcap {
        Some((path, file)) => Box::new(
            PcapFrames::with_file(f, file)
                .map_err(|source| PlatformError::File { path, source })?,
        ),
        None => Box::new(f),
    })
}

impl Nic for LinuxPlatform {
    fn mac(&self) -> [u8; 6] {
        self.frames.mac()
    }
    fn link_up(&self) -> bool {
        self.frames.link_up()
    }
}

impl Frames for LinuxPlatform {
    fn recv(&mut self, buf: &mut [u8]) -> Option<usize> {
        self.frames.recv(buf)
    }
    fn send(&mut self, frame: &[u8]) {
        self.frames.send(frame)
    }
    fn wait(&mut self, deadline: Option<Instant>) -> Wake {
        self.frames.wait(deadline)
    }
}

impl Clock for LinuxPlatform {
    fn now(&self) -> Instant {
        self.clock.now()
    }
    fn unix_time(&self) -> Option<u64> {
        self.clock.unix_time()
    }
}

impl Store for LinuxPlatform {
    fn load(&mut self, record: Record, buf: &mut [u8]) -> Result<Option<usize>, StoreError> {
        self.store.load(record, buf)
    }
    fn save(&mut self, record: Record, data: &[u8]) -> Result<(), StoreError> {
        self.store.save(record, data)
    }
    fn erase(&mut self, record: Record) -> Result<(), StoreError> {
        self.store.erase(record)
    }
}

impl HostNet for LinuxPlatform {
    fn facts(&mut self) -> HostFacts {
        self.hostnet.facts()
    }
    fn facts_changed(&mut self) -> Option<bool> {
        self.hostnet.facts_changed()
    }
}

impl Bootstrap for LinuxPlatform {
    fn bmc_facts(&mut self) -> Option<BmcFacts> {
        self.bootstrap.bmc_facts()
    }
    fn enrollment_account(&mut self, name: &mut [u8], secret: &mut [u8]) -> Option<(usize, usize)> {
        self.bootstrap.enrollment_account(name, secret)
    }
    fn retire_account(&mut self, why: Retire) -> Retired {
        self.bootstrap.retire_account(why)
    }
}

impl Audit<AuditEvent> for LinuxPlatform {
    fn record(&mut self, now: Instant, event: &AuditEvent) {
        self.audit.record(now, event)
    }
}

/// The shim forwards no OS events to the BMC (yet): the default, none.
impl OsEvents for LinuxPlatform {}

impl bmclink_core::platform::StatusSink<Status> for LinuxPlatform {
    fn status(&mut self, status: &Status) {
        if let Some(sink) = &mut self.status {
            let r = sink.publish(status);
            if let Err(e) = self.after_publish(r) {
                log::warn!("{e}");
            }
        }
    }
}

impl RngCore for LinuxPlatform {
    fn next_u32(&mut self) -> u32 {
        OsRng.next_u32()
    }
    fn next_u64(&mut self) -> u64 {
        OsRng.next_u64()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        OsRng.fill_bytes(dest)
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        OsRng.try_fill_bytes(dest)
    }
}

/// getrandom(2) is a CSPRNG.
impl CryptoRng for LinuxPlatform {}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_platform<P: bmclink_core::Platform>(_: &P) {}

    #[test]
    fn linux_platform_implements_every_platform_trait() {
        let t = tempfile::tempdir().unwrap();
        let cfg = ShimConfig {
            state_dir: t.path().join("state"),
            ..ShimConfig::default()
        };
        struct Wire;
        impl Nic for Wire {
            fn mac(&self) -> [u8; 6] {
                [2, 0, 0, 0, 0, 7]
            }
            fn link_up(&self) -> bool {
                true
            }
        }

        impl Frames for Wire {
            fn recv(&mut self, _: &mut [u8]) -> Option<usize> {
                None
            }
            fn send(&mut self, _: &[u8]) {}
            fn wait(&mut self, _: Option<Instant>) -> Wake {
                Wake::Stop
            }
        }
        let mut p = LinuxPlatform {
            frames: Box::new(Wire),
            clock: LinuxClock::start(),
            store: FileStore::new(&cfg.state_dir),
            hostnet: LinuxHostNet::new("lo"),
            bootstrap: Box::new(NoBootstrap),
            audit: LinuxAudit::new(),
            status: None,
        };
        assert_platform(&p);
        assert_eq!(p.mac(), [2, 0, 0, 0, 0, 7]);
        assert_eq!(p.wait(None), Wake::Stop);
        p.save(Record::BmcCaps, b"C\x01\x03\x1e\x1e\x1e\x05")
            .unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(p.load(Record::BmcCaps, &mut buf), Ok(Some(7)));
        assert!(p.facts().ipv4_present);
        assert_eq!(p.bmc_facts(), None);
        let (a, b) = (p.next_u64(), p.next_u64());
        assert_ne!(a, b);
    }

    #[test]
    fn host_facts_come_from_the_usbnic_never_from_the_taps_kernel_side() {
        let cfg = ShimConfig::default();
        assert_eq!(Backend::Iface("usb0".into()).host_interface(&cfg), "usb0");
        assert_eq!(Backend::Tap("tap0".into()).host_interface(&cfg), "idrac");
    }
}
