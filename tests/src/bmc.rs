//! The simulated BMC: its own smoltcp stack on the segment, the channel
//! protocol responder on the plain (and TLS) ports, and a Lifecycle log.

use smoltcp::iface::{Config as IfaceConfig, Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{
    EthernetAddress, HardwareAddress, IpAddress, IpCidr, Ipv4Address, Ipv6Address,
};

use crate::port_device::PortDevice;
use crate::responder::{Next, Responder};
use crate::timeline;
use crate::wire::Port;

/// The BMC's firmware facts and behaviour, all configurable per test.
#[derive(Debug, Clone)]
pub struct BmcConfig {
    /// The BMC's MAC on the USBNIC.
    pub mac: [u8; 6],
    /// The BMC's IPv4 address (`None`: IPv4 removed from the USBNIC).
    pub ipv4: Option<Ipv4Address>,
    /// The BMC's IPv6 link-local address (`None`: no IPv6).
    pub ipv6: Option<Ipv6Address>,
    /// Firmware version, e.g. 3.30.30.30.
    pub firmware: [u8; 4],
    /// The firmware has TLS on the USBNIC.
    pub tls: bool,
    /// The firmware supports IPv6 on the USBNIC.
    pub ipv6_usbnic: bool,
    /// The plain channel port.
    pub plain_port: u16,
    /// The TLS channel port.
    pub tls_port: u16,
    /// Answer PING with PONG (off: a BMC that hangs).
    pub answer_ping: bool,
    /// Raw bytes sent right after WELCOME (malformed-input tests).
    pub inject_after_welcome: Option<Vec<u8>>,
}

impl BmcConfig {
    /// Firmware from 3.30.30.30 on requires TLS from a TLS-capable BMC.
    pub fn tls_required(&self) -> bool {
        self.tls && self.firmware >= [3, 30, 30, 30]
    }

    /// Old firmware: no TLS, plain channel only, IPv4 only, BMC at 169.254.0.1.
    pub fn legacy() -> Self {
        BmcConfig {
            firmware: [2, 70, 70, 70],
            tls: false,
            ipv6_usbnic: false,
            ..Self::default()
        }
    }
}

impl Default for BmcConfig {
    /// iDRAC-like defaults: 169.254.1.1, fe80::1, firmware 3.30.30.30 with TLS
    /// required and IPv6 on the USBNIC.
    fn default() -> Self {
        BmcConfig {
            mac: [0x02, 0x1d, 0x09, 0x00, 0x00, 0x01],
            ipv4: Some(Ipv4Address::new(169, 254, 1, 1)),
            ipv6: Some(Ipv6Address::new(0xfe80, 0, 0, 0, 0, 0, 0, 1)),
            firmware: [3, 30, 30, 30],
            tls: true,
            ipv6_usbnic: true,
            plain_port: 5080,
            tls_port: 5443,
            answer_ping: true,
            inject_after_welcome: None,
        }
    }
}

/// One Lifecycle-log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LcEntry {
    /// Virtual time.
    pub at: Instant,
    /// Message ID (e.g. `ISM0050`).
    pub id: &'static str,
    /// Text.
    pub text: String,
}

/// The BMC's Lifecycle log.
#[derive(Debug, Default, Clone)]
pub struct LcLog(pub Vec<LcEntry>);

impl LcLog {
    /// Appends an entry at the current virtual time.
    pub fn add(&mut self, id: &'static str, text: String) {
        timeline::emit("lclog", format!("{id} {text}"));
        self.0.push(LcEntry {
            at: timeline::now(),
            id,
            text,
        });
    }

    /// How many entries carry `id`.
    pub fn count(&self, id: &str) -> usize {
        self.0.iter().filter(|e| e.id == id).count()
    }
}

/// What the BMC has seen, for tests to assert on.
#[derive(Debug, Default)]
pub struct BmcState {
    /// The Lifecycle log.
    pub log: LcLog,
    /// Sessions started (WELCOMEs sent).
    pub session: u32,
    /// PINGs received.
    pub pings: u32,
    /// OS events received: (seq, id, text).
    pub events: Vec<(u32, String, String)>,
}

struct Conn {
    handle: SocketHandle,
    port: u16,
    responder: Option<Responder>,
}

/// The simulated BMC.
pub struct SimBmc {
    /// Firmware facts and behaviour; changes take effect on new connections.
    pub cfg: BmcConfig,
    /// What it has seen.
    pub state: BmcState,
    port: Port,
    iface: Interface,
    sockets: SocketSet<'static>,
    conns: Vec<Conn>,
    up: bool,
}

impl SimBmc {
    /// A BMC on `port`, up at `now`.
    pub fn new(cfg: BmcConfig, port: Port, now: Instant) -> Self {
        let mut iface = {
            let mut dev = PortDevice::new(&port);
            let mut icfg = IfaceConfig::new(HardwareAddress::Ethernet(EthernetAddress(cfg.mac)));
            icfg.random_seed = 0x6d6;
            Interface::new(icfg, &mut dev, now)
        };
        configure_addrs(&mut iface, &cfg);
        let mut bmc = SimBmc {
            cfg,
            state: BmcState::default(),
            port,
            iface,
            sockets: SocketSet::new(Vec::new()),
            conns: Vec::new(),
            up: true,
        };
        bmc.open_listeners();
        bmc
    }

