//! What the IPv4 and IPv6 address claims share: the verdict on a received
//! frame, the counters, and the small seeded PRNG that spreads their timers.
//!
//! Both claims are sans-I/O state machines in the quinn-proto shape: the
//! driver feeds them every received ARP/NDP frame (`handle_frame`) and the
//! time (`now` on every call), and drains them (`poll_transmit`,
//! `poll_event`, `poll_at`). They never read a clock or touch a device.

use smoltcp::time::Instant;

use super::ipv4ll::arp;
use super::ipv6ll::ndp;

/// One received frame, parsed once for every claim: its EtherType is read
/// once and only the protocol it names is inspected (ARP for the IPv4
/// claim, NDP for the IPv6 claim).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received<'a> {
    /// The whole frame, destination MAC first.
    pub frame: &'a [u8],
    /// What it is to an IPv4 claim (`NotArp` unless its EtherType is ARP).
    pub arp: arp::Inspected,
    /// What it is to an IPv6 claim (`NotNdp` unless its EtherType is IPv6).
    pub ndp: ndp::Inspected,
}

/// EtherType of ARP, big-endian as on the wire.
const ETHERTYPE_ARP: [u8; 2] = [0x08, 0x06];
/// EtherType of IPv6, big-endian as on the wire.
const ETHERTYPE_IPV6: [u8; 2] = [0x86, 0xdd];

impl<'a> Received<'a> {
    /// Parses any received frame. Never panics on any input.
    pub fn parse(frame: &'a [u8]) -> Self {
        let ethertype = frame.get(12..14);
        let arp = match ethertype {
            Some(t) if t == ETHERTYPE_ARP => arp::inspect(frame),
            _ => arp::Inspected::NotArp,
        };
        let ndp = match ethertype {
            Some(t) if t == ETHERTYPE_IPV6 => ndp::inspect(frame),
            _ => ndp::Inspected::NotNdp,
        };
        Received { frame, arp, ndp }
    }

    /// Whether the frame is IPv6 (its EtherType says so).
    pub fn is_ipv6(&self) -> bool {
        self.frame.get(12..14) == Some(&ETHERTYPE_IPV6[..])
    }
}

/// What the link layer drives: the IPv4 claim, the IPv6 claim and the BMC
/// IPv6 discovery each take every received frame (already parsed) and the
/// time, and hand out frames to send and their next timer.
pub trait Claim {
    /// Handles one received frame; the verdict says whether smoltcp may see it.
    fn handle(&mut self, now: Instant, frame: &Received<'_>) -> Verdict;
    /// Writes the next frame to send into `buf` and returns its length.
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize>;
    /// When this next needs `poll_transmit` or `handle_timeout`.
    fn poll_at(&self) -> Option<Instant>;
    /// Runs the timers due at `now`.
    fn handle_timeout(&mut self, now: Instant);
}

/// What the device should do with a frame after a claim has inspected it.
///
/// The rule is the same for both families: a frame goes on to smoltcp unless
/// it concerns an address that is still being claimed (smoltcp does not own
/// that address yet, and an answer from it would break RFC 5227/4862), or it
/// is malformed. Frames of other protocols are never inspected and always pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Verdict {
    /// smoltcp may see the frame too.
    Pass,
    /// Well-formed, but it concerns a tentative address: the claim has
    /// consumed it and smoltcp must not see it.
    Withhold,
    /// Malformed (truncated, wrong lengths, bad checksum, bad options): dropped
    /// and counted in [`Counters::malformed`]; smoltcp must not see it.
    Malformed,
}

impl Verdict {
    /// Whether smoltcp may see the frame.
    pub const fn passes(self) -> bool {
        matches!(self, Verdict::Pass)
    }
}

/// Counters a claim keeps for `status` and for tests; they only grow
/// (wrapping after 2^32, which no link reaches).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Counters {
    /// Frames of the claim's protocol that were malformed and dropped.
    pub malformed: u32,
    /// Frames that carried our own MAC (our probes echoed back) and were ignored.
    pub own_echoes: u32,
    /// Conflicts (IPv4) or duplicates (IPv6) seen, in every state.
    pub conflicts: u32,
    /// Defences sent: IPv4 defending announcements and answers to probes,
    /// IPv6 answers to another node's DAD for the bound address.
    pub defended: u32,
    /// Events dropped because the event queue was full (the driver did not
    /// drain `poll_event`).
    pub events_dropped: u32,
}

/// SplitMix64: tiny, seedable and good enough to spread timers and pick
/// link-local addresses. Not cryptographic, and it does not need to be: RFC
/// 3927 asks for a generator seeded from the MAC so a host tends to pick the
/// same address again.
#[derive(Debug, Clone)]
pub(crate) struct Prng(u64);

