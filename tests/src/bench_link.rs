//! Measurements over the simulated link: channel throughput through
//! embedded-tls and smoltcp (two smoltcp interfaces joined by a
//! [`Segment`], a rustls sink on one side), and the agent's start-to-session
//! time per path in virtual time.

use std::collections::VecDeque;
use std::io::Read as _;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Instant as WallInstant;

use bmclink_core::tls::{PinnedTls, TlsBuffers};
use bmclink_core::Config;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use smoltcp::iface::{Config as IfaceConfig, Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr};

use crate::bench_tls::Pki;
use crate::clock::VirtualClock;
use crate::port_device::PortDevice;
use crate::wire::{Port, Segment};
use crate::{run_agent, BmcConfig, World};

/// The TLS port of the sink.
const PORT: u16 = 5443;
/// Polls without progress before the link is declared stuck.
const STUCK: usize = 10_000;

/// Two smoltcp hosts on a segment: the client's TCP socket (sized as the
/// agent's) and a rustls server that counts and drops plaintext.
struct Pair {
    clock: VirtualClock,
    segment: Segment,
    ports: [Port; 2],
    ifaces: [Interface; 2],
    sockets: [SocketSet<'static>; 2],
    handles: [SocketHandle; 2],
    server: rustls::ServerConnection,
    to_server_tcp: VecDeque<u8>,
    received: usize,
}

impl Pair {
    fn new(config: Arc<rustls::ServerConfig>) -> Result<Pair, String> {
        let clock = VirtualClock::new();
        let segment = Segment::new(clock.clone(), 1);
        segment.set_tap(false);
        let ports = [segment.port(), segment.port()];
        let ip = [Ipv4Addr::new(169, 254, 0, 2), Ipv4Addr::new(169, 254, 0, 1)];
        let mut ifaces = Vec::new();
        let mut sockets = Vec::new();
        let mut handles = Vec::new();
        for (i, port) in ports.iter().enumerate() {
            let mac = EthernetAddress([0x02, 0, 0, 0, 0, i as u8 + 1]);
            let mut device = PortDevice::new(port);
            let mut iface = Interface::new(
                IfaceConfig::new(HardwareAddress::Ethernet(mac)),
                &mut device,
                clock.now(),
            );
            iface.update_ip_addrs(|a| {
                let _ = a.push(IpCidr::new(IpAddress::Ipv4(ip[i]), 16));
            });
            // The client's socket has the agent's buffers; the sink's are big.
            let len = if i == 0 {
                bmclink_core::agent::TCP_RX_LEN
            } else {
                64 * 1024
            };
            let mut socket = tcp::Socket::new(
                tcp::SocketBuffer::new(vec![0; len]),
                tcp::SocketBuffer::new(vec![0; len]),
            );
            socket.set_nagle_enabled(false);
            let mut set = SocketSet::new(vec![]);
            let handle = set.add(socket);
            ifaces.push(iface);
            sockets.push(set);
            handles.push(handle);
        }
        let [c, s]: [Interface; 2] = ifaces.try_into().map_err(|_| "two interfaces")?;
        let [cs, ss]: [SocketSet<'static>; 2] = sockets.try_into().map_err(|_| "two sets")?;
        let mut pair = Pair {
            clock,
            segment,
            ports,
            ifaces: [c, s],
            sockets: [cs, ss],
            handles: [handles[0], handles[1]],
            server: rustls::ServerConnection::new(config).map_err(|e| e.to_string())?,
            to_server_tcp: VecDeque::new(),
            received: 0,
        };
        pair.sockets[1]
            .get_mut::<tcp::Socket>(pair.handles[1])
            .listen(PORT)
            .map_err(|e| format!("{e:?}"))?;
        let cx = pair.ifaces[0].context();
        pair.sockets[0]
            .get_mut::<tcp::Socket>(pair.handles[0])
            .connect(cx, (IpAddress::Ipv4(ip[1]), PORT), 49152)
            .map_err(|e| format!("{e:?}"))?;
        Ok(pair)
    }

    fn client(&mut self) -> &mut tcp::Socket<'static> {
        self.sockets[0].get_mut::<tcp::Socket>(self.handles[0])
    }

