//! A BMC server on kernel sockets: the simulated BMC's protocol side
//! ([`Responder`]) behind a std `TcpListener`, for end-to-end tests where
//! the Linux kernel plays the BMC's network stack (a TAP device's kernel
//! side in a network namespace). The plain channel, or TLS 1.3 through the
//! simulated BMC's rustls server ([`crate::bmc_tls`]).
//!
//! Every connection runs on its own thread; the Lifecycle log, the session
//! counter and the PING count are shared in one [`BmcState`], and every
//! timeline line the responder writes is kept (and echoed to stdout when
//! asked) with the real time since the server started.
//!
//! [`Mutation`]s are BMCs with one known fault each: every switch breaks
//! one rule of DESIGN §4/§5/§5a, so a conformance rig (`bmclink-conform`)
//! can be proven to catch exactly that rule. Without a mutation the server
//! behaves as it always did.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant as StdInstant;

use bmclink_core::cert;
use bmclink_core::proto::{Message, Welcome, MAX_LEN, PROTO_VERSION};
use smoltcp::time::Instant;

use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme};

use crate::bmc::{BmcConfig, BmcState, EnrollFault};
use crate::bmc_tls::{ring_provider, SelfSignedClientVerifier, TlsIdentity, TlsSession};
use crate::responder::{Next, Responder};
use crate::timeline;

/// A BMC with one known fault: each breaks one rule (the rig that tests
/// BMCs must catch exactly the checks for that rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mutation {
    /// §4 T6: a plain HELLO on TLS-required firmware gets WELCOME.
    PlainHelloAccepted,
    /// §4 T4: the TLS port also speaks TLS 1.2 (use [`mutant_server_config`]).
    AcceptTls12,
    /// §4 T1: the TLS port lets a client without a certificate finish the
    /// handshake (use [`mutant_server_config`]).
    NoClientCertRequired,
    /// §5a: an ENROLL whose proof is wrong gets WELCOME (nothing bound).
    AcceptBadProof,
    /// §5a: the one-time account is never retired.
    ReuseAccount,
    /// §5a: a good ENROLL gets WELCOME without ENROLLED.
    SkipEnrolled,
    /// §5a: ENROLLED carries a wrong proof.
    ForgeEnrolled,
    /// §5: an unknown certificate's HELLO gets WELCOME.
    WelcomeUnknownCert,
    /// §5: the BMC forgets enrolled certificates (a HELLO alone always
    /// gets REJECT not-enrolled; an idempotent ENROLL still works).
    ForgetEnrollment,
    /// §5 heartbeats: PING is never answered.
    IgnorePing,
    /// §5 events: the ACKs for EVENTs read together go out in reverse.
    AckOutOfOrder,
    /// §5 events: an EVENT whose seq was already stored is not ACKed again
    /// (an agent that lost the ACK retransmits forever).
    NoAckForRetransmit,
    /// §5: BYE is ignored (the connection stays open).
    IgnoreBye,
    /// §5: HELLO with an unknown protocol version gets WELCOME.
    AnswerUnknownVersion,
    /// §5 error policy: a frame of length 0 crashes the BMC (it stops
    /// accepting connections).
    CrashOnZeroLength,
    /// Robustness: one connection at a time (a slow client stalls all).
    Serial,
    /// Robustness: more than [`FLOOD_LIMIT`] connections open at once
    /// crash the BMC.
    FallOverOnFlood,
    /// §5 error policy: a frame that does not parse (bad length, unknown
    /// type, a body too short or too long, bad UTF-8) is dropped silently
    /// and the connection stays open, neither closed nor REJECTed.
    SkipMalformed,
    /// §5a: a replayed ENROLL (a proof already bound, sent from another
    /// client certificate) is taken as an idempotent retry and enrolls the
    /// replayer.
    AcceptReplay,
    /// §5a trust: the TLS port presents another certificate than the one
    /// published (the facts file's fingerprint), consistently: its proofs
    /// bind the certificate it presents (use [`mutant_server_config`]).
    PresentOtherCert,
}