impl Prng {
    /// Seeds from the caller's seed and the MAC (RFC 3927 §2.1).
    pub(crate) fn new(seed: u64, mac: [u8; 6]) -> Self {
        let mut m = [0u8; 8];
        m[..6].copy_from_slice(&mac);
        Prng(seed ^ u64::from_le_bytes(m).rotate_left(17))
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `0..bound` (0 when `bound` is 0). The modulo bias is below
    /// 2^-40 for the bounds used here.
    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        match bound {
            0 => 0,
            b => self.next_u64().checked_rem(b).unwrap_or(0),
        }
    }

    /// A duration in `[min, max)`, in whole microseconds.
    pub(crate) fn duration_between(
        &mut self,
        min: smoltcp::time::Duration,
        max: smoltcp::time::Duration,
    ) -> smoltcp::time::Duration {
        let span = max.total_micros().saturating_sub(min.total_micros());
        smoltcp::time::Duration::from_micros(min.total_micros().saturating_add(self.below(span)))
    }
}

/// A fixed-size event queue that counts what it had to drop instead of
/// failing: a driver that never drains events must not stop the claim.
#[derive(Debug)]
pub(crate) struct EventQueue<E, const N: usize>(heapless::Deque<E, N>);

impl<E, const N: usize> EventQueue<E, N> {
    pub(crate) const fn new() -> Self {
        EventQueue(heapless::Deque::new())
    }

    /// Queues `event`; when full, the oldest event is dropped and counted.
    pub(crate) fn push(&mut self, event: E, counters: &mut Counters) {
        if let Err(event) = self.0.push_back(event) {
            let _ = self.0.pop_front();
            counters.events_dropped = counters.events_dropped.wrapping_add(1);
            let _ = self.0.push_back(event);
        }
    }

    pub(crate) fn pop(&mut self) -> Option<E> {
        self.0.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::time::Duration;

    #[test]
    fn prng_is_reproducible_and_depends_on_seed_and_mac() {
        let mac = [2, 0, 0, 0, 0, 1];
        let mut p1 = Prng::new(7, mac);
        let mut p2 = Prng::new(7, mac);
        let mut p3 = Prng::new(8, mac);
        let mut p4 = Prng::new(7, [2, 0, 0, 0, 0, 2]);
        let x1 = p1.next_u64();
        assert_eq!(x1, p2.next_u64());
        assert_ne!(x1, p3.next_u64());
        assert_ne!(x1, p4.next_u64());
    }

    #[test]
    fn duration_between_stays_in_window() {
        let mut p = Prng::new(1, [0; 6]);
        for _ in 0..1000 {
            let d = p.duration_between(Duration::from_secs(1), Duration::from_secs(2));
            assert!(d >= Duration::from_secs(1) && d < Duration::from_secs(2));
        }
        assert_eq!(
            p.duration_between(Duration::from_secs(3), Duration::from_secs(3)),
            Duration::from_secs(3)
        );
    }

    #[test]
    fn a_frame_is_inspected_only_as_the_protocol_its_ethertype_names() {
        use smoltcp::wire::{EthernetAddress, Ipv4Address};
        let mut buf = [0u8; 64];
        let mac = EthernetAddress([2, 0, 0, 0, 0, 9]);
        let n = arp::emit(
            arp::ArpKind::Probe(Ipv4Address::new(169, 254, 1, 2)),
            mac,
            &mut buf,
        )
        .unwrap();
        let r = Received::parse(&buf[..n]);
        assert!(matches!(r.arp, arp::Inspected::Arp(a) if a.is_probe()));
        assert_eq!(r.ndp, ndp::Inspected::NotNdp);
        assert!(!r.is_ipv6());
        // The same bytes as IPv6 are malformed NDP and no ARP at all.
        buf[12..14].copy_from_slice(&ETHERTYPE_IPV6);
        let r = Received::parse(&buf[..n]);
        assert_eq!(r.arp, arp::Inspected::NotArp);
        assert_eq!(r.ndp, ndp::Inspected::Malformed);
        for len in 0..14 {
            let r = Received::parse(&buf[..len]);
            assert_eq!(r.arp, arp::Inspected::NotArp);
            assert_eq!(r.ndp, ndp::Inspected::NotNdp);
        }
    }

    #[test]
    fn event_queue_drops_oldest_and_counts() {
        let mut q: EventQueue<u8, 2> = EventQueue::new();
        let mut c = Counters::default();
        q.push(1, &mut c);
        q.push(2, &mut c);
        q.push(3, &mut c);
        assert_eq!(c.events_dropped, 1);
        assert_eq!(q.pop(), Some(2));
        assert_eq!(q.pop(), Some(3));
        assert_eq!(q.pop(), None);
    }
}
