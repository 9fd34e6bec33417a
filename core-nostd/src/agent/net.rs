//! The network half of the agent, borrowed for one step: the platform, the
//! smoltcp interface and sockets, the link hook and the frame buffers.
//!
//! Nothing here waits: [`Net::poll_at`] says when the interface and the link
//! layer next need a poll, and `Agent::poll` hands that to its driver.

use smoltcp::iface::{Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::IpEndpoint;

use super::per_family::PerFamily;
use crate::link::device::{Device, FrameBuf, FrameHook};
use crate::types::Family;
use crate::Platform;

/// Anything with timers the agent must wake for (the address claims).
pub trait Timers {
    /// The next instant this needs a poll, if any.
    fn poll_at(&self) -> Option<Instant>;
}

/// The link layer as the agent drives it: a hook on received frames plus
/// frames of its own to send (probes, announcements, DAD) and timers.
pub trait LinkLayer: FrameHook + Timers {
    /// Writes the next frame the link layer wants on the wire into `buf` and
    /// returns its length, or `None` when there is nothing to send.
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize>;
}

/// A borrowed view of everything that moves bytes.
pub struct Net<'n, 'a, P: Platform, L: LinkLayer> {
    /// The platform.
    pub p: &'n mut P,
    /// The smoltcp interface.
    pub iface: &'n mut Interface,
    /// The smoltcp sockets.
    pub sockets: &'n mut SocketSet<'a>,
    /// The channel's TCP sockets, one per family.
    pub tcp: PerFamily<SocketHandle>,
    /// The link layer (address claims).
    pub link: &'n mut L,
    /// Receive frame buffer.
    pub rx: &'n mut FrameBuf,
    /// Transmit frame buffer.
    pub tx: &'n mut FrameBuf,
    /// The last poll spent its receive budget, so frames may still wait in
    /// the platform.
    pub backlog: &'n mut bool,
}

impl<'a, P: Platform, L: LinkLayer> Net<'_, 'a, P, L> {
    /// The current time.
    pub fn now(&self) -> Instant {
        self.p.now()
    }

    /// Runs the link layer and smoltcp once: frames the link layer's timers
    /// want out, then at most [`RX_BUDGET`](crate::link::device::RX_BUDGET) received frames through the hook
    /// into the interface, then whatever the sockets want to send, then what
    /// the claims queued while reading (a defence, an answer to a probe), so a
    /// reply leaves in the poll that read its frame.
    pub fn poll(&mut self) {
        let now = self.p.now();
        self.link_transmit(now);
        let mut device = Device::new(&mut *self.p, &mut *self.link, self.rx, self.tx);
        self.iface.poll(now, &mut device, self.sockets);
        *self.backlog = device.budget_spent();
        self.link_transmit(self.p.now());
    }

    /// Sends every frame the link layer has for the wire.
    fn link_transmit(&mut self, now: Instant) {
        while let Some(n) = self.link.poll_transmit(now, &mut self.tx[..]) {
            if let Some(frame) = self.tx.get(..n) {
                self.p.send(frame);
            }
        }
    }

    /// The earliest instant the interface or the link layer needs a poll:
    /// at once when the last poll left received frames waiting, so a wait
    /// never sleeps on them (a platform whose wake-up is edge-triggered, an
    /// interrupt that fired for frames already queued, would).
    pub fn poll_at(&mut self) -> Option<Instant> {
        let now = self.p.now();
        if *self.backlog {
            return Some(now);
        }
        earliest(self.iface.poll_at(now, self.sockets), self.link.poll_at())
    }

    /// The channel's TCP socket for `family`.
    pub fn tcp(&mut self, family: Family) -> &mut tcp::Socket<'a> {
        self.sockets.get_mut::<tcp::Socket>(self.tcp[family])
    }

    /// Ends the connection on `family`. An established (or closing)
    /// connection is reset. An attempt the peer never answered (SYN-SENT)
    /// is dropped without a RST: the peer has nothing to reset, and
    /// smoltcp would hold a RST to an address nobody answers for until the
    /// neighbour resolves, sending one ARP request or neighbour solicitation
    /// a second for ever; its neighbour rate limit is one for the whole
    /// interface, so that starves every other lookup (an IPv6 connect after
    /// a failed IPv4 one never got its solicitation out).
    pub fn abort(&mut self, family: Family) {
        let socket = self.tcp(family);
        let unanswered = socket.state() == tcp::State::SynSent;
        socket.abort();
        if unanswered {
            // Through LISTEN back to CLOSED forgets the peer (no tuple
            // left, so nothing to send); `listen` cannot fail on a closed
            // socket with a nonzero port.
            let _ = socket.listen(DISCARD_PORT);
            socket.abort();
        }
    }

    /// Starts a TCP connection over `family` from an ephemeral port.
    pub fn connect(&mut self, family: Family, remote: IpEndpoint) -> Result<(), tcp::ConnectError> {
        let port = 49152u16.wrapping_add((self.p.next_u32() % 16384) as u16);
        let socket = self.sockets.get_mut::<tcp::Socket>(self.tcp[family]);
        socket.abort();
        socket.connect(self.iface.context(), remote, port)
    }
}

/// The local port a forgotten attempt passes through in LISTEN (RFC 863
/// discard); never open for longer than one call.
const DISCARD_PORT: u16 = 9;

/// The earlier of two optional instants.
pub fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}
