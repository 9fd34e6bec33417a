//! How the policy takes each fact and result the agent reports; the round
//! logic that follows every input is in `round.rs`.

use smoltcp::time::Instant;
use smoltcp::wire::Ipv4Address;

use super::machine::{said, Ipv4Source, Policy, Round, Session, CAPS_IPV6};
use super::{Action, RecordProblem, SessionEnd, Startup, Step};
use crate::audit::PolicyEvent;
use crate::platform::HostFacts;
use crate::records::BmcCapsRecord;
use crate::types::Family;

impl Policy {
    pub(super) fn start(&mut self, now: Instant, s: Startup) {
        self.teardown(Family::V4);
        self.teardown(Family::V6);
        self.facts = s.facts;
        self.record = s.link_record.map(|r| r.ipv4);
        self.record_problem = None;
        self.caps = s.caps;
        self.v4_request = None;
        self.v4_bound = None;
        self.v6_requested = false;
        self.v6_bound = false;
        self.bmc_v6 = false;
        self.bmc_v6_no_answer = false;
        self.said = 0;
        self.backoff.reset();
        if s.link_up {
            self.begin_round(now);
        } else {
            self.round = Round::LinkDown;
        }
    }

    pub(super) fn link_down(&mut self) {
        if self.round == Round::NotStarted {
            return;
        }
        self.teardown(Family::V4);
        self.teardown(Family::V6);
        // Every address step is void with the carrier; a recorded address is
        // used again as-is on link up, never re-probed (P3).
        self.v4_request = None;
        self.v4_bound = None;
        self.v6_requested = false;
        self.v6_bound = false;
        self.bmc_v6 = false;
        self.bmc_v6_no_answer = false;
        self.round = Round::LinkDown;
    }

    pub(super) fn host_facts(&mut self, f: HostFacts) {
        let old = core::mem::replace(&mut self.facts, f);
        if let Some(addr) = self.record {
            if old.ipv4_present && !f.ipv4_present {
                self.block(RecordProblem::HostIpv4Vanished);
            }
            if f.ipv4_present && self.record_problem == Some(RecordProblem::HostIpv4Vanished) {
                self.record_problem = None;
                self.audit(PolicyEvent::RecordUsableAgain { addr });
            }
        } else if !f.ipv4_present && matches!(self.v4_bound, Some((_, Ipv4Source::Host))) {
            // Not ours to keep: with no record, P2 applies again.
            self.ipv4_lost();
        }
        if !f.ipv6_enabled {
            self.v6_requested = false;
            self.v6_bound = false;
            self.bmc_v6 = false;
        }
    }

    pub(super) fn link_record(&mut self, now: Instant, record: Option<Ipv4Address>) {
        if record == self.record {
            return;
        }
        self.record = record;
        if self.v4_request == Some(Ipv4Source::Recorded) {
            // That answer is about the old record: when it comes it is
            // unsolicited and ignored, and the next step follows the new one.
            self.v4_request = None;
            if self.v4.step == Step::Address {
                self.set(Family::V4, Step::Idle, None);
            }
        }
        if self.record_problem.take().is_some() {
            // `bmclink link reset` (or a new record): try again at once.
            self.backoff.reset();
            if matches!(self.round, Round::Backoff { .. } | Round::Stay(_)) {
                self.begin_round(now);
            }
        }
    }

    /// P3: the recorded configuration is unusable; IPv4 stays disconnected.
    pub(super) fn block(&mut self, problem: RecordProblem) {
        let Some(addr) = self.record else { return };
        if self.record_problem.is_some() {
            return;
        }
        self.record_problem = Some(problem);
        self.v4_bound = None;
        self.audit(PolicyEvent::RecordUnusable { addr, problem });
        self.push(Action::ReleaseIpv4);
    }

    pub(super) fn ipv4_claimed(&mut self, now: Instant, addr: Ipv4Address) {
        let Some(source) = self.v4_request.take() else {
            // The claim of the recorded address goes on after it was
            // reported failed (RFC 5227 rate limit): once it is ours again,
            // a backoff that waits for no reason any more ends now.
            if self.record == Some(addr) && self.v4_allowed() {
                self.v4_bound = Some((addr, Ipv4Source::Recorded));
                self.address_is_back(now, Family::V4);
            }
            return;
        };
        if source == Ipv4Source::Claim && self.record.is_none() {
            self.push(Action::SaveLinkRecord { addr });
            self.record = Some(addr);
            self.audit(PolicyEvent::Ipv4Configured { addr });
        }
        if self.record_problem.is_some() {
            return;
        }
        self.v4_bound = Some((addr, source));
        if self.v4.step == Step::Address && self.v4_allowed() {
            self.connect(now, Family::V4);
        }
    }

    pub(super) fn ipv4_claim_failed(&mut self, now: Instant) {
        match self.v4_request.take() {
            None => return,
            // Not a P3 problem: the agent keeps re-probing the same address
            // (RFC 5227) and reports it bound when the other host is gone.
            Some(Ipv4Source::Recorded) => {
                if let Some(addr) = self.record {
                    self.say_once(said::RECORD_BUSY, PolicyEvent::RecordedIpv4InUse { addr });
                }
            }
            Some(Ipv4Source::Claim) => self.audit(PolicyEvent::Ipv4ClaimFailed {
                preferred: self.cfg.preferred_ipv4,
            }),
            Some(Ipv4Source::Host) => {}
        }
        if self.v4.step == Step::Address {
            self.fail(now, Family::V4);
        }
    }

