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

mod bound;
mod dad;
mod robustness;

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
