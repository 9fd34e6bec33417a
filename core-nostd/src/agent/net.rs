//! The network half of the agent, borrowed for one step: the platform, the
//! smoltcp interface and sockets, and the link layer.
//!
//! Nothing here moves frames or waits: frames come and go through
//! `Agent::handle_frame` and `Agent::poll_transmit`, and [`Net::poll_at`]
//! says when the interface and the link layer next need the agent.

use smoltcp::iface::{Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::IpEndpoint;

use super::per_family::PerFamily;
use crate::link::device::FrameHook;
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
}

impl<'a, P: Platform, L: LinkLayer> Net<'_, 'a, P, L> {
    /// The current time.
    pub fn now(&self) -> Instant {
        self.p.now()
    }

    /// The earliest instant the interface (a retransmission, a delayed
    /// ACK) or the link layer (a probe, an announcement) needs the agent.
    /// Without carrier nothing can be sent, so what the sockets would send
    /// is no reason to wake.
    pub fn poll_at(&mut self) -> Option<Instant> {
        let now = self.p.now();
        if !self.p.link_up() {
            return self.link.poll_at();
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
        if self.tcp(family).state() == tcp::State::SynSent {
            self.forget(family);
        } else {
            self.tcp(family).abort();
        }
    }

    /// Ends the connection on `family` without a word, as if it had never
    /// been: for a link that went down, where a RST could not leave and
    /// would only wait for a carrier to tell a peer that has moved on.
    pub fn forget(&mut self, family: Family) {
        let socket = self.tcp(family);
        socket.abort();
        // Through LISTEN back to CLOSED forgets the peer (no tuple left, so
        // nothing to send); `listen` cannot fail on a closed socket with a
        // nonzero port.
        let _ = socket.listen(DISCARD_PORT);
        socket.abort();
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
