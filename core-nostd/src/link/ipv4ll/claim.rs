//! The RFC 5227 claim of one IPv4 link-local address: probe, announce,
//! defend, and after a conflict either RFC 3927 selection of the next
//! address or, for the recorded address, a new probe of the same one.

use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, Ipv4Address};

use super::arp::{self, ArpKind, Inspected};
use super::retry::Retry;
use super::select;
use super::{
    ANNOUNCE_INTERVAL, ANNOUNCE_NUM, ANNOUNCE_WAIT, DEFEND_INTERVAL, MAX_CONFLICTS, PROBE_MAX,
    PROBE_MIN, PROBE_NUM, PROBE_WAIT, RATE_LIMIT_INTERVAL,
};
use crate::audit::LinkEvent;
use crate::link::claim::{Claim, Counters, EventQueue, Prng, Received, Verdict};
use crate::time::SaturatingAdd;

/// Where a claim stands (RFC 5227 §2.1–2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Ipv4ClaimState {
    /// Not started, or stopped.
    Idle,
    /// Waiting a random 0..PROBE_WAIT before the first probe.
    ProbeWait,
    /// Waiting RATE_LIMIT_INTERVAL before the next attempt (RFC 3927
    /// MAX_CONFLICTS reached).
    RateLimited,
    /// Sending the PROBE_NUM probes.
    Probing,
    /// All probes sent; waiting ANNOUNCE_WAIT for a conflict.
    AnnounceWait,
    /// The address is ours; the ANNOUNCE_NUM announcements are going out.
    Announcing,
    /// The address is ours and announced; conflicts are defended.
    Bound,
}

/// What a claim reports to its driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Ipv4ClaimEvent {
    /// The address passed probing: the driver adds it to smoltcp now.
    Bound {
        /// The claimed address.
        addr: Ipv4Address,
    },
    /// Another host uses (or probes for) the candidate; the claim moves on
    /// by itself, to another address or (recorded address) the same one.
    Conflict {
        /// The candidate that was given up.
        addr: Ipv4Address,
        /// The other host's MAC.
        from: EthernetAddress,
        /// What the claim tries next.
        then: Retry,
    },
    /// A conflicting ARP for the bound address was answered with one
    /// announcement (RFC 5227 §2.4 (b)).
    Defended {
        /// Our bound address.
        addr: Ipv4Address,
        /// The other host's MAC.
        from: EthernetAddress,
    },
    /// A second conflict within DEFEND_INTERVAL: the address was given up
    /// (the driver removes it from smoltcp) and a new attempt has started.
    Lost {
        /// The address that was given up.
        addr: Ipv4Address,
        /// The other host's MAC.
        from: EthernetAddress,
        /// What the claim tries next.
        then: Retry,
    },
    /// MAX_CONFLICTS conflicts in a row: the next attempt waits `wait`.
    RateLimited {
        /// The address the next attempt probes.
        addr: Ipv4Address,
        /// Conflicts in a row so far.
        conflicts: u32,
        /// How long until the next attempt's first probe (at least
        /// RATE_LIMIT_INTERVAL).
        wait: Duration,
    },
}

impl Ipv4ClaimEvent {
    /// The audit event the agent records for this claim event.
    pub fn audit(&self) -> LinkEvent {
        match *self {
            Ipv4ClaimEvent::Bound { addr } => LinkEvent::Ipv4Bound { addr },
            Ipv4ClaimEvent::Conflict { addr, from, then } => LinkEvent::Ipv4Conflict {
                addr,
                mac: from,
                then,
            },
            Ipv4ClaimEvent::Defended { addr, from } => LinkEvent::Ipv4Defended { addr, mac: from },
            Ipv4ClaimEvent::Lost { addr, from, then } => LinkEvent::Ipv4Lost {
                addr,
                mac: from,
                then,
            },
            Ipv4ClaimEvent::RateLimited {
                addr,
                conflicts,
                wait,
            } => LinkEvent::Ipv4RateLimited {
                addr,
                conflicts,
                wait_secs: u32::try_from(wait.secs()).unwrap_or(u32::MAX),
            },
        }
    }
}

