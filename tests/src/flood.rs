//! A flood of frames into the agent's NIC, and the NIC's receive ring with
//! the CPU cost of each frame, so a flood means something in virtual time.
//!
//! The model (one receive ring in front of the agent, nothing else changes):
//! - Frames for the agent arrive at the ring: the segment's frames (the
//!   BMC, a third host) at their delivery time, and the flood's, one every
//!   [`Flood::period`] from [`Flood::from`] to [`Flood::until`].
//! - The ring holds [`Flood::ring`] frames; a frame that arrives at a full
//!   ring is dropped and counted, whoever sent it, as a NIC does.
//! - Each frame the agent takes from the ring costs [`Flood::cost`] of
//!   virtual time on average (the clock moves by it in `recv`, spread over
//!   0.5-1.5 times it): the CPU time of one frame through the agent's
//!   ingress. Sending costs nothing.
//! - When the agent takes frames more slowly than they arrive, the ring
//!   stays full and drops the difference; at most `ring` frames wait, so a
//!   frame that got in is read within `ring × cost`.
//!
//! Flood frames arrive at a random point of their own period (100,000/s
//! on average, never two in one period). They are drawn from a pool of
//! [`POOL`] frames built at the start (seeded, so a run is reproducible),
//! copied only when the agent reads one; dropped ones are only counted, so
//! a run offers millions of frames and copies only those the agent reads.

use std::collections::VecDeque;

use smoltcp::time::{Duration, Instant};

use crate::wire::Port;

/// A flood and the ring and CPU it meets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flood {
    /// When the first flood frame arrives.
    pub from: Instant,
    /// When the flood stops (no frame arrives at or after it).
    pub until: Instant,
    /// The gap between two flood frames (10 µs: 100,000 frames/s).
    pub period: Duration,
    /// Frames the receive ring holds.
    pub ring: usize,
    /// Virtual CPU time of one received frame.
    pub cost: Duration,
    /// Seeds the flood's frames.
    pub seed: u64,
}

/// What a flood frame is, by its index: half junk, half ARP for others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloodKind {
    /// Random bytes of a random length, to a random destination.
    Random,
    /// A broadcast frame with an ethertype nobody speaks.
    BadEthertype,
    /// An ARP, IPv4 or IPv6 frame cut short (0 to 41 bytes).
    Truncated,
    /// A well-formed IPv4/TCP frame unicast to another MAC.
    OtherMac,
    /// An ARP request (or probe) between two other addresses.
    ArpRequest,
    /// An ARP reply between two other addresses.
    ArpReply,
}

/// Counts of what the ring saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NicCounters {
    /// Flood frames that arrived.
    pub flood_offered: u64,
    /// Flood frames dropped at a full ring.
    pub flood_dropped: u64,
    /// Segment frames (BMC, third host) that arrived.
    pub wire_offered: u64,
    /// Segment frames dropped at a full ring.
    pub wire_dropped: u64,
    /// Frames the agent read (each cost [`Flood::cost`]).
    pub read: u64,
    /// Flood frames the agent read, by kind (in [`FloodKind`] order).
    pub read_by_kind: [u64; 6],
}

/// One segment frame that arrived at the ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireArrival {
    /// When it arrived.
    pub at: Instant,
    /// When the agent read it; `None` when the ring dropped it (or it is
    /// still waiting).
    pub read_at: Option<Instant>,
    /// The frame.
    pub frame: Vec<u8>,
}

/// Distinct flood frames: enough that no two in the ring are likely the
/// same, few enough to build at once (building one per read would cost the
/// simulation more than the agent spends on it).
const POOL: usize = 8192;

enum Slot {
    Flood(u64),
    Wire(usize),
}

/// The agent's NIC: the receive ring between the segment (and the flood)
/// and the agent.
pub struct Nic {
    /// The flood and the ring's parameters.
    pub flood: Flood,
    /// What happened so far.
    pub counters: NicCounters,
    /// Every segment frame that arrived, read or dropped.
    pub wire: Vec<WireArrival>,
    ring: VecDeque<Slot>,
    /// The flood's frames, built once: frame `i` is `pool[mix(i) % POOL]`.
    pool: Vec<(FloodKind, Vec<u8>)>,
    /// Index of the next flood frame to arrive.
    next: u64,
    /// How many flood frames arrive in all.
    total: u64,
}

impl Nic {
    /// A NIC with an empty ring that will see `flood`.
    pub fn new(flood: Flood) -> Self {
        let span = flood.until.total_micros() - flood.from.total_micros();
        let total = u64::try_from(span.max(0)).unwrap_or(0) / flood.period.total_micros().max(1);
        Nic {
            flood,
            counters: NicCounters::default(),
            wire: Vec::new(),
            ring: VecDeque::new(),
            pool: (0..POOL as u64)
                .map(|i| {
                    let mut buf = [0u8; 1514];
                    let (kind, n) = flood_frame(flood.seed, i, &mut buf);
                    (kind, buf[..n].to_vec())
                })
                .collect(),
            next: 0,
            total,
        }
    }

