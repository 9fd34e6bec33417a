//! What the agent tells the policy: facts, records and results.

use smoltcp::wire::Ipv4Address;

use super::PolicyConfig;
use crate::platform::HostFacts;
use crate::records::{BmcCapsRecord, LinkRecord};
use crate::types::Family;

/// Everything the policy needs before its first decision, given at once so
/// that no decision is taken on half the facts (a `ClaimIpv4` emitted before
/// the link record was read would break P3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Startup {
    /// What the host OS says about the USBNIC ([`crate::platform::HostNet`]).
    pub facts: HostFacts,
    /// The persisted link record, `None` when the host side was never configured.
    pub link_record: Option<LinkRecord>,
    /// The BMC capabilities cached from an earlier WELCOME.
    pub caps: Option<BmcCapsRecord>,
    /// Whether the USBNIC has carrier ([`crate::platform::Frames::link_up`]).
    pub link_up: bool,
}

/// How a session ended (B5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SessionEnd {
    /// Either side said BYE.
    Bye,
    /// The BMC missed the configured number of heartbeats (a BMC reboot).
    PeerDead,
    /// The BMC sent something the protocol does not allow.
    ProtocolError,
    /// The TCP connection was reset (a BMC reboot).
    Reset,
    /// The BMC answered HELLO with REJECT, or TLS failed.
    Rejected,
}

/// One input to [`super::Policy::handle`].
///
/// Results for a family or a step the policy did not ask for, or no longer
/// waits for, are stale: they update what the policy knows (an address that
/// is bound stays known) but start nothing, and an unexpected
/// [`Input::TcpConnected`] is answered with [`super::Action::Disconnect`].
/// One exception: an address bound after its failure was reported (the
/// recorded IPv4 address, or IPv6 DAD, succeeding on the claim's own retry)
/// makes its family untried again: a backoff ends at once, a round in
/// progress may try it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Input {
    /// The agent has read its facts and records: decide. Until this input the
    /// policy only stores what it is told. A second `Start` starts over.
    Start(Startup),
    /// The configuration changed: everything in progress is dropped and the
    /// policy starts a new round with the new rules.
    Config(PolicyConfig),
    /// The host's facts were read again.
    HostFacts(HostFacts),
    /// The link record was read again: `None` after `bmclink link reset`
    /// (the one way out of P3), `Some` when another process wrote one.
    LinkRecord(Option<LinkRecord>),
    /// The cached BMC capabilities were read again.
    BmcCaps(Option<BmcCapsRecord>),
    /// The USBNIC got carrier back.
    LinkUp,
    /// The USBNIC lost carrier: every claim, discovery and connection in
    /// progress is void (the agent stops them) and the policy waits for
    /// [`Input::LinkUp`].
    LinkDown,
    /// The IPv4 address asked for (claimed, recorded or the host's) is bound.
    Ipv4Claimed {
        /// The address now in use.
        addr: Ipv4Address,
    },
    /// The IPv4 address asked for could not be bound for now: RFC 5227 gave
    /// up (MAX_CONFLICTS reached) on a claim or on the recorded address.
    Ipv4ClaimFailed,
    /// The bound IPv4 address was lost (a conflict it could not defend, or
    /// the host configuration it relied on went away).
    Ipv4Lost,
    /// The IPv6 link-local address passed DAD.
    Ipv6Claimed,
    /// The IPv6 link-local address failed DAD.
    Ipv6DadFailed,
    /// The IPv6 link-local address was lost.
    Ipv6Lost,
    /// The BMC's IPv6 link-local address is known (configured or by NDP).
    BmcIpv6Learned,
    /// No BMC answered over IPv6 (P7 evidence).
    BmcIpv6NotFound,
    /// A TCP connection to the BMC is established.
    TcpConnected {
        /// Over which family.
        family: Family,
    },
    /// The BMC refused the TCP connection (RST to SYN, ICMP unreachable).
    TcpRefused {
        /// Over which family.
        family: Family,
    },
    /// The TCP connection attempt timed out.
    TcpTimedOut {
        /// Over which family.
        family: Family,
    },
    /// WELCOME arrived: the session is up.
    Welcome {
        /// Over which family.
        family: Family,
        /// The BMC's firmware version.
        firmware: [u8; 4],
        /// WELCOME caps (bit0 tls, bit1 tls-required, bit2 ipv6-usbnic).
        caps: u8,
        /// The session is authenticated (TLS): only then are the caps
        /// cached; a plain WELCOME's caps are used for nothing that
        /// outlives the session (DESIGN §5a).
        authenticated: bool,
    },
    /// The connection or session over `family` ended.
    SessionEnded {
        /// Over which family.
        family: Family,
        /// Why.
        cause: SessionEnd,
    },
}