    /// Polls both stacks and the server once; true when anything moved.
    fn pump(&mut self) -> bool {
        let now = self.clock.now();
        let mut moved = false;
        for i in 0..2 {
            let mut device = PortDevice::new(&self.ports[i]);
            moved |= self.ifaces[i].poll(now, &mut device, &mut self.sockets[i])
                != smoltcp::iface::PollResult::None;
        }
        let socket = self.sockets[1].get_mut::<tcp::Socket>(self.handles[1]);
        while socket.can_recv() {
            let mut tls_in = Vec::new();
            let _ = socket.recv(|b| {
                tls_in.extend_from_slice(b);
                (b.len(), ())
            });
            moved = true;
            let mut rd = &tls_in[..];
            while !rd.is_empty() {
                if self.server.read_tls(&mut rd).is_err()
                    || self.server.process_new_packets().is_err()
                {
                    return moved;
                }
            }
            let mut plain = [0u8; 16 * 1024];
            while let Ok(n) = self.server.reader().read(&mut plain) {
                if n == 0 {
                    break;
                }
                self.received += n;
            }
        }
        let mut out = Vec::new();
        while self.server.wants_write() {
            if self.server.write_tls(&mut out).is_err() {
                break;
            }
        }
        self.to_server_tcp.extend(out);
        while !self.to_server_tcp.is_empty() && socket.can_send() {
            let (a, _) = self.to_server_tcp.as_slices();
            let n = socket.send_slice(a).unwrap_or(0);
            if n == 0 {
                break;
            }
            self.to_server_tcp.drain(..n);
            moved = true;
        }
        if !moved {
            // Nothing to do now: jump the virtual clock to the next event.
            let next = [
                self.segment.next_delivery(),
                self.ifaces[0].poll_at(now, &self.sockets[0]),
                self.ifaces[1].poll_at(now, &self.sockets[1]),
            ]
            .into_iter()
            .flatten()
            .min();
            if let Some(t) = next {
                if t > now {
                    self.clock.advance_to(t);
                    return true;
                }
            }
        }
        moved
    }
}

impl embedded_io::ErrorType for Pair {
    type Error = embedded_io::ErrorKind;
}

impl embedded_io::Read for Pair {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let mut idle = 0;
        loop {
            let socket = self.client();
            if socket.can_recv() {
                return socket
                    .recv_slice(buf)
                    .map_err(|_| embedded_io::ErrorKind::Other);
            }
            if !socket.may_recv() && socket.state() != tcp::State::SynSent {
                return Ok(0);
            }
            idle = if self.pump() { 0 } else { idle + 1 };
            if idle > STUCK {
                return Err(embedded_io::ErrorKind::TimedOut);
            }
        }
    }
}

impl embedded_io::Write for Pair {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        let mut idle = 0;
        loop {
            let socket = self.client();
            if socket.can_send() {
                let n = socket
                    .send_slice(buf)
                    .map_err(|_| embedded_io::ErrorKind::Other)?;
                if n > 0 {
                    self.pump();
                    return Ok(n);
                }
            }
            idle = if self.pump() { 0 } else { idle + 1 };
            if idle > STUCK {
                return Err(embedded_io::ErrorKind::TimedOut);
            }
        }
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// MB/s (wall clock, handshake excluded) of bmclink's TLS client writing
/// `total` bytes in `chunk`-byte frames through smoltcp over the simulated
/// link to a rustls sink: the CPU cost of the whole path (TLS records, TCP
/// segments, Ethernet frames both ways); the link's virtual latency costs
/// no wall time.
pub fn throughput(
    pki: &Pki,
    server: &Arc<rustls::ServerConfig>,
    total: usize,
    chunk: usize,
) -> Result<f64, String> {
    let mut pair = Pair::new(server.clone())?;
    let mut buffers = Box::new(TlsBuffers::new());
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let data = vec![0x5au8; chunk];
    let t;
    {
        let mut tls = PinnedTls::open(
            &mut pair,
            &mut buffers,
            pki.server_pin(),
            pki.identity(),
            &mut rng,
        )
        .map_err(|e| format!("handshake: {e:?}"))?;
        t = WallInstant::now();
        for _ in 0..total / chunk {
            tls.send(&data).map_err(|e| format!("send: {e:?}"))?;
        }
    }
    // Drain what is in flight.
    let mut idle = 0;
    while pair.received < total && idle < STUCK {
        idle = if pair.pump() { 0 } else { idle + 1 };
    }
    let secs = t.elapsed().as_secs_f64();
    if pair.received < total {
        return Err(format!("only {} of {total} bytes arrived", pair.received));
    }
    Ok(pair.received as f64 / secs / 1e6)
}

/// A path from start to session, as `cargo xtask bench` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartPath {
    /// IPv4 link-local (RFC 3927/5227) to a plain-channel BMC.
    Ipv4,
    /// The BMC has no IPv4 on the USBNIC: IPv6 fallback, sequential.
    Ipv6Fallback,
    /// The same with race mode on.
    Ipv6Race,
}

impl StartPath {
    /// Every path.
    pub const ALL: [StartPath; 3] = [
        StartPath::Ipv4,
        StartPath::Ipv6Fallback,
        StartPath::Ipv6Race,
    ];