    /// Flood frame `index` arrives at a random point of its own period, so
    /// the flood is not a comb that segment frames could hide between (or
    /// always meet), yet arrivals stay in index order.
    fn flood_at(&self, index: u64) -> Instant {
        let period = self.flood.period.total_micros().max(1);
        let jitter = mix(self.flood.seed ^ index) % period;
        Instant::from_micros(self.flood.from.total_micros() + (period * index + jitter) as i64)
    }

    /// When the next flood frame arrives, if any are left.
    pub fn next_arrival(&self) -> Option<Instant> {
        (self.next < self.total).then(|| self.flood_at(self.next))
    }

    /// Moves everything that arrived by `now` into the ring, in order of
    /// arrival, dropping what finds it full.
    fn fill(&mut self, now: Instant, port: &Port) {
        loop {
            let flood = self.next_arrival().filter(|t| *t <= now);
            let wire = port.next_at().filter(|t| *t <= now);
            let full = self.ring.len() >= self.flood.ring;
            let take_flood = match (flood, wire) {
                (None, None) => return,
                (Some(tf), Some(tw)) => tf <= tw,
                (Some(_), None) => true,
                (None, Some(_)) => false,
            };
            if take_flood {
                if full {
                    // Every flood frame up to the next segment frame (or
                    // now) meets a full ring: count them in one step.
                    let limit = wire.unwrap_or(now);
                    let period = self.flood.period.total_micros().max(1);
                    let since = (limit - self.flood.from).total_micros();
                    let mut last = (since / period).min(self.total - 1);
                    if self.flood_at(last) > limit {
                        last -= 1;
                    }
                    let last = last.max(self.next);
                    let n = last - self.next + 1;
                    self.counters.flood_offered += n;
                    self.counters.flood_dropped += n;
                    self.next = last + 1;
                } else {
                    self.counters.flood_offered += 1;
                    self.ring.push_back(Slot::Flood(self.next));
                    self.next += 1;
                }
            } else {
                let at = wire.unwrap_or(now);
                let Some(frame) = port.recv() else { return };
                self.counters.wire_offered += 1;
                self.wire.push(WireArrival {
                    at,
                    read_at: None,
                    frame,
                });
                if full {
                    self.counters.wire_dropped += 1;
                } else {
                    self.ring.push_back(Slot::Wire(self.wire.len() - 1));
                }
            }
        }
    }

    /// Whether a frame waits in the ring at `now`.
    pub fn ready(&mut self, now: Instant, port: &Port) -> bool {
        self.fill(now, port);
        !self.ring.is_empty()
    }

    /// The CPU time of the frame read last: [`Flood::cost`] on average,
    /// spread evenly over half to one and a half times it (frames differ,
    /// caches miss), so the agent's reads do not lock in phase with frames
    /// that answer its own sends, which a fixed cost in a noiseless virtual
    /// time would do.
    pub fn last_cost(&self) -> Duration {
        let c = self.flood.cost.total_micros();
        let spread = mix(self.counters.read ^ self.flood.seed.rotate_left(16)) % (c + 1);
        Duration::from_micros(c / 2 + spread)
    }

    /// Gives the agent the oldest frame in the ring; the caller charges
    /// [`Nic::last_cost`] to the clock.
    pub fn recv(&mut self, now: Instant, port: &Port, buf: &mut [u8]) -> Option<usize> {
        self.fill(now, port);
        let slot = self.ring.pop_front()?;
        self.counters.read += 1;
        Some(match slot {
            Slot::Flood(index) => {
                let i = mix(index ^ self.flood.seed.rotate_left(32)) as usize % POOL;
                let (kind, frame) = &self.pool[i];
                self.counters.read_by_kind[*kind as usize] += 1;
                let n = frame.len().min(buf.len());
                buf[..n].copy_from_slice(&frame[..n]);
                n
            }
            Slot::Wire(i) => {
                let arrival = &mut self.wire[i];
                arrival.read_at = Some(now);
                let n = arrival.frame.len().min(buf.len());
                buf[..n].copy_from_slice(&arrival.frame[..n]);
                n
            }
        })
    }
}

/// SplitMix64 of `x`: the flood's frames are a pure function of their index.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A unicast MAC of another host (never the agent's, the BMC's or the
/// third host's: their first octets are 0x02 with these bits clear).
fn other_mac(h: u64) -> [u8; 6] {
    let b = h.to_le_bytes();
    [0x0a, 0xf1, b[0], b[1], b[2], b[3]]
}

/// An IPv4 link-local address of another host: 169.254.100.0 to
/// 169.254.227.255, well away from the BMC's 169.254.1.1 and the agent's
/// preferred 169.254.1.2 (and from RFC 3927 picks only by chance, which a
/// claim of ours would meet anyway).
fn other_ip(h: u64) -> [u8; 4] {
    [169, 254, 100 + (h % 128) as u8, (h >> 8) as u8]
}

