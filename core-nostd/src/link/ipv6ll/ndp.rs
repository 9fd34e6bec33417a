//! The frames an IPv6 claim sends (the MLDv2 report that joins the
//! solicited-node group, the DAD neighbour solicitation) and the view it
//! takes of the NDP frames it receives, built on `smoltcp::wire`.

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, Icmpv6Message, Icmpv6Packet,
    Icmpv6Repr, IpProtocol, Ipv6Address, Ipv6ExtHeader, Ipv6ExtHeaderRepr, Ipv6HopByHopHeader,
    Ipv6HopByHopRepr, Ipv6Packet, Ipv6Repr, MldAddressRecordRepr, MldRecordType, MldRepr,
    NdiscNeighborFlags, NdiscRepr, RawHardwareAddress, ETHERNET_HEADER_LEN, IPV6_HEADER_LEN,
};

use super::iid::{multicast_mac, solicited_node};

/// ff02::16, where every MLDv2 report goes (RFC 3810 §5.2.14).
const ALL_MLDV2_ROUTERS: Ipv6Address = Ipv6Address::new(0xff02, 0, 0, 0, 0, 0, 0, 0x16);
/// Hop-by-Hop header with Router Alert (MLD) and PadN: 2 + 4 + 2 bytes.
const HBH_LEN: usize = 8;
/// MLDv2 report header (8) + one address record with no sources (20).
const MLD_LEN: usize = 8 + 20;
/// Length of the MLDv2 report frame.
pub const MLD_FRAME_LEN: usize = ETHERNET_HEADER_LEN + IPV6_HEADER_LEN + HBH_LEN + MLD_LEN;
/// NS: type, code, checksum, reserved, target (no options).
const NS_LEN: usize = 24;
/// Length of the DAD neighbour solicitation frame.
pub const NS_FRAME_LEN: usize = ETHERNET_HEADER_LEN + IPV6_HEADER_LEN + NS_LEN;
/// NA: the fixed part and a target link-layer address option.
const NA_LEN: usize = 24 + 8;
/// Length of the neighbour advertisement that answers another node's DAD.
pub const NA_FRAME_LEN: usize = ETHERNET_HEADER_LEN + IPV6_HEADER_LEN + NA_LEN;
/// ff02::1, where the answer to a DAD solicitation goes (RFC 4861 §7.2.4).
const ALL_NODES: Ipv6Address = Ipv6Address::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// The hop limit every NDP message carries and must carry (RFC 4861 §7.1).
pub const NDP_HOP_LIMIT: u8 = 255;

fn ethernet(buf: &mut [u8], mac: EthernetAddress, dst: EthernetAddress) {
    EthernetRepr {
        src_addr: mac,
        dst_addr: dst,
        ethertype: EthernetProtocol::Ipv6,
    }
    .emit(&mut EthernetFrame::new_unchecked(buf));
}

/// Writes an MLDv2 report from `::` to ff02::16 (hop limit 1, Router Alert)
/// with one CHANGE_TO_EXCLUDE record for `group`: "join `group`" (RFC 3810
/// §5.2, RFC 4862 §5.4.2: before DAD, so MLD-snooping switches forward the
/// NS of a simultaneous DAD to us). `None` when `buf` is too short.
pub fn emit_mld_join(mac: EthernetAddress, group: Ipv6Address, buf: &mut [u8]) -> Option<usize> {
    let buf = buf.get_mut(..MLD_FRAME_LEN)?;
    ethernet(buf, mac, multicast_mac(ALL_MLDV2_ROUTERS));
    let ip = Ipv6Repr {
        src_addr: Ipv6Address::UNSPECIFIED,
        dst_addr: ALL_MLDV2_ROUTERS,
        next_header: IpProtocol::HopByHop,
        payload_len: HBH_LEN + MLD_LEN,
        hop_limit: 1,
    };
    let rest = buf.get_mut(ETHERNET_HEADER_LEN..)?;
    ip.emit(&mut Ipv6Packet::new_unchecked(&mut *rest));
    let payload = rest.get_mut(IPV6_HEADER_LEN..)?;
    let (hbh, icmp) = payload.split_at_mut_checked(HBH_LEN)?;
    let ext = Ipv6ExtHeaderRepr {
        next_header: IpProtocol::Icmpv6,
        length: 0,
        data: &[],
    };
    let (ext_buf, opts) = hbh.split_at_mut_checked(ext.header_len())?;
    ext.emit(&mut Ipv6ExtHeader::new_unchecked(ext_buf));
    let mut hbh_repr = Ipv6HopByHopRepr::mldv2_router_alert();
    hbh_repr.push_padn_option(0);
    hbh_repr.emit(&mut Ipv6HopByHopHeader::new_unchecked(opts));
    let records = [MldAddressRecordRepr::new(
        MldRecordType::ChangeToExclude,
        group,
    )];
    Icmpv6Repr::Mld(MldRepr::ReportRecordReprs(&records)).emit(
        &ip.src_addr,
        &ip.dst_addr,
        &mut Icmpv6Packet::new_unchecked(icmp),
        &ChecksumCapabilities::default(),
    );
    Some(MLD_FRAME_LEN)
}

