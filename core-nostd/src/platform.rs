//! The platform boundary: everything the core needs from the world.
//!
//! This is the one file a firmware engineer reads to port bmclink. The core
//! owns every decision and every byte on the wire; a platform only moves
//! Ethernet frames, tells time, keeps a few small records and answers a few
//! questions about the host. The Linux shim, the simulator in `tests/` and a
//! firmware rig each implement these traits once.
//!
//! All traits are object-safe-ish and never called re-entrantly by the core;
//! none blocks. The agent itself uses [`Nic`], not [`Frames`]: frames are
//! handed to it and taken from it, and [`Frames`] (with [`WaitAsync`]) is
//! the drivers', which move frames and wait between two steps.
//!
//! This file imports nothing from the rest of the crate (`cargo xtask
//! modules` checks it): what the core reports, its audit events and its
//! status, reach the platform as the type parameters of [`Audit`] and
//! [`StatusSink`]; the crate root names them in its `Platform` bound
//! (`Audit<AuditEvent> + StatusSink<Status>`).

use heapless::String;
use smoltcp::time::Instant;

/// Largest Ethernet frame the core sends or accepts, without FCS:
/// 1500 bytes of IP MTU + 14 bytes of Ethernet header.
pub const MAX_FRAME_LEN: usize = 1514;

/// Why [`Frames::wait`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Wake {
    /// A frame may be ready, or the deadline passed; the core polls again.
    Ready,
    /// The platform asks the agent to end (SIGTERM, end of a simulation):
    /// the agent says BYE, flushes its records and returns.
    Stop,
}

/// The network interface as the agent itself sees it: its address and its
/// carrier. The agent is handed frames and asked for frames
/// (`Agent::handle_frame`, `Agent::poll_transmit`); it never reads or
/// writes the wire itself, so this is all of the wire it needs.
pub trait Nic {
    /// The hardware address the core uses as its own.
    fn mac(&self) -> [u8; 6];

    /// Whether the link is up (carrier on the USBNIC).
    fn link_up(&self) -> bool;
}

/// Raw Ethernet frames on the USBNIC (or a TAP device, or a simulated wire),
/// for the drivers (`drive::run`, `drive::run_async`, `drive::step`):
/// they move frames between this and the agent and wait here between
/// steps. A platform that drives the agent with a loop of its own need not
/// implement it.
pub trait Frames: Nic {
    /// Receives one frame (destination MAC first, no FCS) into `buf`, without
    /// blocking. Returns its length, or `None` when no frame is waiting. A
    /// frame longer than `buf` is dropped by the platform.
    fn recv(&mut self, buf: &mut [u8]) -> Option<usize>;

    /// Sends one frame (destination MAC first, no FCS, at most
    /// [`MAX_FRAME_LEN`] bytes). Best effort: a frame that cannot be sent is
    /// dropped, as a wire would.
    fn send(&mut self, frame: &[u8]);

    /// Blocks until a frame may be ready or `deadline` has passed (`None`: no
    /// deadline, wait for a frame or a stop request). Spurious returns are
    /// fine. A simulator advances its virtual clock here.
    fn wait(&mut self, deadline: Option<Instant>) -> Wake;
}

/// [`Frames::wait`] for an executor (embassy and the like), for
/// `drive::run_async`: the agent is then one task, and the executor runs
/// others while it waits. A platform driven only by the blocking `drive::run`, or
/// by a loop of its own around the agent's calls, need not implement it.
pub trait WaitAsync {
    /// Completes when a frame may be ready or `deadline` has passed, as
    /// [`Frames::wait`] returns.
    fn wait_async(&mut self, deadline: Option<Instant>)
        -> impl core::future::Future<Output = Wake>;
}

/// Time.
pub trait Clock {
    /// Monotonic time since an arbitrary origin.
    fn now(&self) -> Instant;

    /// Wall-clock time in seconds since the Unix epoch, if the platform knows
    /// it. Certificate validity is checked against it; `None` skips only the
    /// expiry check, never authentication.
    fn unix_time(&self) -> Option<u64>;
}

