//! Scenario tests of the IPv4 claim, in virtual time: every frame it emits
//! is parsed with `smoltcp::wire` and checked against RFC 5227.

extern crate std;

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    ArpHardware, ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame,
    EthernetProtocol, EthernetRepr, Ipv4Address,
};

use super::*;
use crate::link::claim::Verdict;

const MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x10];
const OTHER: EthernetAddress = EthernetAddress([0x02, 0x00, 0x00, 0x00, 0x00, 0x99]);
const PREFERRED: Ipv4Address = Ipv4Address::new(169, 254, 1, 2);

#[derive(Debug, Clone)]
struct Sent {
    at: Instant,
    bytes: heapless::Vec<u8, 64>,
}

impl Sent {
    fn arp(&self) -> (EthernetRepr, ArpRepr) {
        let eth = EthernetFrame::new_checked(&self.bytes[..]).unwrap();
        let eth_repr = EthernetRepr::parse(&eth).unwrap();
        let arp = ArpPacket::new_checked(eth.payload()).unwrap();
        // The raw fields RFC 5227 names, before the Repr hides them.
        assert_eq!(arp.hardware_type(), ArpHardware::Ethernet);
        assert_eq!(arp.protocol_type(), EthernetProtocol::Ipv4);
        assert_eq!(arp.hardware_len(), 6);
        assert_eq!(arp.protocol_len(), 4);
        (eth_repr, ArpRepr::parse(&arp).unwrap())
    }
}

/// Drives `claim` from `now` to `until` the way the agent would, returning
/// what it sent and the events with the time they came out.
fn drive(
    claim: &mut Ipv4Claim,
    now: &mut Instant,
    until: Instant,
) -> (
    std::vec::Vec<Sent>,
    std::vec::Vec<(Instant, Ipv4ClaimEvent)>,
) {
    let mut sent = std::vec::Vec::new();
    let mut events = std::vec::Vec::new();
    loop {
        let mut buf = [0u8; 64];
        while let Some(n) = claim.poll_transmit(*now, &mut buf) {
            sent.push(Sent {
                at: *now,
                bytes: heapless::Vec::from_slice(&buf[..n]).unwrap(),
            });
        }
        while let Some(e) = claim.poll_event() {
            events.push((*now, e));
        }
        match claim.poll_at() {
            Some(t) if t <= until => *now = if t > *now { t } else { *now },
            _ => break,
        }
    }
    *now = until;
    (sent, events)
}

fn arp_frame(
    op: ArpOperation,
    mac: EthernetAddress,
    sender: Ipv4Address,
    target: Ipv4Address,
) -> [u8; 42] {
    let mut buf = [0u8; 42];
    let mut eth = EthernetFrame::new_unchecked(&mut buf[..]);
    EthernetRepr {
        src_addr: mac,
        dst_addr: EthernetAddress::BROADCAST,
        ethertype: EthernetProtocol::Arp,
    }
    .emit(&mut eth);
    ArpRepr::EthernetIpv4 {
        operation: op,
        source_hardware_addr: mac,
        source_protocol_addr: sender,
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: target,
    }
    .emit(&mut ArpPacket::new_unchecked(eth.payload_mut()));
    buf
}

fn is_probe_for(s: &Sent, addr: Ipv4Address) -> bool {
    let (
        _,
        ArpRepr::EthernetIpv4 {
            source_protocol_addr,
            target_protocol_addr,
            ..
        },
    ) = s.arp()
    else {
        return false;
    };
    source_protocol_addr.is_unspecified() && target_protocol_addr == addr
}

/// Runs a claim to its first probe and returns the time of that probe.
fn to_first_probe(claim: &mut Ipv4Claim, now: &mut Instant) -> Instant {
    let until = *now + Duration::from_secs(70);
    loop {
        let mut buf = [0u8; 64];
        if claim.poll_transmit(*now, &mut buf).is_some() {
            return *now;
        }
        let t = claim.poll_at().unwrap();
        assert!(t <= until, "no probe within 70 s");
        *now = if t > *now { t } else { *now };
    }
}

