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

pub mod claim;
pub mod iid;
pub mod ndp;
#[cfg(test)]
mod tests;
mod timers;

pub use claim::{IidMode, Ipv6Claim, Ipv6ClaimEvent, Ipv6ClaimState};
pub use iid::{eui64_iid, stable_iid};
pub use ndp::{MLD_FRAME_LEN, NA_FRAME_LEN, NS_FRAME_LEN};
pub use timers::{
    DAD_RETRY_INTERVAL, DUP_ADDR_DETECT_TRANSMITS, IDGEN_DELAY, IDGEN_RETRIES,
    MAX_RTR_SOLICITATION_DELAY, RETRANS_TIMER,
};
