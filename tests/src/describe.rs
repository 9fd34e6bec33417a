//! One-line descriptions of frames for the timeline (the simulator's tap).
//! Only what tells the story: ARP, NDP, MLD, TCP handshakes and teardowns.

use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetFrame, EthernetProtocol, Icmpv6Packet, Icmpv6Repr,
    IpProtocol, Ipv4Address, Ipv4Packet, Ipv6Packet, NdiscRepr, TcpPacket,
};

/// Describes a frame, or `None` for frames not worth a line (TCP data, ACKs).
pub fn describe(frame: &[u8]) -> Option<String> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    match eth.ethertype() {
        EthernetProtocol::Arp => describe_arp(eth.payload()),
        EthernetProtocol::Ipv4 => {
            let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
            if ip.next_header() != IpProtocol::Tcp {
                return None;
            }
            describe_tcp(
                &ip.src_addr().to_string(),
                &ip.dst_addr().to_string(),
                ip.payload(),
            )
        }
        EthernetProtocol::Ipv6 => {
            let ip = Ipv6Packet::new_checked(eth.payload()).ok()?;
            match ip.next_header() {
                IpProtocol::Tcp => describe_tcp(
                    &format!("[{}]", ip.src_addr()),
                    &format!("[{}]", ip.dst_addr()),
                    ip.payload(),
                ),
                IpProtocol::Icmpv6 => {
                    let icmp = Icmpv6Packet::new_checked(ip.payload()).ok()?;
                    let src = ip.src_addr();
                    let dst = ip.dst_addr();
                    let repr = Icmpv6Repr::parse(
                        &src,
                        &dst,
                        &icmp,
                        &smoltcp::phy::ChecksumCapabilities::ignored(),
                    )
                    .ok()?;
                    Some(match repr {
                        Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit { target_addr, .. }) => {
                            if src.is_unspecified() {
                                format!("NDP DAD NS for {target_addr} (from ::)")
                            } else {
                                format!("NDP NS who-has {target_addr} from {src}")
                            }
                        }
                        Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert { target_addr, .. }) => {
                            format!("NDP NA {target_addr} from {src}")
                        }
                        Icmpv6Repr::Mld(_) => format!("MLD report from {src} to {dst}"),
                        Icmpv6Repr::EchoRequest { .. } => format!("ICMPv6 echo {src} -> {dst}"),
                        Icmpv6Repr::EchoReply { .. } => format!("ICMPv6 echo reply {src} -> {dst}"),
                        _ => return None,
                    })
                }
                _ => None,
            }
        }
        _ => None,
    }
}

fn describe_arp(payload: &[u8]) -> Option<String> {
    let packet = ArpPacket::new_checked(payload).ok()?;
    let ArpRepr::EthernetIpv4 {
        operation,
        source_hardware_addr,
        source_protocol_addr,
        target_protocol_addr,
        ..
    } = ArpRepr::parse(&packet).ok()?
    else {
        return None;
    };
    Some(match operation {
        ArpOperation::Request if source_protocol_addr == Ipv4Address::UNSPECIFIED => {
            format!("ARP probe for {target_protocol_addr} from {source_hardware_addr}")
        }
        ArpOperation::Request if source_protocol_addr == target_protocol_addr => {
            format!("ARP announce {source_protocol_addr} is-at {source_hardware_addr}")
        }
        ArpOperation::Request => {
            format!("ARP who-has {target_protocol_addr} tell {source_protocol_addr}")
        }
        ArpOperation::Reply => {
            format!("ARP reply {source_protocol_addr} is-at {source_hardware_addr}")
        }
        _ => return None,
    })
}

fn describe_tcp(src: &str, dst: &str, payload: &[u8]) -> Option<String> {
    let tcp = TcpPacket::new_checked(payload).ok()?;
    let flags = match (tcp.syn(), tcp.ack(), tcp.fin(), tcp.rst()) {
        (true, false, _, _) => "SYN",
        (true, true, _, _) => "SYN-ACK",
        (_, _, _, true) => "RST",
        (_, _, true, _) => "FIN",
        _ => return None,
    };
    Some(format!(
        "TCP {src}:{} -> {dst}:{} {flags}",
        tcp.src_port(),
        tcp.dst_port()
    ))
}
