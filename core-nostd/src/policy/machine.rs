//! The [`Policy`] itself: its state, the public API and the inputs.
//! The round logic (what to start, when to back off or stay) is in `round.rs`.

use heapless::Deque;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::Ipv4Address;

use super::backoff::Backoff;
use super::{Action, Features, Input, Phase, PolicyConfig, PolicyState, RecordProblem, Step};
use crate::audit::PolicyEvent;
use crate::platform::HostFacts;
use crate::records::BmcCapsRecord;
use crate::types::Family;

/// Capacity of the action queue; a driver drains it after every call.
pub const ACTION_QUEUE: usize = 16;
/// Capacity of the audit queue; a driver drains it after every call.
pub const AUDIT_QUEUE: usize = 16;

/// WELCOME caps bit 2: the BMC has IPv6 on the USBNIC.
pub(super) const CAPS_IPV6: u8 = 0b100;

/// How the IPv4 address asked for or in use came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ipv4Source {
    /// `ClaimIpv4`: configured by us (P2).
    Claim,
    /// `UseRecordedIpv4` (P3).
    Recorded,
    /// `UseHostIpv4`.
    Host,
}

/// One family's step and the watchdog or timer on it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Track {
    pub(super) step: Step,
    pub(super) deadline: Option<Instant>,
}

/// The connection that is up, and since when it has a session.
#[derive(Debug, Clone, Copy)]
pub(super) struct Session {
    pub(super) family: Family,
    pub(super) welcomed_at: Option<Instant>,
}

/// What the policy as a whole does (the public [`Phase`] mirrors it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Round {
    NotStarted,
    LinkDown,
    Trying { race_at: Option<Instant> },
    Backoff { until: Instant },
    Stay(super::StayReason),
}

/// Audit events said once per outage (bits of `Policy::said`).
pub(super) mod said {
    pub const FALLBACK: u8 = 1 << 0;
    pub const HOST_IPV6: u8 = 1 << 1;
    pub const NO_ANSWER: u8 = 1 << 2;
    pub const BACKOFF_MAX: u8 = 1 << 3;
    pub const RECORD_BUSY: u8 = 1 << 4;
}

/// The fallback policy (DESIGN §4), sans I/O: see the [module](super) docs.
#[derive(Debug, Clone)]
pub struct Policy {
    pub(super) cfg: PolicyConfig,
    pub(super) facts: HostFacts,
    pub(super) record: Option<Ipv4Address>,
    pub(super) record_problem: Option<RecordProblem>,
    pub(super) caps: Option<BmcCapsRecord>,
    pub(super) round: Round,
    pub(super) v4: Track,
    pub(super) v6: Track,
    /// The IPv4 address step the agent has not answered yet.
    pub(super) v4_request: Option<Ipv4Source>,
    /// The bound IPv4 address and how it came.
    pub(super) v4_bound: Option<(Ipv4Address, Ipv4Source)>,
    pub(super) v6_requested: bool,
    pub(super) v6_bound: bool,
    pub(super) bmc_v6: bool,
    pub(super) bmc_v6_no_answer: bool,
    pub(super) session: Option<Session>,
    pub(super) backoff: Backoff,
    pub(super) said: u8,
    pub(super) last_now: Instant,
    actions: Deque<Action, ACTION_QUEUE>,
    audits: Deque<PolicyEvent, AUDIT_QUEUE>,
    actions_dropped: u16,
    audit_dropped: u16,
}

/// `now + d`, saturating instead of overflowing.
pub(super) fn later(now: Instant, d: Duration) -> Instant {
    let d = i64::try_from(d.total_micros()).unwrap_or(i64::MAX);
    Instant::from_micros(now.total_micros().saturating_add(d))
}

const IDLE: Track = Track {
    step: Step::Idle,
    deadline: None,
};

