//! Tests of the fallback policy: one per rule (`rules.rs`), per recovery
//! behaviour (`recovery.rs`) and a property test over random inputs
//! (`random.rs`). All in virtual time.

extern crate std;

use std::vec::Vec;

use smoltcp::time::{Duration, Instant};
use smoltcp::wire::Ipv4Address;

use super::{Action, Input, Policy, PolicyConfig, Startup};
use crate::audit::PolicyEvent;
use crate::platform::HostFacts;
use crate::records::{BmcCapsRecord, LinkRecord};
use crate::types::Family;

mod random;
mod recovery;
mod rules;

const PREFERRED: Ipv4Address = Ipv4Address::new(169, 254, 1, 2);
const RECORDED: Ipv4Address = Ipv4Address::new(169, 254, 7, 9);
const FW: [u8; 4] = [7, 10, 30, 0];
/// WELCOME caps: tls + ipv6-usbnic.
const CAPS_ALL: u8 = 0b101;
/// WELCOME caps: tls, no IPv6 on the USBNIC.
const CAPS_NO_V6: u8 = 0b001;

/// A USBNIC with nothing configured and IPv6 enabled.
fn bare() -> HostFacts {
    HostFacts {
        ipv4_present: false,
        ipv6_present: false,
        ipv6_enabled: true,
    }
}

fn startup(facts: HostFacts, record: Option<Ipv4Address>) -> Startup {
    Startup {
        facts,
        link_record: record.map(|ipv4| LinkRecord { ipv4 }),
        caps: None,
        link_up: true,
    }
}

fn caps(caps: u8) -> Option<BmcCapsRecord> {
    Some(BmcCapsRecord { firmware: FW, caps })
}

/// A driver in virtual time that records what the policy said per call.
struct Sim {
    p: Policy,
    now: Instant,
    /// Actions and audit IDs of the last call.
    acts: Vec<Action>,
    ids: Vec<u16>,
    /// Everything so far.
    all_acts: Vec<Action>,
    all_events: Vec<PolicyEvent>,
}

impl Sim {
    fn new(cfg: PolicyConfig, start: Startup) -> Sim {
        let now = Instant::from_secs(100);
        let mut s = Sim {
            p: Policy::new(cfg, now, 42),
            now,
            acts: Vec::new(),
            ids: Vec::new(),
            all_acts: Vec::new(),
            all_events: Vec::new(),
        };
        s.input(Input::Start(start));
        s
    }

    fn with(f: impl FnOnce(&mut PolicyConfig), start: Startup) -> Sim {
        let mut cfg = PolicyConfig::default();
        f(&mut cfg);
        Sim::new(cfg, start)
    }

    fn drain(&mut self) {
        self.acts.clear();
        self.ids.clear();
        while let Some(a) = self.p.poll_action() {
            self.acts.push(a);
            self.all_acts.push(a);
        }
        while let Some(e) = self.p.poll_audit() {
            self.ids.push(e.id().0);
            self.all_events.push(e);
        }
        let st = self.p.state();
        assert_eq!((st.actions_dropped, st.audit_dropped), (0, 0));
    }

    fn input(&mut self, i: Input) -> &[Action] {
        self.p.handle(self.now, i);
        self.drain();
        &self.acts
    }

    /// Advances virtual time by `d`, running every timer on the way.
    fn advance(&mut self, d: Duration) -> Vec<Action> {
        let end = self.now + d;
        let mut acts = Vec::new();
        let mut ids = Vec::new();
        while let Some(t) = self.p.next_deadline().filter(|t| *t <= end) {
            self.now = t;
            self.p.handle_timeout(t);
            self.drain();
            acts.extend_from_slice(&self.acts);
            ids.extend_from_slice(&self.ids);
        }
        self.now = end;
        self.p.handle_timeout(end);
        self.drain();
        acts.extend_from_slice(&self.acts);
        ids.extend_from_slice(&self.ids);
        self.acts = acts.clone();
        self.ids = ids;
        acts
    }

    /// Jumps to the next deadline and runs it.
    fn fire(&mut self) -> &[Action] {
        let t = self.p.next_deadline().expect("a deadline");
        assert!(t > self.now, "deadline {t} not after now {}", self.now);
        self.now = t;
        self.p.handle_timeout(t);
        self.drain();
        &self.acts
    }

    fn ms(&mut self, ms: u64) -> Vec<Action> {
        self.advance(Duration::from_millis(ms))
    }

    /// Every audit ID said so far.
    fn all_ids(&self) -> Vec<u16> {
        self.all_events.iter().map(|e| e.id().0).collect()
    }

    fn count(&self, pred: impl Fn(&Action) -> bool) -> usize {
        self.all_acts.iter().filter(|a| pred(a)).count()
    }

    /// Claims `addr` (answers the pending IPv4 step) and connects over IPv4
    /// with a session.
    fn v4_session(&mut self, addr: Ipv4Address, caps: u8) {
        self.input(Input::Ipv4Claimed { addr });
        assert!(self.acts.contains(&Action::Connect { family: Family::V4 }));
        self.input(Input::TcpConnected { family: Family::V4 });
        self.input(Input::Welcome {
            authenticated: true,
            family: Family::V4,
            firmware: FW,
            caps,
        });
        assert_eq!(self.p.session_family(), Some(Family::V4));
    }

    /// Answers a pending IPv6 start up to the connection attempt.
    fn v6_to_connect(&mut self) {
        assert!(self.acts.contains(&Action::StartIpv6), "{:?}", self.acts);
        self.input(Input::Ipv6Claimed);
        assert_eq!(self.acts, [Action::DiscoverBmcIpv6]);
        self.input(Input::BmcIpv6Learned);
        assert_eq!(self.acts, [Action::Connect { family: Family::V6 }]);
    }
}

fn is_v6(a: &Action) -> bool {
    matches!(
        a,
        Action::StartIpv6 | Action::DiscoverBmcIpv6 | Action::Connect { family: Family::V6 }
    )
}