/// Open connections at which [`Mutation::FallOverOnFlood`] falls over.
pub const FLOOD_LIMIT: usize = 20;

impl Mutation {
    /// Every mutation.
    pub const ALL: &'static [Mutation] = &[
        Mutation::PlainHelloAccepted,
        Mutation::AcceptTls12,
        Mutation::NoClientCertRequired,
        Mutation::AcceptBadProof,
        Mutation::ReuseAccount,
        Mutation::SkipEnrolled,
        Mutation::ForgeEnrolled,
        Mutation::WelcomeUnknownCert,
        Mutation::ForgetEnrollment,
        Mutation::IgnorePing,
        Mutation::AckOutOfOrder,
        Mutation::NoAckForRetransmit,
        Mutation::IgnoreBye,
        Mutation::AnswerUnknownVersion,
        Mutation::CrashOnZeroLength,
        Mutation::Serial,
        Mutation::FallOverOnFlood,
        Mutation::SkipMalformed,
        Mutation::AcceptReplay,
        Mutation::PresentOtherCert,
    ];

    /// Whether the fault sits between the plaintext and the responder
    /// (so the connection runs through [`MutantTls`] rather than
    /// [`TlsSession`]).
    fn filters(self) -> bool {
        matches!(
            self,
            Mutation::AcceptBadProof
                | Mutation::WelcomeUnknownCert
                | Mutation::AckOutOfOrder
                | Mutation::NoAckForRetransmit
                | Mutation::IgnoreBye
                | Mutation::AnswerUnknownVersion
                | Mutation::CrashOnZeroLength
                | Mutation::SkipMalformed
        )
    }

    /// The firmware configuration with this fault (the faults the
    /// responder already has switches for).
    fn config(self, mut cfg: BmcConfig, tls: bool) -> BmcConfig {
        match self {
            Mutation::PlainHelloAccepted if !tls => cfg.tls = false,
            Mutation::SkipEnrolled => cfg.enroll_fault = Some(EnrollFault::SkipEnrolled),
            Mutation::ForgeEnrolled => cfg.enroll_fault = Some(EnrollFault::ForgeEnrolled),
            Mutation::AcceptReplay => cfg.enroll_fault = Some(EnrollFault::AcceptReplayedProof),
            Mutation::IgnorePing => cfg.answer_ping = false,
            _ => {}
        }
        cfg
    }

    /// State faults, applied after every batch of bytes.
    fn after(self, state: &mut BmcState) {
        match self {
            Mutation::ReuseAccount => state.used_credentials.clear(),
            Mutation::ForgetEnrollment => state.enrolled.clear(),
            _ => {}
        }
    }
}

/// The rustls server configuration for `identity` with `mutation`'s
/// fault: TLS 1.2 as well as 1.3 ([`Mutation::AcceptTls12`]), or the client
/// certificate optional ([`Mutation::NoClientCertRequired`]); otherwise
/// the simulated BMC's own ([`crate::bmc_tls::server_config`]).
pub fn mutant_server_config(
    identity: &TlsIdentity,
    mutation: Option<Mutation>,
) -> Result<Arc<ServerConfig>, rustls::Error> {
    match mutation {
        Some(Mutation::AcceptTls12) => {
            let mut p = (*ring_provider(false)).clone();
            p.cipher_suites
                .extend(ring_provider(true).cipher_suites.iter().copied());
            let p = Arc::new(p);
            let config = ServerConfig::builder_with_provider(p.clone())
                .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
                .with_client_cert_verifier(Arc::new(SelfSignedClientVerifier::new(p)))
                .with_single_cert(identity.chain(), identity.private_key())?;
            Ok(Arc::new(config))
        }
        Some(Mutation::NoClientCertRequired) => {
            let p = ring_provider(false);
            let config = ServerConfig::builder_with_provider(p.clone())
                .with_protocol_versions(&[&rustls::version::TLS13])?
                .with_client_cert_verifier(Arc::new(OptionalClientCert(
                    SelfSignedClientVerifier::new(p),
                )))
                .with_single_cert(identity.chain(), identity.private_key())?;
            Ok(Arc::new(config))
        }
        Some(Mutation::PresentOtherCert) => crate::bmc_tls::server_config(&other_identity(), false),
        _ => crate::bmc_tls::server_config(identity, false),
    }
}

