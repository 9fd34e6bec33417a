//! A third host on the USBNIC segment that misbehaves on purpose: it owns
//! the agent's preferred IPv4 address, probes for it at the same time,
//! claims the address after the agent bound it, squats on an address for
//! an hour, or owns the agent's tentative IPv6 addresses. It speaks
//! hand-built ARP and NDP frames (smoltcp's `wire` types), nothing else.

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, Icmpv6Packet, Icmpv6Repr, IpProtocol, Ipv4Address, Ipv6Address, Ipv6Packet,
    Ipv6Repr, NdiscNeighborFlags, NdiscRepr, RawHardwareAddress,
};

use crate::timeline;
use crate::wire::Port;

/// Claims of an address another host announced (RFC 5227 §2.4 from the
/// other side): `after` the first announcement of another MAC, the rogue
/// announces the same address `times` times, `every` apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimBound {
    /// Delay after the other host's first announcement.
    pub after: Duration,
    /// Gap between the rogue's announcements.
    pub every: Duration,
    /// How many announcements.
    pub times: u32,
}

/// A host that will not give an IPv4 address up, for a while: from `from`
/// until `until` it announces `addr` every `every` and answers every ARP
/// request and probe for it as its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Squat {
    /// The address it claims.
    pub addr: Ipv4Address,
    /// When it starts.
    pub from: Instant,
    /// When it stops (nothing is sent from then on).
    pub until: Instant,
    /// Gap between its announcements.
    pub every: Duration,
}

impl Squat {
    fn active(&self, now: Instant) -> bool {
        self.from <= now && now < self.until
    }
}

/// A host that takes an address it believes free (set by hand, not probed)
/// and gives it up at the first defence, as RFC 5227 §2.4 (a) lets it: from
/// `from` it announces `addr` every `every`, at most `times`, and stops once
/// another host announces `addr` (defends it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Yield {
    /// The address it takes.
    pub addr: Ipv4Address,
    /// When it announces first.
    pub from: Instant,
    /// Gap between its announcements (ANNOUNCE_INTERVAL).
    pub every: Duration,
    /// How many announcements at most.
    pub times: u32,
}

/// What the rogue host does.
#[derive(Debug, Clone, Default)]
pub struct RogueConfig {
    /// Owns this IPv4 address: answers ARP requests and probes for it.
    pub owns_ipv4: Option<Ipv4Address>,
    /// Answers every ARP probe, whatever its target (a proxy-ARP box).
    pub owns_every_probed_ipv4: bool,
    /// Probes for this address itself whenever another host probes for it
    /// (a simultaneous probe, RFC 5227 §2.1.1).
    pub contests_ipv4: Option<Ipv4Address>,
    /// Claims the first address another host announces, after it bound.
    pub claims_bound: Option<ClaimBound>,
    /// Answers this many DAD neighbour solicitations (whatever their
    /// target) with an advertisement: it owns the tentative address.
    pub dad_duplicates: u32,
    /// Squats on an IPv4 address for a while (see [`Squat`]).
    pub squats_ipv4: Option<Squat>,
    /// Answers every DAD neighbour solicitation in `[from, until)`, on top
    /// of `dad_duplicates`.
    pub answers_dad_between: Option<(Instant, Instant)>,
    /// Takes an IPv4 address until it is defended (see [`Yield`]).
    pub yields_ipv4: Option<Yield>,
}

/// The rogue host.
pub struct Rogue {
    /// Its MAC.
    pub mac: [u8; 6],
    /// What it does.
    pub cfg: RogueConfig,
    /// Frames it sent, by kind, for tests.
    pub sent: Vec<(Instant, String)>,
    port: Port,
    pending: Vec<(Instant, Vec<u8>)>,
    claimed: bool,
    /// The squat's next announcement.
    next_squat: Option<Instant>,
    /// The yielding claim's next announcement and how many went out.
    next_yield: Option<(Instant, u32)>,
    /// When the yielding claim heard the address defended.
    pub yielded_at: Option<Instant>,
}

/// The rogue's MAC unless told otherwise.
pub const ROGUE_MAC: [u8; 6] = [0x02, 0xba, 0xd0, 0x00, 0x00, 0x03];

