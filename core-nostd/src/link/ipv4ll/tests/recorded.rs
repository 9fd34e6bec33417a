//! The recorded address (P3): a conflict probes the same address again,
//! under the same RFC 5227 defence, delays and rate limit; never another.

use super::*;

fn reply_from_other(addr: Ipv4Address) -> [u8; 42] {
    arp_frame(ArpOperation::Reply, OTHER, addr, addr)
}

/// A recorded claim of PREFERRED, bound and announced.
fn bound_recorded(now: &mut Instant) -> Ipv4Claim {
    let mut claim = Ipv4Claim::recorded(MAC, PREFERRED, 12);
    assert_eq!(claim.retry(), Retry::Same);
    claim.start(*now);
    let until = *now + Duration::from_secs(20);
    let _ = drive(&mut claim, now, until);
    assert_eq!(claim.bound(), Some(PREFERRED));
    claim
}

#[test]
fn recorded_address_taken_while_probing_is_probed_again_not_replaced() {
    let mut claim = Ipv4Claim::recorded(MAC, PREFERRED, 4);
    let mut now = Instant::from_secs(0);
    claim.start(now);
    to_first_probe(&mut claim, &mut now);
    claim.handle_frame(now, &reply_from_other(PREFERRED));
    assert_eq!(
        claim.poll_event(),
        Some(Ipv4ClaimEvent::Conflict {
            addr: PREFERRED,
            from: OTHER,
            then: Retry::Same,
        })
    );
    assert_eq!(claim.candidate(), Some(PREFERRED), "the same address");
    assert_eq!(claim.state(), Ipv4ClaimState::ProbeWait);
    // The new attempt is a whole RFC 5227 sequence: PROBE_WAIT, 3 probes.
    let conflict_at = now;
    let until = now + Duration::from_secs(30);
    let (sent, events) = drive(&mut claim, &mut now, until);
    assert!(sent[0].at - conflict_at < PROBE_WAIT);
    assert!(sent[..3].iter().all(|s| is_probe_for(s, PREFERRED)));
    assert_eq!(
        events.last().unwrap().1,
        Ipv4ClaimEvent::Bound { addr: PREFERRED }
    );
    assert_eq!(claim.conflicts_in_a_row(), 0, "a bind resets the count");
}

#[test]
fn recorded_address_is_defended_once_then_given_up_and_probed_again() {
    let mut now = Instant::from_secs(0);
    let mut claim = bound_recorded(&mut now);
    let claim_frame = arp_frame(ArpOperation::Request, OTHER, PREFERRED, PREFERRED);
    claim.handle_frame(now, &claim_frame);
    assert!(matches!(
        claim.poll_event(),
        Some(Ipv4ClaimEvent::Defended { .. })
    ));
    let mut buf = [0u8; 64];
    assert!(claim.poll_transmit(now, &mut buf).is_some(), "one defence");
    assert_eq!(claim.poll_transmit(now, &mut buf), None);
    // RFC 5227 §2.4 (b): a second conflict inside DEFEND_INTERVAL.
    now += DEFEND_INTERVAL - Duration::from_millis(1);
    claim.handle_frame(now, &claim_frame);
    assert_eq!(
        claim.poll_event(),
        Some(Ipv4ClaimEvent::Lost {
            addr: PREFERRED,
            from: OTHER,
            then: Retry::Same,
        })
    );
    assert_eq!(claim.bound(), None);
    assert_eq!(claim.candidate(), Some(PREFERRED));
    let until = now + Duration::from_secs(30);
    let (sent, events) = drive(&mut claim, &mut now, until);
    assert!(sent[..3].iter().all(|s| is_probe_for(s, PREFERRED)));
    assert_eq!(
        events,
        [(events[0].0, Ipv4ClaimEvent::Bound { addr: PREFERRED })]
    );
}

#[test]
fn keep_address_makes_the_bound_address_of_a_fresh_claim_the_recorded_one() {
    let mut claim = Ipv4Claim::new(MAC, PREFERRED, 9);
    let mut now = Instant::from_secs(0);
    claim.start(now);
    let until = now + Duration::from_secs(20);
    let _ = drive(&mut claim, &mut now, until);
    assert_eq!(claim.retry(), Retry::Another);
    claim.keep_address();
    let frame = reply_from_other(PREFERRED);
    claim.handle_frame(now, &frame);
    now += Duration::from_secs(1);
    claim.handle_frame(now, &frame);
    let events: std::vec::Vec<_> = core::iter::from_fn(|| claim.poll_event()).collect();
    assert!(
        events.contains(&Ipv4ClaimEvent::Lost {
            addr: PREFERRED,
            from: OTHER,
            then: Retry::Same
        }),
        "{events:?}"
    );
    assert_eq!(claim.candidate(), Some(PREFERRED));
}