/// The certificate [`Mutation::PresentOtherCert`] presents: always the
/// same (fixed seed and validity, 2023-11-14 for ten years).
fn other_identity() -> TlsIdentity {
    TlsIdentity::generate(0x0bad_ce27, "idrac", 1_700_000_000, true)
}

/// [`SelfSignedClientVerifier`] with the certificate optional.
#[derive(Debug)]
struct OptionalClientCert(SelfSignedClientVerifier);

impl ClientCertVerifier for OptionalClientCert {
    fn client_auth_mandatory(&self) -> bool {
        false
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.0.verify_client_cert(end_entity, intermediates, now)
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// What the server has seen, shared with the test.
#[derive(Debug, Default)]
pub struct Seen {
    /// The BMC's state: Lifecycle log, sessions, PINGs.
    pub state: BmcState,
    /// The timeline lines, formatted.
    pub lines: Vec<String>,
}

/// A running server (its threads end with the process).
#[derive(Debug, Clone)]
pub struct KernelBmc {
    seen: Arc<Mutex<Seen>>,
}

impl KernelBmc {
    /// Serves `listener` on a background thread with `cfg`'s firmware and
    /// behaviour; `echo`: print every timeline line to stdout.
    pub fn spawn(listener: TcpListener, cfg: BmcConfig, echo: bool) -> KernelBmc {
        Self::spawn_with(listener, cfg, None, echo)
    }

    /// As [`KernelBmc::spawn`], speaking TLS with `tls` on every connection.
    /// `server` is the SHA-256 of the certificate `tls` presents (what the
    /// enrollment proofs bind on the BMC's side).
    pub fn spawn_tls(
        listener: TcpListener,
        cfg: BmcConfig,
        tls: Arc<ServerConfig>,
        server: [u8; 32],
        echo: bool,
    ) -> KernelBmc {
        Self::spawn_with(listener, cfg, Some((tls, server)), echo)
    }

    /// As [`KernelBmc::spawn`] or [`KernelBmc::spawn_tls`] (with `tls`),
    /// broken by `mutation` (see [`Mutation`]; for
    /// [`Mutation::AcceptTls12`] and [`Mutation::NoClientCertRequired`]
    /// make `tls`'s config with [`mutant_server_config`]).
    pub fn spawn_mutant(
        listener: TcpListener,
        cfg: BmcConfig,
        tls: Option<(Arc<ServerConfig>, [u8; 32])>,
        mutation: Option<Mutation>,
        echo: bool,
    ) -> KernelBmc {
        let cfg = match mutation {
            Some(m) => m.config(cfg, tls.is_some()),
            None => cfg,
        };
        let tls = match (tls, mutation) {
            (Some((server, _)), Some(Mutation::PresentOtherCert)) => {
                Some((server, other_identity().fingerprint()))
            }
            (tls, _) => tls,
        };
        let seen = Arc::new(Mutex::new(Seen::default()));
        let shared = Arc::clone(&seen);
        std::thread::spawn(move || {
            serve_mutant(&listener, &cfg, tls.as_ref(), &shared, echo, mutation)
        });
        KernelBmc { seen }
    }

    fn spawn_with(
        listener: TcpListener,
        cfg: BmcConfig,
        tls: Option<(Arc<ServerConfig>, [u8; 32])>,
        echo: bool,
    ) -> KernelBmc {
        Self::spawn_mutant(listener, cfg, tls, None, echo)
    }

    /// Runs `f` on what the server has seen.
    pub fn with<T>(&self, f: impl FnOnce(&Seen) -> T) -> T {
        f(&self.seen.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// PINGs received so far.
    pub fn pings(&self) -> u32 {
        self.with(|s| s.state.pings)
    }

    /// Lifecycle-log entries with `id` so far.
    pub fn count(&self, id: &str) -> usize {
        self.with(|s| s.state.log.count(id))
    }

    /// The timeline so far, one line each.
    pub fn timeline(&self) -> String {
        self.with(|s| s.lines.join("\n"))
    }
}

/// Accepts connections on `listener` forever, one thread each; TLS with
/// `tls` (the config and its certificate's SHA-256), else the plain channel.
pub fn serve(
    listener: &TcpListener,
    cfg: &BmcConfig,
    tls: Option<&(Arc<ServerConfig>, [u8; 32])>,
    seen: &Arc<Mutex<Seen>>,
    echo: bool,
) {
    serve_mutant(listener, cfg, tls, seen, echo, None);
}

/// The server's life, shared by its connections.
#[derive(Debug, Default)]
struct Life {
    /// Crashed: the next accepted connection is dropped and the listener
    /// closed.
    dead: AtomicBool,
    /// Connections open now.
    open: AtomicUsize,
}

/// As [`serve`], with `mutation`'s fault; returns when a fault has
/// crashed the server (the listener then closes with its owner).
pub fn serve_mutant(
    listener: &TcpListener,
    cfg: &BmcConfig,
    tls: Option<&(Arc<ServerConfig>, [u8; 32])>,
    seen: &Arc<Mutex<Seen>>,
    echo: bool,
    mutation: Option<Mutation>,
) {
    let start = StdInstant::now();
    let life = Arc::new(Life::default());
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        if life.dead.load(Ordering::SeqCst) {
            note(seen, start, echo, || {
                timeline::emit("bmc", "(crashed: no longer serving)")
            });
            return;
        }
        let (cfg, seen, tls, life) = (
            cfg.clone(),
            Arc::clone(seen),
            tls.cloned(),
            Arc::clone(&life),
        );
        let run = move || {
            let open = life.open.fetch_add(1, Ordering::SeqCst) + 1;
            if mutation == Some(Mutation::FallOverOnFlood) && open > FLOOD_LIMIT {
                note(&seen, start, echo, || {
                    timeline::emit("bmc", format!("(falls over with {open} connections open)"))
                });
                life.dead.store(true, Ordering::SeqCst);
            } else {
                connection(stream, &cfg, tls, &seen, start, echo, mutation, &life);
            }
            life.open.fetch_sub(1, Ordering::SeqCst);
        };
        if mutation == Some(Mutation::Serial) {
            run();
        } else {
            std::thread::spawn(run);
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn connection(
    mut stream: TcpStream,
    cfg: &BmcConfig,
    tls: Option<(Arc<ServerConfig>, [u8; 32])>,
    seen: &Mutex<Seen>,
    start: StdInstant,
    echo: bool,
    mutation: Option<Mutation>,
    life: &Life,
) {
    if let Some(m) = mutation.filter(|m| m.filters()) {
        return mutant_connection(stream, cfg, tls, seen, start, echo, m, life);
    }
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".into());
    let mut responder = Responder::new(tls.is_some());
    if let Some((_, server)) = &tls {
        responder = responder.with_server(*server);
    }
    let mut session = match tls.map(|(c, _)| TlsSession::new(c, None)).transpose() {
        Ok(s) => s,
        Err(e) => {
            note(seen, start, echo, || {
                timeline::emit("bmc", format!("cannot start TLS for {peer}: {e}"))
            });
            return;
        }
    };
    let mut buf = [0u8; 4096];
    let mut out = Vec::new();
    note(seen, start, echo, || {
        timeline::emit("bmc", format!("accepted {peer}"))
    });
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => {
                note(seen, start, echo, || {
                    timeline::emit("bmc", format!("{peer} closed"))
                });
                return;
            }
            Ok(n) => n,
        };
        out.clear();
        let next = {
            let mut s = seen.lock().unwrap_or_else(PoisonError::into_inner);
            timeline::set_now(since(start));
            let next = match &mut session {
                Some(t) => t.on_bytes(&buf[..n], &mut responder, cfg, &mut s.state, &mut out),
                None => responder.on_bytes(&buf[..n], cfg, &mut s.state, &mut out),
            };
            if let Some(m) = mutation {
                m.after(&mut s.state);
            }
            keep(&mut s, echo);
            next
        };
        if !out.is_empty() && stream.write_all(&out).is_err() {
            return;
        }
        if next == Next::Close {
            let _ = stream.shutdown(std::net::Shutdown::Both);
            return;
        }
    }
}

/// The faults that sit on the plaintext: frames from the agent before the
/// responder sees them, frames from the responder before they go out.
struct Filter {
    m: Mutation,
    inbuf: Vec<u8>,
}

/// [`Mutation::CrashOnZeroLength`] struck.
struct Crash;

impl Filter {
    /// What the responder gets of `bytes` from the agent.
    fn inbound(&mut self, bytes: &[u8], state: &BmcState) -> Result<Vec<u8>, Crash> {
        self.inbuf.extend_from_slice(bytes);
        let mut fed = Vec::new();
        while self.inbuf.len() >= 2 {
            let len = usize::from(u16::from_be_bytes([self.inbuf[0], self.inbuf[1]]));
            if len == 0 && self.m == Mutation::CrashOnZeroLength {
                return Err(Crash);
            }
            if len == 0 && self.m == Mutation::SkipMalformed {
                timeline::emit("bmc", "(a frame of length 0: dropped)");
                self.inbuf.drain(..2);
                continue;
            }
            if len > usize::from(MAX_LEN) && self.m == Mutation::SkipMalformed {
                timeline::emit("bmc", format!("(a frame of length {len}: dropped)"));
                self.inbuf.clear();
                break;
            }
            if len == 0 || len > usize::from(MAX_LEN) {
                // The responder's own framing error; pass it all on.
                fed.append(&mut self.inbuf);
                break;
            }
            if self.inbuf.len() < 2 + len {
                break;
            }
            let mut frame: Vec<u8> = self.inbuf.drain(..2 + len).collect();
            if self.m == Mutation::SkipMalformed {
                if let Err(e) = Message::parse_frame(&frame) {
                    timeline::emit("bmc", format!("(a malformed frame, {e}: dropped)"));
                    continue;
                }
            }
            match (self.m, frame[2]) {
                (Mutation::AnswerUnknownVersion, 0x01) if frame.len() > 3 => {
                    frame[3] = PROTO_VERSION
                }
                (Mutation::IgnoreBye, 0x09) => continue,
                (Mutation::NoAckForRetransmit, 0x07) if frame.len() >= 7 => {
                    let seq = u32::from_be_bytes([frame[3], frame[4], frame[5], frame[6]]);
                    if state.events.iter().any(|e| e.0 == seq) {
                        timeline::emit("bmc", format!("(EVENT {seq} again: not ACKed)"));
                        continue;
                    }
                }
                _ => {}
            }
            fed.extend_from_slice(&frame);
        }
        Ok(fed)
    }

    /// Rewrites the responder's `reply`; `true`: keep the connection open
    /// even if the responder would close it.
    fn outbound(&mut self, reply: &mut Vec<u8>, cfg: &BmcConfig, state: &mut BmcState) -> bool {
        let mut frames = Vec::new();
        let mut i = 0;
        while i + 2 <= reply.len() {
            let len = usize::from(u16::from_be_bytes([reply[i], reply[i + 1]]));
            let end = (i + 2 + len).min(reply.len());
            frames.push(reply[i..end].to_vec());
            i = end;
        }
        let mut keep_open = false;
        let welcome = |state: &mut BmcState| {
            state.session = state.session.wrapping_add(1);
            let mut buf = [0u8; 16];
            let msg = Message::Welcome(Welcome {
                proto: PROTO_VERSION,
                firmware: cfg.firmware,
                caps: cfg.caps(),
                session: state.session,
            });
            let n = msg.emit(&mut buf).unwrap_or(0);
            buf[..n].to_vec()
        };
        for f in frames.iter_mut() {
            let reject = f.len() >= 4 && f[2] == 0x03;
            let reason = f.get(5..).map(String::from_utf8_lossy).unwrap_or_default();
            match self.m {
                Mutation::AcceptBadProof
                    if reject && f[3] == 4 && reason.starts_with("bad proof") =>
                {
                    timeline::emit("bmc", "(bad proof: WELCOME anyway)");
                    *f = welcome(state);
                    keep_open = true;
                }
                Mutation::WelcomeUnknownCert if reject && f[3] == 2 => {
                    timeline::emit("bmc", "(not enrolled: WELCOME anyway)");
                    *f = welcome(state);
                    keep_open = true;
                }
                _ => {}
            }
        }
        if self.m == Mutation::AckOutOfOrder {
            let at: Vec<usize> = (0..frames.len())
                .filter(|&i| frames[i].get(2) == Some(&0x08))
                .collect();
            let acks: Vec<Vec<u8>> = at.iter().rev().map(|&i| frames[i].clone()).collect();
            for (&i, a) in at.iter().zip(acks) {
                frames[i] = a;
            }
        }
        *reply = frames.concat();
        keep_open
    }
}

/// A connection through a [`Filter`]; TLS through [`MutantTls`].
#[allow(clippy::too_many_arguments)]
fn mutant_connection(
    mut stream: TcpStream,
    cfg: &BmcConfig,
    tls: Option<(Arc<ServerConfig>, [u8; 32])>,
    seen: &Mutex<Seen>,
    start: StdInstant,
    echo: bool,
    m: Mutation,
    life: &Life,
) {
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".into());
    let mut responder = Responder::new(tls.is_some());
    if let Some((_, server)) = &tls {
        responder = responder.with_server(*server);
    }
    let mut session = match tls
        .map(|(c, _)| rustls::ServerConnection::new(c))
        .transpose()
    {
        Ok(s) => s.map(|conn| MutantTls { conn }),
        Err(e) => {
            note(seen, start, echo, || {
                timeline::emit("bmc", format!("cannot start TLS for {peer}: {e}"))
            });
            return;
        }
    };
    let mut filter = Filter {
        m,
        inbuf: Vec::new(),
    };
    let mut buf = [0u8; 4096];
    let mut out = Vec::new();
    note(seen, start, echo, || {
        timeline::emit("bmc", format!("accepted {peer} (mutation {m:?})"))
    });
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => {
                note(seen, start, echo, || {
                    timeline::emit("bmc", format!("{peer} closed"))
                });
                return;
            }
            Ok(n) => n,
        };
        out.clear();
        let next = {
            let mut s = seen.lock().unwrap_or_else(PoisonError::into_inner);
            timeline::set_now(since(start));
            let mut step =
                |plain: &[u8], fp: Option<[u8; 32]>, state: &mut BmcState, out: &mut Vec<u8>| {
                    if responder.client_fingerprint.is_none() {
                        responder.client_fingerprint = fp;
                    }
                    let fed = filter.inbound(plain, state)?;
                    let mut reply = Vec::new();
                    let mut next = responder.on_bytes(&fed, cfg, state, &mut reply);
                    if filter.outbound(&mut reply, cfg, state) {
                        next = Next::Open;
                    }
                    m.after(state);
                    out.extend_from_slice(&reply);
                    Ok(next)
                };
            let next = match &mut session {
                Some(t) => t.on_bytes(&buf[..n], &mut s.state, &mut out, &mut step),
                None => step(&buf[..n], None, &mut s.state, &mut out),
            };
            if next.is_err() {
                timeline::emit("bmc", "(a frame of length 0: crashed)");
            }
            keep(&mut s, echo);
            next
        };
        let Ok(next) = next else {
            life.dead.store(true, Ordering::SeqCst);
            let _ = stream.shutdown(std::net::Shutdown::Both);
            return;
        };
        if !out.is_empty() && stream.write_all(&out).is_err() {
            return;
        }
        if next == Next::Close {
            let _ = stream.shutdown(std::net::Shutdown::Both);
            return;
        }
    }
}

/// TLS for [`mutant_connection`]: rustls, with the plaintext going through
/// a step function (the [`Filter`] and the responder) instead of straight
/// to the responder as in [`TlsSession`].
struct MutantTls {
    conn: rustls::ServerConnection,
}

/// Plaintext from the agent, the client certificate's fingerprint, the
/// state, the plaintext reply.
type Step<'a> =
    dyn FnMut(&[u8], Option<[u8; 32]>, &mut BmcState, &mut Vec<u8>) -> Result<Next, Crash> + 'a;

impl MutantTls {
    fn on_bytes(
        &mut self,
        mut input: &[u8],
        state: &mut BmcState,
        out: &mut Vec<u8>,
        step: &mut Step<'_>,
    ) -> Result<Next, Crash> {
        let mut next = Next::Open;
        while !input.is_empty() {
            match self.conn.read_tls(&mut input) {
                Ok(0) => break,
                Ok(_) => {}
                Err(_) => {
                    next = Next::Close;
                    break;
                }
            }
            if let Err(e) = self.conn.process_new_packets() {
                timeline::emit("bmc", format!("TLS error: {e}"));
                state
                    .log
                    .add("BMC0023", format!("TLS with the OS agent failed: {e}"));
                self.drain(out);
                return Ok(Next::Close);
            }
        }
        let mut plain = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match self.conn.reader().read(&mut buf) {
                Ok(0) => {
                    next = Next::Close;
                    break;
                }
                Ok(n) => plain.extend_from_slice(&buf[..n]),
                Err(_) => break,
            }
        }
        if !plain.is_empty() {
            let mut reply = Vec::new();
            if step(&plain, self.client_fingerprint(), state, &mut reply)? == Next::Close {
                next = Next::Close;
            }
            if !reply.is_empty() && self.conn.writer().write_all(&reply).is_err() {
                next = Next::Close;
            }
        }
        if next == Next::Close {
            self.conn.send_close_notify();
        }
        self.drain(out);
        Ok(next)
    }

    fn drain(&mut self, out: &mut Vec<u8>) {
        while self.conn.wants_write() {
            if self.conn.write_tls(out).is_err() {
                break;
            }
        }
    }

    /// SHA-256 of the client's certificate, once the handshake is done.
    fn client_fingerprint(&self) -> Option<[u8; 32]> {
        if self.conn.is_handshaking() {
            return None;
        }
        self.conn
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| cert::fingerprint(c.as_ref()))
    }
}

fn since(start: StdInstant) -> Instant {
    Instant::from_micros(i64::try_from(start.elapsed().as_micros()).unwrap_or(i64::MAX))
}

fn note(seen: &Mutex<Seen>, start: StdInstant, echo: bool, f: impl FnOnce()) {
    let mut s = seen.lock().unwrap_or_else(PoisonError::into_inner);
    timeline::set_now(since(start));
    f();
    keep(&mut s, echo);
}

/// Moves this thread's timeline lines into `seen`.
fn keep(seen: &mut Seen, echo: bool) {
    for line in timeline::take() {
        let text = timeline::format_line(&line);
        if echo {
            println!("{text}");
        }
        seen.lines.push(text);
    }
}