impl Rogue {
    /// A rogue with `cfg` on `port`.
    pub fn new(cfg: RogueConfig, port: Port) -> Self {
        Rogue {
            mac: ROGUE_MAC,
            sent: Vec::new(),
            port,
            pending: Vec::new(),
            claimed: false,
            next_squat: cfg.squats_ipv4.map(|s| s.from),
            next_yield: cfg.yields_ipv4.map(|y| (y.from, 0)),
            yielded_at: None,
            cfg,
        }
    }

    /// Handles the frames due and sends what is due at `now`.
    pub fn poll(&mut self, now: Instant) {
        while let Some(frame) = self.port.recv() {
            self.on_frame(now, &frame);
        }
        while let (Some(at), Some(squat)) = (self.next_squat, self.cfg.squats_ipv4) {
            if at > now {
                break;
            }
            if at >= squat.until {
                self.next_squat = None;
                break;
            }
            let frame = self.arp(ArpOperation::Request, squat.addr, [0; 6], squat.addr);
            self.queue(at, frame, format!("ARP announce {}", squat.addr));
            self.next_squat = Some(at + squat.every);
        }
        while let (Some((at, sent)), Some(y)) = (self.next_yield, self.cfg.yields_ipv4) {
            if at > now {
                break;
            }
            if sent >= y.times || self.yielded_at.is_some() {
                self.next_yield = None;
                break;
            }
            let frame = self.arp(ArpOperation::Request, y.addr, [0; 6], y.addr);
            self.queue(at, frame, format!("ARP announce {}", y.addr));
            self.next_yield = Some((at + y.every, sent + 1));
        }
        let mut i = 0;
        while i < self.pending.len() {
            if self.pending[i].0 <= now {
                let (_, frame) = self.pending.remove(i);
                self.port.send(&frame);
            } else {
                i += 1;
            }
        }
    }

    /// When the rogue next has something to send.
    pub fn poll_at(&self) -> Option<Instant> {
        self.pending
            .iter()
            .map(|(t, _)| *t)
            .chain(self.next_squat)
            .chain(self.next_yield.map(|(t, _)| t))
            .min()
    }

