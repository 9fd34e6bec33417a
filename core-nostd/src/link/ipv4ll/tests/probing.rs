//! Probing, conflicts while probing, and the rate limit.

use super::*;

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
            from: OTHER,
            then: Retry::Another,
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
    let Some(Ipv4ClaimEvent::RateLimited {
        conflicts, wait, ..
    }) = events.last().copied()
    else {
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
fn a_preferred_address_no_host_can_own_gives_way_to_an_rfc3927_pick() {
    for bad in [
        Ipv4Address::UNSPECIFIED,
        Ipv4Address::BROADCAST,
        Ipv4Address::new(224, 0, 0, 1),
    ] {
        let mut claim = Ipv4Claim::new(MAC, bad, 1);
        claim.start(Instant::from_secs(0));
        let c = claim.candidate().unwrap();
        assert!(select::is_selectable(c), "{bad} -> {c}");
    }
    // The older-firmware default outside the RFC 3927 range is tried as is.
    let old = Ipv4Address::new(169, 254, 0, 2);
    let mut claim = Ipv4Claim::new(MAC, old, 1);
    claim.start(Instant::from_secs(0));
    assert_eq!(claim.candidate(), Some(old));
}