    /// The bound address went away. With a record that is no P3 problem
    /// either (the claim re-probes the recorded address): back through the
    /// policy, which asks for the recorded address again.
    pub(super) fn ipv4_lost(&mut self) {
        if self.v4_bound.take().is_none() {
            return;
        }
        self.drop_connection(Family::V4);
    }

    /// An address step the policy no longer waited for succeeded (a claim
    /// that goes on in the background after its failure was reported): the
    /// family is no longer failed. In a backoff the round starts again now
    /// (the backoff is not reset); in a round still trying the other family
    /// it may be tried again in it: IPv6 when IPv4 fails (P4 order kept),
    /// IPv4 at once unless IPv6 is already connecting.
    pub(super) fn address_is_back(&mut self, now: Instant, family: Family) {
        if self.session.is_some() {
            return;
        }
        match self.round {
            Round::Backoff { .. } => self.begin_round(now),
            Round::Trying { .. } if self.track(family).step == Step::Failed => {
                let v6_connecting = matches!(self.v6.step, Step::Connecting | Step::Connected);
                if family == Family::V6 || !v6_connecting {
                    self.set(family, Step::Idle, None);
                }
            }
            _ => {}
        }
    }

    /// An address under a connection went away: close it and go back
    /// through the policy at once (B5), without counting a failure.
    pub(super) fn drop_connection(&mut self, family: Family) {
        if matches!(self.track(family).step, Step::Connecting | Step::Connected) {
            self.teardown(family);
        }
    }

    pub(super) fn tcp_connected(&mut self, family: Family) {
        let allowed = match family {
            Family::V4 => self.v4_allowed(),
            Family::V6 => self.v6_allowed(),
        };
        if self.track(family).step != Step::Connecting || !allowed {
            self.push(Action::Disconnect { family });
            return;
        }
        self.set(family, Step::Connected, None);
        match self.session {
            None => {
                self.session = Some(Session {
                    family,
                    welcomed_at: None,
                });
                if family == Family::V4 {
                    // IPv4 won (B2): the IPv6 attempt is no longer wanted.
                    self.teardown(Family::V6);
                }
            }
            Some(s) if s.family == Family::V6 && family == Family::V4 => {
                self.teardown(Family::V6);
                self.session = Some(Session {
                    family,
                    welcomed_at: None,
                });
                self.audit(PolicyEvent::MovingBackToIpv4 {});
            }
            Some(_) => {
                self.push(Action::Disconnect { family });
                self.set(family, Step::Idle, None);
            }
        }
    }

    pub(super) fn welcome(
        &mut self,
        now: Instant,
        family: Family,
        firmware: [u8; 4],
        caps: u8,
        authenticated: bool,
    ) {
        let Some(s) = self.session.as_mut() else {
            return;
        };
        if s.family != family || s.welcomed_at.is_some() {
            return;
        }
        s.welcomed_at = Some(now);
        self.said = 0;
        if !authenticated {
            // Anyone answering the plain port can say anything: nothing it
            // says switches IPv6 off, for this session or across restarts.
            if family == Family::V6 {
                self.audit(PolicyEvent::Ipv6OnlySession {});
            }
            return;
        }
        let record = BmcCapsRecord {
            firmware,
            caps: caps & 0b111,
        };
        if caps & CAPS_IPV6 == 0 && !self.caps_without_v6() {
            self.audit(PolicyEvent::BmcWithoutIpv6 { firmware });
        }
        if caps & CAPS_IPV6 != 0 {
            self.bmc_v6_no_answer = false;
        }
        if self.caps != Some(record) {
            self.caps = Some(record);
            self.push(Action::SaveBmcCaps { record });
        }
        if family == Family::V6 {
            self.audit(PolicyEvent::Ipv6OnlySession {});
        }
    }

    pub(super) fn session_ended(&mut self, now: Instant, family: Family, _cause: SessionEnd) {
        match self.session {
            Some(s) if s.family == family => {
                self.session = None;
                let good = s.welcomed_at.is_some_and(|t| {
                    now.total_micros().saturating_sub(t.total_micros())
                        >= i64::try_from(self.cfg.good_session.total_micros()).unwrap_or(i64::MAX)
                });
                if good {
                    // B5: a good session resets the backoff; start over now.
                    self.backoff.reset();
                    self.set(family, Step::Idle, None);
                    self.begin_round(now);
                } else if s.welcomed_at.is_some() {
                    // The BMC answered over this family, so the family works
                    // (a BMC reboot soon after connecting is no reason to
                    // fall back): back off without resetting, then a new
                    // round tries the preferred family again.
                    self.set(family, Step::Idle, None);
                    self.enter_backoff(now);
                } else {
                    self.fail(now, family);
                }
            }
            _ => {
                if self.track(family).step == Step::Connecting {
                    self.fail(now, family);
                }
            }
        }
    }
}
