//! Scenario tests of the IPv6 claim, in virtual time: every frame it emits
//! is parsed with `smoltcp::wire` and checked against RFC 4861/4862/3810.

extern crate std;

use std::vec::Vec;

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, Icmpv6Packet, Icmpv6Repr,
    IpProtocol, Ipv6Address, Ipv6ExtHeader, Ipv6ExtHeaderRepr, Ipv6HopByHopHeader,
    Ipv6HopByHopRepr, Ipv6OptionRepr, Ipv6Packet, Ipv6Repr, MldAddressRecord, MldAddressRecordRepr,
    MldRecordType, MldRepr, NdiscNeighborFlags, NdiscRepr, RawHardwareAddress,
};

use super::iid::{link_local, solicited_node};
use super::*;
use crate::link::claim::Verdict;

const MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x10];
const OTHER: EthernetAddress = EthernetAddress([0x02, 0x00, 0x00, 0x00, 0x00, 0x99]);
const SECRET: [u8; 32] = *b"bmclink test secret, 32 bytes!!!";
const ALL_NODES: Ipv6Address = Ipv6Address::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

fn stable(counter: u8) -> Ipv6Address {
    link_local(stable_iid(&SECRET, &MAC, &[], counter))
}

fn claim(seed: u64, optimistic: bool) -> Ipv6Claim {
    Ipv6Claim::new(MAC, IidMode::Stable { secret: SECRET }, optimistic, seed)
}

type Frames = Vec<(Instant, Vec<u8>)>;
type Events = Vec<(Instant, Ipv6ClaimEvent)>;

