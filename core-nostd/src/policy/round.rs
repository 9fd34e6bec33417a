//! The round logic: which family to start, when to fall back, back off or
//! stay disconnected. Runs after every input and timer (`drive`).

use smoltcp::time::Instant;

use super::machine::{later, said, Ipv4Source, Policy, Round};
use super::{Action, Ipv4Unavailable, Ipv6Unavailable, StayReason, Step};
use crate::audit::PolicyEvent;
use crate::types::Family;

impl Policy {
    /// P6 + P3: IPv4 may be used at all.
    pub(super) fn v4_allowed(&self) -> bool {
        self.cfg.ipv4 && self.record_problem.is_none()
    }

    /// P6 + P5: IPv6 may be used at all; when not, nothing IPv6 is emitted.
    pub(super) fn v6_allowed(&self) -> bool {
        self.cfg.ipv6 && self.facts.ipv6_enabled
    }

    /// P7 on top: whether to start IPv6. Caps without IPv6 rule it out; a
    /// BMC that did not answer over IPv6 rules it out only while IPv4 is an
    /// option (it may have been booting).
    pub(super) fn v6_candidate(&self) -> bool {
        self.v6_allowed()
            && !self.caps_without_v6()
            && !(self.bmc_v6_no_answer && self.v4_allowed())
    }

    /// Runs the timers due at `now`.
    pub(super) fn expire(&mut self, now: Instant) {
        for family in [Family::V4, Family::V6] {
            let t = self.track(family);
            let Some(deadline) = t.deadline else { continue };
            if deadline > now {
                continue;
            }
            match t.step {
                Step::Address | Step::Discover => {
                    self.audit(PolicyEvent::StepTimedOut { family });
                    self.fail(now, family);
                }
                Step::Connecting => {
                    self.push(Action::Disconnect { family });
                    self.audit(PolicyEvent::StepTimedOut { family });
                    self.fail(now, family);
                }
                Step::Waiting => self.set(family, Step::Idle, None),
                Step::Idle | Step::Connected | Step::Failed => self.set(family, t.step, None),
            }
        }
        if let Round::Backoff { until } = self.round {
            if until <= now {
                self.begin_round(now);
            }
        }
    }

    /// Decides what to start next; idempotent.
    pub(super) fn drive(&mut self, now: Instant) {
        if matches!(self.round, Round::NotStarted | Round::LinkDown) {
            return;
        }
        if !self.v4_allowed() {
            self.teardown(Family::V4);
        }
        // P7 news (caps, no answer) stops an IPv6 attempt but not a
        // connection that is already up.
        if !self.v6_allowed() || (!self.v6_candidate() && self.v6.step != Step::Connected) {
            self.teardown(Family::V6);
        }
        if let Some(s) = self.session {
            // B2: IPv4 stays preferred; keep trying it under an IPv6 session.
            if s.family == Family::V6
                && self.cfg.race
                && self.v4_allowed()
                && self.v4.step == Step::Idle
            {
                self.start_v4(now);
            }
            return;
        }
        let v4c = self.v4_allowed();
        let v6c = self.v6_candidate();
        if !v4c && !v6c {
            self.stay();
            return;
        }
        match self.round {
            Round::Stay(_) => self.begin_round(now),
            Round::Backoff { .. } => return,
            _ => {}
        }
        if v4c && self.v4.step == Step::Idle {
            self.start_v4(now);
        }
        let v4_out = !v4c || self.v4.step == Step::Failed;
        let race_due = matches!(self.round, Round::Trying { race_at: Some(t) } if now >= t);
        if v6c && self.v6.step == Step::Idle && (v4_out || (self.cfg.race && race_due)) {
            if v4c && v4_out {
                self.say_once(said::FALLBACK, PolicyEvent::FallingBackToIpv6 {});
            }
            self.start_v6(now);
        }
        let v6_out = !v6c || self.v6.step == Step::Failed;
        if v4_out && v6_out {
            if v4c && self.cfg.ipv6 && !self.facts.ipv6_enabled {
                self.say_once(said::HOST_IPV6, PolicyEvent::Ipv6DisabledOnHost {});
            }
            self.enter_backoff(now);
        }
    }

    /// A new round: failed families may be tried again; steps in progress
    /// keep going.
    pub(super) fn begin_round(&mut self, now: Instant) {
        for family in [Family::V4, Family::V6] {
            let t = self.track(family);
            if matches!(t.step, Step::Failed | Step::Waiting | Step::Idle) {
                self.set(family, Step::Idle, None);
            }
        }
        let race_at = self.cfg.race.then(|| later(now, self.cfg.race_delay));
        self.round = Round::Trying { race_at };
    }

    /// After a new configuration: start over unless waiting for start or link.
    pub(super) fn restart_round(&mut self, now: Instant) {
        if !matches!(self.round, Round::NotStarted | Round::LinkDown) {
            self.begin_round(now);
        }
    }