impl Policy {
    /// A policy that waits for [`Input::Start`]. `rng_seed` seeds the
    /// backoff jitter (take it from the platform's RNG; a test fixes it).
    pub fn new(cfg: PolicyConfig, now: Instant, rng_seed: u64) -> Self {
        Policy {
            cfg,
            facts: HostFacts::default(),
            record: None,
            record_problem: None,
            caps: None,
            round: Round::NotStarted,
            v4: IDLE,
            v6: IDLE,
            v4_request: None,
            v4_bound: None,
            v6_requested: false,
            v6_bound: false,
            bmc_v6: false,
            bmc_v6_no_answer: false,
            session: None,
            backoff: Backoff::new(rng_seed),
            said: 0,
            last_now: now,
            actions: Deque::new(),
            audits: Deque::new(),
            actions_dropped: 0,
            audit_dropped: 0,
        }
    }

    /// Feeds one input. Timers already due at `now` run first, so a driver
    /// that calls this late still sees events in time order. Time never goes
    /// backwards: an earlier `now` than the last one counts as the last one.
    pub fn handle(&mut self, now: Instant, input: Input) {
        let now = self.tick(now);
        self.expire(now);
        match input {
            Input::Start(s) => self.start(now, s),
            Input::Config(c) => {
                self.teardown(Family::V4);
                self.teardown(Family::V6);
                self.cfg = c;
                self.backoff.reset();
                self.restart_round(now);
            }
            Input::HostFacts(f) => self.host_facts(f),
            Input::LinkRecord(r) => self.link_record(now, r.map(|r| r.ipv4)),
            Input::BmcCaps(c) => {
                self.caps = c;
                if c.is_some_and(|c| c.caps & CAPS_IPV6 != 0) {
                    self.bmc_v6_no_answer = false;
                }
            }
            Input::LinkUp => {
                if self.round == Round::LinkDown {
                    self.backoff.reset();
                    self.begin_round(now);
                }
            }
            Input::LinkDown => self.link_down(),
            Input::Ipv4Claimed { addr } => self.ipv4_claimed(now, addr),
            Input::Ipv4ClaimFailed => self.ipv4_claim_failed(now),
            Input::Ipv4Lost => self.ipv4_lost(),
            Input::Ipv6Claimed => {
                let requested = core::mem::take(&mut self.v6_requested);
                if self.v6_allowed() {
                    self.v6_bound = true;
                    if !requested {
                        // DAD went on after its failure was reported.
                        if self.v6_candidate() {
                            self.address_is_back(now, Family::V6);
                        }
                    } else if self.v6.step == Step::Address && self.v6_candidate() {
                        self.start_v6(now);
                    }
                }
            }
            Input::Ipv6DadFailed => {
                if core::mem::take(&mut self.v6_requested) && self.v6.step == Step::Address {
                    self.fail(now, Family::V6);
                }
            }
            Input::Ipv6Lost => {
                self.v6_bound = false;
                self.drop_connection(Family::V6);
            }
            Input::BmcIpv6Learned => {
                self.bmc_v6 = true;
                if self.v6.step == Step::Discover && self.v6_candidate() {
                    self.connect(now, Family::V6);
                }
            }
            Input::BmcIpv6NotFound => {
                if self.v6.step == Step::Discover {
                    self.bmc_v6_no_answer = true;
                    self.say_once(said::NO_ANSWER, PolicyEvent::BmcIpv6NoAnswer {});
                    self.fail(now, Family::V6);
                }
            }
            Input::TcpConnected { family } => self.tcp_connected(family),
            Input::TcpRefused { family } | Input::TcpTimedOut { family } => {
                if self.track(family).step == Step::Connecting {
                    self.fail(now, family);
                }
            }
            Input::Welcome {
                family,
                firmware,
                caps,
                authenticated,
            } => self.welcome(now, family, firmware, caps, authenticated),
            Input::SessionEnded { family, cause } => self.session_ended(now, family, cause),
        }
        self.drive(now);
    }

