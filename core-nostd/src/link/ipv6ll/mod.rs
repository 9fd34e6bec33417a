//! RFC 4862 duplicate address detection and RFC 7217 stable identifiers for
//! the host's IPv6 link-local address on the USBNIC.
//!
//! smoltcp 0.14 does no DAD, so [`Ipv6Claim`] does it on raw frames before
//! smoltcp sees them; the agent adds the address to the smoltcp `Interface`
//! after [`Ipv6ClaimEvent::Bound`] (or [`Ipv6ClaimEvent::Optimistic`]).
//!
//! - [`iid`]: RFC 7217 stable and RFC 4291 EUI-64 interface identifiers,
//!   solicited-node groups and their MACs;
//! - [`ndp`]: the frames sent (MLDv2 join, DAD NS, the answer to another
//!   node's DAD) and the NDP received;
//! - [`claim`]: the state machine.

use smoltcp::time::Duration;

pub mod claim;
pub mod iid;
pub mod ndp;
#[cfg(test)]
mod tests;

pub use claim::{IidMode, Ipv6Claim, Ipv6ClaimEvent, Ipv6ClaimState};
pub use iid::{eui64_iid, stable_iid};
pub use ndp::{MLD_FRAME_LEN, NA_FRAME_LEN, NS_FRAME_LEN};

/// RFC 4861: random delay before the first DAD solicitation, 0..1 s.
pub const MAX_RTR_SOLICITATION_DELAY: Duration = Duration::from_secs(1);
/// RFC 4861 RetransTimer: wait after the (single) DAD solicitation.
pub const RETRANS_TIMER: Duration = Duration::from_secs(1);
/// RFC 4862 DupAddrDetectTransmits: solicitations per attempt.
pub const DUP_ADDR_DETECT_TRANSMITS: u8 = 1;
/// RFC 7217: how many times a duplicate identifier is regenerated.
pub const IDGEN_RETRIES: u8 = 3;
/// RFC 7217: wait before trying a regenerated identifier.
pub const IDGEN_DELAY: Duration = Duration::from_secs(1);
/// Ours: after IDGEN_RETRIES + 1 duplicates in a row, the wait before DAD
/// starts over with DAD counter 0 (RFC 7217 §6 limits the identifiers tried
/// in a row; this keeps a host that answers every DAD probe from keeping
/// IPv6 off for good, at about four solicitations per half minute).
pub const DAD_RETRY_INTERVAL: Duration = Duration::from_secs(30);
