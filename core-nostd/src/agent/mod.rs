//! The agent: smoltcp, the address claims, the policy and the connection
//! over a [`Platform`](crate::Platform), as a sans-I/O state machine in the
//! shape of quinn-proto's `Connection`.
//!
//! - Frames in: [`Agent::handle_frame`] takes one received Ethernet frame.
//! - Frames out: [`Agent::poll_transmit`] writes the next frame to send
//!   (an answer to a frame, a probe, a TCP segment) and is called until it
//!   has none, after every other call.
//! - Time: [`Agent::handle_timeout`] does what is due now (the claims'
//!   timers, the policy, one step of the connection: the TLS handshake, the
//!   BMC's answer, a round of the session); [`Agent::poll_timeout`] says
//!   when that is next.
//! - The end: [`Agent::stop`] says BYE and lets FIN drain for [`LINGER`];
//!   then [`Agent::is_stopped`].
//! - Events out go to the platform's sinks as they happen (its
//!   [`Audit`](crate::platform::Audit), [`StatusSink`](crate::platform::StatusSink));
//!   time comes from its [`Clock`](crate::platform::Clock).
//!
//! Nothing here reads or writes the wire or waits. The drivers in
//! [`crate::drive`] do that: `drive::run` (blocking, over [`Frames`]),
//! `drive::run_async` (an executor, over [`WaitAsync`]) and `drive::step`,
//! the one step both are made of, which a simulator calls itself.
//!
//! Everything the agent keeps lives in [`Agent`] and the caller's
//! [`AgentBuffers`], the TLS connection included, so the whole agent has a
//! size known at compile time and a step's stack is small.
//!
//! [`Frames`]: crate::platform::Frames
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
use crate::link::device::{FrameBuf, FrameHook, Port};
use crate::time::SaturatingAdd;
use crate::types::Family;
use crate::Platform;

use self::conn::{Conn, Cx};
use self::control::Control;
use self::link::Link;
use self::net::{earliest, LinkLayer, Net};
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

/// What a driver's step ([`crate::drive::step`]) asks of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Poll {
    /// Step again when a frame arrives or at this instant (`None`: only a
    /// frame, or a stop request, brings work).
    Wait(Option<Instant>),
    /// The agent stopped ([`Agent::stop`]): nothing more to do.
    Stopped,
}

/// How a driver's run ([`crate::drive::run`]) ended.
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
    /// The answer smoltcp gave to the last frame handed in (an ARP reply, a
    /// RST), until [`Agent::poll_transmit`] takes it: its length in
    /// `reply_len`.
    reply: FrameBuf,
    reply_len: Option<usize>,
    /// A frame came in, or the last step stopped early with work left:
    /// [`Agent::handle_timeout`] is due now.
    again: bool,
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