    fn open_listeners(&mut self) {
        let mut ports = vec![self.cfg.plain_port];
        if self.cfg.tls {
            ports.push(self.cfg.tls_port);
        }
        for port in ports {
            for _ in 0..2 {
                let socket = tcp::Socket::new(
                    tcp::SocketBuffer::new(vec![0; 8192]),
                    tcp::SocketBuffer::new(vec![0; 8192]),
                );
                let handle = self.sockets.add(socket);
                self.conns.push(Conn {
                    handle,
                    port,
                    responder: None,
                });
            }
        }
    }

    /// Reboots: every connection is dropped without a word, the stack
    /// forgets its neighbours, and the BMC is down until `up_at`... here: at
    /// once (use [`SimBmc::set_up`] to keep it down).
    pub fn reboot(&mut self, now: Instant) {
        timeline::emit("bmc", "reboot");
        self.state.log.add("BMC0010", "BMC rebooted".into());
        let mut iface = {
            let mut dev = PortDevice::new(&self.port);
            let mut icfg =
                IfaceConfig::new(HardwareAddress::Ethernet(EthernetAddress(self.cfg.mac)));
            icfg.random_seed = 0x6d6 ^ now.total_micros() as u64;
            Interface::new(icfg, &mut dev, now)
        };
        configure_addrs(&mut iface, &self.cfg);
        self.iface = iface;
        self.sockets = SocketSet::new(Vec::new());
        self.conns.clear();
        self.open_listeners();
    }

    /// Powers the BMC's network side off (`false`) or on.
    pub fn set_up(&mut self, up: bool) {
        self.up = up;
    }

    /// Applies address changes from `cfg` (e.g. IPv4 removed).
    pub fn reconfigure(&mut self) {
        configure_addrs(&mut self.iface, &self.cfg);
    }

    /// Runs the BMC's stack and responder at `now`.
    pub fn poll(&mut self, now: Instant) {
        if !self.up {
            // Powered off: frames to it are lost.
            while self.port.recv().is_some() {}
            return;
        }
        for _ in 0..64 {
            let mut dev = PortDevice::new(&self.port);
            self.iface.poll(now, &mut dev, &mut self.sockets);
            if !self.serve() {
                break;
            }
        }
    }

    /// When the BMC's stack next needs a poll.
    pub fn poll_at(&mut self, now: Instant) -> Option<Instant> {
        if !self.up {
            return None;
        }
        self.iface.poll_at(now, &self.sockets)
    }

    /// Moves bytes between sockets and responders; true if anything moved.
    fn serve(&mut self) -> bool {
        let mut moved = false;
        let mut listening = std::collections::HashSet::new();
        for conn in self.conns.iter_mut() {
            let socket = self.sockets.get_mut::<tcp::Socket>(conn.handle);
            match socket.state() {
                tcp::State::Listen => {
                    listening.insert(conn.port);
                }
                tcp::State::Closed => {
                    conn.responder = None;
                }
                _ => {}
            }
        }
        for conn in self.conns.iter_mut() {
            let socket = self.sockets.get_mut::<tcp::Socket>(conn.handle);
            if socket.state() == tcp::State::Closed && !listening.contains(&conn.port) {
                if socket.listen(conn.port).is_ok() {
                    listening.insert(conn.port);
                }
                continue;
            }
            if socket.is_active()
                && conn.responder.is_none()
                && socket.state() != tcp::State::Listen
            {
                let tls = conn.port == self.cfg.tls_port;
                conn.responder = Some(Responder::new(tls));
            }
            let Some(responder) = conn.responder.as_mut() else {
                continue;
            };
            if conn.port == self.cfg.tls_port {
                // The TLS transport is wired in by the TLS layer; until then a
                // connection to the TLS port is refused by closing it.
                socket.abort();
                conn.responder = None;
                moved = true;
                continue;
            }
            let mut out = Vec::new();
            let mut next = Next::Open;
            while socket.can_recv() {
                let mut buf = [0u8; 2048];
                let n = socket.recv_slice(&mut buf).unwrap_or(0);
                if n == 0 {
                    break;
                }
                moved = true;
                next = responder.on_bytes(&buf[..n], &self.cfg, &mut self.state, &mut out);
                if next == Next::Close {
                    break;
                }
            }
            if !out.is_empty() {
                moved = true;
                let _ = socket.send_slice(&out);
            }
            if next == Next::Close {
                socket.close();
                conn.responder = None;
                moved = true;
            } else if !socket.may_recv() && socket.state() == tcp::State::CloseWait {
                socket.close();
                moved = true;
            }
        }
        moved
    }
}

fn configure_addrs(iface: &mut Interface, cfg: &BmcConfig) {
    iface.update_ip_addrs(|addrs| {
        addrs.clear();
        if let Some(v4) = cfg.ipv4 {
            let _ = addrs.push(IpCidr::new(IpAddress::Ipv4(v4), 16));
        }
        if let Some(v6) = cfg.ipv6 {
            let _ = addrs.push(IpCidr::new(IpAddress::Ipv6(v6), 64));
        }
    });
}
