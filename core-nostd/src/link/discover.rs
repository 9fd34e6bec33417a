//! Learning the BMC's IPv6 link-local address: an ICMPv6 echo request to
//! all-nodes (ff02::1) from our link-local address; the first echo reply
//! from another node names the BMC (on the USBNIC, the only other node).
//!
//! The first request follows an unsolicited Neighbor Advertisement of our
//! new address (RFC 4861 §7.2.6, override flag, our MAC): DAD's probes come
//! from `::` and teach the BMC nothing, so without it the BMC must resolve
//! us before it can reply, and a stack that drops the packet waiting on
//! resolution (smoltcp, lwIP) loses the first reply and costs a whole
//! [`REPLY_WAIT`].
//! Sans-I/O like the claims: `start`, `poll_transmit`, `handle_frame`,
//! `poll_at`, `poll_event`.

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, Icmpv6Packet, Icmpv6Repr,
    IpProtocol, Ipv6Address, Ipv6Packet, Ipv6Repr,
};

use super::claim::{Claim, Received, Verdict};
use super::ipv6ll::ndp;
use crate::time::SaturatingAdd;

/// Echo requests sent before giving up.
pub const TRIES: u8 = 3;
/// Time to wait for a reply to each request.
pub const REPLY_WAIT: Duration = Duration::from_secs(1);
/// Echo identifier ("bL").
const IDENT: u16 = 0x624c;
/// Length of the echo request frame we send.
pub const ECHO_FRAME_LEN: usize = 14 + 40 + 8;
/// All-nodes, where both the advertisement and the requests go.
const ALL_NODES: Ipv6Address = Ipv6Address::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// What discovery reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DiscoveryEvent {
    /// A node answered: the BMC's address.
    Learned(Ipv6Address),
    /// Nobody answered [`TRIES`] requests.
    NotFound,
}

/// One discovery run.
#[derive(Debug)]
pub struct Discovery {
    mac: EthernetAddress,
    src: Ipv6Address,
    sent: u8,
    next: Option<Instant>,
    send_now: bool,
    advertised: bool,
    event: Option<DiscoveryEvent>,
}

impl Discovery {
    /// Starts discovery from our link-local address `src`.
    pub fn new(mac: [u8; 6], src: Ipv6Address, now: Instant) -> Self {
        Discovery {
            mac: EthernetAddress(mac),
            src,
            sent: 0,
            next: Some(now),
            send_now: false,
            advertised: false,
            event: None,
        }
    }

    /// When this needs a poll.
    pub fn poll_at(&self) -> Option<Instant> {
        self.next
    }

    /// The outcome, once.
    pub fn poll_event(&mut self) -> Option<DiscoveryEvent> {
        self.event.take()
    }

    fn advance(&mut self, now: Instant) {
        let Some(at) = self.next else { return };
        if now < at {
            return;
        }
        if self.sent >= TRIES {
            self.next = None;
            self.event = Some(DiscoveryEvent::NotFound);
        } else {
            self.send_now = true;
            self.sent = self.sent.saturating_add(1);
            self.next = Some(now.saturating_add(REPLY_WAIT));
        }
    }

    /// The frame to send, if one is due: the advertisement once, before
    /// the first echo request, then each echo request.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        self.advance(now);
        if !self.send_now {
            return None;
        }
        if !self.advertised {
            // The same frame DAD's defence sends: all-nodes, override set.
            let len = ndp::emit_dad_answer(self.mac, self.src, buf)?;
            self.advertised = true;
            return Some(len);
        }
        let echo = Icmpv6Repr::EchoRequest {
            ident: IDENT,
            seq_no: u16::from(self.sent),
            data: &[],
        };
        let len = self.emit(&echo, buf)?;
        self.send_now = false;
        Some(len)
    }

    /// Emits the echo request `icmp` from us to all-nodes; `None` if `buf` is
    /// too short.
    fn emit(&self, icmp: &Icmpv6Repr<'_>, buf: &mut [u8]) -> Option<usize> {
        let ip = Ipv6Repr {
            src_addr: self.src,
            dst_addr: ALL_NODES,
            next_header: IpProtocol::Icmpv6,
            payload_len: icmp.buffer_len(),
            hop_limit: 255,
        };
        let eth = EthernetRepr {
            src_addr: self.mac,
            dst_addr: EthernetAddress([0x33, 0x33, 0, 0, 0, 1]),
            ethertype: EthernetProtocol::Ipv6,
        };
        let len = eth
            .buffer_len()
            .checked_add(ip.buffer_len())?
            .checked_add(icmp.buffer_len())?;
        let buf = buf.get_mut(..len)?;
        let mut frame = EthernetFrame::new_unchecked(buf);
        eth.emit(&mut frame);
        let mut packet = Ipv6Packet::new_unchecked(frame.payload_mut());
        ip.emit(&mut packet);
        let mut icmp_packet = Icmpv6Packet::new_unchecked(packet.payload_mut());
        icmp.emit(
            &self.src,
            &ALL_NODES,
            &mut icmp_packet,
            &ChecksumCapabilities::default(),
        );
        Some(len)
    }

    /// Looks for an echo reply to us; replies are withheld from smoltcp.
    pub fn handle_frame(&mut self, now: Instant, frame: &[u8]) -> Verdict {
        self.advance(now);
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            return Verdict::Pass;
        };
        if eth.ethertype() != EthernetProtocol::Ipv6 || eth.src_addr() == self.mac {
            return Verdict::Pass;
        }
        let Ok(ip) = Ipv6Packet::new_checked(eth.payload()) else {
            return Verdict::Pass;
        };
        if ip.next_header() != IpProtocol::Icmpv6 || ip.dst_addr() != self.src {
            return Verdict::Pass;
        }
        let Ok(icmp) = Icmpv6Packet::new_checked(ip.payload()) else {
            return Verdict::Pass;
        };
        let src = ip.src_addr();
        match Icmpv6Repr::parse(&src, &self.src, &icmp, &ChecksumCapabilities::default()) {
            Ok(Icmpv6Repr::EchoReply { ident: IDENT, .. }) if src.is_unicast_link_local() => {
                if self.event.is_none() && self.next.is_some() {
                    self.event = Some(DiscoveryEvent::Learned(src));
                    self.next = None;
                }
                Verdict::Withhold
            }
            _ => Verdict::Pass,
        }
    }
}

