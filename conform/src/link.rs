//! The link checks, on raw Ethernet frames through any [`Frames`] backend
//! (the shim's TAP or AF_PACKET one): the rig plays the host's link layer
//! with the core's own ARP and NDP frame code
//! ([`bmclink_core::link::ipv4ll::arp`], [`bmclink_core::link::ipv6ll::ndp`])
//! and watches every frame the BMC sends meanwhile.

use std::time::{Duration, Instant as StdInstant};

use bmclink_core::link::ipv4ll::arp::{self, ArpKind};
use bmclink_core::link::ipv6ll::eui64_iid;
use bmclink_core::link::ipv6ll::ndp::{self, Neighbor};
use bmclink_core::platform::{Clock, Frames};
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, Icmpv6Packet, Icmpv6Repr, IpProtocol, Ipv4Address, Ipv6Address, Ipv6Packet,
    Ipv6Repr, NdiscRepr, RawHardwareAddress, ETHERNET_HEADER_LEN, IPV6_HEADER_LEN,
};

/// The addresses the link checks are about.
#[derive(Debug, Clone, Copy)]
pub struct LinkAddrs {
    /// The BMC's IPv4 address on the USBNIC.
    pub bmc_ipv4: Option<Ipv4Address>,
    /// The BMC's IPv6 link-local address.
    pub bmc_ipv6: Option<Ipv6Address>,
    /// The host's IPv4 address (the rig uses it as its own).
    pub host_ipv4: Ipv4Address,
}

/// The rig's end of the link.
pub struct Link {
    frames: Box<dyn Frames>,
    clock: Box<dyn Clock>,
    mac: EthernetAddress,
    /// The rig's IPv6 link-local address (EUI-64 from its MAC).
    pub host_ipv6: Ipv6Address,
    /// The addresses under test.
    pub addrs: LinkAddrs,
    /// Frames from others claiming a host address, as they were seen.
    pub claims: Vec<String>,
    /// The BMC's MAC, once it answered.
    pub bmc_mac: Option<EthernetAddress>,
}

/// An answer the link checks wait for.
enum Want {
    ArpFrom(Ipv4Address),
    NaFor(Ipv6Address),
}

impl Link {
    /// The link through `frames` (whose MAC the rig uses), timed by `clock`.
    pub fn new(frames: Box<dyn Frames>, clock: Box<dyn Clock>, addrs: LinkAddrs) -> Link {
        let mac = EthernetAddress(frames.mac());
        let iid = eui64_iid(mac.0);
        let mut octets = [0u8; 16];
        octets[0] = 0xfe;
        octets[1] = 0x80;
        octets[8..].copy_from_slice(&iid);
        Link {
            frames,
            clock,
            mac,
            host_ipv6: Ipv6Address::from(octets),
            addrs,
            claims: Vec::new(),
            bmc_mac: None,
        }
    }

    /// Receives for up to `wait`, noting claims on host addresses, until a
    /// frame answers `want`; returns what answered (or `None`).
    fn wait_for(&mut self, wait: Duration, want: Option<&Want>) -> Option<String> {
        let end = StdInstant::now() + wait;
        let mut buf = [0u8; 1600];
        loop {
            while let Some(n) = self.frames.recv(&mut buf) {
                let frame = buf.get(..n).unwrap_or_default();
                if let Some(hit) = self.look(frame, want) {
                    return Some(hit);
                }
            }
            let left = end.saturating_duration_since(StdInstant::now());
            if left.is_zero() {
                return None;
            }
            let deadline = self.clock.now()
                + smoltcp::time::Duration::from_micros(
                    u64::try_from(left.as_micros()).unwrap_or(u64::MAX),
                );
            let _ = self.frames.wait(Some(deadline));
        }
    }