/// Writes flood frame `index` into `buf` and returns its kind and length.
pub fn flood_frame(seed: u64, index: u64, buf: &mut [u8]) -> (FloodKind, usize) {
    let h = mix(seed ^ index.wrapping_mul(0x2545_f491_4f6c_dd1d));
    let g = mix(h);
    let kind = if h & 1 == 0 {
        [
            FloodKind::Random,
            FloodKind::BadEthertype,
            FloodKind::Truncated,
            FloodKind::OtherMac,
        ][(h >> 1) as usize % 4]
    } else if (h >> 1) & 1 == 0 {
        FloodKind::ArpRequest
    } else {
        FloodKind::ArpReply
    };
    let fill_random = |buf: &mut [u8], mut x: u64| {
        for chunk in buf.chunks_mut(8) {
            x = mix(x);
            let b = x.to_le_bytes();
            chunk.copy_from_slice(&b[..chunk.len()]);
        }
    };
    let n = match kind {
        FloodKind::Random => {
            let n = (60 + g % 400) as usize;
            fill_random(&mut buf[..n], g);
            n
        }
        FloodKind::BadEthertype => {
            buf[..6].copy_from_slice(&[0xff; 6]);
            buf[6..12].copy_from_slice(&other_mac(g));
            // Above 0x0600 (an ethertype, not a length), never ARP or IP.
            let ethertype = match 0x0600 + (g >> 16) as u16 % 0xf000 {
                0x0800 | 0x0806 | 0x86dd => 0x88b5,
                t => t,
            };
            buf[12..14].copy_from_slice(&ethertype.to_be_bytes());
            fill_random(&mut buf[14..60], g);
            60
        }
        FloodKind::Truncated => {
            let n = (g % 42) as usize;
            fill_random(&mut buf[..n], g);
            if n >= 14 {
                buf[..6].copy_from_slice(&[0xff; 6]);
                let ethertype: u16 = [0x0806, 0x0800, 0x86dd][(g >> 8) as usize % 3];
                buf[12..14].copy_from_slice(&ethertype.to_be_bytes());
            }
            n
        }
        FloodKind::OtherMac => {
            buf[..6].copy_from_slice(&other_mac(g));
            buf[6..12].copy_from_slice(&other_mac(mix(g)));
            buf[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
            // IPv4, 20-byte header, TCP, between two other hosts.
            let ip = &mut buf[14..54];
            ip.fill(0);
            ip[0] = 0x45;
            ip[2..4].copy_from_slice(&40u16.to_be_bytes());
            ip[8] = 64;
            ip[9] = 6;
            ip[12..16].copy_from_slice(&other_ip(g));
            ip[16..20].copy_from_slice(&other_ip(g >> 16));
            ip[20..22].copy_from_slice(&((g >> 32) as u16).to_be_bytes());
            ip[22..24].copy_from_slice(&5443u16.to_be_bytes());
            ip[32] = 0x50;
            ip[33] = 0x02;
            buf[54..60].fill(0);
            60
        }
        FloodKind::ArpRequest | FloodKind::ArpReply => {
            let request = kind == FloodKind::ArpRequest;
            let sender_mac = other_mac(g);
            let target_mac = other_mac(mix(g));
            let dst = if request { [0xff; 6] } else { target_mac };
            buf[..6].copy_from_slice(&dst);
            buf[6..12].copy_from_slice(&sender_mac);
            buf[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
            let arp = &mut buf[14..42];
            arp[..8].copy_from_slice(&[0, 1, 0x08, 0, 6, 4, 0, if request { 1 } else { 2 }]);
            arp[8..14].copy_from_slice(&sender_mac);
            // One request in eight is a probe (sender 0.0.0.0) for another address.
            let sender_ip = if request && (g >> 40).is_multiple_of(8) {
                [0; 4]
            } else {
                other_ip(g >> 8)
            };
            arp[14..18].copy_from_slice(&sender_ip);
            arp[18..24].copy_from_slice(if request { &[0; 6] } else { &target_mac });
            arp[24..28].copy_from_slice(&other_ip(g >> 24));
            buf[42..60].fill(0);
            60
        }
    };
    (kind, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flood_frames_never_name_the_agent_or_the_bmc() {
        let mut buf = [0u8; 1514];
        let mut kinds = [0u32; 6];
        for i in 0..10_000 {
            let (kind, n) = flood_frame(7, i, &mut buf);
            kinds[kind as usize] += 1;
            let f = &buf[..n];
            if matches!(kind, FloodKind::ArpRequest | FloodKind::ArpReply) {
                assert_eq!(n, 60);
                for ip in [&f[28..32], &f[38..42]] {
                    assert_ne!(ip, [169, 254, 1, 1]);
                    assert_ne!(ip, [169, 254, 1, 2]);
                }
            }
        }
        // Half junk, half ARP, every kind present.
        let arp = kinds[4] + kinds[5];
        assert!((4_500..5_500).contains(&arp), "{kinds:?}");
        assert!(kinds.iter().all(|k| *k > 500), "{kinds:?}");
    }
}