/// Drives `claim` until `until`, as the agent would.
fn drive(claim: &mut Ipv6Claim, now: &mut Instant, until: Instant) -> (Frames, Events) {
    let (mut sent, mut events) = (Vec::new(), Vec::new());
    loop {
        let mut buf = [0u8; 128];
        while let Some(n) = claim.poll_transmit(*now, &mut buf) {
            sent.push((*now, buf[..n].to_vec()));
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

/// Runs a claim until its NS has gone out; returns the frames sent.
fn to_tentative(claim: &mut Ipv6Claim, now: &mut Instant) -> Frames {
    let mut sent = Vec::new();
    let mut buf = [0u8; 128];
    while claim.state() != Ipv6ClaimState::Tentative {
        *now = claim.poll_at().unwrap().max(*now);
        while let Some(n) = claim.poll_transmit(*now, &mut buf) {
            sent.push((*now, buf[..n].to_vec()));
        }
    }
    sent
}

fn ndp_frame(
    from: EthernetAddress,
    src: Ipv6Address,
    dst: Ipv6Address,
    ndisc: NdiscRepr,
    hop_limit: u8,
) -> Vec<u8> {
    let icmp = Icmpv6Repr::Ndisc(ndisc);
    let mut buf = std::vec![0u8; 14 + 40 + icmp.buffer_len()];
    EthernetRepr {
        src_addr: from,
        dst_addr: EthernetAddress([0x33, 0x33, 0, 0, 0, 1]),
        ethertype: EthernetProtocol::Ipv6,
    }
    .emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
    Ipv6Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::Icmpv6,
        payload_len: icmp.buffer_len(),
        hop_limit,
    }
    .emit(&mut Ipv6Packet::new_unchecked(&mut buf[14..]));
    icmp.emit(
        &src,
        &dst,
        &mut Icmpv6Packet::new_unchecked(&mut buf[54..]),
        &ChecksumCapabilities::default(),
    );
    buf
}

fn na(from: EthernetAddress, target: Ipv6Address) -> Vec<u8> {
    let src = link_local([0, 0, 0, 0, 0, 0, 0, 0x99]);
    ndp_frame(
        from,
        src,
        ALL_NODES,
        NdiscRepr::NeighborAdvert {
            flags: NdiscNeighborFlags::OVERRIDE,
            target_addr: target,
            lladdr: Some(RawHardwareAddress::from_bytes(from.as_bytes())),
        },
        255,
    )
}

fn dad_ns(from: EthernetAddress, target: Ipv6Address) -> Vec<u8> {
    ndp_frame(
        from,
        Ipv6Address::UNSPECIFIED,
        solicited_node(target),
        NdiscRepr::NeighborSolicit {
            target_addr: target,
            lladdr: None,
        },
        255,
    )
}

/// Parses an emitted frame as the MLDv2 join of `group` and checks it.
fn check_mld_join(frame: &[u8], group: Ipv6Address) {
    let eth = EthernetFrame::new_checked(frame).unwrap();
    assert_eq!(eth.dst_addr(), EthernetAddress([0x33, 0x33, 0, 0, 0, 0x16]));
    assert_eq!(eth.src_addr(), EthernetAddress(MAC));
    assert_eq!(eth.ethertype(), EthernetProtocol::Ipv6);
    let ip = Ipv6Packet::new_checked(eth.payload()).unwrap();
    let ip_repr = Ipv6Repr::parse(&ip).unwrap();
    assert_eq!(ip_repr.src_addr, Ipv6Address::UNSPECIFIED);
    assert_eq!(
        ip_repr.dst_addr,
        Ipv6Address::new(0xff02, 0, 0, 0, 0, 0, 0, 0x16)
    );
    assert_eq!(ip_repr.hop_limit, 1, "RFC 3810: hop limit 1");
    assert_eq!(ip_repr.next_header, IpProtocol::HopByHop);
    let ext = Ipv6ExtHeader::new_checked(ip.payload()).unwrap();
    let ext_repr = Ipv6ExtHeaderRepr::parse(&ext).unwrap();
    assert_eq!(ext_repr.next_header, IpProtocol::Icmpv6);
    let hbh_hdr = Ipv6HopByHopHeader::new_checked(ext_repr.data).unwrap();
    let hbh = Ipv6HopByHopRepr::parse(&hbh_hdr).unwrap();
    assert!(
        hbh.options
            .iter()
            .any(|o| matches!(o, Ipv6OptionRepr::RouterAlert(_))),
        "Router Alert present"
    );
    let icmp = Icmpv6Packet::new_checked(&ip.payload()[8..]).unwrap();
    let repr = Icmpv6Repr::parse(
        &ip_repr.src_addr,
        &ip_repr.dst_addr,
        &icmp,
        &ChecksumCapabilities::default(),
    )
    .expect("checksum and fields valid");
    let Icmpv6Repr::Mld(MldRepr::Report {
        nr_mcast_addr_rcrds: 1,
        data,
    }) = repr
    else {
        panic!("{repr:?}")
    };
    let rec = MldAddressRecordRepr::parse(&MldAddressRecord::new_checked(data).unwrap()).unwrap();
    assert_eq!(rec.record_type, MldRecordType::ChangeToExclude, "join");
    assert_eq!(rec.num_srcs, 0);
    assert_eq!(rec.mcast_addr, group);
}

/// Parses an emitted frame as the DAD NS for `target` and checks it.
fn check_dad_ns(frame: &[u8], target: Ipv6Address) {
    let eth = EthernetFrame::new_checked(frame).unwrap();
    let o = target.octets();
    assert_eq!(
        eth.dst_addr(),
        EthernetAddress([0x33, 0x33, 0xff, o[13], o[14], o[15]])
    );
    assert_eq!(eth.src_addr(), EthernetAddress(MAC));
    let ip = Ipv6Packet::new_checked(eth.payload()).unwrap();
    let ip_repr = Ipv6Repr::parse(&ip).unwrap();
    assert_eq!(ip_repr.src_addr, Ipv6Address::UNSPECIFIED, "DAD NS from ::");
    assert_eq!(ip_repr.dst_addr, solicited_node(target));
    assert_eq!(ip_repr.hop_limit, 255);
    assert_eq!(ip_repr.next_header, IpProtocol::Icmpv6);
    assert_eq!(ip_repr.payload_len, 24, "no options at all");
    let icmp = Icmpv6Packet::new_checked(ip.payload()).unwrap();
    let repr = Icmpv6Repr::parse(
        &ip_repr.src_addr,
        &ip_repr.dst_addr,
        &icmp,
        &ChecksumCapabilities::default(),
    )
    .expect("checksum and fields valid");
    assert_eq!(
        repr,
        Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit {
            target_addr: target,
            lladdr: None
        })
    );
}

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
fn idgen_retries_exhaustion_fails() {
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
            attempts: IDGEN_RETRIES + 1
        }
    );
    assert_eq!(c.state(), Ipv6ClaimState::Failed);
    assert_eq!(c.poll_at(), None);
    assert_eq!(c.usable(), None);
    assert_eq!(
        c.poll_transmit(now + Duration::from_secs(60), &mut [0u8; 128]),
        None
    );
    let audit = events[4].audit().unwrap();
    assert_eq!(audit.id().0, 1103);
    assert!(std::format!("{audit}").contains("bmclink link reset"));
}

