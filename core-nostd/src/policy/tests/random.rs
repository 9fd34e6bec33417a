//! Property test: thousands of random input sequences at random virtual
//! times, half of them answering what the policy asked for (so runs reach
//! sessions, fallbacks and races), the rest arbitrary. After every call the
//! invariants of DESIGN §4 must hold; any panic fails the test.

extern crate std;

use std::vec::Vec;

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use smoltcp::time::{Duration, Instant};

use super::*;
use crate::policy::{Features, Ipv4Unavailable, Ipv6Unavailable, Phase, SessionEnd};

const SEQUENCES: usize = 4000;
const STEPS: usize = 150;

struct Rng(ChaCha8Rng);

impl Rng {
    fn below(&mut self, n: u32) -> u32 {
        self.0.next_u32() % n
    }
    fn chance(&mut self, percent: u32) -> bool {
        self.below(100) < percent
    }
    fn family(&mut self) -> Family {
        if self.chance(50) {
            Family::V4
        } else {
            Family::V6
        }
    }
    fn facts(&mut self) -> HostFacts {
        HostFacts {
            ipv4_present: self.chance(30),
            ipv6_present: self.chance(30),
            ipv6_enabled: self.chance(70),
        }
    }
    fn addr(&mut self) -> Ipv4Address {
        Ipv4Address::new(169, 254, 1, 2 + self.below(3) as u8)
    }
    fn record(&mut self) -> Option<LinkRecord> {
        self.chance(40).then(|| LinkRecord { ipv4: self.addr() })
    }
    fn caps(&mut self) -> Option<BmcCapsRecord> {
        self.chance(30).then(|| BmcCapsRecord {
            firmware: FW,
            caps: self.below(8) as u8,
        })
    }
    fn config(&mut self) -> PolicyConfig {
        PolicyConfig {
            ipv4: self.chance(85),
            ipv6: self.chance(85),
            race: self.chance(50),
            ..PolicyConfig::default()
        }
    }
    fn startup(&mut self) -> Startup {
        Startup {
            facts: self.facts(),
            link_record: self.record(),
            caps: self.caps(),
            link_up: self.chance(90),
        }
    }
    fn cause(&mut self) -> SessionEnd {
        [
            SessionEnd::Bye,
            SessionEnd::PeerDead,
            SessionEnd::ProtocolError,
            SessionEnd::Reset,
            SessionEnd::Rejected,
        ][self.below(5) as usize]
    }

    /// Any input at all.
    fn input(&mut self) -> Input {
        match self.below(21) {
            0 => Input::Start(self.startup()),
            1 => Input::Config(self.config()),
            2 => Input::HostFacts(self.facts()),
            3 => Input::LinkRecord(self.record()),
            4 => Input::BmcCaps(self.caps()),
            5 => Input::LinkUp,
            6 => Input::LinkDown,
            7 => Input::Ipv4Claimed { addr: self.addr() },
            8 => Input::Ipv4ClaimFailed,
            9 => Input::Ipv4Lost,
            10 => Input::Ipv6Claimed,
            11 => Input::Ipv6DadFailed,
            12 => Input::Ipv6Lost,
            13 => Input::BmcIpv6Learned,
            14 => Input::BmcIpv6NotFound,
            15 => Input::TcpConnected {
                family: self.family(),
            },
            16 => Input::TcpRefused {
                family: self.family(),
            },
            17 => Input::TcpTimedOut {
                family: self.family(),
            },
            18 => Input::Welcome {
                authenticated: true,
                family: self.family(),
                firmware: FW,
                caps: self.below(8) as u8,
            },
            19 => Input::SessionEnded {
                family: self.family(),
                cause: self.cause(),
            },
            _ => Input::LinkUp,
        }
    }

    /// A plausible answer to an action the policy emitted.
    fn answer(&mut self, a: Action) -> Option<Input> {
        let ok = self.chance(70);
        Some(match a {
            Action::ClaimIpv4 { preferred: addr } | Action::UseRecordedIpv4 { addr } => {
                if ok {
                    Input::Ipv4Claimed { addr }
                } else {
                    Input::Ipv4ClaimFailed
                }
            }
            Action::UseHostIpv4 if ok => Input::Ipv4Claimed { addr: self.addr() },
            Action::UseHostIpv4 => Input::Ipv4ClaimFailed,
            Action::StartIpv6 if ok => Input::Ipv6Claimed,
            Action::StartIpv6 => Input::Ipv6DadFailed,
            Action::DiscoverBmcIpv6 if ok => Input::BmcIpv6Learned,
            Action::DiscoverBmcIpv6 => Input::BmcIpv6NotFound,
            Action::Connect { family } => match self.below(3) {
                0 | 1 if ok => Input::TcpConnected { family },
                0 => Input::TcpRefused { family },
                _ => Input::TcpTimedOut { family },
            },
            _ => return None,
        })
    }
}

/// What the test knows independently of the policy.
struct Model {
    cfg: PolicyConfig,
    facts: HostFacts,
    record: bool,
    caps_without_v6: bool,
}

impl Model {
    fn see(&mut self, input: &Input) {
        match *input {
            Input::Start(s) => {
                self.facts = s.facts;
                self.record = s.link_record.is_some();
                self.caps_without_v6 = s.caps.is_some_and(|c| c.caps & 0b100 == 0);
            }
            Input::Config(c) => self.cfg = c,
            Input::HostFacts(f) => self.facts = f,
            Input::LinkRecord(r) => self.record = r.is_some(),
            Input::BmcCaps(c) => self.caps_without_v6 = c.is_some_and(|c| c.caps & 0b100 == 0),
            _ => {}
        }
    }