    /// Notes what `frame` says; `Some` when it answers `want`.
    fn look(&mut self, frame: &[u8], want: Option<&Want>) -> Option<String> {
        if let arp::Inspected::Arp(a) = arp::inspect(frame) {
            if a.sender_mac != self.mac && a.sender_ip == self.addrs.host_ipv4 {
                self.claims.push(format!(
                    "ARP {:?} from {} claims the host's {}",
                    a.operation, a.sender_mac, a.sender_ip
                ));
            }
            if let Some(Want::ArpFrom(ip)) = want {
                if a.operation == ArpOperation::Reply
                    && a.sender_ip == *ip
                    && a.sender_mac != self.mac
                {
                    self.bmc_mac = Some(a.sender_mac);
                    return Some(format!("ARP reply: {ip} is at {}", a.sender_mac));
                }
            }
        }
        if let ndp::Inspected::Neighbor(Neighbor::Advert {
            from,
            target,
            target_mac,
        }) = ndp::inspect(frame)
        {
            if from != self.mac && target == self.host_ipv6 {
                self.claims.push(format!(
                    "neighbour advertisement from {from} claims the host's {target}"
                ));
            }
            if let Some(Want::NaFor(ip)) = want {
                if target == *ip && from != self.mac {
                    let dst = EthernetFrame::new_checked(frame)
                        .map(|e| e.dst_addr().to_string())
                        .unwrap_or_default();
                    let mac = target_mac
                        .map(|m| m.to_string())
                        .unwrap_or_else(|| "no option".into());
                    return Some(format!(
                        "neighbour advertisement for {ip} from {from} (target MAC {mac}) to {dst}"
                    ));
                }
            }
        }
        None
    }

    fn send(&mut self, frame: &[u8]) {
        self.frames.send(frame);
    }

