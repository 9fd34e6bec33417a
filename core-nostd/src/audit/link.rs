//! BL1xxx: link-local addressing (RFC 5227 ACD, RFC 4862 DAD).
//!
//! BL10xx are IPv4 (RFC 5227 / RFC 3927), BL11xx are IPv6 (RFC 4862 / RFC 7217).

use smoltcp::wire::{EthernetAddress, Ipv4Address, Ipv6Address};

use crate::link::ipv4ll::Retry;

audit_events! {
    /// Events of the address claims.
    pub enum LinkEvent {
        /// An IPv4 link-local address is in use on the USBNIC.
        Ipv4Bound { addr: Ipv4Address }
            = (1001, Info, "IPv4 link-local address in use on the USBNIC")
            => ("using IPv4 link-local address {addr} on the USBNIC"),
        /// Another host claimed the IPv4 address we were probing.
        Ipv4Conflict { addr: Ipv4Address, mac: EthernetAddress, then: Retry }
            = (1002, Warning, "another host on the USBNIC uses the IPv4 link-local address bmclink was probing; bmclink picks another address by itself, or probes the recorded address again later (it is never replaced); fix: remove the other host's static address")
            => ("host {mac} already uses {addr} on the USBNIC; {then} (if {mac} should not use it, remove its static address)"),
        /// A conflicting ARP for our bound address was answered with one announcement.
        Ipv4Defended { addr: Ipv4Address, mac: EthernetAddress }
            = (1003, Notice, "another host sent ARP for bmclink's IPv4 link-local address; bmclink defended it with one announcement (RFC 5227)")
            => ("host {mac} sent ARP claiming {addr}; defended it with one announcement"),
        /// A second conflict within DEFEND_INTERVAL: the address was given up.
        Ipv4Lost { addr: Ipv4Address, mac: EthernetAddress, then: Retry }
            = (1004, Warning, "another host kept claiming bmclink's IPv4 link-local address within 10 s of its defence; bmclink gave it up and probes again: another address, or the recorded address itself (never replaced); fix: remove the other host's static address")
            => ("host {mac} kept claiming {addr}; gave the address up, {then} (fix: remove the static address on {mac})"),
        /// Too many conflicts in a row: new attempts are rate-limited.
        Ipv4RateLimited { addr: Ipv4Address, conflicts: u32, wait_secs: u32 }
            = (1005, Warning, "too many IPv4 address conflicts in a row; new attempts are limited to one a minute (RFC 5227); fix: remove the static address of the host that uses bmclink's address, or look for a device answering ARP for every address (proxy ARP) on the USBNIC")
            => ("{conflicts} IPv4 link-local conflicts in a row; next attempt on {addr} in {wait_secs} s (fix: remove the static address of the host using it, or look for a device answering ARP for every address, e.g. proxy ARP, on the USBNIC)"),
        /// An IPv6 link-local address passed DAD and is in use.
        Ipv6Bound { addr: Ipv6Address }
            = (1101, Info, "IPv6 link-local address passed duplicate address detection and is in use on the USBNIC")
            => ("using IPv6 link-local address {addr} on the USBNIC"),
        /// DAD found the tentative address in use elsewhere.
        Ipv6Duplicate { addr: Ipv6Address, mac: EthernetAddress }
            = (1102, Warning, "duplicate address detection found the IPv6 link-local address in use; bmclink generates another identifier (RFC 7217)")
            => ("host {mac} already uses {addr}; generating another IPv6 interface identifier"),
        /// DAD failed on every identifier bmclink may try in a row.
        Ipv6DadFailed { addr: Ipv6Address, attempts: u8, retry_secs: u32 }
            = (1103, Error, "every IPv6 link-local identifier tried in a row was a duplicate; IPv6 is off on the USBNIC until DAD starts over with the first identifier, half a minute later (RFC 7217); fix: look for a looped link, proxy NDP or a host answering every DAD probe on the USBNIC")
            => ("IPv6 duplicate address detection failed {attempts} times in a row (last {addr}); IPv6 is off on the USBNIC until DAD starts over with the first identifier in {retry_secs} s (fix: look for a looped link, proxy NDP or a host answering every DAD probe)"),
        /// A neighbour advertisement claimed our bound IPv6 address.
        Ipv6Lost { addr: Ipv6Address, mac: EthernetAddress }
            = (1104, Warning, "another host advertised bmclink's IPv6 link-local address; bmclink gave it up and runs DAD on a new identifier")
            => ("host {mac} advertised {addr}; gave the address up and running DAD on a new identifier"),
    }
}
