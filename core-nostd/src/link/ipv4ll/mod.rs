//! RFC 5227 address conflict detection and RFC 3927 address selection for
//! the host's IPv4 link-local address on the USBNIC.
//!
//! smoltcp 0.14 neither probes nor defends, so [`Ipv4Claim`] does both on raw
//! frames before smoltcp sees them, and the agent adds the address to the
//! smoltcp `Interface` only after [`Ipv4ClaimEvent::Bound`].
//!
//! - [`arp`]: the frames sent (probe, announcement, probe answer) and the
//!   view taken of the frames received;
//! - [`select`]: RFC 3927 picks in 169.254.1.0 – 169.254.254.255;
//! - [`claim`]: the state machine; a claim of the recorded address (P3)
//!   re-probes that address after a conflict and never selects another.

pub mod arp;
pub mod claim;
mod retry;
pub mod select;
#[cfg(test)]
mod tests;
mod timers;

pub use arp::ARP_FRAME_LEN;
pub use claim::{Ipv4Claim, Ipv4ClaimEvent, Ipv4ClaimState};
pub use retry::Retry;
pub use timers::{
    ANNOUNCE_INTERVAL, ANNOUNCE_NUM, ANNOUNCE_WAIT, DEFEND_INTERVAL, MAX_CONFLICTS, PROBE_MAX,
    PROBE_MIN, PROBE_NUM, PROBE_WAIT, RATE_LIMIT_INTERVAL,
};