/// How many rounds one [`Agent::handle_timeout`] runs at most when each
/// round leaves more to do at once (a phase changed, bytes are left in the
/// socket); it then asks for another at once, so a peer that never stops
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
            ..
        } = $agent;
        Net {
            p: $p,
            iface,
            sockets,
            tcp: *tcp,
            link,
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
        // reference to uninitialised memory, and the reference to `reply`
        // is made after that field is written. Nothing
        // after the MAC check can fail, and every field is written exactly
        // once before `assume_init_mut`.
        unsafe {
            addr_of_mut!((*a).reply).write_bytes(0, 1);
            addr_of_mut!((*a).link).write(Link::default());
            let mut device = Port::egress(&mut *addr_of_mut!((*a).reply));
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
            addr_of_mut!((*a).reply_len).write(None);
            addr_of_mut!((*a).again).write(false);
            addr_of_mut!((*a).conn).write(Conn::new(tls));
            addr_of_mut!((*a).stop).write(Stop::Running);
            Ok(slot.assume_init_mut())
        }
    }

    /// The agent's current status.
    pub fn status(&self) -> &Status {
        &self.ctl.status
    }

    /// Takes one received Ethernet frame (destination MAC first, no FCS):
    /// the claims see it first (a conflict, a probe for our address, DAD),
    /// then smoltcp, unless a claim withholds it. Frames while the link is
    /// down, and after the agent stopped, are dropped. Call
    /// [`Agent::poll_transmit`] until it has nothing before the next frame:
    /// the answer to this one waits there, and the next frame's answer
    /// takes its place, as a full transmit ring drops.
    pub fn handle_frame<P: Platform>(&mut self, p: &mut P, frame: &[u8]) {
        if self.stop == Stop::Done || !p.link_up() {
            return;
        }
        self.again = true;
        let now = p.now();
        if !self.link.inspect(now, frame).passes() {
            return;
        }
        let mut port = Port::ingress(frame, &mut self.reply);
        self.iface
            .poll_ingress_single(now, &mut port, &mut self.sockets);
        self.reply_len = port.sent().or(self.reply_len);
    }

    /// Writes the next frame to send into `buf` and returns its length, or
    /// `None` when there is none now: the answer to the last frame handed
    /// in, then the claims' frames (probes, announcements, a defence), then
    /// smoltcp's (segments, ARP and NDP). Call it until `None` after every
    /// other call on the agent. Once the agent stopped, only the resets of
    /// connections the peer did not finish closing come out.
    pub fn poll_transmit<P: Platform>(&mut self, p: &mut P, buf: &mut FrameBuf) -> Option<usize> {
        if !p.link_up() {
            self.reply_len = None;
            return None;
        }
        if let Some(n) = self.reply_len.take() {
            let (to, from) = (buf.get_mut(..n)?, self.reply.get(..n)?);
            to.copy_from_slice(from);
            return Some(n);
        }
        let now = p.now();
        // A stopped agent's claims say nothing more; its sockets may still
        // owe a reset.
        if self.stop != Stop::Done {
            if let Some(n) = self.link.poll_transmit(now, &mut buf[..]) {
                return Some(n);
            }
        }
        let mut port = Port::egress(buf);
        self.iface.poll_egress(now, &mut port, &mut self.sockets);
        port.sent()
    }

    /// Does all the work due now, without waiting: a deferred release, the
    /// claims' timers and reports, the policy, and the connection as far as
    /// it can go; during a stop, the linger. [`Agent::poll_timeout`] then
    /// says when to call it again.
    pub fn handle_timeout<P: Platform>(&mut self, p: &mut P) {
        self.again = false;
        match self.stop {
            Stop::Running => {}
            Stop::Lingering(deadline) => return self.linger(p, deadline),
            Stop::Done => return,
        }
        let this = &mut *self;
        let mut net = net!(this, &mut *p);
        if this.ctl.release_due() {
            this.ctl.release_ipv4(&mut net);
        }
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
            if this.ctl.release_due() {
                // The ended session's RST needs the address: it leaves
                // through `poll_transmit` first, and the next call releases.
                this.again = true;
                return;
            }
            if !more {
                return;
            }
        }
        this.again = true;
    }

    /// When [`Agent::handle_timeout`] is next due (at the latest: a frame
    /// handed in makes it due at once). `None`: only a frame, or a stop
    /// request, brings work; also once the agent stopped.
    pub fn poll_timeout<P: Platform>(&mut self, p: &mut P) -> Option<Instant> {
        let now = p.now();
        match self.stop {
            Stop::Done => return None,
            _ if self.again => return Some(now),
            Stop::Lingering(deadline) => {
                let this = &mut *self;
                let mut net = net!(this, &mut *p);
                return earliest(Some(deadline), net.poll_at());
            }
            Stop::Running => {}
        }
        let this = &mut *self;
        let mut net = net!(this, &mut *p);
        let at = earliest(this.ctl.poll_at(), this.conn.poll_at());
        earliest(at, net.poll_at())
    }

    /// Whether the agent stopped: a stop was asked for ([`Agent::stop`])
    /// and its linger is over. Its last frames (the resets of connections
    /// the peer did not finish closing) still wait in
    /// [`Agent::poll_transmit`].
    pub fn is_stopped(&self) -> bool {
        self.stop == Stop::Done
    }

    /// The platform asks the agent to stop: the connection says BYE, both
    /// sockets close, and [`Agent::handle_timeout`] lets FIN drain for
    /// [`LINGER`] before the agent is stopped. A second request stops at
    /// the next call.
    pub fn stop<P: Platform>(&mut self, p: &mut P) {
        let this = &mut *self;
        let mut net = net!(this, &mut *p);
        let now = net.now();
        this.again = true;
        match this.stop {
            Stop::Running => {
                let mut cx = Cx {
                    net: &mut net,
                    cfg: &this.cfg,
                    ctl: &mut this.ctl,
                };
                this.conn.stop(&mut cx);
                for f in [Family::V4, Family::V6] {
                    // An attempt nobody answered has nothing to close, and
                    // closing it would leave a RST looking for a neighbour
                    // that never answers: forget it (`Net::abort`).
                    if net.tcp(f).state() == tcp::State::SynSent {
                        net.forget(f);
                    } else {
                        net.tcp(f).close();
                    }
                }
                this.stop = Stop::Lingering(now.saturating_add(LINGER));
            }
            Stop::Lingering(_) => this.stop = Stop::Lingering(now),
            Stop::Done => {}
        }
    }

    /// One step of a stop: done when both connections finished closing or
    /// the linger ran out; a connection the peer did not finish closing is
    /// reset rather than left half-open.
    fn linger<P: Platform>(&mut self, p: &mut P, deadline: Instant) {
        let this = &mut *self;
        let mut net = net!(this, &mut *p);
        let closed = |net: &mut Net<'_, '_, P, Link>, f: Family| {
            matches!(
                net.tcp(f).state(),
                tcp::State::Closed | tcp::State::TimeWait
            )
        };
        let done = closed(&mut net, Family::V4) && closed(&mut net, Family::V6);
        if !done && net.now() < deadline {
            return;
        }
        for f in [Family::V4, Family::V6] {
            if !closed(&mut net, f) {
                net.abort(f);
            }
        }
        info!("stopped");
        this.stop = Stop::Done;
    }
}