#[test]
fn clean_claim_probes_announces_and_binds_inside_rfc_windows() {
    for seed in 0..64 {
        let mut claim = Ipv4Claim::new(MAC, PREFERRED, seed);
        let t0 = Instant::from_secs(100);
        let mut now = t0;
        claim.start(now);
        assert_eq!(claim.state(), Ipv4ClaimState::ProbeWait);
        let (sent, events) = drive(&mut claim, &mut now, t0 + Duration::from_secs(30));
        assert_eq!(sent.len(), 5, "3 probes + 2 announcements");

        for s in &sent {
            let (
                eth,
                ArpRepr::EthernetIpv4 {
                    operation,
                    source_hardware_addr,
                    target_hardware_addr,
                    ..
                },
            ) = s.arp()
            else {
                panic!()
            };
            assert_eq!(eth.dst_addr, EthernetAddress::BROADCAST);
            assert_eq!(eth.src_addr, EthernetAddress(MAC));
            assert_eq!(operation, ArpOperation::Request);
            assert_eq!(source_hardware_addr, EthernetAddress(MAC));
            assert_eq!(target_hardware_addr, EthernetAddress([0; 6]));
        }
        for p in &sent[..3] {
            assert!(is_probe_for(p, PREFERRED), "probe fields");
        }
        for a in &sent[3..] {
            let (
                _,
                ArpRepr::EthernetIpv4 {
                    source_protocol_addr,
                    target_protocol_addr,
                    ..
                },
            ) = a.arp()
            else {
                panic!()
            };
            assert_eq!(source_protocol_addr, PREFERRED);
            assert_eq!(target_protocol_addr, PREFERRED);
        }

        let [p1, p2, p3, a1, a2] = [0, 1, 2, 3, 4].map(|i| sent[i].at);
        assert!(
            p1 >= t0 && p1 < t0 + PROBE_WAIT,
            "first probe in 0..PROBE_WAIT"
        );
        for gap in [p2 - p1, p3 - p2] {
            assert!(gap >= PROBE_MIN && gap <= PROBE_MAX, "probe gap {gap}");
        }
        assert!(a1 - p3 >= ANNOUNCE_WAIT && a1 - p3 < ANNOUNCE_WAIT + Duration::from_millis(1));
        assert_eq!(a2 - a1, ANNOUNCE_INTERVAL);
        assert_eq!(events, [(a1, Ipv4ClaimEvent::Bound { addr: PREFERRED })]);
        assert_eq!(claim.bound(), Some(PREFERRED));
        assert_eq!(claim.state(), Ipv4ClaimState::Bound);
        assert_eq!(claim.poll_at(), None, "nothing left to do once bound");
    }
}

#[test]
fn timers_do_not_shrink_when_the_driver_is_late() {
    let mut claim = Ipv4Claim::new(MAC, PREFERRED, 3);
    let mut now = Instant::from_secs(0);
    claim.start(now);
    let mut times = std::vec::Vec::new();
    let mut buf = [0u8; 64];
    while times.len() < 5 {
        // Always wake 700 ms after the deadline.
        now = claim.poll_at().unwrap() + Duration::from_millis(700);
        while claim.poll_transmit(now, &mut buf).is_some() {
            times.push(now);
        }
    }
    for w in times[..3].windows(2) {
        assert!(w[1] - w[0] >= PROBE_MIN);
    }
    assert!(times[3] - times[2] >= ANNOUNCE_WAIT);
    assert!(times[4] - times[3] >= ANNOUNCE_INTERVAL);
}

