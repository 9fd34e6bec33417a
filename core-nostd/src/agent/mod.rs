//! The agent: drives smoltcp, the address claims, the policy and the session
//! over a [`Platform`].
//!
//! The agent is the one place where the sans-I/O pieces meet the platform.
//! [`Agent::run`] is a loop: poll the stack, advance the connection, then
//! [`crate::platform::Frames::wait`] until the next frame or timer. A session,
//! once up, runs in [`session`] until it ends, still pumping the stack. The
//! storage is the caller's ([`AgentBuffers`]), so the whole agent has a size
//! known at compile time.

pub mod channel;
pub mod control;
pub mod drbg;
pub mod events;
pub mod identity;
pub mod link;
pub mod net;
pub mod per_family;
pub mod session;
pub mod status;
pub mod tls_channel;

use core::cell::RefCell;

use smoltcp::iface::{self, Interface, SocketHandle, SocketSet, SocketStorage};
use smoltcp::socket::tcp;
use smoltcp::time::Duration;
use smoltcp::wire::{EthernetAddress, HardwareAddress};

use crate::audit::{AuditEvent, SessionEvent};
use crate::config::Config;
use crate::link::device::{Device, FrameBuf};
use crate::platform::{Platform, Wake, MAX_FRAME_LEN};
use crate::policy::{Input, SessionEnd as PolicyEnd};
use crate::time::SaturatingAdd;
use crate::types::{Channel, Family};

use self::channel::{ChannelError, Plain};
use self::control::Control;
use self::drbg::HashDrbg;
use self::identity::Trust;
use self::link::Link;
use self::net::Net;
use self::per_family::PerFamily;
use self::session::{Established, Heartbeat, Reader, SessionEnd};
pub use self::status::Status;
use self::tls_channel::{Flags, NetTransport, TlsChannel};
use crate::audit::TlsEvent;
use crate::cert::ShortFingerprint;
use crate::proto::{Caps, Enroll, Message, RejectCode};
use crate::tls::{PinnedTls, TlsBuffers, TlsError};

