//! The agent: drives smoltcp, the address claims, the policy and the
//! connection over a [`Platform`](crate::Platform), and never waits.
//!
//! [`Agent::poll`] does all the work due now (the stack, the claims, the
//! policy, one step of the connection: the TLS handshake, the BMC's answer,
//! a round of the session) and returns when it needs to be polled again;
//! the caller waits for a frame or that instant, however it waits. That
//! wait is the drivers': [`Agent::run`] (blocking, [`Frames::wait`]) and
//! [`Agent::run_async`] (an executor, [`WaitAsync`]); a simulator or a
//! superloop calls `poll` itself. A stop request ([`Agent::stop`]) says BYE,
//! lets FIN drain for [`LINGER`], and then `poll` returns [`Poll::Stopped`].
//!
//! Everything the agent keeps lives in [`Agent`] and the caller's
//! [`AgentBuffers`], the TLS connection included, so the whole agent has a
//! size known at compile time and a poll's stack is small.
//!
//! [`Frames::wait`]: crate::platform::Frames::wait
//! [`WaitAsync`]: crate::platform::WaitAsync

pub mod channel;
pub mod conn;
pub mod control;
pub mod drbg;
pub mod enroll;
pub mod events;
pub mod identity;
pub mod link;
pub mod net;
pub mod per_family;
pub mod serving;
pub mod session;
pub mod status;
pub mod transport;

use core::mem::MaybeUninit;
use core::ptr::addr_of_mut;

use smoltcp::iface::{self, Interface, SocketHandle, SocketSet, SocketStorage};
use smoltcp::socket::tcp;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, HardwareAddress};

use crate::config::Config;
use crate::link::device::{Device, FrameBuf};
use crate::platform::{WaitAsync, Wake};
use crate::time::SaturatingAdd;
use crate::types::Family;
use crate::Platform;

use self::conn::{Conn, Cx};
use self::control::Control;
use self::link::Link;
use self::net::{earliest, Net};
use self::per_family::PerFamily;
pub use self::status::Status;
use crate::tls::TlsBuffers;

/// TCP receive buffer of each channel socket, in bytes. It need not hold a
/// whole TLS record: a record read resumes as bytes arrive (PATCHES.md #8).
pub const TCP_RX_LEN: usize = 3072;
/// TCP transmit buffer of each channel socket, in bytes: room for the
/// handshake's largest flight or a frame's record, twice over.
pub const TCP_TX_LEN: usize = 3072;
/// How many smoltcp sockets the agent uses: one TCP socket per family, so a
/// race-mode IPv4 attempt can run beside an IPv6 session (B2).
pub const SOCKETS: usize = 2;
/// How long a stop waits for BYE and FIN to leave.
pub const LINGER: Duration = Duration::from_secs(1);

/// All of the agent's memory that is borrowed rather than owned, so that the
/// smoltcp sockets can borrow it for the agent's whole life.
pub struct AgentBuffers<'a> {
    sockets: [SocketStorage<'a>; SOCKETS],
    tcp_rx: [[u8; TCP_RX_LEN]; SOCKETS],
    tcp_tx: [[u8; TCP_TX_LEN]; SOCKETS],
    tls: TlsBuffers,
}

impl AgentBuffers<'_> {
    /// Zeroed buffers.
    pub const fn new() -> Self {
        AgentBuffers {
            sockets: [SocketStorage::EMPTY; SOCKETS],
            tcp_rx: [[0; TCP_RX_LEN]; SOCKETS],
            tcp_tx: [[0; TCP_TX_LEN]; SOCKETS],
            tls: TlsBuffers::new(),
        }
    }

    /// Writes [`AgentBuffers::new`]'s value into `slot` in place, field by
    /// field, and returns it: a firmware builds its buffers in a `static`
    /// `MaybeUninit` (`.bss`) without the ~35 KiB temporary a by-value
    /// constructor passes through the stack at start-up.
    pub fn init(slot: &mut MaybeUninit<Self>) -> &mut Self {
        let p = slot.as_mut_ptr();
        // SAFETY: `p` is valid for writes of one `Self` (it comes from a
        // `&mut MaybeUninit<Self>`) and `addr_of_mut!` makes no reference
        // to uninitialised memory. The TCP buffers are byte arrays, valid
        // as zero bytes; `TlsBuffers::zero_in_place` writes the TLS ones;
        // each socket slot gets `SocketStorage::EMPTY`. Every field is then
        // initialised, so `assume_init_mut` is sound.
        unsafe {
            addr_of_mut!((*p).tcp_rx).write_bytes(0, 1);
            addr_of_mut!((*p).tcp_tx).write_bytes(0, 1);
            TlsBuffers::zero_in_place(addr_of_mut!((*p).tls));
            let sockets = addr_of_mut!((*p).sockets).cast::<SocketStorage<'_>>();
            for i in 0..SOCKETS {
                sockets.add(i).write(SocketStorage::EMPTY);
            }
            slot.assume_init_mut()
        }
    }
}

