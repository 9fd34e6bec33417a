//! The simulated BMC: its own smoltcp stack on the segment, the channel
//! protocol responder on the plain port and, with [`BmcConfig::tls`], inside
//! a rustls TLS 1.3 server on the TLS port ([`crate::bmc_tls`]), and a
//! Lifecycle log.
//!
//! Lifecycle-log IDs: BMC0001 session started (WELCOME), BMC0002 agent said
//! BYE, BMC0003 protocol error or unexpected message, BMC0010 reboot,
//! BMC0020 agent enrolled, BMC0021 HELLO from a client certificate that is
//! not enrolled, BMC0022 ENROLL with a wrong or used credential, BMC0023
//! TLS handshake failed, BMC0024 TLS error after the handshake, BMC0030
//! firmware upgraded to TLS, ISM0050 plain HELLO on TLS-required firmware,
//! OSE0001 an OS event from the agent.
//!
//! Each port has two sockets: a third simultaneous connection to one port
//! is refused until one closes (a peer that vanishes without FIN or RST
//! keeps its socket).

use smoltcp::iface::{Config as IfaceConfig, Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{
    EthernetAddress, HardwareAddress, IpAddress, IpCidr, Ipv4Address, Ipv6Address,
};

use crate::bmc_tls::{server_config, TlsIdentity, TlsSession, TlsTamper};
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
    /// Raw bytes sent right after WELCOME (malformed-input tests); inside
    /// TLS on the TLS port.
    pub inject_after_welcome: Option<Vec<u8>>,
    /// The one-time enrollment account's name (DESIGN §5a).
    pub account: String,
    /// The one-time account's secret: ENROLL's proof is keyed with it; a
    /// successful enrollment retires it (see [`BmcState::used_credentials`]).
    /// The bootstrap channel publishes it.
    pub credential: String,
    /// The bootstrap channel publishes the certificate fingerprint too
    /// (optional in DSP0270 terms; off: enrollment relies on the proofs).
    pub publish_fingerprint: bool,
    /// Misbehaviour around ENROLL, the first [`BmcState::faults_left`] times.
    pub enroll_fault: Option<EnrollFault>,
    /// The TLS port speaks TLS 1.2 only (a peer the agent must refuse, T4).
    pub tls12_only: bool,
    /// The TLS port presents another certificate than the one the bootstrap
    /// channel publishes ([`SimBmc::fingerprint`]): a man in the middle.
    pub impostor_cert: bool,
    /// Mangles the BMC's TLS byte stream (truncated or garbage records).
    pub tls_tamper: Option<TlsTamper>,
    /// The TLS port never speaks TLS: it sends one byte of a plausible
    /// ServerHello record every this often, forever (a peer holding the
    /// agent's handshake open).
    pub tls_trickle: Option<smoltcp::time::Duration>,
    /// Never answers HELLO (or ENROLL) with WELCOME: the agent waits with
    /// the handshake done and no session.
    pub withhold_welcome: bool,
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
            account: "bmclink-enroll".into(),
            credential: "one-time-credential".into(),
            publish_fingerprint: true,
            enroll_fault: None,
            tls12_only: false,
            impostor_cert: false,
            tls_tamper: None,
            tls_trickle: None,
            withhold_welcome: false,
        }
    }
}

/// How the BMC (or whoever answers on its port) misbehaves around ENROLL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrollFault {
    /// Drops the connection on ENROLL, before binding anything.
    DropBeforeBind,
    /// Binds, retires the account, then drops the connection before
    /// ENROLLED (the agent's retry must be answered idempotently).
    DropAfterBind,
    /// Sends an ENROLLED whose proof is wrong (a man in the middle
    /// pretending to have checked the proof).
    ForgeEnrolled,
    /// Sends WELCOME without ENROLLED.
    SkipEnrolled,
    /// Takes a repeated ENROLL as idempotent when its proof equals one
    /// already bound, whatever client certificate now sends it (the
    /// idempotency keyed on the proof instead of the certificates): a
    /// replayed ENROLL enrolls the replayer.
    AcceptReplayedProof,
}

