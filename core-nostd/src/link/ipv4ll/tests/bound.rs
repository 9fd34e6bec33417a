//! The bound address: defence, loss, probe answers; driver edge cases.

use super::*;

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
            from: OTHER,
            then: Retry::Another,
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
    assert_eq!(claim.counters().defended, 1);
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
        then: Retry::Another,
    }
    .audit();
    assert_eq!(e.id().0, 1004);
    let text = std::format!("{e}");
    assert!(
        text.contains("169.254.1.2") && text.contains("02-00-00-00-00-99"),
        "{text}"
    );
    assert!(text.contains("another"), "{text}");
    let r = Ipv4ClaimEvent::RateLimited {
        addr: PREFERRED,
        conflicts: 10,
        wait: Duration::from_millis(60_500),
    };
    assert_eq!(
        r.audit(),
        LinkEvent::Ipv4RateLimited {
            addr: PREFERRED,
            conflicts: 10,
            wait_secs: 60
        }
    );
    assert!(std::format!("{}", r.audit()).contains("on 169.254.1.2 in 60 s"));
}
