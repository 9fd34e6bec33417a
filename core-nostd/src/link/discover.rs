//! Learning the BMC's IPv6 link-local address: an ICMPv6 echo request to
//! all-nodes (ff02::1) from our link-local address; the first echo reply
//! from another node names the BMC (on the USBNIC, the only other node).
//! Sans-I/O like the claims: `start`, `poll_transmit`, `handle_frame`,
//! `poll_at`, `poll_event`.

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, Icmpv6Packet, Icmpv6Repr,
    IpProtocol, Ipv6Address, Ipv6Packet, Ipv6Repr,
};

use super::claim::Verdict;
use crate::time::SaturatingAdd;

/// Echo requests sent before giving up.
pub const TRIES: u8 = 3;
/// Time to wait for a reply to each request.
pub const REPLY_WAIT: Duration = Duration::from_secs(1);
/// Echo identifier ("bL").
const IDENT: u16 = 0x624c;
/// Length of the echo request frame we send.
pub const ECHO_FRAME_LEN: usize = 14 + 40 + 8;

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

    /// The echo request to send, if one is due.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        self.advance(now);
        if !self.send_now {
            return None;
        }
        let buf = buf.get_mut(..ECHO_FRAME_LEN)?;
        self.send_now = false;
        let dst = Ipv6Address::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
        let icmp = Icmpv6Repr::EchoRequest {
            ident: IDENT,
            seq_no: u16::from(self.sent),
            data: &[],
        };
        let ip = Ipv6Repr {
            src_addr: self.src,
            dst_addr: dst,
            next_header: IpProtocol::Icmpv6,
            payload_len: icmp.buffer_len(),
            hop_limit: 255,
        };
        let eth = EthernetRepr {
            src_addr: self.mac,
            dst_addr: EthernetAddress([0x33, 0x33, 0, 0, 0, 1]),
            ethertype: EthernetProtocol::Ipv6,
        };
        let mut frame = EthernetFrame::new_unchecked(&mut buf[..]);
        eth.emit(&mut frame);
        let mut packet = Ipv6Packet::new_unchecked(frame.payload_mut());
        ip.emit(&mut packet);
        let mut icmp_packet = Icmpv6Packet::new_unchecked(packet.payload_mut());
        icmp.emit(
            &self.src,
            &dst,
            &mut icmp_packet,
            &ChecksumCapabilities::default(),
        );
        Some(ECHO_FRAME_LEN)
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
