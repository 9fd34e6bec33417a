//! The bound address: loss, and answering another node's DAD.

use super::*;

#[test]
fn neighbor_advert_for_the_bound_address_from_another_mac_is_lost() {
    let mut c = claim(7, false);
    let mut now = Instant::from_secs(0);
    c.start(now);
    let until = now + Duration::from_secs(5);
    drive(&mut c, &mut now, until);
    assert_eq!(c.bound(), Some(stable(0)));
    // Address resolution for the bound address: smoltcp answers it.
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
    assert_eq!(c.handle_frame(now, &resolve), Verdict::Pass);
    assert_eq!(c.poll_transmit(now, &mut [0u8; 128]), None);
    assert_eq!(c.poll_event(), None);
    // Our own NA echoed back is fine.
    assert_eq!(
        c.handle_frame(now, &na(EthernetAddress(MAC), stable(0))),
        Verdict::Withhold
    );
    assert_eq!(c.poll_event(), None);
    assert_eq!(
        c.handle_frame(now, &na(OTHER, stable(0))),
        Verdict::Withhold
    );
    assert_eq!(
        c.poll_event(),
        Some(Ipv6ClaimEvent::Lost {
            addr: stable(0),
            from: OTHER
        })
    );
    assert_eq!(c.bound(), None);
    assert_eq!(c.dad_counter(), 1);
    let until = now + Duration::from_secs(5);
    let (_, events) = drive(&mut c, &mut now, until);
    assert_eq!(
        events.last().unwrap().1,
        Ipv6ClaimEvent::Bound { addr: stable(1) }
    );
}

#[test]
fn another_nodes_dad_for_the_bound_address_is_answered_to_all_nodes() {
    let mut c = claim(10, false);
    let mut now = Instant::from_secs(0);
    c.start(now);
    let until = now + Duration::from_secs(5);
    drive(&mut c, &mut now, until);
    let addr = stable(0);
    assert_eq!(c.handle_frame(now, &dad_ns(OTHER, addr)), Verdict::Withhold);
    assert_eq!(c.poll_event(), None, "their DAD is not our loss");
    assert_eq!(c.counters().defended, 1);
    let mut buf = [0u8; 128];
    let n = c.poll_transmit(now, &mut buf).expect("an answer");
    assert_eq!(n, NA_FRAME_LEN);
    let eth = EthernetFrame::new_checked(&buf[..n]).unwrap();
    assert_eq!(eth.dst_addr(), EthernetAddress([0x33, 0x33, 0, 0, 0, 1]));
    let ip = Ipv6Packet::new_checked(eth.payload()).unwrap();
    let ip_repr = Ipv6Repr::parse(&ip).unwrap();
    assert_eq!((ip_repr.src_addr, ip_repr.dst_addr), (addr, ALL_NODES));
    assert_eq!(ip_repr.hop_limit, 255);
    let icmp = Icmpv6Packet::new_checked(ip.payload()).unwrap();
    let repr = Icmpv6Repr::parse(&addr, &ALL_NODES, &icmp, &ChecksumCapabilities::default());
    assert_eq!(
        repr,
        Ok(Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert {
            flags: NdiscNeighborFlags::OVERRIDE,
            target_addr: addr,
            lladdr: Some(RawHardwareAddress::from_bytes(&MAC)),
        }))
    );
    // The other node, running this same code, sees that NA as a duplicate.
    let mut other = Ipv6Claim::new(OTHER.0, IidMode::Stable { secret: SECRET }, false, 1);
    let mut t = Instant::from_secs(0);
    other.start(t);
    to_tentative(&mut other, &mut t);
    // Its tentative address differs (other MAC); aim the answer at it.
    let mut answer = [0u8; 128];
    let m = ndp::emit_dad_answer(
        EthernetAddress(MAC),
        other.tentative().unwrap(),
        &mut answer,
    )
    .unwrap();
    other.handle_frame(t, &answer[..m]);
    assert!(matches!(
        other.poll_event(),
        Some(Ipv6ClaimEvent::Duplicate { .. })
    ));
    assert_eq!(c.bound(), Some(addr));
}
