//! The RFC 4862 and RFC 7217 constants the IPv6 claim runs on.

use smoltcp::time::Duration;

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