/// Bad proofs after which the BMC retires an account (§5a allows it).
pub const MAX_BAD_PROOFS: u32 = 3;

/// One enrollment the BMC made: the account, its secret and the two
/// certificates it bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The account.
    pub account: String,
    /// Its secret.
    pub secret: String,
    /// The client certificate's SHA-256.
    pub client: [u8; 32],
    /// The BMC certificate's SHA-256, as the BMC knows its own.
    pub server: [u8; 32],
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
    /// SHA-256 fingerprints of the enrolled client certificates.
    pub enrolled: Vec<[u8; 32]>,
    /// Enrollment secrets retired (a successful ENROLL, or too many bad
    /// proofs).
    pub used_credentials: Vec<String>,
    /// The enrollments made.
    pub bindings: Vec<Binding>,
    /// Bad ENROLL proofs seen.
    pub bad_proofs: u32,
    /// How many more times [`BmcConfig::enroll_fault`] strikes (default 0:
    /// set it with the fault).
    pub faults_left: u32,
    /// ENROLL messages received.
    pub enrolls: u32,
}

struct Conn {
    handle: SocketHandle,
    port: u16,
    responder: Option<Responder>,
    tls: Option<TlsSession>,
    /// [`BmcConfig::tls_trickle`]: when the next byte goes, and how many went.
    trickle: Option<(Instant, usize)>,
}

/// What a trickling TLS port sends, a byte at a time: a handshake record
/// header announcing a 16 KiB ServerHello, then its body.
const TRICKLE: [u8; 8] = [0x16, 0x03, 0x03, 0x40, 0x00, 0x02, 0x00, 0x3f];

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
    identity: TlsIdentity,
    impostor: TlsIdentity,
}