/// The small persistent records the core keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Record {
    /// The link record: whether the host side was configured once, and how.
    Link,
    /// The client identity's P-256 private key (a secret: 0600 on disk).
    IdentityKey,
    /// The client identity's self-signed certificate (DER).
    IdentityCert,
    /// The pinned BMC certificate fingerprint (SHA-256).
    BmcPin,
    /// Cached BMC capabilities from the last WELCOME.
    BmcCaps,
    /// The per-install secret for RFC 7217 stable IPv6 identifiers (a secret).
    StableSecret,
    /// The BMC certificate fingerprint the administrator gave
    /// (`bmclink install --bmc-fingerprint`, read from the BMC's own UI):
    /// a trust source the first enrollment must match (DESIGN §5a).
    AdminFingerprint,
}

impl Record {
    /// Every record, for tools that list or erase them all.
    pub const ALL: [Record; 7] = [
        Record::Link,
        Record::IdentityKey,
        Record::IdentityCert,
        Record::BmcPin,
        Record::BmcCaps,
        Record::StableSecret,
        Record::AdminFingerprint,
    ];

    /// A short stable name, used by the Linux shim as the file name.
    pub const fn name(self) -> &'static str {
        match self {
            Record::Link => "link",
            Record::IdentityKey => "identity.key",
            Record::IdentityCert => "identity.crt",
            Record::BmcPin => "bmc.pin",
            Record::BmcCaps => "bmc.caps",
            Record::StableSecret => "stable.secret",
            Record::AdminFingerprint => "bmc.fingerprint",
        }
    }

    /// Whether the record is secret (written 0600, never logged).
    pub const fn is_secret(self) -> bool {
        matches!(self, Record::IdentityKey | Record::StableSecret)
    }
}

/// A [`Store`] failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum StoreError {
    /// The medium failed (I/O error, flash error).
    Io(Record),
    /// The stored record is larger than the caller's buffer.
    TooLarge(Record),
    /// The stored record exists but does not decode: never silently reset.
    Corrupt(Record),
}

/// Small persistent records, as opaque bytes. The core encodes and decodes
/// them (see [`crate::records`]); a store only keeps bytes and must write
/// atomically (a reader sees the old record or the new one, never half).
pub trait Store {
    /// Loads `record` into `buf`; `Ok(None)` when it does not exist.
    fn load(&mut self, record: Record, buf: &mut [u8]) -> Result<Option<usize>, StoreError>;
    /// Replaces `record` atomically.
    fn save(&mut self, record: Record, data: &[u8]) -> Result<(), StoreError>;
    /// Removes `record`; removing a missing record is not an error.
    fn erase(&mut self, record: Record) -> Result<(), StoreError>;
}

/// What the host OS says about the USBNIC, read fresh on every call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct HostFacts {
    /// The host OS already carries an IPv4 address on the USBNIC.
    pub ipv4_present: bool,
    /// The host OS already carries an IPv6 address (other than none) on it.
    pub ipv6_present: bool,
    /// The host's IPv6 stack is enabled on the USBNIC (`disable_ipv6 = 0`).
    pub ipv6_enabled: bool,
}

/// The host operating system's view of the USBNIC.
pub trait HostNet {
    /// Current facts about the interface.
    fn facts(&mut self) -> HostFacts;

    /// Whether the facts (or the carrier) may have changed since this was
    /// last asked. `None`, the default: the platform cannot tell, and the
    /// core reads [`HostNet::facts`] every second, which also wakes it
    /// every second. `Some`: the platform is told of changes (Linux:
    /// rtnetlink) and its `wait` returns when one comes; the core then
    /// reads the facts at once on `Some(true)` and otherwise once a minute,
    /// for changes nobody announces. Called on every round of the agent's
    /// timers, so it must be cheap.
    fn facts_changed(&mut self) -> Option<bool> {
        None
    }
}

/// What the BMC publishes on the trusted host-local bootstrap channel
/// (DSP0270's IPMI-over-KCS analogue).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BmcFacts {
    /// SHA-256 fingerprint of the BMC's TLS certificate, when it has TLS.
    pub fingerprint: Option<[u8; 32]>,
    /// Firmware version, e.g. `[3, 30, 30, 30]`.
    pub firmware: [u8; 4],
    /// The firmware offers the TLS channel on the USBNIC.
    pub tls: bool,
    /// The firmware supports IPv6 on the USBNIC.
    pub ipv6_usbnic: bool,
}

/// Longest one-time account name the core reads (a `str8` in ENROLL).
pub const ACCOUNT_NAME_MAX: usize = 255;
/// Longest one-time account secret the core reads (DSP0270 gives 16 bytes).
pub const ACCOUNT_SECRET_MAX: usize = 64;

