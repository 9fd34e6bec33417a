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

use smoltcp::time::Duration;

pub mod arp;
pub mod claim;
pub mod select;
#[cfg(test)]
mod tests;

pub use arp::ARP_FRAME_LEN;
pub use claim::{Ipv4Claim, Ipv4ClaimEvent, Ipv4ClaimState, Retry};

/// RFC 5227: random delay before the first probe, 0..PROBE_WAIT.
pub const PROBE_WAIT: Duration = Duration::from_secs(1);
/// RFC 5227: number of probes.
pub const PROBE_NUM: u8 = 3;
/// RFC 5227: minimum delay between probes.
pub const PROBE_MIN: Duration = Duration::from_secs(1);
/// RFC 5227: maximum delay between probes.
pub const PROBE_MAX: Duration = Duration::from_secs(2);
/// RFC 5227: delay after the last probe before the address is ours.
pub const ANNOUNCE_WAIT: Duration = Duration::from_secs(2);
/// RFC 5227: number of announcements.
pub const ANNOUNCE_NUM: u8 = 2;
/// RFC 5227: time between announcements.
pub const ANNOUNCE_INTERVAL: Duration = Duration::from_secs(2);
/// RFC 5227: conflicts after which new attempts are rate-limited (a claim
/// of the recorded address counts its re-probes the same way).
pub const MAX_CONFLICTS: u32 = 10;
/// RFC 5227: at most one new attempt per this interval once rate-limited.
pub const RATE_LIMIT_INTERVAL: Duration = Duration::from_secs(60);
/// RFC 5227: minimum time between two defences of the bound address.
pub const DEFEND_INTERVAL: Duration = Duration::from_secs(10);
