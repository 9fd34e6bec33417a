//! The RFC 5227 (§1.1) and RFC 3927 constants the IPv4 claim runs on.

use smoltcp::time::Duration;

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
