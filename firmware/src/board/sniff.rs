//! A one-line log of the frames that tell the story: ARP (RFC 5227 probes
//! and announcements), IPv6 neighbour discovery (RFC 4862 DAD), echo, TCP
//! connection set-up and tear-down, and the first bytes of TLS handshake
//! records. Data segments are not logged (they are TLS ciphertext).

use defmt::info;
use smoltcp::wire::{
    ArpOperation, ArpPacket, EthernetFrame, EthernetProtocol, Icmpv6Message, Icmpv6Packet,
    IpProtocol, Ipv4Address, Ipv4Packet, Ipv6Packet, TcpPacket,
};

/// Which way a frame went.
#[derive(Clone, Copy, PartialEq, Eq, defmt::Format)]
pub enum Dir {
    /// Received from the wire.
    Rx,
    /// Sent by the agent.
    Tx,
}

/// Logs `frame` if it is one of the story's frames; feeds the bench.
pub fn frame(dir: Dir, frame: &[u8]) {
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        return;
    };
    let arrow = match dir {
        Dir::Rx => "<-",
        Dir::Tx => "->",
    };
    match eth.ethertype() {
        EthernetProtocol::Arp => arp(arrow, eth.payload()),
        EthernetProtocol::Ipv4 => {
            if let Ok(ip) = Ipv4Packet::new_checked(eth.payload()) {
                if ip.next_header() == IpProtocol::Tcp {
                    tcp(dir, arrow, ip.payload());
                }
            }
        }
        EthernetProtocol::Ipv6 => {
            if let Ok(ip) = Ipv6Packet::new_checked(eth.payload()) {
                match ip.next_header() {
                    IpProtocol::Icmpv6 => icmpv6(arrow, ip.payload()),
                    IpProtocol::Tcp => tcp(dir, arrow, ip.payload()),
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

fn arp(arrow: &str, bytes: &[u8]) {
    let Ok(p) = ArpPacket::new_checked(bytes) else {
        return;
    };
    let sender = p.source_protocol_addr();
    let target = p.target_protocol_addr();
    let (Ok(s), Ok(t)) = (<[u8; 4]>::try_from(sender), <[u8; 4]>::try_from(target)) else {
        return;
    };
    let (s, t) = (Ipv4Address::from(s), Ipv4Address::from(t));
    match p.operation() {
        ArpOperation::Request if s.is_unspecified() => {
            info!("{=str} ARP probe for {}", arrow, t)
        }
        ArpOperation::Request if s == t => info!("{=str} ARP announcement of {}", arrow, t),
        ArpOperation::Request => info!("{=str} ARP who-has {} tell {}", arrow, t, s),
        ArpOperation::Reply => info!(
            "{=str} ARP {} is-at {=[u8]:02x}",
            arrow,
            s,
            p.source_hardware_addr()
        ),
        _ => {}
    }
}

fn icmpv6(arrow: &str, bytes: &[u8]) {
    let Ok(p) = Icmpv6Packet::new_checked(bytes) else {
        return;
    };
    match p.msg_type() {
        Icmpv6Message::NeighborSolicit => info!("{=str} NDP neighbour solicitation", arrow),
        Icmpv6Message::NeighborAdvert => info!("{=str} NDP neighbour advertisement", arrow),
        Icmpv6Message::EchoRequest => info!("{=str} ICMPv6 echo request", arrow),
        Icmpv6Message::EchoReply => info!("{=str} ICMPv6 echo reply", arrow),
        _ => {}
    }
}

fn tcp(dir: Dir, arrow: &str, bytes: &[u8]) {
    let Ok(t) = TcpPacket::new_checked(bytes) else {
        return;
    };
    let (src, dst) = (t.src_port(), t.dst_port());
    if t.syn() || t.fin() || t.rst() {
        info!(
            "{=str} TCP {=u16} > {=u16}{=str}{=str}{=str}{=str}",
            arrow,
            src,
            dst,
            if t.syn() { " SYN" } else { "" },
            if t.ack() { " ACK" } else { "" },
            if t.fin() { " FIN" } else { "" },
            if t.rst() { " RST" } else { "" },
        );
    }
    let payload = t.payload();
    // A TLS handshake record in the clear: ClientHello (1), ServerHello (2).
    if let [0x16, 0x03, _, _, _, kind, ..] = payload {
        let name = match kind {
            1 => "ClientHello",
            2 => "ServerHello",
            _ => "handshake",
        };
        info!(
            "{=str} TLS {=str} ({=usize} bytes)",
            arrow,
            name,
            payload.len()
        );
    }
    crate::bench::on_tcp(dir, t.syn() && !t.ack(), src, dst, payload.len());
}