impl Default for AgentBuffers<'_> {
    fn default() -> Self {
        Self::new()
    }
}

/// Why an agent could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AgentError {
    /// The platform's MAC is not a unicast Ethernet address.
    BadMac([u8; 6]),
}

/// What [`Agent::poll`] asks of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Poll {
    /// Poll again when a frame arrives or at this instant (`None`: only a
    /// frame, or a stop request, brings work).
    Wait(Option<Instant>),
    /// The agent stopped ([`Agent::stop`]): nothing more to do.
    Stopped,
}

/// How [`Agent::run`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Exit {
    /// The platform asked to stop.
    Stopped,
}

/// The bmclink agent.
pub struct Agent<'a> {
    cfg: Config,
    iface: Interface,
    sockets: SocketSet<'a>,
    tcp: PerFamily<SocketHandle>,
    link: Link,
    rx: FrameBuf,
    tx: FrameBuf,
    /// The last poll spent its receive budget: frames may still wait.
    backlog: bool,
    ctl: Control,
    conn: Conn<'a>,
    stop: Stop,
}

/// Where a stop request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// None came.
    Running,
    /// BYE was said and both sockets close; FIN drains until this instant.
    Lingering(Instant),
    /// The agent stopped.
    Done,
}

/// How many rounds one poll runs at most when each round leaves more to
/// do at once (a phase changed, bytes are left in the socket); the poll
/// then asks to be polled again at once, so a peer that never stops
/// sending cannot hold the caller.
const ROUNDS: usize = 8;

/// Borrows the network half of an agent as a [`Net`] (split borrows of the
/// fields, so the control half stays usable beside it).
macro_rules! net {
    ($agent:ident, $p:expr) => {{
        let Agent {
            iface,
            sockets,
            tcp,
            link,
            rx,
            tx,
            backlog,
            ..
        } = $agent;
        Net {
            p: $p,
            iface,
            sockets,
            tcp: *tcp,
            link,
            rx,
            tx,
            backlog,
        }
    }};
}

impl<'a> Agent<'a> {
    /// Builds an agent over `bufs` for the platform `p`: reads the records
    /// and the host's facts and starts the policy (nothing is sent yet).
    pub fn new<P: Platform>(
        cfg: Config,
        bufs: &'a mut AgentBuffers<'a>,
        p: &mut P,
    ) -> Result<Self, AgentError> {
        let mut slot = MaybeUninit::uninit();
        Self::init(&mut slot, cfg, bufs, p)?;
        // SAFETY: `init` returned `Ok`: it wrote every field of `slot`.
        Ok(unsafe { slot.assume_init() })
    }

