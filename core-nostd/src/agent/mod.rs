//! The agent: drives smoltcp, the address claims, the policy and the session
//! over a [`Platform`](crate::Platform).
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
pub mod enroll;
pub mod events;
pub mod identity;
pub mod link;
pub mod net;
pub mod per_family;
pub mod serving;
pub mod session;
pub mod status;
pub mod tls_channel;

use core::cell::RefCell;
use core::mem::MaybeUninit;
use core::ptr::addr_of_mut;

use smoltcp::iface::{self, Interface, SocketHandle, SocketSet, SocketStorage};
use smoltcp::socket::tcp;
use smoltcp::time::Duration;
use smoltcp::wire::{EthernetAddress, HardwareAddress};

use crate::audit::{AuditEvent, SessionEvent};
use crate::config::Config;
use crate::link::device::{Device, FrameBuf};
use crate::platform::Wake;
use crate::policy::{Input, SessionEnd as PolicyEnd};
use crate::time::SaturatingAdd;
use crate::types::{Channel, Family};
use crate::Platform;

use self::channel::{ChannelError, Plain};
use self::control::Control;
use self::drbg::HashDrbg;
use self::link::Link;
use self::net::Net;
use self::per_family::PerFamily;
use self::session::{Established, Heartbeat, Reader, Reply, SessionEnd};
pub use self::status::Status;
use self::tls_channel::{Dropped, Flags, NetTransport, Tick, TlsChannel};
use crate::audit::TlsEvent;
use crate::cert::{Fingerprint, ShortFingerprint};
use crate::platform::{Retire, Retired, ACCOUNT_NAME_MAX, ACCOUNT_SECRET_MAX};
use crate::policy::Trust;
use crate::proto::{Caps, Enroll, Message, RejectCode};
use crate::tls::{PinnedTls, ServerAuth, TlsBuffers, TlsError};

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
            addr_of_mut!((*a).heartbeat).write(Heartbeat::default());
            addr_of_mut!((*a).reader).write(Reader::new());
            addr_of_mut!((*a).tls).write(tls);
            Ok(slot.assume_init_mut())
        }
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

    /// Runs one session over the connected socket of `family`, with the
    /// trust decided when that connection was started.
    fn session<P: Platform>(&mut self, p: &mut P, family: Family) -> SessionEnd {
        let this = &mut *self;
        let trust = this.ctl.trust[family].take();
        let net = RefCell::new(net!(this, &mut *p));
        this.reader.reset();
        let end = match trust {
            Some(Trust::Plain) => run_plain_session(
                &net,
                &this.cfg,
                &mut this.ctl,
                family,
                &mut this.heartbeat,
                &mut this.reader,
            ),
            Some(trust) => run_tls_session(
                &net,
                &this.cfg,
                &mut this.ctl,
                family,
                &mut this.heartbeat,
                &mut this.reader,
                this.tls,
                trust,
            ),
            // No trust, no session (a connection without a decision cannot
            // happen; refused rather than assumed).
            None => SessionEnd::Untrusted,
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
    ctl.session_started();
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
        // §5a: caps are cached only from an authenticated session or the
        // bootstrap channel; a plain WELCOME's are anyone's word.
        let (caps, authenticated) = match channel {
            Channel::Tls13 => (Caps::from_bits(est.caps).known(), true),
            Channel::Plain => match n.p.bmc_facts() {
                Some(f) => (bootstrap_caps(&f), true),
                None => (Caps::from_bits(est.caps).known(), false),
            },
        };
        ctl.report(Input::Welcome {
            family,
            firmware: est.firmware,
            caps: caps.bits(),
            authenticated,
        });
        ctl.run_policy(cfg, &mut n);
        ctl.status.session_up(now, family, channel, est);
        n.p.status(&ctl.status);
    }
}

/// The capabilities the bootstrap channel vouches for.
fn bootstrap_caps(f: &crate::platform::BmcFacts) -> Caps {
    let mut caps = Caps::empty();
    if f.tls {
        caps = caps.union(Caps::TLS);
    }
    if f.ipv6_usbnic {
        caps = caps.union(Caps::IPV6_USBNIC);
    }
    caps
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
    let hello = session::hello(cfg, family, false, false);
    let est = match session::greet(net, &mut ch, reader, cfg, ctl, family, &hello) {
        Ok(est) => est,
        Err(end) => return session::leave_unwelcomed(&mut ch, end),
    };
    started(net, cfg, ctl, family, Channel::Plain, &est);
    if Caps::from_bits(est.caps).tls() {
        // T7: the firmware gained TLS since this host last enrolled (or
        // never did). WELCOME's caps are only a hint (unauthenticated): if
        // the host-local bootstrap channel now says TLS too, leave the plain
        // channel so the next connection (decided afresh) enrolls.
        let upgrade = channel::borrow(net)
            .ok()
            .and_then(|mut n| n.p.bmc_facts())
            .is_some_and(|f| f.tls);
        if upgrade {
            info!("the BMC now offers TLS: leaving the plain channel to enroll");
            let _ = session::send_message(&mut ch, &Message::Bye(session::bye::MOVING));
            return SessionEnd::Upgrade;
        }
    }
    session::serve(net, &mut ch, reader, cfg, ctl, family, hb)
}