/// What a claim of the recorded address sent and reported while a host
/// squatted on that address from 0 to `stop` (announcing it every 2 s and
/// answering every probe at once), and up to `end`.
struct Squatted {
    /// First probe of each attempt.
    attempts: std::vec::Vec<Instant>,
    /// Every ARP frame the claim sent: (when, sender IP, target IP).
    arp: std::vec::Vec<(Instant, Ipv4Address, Ipv4Address)>,
    events: std::vec::Vec<(Instant, Ipv4ClaimEvent)>,
}

fn squat(seed: u64, stop: Instant, end: Instant) -> Squatted {
    let mut claim = Ipv4Claim::recorded(MAC, PREFERRED, seed);
    let mut now = Instant::from_secs(0);
    claim.start(now);
    let every = Duration::from_secs(2);
    let mut next_announce = Instant::from_secs(0);
    let mut out = Squatted {
        attempts: std::vec::Vec::new(),
        arp: std::vec::Vec::new(),
        events: std::vec::Vec::new(),
    };
    let mut last_was_probe = false;
    while now <= end {
        let squatting = now < stop;
        if squatting && now >= next_announce {
            claim.handle_frame(
                now,
                &arp_frame(ArpOperation::Request, OTHER, PREFERRED, PREFERRED),
            );
            next_announce = now + every;
        }
        let mut buf = [0u8; 64];
        while let Some(n) = claim.poll_transmit(now, &mut buf) {
            let s = Sent {
                at: now,
                bytes: heapless::Vec::from_slice(&buf[..n]).unwrap(),
            };
            let (
                _,
                ArpRepr::EthernetIpv4 {
                    source_protocol_addr: src,
                    target_protocol_addr: dst,
                    ..
                },
            ) = s.arp()
            else {
                panic!()
            };
            let probe = src.is_unspecified();
            if probe && !last_was_probe {
                out.attempts.push(now);
            }
            last_was_probe = probe;
            out.arp.push((now, src, dst));
            if probe && squatting {
                claim.handle_frame(now, &reply_from_other(dst));
            }
        }
        while let Some(e) = claim.poll_event() {
            if matches!(
                e,
                Ipv4ClaimEvent::Conflict { .. } | Ipv4ClaimEvent::Lost { .. }
            ) {
                last_was_probe = false;
            }
            out.events.push((now, e));
        }
        let mut next = end + Duration::from_micros(1);
        if let Some(t) = claim.poll_at() {
            next = next.min(t.max(now + Duration::from_micros(1)));
        }
        if now < stop {
            next = next.min(next_announce.min(stop));
        }
        now = next;
    }
    out
}

#[test]
fn a_squatter_on_the_recorded_address_gets_one_attempt_a_minute_and_it_is_ours_once_it_stops() {
    let stop = Instant::from_secs(3600);
    let end = stop + Duration::from_secs(120);
    for seed in 0..4 {
        let s = squat(seed, stop, end);
        // Never another address, in any frame.
        assert!(
            s.arp
                .iter()
                .all(|(_, src, dst)| *dst == PREFERRED
                    && (src.is_unspecified() || *src == PREFERRED)),
            "seed {seed}: a frame for another address"
        );
        // After MAX_CONFLICTS attempts, one attempt per RATE_LIMIT_INTERVAL.
        let during: std::vec::Vec<_> = s.attempts.iter().filter(|t| **t < stop).collect();
        for w in during.windows(2).skip(MAX_CONFLICTS as usize) {
            assert!(
                *w[1] - *w[0] >= RATE_LIMIT_INTERVAL,
                "seed {seed}: {} apart",
                *w[1] - *w[0]
            );
        }
        let hour_limit = MAX_CONFLICTS as usize + 3600 / 60 + 1;
        assert!(
            during.len() <= hour_limit,
            "seed {seed}: {} attempts in the hour",
            during.len()
        );
        assert!(
            during.len() >= 3600 / 61,
            "seed {seed}: it kept trying: {}",
            during.len()
        );
        assert!(s.events.iter().any(
            |(_, e)| matches!(e, Ipv4ClaimEvent::RateLimited { addr, .. } if *addr == PREFERRED)
        ));
        // Once the squatter is gone, the next attempt binds the address:
        // within RATE_LIMIT_INTERVAL plus one RFC 5227 probe sequence.
        let bound = s
            .events
            .iter()
            .find(|(at, e)| *at >= stop && *e == Ipv4ClaimEvent::Bound { addr: PREFERRED })
            .map(|(at, _)| *at)
            .unwrap_or_else(|| panic!("seed {seed}: not bound after the squatter stopped"));
        let bound_by = RATE_LIMIT_INTERVAL + PROBE_WAIT + PROBE_MAX + PROBE_MAX + ANNOUNCE_WAIT;
        assert!(
            bound - stop <= bound_by,
            "seed {seed}: bound {} after",
            bound - stop
        );
    }
}
