//! The RFC 4862 claim of the IPv6 link-local address: join the
//! solicited-node group, one DAD solicitation, RFC 7217 regeneration on a
//! duplicate, a pause and a new start after IDGEN_RETRIES, optional RFC
//! 4429 optimistic use.

use core::fmt;

use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, Ipv6Address};

use super::iid::{eui64_iid, link_local, multicast_mac, solicited_node, stable_iid};
use super::ndp::{self, Inspected, Neighbor};
use super::{
    DAD_RETRY_INTERVAL, IDGEN_DELAY, IDGEN_RETRIES, MAX_RTR_SOLICITATION_DELAY, RETRANS_TIMER,
};
use crate::audit::LinkEvent;
use crate::link::claim::{Claim, Counters, EventQueue, Prng, Received, Verdict};
use crate::time::SaturatingAdd;

/// How the interface identifier is made.
#[derive(Clone, PartialEq, Eq)]
pub enum IidMode {
    /// RFC 7217 stable, opaque identifier (the default): HMAC-SHA256 keyed by
    /// the per-install secret, over fe80::/64, the MAC (Net_Iface), an empty
    /// Network_ID and the DAD counter. Regenerated on a duplicate.
    Stable {
        /// The per-install secret (`Record::StableSecret`), 256 bits.
        secret: [u8; 32],
    },
    /// RFC 4291 modified EUI-64 from the MAC. It cannot be regenerated: a
    /// duplicate fails at once (RFC 4862 §5.4.5).
    Eui64,
}

impl fmt::Debug for IidMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The secret never goes into a log.
        match self {
            IidMode::Stable { .. } => f.write_str("Stable { secret: <redacted> }"),
            IidMode::Eui64 => f.write_str("Eui64"),
        }
    }
}

/// Where a claim stands (RFC 4862 §5.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Ipv6ClaimState {
    /// Not started, or stopped.
    Idle,
    /// Waiting IDGEN_DELAY before trying a regenerated identifier.
    IdgenDelay,
    /// Joined the solicited-node group; waiting a random
    /// 0..MAX_RTR_SOLICITATION_DELAY before the solicitation.
    Delay,
    /// Solicitation sent; waiting RetransTimer for an answer.
    Tentative,
    /// DAD passed: the address is the host's.
    Bound,
    /// Every identifier allowed in a row was a duplicate: IPv6 is off until
    /// DAD starts over with DAD counter 0, DAD_RETRY_INTERVAL later.
    Failed,
}

/// What a claim reports to its driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Ipv6ClaimEvent {
    /// Optimistic DAD only: the tentative address may be used now (RFC
    /// 4429); a `Duplicate` later withdraws it.
    Optimistic {
        /// The optimistic address.
        addr: Ipv6Address,
    },
    /// DAD passed: the driver adds the address to smoltcp (if not already
    /// there as optimistic).
    Bound {
        /// The address.
        addr: Ipv6Address,
    },
    /// The tentative address is in use elsewhere; a new identifier with
    /// `dad_counter` follows after IDGEN_DELAY.
    Duplicate {
        /// The duplicate address (withdrawn if it was optimistic).
        addr: Ipv6Address,
        /// The other host's MAC.
        from: EthernetAddress,
        /// The DAD counter of the next identifier.
        dad_counter: u8,
    },
    /// A neighbour advertisement from another host claimed the bound
    /// address; it is withdrawn and DAD runs on a new identifier.
    Lost {
        /// The address given up.
        addr: Ipv6Address,
        /// The other host's MAC.
        from: EthernetAddress,
    },
    /// No identifier left to try (IDGEN_RETRIES exhausted, or EUI-64):
    /// DAD starts over with DAD counter 0 after `retry_in`.
    Failed {
        /// The last address tried.
        addr: Ipv6Address,
        /// How many identifiers were tried.
        attempts: u8,
        /// How long until DAD starts over (DAD_RETRY_INTERVAL).
        retry_in: Duration,
    },
}