fn conflict_during_probing(frame: impl Fn(Ipv4Address) -> [u8; 42]) {
    let mut claim = Ipv4Claim::new(MAC, PREFERRED, 11);
    let mut now = Instant::from_secs(5);
    claim.start(now);
    to_first_probe(&mut claim, &mut now);
    now += Duration::from_millis(300);
    assert_eq!(
        claim.handle_frame(now, &frame(PREFERRED)),
        Verdict::Withhold
    );
    assert_eq!(
        claim.poll_event(),
        Some(Ipv4ClaimEvent::Conflict {
            addr: PREFERRED,
            from: OTHER
        })
    );
    let next = claim.candidate().unwrap();
    assert_ne!(next, PREFERRED, "never the lost address");
    assert!(
        select::is_selectable(next),
        "{next} in 169.254.1.0-169.254.254.255"
    );
    assert_eq!(claim.state(), Ipv4ClaimState::ProbeWait);
    assert_eq!(claim.counters().conflicts, 1);
    // The new attempt runs the whole RFC sequence on the new address.
    let until = now + Duration::from_secs(30);
    let (sent, events) = drive(&mut claim, &mut now, until);
    assert!(sent[..3].iter().all(|s| is_probe_for(s, next)));
    assert!(!sent.iter().any(|s| is_probe_for(s, PREFERRED)));
    assert_eq!(
        events.last().unwrap().1,
        Ipv4ClaimEvent::Bound { addr: next }
    );
    assert_eq!(claim.conflicts_in_a_row(), 0, "a bind resets the count");
}

#[test]
fn reply_claiming_the_candidate_during_probing_picks_another_address() {
    conflict_during_probing(|c| arp_frame(ArpOperation::Reply, OTHER, c, PREFERRED));
}

#[test]
fn simultaneous_probe_from_another_mac_picks_another_address() {
    conflict_during_probing(|c| {
        arp_frame(ArpOperation::Request, OTHER, Ipv4Address::UNSPECIFIED, c)
    });
}

#[test]
fn conflict_in_announce_wait_still_counts_as_probing() {
    let mut claim = Ipv4Claim::new(MAC, PREFERRED, 1);
    let mut now = Instant::from_secs(0);
    claim.start(now);
    let mut buf = [0u8; 64];
    while claim.state() != Ipv4ClaimState::AnnounceWait {
        now = claim.poll_at().unwrap();
        let _ = claim.poll_transmit(now, &mut buf);
    }
    let f = arp_frame(
        ArpOperation::Request,
        OTHER,
        PREFERRED,
        Ipv4Address::new(169, 254, 1, 1),
    );
    claim.handle_frame(now + Duration::from_secs(1), &f);
    assert!(matches!(
        claim.poll_event(),
        Some(Ipv4ClaimEvent::Conflict { .. })
    ));
    assert_eq!(claim.bound(), None);
}

#[test]
fn a_plain_request_for_the_candidate_is_withheld_but_no_conflict() {
    let mut claim = Ipv4Claim::new(MAC, PREFERRED, 2);
    let mut now = Instant::from_secs(0);
    claim.start(now);
    to_first_probe(&mut claim, &mut now);
    let bmc = Ipv4Address::new(169, 254, 1, 1);
    let ask = arp_frame(ArpOperation::Request, OTHER, bmc, PREFERRED);
    assert_eq!(claim.handle_frame(now, &ask), Verdict::Withhold);
    let unrelated = arp_frame(
        ArpOperation::Request,
        OTHER,
        bmc,
        Ipv4Address::new(169, 254, 9, 9),
    );
    assert_eq!(claim.handle_frame(now, &unrelated), Verdict::Pass);
    assert_eq!(claim.poll_event(), None);
    assert_eq!(claim.candidate(), Some(PREFERRED));
}