    fn on_frame(&mut self, now: Instant, frame: &[u8]) {
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            return;
        };
        if eth.src_addr() == EthernetAddress(self.mac) {
            return;
        }
        match eth.ethertype() {
            EthernetProtocol::Arp => self.on_arp(now, eth.payload()),
            EthernetProtocol::Ipv6 => self.on_ipv6(now, eth.payload()),
            _ => {}
        }
    }

    fn on_arp(&mut self, now: Instant, payload: &[u8]) {
        let Ok(packet) = ArpPacket::new_checked(payload) else {
            return;
        };
        let Ok(ArpRepr::EthernetIpv4 {
            operation,
            source_hardware_addr,
            source_protocol_addr,
            target_protocol_addr,
            ..
        }) = ArpRepr::parse(&packet)
        else {
            return;
        };
        if let Some(y) = self.cfg.yields_ipv4 {
            let started = self.next_yield.is_none_or(|(_, sent)| sent > 0);
            if started && self.yielded_at.is_none() && source_protocol_addr == y.addr {
                timeline::emit("rogue", format!("{} is defended: giving it up", y.addr));
                self.yielded_at = Some(now);
                self.next_yield = None;
                self.pending.clear();
            }
        }
        let probe =
            operation == ArpOperation::Request && source_protocol_addr == Ipv4Address::UNSPECIFIED;
        let announce =
            operation == ArpOperation::Request && source_protocol_addr == target_protocol_addr;
        let squatted = self
            .cfg
            .squats_ipv4
            .is_some_and(|s| s.active(now) && s.addr == target_protocol_addr);
        let owned = Some(target_protocol_addr) == self.cfg.owns_ipv4
            || (probe && self.cfg.owns_every_probed_ipv4)
            || squatted;
        if operation == ArpOperation::Request && owned {
            // The owner answers requests and probes alike (RFC 826, 5227 §2.1.1).
            let reply = self.arp(
                ArpOperation::Reply,
                target_protocol_addr,
                source_hardware_addr.0,
                source_protocol_addr,
            );
            self.queue(now, reply, format!("ARP reply {target_protocol_addr}"));
        }
        if probe && Some(target_protocol_addr) == self.cfg.contests_ipv4 {
            let mine = self.arp(
                ArpOperation::Request,
                Ipv4Address::UNSPECIFIED,
                [0; 6],
                target_protocol_addr,
            );
            self.queue(now, mine, format!("ARP probe {target_protocol_addr}"));
        }
        if announce && !self.claimed {
            if let Some(claim) = self.cfg.claims_bound {
                self.claimed = true;
                for k in 0..claim.times {
                    let at = now + claim.after + claim.every * k;
                    let frame = self.arp(
                        ArpOperation::Request,
                        source_protocol_addr,
                        [0; 6],
                        source_protocol_addr,
                    );
                    self.queue(at, frame, format!("ARP announce {source_protocol_addr}"));
                }
            }
        }
    }

    fn on_ipv6(&mut self, now: Instant, payload: &[u8]) {
        let Ok(ip) = Ipv6Packet::new_checked(payload) else {
            return;
        };
        if ip.next_header() != IpProtocol::Icmpv6 || !ip.src_addr().is_unspecified() {
            return;
        }
        let Ok(icmp) = Icmpv6Packet::new_checked(ip.payload()) else {
            return;
        };
        let caps = ChecksumCapabilities::ignored();
        let Ok(Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit { target_addr, .. })) =
            Icmpv6Repr::parse(&ip.src_addr(), &ip.dst_addr(), &icmp, &caps)
        else {
            return;
        };
        let window = self
            .cfg
            .answers_dad_between
            .is_some_and(|(from, until)| from <= now && now < until);
        if !window {
            if self.cfg.dad_duplicates == 0 {
                return;
            }
            self.cfg.dad_duplicates -= 1;
        }
        let frame = self.neighbor_advert(target_addr);
        self.queue(now, frame, format!("NDP NA {target_addr}"));
    }

    fn queue(&mut self, at: Instant, frame: Vec<u8>, what: String) {
        timeline::emit("rogue", format!("will send {what}"));
        self.sent.push((at, what));
        self.pending.push((at, frame));
    }

    fn arp(
        &self,
        operation: ArpOperation,
        source: Ipv4Address,
        target_mac: [u8; 6],
        target: Ipv4Address,
    ) -> Vec<u8> {
        let arp = ArpRepr::EthernetIpv4 {
            operation,
            source_hardware_addr: EthernetAddress(self.mac),
            source_protocol_addr: source,
            target_hardware_addr: EthernetAddress(target_mac),
            target_protocol_addr: target,
        };
        let mut buf = vec![0u8; EthernetFrame::<&[u8]>::buffer_len(arp.buffer_len())];
        let mut eth = EthernetFrame::new_unchecked(&mut buf[..]);
        EthernetRepr {
            src_addr: EthernetAddress(self.mac),
            dst_addr: EthernetAddress::BROADCAST,
            ethertype: EthernetProtocol::Arp,
        }
        .emit(&mut eth);
        arp.emit(&mut ArpPacket::new_unchecked(eth.payload_mut()));
        buf
    }

    fn neighbor_advert(&self, target: Ipv6Address) -> Vec<u8> {
        let [a, b, c, d, e, f] = self.mac;
        let src = Ipv6Address::new(
            0xfe80,
            0,
            0,
            0,
            u16::from_be_bytes([a ^ 2, b]),
            u16::from_be_bytes([c, 0xff]),
            u16::from_be_bytes([0xfe, d]),
            u16::from_be_bytes([e, f]),
        );
        let dst = Ipv6Address::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
        let icmp = Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert {
            flags: NdiscNeighborFlags::OVERRIDE,
            target_addr: target,
            lladdr: Some(RawHardwareAddress::from_bytes(&self.mac)),
        });
        let ip = Ipv6Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: IpProtocol::Icmpv6,
            payload_len: icmp.buffer_len(),
            hop_limit: 255,
        };
        let len = EthernetFrame::<&[u8]>::buffer_len(ip.buffer_len() + icmp.buffer_len());
        let mut buf = vec![0u8; len];
        let mut eth = EthernetFrame::new_unchecked(&mut buf[..]);
        EthernetRepr {
            src_addr: EthernetAddress(self.mac),
            dst_addr: EthernetAddress([0x33, 0x33, 0, 0, 0, 1]),
            ethertype: EthernetProtocol::Ipv6,
        }
        .emit(&mut eth);
        let mut ipp = Ipv6Packet::new_unchecked(eth.payload_mut());
        ip.emit(&mut ipp);
        icmp.emit(
            &src,
            &dst,
            &mut Icmpv6Packet::new_unchecked(ipp.payload_mut()),
            &ChecksumCapabilities::default(),
        );
        buf
    }
}