/// The control loop as the TLS transport runs it while it waits (the
/// handshake, DESIGN item 4): the policy, watchdogs, claims and host facts
/// go on; the session loop holds the control itself, and then this skips.
struct Ticker<'m> {
    ctl: RefCell<&'m mut Control>,
    cfg: &'m Config,
    family: Family,
}

impl<P: Platform> Tick<P> for Ticker<'_> {
    fn tick(
        &self,
        net: &mut Net<'_, '_, P, Link>,
    ) -> Result<Option<smoltcp::time::Instant>, Dropped> {
        let Ok(mut ctl) = self.ctl.try_borrow_mut() else {
            return Ok(None);
        };
        ctl.tick(self.cfg, net);
        if ctl.disconnect[self.family] || !ctl.connected[self.family] {
            return Err(Dropped);
        }
        Ok(ctl.poll_at())
    }
}

#[allow(clippy::too_many_arguments)]
fn run_tls_session<'c, 'n, 'x, P: Platform>(
    net: &'c RefCell<Net<'n, 'x, P, Link>>,
    cfg: &'c Config,
    ctl: &'c mut Control,
    family: Family,
    hb: &mut Heartbeat,
    reader: &mut Reader,
    bufs: &'c mut TlsBuffers,
    trust: Trust,
) -> SessionEnd {
    let Some(id) = ctl.identity.take() else {
        return SessionEnd::Channel(ChannelError::Tls);
    };
    let end = tls_session(net, cfg, ctl, family, hb, reader, bufs, trust, &id);
    ctl.identity = Some(id);
    end
}

#[allow(clippy::too_many_arguments)]
fn tls_session<'c, 'n, 'x, P: Platform>(
    net: &'c RefCell<Net<'n, 'x, P, Link>>,
    cfg: &'c Config,
    ctl: &'c mut Control,
    family: Family,
    hb: &mut Heartbeat,
    reader: &mut Reader,
    bufs: &'c mut TlsBuffers,
    trust: Trust,
    id: &identity::ClientIdentity,
) -> SessionEnd {
    let client_fp = id.fingerprint();
    let client = ShortFingerprint::of(&client_fp);
    let auth = match trust {
        Trust::Pinned { pin } => ServerAuth::Pinned(pin),
        Trust::Expected { fingerprint } => ServerAuth::Pinned(fingerprint),
        // §5a: with a fingerprint from the administrator or the bootstrap
        // channel, ENROLL goes only to that certificate.
        Trust::Enroll {
            expected: Some(fingerprint),
        } => ServerAuth::Pinned(fingerprint),
        Trust::Enroll { expected: None } | Trust::Probe => ServerAuth::Enrolling,
        Trust::Plain => return SessionEnd::Untrusted,
    };
    let flags = Flags::default();
    let mut rng = match channel::borrow(net) {
        Ok(mut n) => {
            let now = n.now();
            flags
                .deadline
                .set(Some(now.saturating_add(cfg.handshake_timeout)));
            HashDrbg::from_rng(n.p)
        }
        Err(e) => return SessionEnd::Channel(e),
    };
    let ticker = Ticker {
        ctl: RefCell::new(ctl),
        cfg,
        family,
    };
    let transport = NetTransport::new(net, family, &flags).with_tick(&ticker);
    let opened = PinnedTls::open_as(
        transport,
        bufs,
        auth,
        id.tls(),
        &mut rng,
        crate::tls::DEFAULT_BACKEND,
    );
    flags.deadline.set(None);
    let tls = match opened {
        Ok(tls) => tls,
        Err(e) => {
            if flags.stopped.get() {
                return SessionEnd::Stopped;
            }
            if flags.dropped.get() {
                return SessionEnd::Moving;
            }
            let event = if flags.timed_out.get() {
                TlsEvent::HandshakeTimedOut {
                    secs: cfg.handshake_timeout.secs(),
                }
            } else {
                TlsEvent::handshake_failed(e)
            };
            audit(net, AuditEvent::Tls(event));
            // Audited with its cause: no "connection failed" beside it.
            return SessionEnd::Untrusted;
        }
    };
    let bmc_fp = tls.server_fingerprint();
    let mut ch = TlsChannel::new(tls, &flags);
    let mut ctl = ticker.ctl.borrow_mut();
    let ctl: &mut Control = &mut ctl;
    if trust == Trust::Probe {
        // Nothing vouches for this certificate: name it for the
        // administrator, send nothing, run nothing.
        audit(
            net,
            AuditEvent::Tls(TlsEvent::UntrustedBmc {
                presented: Fingerprint(bmc_fp),
            }),
        );
        ch.close();
        return SessionEnd::Untrusted;
    }
    let enrolling = matches!(trust, Trust::Enroll { .. });
    if let Err(end) = session::send_message(&mut ch, &session::hello(cfg, family, true, enrolling))
    {
        return end;
    }
    info!("HELLO sent over {} (enrolling: {})", family, enrolling);
    let deadline = match session::welcome_deadline(net, cfg) {
        Ok(d) => d,
        Err(end) => return end,
    };
    if enrolling {
        if let Err(end) = enroll(
            net, &mut ch, reader, cfg, ctl, family, deadline, bmc_fp, client_fp,
        ) {
            return leave_tls_unwelcomed(ch, end);
        }
    }
    let est = match session::await_reply(net, &mut ch, reader, cfg, ctl, family, deadline) {
        Ok(Reply::Welcome(est)) => est,
        Ok(Reply::Enrolled(_)) => {
            return SessionEnd::Protocol(crate::proto::ProtoError::Unexpected(u8::from(
                crate::proto::MessageType::Enrolled,
            )))
        }
        Err(end) => {
            let end = tls_failure(net, &ch, end, trust, client);
            return leave_tls_unwelcomed(ch, end);
        }
    };
    if let Trust::Expected { fingerprint } = trust {
        // The administrator's (or bootstrap's) fingerprint authenticated
        // the BMC and the BMC knows this client certificate: a pin.
        if let Ok(mut n) = channel::borrow(net) {
            identity::save_pin(n.p, fingerprint);
        }
    }
    started(net, cfg, ctl, family, Channel::Tls13, &est);
    let end = session::serve(net, &mut ch, reader, cfg, ctl, family, hb);
    let end = tls_failure(net, &ch, end, Trust::Pinned { pin: bmc_fp }, client);
    close_if_leaving(ch, end)
}