impl Ipv6ClaimEvent {
    /// The audit event the agent records, if any (`Optimistic` has none:
    /// `Bound` or `Duplicate` follows).
    pub fn audit(&self) -> Option<LinkEvent> {
        match *self {
            Ipv6ClaimEvent::Optimistic { .. } => None,
            Ipv6ClaimEvent::Bound { addr } => Some(LinkEvent::Ipv6Bound { addr }),
            Ipv6ClaimEvent::Duplicate { addr, from, .. } => {
                Some(LinkEvent::Ipv6Duplicate { addr, mac: from })
            }
            Ipv6ClaimEvent::Lost { addr, from } => Some(LinkEvent::Ipv6Lost { addr, mac: from }),
            Ipv6ClaimEvent::Failed {
                addr,
                attempts,
                retry_in,
            } => Some(LinkEvent::Ipv6DadFailed {
                addr,
                attempts,
                retry_secs: u32::try_from(retry_in.secs()).unwrap_or(u32::MAX),
            }),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    IdgenDelay {
        until: Instant,
    },
    Delay {
        until: Instant,
    },
    Tentative {
        until: Instant,
    },
    Bound,
    /// Waiting DAD_RETRY_INTERVAL before starting over at DAD counter 0.
    Failed {
        until: Instant,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frame {
    MldJoin(Ipv6Address),
    DadNs(Ipv6Address),
    DadAnswer(Ipv6Address),
}

const PENDING: usize = 4;
const EVENTS: usize = 8;

/// One RFC 4862 claim of the IPv6 link-local address on one interface.
///
/// Same shape as [`Ipv4Claim`](crate::link::ipv4ll::Ipv4Claim): feed every
/// received frame and the time, drain `poll_transmit` / `poll_event`, wake at
/// `poll_at`. Each attempt sends an MLDv2 report joining the solicited-node
/// group at once, then after a random 0..MAX_RTR_SOLICITATION_DELAY one NS
/// from `::` (DupAddrDetectTransmits 1), and binds RetransTimer (1 s) later.
///
/// Decisions where the RFCs leave room:
/// - Identifiers: DAD counter 0..=IDGEN_RETRIES, so at most 4 identifiers
///   are tried in a row; EUI-64 gets one. Then (RFC 7217 §6 limits the
///   tentative addresses tried, RFC 4862 §5.4.5 leaves recovery to the
///   node) the claim reports `Failed`, waits DAD_RETRY_INTERVAL and starts
///   over with DAD counter 0: the same four stable identifiers, never a
///   fifth, about four solicitations per half minute, and a host that
///   answers every DAD probe keeps IPv6 off only while it does (the stable
///   address comes back within DAD_RETRY_INTERVAL + 2 s once it stops).
/// - After binding, address resolution (NS from a unicast source) is left to
///   smoltcp; another node's DAD NS (from `::`) for the bound address is
///   answered here with an NA to all-nodes, because smoltcp 0.14 would send
///   its answer to `::`. An NA for the bound address from another MAC is a
///   loss: event `Lost`, then DAD on the next identifier, counting toward
///   IDGEN_RETRIES.
/// - No MLD "leave" is sent for an abandoned group; MLD listener state ages
///   out on its own and the USBNIC has no MLD router.
pub struct Ipv6Claim {
    mac: EthernetAddress,
    mode: IidMode,
    optimistic: bool,
    rng: Prng,
    phase: Phase,
    dad_counter: u8,
    addr: Ipv6Address,
    pending: heapless::Deque<(Frame, Instant), PENDING>,
    events: EventQueue<Ipv6ClaimEvent, EVENTS>,
    counters: Counters,
}

impl fmt::Debug for Ipv6Claim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ipv6Claim")
            .field("mac", &self.mac)
            .field("mode", &self.mode)
            .field("phase", &self.phase)
            .field("addr", &self.addr)
            .field("dad_counter", &self.dad_counter)
            .finish_non_exhaustive()
    }
}

impl Ipv6Claim {
    /// A claim for `mac` with identifiers made by `mode`; `optimistic`
    /// enables RFC 4429; `seed` varies the random delay.
    pub fn new(mac: [u8; 6], mode: IidMode, optimistic: bool, seed: u64) -> Self {
        let mut claim = Ipv6Claim {
            mac: EthernetAddress(mac),
            mode,
            optimistic,
            rng: Prng::new(seed, mac),
            phase: Phase::Idle,
            dad_counter: 0,
            addr: Ipv6Address::UNSPECIFIED,
            pending: heapless::Deque::new(),
            events: EventQueue::new(),
            counters: Counters::default(),
        };
        claim.addr = claim.generate();
        claim
    }

    /// Begins (or restarts) DAD with DAD counter 0.
    pub fn start(&mut self, now: Instant) {
        self.dad_counter = 0;
        self.addr = self.generate();
        self.pending.clear();
        self.begin_attempt(now);
    }

    /// Stops the claim: no more frames, timers or events.
    pub fn stop(&mut self) {
        self.phase = Phase::Idle;
        self.pending.clear();
    }

    /// Where the claim stands.
    pub fn state(&self) -> Ipv6ClaimState {
        match self.phase {
            Phase::Idle => Ipv6ClaimState::Idle,
            Phase::IdgenDelay { .. } => Ipv6ClaimState::IdgenDelay,
            Phase::Delay { .. } => Ipv6ClaimState::Delay,
            Phase::Tentative { .. } => Ipv6ClaimState::Tentative,
            Phase::Bound => Ipv6ClaimState::Bound,
            Phase::Failed { .. } => Ipv6ClaimState::Failed,
        }
    }

    /// The address, once DAD passed.
    pub fn bound(&self) -> Option<Ipv6Address> {
        (self.phase == Phase::Bound).then_some(self.addr)
    }

    /// The address under DAD.
    pub fn tentative(&self) -> Option<Ipv6Address> {
        matches!(self.phase, Phase::Delay { .. } | Phase::Tentative { .. }).then_some(self.addr)
    }

    /// The address the host may use now: the bound one, or with optimistic
    /// DAD the tentative one.
    pub fn usable(&self) -> Option<Ipv6Address> {
        self.bound()
            .or_else(|| self.tentative().filter(|_| self.optimistic))
    }

    /// The solicited-node group of the tentative or bound address; the
    /// device accepts frames to its MAC ([`Self::solicited_node_mac`]).
    pub fn solicited_node(&self) -> Option<Ipv6Address> {
        self.tentative()
            .or_else(|| self.bound())
            .map(solicited_node)
    }

    /// The Ethernet MAC of [`Self::solicited_node`] (33:33:ff:xx:xx:xx).
    pub fn solicited_node_mac(&self) -> Option<EthernetAddress> {
        self.solicited_node().map(multicast_mac)
    }

    /// The RFC 7217 DAD counter of the current identifier.
    pub fn dad_counter(&self) -> u8 {
        self.dad_counter
    }

    /// The counters (malformed frames dropped, echoes, duplicates).
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// When the claim next needs `poll_transmit` or `handle_timeout`.
    pub fn poll_at(&self) -> Option<Instant> {
        if let Some((_, at)) = self.pending.front() {
            return Some(*at);
        }
        match self.phase {
            Phase::IdgenDelay { until }
            | Phase::Delay { until }
            | Phase::Tentative { until }
            | Phase::Failed { until } => Some(until),
            Phase::Idle | Phase::Bound => None,
        }
    }

    /// Runs the timers that are due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Ipv6ClaimEvent> {
        self.events.pop()
    }

    /// Writes the next frame to send (a whole Ethernet frame: the MLDv2
    /// report, the DAD NS, or the answer to another node's DAD for the bound
    /// address) into `buf`; `None` when nothing is due. A `buf`
    /// that is too short keeps the frame queued.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        self.advance(now);
        let (frame, _) = *self.pending.front()?;
        let len = match frame {
            Frame::MldJoin(group) => ndp::emit_mld_join(self.mac, group, buf)?,
            Frame::DadNs(target) => ndp::emit_dad_ns(self.mac, target, buf)?,
            Frame::DadAnswer(addr) => ndp::emit_dad_answer(self.mac, addr, buf)?,
        };
        let _ = self.pending.pop_front();
        Some(len)
    }

