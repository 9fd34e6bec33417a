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
pub mod net;
pub mod session;
pub mod status;

use core::cell::RefCell;

use smoltcp::iface::{self, Interface, SocketHandle, SocketSet, SocketStorage};
use smoltcp::socket::tcp;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr, IpEndpoint, Ipv4Address};

use crate::audit::{AuditEvent, LinkEvent, SessionEvent};
use crate::config::Config;
use crate::link::device::{Device, FrameBuf, FrameHook, Verdict};
use crate::platform::{Platform, Wake, MAX_FRAME_LEN};
use crate::types::{Channel, Family};

use self::channel::Plain;
use self::net::{LinkLayer, Net, Timers};
use self::session::{Heartbeat, Reader, SessionEnd};
pub use self::status::Status;

/// TCP receive buffer of the channel socket, in bytes.
pub const TCP_RX_LEN: usize = 4096;
/// TCP transmit buffer of the channel socket, in bytes.
pub const TCP_TX_LEN: usize = 4096;
/// How many smoltcp sockets the agent uses.
pub const SOCKETS: usize = 1;
/// How long shutdown waits for BYE and FIN to leave.
pub const LINGER: Duration = Duration::from_secs(1);

/// All of the agent's memory that is borrowed rather than owned, so that the
/// smoltcp sockets can borrow it for the agent's whole life.
pub struct AgentBuffers<'a> {
    sockets: [SocketStorage<'a>; SOCKETS],
    tcp_rx: [u8; TCP_RX_LEN],
    tcp_tx: [u8; TCP_TX_LEN],
}

impl AgentBuffers<'_> {
    /// Zeroed buffers.
    pub const fn new() -> Self {
        AgentBuffers {
            sockets: [SocketStorage::EMPTY; SOCKETS],
            tcp_rx: [0; TCP_RX_LEN],
            tcp_tx: [0; TCP_TX_LEN],
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
    /// The configuration enables no family at all.
    NothingEnabled,
}

/// How [`Agent::run`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Exit {
    /// The platform asked to stop.
    Stopped,
}

/// The connection's progress between sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conn {
    /// Waiting to (re)try at this instant.
    Backoff(Instant),
    /// TCP SYN sent; give up at this instant.
    Connecting { family: Family, deadline: Instant },
}

/// The link layer of the walking skeleton: a configured address, no claims
/// yet; it passes every frame to smoltcp.
#[derive(Debug, Default)]
pub struct StaticLink;

impl FrameHook for StaticLink {
    fn inspect(&mut self, _now: Instant, _frame: &[u8]) -> Verdict {
        Verdict::Pass
    }
}

impl Timers for StaticLink {
    fn poll_at(&self) -> Option<Instant> {
        None
    }
}

impl LinkLayer for StaticLink {
    fn poll_transmit(&mut self, _now: Instant, _buf: &mut [u8]) -> Option<usize> {
        None
    }
}

/// The bmclink agent.
pub struct Agent<'a> {
    cfg: Config,
    iface: Interface,
    sockets: SocketSet<'a>,
    tcp: SocketHandle,
    link: StaticLink,
    rx: FrameBuf,
    tx: FrameBuf,
    conn: Conn,
    backoff: Duration,
    heartbeat: Heartbeat,
    reader: Reader,
    status: Status,
    host_ipv4: Ipv4Address,
}

impl<'a> Agent<'a> {
    /// Builds an agent over `bufs` for the platform `p`.
    pub fn new<P: Platform>(
        cfg: Config,
        bufs: &'a mut AgentBuffers<'a>,
        p: &mut P,
    ) -> Result<Self, AgentError> {
        if !cfg.ipv4 && !cfg.ipv6 {
            return Err(AgentError::NothingEnabled);
        }
        let mac = EthernetAddress(p.mac());
        if !mac.is_unicast() {
            return Err(AgentError::BadMac(mac.0));
        }
        let mut rx = [0u8; MAX_FRAME_LEN];
        let mut tx = [0u8; MAX_FRAME_LEN];
        let mut link = StaticLink;
        let mut icfg = iface::Config::new(HardwareAddress::Ethernet(mac));
        icfg.random_seed = u64::from(p.next_u32()) << 32 | u64::from(p.next_u32());
        let now = p.now();
        let iface = {
            let mut device = Device::new(p, &mut link, &mut rx, &mut tx);
            Interface::new(icfg, &mut device, now)
        };
        let AgentBuffers {
            sockets,
            tcp_rx,
            tcp_tx,
        } = bufs;
        let mut sockets = SocketSet::new(&mut sockets[..]);
        let mut socket = tcp::Socket::new(
            tcp::SocketBuffer::new(&mut tcp_rx[..]),
            tcp::SocketBuffer::new(&mut tcp_tx[..]),
        );
        socket.set_nagle_enabled(false);
        let tcp = sockets.add(socket);
        let host_ipv4 = cfg.preferred_host_ipv4();
        Ok(Agent {
            cfg,
            iface,
            sockets,
            tcp,
            link,
            rx,
            tx,
            conn: Conn::Backoff(now),
            backoff: Duration::ZERO,
            heartbeat: Heartbeat::default(),
            reader: Reader::new(),
            status: Status::default(),
            host_ipv4,
        })
    }