    /// [`Agent::new`] in place: builds the agent field by field in `slot`
    /// and returns it, so a firmware's `static` `MaybeUninit` gets its
    /// agent without the agent's size (12 KiB) passing through the stack
    /// as a return value. On `Err` nothing was written.
    pub fn init<'s, P: Platform>(
        slot: &'s mut MaybeUninit<Self>,
        cfg: Config,
        bufs: &'a mut AgentBuffers<'a>,
        p: &mut P,
    ) -> Result<&'s mut Self, AgentError> {
        let mac = EthernetAddress(p.mac());
        if !mac.is_unicast() {
            return Err(AgentError::BadMac(mac.0));
        }
        let a = slot.as_mut_ptr();
        let mut icfg = iface::Config::new(HardwareAddress::Ethernet(mac));
        icfg.random_seed = p.next_u64();
        let now = p.now();
        // SAFETY (both blocks): `a` is valid for writes of one `Agent` (it
        // comes from `&mut MaybeUninit<Self>`); `addr_of_mut!` makes no
        // reference to uninitialised memory, and the references to `link`,
        // `rx` and `tx` are made after those fields are written. Nothing
        // after the MAC check can fail, and every field is written exactly
        // once before `assume_init_mut`.
        unsafe {
            addr_of_mut!((*a).rx).write_bytes(0, 1);
            addr_of_mut!((*a).tx).write_bytes(0, 1);
            addr_of_mut!((*a).link).write(Link::default());
            let mut device = Device::new(
                p,
                &mut *addr_of_mut!((*a).link),
                &mut *addr_of_mut!((*a).rx),
                &mut *addr_of_mut!((*a).tx),
            );
            addr_of_mut!((*a).iface).write(Interface::new(icfg, &mut device, now));
        }
        let AgentBuffers {
            sockets,
            tcp_rx,
            tcp_tx,
            tls,
        } = bufs;
        let mut sockets = SocketSet::new(&mut sockets[..]);
        let mut handles = PerFamily::both(SocketHandle::default());
        for ((rxb, txb), handle) in tcp_rx
            .iter_mut()
            .zip(tcp_tx.iter_mut())
            .zip(handles.iter_mut())
        {
            let mut socket = tcp::Socket::new(
                tcp::SocketBuffer::new(&mut rxb[..]),
                tcp::SocketBuffer::new(&mut txb[..]),
            );
            socket.set_nagle_enabled(false);
            *handle = sockets.add(socket);
        }
        let ctl = Control::start(&cfg, p);
        // SAFETY: see above.
        unsafe {
            addr_of_mut!((*a).cfg).write(cfg);
            addr_of_mut!((*a).sockets).write(sockets);
            addr_of_mut!((*a).tcp).write(handles);
            addr_of_mut!((*a).ctl).write(ctl);
            addr_of_mut!((*a).backlog).write(false);
            addr_of_mut!((*a).conn).write(Conn::new(tls));
            addr_of_mut!((*a).stop).write(Stop::Running);
            Ok(slot.assume_init_mut())
        }
    }

    /// The agent's current status.
    pub fn status(&self) -> &Status {
        &self.ctl.status
    }

    /// Does all the work due now, without waiting: the stack and the
    /// claims, the policy, and the connection as far as it can go. Returns
    /// when to poll again (at the latest; a frame arriving is reason too).
    pub fn poll<P: Platform>(&mut self, p: &mut P) -> Poll {
        match self.stop {
            Stop::Running => {}
            Stop::Lingering(deadline) => return self.linger(p, deadline),
            Stop::Done => return Poll::Stopped,
        }
        let this = &mut *self;
        let mut net = net!(this, &mut *p);
        for _ in 0..ROUNDS {
            this.ctl.tick(&this.cfg, &mut net);
            // OS events raised while disconnected wait in the agent's
            // bounded queue (overflow is counted and reported).
            let now = net.now();
            session::pull_events(now, net.p, this.conn.events());
            let mut cx = Cx {
                net: &mut net,
                cfg: &this.cfg,
                ctl: &mut this.ctl,
            };
            let more = this.conn.advance(&mut cx);
            net.poll();
            if !more {
                let at = earliest(this.ctl.poll_at(), this.conn.poll_at());
                return Poll::Wait(earliest(at, net.poll_at()));
            }
        }
        Poll::Wait(Some(net.now()))
    }

    /// The platform asks the agent to stop: the connection says BYE, both
    /// sockets close, and the next polls let FIN drain for [`LINGER`]
    /// before [`Poll::Stopped`]. A second request stops at the next poll.
    pub fn stop<P: Platform>(&mut self, p: &mut P) {
        let this = &mut *self;
        let mut net = net!(this, &mut *p);
        let now = net.now();
        match this.stop {
            Stop::Running => {
                let mut cx = Cx {
                    net: &mut net,
                    cfg: &this.cfg,
                    ctl: &mut this.ctl,
                };
                this.conn.stop(&mut cx);
                for f in [Family::V4, Family::V6] {
                    net.tcp(f).close();
                }
                net.poll();
                this.stop = Stop::Lingering(now.saturating_add(LINGER));
            }
            Stop::Lingering(_) => this.stop = Stop::Lingering(now),
            Stop::Done => {}
        }
    }

    /// Runs until the platform asks to stop: the blocking driver, waiting
    /// in [`Frames::wait`](crate::platform::Frames::wait) between polls.
    pub fn run<P: Platform>(&mut self, p: &mut P) -> Exit {
        loop {
            match self.poll(p) {
                Poll::Stopped => return Exit::Stopped,
                Poll::Wait(at) => {
                    if p.wait(at) == Wake::Stop {
                        self.stop(p);
                    }
                }
            }
        }
    }

    /// [`Agent::run`] for an executor: waits in the platform's
    /// [`WaitAsync::wait_async`] between polls, so the agent is one task.
    pub async fn run_async<P: Platform + WaitAsync>(&mut self, p: &mut P) -> Exit {
        loop {
            match self.poll(p) {
                Poll::Stopped => return Exit::Stopped,
                Poll::Wait(at) => {
                    if p.wait_async(at).await == Wake::Stop {
                        self.stop(p);
                    }
                }
            }
        }
    }

    /// One poll of a stop: done when both connections finished closing or
    /// the linger ran out; a connection the peer did not finish closing is
    /// reset rather than left half-open.
    fn linger<P: Platform>(&mut self, p: &mut P, deadline: Instant) -> Poll {
        let this = &mut *self;
        let mut net = net!(this, &mut *p);
        net.poll();
        let closed = |net: &mut Net<'_, '_, P, Link>, f: Family| {
            matches!(
                net.tcp(f).state(),
                tcp::State::Closed | tcp::State::TimeWait
            )
        };
        let done = closed(&mut net, Family::V4) && closed(&mut net, Family::V6);
        if !done && net.now() < deadline {
            return Poll::Wait(earliest(Some(deadline), net.poll_at()));
        }
        for f in [Family::V4, Family::V6] {
            if !closed(&mut net, f) {
                net.abort(f);
            }
        }
        net.poll();
        info!("stopped");
        this.stop = Stop::Done;
        Poll::Stopped
    }
}