/// The trusted host-local channel to the BMC, used at install and enrollment.
pub trait Bootstrap {
    /// The BMC's published facts, or `None` when the channel does not answer
    /// (or what it gave cannot be read: that is no evidence of anything).
    fn bmc_facts(&mut self) -> Option<BmcFacts>;
    /// Copies the one-time enrollment account (DESIGN §5a) into `name` and
    /// `secret` and returns their lengths; `None` when there is none.
    /// Reading does not use it up: the agent calls
    /// [`Bootstrap::retire_account`] once the enrollment succeeded or the BMC
    /// refused the secret, so a dropped connection costs only a retry.
    fn enrollment_account(&mut self, name: &mut [u8], secret: &mut [u8]) -> Option<(usize, usize)>;
    /// The account is spent (`why` is [`Retire::Enrolled`]: erase the
    /// secret and, where the channel supports it, disable bootstrapping on
    /// the BMC, as DSP0270's `[0x52, 0x00]` does) or refused
    /// ([`Retire::Refused`]: erase the secret only). The agent calls it at
    /// most once per account, after the BMC's proven ENROLLED or its
    /// bad-credential REJECT, and audits what it returns.
    fn retire_account(&mut self, why: Retire) -> Retired;
}

/// Why the agent retires the one-time account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Retire {
    /// Enrollment succeeded: the BMC proved the secret (ENROLLED).
    Enrolled,
    /// The BMC refused the secret (REJECT bad-credential).
    Refused,
}

/// What retiring the account did on the bootstrap channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Retired {
    /// The host's copy is erased; there is nothing to disable on this
    /// channel (a file, a rig's built-in account), or the account was refused.
    Erased,
    /// The BMC disabled bootstrapping (or had it disabled already).
    BootstrapDisabled,
    /// The BMC did not disable bootstrapping: no answer, an error, or it
    /// does not implement the disable request.
    BootstrapNotDisabled,
}

/// The sink for the core's audit events (syslog/journald on Linux, a list
/// in tests). `E` is the core's event type, `audit::AuditEvent`: it formats
/// itself (`Display`) as the one-line text and gives its stable id and
/// severity (`AuditEvent::id`, `AuditEvent::severity`).
pub trait Audit<E: ?Sized> {
    /// Records one event.
    fn record(&mut self, now: Instant, event: &E);
}

/// Where the agent's status goes whenever it changes (a session came up or
/// went down). `S` is the core's `agent::Status`, plain data. The Linux
/// shim writes it where `bmclink status` reads it; the default ignores it.
pub trait StatusSink<S: ?Sized> {
    /// The status changed to `status`.
    fn status(&mut self, status: &S) {
        let _ = status;
    }
}

/// Longest OS event ID kept, in bytes (`"BL2001"`, `"kernel"`).
pub const OS_EVENT_ID_LEN: usize = 16;
/// Longest OS event text kept, in bytes; longer texts are cut at a
/// character boundary.
pub const OS_EVENT_TEXT_LEN: usize = 160;

/// One OS event for the BMC's log, as the platform hands it over.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OsEvent {
    /// Severity code (the audit severity code: 0 error, 1 warning, 2 notice,
    /// 3 info).
    pub severity: u8,
    /// Stable ID.
    pub id: String<OS_EVENT_ID_LEN>,
    /// One-line text.
    pub text: String<OS_EVENT_TEXT_LEN>,
}

impl OsEvent {
    /// An event from borrowed strings, each cut to its limit at a character
    /// boundary.
    pub fn new(severity: u8, id: &str, text: &str) -> Self {
        OsEvent {
            severity,
            id: truncated(id),
            text: truncated(text),
        }
    }
}

fn truncated<const N: usize>(s: &str) -> String<N> {
    let mut out = String::new();
    for c in s.chars() {
        if out.push(c).is_err() {
            break;
        }
    }
    out
}

/// The source of OS events for the BMC's log (DESIGN §5).
pub trait OsEvents {
    /// The next OS event, if one is waiting. The agent takes events
    /// whenever it runs, queues them (bounded, the oldest dropped and
    /// counted on overflow) and delivers them in order, at least once,
    /// while a session is up. The default has none.
    fn next_os_event(&mut self) -> Option<OsEvent> {
        None
    }
}
