//! The read-only view of the policy for `status` and for tests.

use smoltcp::time::Instant;
use smoltcp::wire::Ipv4Address;

use super::{Features, RecordProblem, StayReason};
use crate::types::Family;

/// Where one family stands in the current round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Step {
    /// Nothing in progress.
    Idle,
    /// Waiting for an address result (IPv4 claim or use, IPv6 DAD).
    Address,
    /// IPv6 only: waiting for the BMC's address.
    Discover,
    /// Waiting for the TCP connection.
    Connecting,
    /// The TCP connection is up.
    Connected,
    /// Failed in this round; tried again in the next.
    Failed,
    /// B2: IPv4 waits for its next try while a session runs over IPv6.
    Waiting,
}

/// What the policy as a whole is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Phase {
    /// Waiting for [`super::Input::Start`]. Waits for input: no deadline.
    NotStarted,
    /// The link is down. Waits for [`super::Input::LinkUp`]: no deadline.
    LinkDown,
    /// Trying families (or connected: see [`PolicyState::connected`]).
    Trying,
    /// Every usable family failed; the next round starts at `until`.
    Backoff {
        /// When the next round starts.
        until: Instant,
    },
    /// No family is usable. Waits for an input that changes that (a new
    /// configuration, host facts, link record or BMC caps, or link down/up):
    /// no deadline.
    Stay(StayReason),
}

/// A snapshot of the policy (see [`super::Policy::state`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PolicyState {
    /// What the policy is doing.
    pub phase: Phase,
    /// IPv4's step in the current round.
    pub ipv4: Step,
    /// IPv6's step in the current round.
    pub ipv6: Step,
    /// The family with an established TCP connection, if any.
    pub connected: Option<Family>,
    /// The family of the session (WELCOME received), if any (P8).
    pub session: Option<Family>,
    /// P10: the features the session makes available (see
    /// [`super::Policy::features`]).
    pub features: Features,
    /// The bound IPv4 address, if any.
    pub ipv4_addr: Option<Ipv4Address>,
    /// The link record's address, if a link record exists.
    pub link_record: Option<Ipv4Address>,
    /// P3: why the recorded configuration is unusable, if it is.
    pub record_problem: Option<RecordProblem>,
    /// P7: whether IPv6 is known (caps) or believed (no answer) absent on
    /// the BMC's USBNIC.
    pub bmc_without_ipv6: bool,
    /// Consecutive failed rounds since the last reset of the backoff.
    pub backoff_step: u8,
    /// Audit events dropped because the driver did not drain them.
    pub audit_dropped: u16,
    /// Actions dropped because the driver did not drain them.
    pub actions_dropped: u16,
}