/// The timers of each phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    /// Before the first probe; `rate_limited` when the wait is RATE_LIMIT_INTERVAL.
    Waiting {
        until: Instant,
        rate_limited: bool,
    },
    /// `sent` probes out; at `next` the next probe (or, after the last, the bind).
    Probing {
        sent: u8,
        next: Instant,
    },
    /// Bound; `sent` announcements out, `next` is due at `next` (if any left).
    Bound {
        sent: u8,
        next: Instant,
        last_conflict: Option<Instant>,
    },
}

/// Frames waiting for `poll_transmit`; a few at most (one timer frame, one
/// defence, a probe answer or two).
const PENDING: usize = 4;
/// Events waiting for `poll_event`.
const EVENTS: usize = 8;

/// One RFC 5227 claim of an IPv4 link-local address on one interface.
///
/// Sans-I/O: feed it every received frame ([`handle_frame`](Self::handle_frame))
/// and the time, drain [`poll_transmit`](Self::poll_transmit) and
/// [`poll_event`](Self::poll_event), and wake it at [`poll_at`](Self::poll_at).
/// Timers fire inside `poll_transmit`, `handle_frame` and
/// [`handle_timeout`](Self::handle_timeout).
///
/// Decisions where the RFCs leave room:
/// - The first attempt uses the preferred address (BMC + 1), even outside
///   the RFC 3927 range (older iDRAC firmware sits at 169.254.0.1, so the
///   host takes 169.254.0.2); every later attempt an RFC 3927 pick seeded by
///   the MAC and the seed, never the one just lost.
/// - A claim of the recorded address ([`Ipv4Claim::recorded`], or
///   [`Ipv4Claim::keep_address`] once the link record is written) never
///   picks another: after a conflict it probes the same address again, with
///   the same PROBE_WAIT and, after MAX_CONFLICTS, the same one attempt per
///   RATE_LIMIT_INTERVAL, so a host that squats on it for an hour gets
///   about one probe a minute and loses the address as soon as it stops.
/// - The conflict count behind MAX_CONFLICTS counts conflicts since the last
///   successful bind (a lost address counts too); a bind resets it.
/// - The address is bound (event `Bound`) when the first announcement goes
///   out, ANNOUNCE_WAIT after the last probe; from then on conflicts are
///   defended, not fled.
/// - A probe from another host for our bound address is answered with an ARP
///   reply (smoltcp ignores probes), so the prober sees the conflict.
#[derive(Debug)]
pub struct Ipv4Claim {
    mac: EthernetAddress,
    preferred: Ipv4Address,
    rng: Prng,
    phase: Phase,
    candidate: Ipv4Address,
    conflicts_in_a_row: u32,
    retry: Retry,
    pending: heapless::Deque<(ArpKind, Instant), PENDING>,
    events: EventQueue<Ipv4ClaimEvent, EVENTS>,
    counters: Counters,
}

impl Ipv4Claim {
    /// A claim for `mac`, trying `preferred` first; `seed` varies the
    /// random delays and picks between hosts that share a MAC (a test rig).
    pub fn new(mac: [u8; 6], preferred: Ipv4Address, seed: u64) -> Self {
        Ipv4Claim {
            mac: EthernetAddress(mac),
            preferred,
            rng: Prng::new(seed, mac),
            phase: Phase::Idle,
            candidate: preferred,
            conflicts_in_a_row: 0,
            retry: Retry::Another,
            pending: heapless::Deque::new(),
            events: EventQueue::new(),
            counters: Counters::default(),
        }
    }

    /// A claim of the recorded address `addr` (P3): it is probed like any
    /// candidate but never replaced by another (see the type's docs).
    pub fn recorded(mac: [u8; 6], addr: Ipv4Address, seed: u64) -> Self {
        let mut claim = Ipv4Claim::new(mac, addr, seed);
        claim.retry = Retry::Same;
        claim
    }

    /// From now on the address this claim holds is the recorded one: a
    /// later conflict probes it again instead of picking another.
    pub fn keep_address(&mut self) {
        self.preferred = self.candidate;
        self.retry = Retry::Same;
    }

