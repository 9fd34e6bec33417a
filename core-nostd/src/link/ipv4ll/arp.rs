//! The ARP frames an IPv4 claim sends (probe, announcement) and the view it
//! takes of the ARP frames it receives, built on `smoltcp::wire`.

use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, Ipv4Address, ETHERNET_HEADER_LEN,
};

/// Length of every ARP frame a claim sends: Ethernet header + ARP for
/// Ethernet/IPv4 (42 bytes; the NIC pads it to the 60-byte minimum, as it
/// does for smoltcp's own ARP).
pub const ARP_FRAME_LEN: usize = ETHERNET_HEADER_LEN + 28;

/// Which ARP frame to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ArpKind {
    /// RFC 5227 §2.1.1 probe: request, sender IP 0.0.0.0, target MAC zero,
    /// target IP the candidate.
    Probe(Ipv4Address),
    /// RFC 5227 §2.3 announcement (also used to defend, §2.4): request with
    /// sender IP = target IP = the address, target MAC zero.
    Announce(Ipv4Address),
    /// Answer to someone else's probe for our bound address: a reply unicast
    /// to the prober, sender IP the address, target IP 0.0.0.0 (as Linux
    /// answers). smoltcp drops probes (their sender IP is not unicast), so
    /// without this answer the prober would never see the conflict.
    Reply {
        /// Our bound address.
        addr: Ipv4Address,
        /// The prober's MAC.
        to: EthernetAddress,
    },
}

/// Writes the whole Ethernet frame for `kind` from `mac` into `buf`.
/// Returns its length, or `None` when `buf` is shorter than [`ARP_FRAME_LEN`].
pub fn emit(kind: ArpKind, mac: EthernetAddress, buf: &mut [u8]) -> Option<usize> {
    let buf = buf.get_mut(..ARP_FRAME_LEN)?;
    let zero = EthernetAddress([0; 6]);
    let (operation, dst, sender, target_mac, target) = match kind {
        ArpKind::Probe(addr) => (
            ArpOperation::Request,
            EthernetAddress::BROADCAST,
            Ipv4Address::UNSPECIFIED,
            zero,
            addr,
        ),
        ArpKind::Announce(addr) => (
            ArpOperation::Request,
            EthernetAddress::BROADCAST,
            addr,
            zero,
            addr,
        ),
        ArpKind::Reply { addr, to } => {
            (ArpOperation::Reply, to, addr, to, Ipv4Address::UNSPECIFIED)
        }
    };
    let eth = EthernetRepr {
        src_addr: mac,
        dst_addr: dst,
        ethertype: EthernetProtocol::Arp,
    };
    let arp = ArpRepr::EthernetIpv4 {
        operation,
        source_hardware_addr: mac,
        source_protocol_addr: sender,
        target_hardware_addr: target_mac,
        target_protocol_addr: target,
    };
    let mut frame = EthernetFrame::new_unchecked(&mut *buf);
    eth.emit(&mut frame);
    arp.emit(&mut ArpPacket::new_unchecked(frame.payload_mut()));
    Some(ARP_FRAME_LEN)
}

/// What a received ARP frame says, in the terms RFC 5227 uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arp {
    /// The operation (request or reply).
    pub operation: ArpOperation,
    /// Sender hardware address.
    pub sender_mac: EthernetAddress,
    /// Sender protocol address (0.0.0.0 in a probe).
    pub sender_ip: Ipv4Address,
    /// Target protocol address.
    pub target_ip: Ipv4Address,
}

impl Arp {
    /// RFC 5227 §2.1.1: an ARP probe (sender IP all zeros).
    pub fn is_probe(&self) -> bool {
        self.sender_ip.is_unspecified()
    }
}

/// What a received frame is, to an IPv4 claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inspected {
    /// Not ARP (or too short to have an EtherType): not our business.
    NotArp,
    /// EtherType ARP, but truncated, or not Ethernet/IPv4 with hardware
    /// length 6 and protocol length 4.
    Malformed,
    /// A well-formed Ethernet/IPv4 ARP packet.
    Arp(Arp),
}

/// Looks at any received Ethernet frame. Never panics on any input.
pub fn inspect(frame: &[u8]) -> Inspected {
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        return Inspected::NotArp;
    };
    if eth.ethertype() != EthernetProtocol::Arp {
        return Inspected::NotArp;
    }
    let Ok(packet) = ArpPacket::new_checked(eth.payload()) else {
        return Inspected::Malformed;
    };
    // ArpRepr::parse checks hardware type Ethernet, protocol IPv4, and the
    // lengths 6 and 4; anything else is not an ARP this link can carry.
    match ArpRepr::parse(&packet) {
        Ok(ArpRepr::EthernetIpv4 {
            operation,
            source_hardware_addr,
            source_protocol_addr,
            target_protocol_addr,
            ..
        }) => Inspected::Arp(Arp {
            operation,
            sender_mac: source_hardware_addr,
            sender_ip: source_protocol_addr,
            target_ip: target_protocol_addr,
        }),
        _ => Inspected::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 9]);
    const ADDR: Ipv4Address = Ipv4Address::new(169, 254, 1, 2);

    #[test]
    fn probe_round_trips_through_inspect() {
        let mut buf = [0u8; 64];
        let n = emit(ArpKind::Probe(ADDR), MAC, &mut buf).unwrap();
        assert_eq!(n, 42);
        let Inspected::Arp(arp) = inspect(&buf[..n]) else {
            panic!("not ARP")
        };
        assert!(arp.is_probe());
        assert_eq!(arp.target_ip, ADDR);
        assert_eq!(arp.sender_mac, MAC);
    }

    #[test]
    fn emit_refuses_a_short_buffer() {
        let mut buf = [0u8; 41];
        assert_eq!(emit(ArpKind::Announce(ADDR), MAC, &mut buf), None);
    }

    #[test]
    fn inspect_sorts_bad_arp_from_other_protocols() {
        let mut buf = [0u8; 64];
        let n = emit(ArpKind::Announce(ADDR), MAC, &mut buf).unwrap();
        // Truncated ARP.
        assert_eq!(inspect(&buf[..n - 1]), Inspected::Malformed);
        assert_eq!(inspect(&buf[..20]), Inspected::Malformed);
        // Hardware length 8 (and the lengths no longer fit).
        let mut bad = buf;
        bad[14 + 4] = 8;
        assert_eq!(inspect(&bad[..n]), Inspected::Malformed);
        // Protocol length 16 (IPv6-sized) with room for it: still not ours.
        let mut bad = [0u8; 80];
        bad[..n].copy_from_slice(&buf[..n]);
        bad[14 + 5] = 16;
        assert_eq!(inspect(&bad), Inspected::Malformed);
        // Not ARP at all, and runts.
        let mut ip = buf;
        ip[12] = 0x08;
        ip[13] = 0x00;
        assert_eq!(inspect(&ip[..n]), Inspected::NotArp);
        assert_eq!(inspect(&buf[..10]), Inspected::NotArp);
    }
}