/// Writes the DAD neighbour solicitation for `target` (RFC 4862 §5.4.2):
/// from `::` to the target's solicited-node group (Ethernet 33:33:ff:..),
/// hop limit 255, no source link-layer address option. `None` when `buf` is
/// too short.
pub fn emit_dad_ns(mac: EthernetAddress, target: Ipv6Address, buf: &mut [u8]) -> Option<usize> {
    let buf = buf.get_mut(..NS_FRAME_LEN)?;
    let group = solicited_node(target);
    ethernet(buf, mac, multicast_mac(group));
    let ip = Ipv6Repr {
        src_addr: Ipv6Address::UNSPECIFIED,
        dst_addr: group,
        next_header: IpProtocol::Icmpv6,
        payload_len: NS_LEN,
        hop_limit: NDP_HOP_LIMIT,
    };
    let rest = buf.get_mut(ETHERNET_HEADER_LEN..)?;
    ip.emit(&mut Ipv6Packet::new_unchecked(&mut *rest));
    let icmp = rest.get_mut(IPV6_HEADER_LEN..)?;
    Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit {
        target_addr: target,
        lladdr: None,
    })
    .emit(
        &ip.src_addr,
        &ip.dst_addr,
        &mut Icmpv6Packet::new_unchecked(icmp),
        &ChecksumCapabilities::default(),
    );
    Some(NS_FRAME_LEN)
}

/// Writes the neighbour advertisement that answers another node's DAD
/// solicitation for our bound `addr` (RFC 4861 §7.2.4: the solicitation came
/// from `::`, so the answer goes to all-nodes, Solicited clear, Override
/// set, with our MAC as target link-layer address). smoltcp would answer
/// such a solicitation to `::`, which reaches no one. The same frame is the
/// unsolicited advertisement BMC discovery sends first (RFC 4861 §7.2.6).
/// `None` when `buf` is too short.
pub fn emit_dad_answer(mac: EthernetAddress, addr: Ipv6Address, buf: &mut [u8]) -> Option<usize> {
    let buf = buf.get_mut(..NA_FRAME_LEN)?;
    ethernet(buf, mac, multicast_mac(ALL_NODES));
    let ip = Ipv6Repr {
        src_addr: addr,
        dst_addr: ALL_NODES,
        next_header: IpProtocol::Icmpv6,
        payload_len: NA_LEN,
        hop_limit: NDP_HOP_LIMIT,
    };
    let rest = buf.get_mut(ETHERNET_HEADER_LEN..)?;
    ip.emit(&mut Ipv6Packet::new_unchecked(&mut *rest));
    let icmp = rest.get_mut(IPV6_HEADER_LEN..)?;
    Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert {
        flags: NdiscNeighborFlags::OVERRIDE,
        target_addr: addr,
        lladdr: Some(RawHardwareAddress::from_bytes(mac.as_bytes())),
    })
    .emit(
        &ip.src_addr,
        &ip.dst_addr,
        &mut Icmpv6Packet::new_unchecked(icmp),
        &ChecksumCapabilities::default(),
    );
    Some(NA_FRAME_LEN)
}