#[test]
fn own_echoed_probes_and_announcements_are_ignored() {
    let mut claim = Ipv4Claim::new(MAC, PREFERRED, 4);
    let mut now = Instant::from_secs(0);
    claim.start(now);
    let mut buf = [0u8; 64];
    let mut echoed = 0;
    while claim.state() != Ipv4ClaimState::Bound {
        now = claim.poll_at().unwrap();
        while let Some(n) = claim.poll_transmit(now, &mut buf) {
            let frame = buf;
            assert_eq!(claim.handle_frame(now, &frame[..n]), Verdict::Withhold);
            echoed += 1;
        }
    }
    assert_eq!(echoed, 5);
    assert_eq!(claim.counters().own_echoes, 5);
    assert_eq!(claim.counters().conflicts, 0);
    assert_eq!(
        claim.poll_event(),
        Some(Ipv4ClaimEvent::Bound { addr: PREFERRED })
    );
    assert_eq!(claim.poll_event(), None);
}

/// A claim bound to PREFERRED, announcements done.
fn bound_claim(now: &mut Instant) -> Ipv4Claim {
    let mut claim = Ipv4Claim::new(MAC, PREFERRED, 9);
    claim.start(*now);
    let until = *now + Duration::from_secs(20);
    let _ = drive(&mut claim, now, until);
    assert_eq!(claim.state(), Ipv4ClaimState::Bound);
    claim
}

#[test]
fn conflict_after_binding_is_defended_once_then_lost_within_defend_interval() {
    let mut now = Instant::from_secs(0);
    let mut claim = bound_claim(&mut now);
    let conflict = arp_frame(ArpOperation::Request, OTHER, PREFERRED, PREFERRED);

    assert_eq!(claim.handle_frame(now, &conflict), Verdict::Withhold);
    assert_eq!(
        claim.poll_event(),
        Some(Ipv4ClaimEvent::Defended {
            addr: PREFERRED,
            from: OTHER
        })
    );
    let mut buf = [0u8; 64];
    let n = claim
        .poll_transmit(now, &mut buf)
        .expect("one defending announcement");
    let defence = Sent {
        at: now,
        bytes: heapless::Vec::from_slice(&buf[..n]).unwrap(),
    };
    let (
        eth,
        ArpRepr::EthernetIpv4 {
            source_protocol_addr,
            target_protocol_addr,
            operation,
            ..
        },
    ) = defence.arp()
    else {
        panic!()
    };
    assert_eq!(eth.dst_addr, EthernetAddress::BROADCAST);
    assert_eq!(operation, ArpOperation::Request);
    assert_eq!(
        (source_protocol_addr, target_protocol_addr),
        (PREFERRED, PREFERRED)
    );
    assert_eq!(claim.poll_transmit(now, &mut buf), None, "exactly one");
    assert_eq!(claim.bound(), Some(PREFERRED));

    // Second conflict 9.9 s later: inside DEFEND_INTERVAL.
    now += Duration::from_millis(9_900);
    claim.handle_frame(now, &conflict);
    assert_eq!(
        claim.poll_event(),
        Some(Ipv4ClaimEvent::Lost {
            addr: PREFERRED,
            from: OTHER
        })
    );
    assert_eq!(claim.bound(), None);
    assert_eq!(
        claim.poll_transmit(now, &mut buf),
        None,
        "no defence after losing"
    );
    let next = claim.candidate().expect("a new claim started by itself");
    assert_ne!(next, PREFERRED);
    let until = now + Duration::from_secs(20);
    let (sent, events) = drive(&mut claim, &mut now, until);
    assert!(is_probe_for(&sent[0], next));
    assert_eq!(
        events.last().unwrap().1,
        Ipv4ClaimEvent::Bound { addr: next }
    );
}

#[test]
fn conflict_after_defend_interval_is_defended_again() {
    let mut now = Instant::from_secs(0);
    let mut claim = bound_claim(&mut now);
    let conflict = arp_frame(ArpOperation::Reply, OTHER, PREFERRED, PREFERRED);
    let mut buf = [0u8; 64];
    for _ in 0..3 {
        claim.handle_frame(now, &conflict);
        assert!(matches!(
            claim.poll_event(),
            Some(Ipv4ClaimEvent::Defended { .. })
        ));
        assert!(claim.poll_transmit(now, &mut buf).is_some());
        now += DEFEND_INTERVAL;
    }
    assert_eq!(claim.bound(), Some(PREFERRED));
    assert_eq!(claim.counters().defended, 3);
}