    /// What it is, the floor the RFC timers allow, and how that floor is made.
    pub fn describe(self) -> (&'static str, Duration, &'static str) {
        match self {
            StartPath::Ipv4 => (
                "start to session, IPv4 path, plain BMC (virtual time)",
                Duration::from_secs(4),
                "RFC 5227: PROBE_WAIT 0 + 2x PROBE_MIN 1 s + ANNOUNCE_WAIT 2 s",
            ),
            StartPath::Ipv6Fallback => (
                "start to session, IPv6 fallback, sequential (virtual time)",
                Duration::from_secs(10),
                "IPv4 claim 4 s + Config::connect_timeout 5 s + RFC 4862 DAD 1 s",
            ),
            StartPath::Ipv6Race => (
                "start to session, IPv6 fallback, race mode (virtual time)",
                Duration::from_secs(1),
                "RFC 4862 DAD: 1 transmit x RetransTimer 1 s, start delay 0",
            ),
        }
    }
}

/// When the address came into use (the BL1001 or BL1101 audit event) and
/// when the first session started (BL2001), in virtual time from the
/// agent's start; `None` when no session started within 60 s.
pub fn session_start(path: StartPath, seed: u64) -> Option<(Duration, Duration)> {
    let plain = BmcConfig {
        firmware: [3, 20, 20, 20],
        tls: false,
        ..Default::default()
    };
    let (bmc, race) = match path {
        StartPath::Ipv4 => (plain, false),
        StartPath::Ipv6Fallback => (
            BmcConfig {
                ipv4: None,
                ..plain
            },
            false,
        ),
        StartPath::Ipv6Race => (
            BmcConfig {
                ipv4: None,
                ..plain
            },
            true,
        ),
    };
    let in_use = match path {
        StartPath::Ipv4 => 1001,
        StartPath::Ipv6Fallback | StartPath::Ipv6Race => 1101,
    };
    let mut world = World::new(bmc, seed);
    let cfg = Config {
        race,
        ..Config::default()
    };
    run_agent(&mut world, cfg, Instant::from_secs(60)).ok()?;
    let at = |id: u16| {
        world
            .audit
            .iter()
            .find(|(_, e)| e.id().0 == id)
            .map(|(t, _)| *t - Instant::ZERO)
    };
    Some((at(in_use)?, at(2001)?))
}

/// The frames a CPU-per-frame measurement pushes through an ingress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngressLoad {
    /// The flood's junk: random bytes, bad ethertypes, truncated frames,
    /// frames for other MACs (see [`crate::flood::FloodKind`]).
    Junk,
    /// The flood's ARP requests, probes and replies between other hosts.
    ArpForOthers,
}

/// A link that hands out the same frames round and round, counting them.
struct Replay {
    frames: Vec<Vec<u8>>,
    next: usize,
    left: usize,
}

impl bmclink_core::platform::Nic for Replay {
    fn mac(&self) -> [u8; 6] {
        crate::world::AGENT_MAC
    }
    fn link_up(&self) -> bool {
        true
    }
}

impl bmclink_core::platform::Frames for Replay {
    fn recv(&mut self, buf: &mut [u8]) -> Option<usize> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let f = &self.frames[self.next % self.frames.len()];
        self.next += 1;
        let n = f.len().min(buf.len());
        buf[..n].copy_from_slice(&f[..n]);
        Some(n)
    }
    fn send(&mut self, _frame: &[u8]) {}
    fn wait(&mut self, _deadline: Option<Instant>) -> bmclink_core::platform::Wake {
        bmclink_core::platform::Wake::Ready
    }
}

/// The reference: [`Replay`] as a plain smoltcp device (no hook, no
/// budget), receiving into one buffer as bmclink's driver does.
struct Bare<'a> {
    replay: &'a mut Replay,
    rx: &'a mut [u8; 1514],
}

impl smoltcp::phy::Device for Bare<'_> {
    type RxToken<'a>
        = ReplayRx<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = ReplayTx
    where
        Self: 'a;
    fn receive(&mut self, _now: Instant) -> Option<(ReplayRx<'_>, ReplayTx)> {
        let n = bmclink_core::platform::Frames::recv(self.replay, &mut self.rx[..])?;
        Some((ReplayRx(&self.rx[..n]), ReplayTx))
    }
    fn transmit(&mut self, _now: Instant) -> Option<ReplayTx> {
        Some(ReplayTx)
    }
    fn capabilities(&self) -> smoltcp::phy::DeviceCapabilities {
        let mut caps = smoltcp::phy::DeviceCapabilities::default();
        caps.medium = smoltcp::phy::Medium::Ethernet;
        caps.max_transmission_unit = 1514;
        caps.max_burst_size = Some(1);
        caps
    }
}

