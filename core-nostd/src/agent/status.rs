//! What the agent reports about itself (`bmclink status`, the simulator).

use smoltcp::time::Instant;
use smoltcp::wire::{Ipv4Address, Ipv6Address};

use crate::policy::{Features, TrustSource};

use crate::types::{Channel, Family};

/// The agent's view of its link and session, pushed to the platform through
/// [`crate::platform::StatusSink`] whenever it changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Status {
    /// The IPv4 link-local address in use, if any.
    pub host_ipv4: Option<Ipv4Address>,
    /// The IPv6 link-local address in use, if any.
    pub host_ipv6: Option<Ipv6Address>,
    /// The BMC's IPv6 address, once known.
    pub bmc_ipv6: Option<Ipv6Address>,
    /// The family of the session, while one is up.
    pub family: Option<Family>,
    /// The channel of the session, while one is up.
    pub channel: Option<Channel>,
    /// The BMC firmware version from WELCOME, while a session is up.
    pub firmware: Option<[u8; 4]>,
    /// WELCOME capability bits, while a session is up.
    pub caps: u8,
    /// The BMC's session number, while a session is up.
    pub session: u32,
    /// When the session started.
    pub since: Option<Instant>,
    /// Sessions started since the agent started.
    pub sessions: u32,
    /// What the current (or next) connection's trust in the BMC rests on.
    pub trust: Option<TrustSource>,
}

impl Status {
    /// Whether a session is up.
    pub fn is_up(&self) -> bool {
        self.family.is_some()
    }

    /// P10: the features available over the current session, from the
    /// session's family ([`Features::of_session`], the function the policy
    /// uses too), so the status cannot disagree with its own family.
    pub fn features(&self) -> Features {
        Features::of_session(self.family)
    }

    pub(crate) fn session_up(
        &mut self,
        now: Instant,
        family: Family,
        channel: Channel,
        est: &Established,
    ) {
        self.family = Some(family);
        self.channel = Some(channel);
        self.firmware = Some(est.firmware);
        self.caps = est.caps;
        self.session = est.session;
        self.since = Some(now);
        self.sessions = self.sessions.saturating_add(1);
    }

    pub(crate) fn session_down(&mut self) {
        self.family = None;
        self.channel = None;
        self.firmware = None;
        self.caps = 0;
        self.session = 0;
        self.since = None;
    }
}

/// What a session learned from WELCOME.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Established {
    /// The BMC's firmware version.
    pub firmware: [u8; 4],
    /// WELCOME's capability bits.
    pub caps: u8,
    /// The BMC's session number.
    pub session: u32,
}
