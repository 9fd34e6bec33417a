//! P10: which host features a session makes available.

use core::fmt;

use crate::types::Family;

/// A set of host features, each with a stable name (P10).
///
/// A session over IPv4 has them all; a session over IPv6 has only
/// [`Features::MONITORING`], whatever IPv4 the USBNIC carries (the agent
/// only gets there when IPv4 did not reach the BMC); no session has none
/// ([`Features::of_session`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Features(u8);

impl Features {
    /// No feature.
    pub const NONE: Features = Features(0);
    /// In-band access to the BMC (its web UI and Redfish through the USBNIC).
    pub const INBAND_BMC_ACCESS: Features = Features(1 << 0);
    /// In-band SNMP get against the BMC.
    pub const INBAND_SNMP_GET: Features = Features(1 << 1);
    /// The `idrac.local` / `drac.local` names for the BMC.
    pub const BMC_LOCAL_NAMES: Features = Features(1 << 2);
    /// Auto-update of the agent from the BMC.
    pub const AUTO_UPDATE: Features = Features(1 << 3);
    /// Monitoring (events to the BMC's log, heartbeats).
    pub const MONITORING: Features = Features(1 << 4);
    /// Every feature.
    pub const ALL: Features = Features(0b1_1111);

    /// Every single feature with its stable name, in bit order.
    pub const NAMED: [(Features, &'static str); 5] = [
        (Features::INBAND_BMC_ACCESS, "inband-bmc-access"),
        (Features::INBAND_SNMP_GET, "inband-snmp-get"),
        (Features::BMC_LOCAL_NAMES, "idrac.local"),
        (Features::AUTO_UPDATE, "auto-update"),
        (Features::MONITORING, "monitoring"),
    ];

    /// P10: the features of a session over `family` (`None`: no session).
    /// The policy, the status, the audit event BL3012 and the shim's hosts
    /// block all derive from this one function.
    pub const fn of_session(family: Option<Family>) -> Features {
        match family {
            None => Features::NONE,
            Some(Family::V4) => Features::ALL,
            Some(Family::V6) => Features::MONITORING,
        }
    }

    /// The raw bits (bit order of [`Features::NAMED`]).
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether every feature of `other` is in `self`.
    pub const fn contains(self, other: Features) -> bool {
        self.0 & other.0 == other.0
    }

    /// The union of two sets.
    pub const fn union(self, other: Features) -> Features {
        Features(self.0 | other.0)
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Each feature's name and whether it is in the set, for `status`.
    pub fn names(self) -> impl Iterator<Item = (&'static str, bool)> {
        Features::NAMED
            .into_iter()
            .map(move |(f, name)| (name, self.contains(f)))
    }
}

impl fmt::Display for Features {
    /// The names of the available features, comma separated, or `none`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (name, on) in self.names() {
            if on {
                if !first {
                    f.write_str(",")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        if first {
            f.write_str("none")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::string::ToString;

    #[test]
    fn features_name_themselves_and_combine() {
        assert_eq!(Features::NONE.to_string(), "none");
        assert_eq!(Features::MONITORING.to_string(), "monitoring");
        assert_eq!(
            Features::ALL.to_string(),
            "inband-bmc-access,inband-snmp-get,idrac.local,auto-update,monitoring"
        );
        let all = Features::NAMED
            .iter()
            .fold(Features::NONE, |a, (f, _)| a.union(*f));
        assert_eq!(all, Features::ALL);
        assert!(!Features::MONITORING.contains(Features::AUTO_UPDATE));
        assert_eq!(
            Features::MONITORING.names().filter(|(_, on)| *on).count(),
            1
        );
    }
}