/// A received neighbour solicitation or advertisement, as DAD sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Neighbor {
    /// A neighbour solicitation.
    Solicit {
        /// Ethernet source.
        from: EthernetAddress,
        /// IPv6 source (`::` for DAD).
        src: Ipv6Address,
        /// The address asked about.
        target: Ipv6Address,
    },
    /// A neighbour advertisement.
    Advert {
        /// Ethernet source.
        from: EthernetAddress,
        /// The address advertised.
        target: Ipv6Address,
        /// The target link-layer address option, if present.
        target_mac: Option<EthernetAddress>,
    },
}

impl Neighbor {
    /// The Ethernet source of the frame.
    pub fn source_mac(&self) -> EthernetAddress {
        match *self {
            Neighbor::Solicit { from, .. } | Neighbor::Advert { from, .. } => from,
        }
    }

    /// The target address of the message.
    pub fn target(&self) -> Ipv6Address {
        match *self {
            Neighbor::Solicit { target, .. } | Neighbor::Advert { target, .. } => target,
        }
    }
}

/// What a received frame is, to an IPv6 claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inspected {
    /// Not IPv6 NDP (another EtherType, another next header, other ICMPv6,
    /// or a valid RS/RA/Redirect): not the claim's business.
    NotNdp,
    /// IPv6 but truncated, or NDP that fails RFC 4861 §7.1 validation
    /// (hop limit, code, length, checksum, options).
    Malformed,
    /// A valid neighbour solicitation or advertisement.
    Neighbor(Neighbor),
}

/// Looks at any received Ethernet frame. Never panics on any input.
///
/// Extension headers are not walked: NS/NA behind one are treated as not
/// NDP (nothing on a USBNIC sends them that way).
pub fn inspect(frame: &[u8]) -> Inspected {
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        return Inspected::NotNdp;
    };
    if eth.ethertype() != EthernetProtocol::Ipv6 {
        return Inspected::NotNdp;
    }
    let Ok(ip) = Ipv6Packet::new_checked(eth.payload()) else {
        return Inspected::Malformed;
    };
    let Ok(ip_repr) = Ipv6Repr::parse(&ip) else {
        return Inspected::Malformed;
    };
    if ip_repr.next_header != IpProtocol::Icmpv6 {
        return Inspected::NotNdp;
    }
    let payload = ip.payload();
    let Some(&msg_type) = payload.first() else {
        return Inspected::Malformed;
    };
    let msg = Icmpv6Message::from(msg_type);
    if !msg.is_ndisc() {
        return Inspected::NotNdp;
    }
    if ip_repr.hop_limit != NDP_HOP_LIMIT || !options_are_valid(msg, payload) {
        return Inspected::Malformed;
    }
    let Ok(icmp) = Icmpv6Packet::new_checked(payload) else {
        return Inspected::Malformed;
    };
    let (src, dst) = (ip_repr.src_addr, ip_repr.dst_addr);
    let Ok(repr) = Icmpv6Repr::parse(&src, &dst, &icmp, &ChecksumCapabilities::default()) else {
        return Inspected::Malformed;
    };
    let from = eth.src_addr();
    match repr {
        Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit {
            target_addr,
            lladdr,
        }) => {
            // RFC 4861 §7.1.1: from `::`, only to a solicited-node group and
            // without a source link-layer address option.
            if target_addr.is_multicast()
                || (src.is_unspecified() && (lladdr.is_some() || !is_solicited_node_group(dst)))
            {
                return Inspected::Malformed;
            }
            Inspected::Neighbor(Neighbor::Solicit {
                from,
                src,
                target: target_addr,
            })
        }
        Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert {
            flags,
            target_addr,
            lladdr,
        }) => {
            // RFC 4861 §7.1.2: never a multicast target; to a multicast
            // destination the Solicited flag is clear.
            if target_addr.is_multicast()
                || (dst.is_multicast() && flags.contains(NdiscNeighborFlags::SOLICITED))
            {
                return Inspected::Malformed;
            }
            let target_mac = lladdr
                .filter(|l| l.len() == 6)
                .map(|l| EthernetAddress::from_bytes(l.as_bytes()));
            Inspected::Neighbor(Neighbor::Advert {
                from,
                target: target_addr,
                target_mac,
            })
        }
        Icmpv6Repr::Ndisc(_) => Inspected::NotNdp,
        _ => Inspected::Malformed,
    }
}