/// TCP receive buffer of each channel socket, in bytes.
pub const TCP_RX_LEN: usize = 4096;
/// TCP transmit buffer of each channel socket, in bytes.
pub const TCP_TX_LEN: usize = 4096;
/// How many smoltcp sockets the agent uses: one TCP socket per family, so a
/// race-mode IPv4 attempt can run beside an IPv6 session (B2).
pub const SOCKETS: usize = 2;
/// How long shutdown waits for BYE and FIN to leave.
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
    ctl: Control,
    heartbeat: Heartbeat,
    reader: Reader,
    tls: &'a mut TlsBuffers,
}

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
        let mac = EthernetAddress(p.mac());
        if !mac.is_unicast() {
            return Err(AgentError::BadMac(mac.0));
        }
        let mut rx = [0u8; MAX_FRAME_LEN];
        let mut tx = [0u8; MAX_FRAME_LEN];
        let mut link = Link::default();
        let mut icfg = iface::Config::new(HardwareAddress::Ethernet(mac));
        icfg.random_seed = p.next_u64();
        let now = p.now();
        let iface = {
            let mut device = Device::new(p, &mut link, &mut rx, &mut tx);
            Interface::new(icfg, &mut device, now)
        };
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
        Ok(Agent {
            cfg,
            iface,
            sockets,
            tcp: handles,
            link,
            rx,
            tx,
            ctl,
            heartbeat: Heartbeat::default(),
            reader: Reader::new(),
            tls,
        })
    }

    /// The agent's current status.
    pub fn status(&self) -> &Status {
        &self.ctl.status
    }

    /// Runs until the platform asks to stop.
    pub fn run<P: Platform>(&mut self, p: &mut P) -> Exit {
        loop {
            let session = {
                let this = &mut *self;
                let mut net = net!(this, &mut *p);
                this.ctl.tick(&this.cfg, &mut net);
                // OS events raised while disconnected wait in the agent's
                // bounded queue (overflow is counted and reported).
                let now = net.now();
                session::pull_events(now, net.p, &mut this.heartbeat.events);
                // IPv4 first (P1) when both are up.
                [Family::V4, Family::V6]
                    .into_iter()
                    .find(|f| this.ctl.connected[*f])
            };
            if let Some(family) = session {
                if self.session(p, family) == SessionEnd::Stopped {
                    return self.shutdown(p);
                }
                continue;
            }
            let this = &mut *self;
            let deadline = this.ctl.poll_at();
            let mut net = net!(this, &mut *p);
            if net.wait(deadline) == Wake::Stop {
                return self.shutdown(p);
            }
        }
    }

    /// Runs one session over the connected socket of `family`, on the
    /// channel the trust decision picked when connecting.
    fn session<P: Platform>(&mut self, p: &mut P, family: Family) -> SessionEnd {
        let this = &mut *self;
        let trust = this.ctl.trust;
        let net = RefCell::new(net!(this, &mut *p));
        this.reader.reset();
        let end = match trust {
            Trust::Tls { pin, enroll } => run_tls_session(
                &net,
                &this.cfg,
                &mut this.ctl,
                family,
                &mut this.heartbeat,
                &mut this.reader,
                this.tls,
                pin,
                enroll,
            ),
            Trust::Plain | Trust::Refused => run_plain_session(
                &net,
                &this.cfg,
                &mut this.ctl,
                family,
                &mut this.heartbeat,
                &mut this.reader,
            ),
        };
        let mut net = net.into_inner();
        end_session(&mut net, &mut this.ctl, family, end);
        end
    }

    /// Closes every connection gracefully (BYE was already said by the
    /// session) and lets FIN drain briefly.
    fn shutdown<P: Platform>(&mut self, p: &mut P) -> Exit {
        let this = &mut *self;
        let mut net = net!(this, &mut *p);
        for f in [Family::V4, Family::V6] {
            net.tcp(f).close();
        }
        let deadline = net.now().saturating_add(LINGER);
        loop {
            net.poll();
            let done = [Family::V4, Family::V6].iter().all(|f| {
                matches!(
                    net.tcp(*f).state(),
                    tcp::State::Closed | tcp::State::TimeWait
                )
            });
            if done || net.now() >= deadline {
                break;
            }
            if net.wait(Some(deadline)) == Wake::Stop {
                break;
            }
        }
        for f in [Family::V4, Family::V6] {
            if !matches!(
                net.tcp(f).state(),
                tcp::State::Closed | tcp::State::TimeWait
            ) {
                // The peer did not finish the close in time: reset rather
                // than leave a half-open connection behind.
                net.abort(f);
            }
        }
        net.poll();
        info!("stopped");
        Exit::Stopped
    }
}

/// Records the start of a session (P8) and tells the policy.
fn started<P: Platform>(
    net: &RefCell<Net<'_, '_, P, Link>>,
    cfg: &Config,
    ctl: &mut Control,
    family: Family,
    channel: Channel,
    est: &Established,
) {
    if let Ok(mut n) = channel::borrow(net) {
        let now = n.now();
        info!(
            "WELCOME: firmware {}.{}.{}.{}, session {}",
            est.firmware[0], est.firmware[1], est.firmware[2], est.firmware[3], est.session
        );
        n.p.record(
            now,
            &AuditEvent::Session(SessionEvent::Started {
                family,
                channel,
                firmware: est.firmware,
            }),
        );
        ctl.report(Input::Welcome {
            family,
            firmware: est.firmware,
            caps: Caps::from_bits(est.caps).known().bits(),
        });
        ctl.run_policy(cfg, &mut n);
        ctl.status.session_up(now, family, channel, est);
        n.p.status(&ctl.status);
    }
}

