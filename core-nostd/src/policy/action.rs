//! What the policy tells the agent to do.

use core::fmt;

use smoltcp::wire::Ipv4Address;

use crate::records::BmcCapsRecord;
use crate::types::Family;

/// One thing for the agent to do, drained with [`super::Policy::poll_action`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Action {
    /// P2: configure IPv4: claim `preferred` with RFC 5227 ACD (RFC 3927
    /// picks another when it is taken). Answer with `Ipv4Claimed` or
    /// `Ipv4ClaimFailed`. Only ever emitted while no link record exists.
    ClaimIpv4 {
        /// The address to try first.
        preferred: Ipv4Address,
    },
    /// P3: a link record exists: use `addr` as recorded, probed with RFC
    /// 5227 but never replaced by another. Answer with `Ipv4Claimed` or,
    /// when RFC 5227 gives up on it for now (another node uses it, MAX_CONFLICTS
    /// reached), `Ipv4ClaimFailed`; the claim goes on re-probing the same
    /// address, and a later `Ipv4Claimed` for it is welcome at any time.
    UseRecordedIpv4 {
        /// The recorded address.
        addr: Ipv4Address,
    },
    /// P3: the recorded configuration became unusable and IPv4 stays
    /// disconnected (BL3002): stop the IPv4 claim and drop its address, so
    /// that nothing on the wire or in the audit log goes on claiming it (no
    /// probes, no "probing again"). Emitted with BL3002; a later
    /// `UseRecordedIpv4` starts over when the configuration is back.
    ReleaseIpv4,
    /// The host OS already carries IPv4 on the USBNIC and there is no link
    /// record: nothing to configure, use what is there. Answer with
    /// `Ipv4Claimed` or `Ipv4ClaimFailed`.
    UseHostIpv4,
    /// P2: persist the link record: IPv4 was configured, never again.
    /// Emitted at most once per link record.
    SaveLinkRecord {
        /// The claimed address.
        addr: Ipv4Address,
    },
    /// P4: start IPv6 link-local (RFC 4862 DAD). Answer with `Ipv6Claimed`
    /// or `Ipv6DadFailed`. Never emitted while IPv6 is disabled (config,
    /// host, or the BMC has none).
    StartIpv6,
    /// Find the BMC's IPv6 link-local address (configured, or by NDP).
    /// Answer with `BmcIpv6Learned` or `BmcIpv6NotFound`.
    DiscoverBmcIpv6,
    /// Open the TCP connection to the BMC over `family` (then HELLO).
    /// Answer with `TcpConnected`, `TcpRefused` or `TcpTimedOut`.
    Connect {
        /// The family to use.
        family: Family,
    },
    /// Close the connection over `family`, or abandon the attempt in
    /// progress (B2: the IPv6 session when IPv4 came up; a family that was
    /// disabled; a watchdog that fired). Say BYE if a session is up.
    Disconnect {
        /// The family to drop.
        family: Family,
    },
    /// P7: persist the BMC's capabilities from WELCOME.
    SaveBmcCaps {
        /// The record to store.
        record: BmcCapsRecord,
    },
    /// No family is usable; nothing will be tried until an input changes
    /// that (see [`StayReason`]). Emitted once on entering the state.
    StayDisconnected {
        /// Why, per family.
        reason: StayReason,
    },
}

/// P3: what makes a recorded IPv4 configuration unusable ("incomplete").
///
/// Only the host OS's own configuration of the USBNIC counts. An address
/// conflict on the recorded address is not one: it is RFC 5227's business
/// (defend, back off, probe the same address again), so a few frames from
/// another host can never switch IPv4 off for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RecordProblem {
    /// The host's IPv4 configuration on the USBNIC vanished
    /// (`ipv4_present` went from true to false).
    HostIpv4Vanished,
}

impl fmt::Display for RecordProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecordProblem::HostIpv4Vanished => {
                "the host's IPv4 configuration of the USBNIC vanished"
            }
        })
    }
}

/// Why IPv4 cannot be tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Ipv4Unavailable {
    /// IPv4 is usable (only inside a [`StayReason`] for a family that is
    /// usable but has nothing to do; never in a stay the policy emits).
    Usable,
    /// `ipv4 = false` (P6).
    Disabled,
    /// P3: the link record exists and its configuration is unusable.
    RecordUnusable(RecordProblem),
}

/// Why IPv6 cannot be tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Ipv6Unavailable {
    /// IPv6 is usable (see [`Ipv4Unavailable::Usable`]).
    Usable,
    /// `ipv6 = false` (P6).
    Disabled,
    /// P5: the host's IPv6 stack is disabled on the USBNIC.
    HostDisabled,
    /// P7: the BMC firmware has no IPv6 on the USBNIC (WELCOME caps).
    BmcWithoutIpv6,
}

/// Why the policy stays disconnected: one reason per family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct StayReason {
    /// Why not IPv4.
    pub ipv4: Ipv4Unavailable,
    /// Why not IPv6.
    pub ipv6: Ipv6Unavailable,
}

impl fmt::Display for Ipv4Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ipv4Unavailable::Usable => f.write_str("usable"),
            Ipv4Unavailable::Disabled => f.write_str("disabled in the configuration"),
            Ipv4Unavailable::RecordUnusable(p) => {
                write!(f, "{p}; run `bmclink link reset` to configure it again")
            }
        }
    }
}

impl fmt::Display for Ipv6Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Ipv6Unavailable::Usable => "usable",
            Ipv6Unavailable::Disabled => "disabled in the configuration",
            Ipv6Unavailable::HostDisabled => "disabled on the host's USBNIC",
            Ipv6Unavailable::BmcWithoutIpv6 => "the BMC firmware has no IPv6 on the USBNIC",
        })
    }
}

impl fmt::Display for StayReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IPv4: {}; IPv6: {}", self.ipv4, self.ipv6)
    }
}