    fn check(&mut self, a: &Action, ctx: &dyn Fn() -> std::string::String) {
        let v6_ok = self.cfg.ipv6 && self.facts.ipv6_enabled && !self.caps_without_v6;
        match *a {
            Action::ClaimIpv4 { .. } => {
                assert!(self.cfg.ipv4, "claim with ipv4 disabled: {}", ctx());
                assert!(!self.record, "claim with a link record: {}", ctx());
            }
            Action::UseRecordedIpv4 { .. }
            | Action::UseHostIpv4
            | Action::Connect { family: Family::V4 } => {
                assert!(self.cfg.ipv4, "IPv4 while disabled: {}", ctx())
            }
            Action::SaveLinkRecord { .. } => {
                assert!(!self.record, "second link record: {}", ctx());
                self.record = true;
            }
            Action::StartIpv6
            | Action::DiscoverBmcIpv6
            | Action::Connect { family: Family::V6 } => {
                assert!(v6_ok, "IPv6 action not allowed: {a:?}: {}", ctx())
            }
            Action::SaveBmcCaps { record } => self.caps_without_v6 = record.caps & 0b100 == 0,
            Action::StayDisconnected { reason } => {
                assert_ne!(reason.ipv4, Ipv4Unavailable::Usable, "{}", ctx());
                assert_ne!(reason.ipv6, Ipv6Unavailable::Usable, "{}", ctx());
            }
            Action::ReleaseIpv4 => {
                assert!(
                    self.record,
                    "IPv4 released without a link record: {}",
                    ctx()
                )
            }
            Action::Disconnect { .. } => {}
        }
    }
}

#[test]
fn random_input_sequences_hold_the_policy_invariants() {
    let mut rng = Rng(ChaCha8Rng::seed_from_u64(0x6d63_6c69_6e6b));
    let (mut sessions, mut v6_sessions, mut stays, mut moves) = (0u32, 0u32, 0u32, 0u32);
    for seq in 0..SEQUENCES {
        let cfg = rng.config();
        let start = rng.startup();
        let mut now = Instant::from_secs(i64::from(rng.below(1000)));
        let mut p = Policy::new(cfg, now, rng.0.next_u64());
        let mut model = Model {
            cfg,
            facts: HostFacts::default(),
            record: false,
            caps_without_v6: false,
        };
        let mut pending: Vec<Action> = Vec::new();
        let mut trace: Vec<Input> = Vec::new();
        let mut owed: Option<Input> = None;
        for step in 0..STEPS {
            // Time moves: not at all, a little, a lot, or to the deadline.
            match rng.below(4) {
                0 => {}
                1 => now += Duration::from_millis(u64::from(rng.below(1_000))),
                2 => now += Duration::from_secs(u64::from(rng.below(200))),
                _ => {
                    if let Some(t) = p.next_deadline() {
                        now = t;
                    }
                }
            }
            let input = if step == 0 {
                Some(Input::Start(start))
            } else if rng.chance(30) {
                None
            } else if let Some(w) = owed.take().filter(|_| rng.chance(80)) {
                Some(w)
            } else if !pending.is_empty() && rng.chance(60) {
                let a = pending.remove(rng.below(pending.len() as u32) as usize);
                let answer = rng.answer(a);
                if let Some(Input::TcpConnected { family }) = answer {
                    // The BMC answers HELLO; mostly with IPv6 on its USBNIC.
                    let caps = if rng.chance(85) { CAPS_ALL } else { CAPS_NO_V6 };
                    owed = Some(Input::Welcome {
                        authenticated: true,
                        family,
                        firmware: FW,
                        caps,
                    });
                }
                answer
            } else {
                Some(rng.input())
            };
            match input {
                Some(i) => {
                    model.see(&i);
                    trace.push(i);
                    p.handle(now, i);
                }
                None => p.handle_timeout(now),
            }
            let snapshot = p.state();
            let ctx = || std::format!("sequence {seq}, inputs {trace:?}, state {snapshot:?}");
            let mut n = 0;
            while let Some(a) = p.poll_action() {
                model.check(&a, &ctx);
                if matches!(a, Action::StayDisconnected { .. }) {
                    stays += 1;
                }
                pending.push(a);
                n += 1;
            }
            assert!(n <= 8, "{n} actions from one call: {}", ctx());
            while let Some(e) = p.poll_audit() {
                assert!((3000..4000).contains(&e.id().0));
                if e.id().0 == 3008 {
                    moves += 1;
                }
            }
            let st = p.state();
            assert_eq!((st.actions_dropped, st.audit_dropped), (0, 0), "{}", ctx());
            let waiting = matches!(
                st.phase,
                Phase::NotStarted | Phase::LinkDown | Phase::Stay(_)
            );
            if st.connected.is_none() && !waiting {
                let d = p.next_deadline();
                assert!(d.is_some_and(|d| d > now), "no deadline ({d:?}): {}", ctx());
            }
            if waiting {
                assert_eq!(st.connected, None, "{}", ctx());
            }
            match st.session {
                None => assert_eq!(p.features(), Features::NONE),
                Some(Family::V4) => assert_eq!(p.features(), Features::ALL),
                Some(Family::V6) => assert_eq!(p.features(), Features::MONITORING, "{}", ctx()),
            }
            if st.session.is_some() {
                sessions += 1;
            }
            if st.session == Some(Family::V6) {
                v6_sessions += 1;
            }
            pending.truncate(16);
        }
    }
    // The runs reached the interesting places, not just the start.
    std::println!("session steps {sessions}, IPv6 {v6_sessions}, stays {stays}, moves {moves}");
    assert!(sessions > 10_000, "{sessions}");
    assert!(v6_sessions > 1_000, "{v6_sessions}");
    assert!(stays > 100, "{stays}");
    assert!(moves > 10, "{moves}");
}
