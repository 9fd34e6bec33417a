//! The byte channel a connection runs over, without waiting: the legacy
//! plain TCP stream, or TLS (embedded-tls) on top of it.
//!
//! A TLS connection lives in the agent's state between polls, so its
//! transport cannot borrow the stack: [`SocketIo`] holds only the socket's
//! handle and is lent the socket set for the length of one TLS call
//! ([`lend`]). It never waits either: a read with nothing in the socket, or
//! a write with no room, fails and says so ([`SocketIo::would_block`]); the
//! in-tree embedded-tls resumes a read where it stopped (PATCHES.md #8), and
//! the agent checks for room before it writes ([`room`]), so nothing is lost.

use core::ptr;

use embedded_io::{ErrorKind, ErrorType, Read, Write};
use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::tcp;

use super::channel::ChannelError;
use super::drbg::HashDrbg;
use crate::tls::{Handshaking, PinnedTls, TlsError};

/// A transport failure, as embedded-io sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransportError(ErrorKind);

impl core::fmt::Display for TransportError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "transport: {:?}", self.0)
    }
}

impl core::error::Error for TransportError {}

impl embedded_io::Error for TransportError {
    fn kind(&self) -> ErrorKind {
        self.0
    }
}

/// embedded-io over one TCP socket, reaching the socket set only while it
/// is lent one ([`lend`]); between calls it holds nothing but the handle.
pub struct SocketIo<'a> {
    sockets: *mut SocketSet<'a>,
    handle: SocketHandle,
    would_block: bool,
}

impl<'a> SocketIo<'a> {
    /// A transport over the socket `handle`, lent nothing yet.
    pub fn new(handle: SocketHandle) -> Self {
        SocketIo {
            sockets: ptr::null_mut(),
            handle,
            would_block: false,
        }
    }

    /// The last call failed only because nothing could move yet (no bytes
    /// to read, no room to write): try again after the next poll.
    pub fn would_block(&self) -> bool {
        self.would_block
    }

    fn socket(&mut self) -> Result<&mut tcp::Socket<'a>, TransportError> {
        // SAFETY: `sockets` is either null or was set by `lend` from a
        // `&mut SocketSet` that `lend` holds, unused, for as long as the
        // pointer is set; `lend` nulls it again before it returns. No other
        // reference to the set is alive while this one is used.
        let set = unsafe { self.sockets.as_mut() }.ok_or(TransportError(ErrorKind::Other))?;
        Ok(set.get_mut::<tcp::Socket>(self.handle))
    }
}

/// Runs `f` on `conn` with its transport (`io(conn)`) lent `sockets`, for
/// this call only.
pub fn lend<'a, C, R>(
    conn: &mut C,
    io: fn(&mut C) -> &mut SocketIo<'a>,
    sockets: &mut SocketSet<'a>,
    f: impl FnOnce(&mut C) -> R,
) -> R {
    {
        let t = io(conn);
        t.sockets = sockets;
        t.would_block = false;
    }
    let r = f(conn);
    io(conn).sockets = ptr::null_mut();
    r
}

impl ErrorType for SocketIo<'_> {
    type Error = TransportError;
}

impl Read for SocketIo<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, TransportError> {
        if buf.is_empty() {
            return Ok(0);
        }
        let socket = self.socket()?;
        if socket.can_recv() {
            return socket
                .recv_slice(buf)
                .map_err(|_| TransportError(ErrorKind::ConnectionReset));
        }
        if !socket.may_recv() {
            return Err(TransportError(ErrorKind::ConnectionReset));
        }
        self.would_block = true;
        Err(TransportError(ErrorKind::Other))
    }
}

impl Write for SocketIo<'_> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, TransportError> {
        if buf.is_empty() {
            return Ok(0);
        }
        let socket = self.socket()?;
        if !socket.may_send() {
            return Err(TransportError(ErrorKind::ConnectionReset));
        }
        let n = socket
            .send_slice(buf)
            .map_err(|_| TransportError(ErrorKind::ConnectionReset))?;
        if n == 0 {
            self.would_block = true;
            return Err(TransportError(ErrorKind::Other));
        }
        Ok(n)
    }

    fn flush(&mut self) -> Result<(), TransportError> {
        Ok(())
    }
}