fn run_plain_session<P: Platform>(
    net: &RefCell<Net<'_, '_, P, Link>>,
    cfg: &Config,
    ctl: &mut Control,
    family: Family,
    hb: &mut Heartbeat,
    reader: &mut Reader,
) -> SessionEnd {
    let mut ch = Plain::new(net, family);
    let hello = session::hello(cfg, family, false);
    let est = match session::greet(net, &mut ch, reader, cfg, ctl, family, &hello) {
        Ok(est) => est,
        Err(end) => return end,
    };
    started(net, cfg, ctl, family, Channel::Plain, &est);
    if Caps::from_bits(est.caps).tls() {
        // T7: the firmware gained TLS since this host last enrolled (or
        // never did). If the bootstrap channel now publishes a certificate,
        // leave the plain channel so the next connection enrolls.
        let upgrade = channel::borrow(net)
            .ok()
            .and_then(|mut n| n.p.bmc_facts())
            .is_some_and(|f| f.tls && f.fingerprint.is_some());
        if upgrade {
            info!("the BMC now offers TLS: leaving the plain channel to enroll");
            let _ = session::send_message(&mut ch, &Message::Bye(session::bye::MOVING));
            return SessionEnd::Upgrade;
        }
    }
    session::serve(net, &mut ch, reader, cfg, ctl, family, hb)
}

#[allow(clippy::too_many_arguments)]
fn run_tls_session<'c, 'n, 'x, P: Platform>(
    net: &'c RefCell<Net<'n, 'x, P, Link>>,
    cfg: &Config,
    ctl: &mut Control,
    family: Family,
    hb: &mut Heartbeat,
    reader: &mut Reader,
    bufs: &'c mut TlsBuffers,
    pin: [u8; 32],
    enroll: bool,
) -> SessionEnd {
    let Some(id) = ctl.identity.as_ref() else {
        return SessionEnd::Channel(ChannelError::Tls);
    };
    let client = ShortFingerprint::of(&id.fingerprint());
    let flags = Flags::default();
    let mut rng = match channel::borrow(net) {
        Ok(mut n) => HashDrbg::from_rng(n.p),
        Err(e) => return SessionEnd::Channel(e),
    };
    let transport = NetTransport::new(net, family, &flags);
    let tls = match PinnedTls::open(transport, bufs, pin, id.tls(), &mut rng) {
        Ok(tls) => tls,
        Err(e) => {
            if flags.stopped.get() {
                return SessionEnd::Stopped;
            }
            audit(net, AuditEvent::Tls(TlsEvent::handshake_failed(e)));
            return SessionEnd::Channel(ChannelError::Tls);
        }
    };
    let mut ch = TlsChannel::new(tls, &flags);
    let mut credential = [0u8; 255];
    let first = if enroll {
        let n = match channel::borrow(net) {
            Ok(mut n) => n.p.enrollment_credential(&mut credential).unwrap_or(0),
            Err(e) => return SessionEnd::Channel(e),
        };
        let text = credential
            .get(..n)
            .and_then(|c| core::str::from_utf8(c).ok())
            .unwrap_or("");
        Message::Enroll(Enroll { credential: text })
    } else {
        session::hello(cfg, family, true)
    };
    let greeted = session::greet(net, &mut ch, reader, cfg, ctl, family, &first);
    credential.fill(0);
    let est = match greeted {
        Ok(est) => est,
        Err(end) => {
            tls_failure(net, &ch, end, enroll, client);
            return end;
        }
    };
    if enroll {
        if let Ok(mut n) = channel::borrow(net) {
            identity::save_pin(n.p, pin);
            let now = n.now();
            n.p.record(
                now,
                &AuditEvent::Tls(TlsEvent::Enrolled {
                    bmc: ShortFingerprint::of(&pin),
                    client,
                }),
            );
        }
        ctl.trust = Trust::Tls { pin, enroll: false };
    }
    started(net, cfg, ctl, family, Channel::Tls13, &est);
    let end = session::serve(net, &mut ch, reader, cfg, ctl, family, hb);
    tls_failure(net, &ch, end, false, client);
    if matches!(end, SessionEnd::Stopped | SessionEnd::Moving) {
        ch.close();
    }
    end
}

