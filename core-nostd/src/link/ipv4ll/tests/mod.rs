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

mod bound;
mod probing;
mod recorded;
mod robustness;

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
