//! DAD: success, duplicates, regeneration, failure, optimistic use.

use super::*;

#[test]
fn dad_success_joins_first_then_one_ns_then_binds_after_retrans_timer() {
    for seed in 0..32 {
        let mut c = claim(seed, false);
        let t0 = Instant::from_secs(50);
        let mut now = t0;
        c.start(now);
        let addr = stable(0);
        assert_eq!(c.tentative(), Some(addr));
        assert_eq!(c.usable(), None, "not optimistic");
        let until = t0 + Duration::from_secs(10);
        let (sent, events) = drive(&mut c, &mut now, until);
        assert_eq!(sent.len(), 2);
        check_mld_join(&sent[0].1, solicited_node(addr));
        check_dad_ns(&sent[1].1, addr);
        assert_eq!(sent[0].0, t0, "MLD report at once, before the NS");
        let delay = sent[1].0 - t0;
        assert!(
            delay < MAX_RTR_SOLICITATION_DELAY,
            "NS after 0..1 s: {delay}"
        );
        assert_eq!(
            events,
            [(sent[1].0 + RETRANS_TIMER, Ipv6ClaimEvent::Bound { addr })]
        );
        assert_eq!(c.bound(), Some(addr));
        assert_eq!(c.usable(), Some(addr));
        assert_eq!(c.poll_at(), None);
    }
}

fn duplicate_regenerates(frame: impl Fn(Ipv6Address) -> Vec<u8>) {
    let mut c = claim(3, false);
    let mut now = Instant::from_secs(0);
    c.start(now);
    to_tentative(&mut c, &mut now);
    now += Duration::from_millis(400);
    assert_eq!(c.handle_frame(now, &frame(stable(0))), Verdict::Withhold);
    assert_eq!(
        c.poll_event(),
        Some(Ipv6ClaimEvent::Duplicate {
            addr: stable(0),
            from: OTHER,
            dad_counter: 1
        })
    );
    assert_eq!(c.dad_counter(), 1);
    assert_eq!(c.state(), Ipv6ClaimState::IdgenDelay);
    assert_eq!(c.bound(), None);
    let dup_at = now;
    let until = now + Duration::from_secs(10);
    let (sent, events) = drive(&mut c, &mut now, until);
    let next = stable(1);
    assert_ne!(next, stable(0));
    assert!(sent[0].0 - dup_at >= IDGEN_DELAY);
    check_mld_join(&sent[0].1, solicited_node(next));
    check_dad_ns(&sent[1].1, next);
    assert_eq!(
        events.last().unwrap().1,
        Ipv6ClaimEvent::Bound { addr: next }
    );
    assert_eq!(c.counters().conflicts, 1);
}

#[test]
fn neighbor_advert_for_the_tentative_address_regenerates_with_next_counter() {
    duplicate_regenerates(|t| na(OTHER, t));
}

#[test]
fn simultaneous_dad_ns_from_another_mac_regenerates_with_next_counter() {
    duplicate_regenerates(|t| dad_ns(OTHER, t));
}

#[test]
fn own_echoed_ns_and_address_resolution_are_not_duplicates() {
    let mut c = claim(4, false);
    let mut now = Instant::from_secs(0);
    c.start(now);
    let sent = to_tentative(&mut c, &mut now);
    for (_, f) in &sent {
        let v = c.handle_frame(now, f);
        assert!(v == Verdict::Withhold || v == Verdict::Pass, "{v:?}");
    }
    assert_eq!(c.counters().own_echoes, 1, "the NS came back");
    // An NS for the tentative address from a unicast source is address
    // resolution, not DAD (RFC 4862 §5.4.3): ignored, but not for smoltcp.
    let resolve = ndp_frame(
        OTHER,
        link_local([0, 0, 0, 0, 0, 0, 0, 0x99]),
        solicited_node(stable(0)),
        NdiscRepr::NeighborSolicit {
            target_addr: stable(0),
            lladdr: Some(RawHardwareAddress::from_bytes(OTHER.as_bytes())),
        },
        255,
    );
    assert_eq!(c.handle_frame(now, &resolve), Verdict::Withhold);
    // NDP about other addresses goes on to smoltcp.
    assert_eq!(c.handle_frame(now, &na(OTHER, stable(7))), Verdict::Pass);
    let until = now + Duration::from_secs(5);
    let (_, events) = drive(&mut c, &mut now, until);
    assert_eq!(
        events,
        [(events[0].0, Ipv6ClaimEvent::Bound { addr: stable(0) })]
    );
    assert_eq!(c.counters().conflicts, 0);
}