/// DESIGN §5a, the agent's side after HELLO(enrolling): ENROLL with the
/// proof, then ENROLLED checked in constant time before anything is pinned.
/// The secret is retired only on success or REJECT bad-credential.
#[allow(clippy::too_many_arguments)]
fn enroll<P: Platform>(
    net: &RefCell<Net<'_, '_, P, Link>>,
    ch: &mut impl channel::ChannelIo,
    reader: &mut Reader,
    cfg: &Config,
    ctl: &mut Control,
    family: Family,
    deadline: smoltcp::time::Instant,
    bmc_fp: [u8; 32],
    client_fp: [u8; 32],
) -> Result<(), SessionEnd> {
    let mut name = [0u8; ACCOUNT_NAME_MAX];
    let mut secret = [0u8; ACCOUNT_SECRET_MAX];
    let lens = channel::borrow(net)
        .map_err(SessionEnd::Channel)?
        .p
        .enrollment_account(&mut name, &mut secret);
    let Some((name_len, secret_len)) = lens else {
        secret.fill(0);
        audit(net, AuditEvent::Tls(TlsEvent::NoAccount {}));
        return Err(SessionEnd::Untrusted);
    };
    let key = secret.get(..secret_len).unwrap_or(&[]);
    let proof = enroll::host_proof(key, &bmc_fp, &client_fp);
    let expected = enroll::bmc_proof(key, &bmc_fp, &client_fp);
    secret.fill(0);
    let account = name
        .get(..name_len)
        .and_then(|n| core::str::from_utf8(n).ok())
        .unwrap_or("");
    session::send_message(ch, &Message::Enroll(Enroll { account, proof }))?;
    info!("ENROLL sent for account {}", account);
    let bmc = ShortFingerprint::of(&bmc_fp);
    match session::await_reply(net, ch, reader, cfg, ctl, family, deadline) {
        Ok(Reply::Enrolled(got)) if enroll::proofs_equal(&got, &expected) => {
            if let Ok(mut n) = channel::borrow(net) {
                identity::save_pin(n.p, bmc_fp);
                let retired = n.p.retire_account(Retire::Enrolled);
                let now = n.now();
                n.p.record(
                    now,
                    &AuditEvent::Tls(TlsEvent::Enrolled {
                        bmc,
                        client: ShortFingerprint::of(&client_fp),
                    }),
                );
                let closed = match retired {
                    Retired::Erased => None,
                    Retired::BootstrapDisabled => Some(TlsEvent::BootstrapDisabled {}),
                    Retired::BootstrapNotDisabled => Some(TlsEvent::BootstrapNotDisabled {}),
                };
                if let Some(e) = closed {
                    n.p.record(now, &AuditEvent::Tls(e));
                }
            }
            info!("ENROLLED checked: BMC certificate pinned");
            Ok(())
        }
        // A wrong proof, or WELCOME without one: whoever answered does not
        // know the secret for these two certificates.
        Ok(Reply::Enrolled(_) | Reply::Welcome(_)) | Err(SessionEnd::Protocol(_)) => {
            audit(net, AuditEvent::Tls(TlsEvent::EnrollmentUnproven { bmc }));
            Err(SessionEnd::Untrusted)
        }
        Err(SessionEnd::Rejected(code)) => {
            audit(net, AuditEvent::Tls(TlsEvent::EnrollmentRejected { code }));
            if code == u8::from(RejectCode::BadCredential) {
                if let Ok(mut n) = channel::borrow(net) {
                    n.p.retire_account(Retire::Refused);
                }
            }
            Err(SessionEnd::Rejected(code))
        }
        Err(end @ (SessionEnd::Stopped | SessionEnd::Moving)) => Err(end),
        Err(end) => {
            audit(net, AuditEvent::Tls(TlsEvent::EnrollmentInterrupted {}));
            Err(end)
        }
    }
}