#[test]
fn eui64_duplicate_fails_at_once() {
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
        Some(Ipv6ClaimEvent::Failed { addr, attempts: 1 })
    );
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
fn neighbor_advert_for_the_bound_address_from_another_mac_is_lost() {
    let mut c = claim(7, false);
    let mut now = Instant::from_secs(0);
    c.start(now);
    let until = now + Duration::from_secs(5);
    drive(&mut c, &mut now, until);
    assert_eq!(c.bound(), Some(stable(0)));
    // NS for the bound address: smoltcp answers it, the claim stays quiet.
    assert_eq!(
        c.handle_frame(now, &dad_ns(OTHER, stable(0))),
        Verdict::Pass
    );
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
fn bad_ndp_and_truncated_ipv6_are_dropped_counted_and_never_duplicates() {
    let mut c = claim(9, false);
    let mut now = Instant::from_secs(0);
    c.start(now);
    to_tentative(&mut c, &mut now);
    let t = stable(0);
    let good = na(OTHER, t);
    let mut bad: Vec<Vec<u8>> = Vec::new();
    // Truncated IPv6: header cut, and payload length beyond the frame.
    bad.push(good[..14 + 30].to_vec());
    bad.push(good[..good.len() - 4].to_vec());
    // Hop limit not 255.
    let mut hop = good.clone();
    hop[14 + 7] = 64;
    bad.push(hop);
    // Bad checksum.
    let mut sum = good.clone();
    sum[54 + 2] ^= 0xff;
    bad.push(sum);
    // Option length 0, and a link-layer option of 16 bytes (checksums fixed).
    for len in [0u8, 2] {
        let mut f = good.clone();
        f[54 + 24 + 1] = len;
        fix_checksum(&mut f);
        bad.push(f);
    }
    // A DAD NS (from ::) carrying a source link-layer address option.
    let mut with_sllao = ndp_frame(
        OTHER,
        Ipv6Address::UNSPECIFIED,
        solicited_node(t),
        NdiscRepr::NeighborSolicit {
            target_addr: t,
            lladdr: Some(RawHardwareAddress::from_bytes(OTHER.as_bytes())),
        },
        255,
    );
    fix_checksum(&mut with_sllao);
    bad.push(with_sllao);
    // ICMPv6 code not 0.
    let mut code = good.clone();
    code[54 + 1] = 1;
    fix_checksum(&mut code);
    bad.push(code);
    for f in &bad {
        assert_eq!(c.handle_frame(now, f), Verdict::Malformed, "{f:02x?}");
    }
    assert_eq!(c.counters().malformed, bad.len() as u32);
    assert_eq!(c.poll_event(), None);
    assert_eq!(c.tentative(), Some(t));
    // The good one is a duplicate.
    c.handle_frame(now, &good);
    assert!(matches!(
        c.poll_event(),
        Some(Ipv6ClaimEvent::Duplicate { .. })
    ));
}

/// Recomputes the ICMPv6 checksum of a frame whose IPv6 header is intact
/// (mutated frames whose header no longer parses are left alone).
fn fix_checksum(frame: &mut [u8]) {
    let Ok(ip) = Ipv6Packet::new_checked(&frame[14..]) else {
        return;
    };
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    let end = 54 + ip.payload_len() as usize;
    if end < 58 {
        return;
    }
    Icmpv6Packet::new_unchecked(&mut frame[54..end]).fill_checksum(&src, &dst);
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

#[test]
fn random_garbage_never_panics() {
    let mut rng = ChaCha8Rng::seed_from_u64(0x6eed);
    let mut c = claim(1, true);
    let mut now = Instant::from_secs(0);
    c.start(now);
    let templates = [na(OTHER, stable(0)), dad_ns(OTHER, stable(0))];
    for i in 0..20_000u32 {
        let mut frame = [0u8; 128];
        let t = &templates[(i % 2) as usize];
        let len = (rng.next_u32() % 129) as usize;
        if i % 3 == 0 {
            rng.fill_bytes(&mut frame);
            frame[12] = 0x86;
            frame[13] = 0xdd;
            frame[14] = 0x60;
            frame[14 + 6] = 58; // ICMPv6
            frame[54] = 135 + (rng.next_u32() % 2) as u8;
        } else {
            frame[..t.len()].copy_from_slice(t);
            for _ in 0..(1 + rng.next_u32() % 3) {
                let at = (rng.next_u32() as usize) % t.len();
                frame[at] = rng.next_u32() as u8;
            }
            if i % 2 == 0 {
                fix_checksum(&mut frame[..t.len()]);
            }
        }
        now += Duration::from_millis(u64::from(rng.next_u32() % 1500));
        let _ = c.handle_frame(now, &frame[..len]);
        let mut out = [0u8; 128];
        let cap = (rng.next_u32() % 129) as usize;
        let _ = c.poll_transmit(now, &mut out[..cap]);
        let _ = c.poll_event();
        if c.state() == Ipv6ClaimState::Failed || i % 4000 == 0 {
            c.start(now);
        }
    }
    assert!(c.counters().malformed > 0);
}