#[test]
fn idgen_retries_exhaustion_fails_then_starts_over_at_dad_counter_0() {
    let mut c = claim(5, false);
    let mut now = Instant::from_secs(0);
    c.start(now);
    for counter in 0..=IDGEN_RETRIES {
        to_tentative(&mut c, &mut now);
        assert_eq!(c.tentative(), Some(stable(counter)));
        c.handle_frame(now, &na(OTHER, stable(counter)));
    }
    let events: Vec<_> = core::iter::from_fn(|| c.poll_event()).collect();
    assert_eq!(events.len(), 5, "{events:?}");
    assert_eq!(
        events[4],
        Ipv6ClaimEvent::Failed {
            addr: stable(IDGEN_RETRIES),
            attempts: IDGEN_RETRIES + 1,
            retry_in: DAD_RETRY_INTERVAL,
        }
    );
    assert_eq!(c.state(), Ipv6ClaimState::Failed);
    assert_eq!(c.usable(), None);
    // Nothing at all goes out during the pause (RFC 7217 §6: a limited
    // number of tentative addresses in a row).
    let failed_at = now;
    assert_eq!(c.poll_at(), Some(failed_at + DAD_RETRY_INTERVAL));
    assert_eq!(
        c.poll_transmit(
            failed_at + DAD_RETRY_INTERVAL - Duration::from_millis(1),
            &mut [0u8; 128]
        ),
        None
    );
    let audit = events[4].audit().unwrap();
    assert_eq!(audit.id().0, 1103);
    let text = std::format!("{audit}");
    assert!(text.contains("in 30 s"), "{text}");
    assert!(!text.contains("stays off"), "{text}");
    // Then DAD starts over with the first stable identifier, and binds it.
    let until = failed_at + DAD_RETRY_INTERVAL + Duration::from_secs(5);
    let (sent, events) = drive(&mut c, &mut now, until);
    assert_eq!(sent[0].0, failed_at + DAD_RETRY_INTERVAL);
    check_mld_join(&sent[0].1, solicited_node(stable(0)));
    check_dad_ns(&sent[1].1, stable(0));
    assert_eq!(c.dad_counter(), 0);
    assert_eq!(
        events.last().unwrap().1,
        Ipv6ClaimEvent::Bound { addr: stable(0) }
    );
}

#[test]
fn eui64_duplicate_fails_at_once_and_retries_after_the_interval() {
    let mut c = Ipv6Claim::new(MAC, IidMode::Eui64, false, 1);
    let mut now = Instant::from_secs(0);
    c.start(now);
    let addr = link_local(eui64_iid(MAC));
    assert_eq!(c.tentative(), Some(addr));
    to_tentative(&mut c, &mut now);
    c.handle_frame(now, &dad_ns(OTHER, addr));
    assert!(matches!(
        c.poll_event(),
        Some(Ipv6ClaimEvent::Duplicate { .. })
    ));
    assert_eq!(
        c.poll_event(),
        Some(Ipv6ClaimEvent::Failed {
            addr,
            attempts: 1,
            retry_in: DAD_RETRY_INTERVAL
        })
    );
    let until = now + DAD_RETRY_INTERVAL + Duration::from_secs(5);
    let (_, events) = drive(&mut c, &mut now, until);
    assert_eq!(events.last().unwrap().1, Ipv6ClaimEvent::Bound { addr });
}

/// The targets of the DAD solicitations in `frames` (the MLD reports are
/// hop-by-hop, the NS plain ICMPv6).
fn ns_targets(frames: &Frames) -> Vec<(Instant, Ipv6Address)> {
    frames
        .iter()
        .filter_map(|(at, f)| {
            let eth = EthernetFrame::new_checked(&f[..]).ok()?;
            let ip = Ipv6Packet::new_checked(eth.payload()).ok()?;
            if ip.next_header() != IpProtocol::Icmpv6 {
                return None;
            }
            let icmp = Icmpv6Packet::new_checked(ip.payload()).ok()?;
            let caps = ChecksumCapabilities::default();
            match Icmpv6Repr::parse(&ip.src_addr(), &ip.dst_addr(), &icmp, &caps).ok()? {
                Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit { target_addr, .. }) => {
                    Some((*at, target_addr))
                }
                _ => None,
            }
        })
        .collect()
}