/// A received frame of [`Bare`] as smoltcp takes it.
struct ReplayRx<'a>(&'a [u8]);
/// A transmit token that drops what it is given.
struct ReplayTx;

impl smoltcp::phy::RxToken for ReplayRx<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.0)
    }
}

impl smoltcp::phy::TxToken for ReplayTx {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buf = [0u8; 1514];
        f(&mut buf[..len.min(1514)])
    }
}

/// The flood's frames of `load`, `n` distinct ones.
fn ingress_frames(load: IngressLoad, n: usize) -> Vec<Vec<u8>> {
    use crate::flood::{flood_frame, FloodKind};
    let mut out = Vec::new();
    let mut buf = [0u8; 1514];
    let mut i = 0;
    while out.len() < n {
        let (kind, len) = flood_frame(14, i, &mut buf);
        i += 1;
        let arp = matches!(kind, FloodKind::ArpRequest | FloodKind::ArpReply);
        if arp == (load == IngressLoad::ArpForOthers) {
            out.push(buf[..len].to_vec());
        }
    }
    out
}

/// Nanoseconds of wall time per frame of `load` through the agent's
/// ingress (what `Agent::handle_frame` and `Agent::poll_transmit` do with
/// one frame: the agent's `Link` hook, an IPv4 claim bound to 169.254.1.2,
/// then a one-frame `Port` into a smoltcp `Interface` with that address,
/// then the claims' and smoltcp's egress) and through a bare smoltcp
/// `Interface` with the same address on the same frames (the reference):
/// `(agent, bare)`, each the best of `rounds` runs of `frames` frames.
pub fn ingress_ns_per_frame(load: IngressLoad, frames: usize, rounds: usize) -> (f64, f64) {
    use bmclink_core::agent::link::{Ipv4Mode, Link};
    use bmclink_core::agent::net::LinkLayer;
    use bmclink_core::link::device::{FrameHook, Port};
    use smoltcp::wire::{IpAddress, IpCidr, Ipv4Address};

    let addr = Ipv4Address::new(169, 254, 1, 2);
    let mac = crate::world::AGENT_MAC;
    let pool = ingress_frames(load, 4096);
    let mut replay = Replay {
        frames: pool,
        next: 0,
        left: 0,
    };
    // The claim, bound as during a session: probes, announce wait, announcements.
    let mut link = Link::default();
    let mut now = Instant::ZERO;
    link.claim_ipv4(mac, addr, Ipv4Mode::Fresh, 1, now);
    let mut scratch = [0u8; 1514];
    while link.ipv4().is_none() && now < Instant::from_secs(60) {
        now += Duration::from_millis(100);
        link.handle_timeout(now);
        while link.poll_transmit(now, &mut scratch).is_some() {}
    }
    now += Duration::from_secs(10);
    while link.poll_transmit(now, &mut scratch).is_some() {}
    while link.poll_report().is_some() {}
    let mut rx = [0u8; 1514];
    let mut tx = [0u8; 1514];
    let cfg = || IfaceConfig::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
    let mut agent_iface = Interface::new(cfg(), &mut Port::egress(&mut tx), now);
    let mut bare_iface = Interface::new(
        cfg(),
        &mut Bare {
            replay: &mut replay,
            rx: &mut rx,
        },
        now,
    );
    for iface in [&mut agent_iface, &mut bare_iface] {
        iface.update_ip_addrs(|a| {
            let _ = a.push(IpCidr::new(IpAddress::Ipv4(addr), 16));
        });
    }
    let mut sockets = SocketSet::new(vec![]);
    let mut best = (f64::INFINITY, f64::INFINITY);
    for _ in 0..rounds {
        replay.left = frames;
        let t = WallInstant::now();
        while let Some(n) = bmclink_core::platform::Frames::recv(&mut replay, &mut rx) {
            now += Duration::from_micros(1);
            if link.inspect(now, &rx[..n]).passes() {
                let mut port = Port::ingress(&rx[..n], &mut tx);
                agent_iface.poll_ingress_single(now, &mut port, &mut sockets);
            }
            while link.poll_transmit(now, &mut tx).is_some() {}
            loop {
                let mut port = Port::egress(&mut tx);
                agent_iface.poll_egress(now, &mut port, &mut sockets);
                if port.sent().is_none() {
                    break;
                }
            }
        }
        best.0 = best.0.min(t.elapsed().as_nanos() as f64 / frames as f64);
        replay.left = frames;
        let t = WallInstant::now();
        while replay.left > 0 {
            now += Duration::from_micros(1);
            let mut device = Bare {
                replay: &mut replay,
                rx: &mut rx,
            };
            bare_iface.poll(now, &mut device, &mut sockets);
        }
        best.1 = best.1.min(t.elapsed().as_nanos() as f64 / frames as f64);
    }
    best
}
