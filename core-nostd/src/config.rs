//! The agent's configuration, with the defaults of DESIGN §3.

use smoltcp::time::Duration;
use smoltcp::wire::{Ipv4Address, Ipv6Address};

/// Everything the agent can be told; every field has a default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Try IPv4 link-local at all (P6: `false` is absolute).
    pub ipv4: bool,
    /// Try IPv6 link-local at all (P6: `false` is absolute).
    pub ipv6: bool,
    /// The BMC's IPv4 address on the USBNIC (iDRAC `UsbNicIpAddress`).
    pub bmc_ipv4: Ipv4Address,
    /// The host's preferred IPv4 address; `None`: BMC address + 1.
    pub host_ipv4: Option<Ipv4Address>,
    /// The BMC's IPv6 link-local address; `None`: learned by NDP.
    pub bmc_ipv6: Option<Ipv6Address>,
    /// TCP port of the TLS channel.
    pub tls_port: u16,
    /// TCP port of the legacy plain channel.
    pub plain_port: u16,
    /// Interval between heartbeats (PING).
    pub heartbeat: Duration,
    /// Missed heartbeats after which the BMC is considered gone.
    pub heartbeat_misses: u8,
    /// How long a TCP connection attempt may take.
    pub connect_timeout: Duration,
    /// How long the whole TLS handshake may take (not per byte).
    pub handshake_timeout: Duration,
    /// How long the BMC may take from HELLO to WELCOME (with ENROLLED, when
    /// enrolling), overall.
    pub welcome_timeout: Duration,
    /// The firmware has no TLS: the plain channel, while nothing is pinned
    /// and no fingerprint is given (DESIGN §5a; host-local evidence).
    pub legacy_plain: bool,
    /// First retry delay; doubles up to `backoff_max`.
    pub backoff_min: Duration,
    /// Largest retry delay.
    pub backoff_max: Duration,
    /// RFC 8305-style racing of IPv6 against IPv4 (B2).
    pub race: bool,
    /// Delay before the IPv6 attempt starts in race mode.
    pub race_delay: Duration,
    /// This agent's version, sent in HELLO.
    pub agent_version: &'static str,
    /// The host name sent in HELLO.
    pub hostname: &'static str,
}

impl Config {
    /// The host address to claim first: the configured one, else BMC + 1
    /// (iDRAC's own DHCP pool on the USBNIC is BMC+1, BMC+2).
    pub fn preferred_host_ipv4(&self) -> Ipv4Address {
        if let Some(a) = self.host_ipv4 {
            return a;
        }
        let [a, b, c, d] = self.bmc_ipv4.octets();
        Ipv4Address::new(a, b, c, d.wrapping_add(1))
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            ipv4: true,
            ipv6: true,
            bmc_ipv4: Ipv4Address::new(169, 254, 1, 1),
            host_ipv4: None,
            bmc_ipv6: None,
            tls_port: 5443,
            plain_port: 5080,
            heartbeat: Duration::from_secs(10),
            heartbeat_misses: 3,
            connect_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(10),
            welcome_timeout: Duration::from_secs(5),
            legacy_plain: false,
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            race: false,
            race_delay: Duration::from_millis(250),
            agent_version: env!("CARGO_PKG_VERSION"),
            hostname: "host",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preferred_host_address_is_bmc_plus_one() {
        let c = Config::default();
        assert_eq!(c.preferred_host_ipv4(), Ipv4Address::new(169, 254, 1, 2));
        let c = Config {
            host_ipv4: Some(Ipv4Address::new(169, 254, 9, 9)),
            ..c
        };
        assert_eq!(c.preferred_host_ipv4(), Ipv4Address::new(169, 254, 9, 9));
    }
}
