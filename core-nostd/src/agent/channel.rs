//! The byte channel a session runs over: the legacy plain TCP stream, or TLS
//! on top of it. Both reach the network through a shared `RefCell<Net>`, so
//! the TLS transport (inside embedded-tls) and the session loop (which pumps
//! the stack between messages) each borrow it for one call. Reads never
//! wait; a plain send waits only for room in the socket ([`wait_for_room`]),
//! a TLS one inside its transport.

use core::cell::RefCell;

use smoltcp::socket::tcp;
use smoltcp::time::{Duration, Instant};

use super::net::{LinkLayer, Net};
use crate::platform::Wake;
use crate::time::SaturatingAdd;
use crate::types::Family;
use crate::Platform;

/// Why a channel stopped moving bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ChannelError {
    /// The TCP connection closed or was reset.
    Closed,
    /// A write did not drain within its deadline.
    Timeout,
    /// The platform asked the agent to stop while it waited.
    Stop,
    /// The network view was already borrowed: a logic error, reported
    /// instead of panicking.
    Busy,
    /// The TLS layer failed.
    Tls,
}

/// A bidirectional, non-blocking-for-reads byte channel.
pub trait ChannelIo {
    /// Sends all of `bytes`, pumping the stack until they are queued.
    fn send(&mut self, bytes: &[u8]) -> Result<(), ChannelError>;
    /// Reads what has arrived into `buf` without waiting; `Ok(0)` when
    /// nothing is there yet.
    fn recv(&mut self, buf: &mut [u8]) -> Result<usize, ChannelError>;
}

/// How long a write may wait for room in the TCP send buffer.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Borrows the network view, or reports [`ChannelError::Busy`].
pub fn borrow<'c, 'n, 'a, P: Platform, L: LinkLayer>(
    net: &'c RefCell<Net<'n, 'a, P, L>>,
) -> Result<core::cell::RefMut<'c, Net<'n, 'a, P, L>>, ChannelError> {
    net.try_borrow_mut().map_err(|_| ChannelError::Busy)
}

/// Queues `bytes` on the TCP socket once it has room for all of them
/// (a channel frame, far smaller than the socket's buffer).
pub fn tcp_send_all<P: Platform, L: LinkLayer>(
    net: &RefCell<Net<'_, '_, P, L>>,
    family: Family,
    bytes: &[u8],
) -> Result<(), ChannelError> {
    wait_for_room(net, family, bytes.len())?;
    let mut net = borrow(net)?;
    let n = net
        .tcp(family)
        .send_slice(bytes)
        .map_err(|_| ChannelError::Closed)?;
    net.poll();
    if n == bytes.len() {
        Ok(())
    } else {
        Err(ChannelError::Closed)
    }
}

/// Pumps the stack until the socket of `family` has room for `len` more
/// bytes, for at most [`WRITE_TIMEOUT`].
pub fn wait_for_room<P: Platform, L: LinkLayer>(
    net: &RefCell<Net<'_, '_, P, L>>,
    family: Family,
    len: usize,
) -> Result<(), ChannelError> {
    let mut net = borrow(net)?;
    let deadline: Instant = net.now().saturating_add(WRITE_TIMEOUT);
    loop {
        // Poll first: an ACK the stack has not read yet may free the room.
        net.poll();
        let socket = net.tcp(family);
        if !socket.may_send() {
            return Err(ChannelError::Closed);
        }
        let room = socket.send_capacity().saturating_sub(socket.send_queue());
        if room >= len {
            return Ok(());
        }
        if net.now() >= deadline {
            return Err(ChannelError::Timeout);
        }
        if net.wait(Some(deadline)) == Wake::Stop {
            return Err(ChannelError::Stop);
        }
    }
}

/// Reads what the TCP socket holds, without waiting.
pub fn tcp_recv<P: Platform, L: LinkLayer>(
    net: &RefCell<Net<'_, '_, P, L>>,
    family: Family,
    buf: &mut [u8],
) -> Result<usize, ChannelError> {
    let mut net = borrow(net)?;
    let socket = net.tcp(family);
    if socket.can_recv() {
        return socket.recv_slice(buf).map_err(|_| ChannelError::Closed);
    }
    if !socket.may_recv() || socket.state() == tcp::State::Closed {
        return Err(ChannelError::Closed);
    }
    Ok(0)
}

/// The legacy plain channel: channel-protocol frames straight on TCP.
pub struct Plain<'c, 'n, 'a, P: Platform, L: LinkLayer> {
    net: &'c RefCell<Net<'n, 'a, P, L>>,
    family: Family,
}

impl<'c, 'n, 'a, P: Platform, L: LinkLayer> Plain<'c, 'n, 'a, P, L> {
    /// A plain channel over the connected TCP socket of `family`.
    pub fn new(net: &'c RefCell<Net<'n, 'a, P, L>>, family: Family) -> Self {
        Plain { net, family }
    }
}

impl<P: Platform, L: LinkLayer> ChannelIo for Plain<'_, '_, '_, P, L> {
    fn send(&mut self, bytes: &[u8]) -> Result<(), ChannelError> {
        tcp_send_all(self.net, self.family, bytes)
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<usize, ChannelError> {
        tcp_recv(self.net, self.family, buf)
    }
}