    /// Inspects any received Ethernet frame (only NDP is looked at). Withheld
    /// from smoltcp: NS/NA whose target is the tentative address (smoltcp
    /// must not answer for it), NA from others and DAD NS for the bound
    /// address (answered here), and our own echoes; malformed NDP and
    /// truncated IPv6 are dropped and counted.
    pub fn handle_frame(&mut self, now: Instant, frame: &[u8]) -> Verdict {
        self.handle_ndp(now, ndp::inspect(frame))
    }

    /// [`handle_frame`](Self::handle_frame) for a frame already inspected.
    pub fn handle_ndp(&mut self, now: Instant, inspected: Inspected) -> Verdict {
        self.advance(now);
        let msg = match inspected {
            Inspected::NotNdp => return Verdict::Pass,
            Inspected::Malformed => {
                self.counters.malformed = self.counters.malformed.wrapping_add(1);
                return Verdict::Malformed;
            }
            Inspected::Neighbor(msg) => msg,
        };
        let ours = msg.target() == self.addr;
        let own_mac = msg.source_mac() == self.mac
            || matches!(msg, Neighbor::Advert { target_mac: Some(m), .. } if m == self.mac);
        match self.phase {
            Phase::Delay { .. } | Phase::Tentative { .. } if ours => {
                if own_mac {
                    self.counters.own_echoes = self.counters.own_echoes.wrapping_add(1);
                    return Verdict::Withhold;
                }
                // RFC 4862 §5.4.3/5.4.4: an NA for the tentative address, or
                // another node's DAD NS (from `::`) for it. An NS from a
                // unicast source is address resolution and is ignored.
                let duplicate = match msg {
                    Neighbor::Advert { .. } => true,
                    Neighbor::Solicit { src, .. } => src.is_unspecified(),
                };
                if duplicate {
                    self.duplicate(now, msg.source_mac(), false);
                }
                Verdict::Withhold
            }
            Phase::Bound if ours && own_mac => {
                self.counters.own_echoes = self.counters.own_echoes.wrapping_add(1);
                Verdict::Withhold
            }
            Phase::Bound if ours => match msg {
                Neighbor::Advert { .. } => {
                    self.duplicate(now, msg.source_mac(), true);
                    Verdict::Withhold
                }
                // Another node's DAD for our address: answer it ourselves
                // (smoltcp would answer to `::`).
                Neighbor::Solicit { src, .. } if src.is_unspecified() => {
                    self.counters.defended = self.counters.defended.wrapping_add(1);
                    let _ = self.pending.push_back((Frame::DadAnswer(self.addr), now));
                    Verdict::Withhold
                }
                // Address resolution: smoltcp answers it.
                Neighbor::Solicit { .. } => Verdict::Pass,
            },
            _ => Verdict::Pass,
        }
    }