    /// The agent's current status.
    pub fn status(&self) -> &Status {
        &self.status
    }

    /// Runs until the platform asks to stop.
    pub fn run<P: Platform>(&mut self, p: &mut P) -> Exit {
        self.bring_up(p);
        loop {
            let deadline = match self.step(p) {
                Ok(deadline) => deadline,
                Err(Exit::Stopped) => return self.shutdown(p),
            };
            let Agent {
                iface,
                sockets,
                tcp,
                link,
                rx,
                tx,
                ..
            } = self;
            let mut net = Net {
                p: &mut *p,
                iface,
                sockets,
                tcp: *tcp,
                link,
                rx,
                tx,
            };
            if net.wait(deadline) == Wake::Stop {
                return self.shutdown(p);
            }
        }
    }

    /// Puts the configured IPv4 address on the interface.
    fn bring_up<P: Platform>(&mut self, p: &mut P) {
        let addr = self.host_ipv4;
        self.iface.update_ip_addrs(|addrs| {
            if addrs.push(IpCidr::new(IpAddress::Ipv4(addr), 16)).is_err() {
                error!("no room for {} on the interface", addr);
            }
        });
        let now = p.now();
        info!("link up, using {}", addr);
        p.record(now, &AuditEvent::Link(LinkEvent::Ipv4Bound { addr }));
        self.status.host_ipv4 = Some(addr);
    }

    /// Advances the connection once; returns the next deadline.
    fn step<P: Platform>(&mut self, p: &mut P) -> Result<Option<Instant>, Exit> {
        let Agent {
            cfg,
            iface,
            sockets,
            tcp,
            link,
            rx,
            tx,
            conn,
            backoff,
            heartbeat,
            reader,
            status,
            ..
        } = self;
        let mut net = Net {
            p: &mut *p,
            iface,
            sockets,
            tcp: *tcp,
            link,
            rx,
            tx,
        };
        net.poll();
        let now = net.now();
        match *conn {
            Conn::Backoff(at) if now >= at => {
                let family = Family::V4;
                let remote = IpEndpoint::new(IpAddress::Ipv4(cfg.bmc_ipv4), cfg.plain_port);
                if net.connect(remote).is_err() {
                    *conn = retry(&mut net, cfg, backoff, family);
                    return Ok(conn_deadline(*conn));
                }
                info!("TCP connecting to {}", remote);
                *conn = Conn::Connecting {
                    family,
                    deadline: now + cfg.connect_timeout,
                };
                net.poll();
            }
            Conn::Backoff(_) => {}
            Conn::Connecting { family, deadline } => {
                let state = net.tcp().state();
                if state == tcp::State::Established {
                    info!("TCP connected over {}", family);
                    let net = RefCell::new(net);
                    let end = run_plain_session(&net, cfg, family, heartbeat, reader, status);
                    let mut net = net.into_inner();
                    let was_up = status.is_up();
                    end_session(&mut net, family, end, status);
                    if end == SessionEnd::Stopped {
                        return Err(Exit::Stopped);
                    }
                    if was_up {
                        // A session that came up resets the backoff.
                        *backoff = Duration::ZERO;
                    }
                    *conn = retry(&mut net, cfg, backoff, family);
                } else if state == tcp::State::Closed || now >= deadline {
                    net.tcp().abort();
                    let port = cfg.plain_port;
                    net.p.record(
                        now,
                        &AuditEvent::Session(SessionEvent::ConnectFailed { family, port }),
                    );
                    *conn = retry(&mut net, cfg, backoff, family);
                }
            }
        }
        Ok(conn_deadline(*conn))
    }