/// [`session::leave_unwelcomed`] over TLS: the BYE of a stop or a move,
/// then close_notify.
fn leave_tls_unwelcomed<P: Platform>(
    mut ch: TlsChannel<'_, '_, '_, P>,
    end: SessionEnd,
) -> SessionEnd {
    let end = session::leave_unwelcomed(&mut ch, end);
    close_if_leaving(ch, end)
}

/// close_notify after the BYE of a stop or a move (the peer's ends and
/// failures leave nothing to close politely).
fn close_if_leaving<P: Platform>(ch: TlsChannel<'_, '_, '_, P>, end: SessionEnd) -> SessionEnd {
    if matches!(end, SessionEnd::Stopped | SessionEnd::Moving) {
        ch.close();
    }
    end
}

/// Audits why a TLS session failed, when TLS is the reason. A TLS failure
/// so audited (BL40xx) comes back as [`SessionEnd::Untrusted`]: the
/// connection did not fail, the agent refused it, and a BL2006 beside the
/// reason would say otherwise.
fn tls_failure<P: Platform>(
    net: &RefCell<Net<'_, '_, P, Link>>,
    ch: &TlsChannel<'_, '_, '_, P>,
    end: SessionEnd,
    trust: Trust,
    client: ShortFingerprint,
) -> SessionEnd {
    let not_enrolled = u8::from(RejectCode::NotEnrolled);
    let event = match (end, ch.error) {
        (SessionEnd::Rejected(code), _) if code == not_enrolled => match trust {
            // Never enrolled and nothing to enroll with.
            Trust::Expected { .. } => TlsEvent::NoAccount {},
            _ => TlsEvent::ClientCertRefused { client },
        },
        (SessionEnd::Channel(ChannelError::Tls), Some(TlsError::AbortedAfterHandshake)) => {
            TlsEvent::ClientCertRefused { client }
        }
        (SessionEnd::Channel(ChannelError::Tls), Some(TlsError::UnexpectedRecord)) => {
            TlsEvent::ForbiddenRecord {}
        }
        // A reset or close mid-session is a lost connection (BL2006, by
        // the caller), not a TLS failure.
        (SessionEnd::Channel(ChannelError::Tls), Some(TlsError::Io(_) | TlsError::Closed)) => {
            return end
        }
        (SessionEnd::Channel(ChannelError::Tls), Some(e)) => TlsEvent::handshake_failed(e),
        _ => return end,
    };
    audit(net, AuditEvent::Tls(event));
    match end {
        SessionEnd::Channel(_) => SessionEnd::Untrusted,
        other => other,
    }
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
    let port = ctl.ports[family];
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
            SessionEvent::WelcomeTimedOut { family, port },
            Some(PolicyEnd::PeerDead),
        ),
        SessionEnd::Channel(_) | SessionEnd::Untrusted => (
            SessionEvent::ConnectFailed { family, port },
            Some(PolicyEnd::Reset),
        ),
    };
    match end {
        SessionEnd::Protocol(e) => error!("closing the connection: protocol error: {}", e),
        other => info!("session ended: {:?}", other),
    }
    // An untrusted peer, or a TLS failure, was audited with the reason
    // already (BL40xx); a "connection failed" beside it would blur it.
    // A stop or a move before WELCOME ends no session: no BL2002.
    let no_session = ctl.status.family != Some(family)
        && matches!(end, SessionEnd::Stopped | SessionEnd::Moving);
    if end != SessionEnd::Untrusted && !no_session {
        net.p.record(now, &AuditEvent::Session(event));
    }
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
    if family == Family::V4 && ctl.release_v4 {
        ctl.release_ipv4(net);
    }
    net.p.status(&ctl.status);
}