/// Whether the socket can take `len` more bytes now: `Ok(true)` when it
/// can, `Ok(false)` when it must drain first, `Err` when it can send no more.
pub fn room(socket: &tcp::Socket<'_>, len: usize) -> Result<bool, ChannelError> {
    if !socket.may_send() {
        return Err(ChannelError::Closed);
    }
    Ok(socket.send_capacity().saturating_sub(socket.send_queue()) >= len)
}

/// A TLS handshake as the agent keeps it.
pub type Hs<'a> = Handshaking<'a, SocketIo<'a>, HashDrbg>;

/// The channel of one connection, kept in the agent between polls.
// The handshake is the large variant by design: it lives in the agent's
// static state, stepped in place, and there is no heap to box it on.
#[allow(clippy::large_enum_variant)]
pub enum Chan<'a> {
    /// No connection.
    Closed,
    /// The TLS handshake runs (nothing can be sent or read yet).
    Handshake(Hs<'a>),
    /// Channel-protocol frames straight on TCP.
    Plain,
    /// TLS 1.3, authenticated.
    Tls(PinnedTls<'a, SocketIo<'a>>),
}

/// The transport of an open TLS channel.
pub fn io<'r, 'a>(tls: &'r mut PinnedTls<'a, SocketIo<'a>>) -> &'r mut SocketIo<'a> {
    tls.transport_mut()
}

/// The transport of a handshake.
pub fn hs_io<'r, 'a>(hs: &'r mut Hs<'a>) -> &'r mut SocketIo<'a> {
    hs.transport_mut()
}

impl<'a> Chan<'a> {
    /// Reads what has arrived into `buf` without waiting; `Ok(0)` when
    /// nothing is there yet. A TLS failure is kept in `error`.
    pub fn recv(
        &mut self,
        sockets: &mut SocketSet<'a>,
        handle: SocketHandle,
        buf: &mut [u8],
        error: &mut Option<TlsError>,
    ) -> Result<usize, ChannelError> {
        match self {
            Chan::Closed | Chan::Handshake(_) => Err(ChannelError::Closed),
            Chan::Plain => {
                let socket = sockets.get_mut::<tcp::Socket>(handle);
                if socket.can_recv() {
                    return socket.recv_slice(buf).map_err(|_| ChannelError::Closed);
                }
                if !socket.may_recv() || socket.state() == tcp::State::Closed {
                    return Err(ChannelError::Closed);
                }
                Ok(0)
            }
            Chan::Tls(tls) => {
                match lend(tls, io, sockets, |t| (t.read(buf), io(t).would_block())) {
                    (Ok(n), _) => Ok(n),
                    (Err(_), true) => Ok(0),
                    (Err(e), false) => {
                        *error = Some(e);
                        Err(ChannelError::Tls)
                    }
                }
            }
        }
    }

    /// Sends all of `bytes`, which the socket has room for ([`room`] with
    /// [`Chan::overhead`]). A TLS failure is kept in `error`.
    pub fn send(
        &mut self,
        sockets: &mut SocketSet<'a>,
        handle: SocketHandle,
        bytes: &[u8],
        error: &mut Option<TlsError>,
    ) -> Result<(), ChannelError> {
        match self {
            Chan::Closed | Chan::Handshake(_) => Err(ChannelError::Closed),
            Chan::Plain => {
                let n = sockets
                    .get_mut::<tcp::Socket>(handle)
                    .send_slice(bytes)
                    .map_err(|_| ChannelError::Closed)?;
                if n == bytes.len() {
                    Ok(())
                } else {
                    Err(ChannelError::Closed)
                }
            }
            Chan::Tls(tls) => lend(tls, io, sockets, |t| t.send(bytes)).map_err(|e| {
                *error = Some(e);
                ChannelError::Tls
            }),
        }
    }

    /// Bytes a send of `n` bytes of frame may put on the socket.
    pub fn on_wire(&self, n: usize) -> usize {
        match self {
            Chan::Tls(_) => n.saturating_add(embedded_tls::TLS_RECORD_OVERHEAD),
            _ => n,
        }
    }
}