    /// Says BYE if a session is up, closes TCP and lets it drain briefly.
    fn shutdown<P: Platform>(&mut self, p: &mut P) -> Exit {
        let Agent {
            iface,
            sockets,
            tcp,
            link,
            rx,
            tx,
            ..
        } = self;
        let mut net = Net {
            p: &mut *p,
            iface,
            sockets,
            tcp: *tcp,
            link,
            rx,
            tx,
        };
        net.tcp().close();
        let deadline = net.now() + LINGER;
        loop {
            net.poll();
            let state = net.tcp().state();
            if matches!(state, tcp::State::Closed | tcp::State::TimeWait) || net.now() >= deadline {
                break;
            }
            if net.wait(Some(deadline)) == Wake::Stop {
                break;
            }
        }
        if !matches!(net.tcp().state(), tcp::State::Closed | tcp::State::TimeWait) {
            // The peer did not finish the close in time: reset rather than
            // leave a half-open connection behind.
            net.tcp().abort();
            net.poll();
        }
        info!("stopped");
        Exit::Stopped
    }
}

fn conn_deadline(conn: Conn) -> Option<Instant> {
    match conn {
        Conn::Backoff(at) => Some(at),
        Conn::Connecting { deadline, .. } => Some(deadline),
    }
}

/// Schedules the next attempt: 1 s doubling to 60 s, with up to 25% jitter.
fn retry<P: Platform, L: LinkLayer>(
    net: &mut Net<'_, '_, P, L>,
    cfg: &Config,
    backoff: &mut Duration,
    family: Family,
) -> Conn {
    let next = if *backoff == Duration::ZERO {
        cfg.backoff_min
    } else {
        (*backoff * 2).min(cfg.backoff_max)
    };
    *backoff = next;
    let jitter_ms = next.total_millis() / 4;
    let jitter = if jitter_ms == 0 {
        0
    } else {
        u64::from(net.p.next_u32()) % jitter_ms
    };
    let at = net.now() + next + Duration::from_millis(jitter);
    info!(
        "retrying over {} in {} ms",
        family,
        (at - net.now()).total_millis()
    );
    Conn::Backoff(at)
}

fn run_plain_session<P: Platform, L: LinkLayer>(
    net: &RefCell<Net<'_, '_, P, L>>,
    cfg: &Config,
    family: Family,
    hb: &mut Heartbeat,
    reader: &mut Reader,
    status: &mut Status,
) -> SessionEnd {
    reader.reset();
    let mut ch = Plain::new(net);
    let est = match session::greet(net, &mut ch, reader, cfg, family, false) {
        Ok(est) => est,
        Err(end) => return end,
    };
    let channel = Channel::Plain;
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
        status.session_up(now, family, channel, &est);
        n.p.status(status);
    }
    session::serve(net, &mut ch, reader, cfg, hb)
}

fn end_session<P: Platform, L: LinkLayer>(
    net: &mut Net<'_, '_, P, L>,
    family: Family,
    end: SessionEnd,
    status: &mut Status,
) {
    let now = net.now();
    let event = match end {
        SessionEnd::Stopped => SessionEvent::Ended {
            family,
            reason: session::bye::SHUTDOWN,
        },
        SessionEnd::PeerBye(reason) => SessionEvent::Ended { family, reason },
        SessionEnd::PeerDead(missed) => SessionEvent::PeerDead { missed },
        SessionEnd::Protocol(error) => SessionEvent::ProtocolError { error },
        SessionEnd::Rejected(code) => SessionEvent::Rejected { code },
        SessionEnd::NoWelcome | SessionEnd::Channel(_) => SessionEvent::ConnectFailed {
            family,
            port: net.tcp().remote_endpoint().map(|e| e.port).unwrap_or(0),
        },
    };
    match end {
        SessionEnd::Protocol(e) => error!("closing the connection: protocol error: {}", e),
        other => info!("session ended: {:?}", other),
    }
    net.p.record(now, &AuditEvent::Session(event));
    if end != SessionEnd::Stopped {
        net.tcp().abort();
        net.poll();
    }
    status.session_down();
    net.p.status(status);
}