    /// What this claim tries after giving its address up.
    pub fn retry(&self) -> Retry {
        self.retry
    }

    /// Begins (or restarts) a claim of the preferred address: a random wait
    /// of 0..PROBE_WAIT, then the probes. Honours the rate limit if
    /// MAX_CONFLICTS conflicts happened since the last bind.
    pub fn start(&mut self, now: Instant) {
        self.pending.clear();
        // A preferred address no host can own (0.0.0.0, broadcast,
        // multicast: a configuration mistake) gives way to an RFC 3927 pick.
        let p = self.preferred;
        let first = if p.is_unspecified() || p.is_broadcast() || p.is_multicast() {
            select::pick(&mut self.rng, p)
        } else {
            p
        };
        self.begin_attempt(now, first);
    }

    /// Stops the claim: no more frames, timers or events; an address that
    /// was bound is no longer (the driver removes it from smoltcp).
    pub fn stop(&mut self) {
        self.phase = Phase::Idle;
        self.pending.clear();
    }

    /// Where the claim stands.
    pub fn state(&self) -> Ipv4ClaimState {
        match self.phase {
            Phase::Idle => Ipv4ClaimState::Idle,
            Phase::Waiting {
                rate_limited: true, ..
            } => Ipv4ClaimState::RateLimited,
            Phase::Waiting { .. } => Ipv4ClaimState::ProbeWait,
            Phase::Probing { sent, .. } if sent < PROBE_NUM => Ipv4ClaimState::Probing,
            Phase::Probing { .. } => Ipv4ClaimState::AnnounceWait,
            Phase::Bound { sent, .. } if sent < ANNOUNCE_NUM => Ipv4ClaimState::Announcing,
            Phase::Bound { .. } => Ipv4ClaimState::Bound,
        }
    }

    /// The address this claim owns, once bound.
    pub fn bound(&self) -> Option<Ipv4Address> {
        match self.phase {
            Phase::Bound { .. } => Some(self.candidate),
            _ => None,
        }
    }

    /// The address being probed, while it is still tentative.
    pub fn candidate(&self) -> Option<Ipv4Address> {
        match self.phase {
            Phase::Waiting { .. } | Phase::Probing { .. } => Some(self.candidate),
            _ => None,
        }
    }

    /// Conflicts since the last bind (what MAX_CONFLICTS is compared with).
    pub fn conflicts_in_a_row(&self) -> u32 {
        self.conflicts_in_a_row
    }

    /// The counters (malformed frames dropped, echoes, conflicts, defences).
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// When the claim next needs `poll_transmit` or `handle_timeout`; a time
    /// in the past means now.
    pub fn poll_at(&self) -> Option<Instant> {
        if let Some((_, at)) = self.pending.front() {
            return Some(*at);
        }
        match self.phase {
            Phase::Idle => None,
            Phase::Waiting { until, .. } => Some(until),
            Phase::Probing { next, .. } => Some(next),
            Phase::Bound { sent, next, .. } if sent < ANNOUNCE_NUM => Some(next),
            Phase::Bound { .. } => None,
        }
    }

