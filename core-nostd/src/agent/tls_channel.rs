//! The TLS channel: embedded-tls over the agent's TCP socket, never waiting
//! inside embedded-tls.
//!
//! The transport ([`NetTransport`]) hands embedded-tls what the socket
//! holds and fails a read with "nothing yet" ([`NetTransport::starved`])
//! when it holds nothing; the in-tree embedded-tls keeps whatever part of a
//! record it read and goes on from there on the next call (PATCHES.md #8).
//! The handshake runs one state per [`Handshaking::step`], and the agent's
//! own loop (`agent::handshake`) waits between steps, running the control
//! loop (policy, watchdogs, claims' defence, host facts) as it does between
//! any two frames. Writes never wait either: a sender first makes room in
//! the socket (`channel::wait_for_room`), so the transport always takes a whole
//! record.

use core::cell::{Cell, RefCell};

use embedded_io::{ErrorKind, ErrorType, Read, Write};

use super::channel::{borrow, wait_for_room, ChannelError, ChannelIo};
use super::link::Link;
use super::net::Net;
use crate::tls::{PinnedTls, TlsError, TLS_RECORD_WRITE_BUF};
use crate::types::Family;
use crate::Platform;

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

/// embedded-io over the TCP socket of one family, without waiting.
pub struct NetTransport<'c, 'n, 'a, P: Platform> {
    net: &'c RefCell<Net<'n, 'a, P, Link>>,
    family: Family,
    /// The last read failed only because nothing had arrived.
    starved: Cell<bool>,
}

impl<'c, 'n, 'a, P: Platform> NetTransport<'c, 'n, 'a, P> {
    /// A transport over the connected socket of `family`.
    pub fn new(net: &'c RefCell<Net<'n, 'a, P, Link>>, family: Family) -> Self {
        NetTransport {
            net,
            family,
            starved: Cell::new(false),
        }
    }

    /// Whether the last read failed only because the socket held nothing
    /// (then nothing was lost: the caller tries again later).
    pub fn starved(&self) -> bool {
        self.starved.get()
    }

    /// Forgets the last read's "nothing yet", before a TLS call that may
    /// fail for other reasons first.
    pub fn clear_starved(&self) {
        self.starved.set(false);
    }
}

impl<P: Platform> ErrorType for NetTransport<'_, '_, '_, P> {
    type Error = TransportError;
}

impl<P: Platform> Read for NetTransport<'_, '_, '_, P> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, TransportError> {
        self.starved.set(false);
        if buf.is_empty() {
            return Ok(0);
        }
        let mut net = borrow(self.net).map_err(|_| TransportError(ErrorKind::Other))?;
        let socket = net.tcp(self.family);
        if socket.can_recv() {
            return socket
                .recv_slice(buf)
                .map_err(|_| TransportError(ErrorKind::ConnectionReset));
        }
        if !socket.may_recv() {
            return Err(TransportError(ErrorKind::ConnectionReset));
        }
        self.starved.set(true);
        Err(TransportError(ErrorKind::Other))
    }
}

impl<P: Platform> Write for NetTransport<'_, '_, '_, P> {
    /// Queues what the socket takes. Senders make room for a whole record
    /// first (`channel::wait_for_room`); a socket that takes nothing is a failure.
    fn write(&mut self, buf: &[u8]) -> Result<usize, TransportError> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut net = borrow(self.net).map_err(|_| TransportError(ErrorKind::Other))?;
        let socket = net.tcp(self.family);
        if !socket.may_send() {
            return Err(TransportError(ErrorKind::ConnectionReset));
        }
        match socket.send_slice(buf) {
            Ok(0) => Err(TransportError(ErrorKind::WriteZero)),
            Ok(n) => Ok(n),
            Err(_) => Err(TransportError(ErrorKind::ConnectionReset)),
        }
    }

    fn flush(&mut self) -> Result<(), TransportError> {
        let mut net = borrow(self.net).map_err(|_| TransportError(ErrorKind::Other))?;
        net.poll();
        Ok(())
    }
}

/// The TLS channel over an open [`PinnedTls`].
pub struct TlsChannel<'c, 'n, 'a, P: Platform> {
    tls: PinnedTls<'c, NetTransport<'c, 'n, 'a, P>>,
    net: &'c RefCell<Net<'n, 'a, P, Link>>,
    family: Family,
    /// The last TLS failure, for the audit log.
    pub error: Option<TlsError>,
}

impl<'c, 'n, 'a, P: Platform> TlsChannel<'c, 'n, 'a, P> {
    /// Wraps an open connection over the socket of `family`.
    pub fn new(
        tls: PinnedTls<'c, NetTransport<'c, 'n, 'a, P>>,
        net: &'c RefCell<Net<'n, 'a, P, Link>>,
        family: Family,
    ) -> Self {
        TlsChannel {
            tls,
            net,
            family,
            error: None,
        }
    }

    fn fail(&mut self, e: TlsError) -> ChannelError {
        self.error = Some(e);
        ChannelError::Tls
    }

    /// Sends close_notify (best effort).
    pub fn close(self) {
        if wait_for_room(self.net, self.family, TLS_RECORD_WRITE_BUF).is_ok() {
            let _ = self.tls.close();
        }
    }
}

impl<P: Platform> ChannelIo for TlsChannel<'_, '_, '_, P> {
    fn send(&mut self, bytes: &[u8]) -> Result<(), ChannelError> {
        // Every channel frame fits one record (`TLS_RECORD_WRITE_BUF` is
        // sized for the largest), so room for a record is room enough.
        wait_for_room(self.net, self.family, TLS_RECORD_WRITE_BUF)?;
        self.tls.send(bytes).map_err(|e| self.fail(e))
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<usize, ChannelError> {
        self.tls.transport_mut().clear_starved();
        match self.tls.read(buf) {
            Ok(n) => Ok(n),
            Err(TlsError::Io(ErrorKind::Other)) if self.tls.transport_mut().starved() => Ok(0),
            Err(e) => Err(self.fail(e)),
        }
    }
}