impl SimBmc {
    /// A BMC on `port`, up at `now`. Its TLS certificate (P-256,
    /// self-signed, made by the core's generator) and the impostor's are
    /// derived from `seed`, valid from the wall-clock time `unix`.
    pub fn new(cfg: BmcConfig, port: Port, now: Instant, seed: u64, unix: u64) -> Self {
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
            identity: TlsIdentity::generate(seed ^ 0xb3c, "bmc", unix, true),
            impostor: TlsIdentity::generate(seed ^ 0x1d05, "bmc", unix, true),
        };
        bmc.open_listeners();
        bmc
    }

    /// The certificate the BMC publishes over the bootstrap channel (DER).
    pub fn cert_der(&self) -> &[u8] {
        &self.identity.der
    }

    /// SHA-256 of [`SimBmc::cert_der`]: the fingerprint the agent pins.
    pub fn fingerprint(&self) -> [u8; 32] {
        self.identity.fingerprint()
    }

    /// The certificate the TLS port presents: the published one, or the
    /// impostor's with [`BmcConfig::impostor_cert`].
    pub fn presented_cert_der(&self) -> &[u8] {
        if self.cfg.impostor_cert {
            &self.impostor.der
        } else {
            &self.identity.der
        }
    }

    /// The enrollment credential while it is unused (what the bootstrap
    /// channel hands out), `None` once consumed.
    pub fn unused_credential(&self) -> Option<&str> {
        let cred = self.cfg.credential.as_str();
        (!self.state.used_credentials.iter().any(|c| c == cred)).then_some(cred)
    }

    /// Issues a new one-time credential (an administrator re-enabling
    /// enrollment for a reinstall).
    pub fn issue_credential(&mut self, credential: impl Into<String>) {
        self.cfg.credential = credential.into();
    }

    /// Upgrades the firmware to `firmware` with TLS on the USBNIC (T7) and
    /// restarts the BMC like a real update does: every connection drops and
    /// the TLS port starts listening.
    pub fn upgrade_firmware(&mut self, firmware: [u8; 4], now: Instant) {
        let [a, b, c, d] = firmware;
        self.state.log.add(
            "BMC0030",
            format!("firmware updated to {a}.{b}.{c}.{d} with TLS on the USBNIC"),
        );
        self.cfg.firmware = firmware;
        self.cfg.tls = true;
        self.reboot(now);
    }

    /// Listening sockets for the plain port, and for the TLS port while
    /// [`BmcConfig::tls`] holds (without TLS nothing listens there, so a SYN
    /// gets a RST).
    fn open_listeners(&mut self) {
        self.add_listeners(self.cfg.plain_port);
        if self.cfg.tls {
            self.add_listeners(self.cfg.tls_port);
        }
    }

    fn add_listeners(&mut self, port: u16) {
        for _ in 0..2 {
            let socket = tcp::Socket::new(
                tcp::SocketBuffer::new(vec![0; 32 * 1024]),
                tcp::SocketBuffer::new(vec![0; 32 * 1024]),
            );
            let handle = self.sockets.add(socket);
            self.conns.push(Conn {
                trickle: None,
                handle,
                port,
                responder: None,
                tls: None,
            });
        }
    }

    /// Follows [`BmcConfig::tls`] being flipped by a test.
    fn sync_tls_listeners(&mut self, now: Instant) {
        let tls_port = self.cfg.tls_port;
        let has = self.conns.iter().any(|c| c.port == tls_port);
        if self.cfg.tls && !has {
            self.add_listeners(tls_port);
        } else if !self.cfg.tls && has {
            for conn in self.conns.iter().filter(|c| c.port == tls_port) {
                self.sockets.get_mut::<tcp::Socket>(conn.handle).abort();
            }
            // Let the RSTs go out before the sockets are removed.
            let mut dev = PortDevice::new(&self.port);
            self.iface.poll(now, &mut dev, &mut self.sockets);
            for conn in self.conns.iter().filter(|c| c.port == tls_port) {
                self.sockets.remove(conn.handle);
            }
            self.conns.retain(|c| c.port != tls_port);
        }
    }

    /// Reboots: every connection is dropped without a word, the stack
    /// forgets its neighbours, and the BMC is down until `up_at`... here: at
    /// once (use [`SimBmc::set_up`] to keep it down).
    ///
    /// Like a real BMC it keeps its TLS identity (key and certificate, so a
    /// pin on [`SimBmc::fingerprint`] still holds) and its enrollments
    /// ([`BmcState`] survives); to come back presenting another certificate,
    /// set [`BmcConfig::impostor_cert`] before the reboot.
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
        self.sync_tls_listeners(now);
        for _ in 0..64 {
            let mut dev = PortDevice::new(&self.port);
            self.iface.poll(now, &mut dev, &mut self.sockets);
            if !self.serve(now) {
                break;
            }
        }
    }

    /// When the BMC's stack next needs a poll.
    pub fn poll_at(&mut self, now: Instant) -> Option<Instant> {
        if !self.up {
            return None;
        }
        let trickle = self
            .conns
            .iter()
            .filter_map(|c| c.trickle.map(|t| t.0))
            .min();
        match (self.iface.poll_at(now, &self.sockets), trickle) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Moves bytes between sockets and responders; true if anything moved.
    fn serve(&mut self, now: Instant) -> bool {
        let mut moved = false;
        // Two ports at most: a list beats hashing on every call (the soak
        // spent 11% of its time in SipHash here).
        let mut listening: Vec<u16> = Vec::with_capacity(4);
        for conn in self.conns.iter_mut() {
            let socket = self.sockets.get_mut::<tcp::Socket>(conn.handle);
            match socket.state() {
                tcp::State::Listen if !listening.contains(&conn.port) => {
                    listening.push(conn.port);
                }
                tcp::State::Closed => {
                    conn.responder = None;
                    conn.trickle = None;
                }
                _ => {}
            }
        }
        for conn in self.conns.iter_mut() {
            let socket = self.sockets.get_mut::<tcp::Socket>(conn.handle);
            if socket.state() == tcp::State::Closed && !listening.contains(&conn.port) {
                if socket.listen(conn.port).is_ok() {
                    listening.push(conn.port);
                }
                continue;
            }
            if socket.is_active()
                && conn.responder.is_none()
                && socket.state() != tcp::State::Listen
            {
                let tls = conn.port == self.cfg.tls_port;
                conn.trickle = None;
                if let (true, Some(_)) = (tls, self.cfg.tls_trickle) {
                    timeline::emit("bmc", "TLS port accepted: trickling one byte at a time");
                    conn.trickle = Some((now, 0));
                    conn.responder = Some(Responder::new(true));
                    continue;
                }
                // The real BMC's certificate: behind a man in the middle
                // (`impostor_cert`) the BMC still sees its own.
                conn.responder = Some(Responder::new(tls).with_server(self.identity.fingerprint()));
                conn.tls = None;
                if tls {
                    let identity = if self.cfg.impostor_cert {
                        &self.impostor
                    } else {
                        &self.identity
                    };
                    conn.tls = tls_session(identity, &self.cfg);
                    if conn.tls.is_none() {
                        socket.abort();
                        conn.responder = None;
                        moved = true;
                        continue;
                    }
                }
            }
            let Some(responder) = conn.responder.as_mut() else {
                continue;
            };
            if let (Some((at, sent)), Some(every)) = (conn.trickle, self.cfg.tls_trickle) {
                while socket.can_recv() {
                    let _ = socket.recv(|b| (b.len(), ()));
                }
                if now >= at && socket.may_send() {
                    let byte = TRICKLE.get(sent).copied().unwrap_or(0);
                    if socket.send_slice(&[byte]).is_ok() {
                        timeline::emit("bmc", format!("-> (one trickled byte, #{})", sent + 1));
                        conn.trickle = Some((now + every, sent + 1));
                        moved = true;
                    }
                }
                continue;
            }
            let mut out = Vec::new();
            let mut next = Next::Open;
            let mut input = Vec::new();
            while socket.can_recv() {
                let mut buf = [0u8; 4096];
                let n = socket.recv_slice(&mut buf).unwrap_or(0);
                if n == 0 {
                    break;
                }
                input.extend_from_slice(&buf[..n]);
            }
            if !input.is_empty() {
                moved = true;
            }
            match conn.tls.as_mut() {
                Some(session) => {
                    if !input.is_empty() {
                        next = session.on_bytes(
                            &input,
                            responder,
                            &self.cfg,
                            &mut self.state,
                            &mut out,
                        );
                    }
                }
                None => {
                    if !input.is_empty() {
                        next = responder.on_bytes(&input, &self.cfg, &mut self.state, &mut out);
                    }
                }
            }
            if !out.is_empty() {
                moved = true;
                match socket.send_slice(&out) {
                    Ok(n) if n == out.len() => {}
                    sent => timeline::emit(
                        "bmc",
                        format!("send buffer full: {sent:?} of {} bytes sent", out.len()),
                    ),
                }
            }
            if next == Next::Close {
                socket.close();
                conn.responder = None;
                conn.tls = None;
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

/// A TLS session presenting `identity` as `cfg` says (TLS 1.2 only,
/// tampered), or `None` when rustls refuses the configuration.
fn tls_session(identity: &TlsIdentity, cfg: &BmcConfig) -> Option<TlsSession> {
    let made = server_config(identity, cfg.tls12_only)
        .and_then(|config| TlsSession::new(config, cfg.tls_tamper.clone()));
    match made {
        Ok(session) => Some(session),
        Err(e) => {
            timeline::emit("bmc", format!("cannot start a TLS session: {e}"));
            None
        }
    }
}