#[test]
fn probe_for_the_bound_address_is_answered_with_a_reply() {
    let mut now = Instant::from_secs(0);
    let mut claim = bound_claim(&mut now);
    let probe = arp_frame(
        ArpOperation::Request,
        OTHER,
        Ipv4Address::UNSPECIFIED,
        PREFERRED,
    );
    assert_eq!(claim.handle_frame(now, &probe), Verdict::Withhold);
    assert_eq!(
        claim.poll_event(),
        None,
        "a probe is not a conflict for the owner"
    );
    let mut buf = [0u8; 64];
    let n = claim.poll_transmit(now, &mut buf).unwrap();
    let s = Sent {
        at: now,
        bytes: heapless::Vec::from_slice(&buf[..n]).unwrap(),
    };
    let (
        eth,
        ArpRepr::EthernetIpv4 {
            operation,
            source_protocol_addr,
            target_hardware_addr,
            ..
        },
    ) = s.arp()
    else {
        panic!()
    };
    assert_eq!(eth.dst_addr, OTHER);
    assert_eq!(operation, ArpOperation::Reply);
    assert_eq!(source_protocol_addr, PREFERRED);
    assert_eq!(target_hardware_addr, OTHER);
    assert_eq!(claim.bound(), Some(PREFERRED));
}

#[test]
fn eleventh_attempt_waits_rate_limit_interval() {
    let mut claim = Ipv4Claim::new(MAC, PREFERRED, 21);
    let mut now = Instant::from_secs(0);
    claim.start(now);
    let mut conflict_at = now;
    for attempt in 1..=MAX_CONFLICTS {
        let probe_at = to_first_probe(&mut claim, &mut now);
        assert!(
            probe_at - conflict_at < PROBE_WAIT,
            "attempt {attempt} is not rate-limited"
        );
        let c = claim.candidate().unwrap();
        claim.handle_frame(now, &arp_frame(ArpOperation::Reply, OTHER, c, c));
        conflict_at = now;
    }
    assert_eq!(claim.conflicts_in_a_row(), MAX_CONFLICTS);
    assert_eq!(claim.state(), Ipv4ClaimState::RateLimited);
    let events: std::vec::Vec<_> = core::iter::from_fn(|| claim.poll_event()).collect();
    assert_eq!(events.len(), 8, "queue keeps the newest 8");
    let Some(Ipv4ClaimEvent::RateLimited { conflicts, wait }) = events.last().copied() else {
        panic!("{events:?}")
    };
    assert_eq!(conflicts, MAX_CONFLICTS);
    assert!(wait >= RATE_LIMIT_INTERVAL);
    assert_eq!(claim.counters().events_dropped, 3);
    // The 11th attempt's first probe waits at least RATE_LIMIT_INTERVAL.
    let eleventh = to_first_probe(&mut claim, &mut now);
    assert!(eleventh - conflict_at >= RATE_LIMIT_INTERVAL);
    assert!(eleventh - conflict_at < RATE_LIMIT_INTERVAL + PROBE_WAIT);
    assert_eq!(claim.state(), Ipv4ClaimState::Probing);
}

#[test]
fn malformed_arp_is_dropped_counted_and_never_a_conflict() {
    let mut claim = Ipv4Claim::new(MAC, PREFERRED, 5);
    let mut now = Instant::from_secs(0);
    claim.start(now);
    to_first_probe(&mut claim, &mut now);
    let good = arp_frame(ArpOperation::Reply, OTHER, PREFERRED, PREFERRED);
    let mut hlen8 = good;
    hlen8[14 + 4] = 8;
    let mut plen16 = [0u8; 80];
    plen16[..42].copy_from_slice(&good);
    plen16[14 + 5] = 16;
    let mut htype = good;
    htype[14 + 1] = 6;
    let bad: [&[u8]; 5] = [&good[..41], &good[..15], &hlen8, &plen16, &htype];
    for f in bad {
        assert_eq!(claim.handle_frame(now, f), Verdict::Malformed);
    }
    assert_eq!(claim.counters().malformed, 5);
    assert_eq!(claim.poll_event(), None);
    assert_eq!(claim.candidate(), Some(PREFERRED));
    // Non-ARP and runts are not inspected at all.
    let mut ipv4 = good;
    ipv4[13] = 0x00;
    ipv4[12] = 0x08;
    assert_eq!(claim.handle_frame(now, &ipv4), Verdict::Pass);
    assert_eq!(claim.handle_frame(now, &[]), Verdict::Pass);
    assert_eq!(claim.counters().malformed, 5);
}

