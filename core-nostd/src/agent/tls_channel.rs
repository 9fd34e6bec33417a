//! The TLS channel: embedded-tls (blocking) over the agent's TCP socket.
//!
//! embedded-tls 0.19's client is blocking, so during the handshake its
//! transport pumps the stack while it waits ([`Net::wait`]). Once a session
//! runs, the session loop must keep its heartbeats and the policy going, so
//! the transport then never waits: with nothing in the socket it fails the
//! read, and the channel reports "nothing yet". The in-tree embedded-tls
//! keeps whatever part of a record it had read and goes on from there on
//! the next read (PATCHES.md #8), so this holds inside a record too.
//!
//! The handshake has an overall deadline ([`Flags::deadline`], from
//! `Config::handshake_timeout`), not one per byte, and while the transport
//! waits it runs the control loop ([`Tick`]): the policy, its watchdogs, the
//! address claims' defence and the host facts go on during a handshake, so
//! a peer trickling bytes cannot hold the agent.

use core::cell::{Cell, RefCell};

use embedded_io::{ErrorKind, ErrorType, Read, Write};
use smoltcp::time::{Duration, Instant};

use super::channel::{ChannelError, ChannelIo};
use super::link::Link;
use super::net::Net;
use crate::platform::Wake;
use crate::time::SaturatingAdd;
use crate::tls::{PinnedTls, TlsError};
use crate::types::Family;
use crate::Platform;

/// How long a blocking transport read or write may wait.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Shared between the transport (inside embedded-tls) and the channel.
#[derive(Debug, Default)]
pub struct Flags {
    /// Reads may not wait (the session runs).
    pub nonblocking: Cell<bool>,
    /// The last read failed only because nothing had arrived.
    pub would_block: Cell<bool>,
    /// The platform asked to stop while the transport waited.
    pub stopped: Cell<bool>,
    /// An overall deadline no wait may pass (the handshake's).
    pub deadline: Cell<Option<Instant>>,
    /// The overall deadline passed.
    pub timed_out: Cell<bool>,
    /// The control loop asked to drop this connection while it waited.
    pub dropped: Cell<bool>,
}

/// The control loop dropped the connection a transport was waiting on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dropped;

/// The control loop, run from inside a blocking transport wait.
pub trait Tick<P: Platform> {
    /// One round of the control loop. Returns its next deadline, or
    /// [`Dropped`] when the connection must end (the policy dropped it). A
    /// round that cannot run now (the session loop holds the control)
    /// returns `Ok(None)`.
    fn tick(&self, net: &mut Net<'_, '_, P, Link>) -> Result<Option<Instant>, Dropped>;
}

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

/// embedded-io over the TCP socket of one family.
pub struct NetTransport<'c, 'n, 'a, P: Platform> {
    net: &'c RefCell<Net<'n, 'a, P, Link>>,
    family: Family,
    flags: &'c Flags,
    tick: Option<&'c dyn Tick<P>>,
}

impl<'c, 'n, 'a, P: Platform> NetTransport<'c, 'n, 'a, P> {
    /// A transport over the connected socket of `family`.
    pub fn new(net: &'c RefCell<Net<'n, 'a, P, Link>>, family: Family, flags: &'c Flags) -> Self {
        NetTransport {
            net,
            family,
            flags,
            tick: None,
        }
    }

    /// Runs `tick` while the transport waits.
    pub fn with_tick(mut self, tick: &'c dyn Tick<P>) -> Self {
        self.tick = Some(tick);
        self
    }

    fn deadline(&self) -> Result<Instant, TransportError> {
        let net = self
            .net
            .try_borrow()
            .map_err(|_| TransportError(ErrorKind::Other))?;
        let own = net.now().saturating_add(IO_TIMEOUT);
        Ok(match self.flags.deadline.get() {
            Some(overall) => own.min(overall),
            None => own,
        })
    }