#[test]
fn a_host_answering_every_dad_probe_keeps_ipv6_off_only_while_it_does() {
    let stop = Instant::from_secs(3600);
    let four: Vec<_> = (0..=IDGEN_RETRIES).map(stable).collect();
    for seed in 0..4 {
        let mut c = claim(seed, false);
        let mut now = Instant::from_secs(0);
        c.start(now);
        let mut frames: Frames = Vec::new();
        let mut events: Events = Vec::new();
        while now < stop + Duration::from_secs(120) {
            let mut buf = [0u8; 128];
            while let Some(n) = c.poll_transmit(now, &mut buf) {
                frames.push((now, buf[..n].to_vec()));
            }
            // The attacker answers each solicitation at once.
            if now < stop {
                if let Some(&(at, target)) = ns_targets(&frames).last() {
                    if at == now {
                        c.handle_frame(now, &na(OTHER, target));
                    }
                }
            }
            while let Some(e) = c.poll_event() {
                events.push((now, e));
            }
            let Some(t) = c.poll_at() else { break };
            now = t.max(now + Duration::from_micros(1));
        }
        let ns = ns_targets(&frames);
        // RFC 7217: only the four stable identifiers, ever.
        assert!(ns.iter().all(|(_, t)| four.contains(t)), "seed {seed}");
        // Rate: IDGEN_RETRIES + 1 solicitations per cycle of at most
        // DAD_RETRY_INTERVAL plus four short attempts.
        let during = ns.iter().filter(|(at, _)| *at < stop).count();
        let cycle = DAD_RETRY_INTERVAL.secs() as usize;
        assert!(
            during <= (3600 / cycle + 1) * 4,
            "seed {seed}: {during} NS in the hour"
        );
        assert!(
            during >= 3600 / (cycle + 12) * 4,
            "seed {seed}: it kept trying: {during}"
        );
        // Once the attacker is gone, DAD binds one of the stable identifiers
        // well within a minute.
        let (bound_at, addr) = events
            .iter()
            .find_map(|(at, e)| match e {
                Ipv6ClaimEvent::Bound { addr } => Some((*at, *addr)),
                _ => None,
            })
            .unwrap_or_else(|| panic!("seed {seed}: never bound"));
        assert!(bound_at >= stop);
        let limit = DAD_RETRY_INTERVAL + MAX_RTR_SOLICITATION_DELAY + RETRANS_TIMER;
        assert!(bound_at - stop <= limit, "seed {seed}: {}", bound_at - stop);
        assert!(limit < Duration::from_secs(60));
        assert!(four.contains(&addr));
    }
}

#[test]
fn optimistic_address_is_usable_during_dad() {
    let mut c = claim(6, true);
    let mut now = Instant::from_secs(0);
    c.start(now);
    assert_eq!(
        c.poll_event(),
        Some(Ipv6ClaimEvent::Optimistic { addr: stable(0) })
    );
    assert_eq!(c.usable(), Some(stable(0)));
    assert_eq!(c.bound(), None);
    to_tentative(&mut c, &mut now);
    c.handle_frame(now, &na(OTHER, stable(0)));
    assert!(matches!(
        c.poll_event(),
        Some(Ipv6ClaimEvent::Duplicate { .. })
    ));
    assert_eq!(c.usable(), None, "withdrawn on duplicate");
    let until = now + Duration::from_secs(5);
    let (_, events) = drive(&mut c, &mut now, until);
    let kinds: Vec<_> = events.iter().map(|(_, e)| *e).collect();
    assert_eq!(
        kinds,
        [
            Ipv6ClaimEvent::Optimistic { addr: stable(1) },
            Ipv6ClaimEvent::Bound { addr: stable(1) }
        ]
    );
}

#[test]
fn solicited_node_mac_follows_the_address() {
    let mut c = claim(8, false);
    assert_eq!(c.solicited_node_mac(), None, "not started");
    let now = Instant::from_secs(0);
    c.start(now);
    let o = stable(0).octets();
    assert_eq!(
        c.solicited_node_mac(),
        Some(EthernetAddress([0x33, 0x33, 0xff, o[13], o[14], o[15]]))
    );
    c.stop();
    assert_eq!(c.solicited_node_mac(), None);
}

#[test]
fn claim_events_map_to_link_audit_events() {
    let e = Ipv6ClaimEvent::Duplicate {
        addr: stable(0),
        from: OTHER,
        dad_counter: 1,
    };
    assert_eq!(e.audit().unwrap().id().0, 1102);
    assert_eq!(
        Ipv6ClaimEvent::Bound { addr: stable(0) }
            .audit()
            .unwrap()
            .id()
            .0,
        1101
    );
    assert_eq!(Ipv6ClaimEvent::Optimistic { addr: stable(0) }.audit(), None);
    let text = std::format!("{:?}", IidMode::Stable { secret: SECRET });
    assert!(
        !text.contains("bmclink test secret"),
        "secret redacted: {text}"
    );
}