/// Audits why a TLS session failed, when TLS is the reason.
fn tls_failure<P: Platform>(
    net: &RefCell<Net<'_, '_, P, Link>>,
    ch: &TlsChannel<'_, '_, '_, P>,
    end: SessionEnd,
    enroll: bool,
    client: ShortFingerprint,
) {
    let event = match (end, ch.error) {
        (SessionEnd::Rejected(code), _) if enroll => TlsEvent::EnrollmentRejected { code },
        (SessionEnd::Rejected(code), _) if code == u8::from(RejectCode::NotEnrolled) => {
            TlsEvent::ClientCertRefused { client }
        }
        (SessionEnd::Channel(ChannelError::Tls), Some(TlsError::AbortedAfterHandshake)) => {
            TlsEvent::ClientCertRefused { client }
        }
        (SessionEnd::Channel(ChannelError::Tls), Some(TlsError::UnexpectedRecord)) => {
            TlsEvent::ForbiddenRecord {}
        }
        // A reset or close mid-session is a lost connection (BL2006, by
        // the caller), not a TLS failure.
        (SessionEnd::Channel(ChannelError::Tls), Some(TlsError::Io(_) | TlsError::Closed)) => {
            return
        }
        (SessionEnd::Channel(ChannelError::Tls), Some(e)) => TlsEvent::HandshakeFailed { error: e },
        _ => return,
    };
    audit(net, AuditEvent::Tls(event));
}

fn audit<P: Platform>(net: &RefCell<Net<'_, '_, P, Link>>, event: AuditEvent) {
    if let Ok(mut n) = channel::borrow(net) {
        let now = n.now();
        n.p.record(now, &event);
    }
}

fn end_session<P: Platform>(
    net: &mut Net<'_, '_, P, Link>,
    ctl: &mut Control,
    family: Family,
    end: SessionEnd,
) {
    let now = net.now();
    let port = net
        .tcp(family)
        .remote_endpoint()
        .map(|e| e.port)
        .unwrap_or(0);
    let (event, cause) = match end {
        SessionEnd::Stopped => (
            SessionEvent::Ended {
                family,
                reason: session::bye::SHUTDOWN,
            },
            None,
        ),
        SessionEnd::Moving => (
            SessionEvent::Ended {
                family,
                reason: session::bye::MOVING,
            },
            None,
        ),
        SessionEnd::Upgrade => (
            SessionEvent::Ended {
                family,
                reason: session::bye::MOVING,
            },
            Some(PolicyEnd::Bye),
        ),
        SessionEnd::PeerBye(reason) => {
            (SessionEvent::Ended { family, reason }, Some(PolicyEnd::Bye))
        }
        SessionEnd::PeerDead(missed) => {
            (SessionEvent::PeerDead { missed }, Some(PolicyEnd::PeerDead))
        }
        SessionEnd::Protocol(error) => (
            SessionEvent::ProtocolError { error },
            Some(PolicyEnd::ProtocolError),
        ),
        SessionEnd::Rejected(code) => (SessionEvent::Rejected { code }, Some(PolicyEnd::Rejected)),
        SessionEnd::NoWelcome => (
            SessionEvent::ConnectFailed { family, port },
            Some(PolicyEnd::PeerDead),
        ),
        SessionEnd::Channel(_) => (
            SessionEvent::ConnectFailed { family, port },
            Some(PolicyEnd::Reset),
        ),
    };
    match end {
        SessionEnd::Protocol(e) => error!("closing the connection: protocol error: {}", e),
        other => info!("session ended: {:?}", other),
    }
    net.p.record(now, &AuditEvent::Session(event));
    if end != SessionEnd::Stopped {
        net.abort(family);
        net.poll();
    }
    ctl.connected[family] = false;
    ctl.disconnect[family] = false;
    if let Some(cause) = cause {
        ctl.report(Input::SessionEnded { family, cause });
    }
    ctl.status.session_down();
    net.p.status(&ctl.status);
}