    /// An ordinary ARP request from the host for `ip`.
    fn arp_request(&self, ip: Ipv4Address) -> Vec<u8> {
        let mut buf = vec![0u8; ETHERNET_HEADER_LEN + 28];
        let eth = EthernetRepr {
            src_addr: self.mac,
            dst_addr: EthernetAddress::BROADCAST,
            ethertype: EthernetProtocol::Arp,
        };
        let repr = ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Request,
            source_hardware_addr: self.mac,
            source_protocol_addr: self.addrs.host_ipv4,
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: ip,
        };
        let mut frame = EthernetFrame::new_unchecked(&mut buf[..]);
        eth.emit(&mut frame);
        repr.emit(&mut ArpPacket::new_unchecked(frame.payload_mut()));
        buf
    }

    /// An ordinary neighbour solicitation from the host for `ip`, with the
    /// source link-layer address option.
    fn ns(&self, ip: Ipv6Address) -> Vec<u8> {
        let o = ip.octets();
        let group = Ipv6Address::new(
            0xff02,
            0,
            0,
            0,
            0,
            1,
            0xff00 | u16::from(o[13]),
            u16::from_be_bytes([o[14], o[15]]),
        );
        let g = group.octets();
        let dst_mac = EthernetAddress([0x33, 0x33, g[12], g[13], g[14], g[15]]);
        let icmp = Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit {
            target_addr: ip,
            lladdr: Some(RawHardwareAddress::from_bytes(self.mac.as_bytes())),
        });
        let ip_repr = Ipv6Repr {
            src_addr: self.host_ipv6,
            dst_addr: group,
            next_header: IpProtocol::Icmpv6,
            payload_len: icmp.buffer_len(),
            hop_limit: 255,
        };
        let mut buf = vec![0u8; ETHERNET_HEADER_LEN + IPV6_HEADER_LEN + icmp.buffer_len()];
        let mut frame = EthernetFrame::new_unchecked(&mut buf[..]);
        EthernetRepr {
            src_addr: self.mac,
            dst_addr: dst_mac,
            ethertype: EthernetProtocol::Ipv6,
        }
        .emit(&mut frame);
        let mut ipp = Ipv6Packet::new_unchecked(frame.payload_mut());
        ip_repr.emit(&mut ipp);
        icmp.emit(
            &ip_repr.src_addr,
            &ip_repr.dst_addr,
            &mut Icmpv6Packet::new_unchecked(ipp.payload_mut()),
            &ChecksumCapabilities::default(),
        );
        buf
    }

    /// Our own unsolicited advertisement (RFC 4861 §7.2.6), so the BMC can
    /// reach the host's link-local address.
    fn announce_v6(&mut self) {
        let mut buf = [0u8; 128];
        if let Some(n) = ndp::emit_dad_answer(self.mac, self.host_ipv6, &mut buf) {
            self.send(buf.get(..n).unwrap_or_default());
        }
    }

    /// `link-arp`: the BMC answers an ARP request for its address.
    pub fn arp(&mut self, wait: Duration) -> Result<String, String> {
        let ip = self
            .addrs
            .bmc_ipv4
            .ok_or("skip: no BMC IPv4 address (--bmc-ipv4)")?;
        let f = self.arp_request(ip);
        self.send(&f);
        self.wait_for(wait, Some(&Want::ArpFrom(ip)))
            .ok_or_else(|| format!("no ARP reply for {ip} within {wait:?}"))
    }

    /// `link-ndp`: the BMC answers a neighbour solicitation for its address.
    pub fn ndp(&mut self, wait: Duration) -> Result<String, String> {
        let ip = self
            .addrs
            .bmc_ipv6
            .ok_or("skip: no BMC IPv6 address (--bmc-ipv6)")?;
        self.announce_v6();
        let f = self.ns(ip);
        self.send(&f);
        self.wait_for(wait, Some(&Want::NaFor(ip)))
            .ok_or_else(|| format!("no neighbour advertisement for {ip} within {wait:?}"))
    }

    /// `link-acd-dad`: the BMC defends its addresses against an ACD probe
    /// (RFC 5227 §2.1.1, answered as an ARP reply) and a DAD solicitation
    /// from `::` (RFC 4862 §5.4.3, answered to all-nodes).
    pub fn defends(&mut self, wait: Duration) -> Result<String, String> {
        let mut said = Vec::new();
        let mut buf = [0u8; 128];
        if let Some(ip) = self.addrs.bmc_ipv4 {
            let n = arp::emit(ArpKind::Probe(ip), self.mac, &mut buf).unwrap_or(0);
            self.send(&buf[..n]);
            match self.wait_for(wait, Some(&Want::ArpFrom(ip))) {
                Some(s) => said.push(format!("ACD probe for {ip}: {s}")),
                None => return Err(format!("an ACD probe for {ip} got no answer within {wait:?}: the BMC does not defend it")),
            }
        }
        if let Some(ip) = self.addrs.bmc_ipv6 {
            let n = ndp::emit_dad_ns(self.mac, ip, &mut buf).unwrap_or(0);
            self.send(&buf[..n]);
            match self.wait_for(wait, Some(&Want::NaFor(ip))) {
                Some(s) => said.push(format!("DAD probe for {ip}: {s}")),
                None => return Err(format!("a DAD probe for {ip} got no answer within {wait:?}: the BMC does not defend it")),
            }
        }
        if said.is_empty() {
            return Err("skip: no BMC address given (--bmc-ipv4, --bmc-ipv6)".into());
        }
        Ok(said.join("; "))
    }

    /// `link-host-address`: an ACD probe and a DAD probe for the host's own
    /// addresses get no answer from the BMC, and nothing the BMC sent
    /// during the link checks claimed them.
    pub fn host_addresses(&mut self, listen: Duration) -> Result<String, String> {
        let mut buf = [0u8; 128];
        let n = arp::emit(ArpKind::Probe(self.addrs.host_ipv4), self.mac, &mut buf).unwrap_or(0);
        self.send(&buf[..n]);
        let n = ndp::emit_dad_ns(self.mac, self.host_ipv6, &mut buf).unwrap_or(0);
        self.send(&buf[..n]);
        let _ = self.wait_for(listen, None);
        if self.claims.is_empty() {
            Ok(format!(
                "probes for the host's {} and {} unanswered; no frame claimed them",
                self.addrs.host_ipv4, self.host_ipv6
            ))
        } else {
            Err(self.claims.join("; "))
        }
    }
}