#[test]
fn stop_silences_the_claim() {
    let mut now = Instant::from_secs(0);
    let mut claim = bound_claim(&mut now);
    claim.stop();
    assert_eq!(claim.state(), Ipv4ClaimState::Idle);
    assert_eq!(claim.bound(), None);
    assert_eq!(claim.poll_at(), None);
    let conflict = arp_frame(ArpOperation::Reply, OTHER, PREFERRED, PREFERRED);
    assert_eq!(claim.handle_frame(now, &conflict), Verdict::Pass);
    assert_eq!(claim.poll_transmit(now, &mut [0u8; 64]), None);
}

#[test]
fn short_transmit_buffer_keeps_the_frame_queued() {
    let mut claim = Ipv4Claim::new(MAC, PREFERRED, 6);
    let now = Instant::from_secs(0);
    claim.start(now);
    let t = claim.poll_at().unwrap();
    assert_eq!(claim.poll_transmit(t, &mut [0u8; 41]), None);
    assert_eq!(claim.poll_at(), Some(t));
    assert_eq!(claim.poll_transmit(t, &mut [0u8; 42]), Some(ARP_FRAME_LEN));
}

#[test]
fn claim_events_map_to_link_audit_events() {
    use crate::audit::LinkEvent;
    let e = Ipv4ClaimEvent::Lost {
        addr: PREFERRED,
        from: OTHER,
    }
    .audit();
    assert_eq!(e.id().0, 1004);
    let text = std::format!("{e}");
    assert!(
        text.contains("169.254.1.2") && text.contains("02-00-00-00-00-99"),
        "{text}"
    );
    let r = Ipv4ClaimEvent::RateLimited {
        conflicts: 10,
        wait: Duration::from_millis(60_500),
    };
    assert_eq!(
        r.audit(),
        LinkEvent::Ipv4RateLimited {
            conflicts: 10,
            wait_secs: 60
        }
    );
}

#[test]
fn random_garbage_never_panics() {
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed);
    let mut claim = Ipv4Claim::new(MAC, PREFERRED, 1);
    let mut now = Instant::from_secs(0);
    claim.start(now);
    let template = arp_frame(ArpOperation::Reply, OTHER, PREFERRED, PREFERRED);
    for i in 0..20_000u32 {
        let mut frame = [0u8; 96];
        let len = (rng.next_u32() % 97) as usize;
        if i % 2 == 0 {
            // A real ARP frame with a few random bytes changed.
            frame[..42].copy_from_slice(&template);
            for _ in 0..(rng.next_u32() % 4) {
                let at = (rng.next_u32() % 42) as usize;
                frame[at] = rng.next_u32() as u8;
            }
        } else {
            rng.fill_bytes(&mut frame);
            frame[12] = 0x08;
            frame[13] = 0x06;
        }
        now += Duration::from_millis(u64::from(rng.next_u32() % 3000));
        let _ = claim.handle_frame(now, &frame[..len]);
        let mut out = [0u8; 64];
        let cap = (rng.next_u32() % 65) as usize;
        let _ = claim.poll_transmit(now, &mut out[..cap]);
        let _ = claim.poll_event();
        if i % 5000 == 0 {
            claim.start(now);
        }
    }
    assert!(claim.counters().malformed > 0);
}