impl Claim for Discovery {
    /// Echo replies are ICMPv6, not NDP: only IPv6 frames are looked at,
    /// by the discovery's own parse.
    fn handle(&mut self, now: Instant, frame: &Received<'_>) -> Verdict {
        if !frame.is_ipv6() {
            self.advance(now);
            return Verdict::Pass;
        }
        self.handle_frame(now, frame.frame)
    }

    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        Discovery::poll_transmit(self, now, buf)
    }

    fn poll_at(&self) -> Option<Instant> {
        Discovery::poll_at(self)
    }

    /// The discovery's timer fires in `poll_transmit` and `handle`.
    fn handle_timeout(&mut self, _now: Instant) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::wire::{NdiscNeighborFlags, NdiscRepr, RawHardwareAddress};

    const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];

    fn us() -> Ipv6Address {
        Ipv6Address::new(0xfe80, 0, 0, 0, 0, 0, 0, 1)
    }

    fn icmp(frame: &[u8]) -> Icmpv6Repr<'_> {
        let eth = EthernetFrame::new_checked(frame).unwrap();
        let ip = Ipv6Packet::new_checked(eth.payload()).unwrap();
        assert_eq!(ip.dst_addr(), ALL_NODES);
        assert_eq!(ip.hop_limit(), 255);
        let packet = Icmpv6Packet::new_checked(ip.payload()).unwrap();
        Icmpv6Repr::parse(
            &ip.src_addr(),
            &ip.dst_addr(),
            &packet,
            &ChecksumCapabilities::default(),
        )
        .unwrap()
    }

    #[test]
    fn advertises_our_address_once_before_the_first_echo() {
        let t0 = Instant::from_secs(10);
        let mut d = Discovery::new(MAC, us(), t0);
        let mut buf = [0u8; 128];
        let n = d.poll_transmit(t0, &mut buf).unwrap();
        assert_eq!(n, ndp::NA_FRAME_LEN);
        match icmp(&buf[..n]) {
            Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert {
                flags,
                target_addr,
                lladdr,
            }) => {
                assert_eq!(flags, NdiscNeighborFlags::OVERRIDE);
                assert_eq!(target_addr, us());
                assert_eq!(lladdr, Some(RawHardwareAddress::from_bytes(&MAC)));
            }
            other => panic!("expected an advertisement, got {other:?}"),
        }
        let n = d.poll_transmit(t0, &mut buf).unwrap();
        assert_eq!(n, ECHO_FRAME_LEN);
        assert!(matches!(
            icmp(&buf[..n]),
            Icmpv6Repr::EchoRequest { ident: IDENT, .. }
        ));
        assert_eq!(d.poll_transmit(t0, &mut buf), None);
        // The retry is an echo request alone.
        let t1 = t0 + REPLY_WAIT;
        let n = d.poll_transmit(t1, &mut buf).unwrap();
        assert!(matches!(icmp(&buf[..n]), Icmpv6Repr::EchoRequest { .. }));
        assert_eq!(d.poll_transmit(t1, &mut buf), None);
    }

    #[test]
    fn a_short_buffer_sends_nothing_and_keeps_the_frame_due() {
        let t0 = Instant::from_secs(0);
        let mut d = Discovery::new(MAC, us(), t0);
        let mut small = [0u8; ndp::NA_FRAME_LEN - 1];
        assert_eq!(d.poll_transmit(t0, &mut small), None);
        let mut buf = [0u8; 128];
        assert_eq!(d.poll_transmit(t0, &mut buf), Some(ndp::NA_FRAME_LEN));
    }

    #[test]
    fn gives_up_after_tries_without_a_reply() {
        let mut now = Instant::from_secs(0);
        let mut d = Discovery::new(MAC, us(), now);
        let mut buf = [0u8; 128];
        let mut echoes = 0;
        while d.poll_event().is_none() {
            while let Some(n) = d.poll_transmit(now, &mut buf) {
                if n == ECHO_FRAME_LEN {
                    echoes += 1;
                }
            }
            now = d.poll_at().unwrap_or(now);
            d.handle_frame(now, &[]);
        }
        assert_eq!(echoes, u32::from(TRIES));
        assert_eq!(now, Instant::from_secs(0) + REPLY_WAIT * u32::from(TRIES));
    }
}