/// Whether `addr` is a solicited-node group, ff02::1:ff00:0/104.
fn is_solicited_node_group(addr: Ipv6Address) -> bool {
    const PREFIX: [u8; 13] = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff];
    addr.octets()[..13] == PREFIX
}

/// RFC 4861 §7.1: code 0, the fixed part present, and every option at least
/// 8 bytes long and inside the message; link-layer address options on
/// Ethernet are exactly 8 bytes (RFC 4861 §4.6.1 / RFC 2464 §8).
fn options_are_valid(msg: Icmpv6Message, icmp: &[u8]) -> bool {
    let fixed = match msg {
        Icmpv6Message::RouterSolicit => 8,
        Icmpv6Message::RouterAdvert => 16,
        Icmpv6Message::NeighborSolicit | Icmpv6Message::NeighborAdvert => 24,
        _ => 40, // Redirect
    };
    if icmp.len() < fixed || icmp.get(1) != Some(&0) {
        return false;
    }
    let mut rest = icmp.get(fixed..).unwrap_or(&[]);
    while !rest.is_empty() {
        let [kind, len8, ..] = *rest else {
            return false;
        };
        let len = usize::from(len8) * 8;
        if len == 0 || len > rest.len() || (matches!(kind, 1 | 2) && len != 8) {
            return false;
        }
        rest = rest.get(len..).unwrap_or(&[]);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);

    #[test]
    fn emitted_frames_are_inspected_as_what_they_are() {
        let addr = Ipv6Address::new(0xfe80, 0, 0, 0, 0x1234, 0x5678, 0x9abc, 0xdef0);
        let mut buf = [0u8; 128];
        let n = emit_dad_ns(MAC, addr, &mut buf).unwrap();
        assert_eq!(
            inspect(&buf[..n]),
            Inspected::Neighbor(Neighbor::Solicit {
                from: MAC,
                src: Ipv6Address::UNSPECIFIED,
                target: addr
            })
        );
        let n = emit_dad_answer(MAC, addr, &mut buf).unwrap();
        assert_eq!(
            inspect(&buf[..n]),
            Inspected::Neighbor(Neighbor::Advert {
                from: MAC,
                target: addr,
                target_mac: Some(MAC)
            })
        );
        // An MLD report is ICMPv6 behind a Hop-by-Hop header: not NDP.
        let n = emit_mld_join(MAC, solicited_node(addr), &mut buf).unwrap();
        assert_eq!(inspect(&buf[..n]), Inspected::NotNdp);
    }

    #[test]
    fn emit_refuses_short_buffers() {
        let addr = Ipv6Address::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
        let mut buf = [0u8; 128];
        assert_eq!(
            emit_dad_answer(MAC, addr, &mut buf[..NA_FRAME_LEN - 1]),
            None
        );
        assert_eq!(
            emit_mld_join(MAC, addr, &mut buf[..MLD_FRAME_LEN - 1]),
            None
        );
        assert_eq!(emit_dad_ns(MAC, addr, &mut buf[..NS_FRAME_LEN - 1]), None);
    }

    #[test]
    fn solicited_node_groups_are_recognised() {
        let addr = Ipv6Address::new(0xfe80, 0, 0, 0, 0, 0, 0x12, 0x3456);
        assert!(is_solicited_node_group(solicited_node(addr)));
        assert!(!is_solicited_node_group(ALL_NODES));
        assert!(!is_solicited_node_group(addr));
    }
}