    /// Runs the timers that are due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Ipv4ClaimEvent> {
        self.events.pop()
    }

    /// Writes the next frame to send (a whole Ethernet frame) into `buf` and
    /// returns its length; `None` when nothing is due. A `buf` shorter than
    /// [`ARP_FRAME_LEN`](super::ARP_FRAME_LEN) keeps the frame queued.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        self.advance(now);
        let (kind, _) = *self.pending.front()?;
        let len = arp::emit(kind, self.mac, buf)?;
        let _ = self.pending.pop_front();
        Some(len)
    }

    /// Inspects any received Ethernet frame (only ARP is looked at) and says
    /// whether smoltcp may see it too (see [`Verdict`]): withheld are our own
    /// echoed ARP, ARP about the tentative candidate, and conflicting ARP for
    /// the bound address; malformed ARP is dropped and counted.
    pub fn handle_frame(&mut self, now: Instant, frame: &[u8]) -> Verdict {
        self.handle_arp(now, arp::inspect(frame))
    }

    /// [`handle_frame`](Self::handle_frame) for a frame already inspected.
    pub fn handle_arp(&mut self, now: Instant, inspected: Inspected) -> Verdict {
        // A timer that is due happened before this frame arrived.
        self.advance(now);
        let arp = match inspected {
            Inspected::NotArp => return Verdict::Pass,
            Inspected::Malformed => {
                self.counters.malformed = self.counters.malformed.wrapping_add(1);
                return Verdict::Malformed;
            }
            Inspected::Arp(arp) => arp,
        };
        // Our own probes and announcements echoed back are never a conflict,
        // and smoltcp has nothing to learn from them.
        if arp.sender_mac == self.mac {
            self.counters.own_echoes = self.counters.own_echoes.wrapping_add(1);
            return Verdict::Withhold;
        }
        let c = self.candidate;
        match self.phase {
            Phase::Idle => Verdict::Pass,
            // Waiting out the rate limit is not probing yet (RFC 5227
            // §2.1.1 looks for conflicts from the first probe's PROBE_WAIT
            // on): a squatter's announcements neither restart the wait nor
            // fill the audit log, and the next attempt meets them anyway.
            Phase::Waiting {
                rate_limited: true, ..
            } => {
                if arp.sender_ip == c || arp.target_ip == c {
                    Verdict::Withhold
                } else {
                    Verdict::Pass
                }
            }
            Phase::Waiting { .. } | Phase::Probing { .. } => {
                // RFC 5227 §2.1.1: any ARP with our candidate as sender IP, or
                // a probe from another host for our candidate.
                if arp.sender_ip == c || (arp.is_probe() && arp.target_ip == c) {
                    self.conflict_while_probing(now, arp.sender_mac);
                    Verdict::Withhold
                } else if arp.target_ip == c {
                    Verdict::Withhold
                } else {
                    Verdict::Pass
                }
            }
            Phase::Bound { last_conflict, .. } => {
                if arp.sender_ip == c {
                    self.conflict_while_bound(now, arp.sender_mac, last_conflict);
                    Verdict::Withhold
                } else if arp.is_probe() && arp.target_ip == c {
                    self.counters.defended = self.counters.defended.wrapping_add(1);
                    self.queue(
                        ArpKind::Reply {
                            addr: c,
                            to: arp.sender_mac,
                        },
                        now,
                    );
                    Verdict::Withhold
                } else {
                    Verdict::Pass
                }
            }
        }
    }

    fn queue(&mut self, kind: ArpKind, now: Instant) {
        // A full queue means the driver is not draining; the timers resend.
        let _ = self.pending.push_back((kind, now));
    }

    fn event(&mut self, event: Ipv4ClaimEvent) {
        self.events.push(event, &mut self.counters);
    }

    /// Starts an attempt on `addr`: the random PROBE_WAIT, or the rate limit.
    fn begin_attempt(&mut self, now: Instant, addr: Ipv4Address) {
        self.candidate = addr;
        let wait = self.rng.duration_between(Duration::ZERO, PROBE_WAIT);
        if self.conflicts_in_a_row >= MAX_CONFLICTS {
            let wait = RATE_LIMIT_INTERVAL.saturating_add(wait);
            self.phase = Phase::Waiting {
                until: now.saturating_add(wait),
                rate_limited: true,
            };
            self.event(Ipv4ClaimEvent::RateLimited {
                addr,
                conflicts: self.conflicts_in_a_row,
                wait,
            });
        } else {
            self.phase = Phase::Waiting {
                until: now.saturating_add(wait),
                rate_limited: false,
            };
        }
    }

    fn next_attempt(&mut self, now: Instant, lost: Ipv4Address) {
        self.counters.conflicts = self.counters.conflicts.wrapping_add(1);
        self.conflicts_in_a_row = self.conflicts_in_a_row.saturating_add(1);
        // Probes of the abandoned attempt must not go out any more.
        self.pending.clear();
        let next = match self.retry {
            Retry::Another => select::pick(&mut self.rng, lost),
            Retry::Same => lost,
        };
        self.begin_attempt(now, next);
    }

    fn conflict_while_probing(&mut self, now: Instant, from: EthernetAddress) {
        let addr = self.candidate;
        warn!("ipv4ll: conflict on candidate {} from {}", addr, from);
        let then = self.retry;
        self.event(Ipv4ClaimEvent::Conflict { addr, from, then });
        self.next_attempt(now, addr);
    }

    fn conflict_while_bound(
        &mut self,
        now: Instant,
        from: EthernetAddress,
        last_conflict: Option<Instant>,
    ) {
        let addr = self.candidate;
        let recent = last_conflict.is_some_and(|t| now < t.saturating_add(DEFEND_INTERVAL));
        if recent {
            // RFC 5227 §2.4 (b): a second conflict within DEFEND_INTERVAL.
            warn!("ipv4ll: lost {} to {}", addr, from);
            let then = self.retry;
            self.event(Ipv4ClaimEvent::Lost { addr, from, then });
            self.next_attempt(now, addr);
            return;
        }
        if let Phase::Bound { last_conflict, .. } = &mut self.phase {
            *last_conflict = Some(now);
        }
        self.counters.conflicts = self.counters.conflicts.wrapping_add(1);
        self.counters.defended = self.counters.defended.wrapping_add(1);
        info!("ipv4ll: defending {} against {}", addr, from);
        self.queue(ArpKind::Announce(addr), now);
        self.event(Ipv4ClaimEvent::Defended { addr, from });
    }

    /// Fires the timer that is due, if any; at most one frame per call, and
    /// the next timer counts from `now`, so a late driver never squeezes the
    /// RFC intervals.
    fn advance(&mut self, now: Instant) {
        if !self.pending.is_empty() {
            return;
        }
        let addr = self.candidate;
        match self.phase {
            Phase::Idle => {}
            Phase::Waiting { until, .. } if now >= until => {
                self.queue(ArpKind::Probe(addr), now);
                self.phase = Phase::Probing {
                    sent: 1,
                    next: now.saturating_add(self.probe_gap(1)),
                };
            }
            Phase::Probing { sent, next } if now >= next => {
                if sent < PROBE_NUM {
                    self.queue(ArpKind::Probe(addr), now);
                    let sent = sent.saturating_add(1);
                    self.phase = Phase::Probing {
                        sent,
                        next: now.saturating_add(self.probe_gap(sent)),
                    };
                } else {
                    // ANNOUNCE_WAIT passed without a conflict: the address is ours.
                    self.conflicts_in_a_row = 0;
                    self.queue(ArpKind::Announce(addr), now);
                    self.phase = Phase::Bound {
                        sent: 1,
                        next: now.saturating_add(ANNOUNCE_INTERVAL),
                        last_conflict: None,
                    };
                    info!("ipv4ll: bound {}", addr);
                    self.event(Ipv4ClaimEvent::Bound { addr });
                }
            }
            Phase::Bound {
                sent,
                next,
                last_conflict,
            } if sent < ANNOUNCE_NUM && now >= next => {
                self.queue(ArpKind::Announce(addr), now);
                self.phase = Phase::Bound {
                    sent: sent.saturating_add(1),
                    next: now.saturating_add(ANNOUNCE_INTERVAL),
                    last_conflict,
                };
            }
            _ => {}
        }
    }

    /// The wait after probe number `sent`: PROBE_MIN..PROBE_MAX between
    /// probes, ANNOUNCE_WAIT after the last.
    fn probe_gap(&mut self, sent: u8) -> Duration {
        if sent < PROBE_NUM {
            self.rng.duration_between(PROBE_MIN, PROBE_MAX)
        } else {
            ANNOUNCE_WAIT
        }
    }
}

impl Claim for Ipv4Claim {
    fn handle(&mut self, now: Instant, frame: &Received<'_>) -> Verdict {
        self.handle_arp(now, frame.arp)
    }

    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        Ipv4Claim::poll_transmit(self, now, buf)
    }

    fn poll_at(&self) -> Option<Instant> {
        Ipv4Claim::poll_at(self)
    }

    fn handle_timeout(&mut self, now: Instant) {
        Ipv4Claim::handle_timeout(self, now)
    }
}
