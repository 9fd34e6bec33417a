//! BL3xxx: the fallback policy (DESIGN §4).
//!
//! Events that could repeat on every retry (fallback, host IPv6 disabled,
//! no IPv6 answer, backoff at its ceiling, the recorded address in use) are
//! said once per outage: again only after a session came up in between.

use smoltcp::wire::Ipv4Address;

use crate::policy::{RecordProblem, StayReason};
use crate::types::Family;

audit_events! {
    /// Events of the fallback policy.
    pub enum PolicyEvent {
        /// Both families are disabled by configuration (P6).
        NothingEnabled {}
            = (3001, Error, "both IPv4 and IPv6 are disabled in the configuration; nothing to try (enable one)")
            => ("IPv4 and IPv6 are both disabled in the configuration; nothing to try: set ipv4 = true or ipv6 = true"),
        /// P3: the link record exists but the host OS's configuration of the
        /// USBNIC it relied on is gone.
        RecordUnusable { addr: Ipv4Address, problem: RecordProblem }
            = (3002, Error, "the host OS's IPv4 configuration of the USBNIC was removed after bmclink configured it once; IPv4 stays disconnected until it is back or `bmclink link reset` is run (address conflicts never cause this)")
            => ("the recorded IPv4 configuration {addr} of the USBNIC is unusable: {problem}; IPv4 is configured only once, so it stays disconnected until that configuration is back: run `bmclink link reset` to configure it again"),
        /// P2: IPv4 was configured on the USBNIC and the link record saved.
        Ipv4Configured { addr: Ipv4Address }
            = (3003, Notice, "the USBNIC had no IP: configured IPv4 link-local once and saved the link record")
            => ("the USBNIC had no IP: configured IPv4 link-local address {addr} and saved the link record; it will not be configured again"),
        /// P4: IPv4 did not connect; IPv6 is tried.
        FallingBackToIpv6 {}
            = (3004, Warning, "no connection to the BMC over IPv4; falling back to IPv6 link-local")
            => ("no connection to the BMC over IPv4 link-local; falling back to IPv6 link-local"),
        /// P5: IPv6 would be the fallback but the host disabled it.
        Ipv6DisabledOnHost {}
            = (3005, Warning, "IPv6 is disabled on the host's USBNIC; retrying IPv4 with backoff (enable IPv6 on the interface to allow the fallback)")
            => ("IPv6 is disabled on the host's USBNIC, so there is no IPv6 fallback; retrying IPv4 with backoff (enable IPv6 on the interface to allow it)"),
        /// P7: the BMC's WELCOME says it has no IPv6 on the USBNIC.
        BmcWithoutIpv6 { firmware: [u8; 4] }
            = (3006, Notice, "the BMC firmware has no IPv6 on the USBNIC; using IPv4 only (remembered)")
            => ("the BMC firmware {}.{}.{}.{} has no IPv6 on the USBNIC; using IPv4 only (remembered)",
                firmware[0], firmware[1], firmware[2], firmware[3]),
        /// P7: no BMC answered over IPv6.
        BmcIpv6NoAnswer {}
            = (3007, Warning, "no BMC answered over IPv6 link-local; IPv6 is skipped while IPv4 is usable, until the link goes down and up")
            => ("no BMC answered over IPv6 link-local; skipping IPv6 while IPv4 is usable, until the link goes down and up"),
        /// B2: IPv4 came up while the session ran over IPv6.
        MovingBackToIpv4 {}
            = (3008, Notice, "IPv4 to the BMC is reachable again; moving the session from IPv6 to IPv4 (preferred)")
            => ("IPv4 to the BMC is reachable again; moving the session from IPv6 to IPv4 (preferred)"),
        /// B5: every usable family failed; waiting before the next round.
        Backoff { delay_ms: u64 }
            = (3009, Info, "no connection to the BMC; retrying with backoff (1 s doubling to 60 s)")
            => ("no connection to the BMC; retrying in {delay_ms} ms"),
        /// No family is usable; waiting for a change of configuration or host.
        StayingDisconnected { reason: StayReason }
            = (3010, Error, "no IP family is usable; staying disconnected until the configuration, the host or the link record changes")
            => ("no IP family is usable ({reason}); staying disconnected until that changes"),
        /// The IPv4 claim (no link record yet) failed.
        Ipv4ClaimFailed { preferred: Ipv4Address }
            = (3011, Warning, "could not claim an IPv4 link-local address on the USBNIC; will retry")
            => ("could not claim an IPv4 link-local address on the USBNIC (preferred {preferred}); will retry"),
        /// P10: a session over IPv6 (the BMC was not reached over IPv4).
        Ipv6OnlySession {}
            = (3012, Warning, "IPv6 session: in-band BMC access, in-band SNMP get, idrac.local/drac.local and auto-update are unavailable (they need a session over IPv4)")
            => ("session over IPv6: in-band BMC access, in-band SNMP get, idrac.local/drac.local and auto-update are unavailable, monitoring only; they come back when the BMC is reached over IPv4 (check the BMC's IPv4 link-local setting, or run `bmclink link reset`)"),
        /// The agent gave no result for a step within its watchdog.
        StepTimedOut { family: Family }
            = (3013, Warning, "the agent reported no result for an address or connection step within its watchdog; the step was abandoned and will be retried")
            => ("no result for the {family} address or connection step within its watchdog; abandoned, will retry"),
        /// The recorded address is in use by another host: RFC 5227 gave up
        /// for now, and the claim probes the same address again.
        RecordedIpv4InUse { addr: Ipv4Address }
            = (3015, Warning, "another host on the USBNIC uses the recorded IPv4 link-local address; bmclink keeps probing that same address (at most once a minute, RFC 5227) and never configures another; meanwhile IPv4 is not connected; fix: remove the other host's static address")
            => ("another host on the USBNIC uses the recorded IPv4 link-local address {addr}; probing it again (at most once a minute) and never configuring another; no IPv4 connection until it is free (fix: remove the other host's static address)"),
        /// P3: the condition that made the link record unusable cleared.
        RecordUsableAgain { addr: Ipv4Address }
            = (3014, Info, "the recorded IPv4 configuration of the USBNIC is usable again (host configuration back, or link record reset)")
            => ("the recorded IPv4 configuration {addr} of the USBNIC is usable again"),
    }
}