    /// Pumps the stack until `deadline`; `Err` when it passed or on stop.
    fn wait(&self, deadline: Instant) -> Result<(), TransportError> {
        let mut net = self
            .net
            .try_borrow_mut()
            .map_err(|_| TransportError(ErrorKind::Other))?;
        net.poll();
        if net.now() >= deadline {
            if self.flags.deadline.get().is_some_and(|d| net.now() >= d) {
                self.flags.timed_out.set(true);
            }
            return Err(TransportError(ErrorKind::TimedOut));
        }
        let mut wake_at = deadline;
        if let Some(tick) = self.tick {
            match tick.tick(&mut net) {
                Ok(Some(at)) => wake_at = wake_at.min(at),
                Ok(None) => {}
                Err(Dropped) => {
                    self.flags.dropped.set(true);
                    return Err(TransportError(ErrorKind::Interrupted));
                }
            }
        }
        if net.wait(Some(wake_at)) == Wake::Stop {
            self.flags.stopped.set(true);
            return Err(TransportError(ErrorKind::Interrupted));
        }
        Ok(())
    }
}

impl<P: Platform> ErrorType for NetTransport<'_, '_, '_, P> {
    type Error = TransportError;
}

impl<P: Platform> Read for NetTransport<'_, '_, '_, P> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, TransportError> {
        if buf.is_empty() {
            return Ok(0);
        }
        let deadline = self.deadline()?;
        loop {
            {
                let mut net = self
                    .net
                    .try_borrow_mut()
                    .map_err(|_| TransportError(ErrorKind::Other))?;
                net.poll();
                let socket = net.tcp(self.family);
                if socket.can_recv() {
                    let n = socket
                        .recv_slice(buf)
                        .map_err(|_| TransportError(ErrorKind::ConnectionReset))?;
                    return Ok(n);
                }
                if !socket.may_recv() {
                    return Err(TransportError(ErrorKind::ConnectionReset));
                }
            }
            if self.flags.nonblocking.get() {
                self.flags.would_block.set(true);
                return Err(TransportError(ErrorKind::Other));
            }
            self.wait(deadline)?;
        }
    }
}

impl<P: Platform> Write for NetTransport<'_, '_, '_, P> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, TransportError> {
        if buf.is_empty() {
            return Ok(0);
        }
        let deadline = self.deadline()?;
        loop {
            {
                let mut net = self
                    .net
                    .try_borrow_mut()
                    .map_err(|_| TransportError(ErrorKind::Other))?;
                let socket = net.tcp(self.family);
                if !socket.may_send() {
                    return Err(TransportError(ErrorKind::ConnectionReset));
                }
                let n = socket
                    .send_slice(buf)
                    .map_err(|_| TransportError(ErrorKind::ConnectionReset))?;
                net.poll();
                if n > 0 {
                    return Ok(n);
                }
            }
            self.wait(deadline)?;
        }
    }

    fn flush(&mut self) -> Result<(), TransportError> {
        let mut net = self
            .net
            .try_borrow_mut()
            .map_err(|_| TransportError(ErrorKind::Other))?;
        net.poll();
        Ok(())
    }
}

/// The TLS channel over an open [`PinnedTls`].
pub struct TlsChannel<'c, 'n, 'a, P: Platform> {
    tls: PinnedTls<'c, NetTransport<'c, 'n, 'a, P>>,
    flags: &'c Flags,
    /// The last TLS failure, for the audit log.
    pub error: Option<TlsError>,
}

impl<'c, 'n, 'a, P: Platform> TlsChannel<'c, 'n, 'a, P> {
    /// Wraps an open connection; reads stop waiting between records now.
    pub fn new(tls: PinnedTls<'c, NetTransport<'c, 'n, 'a, P>>, flags: &'c Flags) -> Self {
        flags.nonblocking.set(true);
        TlsChannel {
            tls,
            flags,
            error: None,
        }
    }

    fn fail(&mut self, e: TlsError) -> ChannelError {
        self.error = Some(e);
        if self.flags.stopped.get() {
            ChannelError::Stop
        } else {
            ChannelError::Tls
        }
    }

    /// Sends close_notify (best effort).
    pub fn close(self) {
        let _ = self.tls.close();
    }
}

impl<P: Platform> ChannelIo for TlsChannel<'_, '_, '_, P> {
    fn send(&mut self, bytes: &[u8]) -> Result<(), ChannelError> {
        self.tls.send(bytes).map_err(|e| self.fail(e))
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<usize, ChannelError> {
        self.flags.would_block.set(false);
        match self.tls.read(buf) {
            Ok(n) => Ok(n),
            Err(_) if self.flags.would_block.get() => Ok(0),
            Err(e) => Err(self.fail(e)),
        }
    }
}