    /// Runs the timers due at `now` (watchdogs, the B2 race delay, the end of
    /// a backoff). Call it when [`Policy::next_deadline`] has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.tick(now);
        self.expire(now);
        self.drive(now);
    }

    /// The next action for the agent, in the order decided.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next audit event (BL3xxx) for the agent's audit sink.
    pub fn poll_audit(&mut self) -> Option<PolicyEvent> {
        self.audits.pop_front()
    }

    /// When [`Policy::handle_timeout`] must run next. `None` only while
    /// connected with nothing else pending, or in a state that waits for an
    /// input: [`Phase::NotStarted`], [`Phase::LinkDown`], [`Phase::Stay`].
    pub fn next_deadline(&self) -> Option<Instant> {
        let mut next = min(self.v4.deadline, self.v6.deadline);
        match self.round {
            Round::Backoff { until } => next = min(next, Some(until)),
            Round::Trying { race_at: Some(t) }
                if self.session.is_none() && self.v6.step == Step::Idle && t > self.last_now =>
            {
                next = min(next, Some(t))
            }
            _ => {}
        }
        next
    }

    /// A snapshot for `status` and tests.
    pub fn state(&self) -> PolicyState {
        PolicyState {
            phase: match self.round {
                Round::NotStarted => Phase::NotStarted,
                Round::LinkDown => Phase::LinkDown,
                Round::Trying { .. } => Phase::Trying,
                Round::Backoff { until } => Phase::Backoff { until },
                Round::Stay(r) => Phase::Stay(r),
            },
            ipv4: self.v4.step,
            ipv6: self.v6.step,
            connected: self.session.map(|s| s.family),
            session: self.session_family(),
            features: self.features(),
            ipv4_addr: self.v4_bound.map(|(a, _)| a),
            link_record: self.record,
            record_problem: self.record_problem,
            bmc_without_ipv6: self.caps_without_v6() || self.bmc_v6_no_answer,
            backoff_step: self.backoff.step(),
            audit_dropped: self.audit_dropped,
            actions_dropped: self.actions_dropped,
        }
    }

    /// P8: the family of the session (WELCOME received), for the agent's
    /// session-start audit event.
    pub fn session_family(&self) -> Option<Family> {
        self.session
            .filter(|s| s.welcomed_at.is_some())
            .map(|s| s.family)
    }

    /// P10: the features the current session makes available. This is the
    /// one source of truth: the status, the audit event (BL3012) and the
    /// shim's hosts block all follow it.
    pub fn features(&self) -> Features {
        Features::of_session(self.session_family())
    }

    /// The configuration in force.
    pub fn config(&self) -> &PolicyConfig {
        &self.cfg
    }

    fn tick(&mut self, now: Instant) -> Instant {
        if now > self.last_now {
            self.last_now = now;
        }
        self.last_now
    }

    pub(super) fn push(&mut self, action: Action) {
        if self.actions.push_back(action).is_err() {
            self.actions_dropped = self.actions_dropped.saturating_add(1);
        }
    }

    pub(super) fn audit(&mut self, event: PolicyEvent) {
        if self.audits.push_back(event).is_err() {
            self.audit_dropped = self.audit_dropped.saturating_add(1);
        }
    }

    pub(super) fn say_once(&mut self, bit: u8, event: PolicyEvent) {
        if self.said & bit == 0 {
            self.said |= bit;
            self.audit(event);
        }
    }

    pub(super) fn track(&self, family: Family) -> Track {
        match family {
            Family::V4 => self.v4,
            Family::V6 => self.v6,
        }
    }

    pub(super) fn set(&mut self, family: Family, step: Step, deadline: Option<Instant>) {
        let t = match family {
            Family::V4 => &mut self.v4,
            Family::V6 => &mut self.v6,
        };
        *t = Track { step, deadline };
    }

    pub(super) fn caps_without_v6(&self) -> bool {
        self.caps.is_some_and(|c| c.caps & CAPS_IPV6 == 0)
    }
}

fn min(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if a < b { a } else { b }),
        (a, None) => a,
        (None, b) => b,
    }
}