    fn generate(&self) -> Ipv6Address {
        let iid = match &self.mode {
            IidMode::Stable { secret } => {
                stable_iid(secret, self.mac.as_bytes(), &[], self.dad_counter)
            }
            IidMode::Eui64 => eui64_iid(self.mac.0),
        };
        link_local(iid)
    }

    fn event(&mut self, event: Ipv6ClaimEvent) {
        self.events.push(event, &mut self.counters);
    }

    /// Joins the solicited-node group now and schedules the NS.
    fn begin_attempt(&mut self, now: Instant) {
        let _ = self
            .pending
            .push_back((Frame::MldJoin(solicited_node(self.addr)), now));
        let delay = self
            .rng
            .duration_between(Duration::ZERO, MAX_RTR_SOLICITATION_DELAY);
        self.phase = Phase::Delay {
            until: now.saturating_add(delay),
        };
        if self.optimistic {
            self.event(Ipv6ClaimEvent::Optimistic { addr: self.addr });
        }
    }

    fn duplicate(&mut self, now: Instant, from: EthernetAddress, was_bound: bool) {
        let addr = self.addr;
        self.counters.conflicts = self.counters.conflicts.wrapping_add(1);
        self.pending.clear();
        let regenerable = matches!(self.mode, IidMode::Stable { .. });
        if was_bound {
            warn!("ipv6ll: {} advertised by {}", addr, from);
            self.event(Ipv6ClaimEvent::Lost { addr, from });
        }
        if !regenerable || self.dad_counter >= IDGEN_RETRIES {
            error!("ipv6ll: DAD failed on {}", addr);
            if !was_bound {
                self.event(Ipv6ClaimEvent::Duplicate {
                    addr,
                    from,
                    dad_counter: self.dad_counter,
                });
            }
            self.phase = Phase::Failed {
                until: now.saturating_add(DAD_RETRY_INTERVAL),
            };
            self.event(Ipv6ClaimEvent::Failed {
                addr,
                attempts: self.dad_counter.saturating_add(1),
                retry_in: DAD_RETRY_INTERVAL,
            });
            return;
        }
        self.dad_counter = self.dad_counter.saturating_add(1);
        if !was_bound {
            warn!("ipv6ll: {} is a duplicate (from {})", addr, from);
            self.event(Ipv6ClaimEvent::Duplicate {
                addr,
                from,
                dad_counter: self.dad_counter,
            });
        }
        self.addr = self.generate();
        self.phase = Phase::IdgenDelay {
            until: now.saturating_add(IDGEN_DELAY),
        };
    }

    fn advance(&mut self, now: Instant) {
        if !self.pending.is_empty() {
            return;
        }
        match self.phase {
            Phase::IdgenDelay { until } if now >= until => self.begin_attempt(now),
            Phase::Failed { until } if now >= until => {
                // Start over: DAD counter 0, the stable identifier again.
                self.dad_counter = 0;
                self.addr = self.generate();
                self.begin_attempt(now);
            }
            Phase::Delay { until } if now >= until => {
                let _ = self.pending.push_back((Frame::DadNs(self.addr), now));
                self.phase = Phase::Tentative {
                    until: now.saturating_add(RETRANS_TIMER),
                };
            }
            Phase::Tentative { until } if now >= until => {
                self.phase = Phase::Bound;
                info!("ipv6ll: bound {}", self.addr);
                self.event(Ipv6ClaimEvent::Bound { addr: self.addr });
            }
            _ => {}
        }
    }
}

impl Claim for Ipv6Claim {
    fn handle(&mut self, now: Instant, frame: &Received<'_>) -> Verdict {
        self.handle_ndp(now, frame.ndp)
    }

    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        Ipv6Claim::poll_transmit(self, now, buf)
    }

    fn poll_at(&self) -> Option<Instant> {
        Ipv6Claim::poll_at(self)
    }

    fn handle_timeout(&mut self, now: Instant) {
        Ipv6Claim::handle_timeout(self, now)
    }
}
