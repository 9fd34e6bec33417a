//! The part of the agent's configuration the policy decides with.

use smoltcp::time::Duration;
use smoltcp::wire::Ipv4Address;

use crate::config::Config;

/// What the policy needs to know from [`Config`], plus its own watchdogs.
///
/// Build it with `PolicyConfig::from(&config)`; every field has the default
/// of DESIGN §3 through [`Config::default`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PolicyConfig {
    /// Try IPv4 link-local at all (P6: `false` is absolute).
    pub ipv4: bool,
    /// Try IPv6 link-local at all (P6: `false` is absolute).
    pub ipv6: bool,
    /// The host address asked for in [`super::Action::ClaimIpv4`].
    pub preferred_ipv4: Ipv4Address,
    /// B2: race IPv6 against IPv4 instead of trying it only after IPv4 failed.
    pub race: bool,
    /// B2: how long IPv4 has to connect before the IPv6 attempt starts.
    pub race_delay: Duration,
    /// First retry delay (B5); doubles per failed round.
    pub backoff_min: Duration,
    /// Largest retry delay (B5).
    pub backoff_max: Duration,
    /// How long the agent's TCP attempt may take. The policy's own watchdog
    /// on a [`super::Action::Connect`] is twice this, so a driver that never
    /// reports a result cannot wedge the policy.
    pub connect_timeout: Duration,
    /// Watchdog on an address step (IPv4 claim or use, IPv6 DAD, BMC
    /// discovery): with no result by then the step counts as failed.
    pub address_timeout: Duration,
    /// A session that lasted this long after WELCOME is "good": when it ends
    /// the backoff is reset and the policy starts again at once.
    pub good_session: Duration,
}

impl PolicyConfig {
    /// The watchdog on a connection attempt: twice the agent's own timeout.
    pub fn connect_watchdog(&self) -> Duration {
        Duration::from_micros(self.connect_timeout.total_micros().saturating_mul(2))
    }
}

impl From<&Config> for PolicyConfig {
    fn from(c: &Config) -> Self {
        PolicyConfig {
            ipv4: c.ipv4,
            ipv6: c.ipv6,
            preferred_ipv4: c.preferred_host_ipv4(),
            race: c.race,
            race_delay: c.race_delay,
            backoff_min: c.backoff_min,
            backoff_max: c.backoff_max,
            connect_timeout: c.connect_timeout,
            // RFC 5227 needs ~7 s when the first address is free, up to
            // MAX_CONFLICTS picks and a 60 s rate limit when it is not.
            address_timeout: Duration::from_secs(120),
            good_session: c.backoff_max,
        }
    }
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig::from(&Config::default())
    }
}