    pub(super) fn enter_backoff(&mut self, now: Instant) {
        let (min, max) = (self.cfg.backoff_min, self.cfg.backoff_max);
        let at_max = self.backoff.base(min, max) >= max;
        let delay = self.backoff.next(min, max);
        self.round = Round::Backoff {
            until: later(now, delay),
        };
        let event = PolicyEvent::Backoff {
            delay_ms: delay.total_millis(),
        };
        if at_max {
            self.say_once(said::BACKOFF_MAX, event);
        } else {
            self.audit(event);
        }
    }

    /// No family is usable: stop everything and wait for an input.
    fn stay(&mut self) {
        let reason = StayReason {
            ipv4: match self.record_problem {
                _ if !self.cfg.ipv4 => Ipv4Unavailable::Disabled,
                Some(p) => Ipv4Unavailable::RecordUnusable(p),
                None => Ipv4Unavailable::Usable,
            },
            ipv6: if !self.cfg.ipv6 {
                Ipv6Unavailable::Disabled
            } else if !self.facts.ipv6_enabled {
                Ipv6Unavailable::HostDisabled
            } else if self.caps_without_v6() {
                Ipv6Unavailable::BmcWithoutIpv6
            } else {
                Ipv6Unavailable::Usable
            },
        };
        self.teardown(Family::V4);
        self.teardown(Family::V6);
        if self.round == Round::Stay(reason) {
            return;
        }
        self.round = Round::Stay(reason);
        self.push(Action::StayDisconnected { reason });
        if !self.cfg.ipv4 && !self.cfg.ipv6 {
            self.audit(PolicyEvent::NothingEnabled {});
        } else {
            self.audit(PolicyEvent::StayingDisconnected { reason });
        }
    }

    /// Stops whatever `family` is doing: a connection or connection attempt
    /// is dropped with [`Action::Disconnect`]; an address step is left to
    /// finish (its result is kept as knowledge).
    pub(super) fn teardown(&mut self, family: Family) {
        let t = self.track(family);
        if matches!(t.step, Step::Connecting | Step::Connected) {
            self.push(Action::Disconnect { family });
        }
        if self.session.is_some_and(|s| s.family == family) {
            self.session = None;
        }
        if t.step != Step::Idle {
            self.set(family, Step::Idle, None);
        }
    }

    /// `family` failed in this round. Under a B2 IPv6 session IPv4 waits for
    /// its next try instead.
    pub(super) fn fail(&mut self, now: Instant, family: Family) {
        let v6_session = self.session.is_some_and(|s| s.family == Family::V6);
        if family == Family::V4 && v6_session && self.cfg.race {
            let delay = self
                .backoff
                .next(self.cfg.backoff_min, self.cfg.backoff_max);
            self.set(family, Step::Waiting, Some(later(now, delay)));
        } else {
            self.set(family, Step::Failed, None);
        }
    }

    /// P1/P2/P3/P9: get an IPv4 address, or connect when one is bound.
    pub(super) fn start_v4(&mut self, now: Instant) {
        let watchdog = Some(later(now, self.cfg.address_timeout));
        if self.v4_bound.is_some() {
            self.connect(now, Family::V4);
            return;
        }
        if self.v4_request.is_none() {
            let source = if let Some(addr) = self.record {
                self.push(Action::UseRecordedIpv4 { addr });
                Ipv4Source::Recorded
            } else if self.facts.ipv4_present {
                self.push(Action::UseHostIpv4);
                Ipv4Source::Host
            } else {
                // P9: an IPv6-only USBNIC does not count as configured.
                self.push(Action::ClaimIpv4 {
                    preferred: self.cfg.preferred_ipv4,
                });
                Ipv4Source::Claim
            };
            self.v4_request = Some(source);
        }
        self.set(Family::V4, Step::Address, watchdog);
    }

    /// P4: IPv6 link-local: address, then the BMC's address, then connect.
    pub(super) fn start_v6(&mut self, now: Instant) {
        let watchdog = Some(later(now, self.cfg.address_timeout));
        if !self.v6_bound {
            if !self.v6_requested {
                self.push(Action::StartIpv6);
                self.v6_requested = true;
            }
            self.set(Family::V6, Step::Address, watchdog);
        } else if !self.bmc_v6 {
            self.push(Action::DiscoverBmcIpv6);
            self.set(Family::V6, Step::Discover, watchdog);
        } else {
            self.connect(now, Family::V6);
        }
    }

    pub(super) fn connect(&mut self, now: Instant, family: Family) {
        self.push(Action::Connect { family });
        let watchdog = later(now, self.cfg.connect_watchdog());
        self.set(family, Step::Connecting, Some(watchdog));
    }
}
