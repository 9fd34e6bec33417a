//! One connection to the BMC as a machine the agent steps from every
//! `Agent::handle_timeout`: it never waits. Its phases, in order:
//!
//! - **Handshake** (TLS channels): the pinned TLS 1.3 handshake, one state
//!   per step ([`Handshaking`]), kept in the agent's own state and stepped
//!   through `&mut` whenever the socket has bytes for it or room for its
//!   flight; overall deadline `Config::handshake_timeout`.
//! - **Greeting**: HELLO (and, enrolling, ENROLL with its proof) sent;
//!   waiting for ENROLLED, then WELCOME, until `Config::welcome_timeout`.
//! - **Serving**: WELCOME came; the session's protocol is [`Serving`]'s,
//!   and this moves its frames.
//!
//! Every end goes through [`Conn::finish`]: a stop or a move says BYE (and
//! close_notify over TLS) when a HELLO was said, the TLS buffers come back
//! for the next connection, and the end is audited and told to the policy
//! ([`end_session`]). Sends never wait either: a frame goes only when the
//! socket has room for it, and a frame that found no room for
//! [`WRITE_TIMEOUT`] ends the connection.

use core::mem;

use smoltcp::iface::SocketHandle;
use smoltcp::time::Instant;

use super::channel::{ChannelError, WRITE_TIMEOUT};
use super::control::Control;
use super::drbg::HashDrbg;
use super::enroll;
use super::events::{EventQueue, EVENT_QUEUE};
use super::identity;
use super::link::Link;
use super::net::{earliest, Net};
use super::serving::{Serving, ServingState};
use super::session::{self, bye, Established, Heartbeat, Reader, Reply, SessionEnd};
use super::transport::{hs_io, io, lend, room, Chan, SocketIo};
use crate::audit::{AuditEvent, SessionEvent, TlsEvent};
use crate::cert::{Fingerprint, ShortFingerprint};
use crate::config::Config;
use crate::platform::{Retire, Retired, ACCOUNT_NAME_MAX, ACCOUNT_SECRET_MAX};
use crate::policy::{Input, SessionEnd as PolicyEnd, Trust};
use crate::proto::MAX_FRAME_LEN;
use crate::proto::{Caps, Enroll, Message, MessageType, ProtoError, RejectCode, PROOF_LEN};
use crate::time::SaturatingAdd;
use crate::tls::{
    Handshaking, ServerAuth, TlsBuffers, TlsError, TlsHalves, DEFAULT_BACKEND, TLS_RECORD_WRITE_BUF,
};
use crate::types::{Channel, Family};
use crate::Platform;

/// What a connection step works with: the network, the configuration and
/// the control half of the agent.
pub struct Cx<'x, 'n, 'a, P: Platform> {
    /// The network half of the agent.
    pub net: &'x mut Net<'n, 'a, P, Link>,
    /// The configuration.
    pub cfg: &'x Config,
    /// The policy and its bookkeeping.
    pub ctl: &'x mut Control,
}

/// Where a connection is.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// No connection is served.
    Idle,
    /// The TLS handshake runs ([`Chan::Handshake`]) until this deadline.
    Handshake { deadline: Instant },
    /// HELLO was said: waiting for `awaiting` until `deadline`.
    Greeting {
        awaiting: Awaiting,
        deadline: Instant,
    },
    /// The session runs.
    Serving(ServingState),
}

/// What a connection that said HELLO waits for.
#[derive(Debug, Clone, Copy)]
enum Awaiting {
    /// WELCOME on the plain channel.
    PlainWelcome,
    /// ENROLLED whose proof must be this one (DESIGN §5a).
    Enrolled { expected: [u8; PROOF_LEN] },
    /// WELCOME over TLS.
    TlsWelcome,
}

/// The agent's connection to the BMC (one at a time: the first connected
/// family, IPv4 first), and what outlives each one.
pub struct Conn<'a> {
    phase: Phase,
    chan: Chan<'a>,
    family: Family,
    trust: Trust,
    handle: SocketHandle,
    /// The record buffers, while no TLS connection holds them.
    tls: Option<TlsHalves<'a>>,
    /// The last TLS failure, for the audit log.
    error: Option<TlsError>,
    /// Since when a frame has waited for room in the socket.
    blocked: Option<Instant>,
    client_fp: [u8; 32],
    bmc_fp: [u8; 32],
    hb: Heartbeat,
    reader: Reader,
}

impl<'a> Conn<'a> {
    /// No connection yet, over the TLS record buffers `tls`.
    pub fn new(tls: &'a mut TlsBuffers) -> Self {
        Conn {
            phase: Phase::Idle,
            chan: Chan::Closed,
            family: Family::V4,
            trust: Trust::Probe,
            handle: SocketHandle::default(),
            tls: Some(tls.halves()),
            error: None,
            blocked: None,
            client_fp: [0; 32],
            bmc_fp: [0; 32],
            hb: Heartbeat::default(),
            reader: Reader::new(),
        }
    }

    /// The OS events on their way to the BMC (queued while disconnected too).
    pub fn events(&mut self) -> &mut EventQueue<EVENT_QUEUE> {
        &mut self.hb.events
    }

    /// Whether no connection is served.
    pub fn is_idle(&self) -> bool {
        matches!(self.phase, Phase::Idle)
    }

    /// The next instant this connection needs a poll (its phase's deadline,
    /// the next PING, the end of a wait for room).
    pub fn poll_at(&self) -> Option<Instant> {
        let at = match self.phase {
            Phase::Idle => None,
            Phase::Handshake { deadline } | Phase::Greeting { deadline, .. } => Some(deadline),
            Phase::Serving(s) => Some(s.poll_timeout()),
        };
        earliest(at, self.blocked.map(|b| b.saturating_add(WRITE_TIMEOUT)))
    }

    /// Does what this connection can do now, without waiting: starts one on
    /// the first connected family, steps the handshake, reads the BMC's
    /// answer, runs a round of the session, or ends it. `true` when it
    /// should run again at once (it changed phase, or bytes are left).
    pub fn advance<P: Platform>(&mut self, cx: &mut Cx<'_, '_, 'a, P>) -> bool {
        let step = match self.phase {
            Phase::Idle => {
                let Some(family) = [Family::V4, Family::V6]
                    .into_iter()
                    .find(|f| cx.ctl.connected[*f])
                else {
                    return false;
                };
                self.begin(cx, family)
            }
            Phase::Handshake { deadline } => self.handshake(cx, deadline),
            Phase::Greeting { awaiting, deadline } => self.greeting(cx, awaiting, deadline),
            Phase::Serving(state) => self.serving(cx, state),
        };
        match step {
            Ok(more) => more,
            Err(end) => {
                self.finish(cx, end);
                true
            }
        }
    }

    /// Ends the connection because the platform asks the agent to stop: BYE
    /// (and close_notify) where a HELLO was said.
    pub fn stop<P: Platform>(&mut self, cx: &mut Cx<'_, '_, 'a, P>) {
        if !self.is_idle() {
            self.finish(cx, SessionEnd::Stopped);
        }
    }

    /// Starts serving the connected socket of `family`, with the trust
    /// decided when that connection was started.
    fn begin<P: Platform>(
        &mut self,
        cx: &mut Cx<'_, '_, 'a, P>,
        family: Family,
    ) -> Result<bool, SessionEnd> {
        self.family = family;
        self.handle = cx.net.tcp[family];
        self.reader.reset();
        self.error = None;
        self.blocked = None;
        // The phase stays Idle until something is said: an end before that
        // (no trust, a failed HELLO) says no BYE and ends no session.
        match cx.ctl.trust[family].take() {
            // No trust, no session (a connection without a decision cannot
            // happen; refused rather than assumed).
            None => Err(SessionEnd::Untrusted),
            Some(Trust::Plain) => {
                self.trust = Trust::Plain;
                self.chan = Chan::Plain;
                let hello = session::hello(cx.cfg, family, false, false);
                self.send(cx, &hello)?;
                info!("{} sent over {}", hello.msg_type(), family);
                self.phase = Phase::Greeting {
                    awaiting: Awaiting::PlainWelcome,
                    deadline: cx.net.now().saturating_add(cx.cfg.welcome_timeout),
                };
                Ok(true)
            }
            Some(trust) => {
                self.trust = trust;
                self.start_tls(cx)
            }
        }
    }

    /// Starts the TLS handshake: the server authenticated as the trust
    /// decision says, the handshake's own deadline from now.
    #[inline(never)]
    fn start_tls<P: Platform>(&mut self, cx: &mut Cx<'_, '_, 'a, P>) -> Result<bool, SessionEnd> {
        let auth = match self.trust {
            Trust::Pinned { pin } => ServerAuth::Pinned(pin),
            Trust::Expected { fingerprint } => ServerAuth::Pinned(fingerprint),
            // §5a: with a fingerprint from the administrator or the bootstrap
            // channel, ENROLL goes only to that certificate.
            Trust::Enroll {
                expected: Some(fingerprint),
            } => ServerAuth::Pinned(fingerprint),
            Trust::Enroll { expected: None } | Trust::Probe => ServerAuth::Enrolling,
            Trust::Plain => return Err(SessionEnd::Untrusted),
        };
        let fail = SessionEnd::Channel(ChannelError::Tls);
        let id = cx.ctl.identity.as_ref().ok_or(fail)?;
        self.client_fp = id.fingerprint();
        let identity = id.tls().map_err(|_| fail)?;
        let buffers = self.tls.take().ok_or(fail)?;
        let rng = HashDrbg::from_rng(cx.net.p);
        let transport = SocketIo::new(self.handle);
        self.chan = Chan::Handshake(Handshaking::start_in(
            transport,
            buffers,
            auth,
            identity,
            rng,
            DEFAULT_BACKEND,
        ));
        self.phase = Phase::Handshake {
            deadline: cx.net.now().saturating_add(cx.cfg.handshake_timeout),
        };
        Ok(true)
    }

    /// Steps the handshake while the socket has what the next step needs
    /// (a record to read, room for a flight); the policy dropping this
    /// family, or the deadline, ends it.
    #[inline(never)]
    fn handshake<P: Platform>(
        &mut self,
        cx: &mut Cx<'_, '_, 'a, P>,
        deadline: Instant,
    ) -> Result<bool, SessionEnd> {
        if cx.ctl.disconnect[self.family] || !cx.ctl.connected[self.family] {
            return Err(SessionEnd::Moving);
        }
        loop {
            if cx.net.now() >= deadline {
                let secs = cx.cfg.handshake_timeout.secs();
                audit(cx.net, TlsEvent::HandshakeTimedOut { secs });
                // Audited with its cause: no "connection failed" beside it.
                return Err(SessionEnd::Untrusted);
            }
            let Chan::Handshake(hs) = &mut self.chan else {
                return Err(SessionEnd::Channel(ChannelError::Tls));
            };
            let socket = cx
                .net
                .sockets
                .get_mut::<smoltcp::socket::tcp::Socket>(self.handle);
            let ready = if hs.wants_read() {
                socket.can_recv() || !socket.may_recv()
            } else {
                // A closed socket lets the step fail with its reason.
                room(socket, TLS_RECORD_WRITE_BUF).unwrap_or(true)
            };
            if !ready {
                return Ok(false);
            }
            let (r, nothing_yet) = lend(hs, hs_io, cx.net.sockets, |h| {
                let r = h.step();
                (r, hs_io(h).would_block())
            });
            match r {
                Ok(false) => {}
                Ok(true) => return self.opened(cx),
                Err(TlsError::Io(_)) if nothing_yet => return Ok(false),
                Err(e) => {
                    audit(cx.net, TlsEvent::handshake_failed(e));
                    return Err(SessionEnd::Untrusted);
                }
            }
        }
    }

    /// The handshake completed: check what it proved, then HELLO (and
    /// ENROLL with its proof when enrolling).
    #[inline(never)]
    fn opened<P: Platform>(&mut self, cx: &mut Cx<'_, '_, 'a, P>) -> Result<bool, SessionEnd> {
        let Chan::Handshake(hs) = mem::replace(&mut self.chan, Chan::Closed) else {
            return Err(SessionEnd::Channel(ChannelError::Tls));
        };
        let tls = match hs.finish() {
            Ok(tls) => tls,
            Err(abandoned) => {
                self.tls = Some(abandoned.buffers);
                audit(cx.net, TlsEvent::handshake_failed(abandoned.error));
                return Err(SessionEnd::Untrusted);
            }
        };
        self.bmc_fp = tls.server_fingerprint();
        self.chan = Chan::Tls(tls);
        let now = cx.net.now();
        self.phase = Phase::Greeting {
            awaiting: Awaiting::TlsWelcome,
            deadline: now.saturating_add(cx.cfg.welcome_timeout),
        };
        if self.trust == Trust::Probe {
            // Nothing vouches for this certificate: name it for the
            // administrator, send nothing, run nothing.
            let presented = Fingerprint(self.bmc_fp);
            audit(cx.net, TlsEvent::UntrustedBmc { presented });
            self.close_notify(cx);
            return Err(SessionEnd::Untrusted);
        }
        let enrolling = matches!(self.trust, Trust::Enroll { .. });
        self.send(cx, &session::hello(cx.cfg, self.family, true, enrolling))?;
        info!("HELLO sent over {} (enrolling: {})", self.family, enrolling);
        if enrolling {
            let expected = self.enroll(cx)?;
            if let Phase::Greeting { awaiting, .. } = &mut self.phase {
                *awaiting = Awaiting::Enrolled { expected };
            }
        }
        Ok(true)
    }

    /// DESIGN §5a, the agent's side after HELLO(enrolling): ENROLL with the
    /// proof bound to both certificates; the proof ENROLLED must carry.
    fn enroll<P: Platform>(
        &mut self,
        cx: &mut Cx<'_, '_, 'a, P>,
    ) -> Result<[u8; PROOF_LEN], SessionEnd> {
        let mut name = [0u8; ACCOUNT_NAME_MAX];
        let mut secret = [0u8; ACCOUNT_SECRET_MAX];
        let lens = cx.net.p.enrollment_account(&mut name, &mut secret);
        let Some((name_len, secret_len)) = lens else {
            secret.fill(0);
            audit(cx.net, TlsEvent::NoAccount {});
            return Err(SessionEnd::Untrusted);
        };
        let key = secret.get(..secret_len).unwrap_or(&[]);
        let proof = enroll::host_proof(key, &self.bmc_fp, &self.client_fp);
        let expected = enroll::bmc_proof(key, &self.bmc_fp, &self.client_fp);
        secret.fill(0);
        let account = name
            .get(..name_len)
            .and_then(|n| core::str::from_utf8(n).ok())
            .unwrap_or("");
        self.send(cx, &Message::Enroll(Enroll { account, proof }))?;
        info!("ENROLL sent for account {}", account);
        Ok(expected)
    }

    /// Reads what arrived before WELCOME; the first frame answers.
    fn greeting<P: Platform>(
        &mut self,
        cx: &mut Cx<'_, '_, 'a, P>,
        awaiting: Awaiting,
        deadline: Instant,
    ) -> Result<bool, SessionEnd> {
        let got = self.read_reply(cx, deadline);
        match got {
            Ok(None) => Ok(false),
            Ok(Some(reply)) => self.answered(cx, awaiting, Ok(reply)),
            Err(end) => self.answered(cx, awaiting, Err(end)),
        }
    }

    /// The BMC's answer, if one came: everything the channel holds is read
    /// first (a WELCOME may come in two records). The policy moving away
    /// and the deadline end the wait.
    fn read_reply<P: Platform>(
        &mut self,
        cx: &mut Cx<'_, '_, 'a, P>,
        deadline: Instant,
    ) -> Result<Option<Reply>, SessionEnd> {
        if cx.ctl.disconnect[self.family] {
            return Err(SessionEnd::Moving);
        }
        loop {
            let got = self.fill(cx)?;
            if let Some(msg) = self.reader.next_message() {
                return session::reply(msg).map(Some);
            }
            if got == 0 {
                break;
            }
        }
        if cx.net.now() >= deadline {
            return Err(SessionEnd::NoWelcome);
        }
        Ok(None)
    }

    /// What the answer (or the failed wait) means where the connection is.
    fn answered<P: Platform>(
        &mut self,
        cx: &mut Cx<'_, '_, 'a, P>,
        awaiting: Awaiting,
        reply: Result<Reply, SessionEnd>,
    ) -> Result<bool, SessionEnd> {
        let enrolled_unasked =
            SessionEnd::Protocol(ProtoError::Unexpected(u8::from(MessageType::Enrolled)));
        match awaiting {
            Awaiting::PlainWelcome => match reply? {
                Reply::Welcome(est) => self.welcomed(cx, Channel::Plain, &est),
                Reply::Enrolled(_) => Err(enrolled_unasked),
            },
            Awaiting::Enrolled { expected } => {
                self.enrolled(cx, &expected, reply)?;
                if let Phase::Greeting { awaiting, .. } = &mut self.phase {
                    *awaiting = Awaiting::TlsWelcome;
                }
                Ok(true)
            }
            Awaiting::TlsWelcome => match reply {
                Ok(Reply::Welcome(est)) => {
                    if let Trust::Expected { fingerprint } = self.trust {
                        // The administrator's (or bootstrap's) fingerprint
                        // authenticated the BMC and the BMC knows this
                        // client certificate: a pin.
                        identity::save_pin(cx.net.p, fingerprint);
                    }
                    self.welcomed(cx, Channel::Tls13, &est)
                }
                Ok(Reply::Enrolled(_)) => Err(enrolled_unasked),
                Err(end) => Err(self.tls_failure(cx, end, self.trust)),
            },
        }
    }

    /// ENROLLED (or the failed wait for it), checked in constant time
    /// before anything is pinned. The secret is retired only on success or
    /// REJECT bad-credential.
    fn enrolled<P: Platform>(
        &mut self,
        cx: &mut Cx<'_, '_, 'a, P>,
        expected: &[u8; PROOF_LEN],
        reply: Result<Reply, SessionEnd>,
    ) -> Result<(), SessionEnd> {
        let bmc = ShortFingerprint::of(&self.bmc_fp);
        match reply {
            Ok(Reply::Enrolled(got)) if enroll::proofs_equal(&got, expected) => {
                let p = &mut *cx.net.p;
                identity::save_pin(p, self.bmc_fp);
                let retired = p.retire_account(Retire::Enrolled);
                let now = p.now();
                let client = ShortFingerprint::of(&self.client_fp);
                let event = TlsEvent::Enrolled { bmc, client };
                p.record(now, &AuditEvent::Tls(event));
                let closed = match retired {
                    Retired::Erased => None,
                    Retired::BootstrapDisabled => Some(TlsEvent::BootstrapDisabled {}),
                    Retired::BootstrapNotDisabled => Some(TlsEvent::BootstrapNotDisabled {}),
                };
                if let Some(e) = closed {
                    p.record(now, &AuditEvent::Tls(e));
                }
                info!("ENROLLED checked: BMC certificate pinned");
                Ok(())
            }
            // A wrong proof, or WELCOME without one: whoever answered does
            // not know the secret for these two certificates.
            Ok(Reply::Enrolled(_) | Reply::Welcome(_)) | Err(SessionEnd::Protocol(_)) => {
                audit(cx.net, TlsEvent::EnrollmentUnproven { bmc });
                Err(SessionEnd::Untrusted)
            }
            Err(SessionEnd::Rejected(code)) => {
                audit(cx.net, TlsEvent::EnrollmentRejected { code });
                if code == u8::from(RejectCode::BadCredential) {
                    cx.net.p.retire_account(Retire::Refused);
                }
                Err(SessionEnd::Rejected(code))
            }
            Err(end @ (SessionEnd::Stopped | SessionEnd::Moving)) => Err(end),
            Err(end) => {
                audit(cx.net, TlsEvent::EnrollmentInterrupted {});
                Err(end)
            }
        }
    }

    /// WELCOME: the session starts (P8). A plain session whose BMC now
    /// offers TLS leaves at once (T7).
    fn welcomed<P: Platform>(
        &mut self,
        cx: &mut Cx<'_, '_, 'a, P>,
        channel: Channel,
        est: &Established,
    ) -> Result<bool, SessionEnd> {
        started(cx, self.family, channel, est);
        if channel == Channel::Plain && Caps::from_bits(est.caps).tls() {
            // T7: the firmware gained TLS since this host last enrolled (or
            // never did). WELCOME's caps are only a hint (unauthenticated):
            // if the host-local bootstrap channel now says TLS too, leave
            // the plain channel so the next connection (decided afresh)
            // enrolls.
            if cx.net.p.bmc_facts().is_some_and(|f| f.tls) {
                info!("the BMC now offers TLS: leaving the plain channel to enroll");
                let _ = self.send(cx, &Message::Bye(bye::MOVING));
                return Err(SessionEnd::Upgrade);
            }
        }
        let now = cx.net.now();
        let state = Serving::start(now, cx.cfg, &mut self.hb).state();
        self.phase = Phase::Serving(state);
        Ok(true)
    }

    /// One round of the session: the policy moving away ends it; what
    /// arrived is answered; then the round's events and PING. `true` when
    /// more bytes wait.
    fn serving<P: Platform>(
        &mut self,
        cx: &mut Cx<'_, '_, 'a, P>,
        state: ServingState,
    ) -> Result<bool, SessionEnd> {
        if cx.ctl.disconnect[self.family] {
            return Err(SessionEnd::Moving);
        }
        let now = cx.net.now();
        let mut buf = [0u8; MAX_FRAME_LEN];
        let state = {
            let (mut io, reader, hb) = self.split();
            let mut s = Serving::resume(hb, state);
            // Everything the channel holds, not one read's worth: a TLS read
            // gives at most one record, and bytes left in it would otherwise
            // wait for the next frame.
            loop {
                let got = io.fill(cx, reader)?;
                while let Some(msg) = reader.next_message() {
                    s.handle_message(msg);
                    io.transmit(cx, &mut s, now, &mut buf)?;
                }
                if got == 0 {
                    break;
                }
            }
            // The clock again: the answers above took time.
            let now = cx.net.now();
            s.handle_timeout();
            io.transmit(cx, &mut s, now, &mut buf)?;
            s.state()
        };
        self.phase = Phase::Serving(state);
        Ok(cx.net.tcp(self.family).can_recv())
    }
}

impl<'a> Conn<'a> {
    /// The channel's I/O, with the reader and the heartbeat borrowed
    /// beside it.
    fn split(&mut self) -> (Io<'_, 'a>, &mut Reader, &mut Heartbeat) {
        let io = Io {
            chan: &mut self.chan,
            handle: self.handle,
            error: &mut self.error,
            blocked: &mut self.blocked,
        };
        (io, &mut self.reader, &mut self.hb)
    }

    /// The channel's I/O alone.
    fn io(&mut self) -> Io<'_, 'a> {
        self.split().0
    }

    fn send<P: Platform>(
        &mut self,
        cx: &mut Cx<'_, '_, 'a, P>,
        msg: &Message<'_>,
    ) -> Result<(), SessionEnd> {
        self.io().send(cx, msg)
    }

    fn fill<P: Platform>(&mut self, cx: &mut Cx<'_, '_, 'a, P>) -> Result<usize, SessionEnd> {
        let (mut io, reader, _) = self.split();
        io.fill(cx, reader)
    }

    /// close_notify on an open TLS channel (best effort).
    fn close_notify<P: Platform>(&mut self, cx: &mut Cx<'_, '_, 'a, P>) {
        if let Chan::Tls(tls) = &mut self.chan {
            let _ = lend(tls, io, cx.net.sockets, |t| t.close_notify());
        }
    }

    /// Ends the connection: a stop or a move says BYE with its reason where
    /// a HELLO was said (DESIGN §5), so the BMC is not left waiting, then
    /// close_notify over TLS; other ends send nothing more. The TLS buffers
    /// come back, and the end is audited and told to the policy.
    #[inline(never)]
    fn finish<P: Platform>(&mut self, cx: &mut Cx<'_, '_, 'a, P>, end: SessionEnd) {
        let said_hello = matches!(self.phase, Phase::Greeting { .. } | Phase::Serving(_));
        let reason = match end {
            SessionEnd::Stopped => Some(bye::SHUTDOWN),
            SessionEnd::Moving => Some(bye::MOVING),
            _ => None,
        };
        if let (true, Some(reason)) = (said_hello, reason) {
            // Best effort: the connection is ending either way.
            let _ = self.send(cx, &Message::Bye(reason));
            self.close_notify(cx);
        }
        match mem::replace(&mut self.chan, Chan::Closed) {
            Chan::Handshake(hs) => self.tls = Some(hs.abandon().1),
            Chan::Tls(tls) => self.tls = Some(tls.into_parts().1),
            Chan::Plain | Chan::Closed => {}
        }
        let end = match (self.phase, self.trust) {
            // A session over TLS ends with the reason TLS gives, if any.
            (Phase::Serving(_), trust) if trust != Trust::Plain => {
                let pinned = Trust::Pinned { pin: self.bmc_fp };
                self.tls_failure(cx, end, pinned)
            }
            _ => end,
        };
        self.phase = Phase::Idle;
        self.blocked = None;
        end_session(cx, self.family, end);
    }

    /// Audits why a TLS connection failed, when TLS is the reason. A TLS
    /// failure so audited (BL40xx) comes back as [`SessionEnd::Untrusted`]:
    /// the connection did not fail, the agent refused it, and a BL2006
    /// beside the reason would say otherwise.
    fn tls_failure<P: Platform>(
        &mut self,
        cx: &mut Cx<'_, '_, 'a, P>,
        end: SessionEnd,
        trust: Trust,
    ) -> SessionEnd {
        let client = ShortFingerprint::of(&self.client_fp);
        let not_enrolled = u8::from(RejectCode::NotEnrolled);
        let tls = SessionEnd::Channel(ChannelError::Tls);
        let event = match (end, self.error.take()) {
            (SessionEnd::Rejected(code), _) if code == not_enrolled => match trust {
                // Never enrolled and nothing to enroll with.
                Trust::Expected { .. } => TlsEvent::NoAccount {},
                _ => TlsEvent::ClientCertRefused { client },
            },
            (e, Some(TlsError::AbortedAfterHandshake)) if e == tls => {
                TlsEvent::ClientCertRefused { client }
            }
            (e, Some(TlsError::UnexpectedRecord)) if e == tls => TlsEvent::ForbiddenRecord {},
            // A reset or close mid-session is a lost connection (BL2006, by
            // `end_session`), not a TLS failure.
            (e, Some(TlsError::Io(_) | TlsError::Closed)) if e == tls => return end,
            (e, Some(error)) if e == tls => TlsEvent::handshake_failed(error),
            _ => return end,
        };
        audit(cx.net, event);
        match end {
            SessionEnd::Channel(_) => SessionEnd::Untrusted,
            other => other,
        }
    }
}

/// A connection's channel, borrowed for one step.
struct Io<'c, 'a> {
    chan: &'c mut Chan<'a>,
    handle: SocketHandle,
    error: &'c mut Option<TlsError>,
    blocked: &'c mut Option<Instant>,
}

impl<'a> Io<'_, 'a> {
    /// Whether the socket has room for one more frame of at most
    /// `MAX_FRAME_LEN` bytes as the channel puts it on the wire; a frame
    /// that found none for [`WRITE_TIMEOUT`] ends the connection.
    fn room<P: Platform>(&mut self, cx: &mut Cx<'_, '_, 'a, P>) -> Result<bool, SessionEnd> {
        let need = self.chan.on_wire(MAX_FRAME_LEN);
        let socket = cx
            .net
            .sockets
            .get_mut::<smoltcp::socket::tcp::Socket>(self.handle);
        if room(socket, need).map_err(SessionEnd::Channel)? {
            *self.blocked = None;
            return Ok(true);
        }
        let now = cx.net.now();
        let since = *self.blocked.get_or_insert(now);
        if now >= since.saturating_add(WRITE_TIMEOUT) {
            return Err(SessionEnd::Channel(ChannelError::Timeout));
        }
        Ok(false)
    }

    /// Sends one message now. It is the first (or second) frame of a
    /// connection or its BYE, so the socket's buffer, which holds several
    /// frames, has room unless the peer stopped reading: then it is a
    /// timeout at once.
    fn send<P: Platform>(
        &mut self,
        cx: &mut Cx<'_, '_, 'a, P>,
        msg: &Message<'_>,
    ) -> Result<(), SessionEnd> {
        let mut buf = [0u8; MAX_FRAME_LEN];
        let n = msg.emit(&mut buf).map_err(SessionEnd::Protocol)?;
        let frame = buf
            .get(..n)
            .ok_or(SessionEnd::Protocol(ProtoError::Truncated))?;
        if !self.room(cx)? {
            return Err(SessionEnd::Channel(ChannelError::Timeout));
        }
        self.put(cx, frame)
    }

    fn put<P: Platform>(
        &mut self,
        cx: &mut Cx<'_, '_, 'a, P>,
        frame: &[u8],
    ) -> Result<(), SessionEnd> {
        self.chan
            .send(cx.net.sockets, self.handle, frame, self.error)
            .map_err(SessionEnd::Channel)
    }

    /// Pulls whatever the channel has into the reader.
    fn fill<P: Platform>(
        &mut self,
        cx: &mut Cx<'_, '_, 'a, P>,
        reader: &mut Reader,
    ) -> Result<usize, SessionEnd> {
        let spare = reader.spare_mut();
        if spare.is_empty() {
            return Ok(0);
        }
        let n = self
            .chan
            .recv(cx.net.sockets, self.handle, spare, self.error)
            .map_err(SessionEnd::Channel)?;
        reader.commit(n);
        Ok(n)
    }

    /// Sends what the session has to send now, while the socket has room
    /// (the rest goes on a later poll); its end, once it ended.
    fn transmit<P: Platform>(
        &mut self,
        cx: &mut Cx<'_, '_, 'a, P>,
        s: &mut Serving<'_>,
        now: Instant,
        buf: &mut [u8],
    ) -> Result<(), SessionEnd> {
        loop {
            if let Some(end) = s.end() {
                return Err(end);
            }
            if !self.room(cx)? {
                return Ok(());
            }
            let Some(n) = s.poll_transmit(now, buf) else {
                break;
            };
            let frame = buf
                .get(..n)
                .ok_or(SessionEnd::Protocol(ProtoError::Truncated))?;
            self.put(cx, frame)?;
        }
        match s.end() {
            Some(end) => Err(end),
            None => Ok(()),
        }
    }
}

/// Records the start of a session (P8) and tells the policy.
fn started<P: Platform>(
    cx: &mut Cx<'_, '_, '_, P>,
    family: Family,
    channel: Channel,
    est: &Established,
) {
    cx.ctl.session_started();
    let now = cx.net.now();
    info!(
        "WELCOME: firmware {}.{}.{}.{}, session {}",
        est.firmware[0], est.firmware[1], est.firmware[2], est.firmware[3], est.session
    );
    cx.net.p.record(
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
        Channel::Plain => match cx.net.p.bmc_facts() {
            Some(f) => (bootstrap_caps(&f), true),
            None => (Caps::from_bits(est.caps).known(), false),
        },
    };
    cx.ctl.report(Input::Welcome {
        family,
        firmware: est.firmware,
        caps: caps.bits(),
        authenticated,
    });
    cx.ctl.run_policy(cx.cfg, cx.net);
    cx.ctl.status.session_up(now, family, channel, est);
    cx.net.p.status(&cx.ctl.status);
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

fn audit<P: Platform>(net: &mut Net<'_, '_, P, Link>, event: TlsEvent) {
    let now = net.now();
    net.p.record(now, &AuditEvent::Tls(event));
}

/// Audits the end of a connection, closes its socket and tells the policy.
fn end_session<P: Platform>(cx: &mut Cx<'_, '_, '_, P>, family: Family, end: SessionEnd) {
    let Cx { net, ctl, .. } = cx;
    let now = net.now();
    let port = ctl.ports[family];
    let (event, cause) = match end {
        SessionEnd::Stopped => (
            SessionEvent::Ended {
                family,
                reason: bye::SHUTDOWN,
            },
            None,
        ),
        SessionEnd::Moving => (
            SessionEvent::Ended {
                family,
                reason: bye::MOVING,
            },
            None,
        ),
        SessionEnd::Upgrade => (
            SessionEvent::Ended {
                family,
                reason: bye::MOVING,
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
    match end {
        // `Agent::stop` closes both sockets itself.
        SessionEnd::Stopped => {}
        // BYE "moving" is in the socket: FIN after it, so the BMC hears
        // why the session went (an abort would drop it for a RST).
        SessionEnd::Moving => net.tcp(family).close(),
        _ => net.abort(family),
    }
    ctl.connected[family] = false;
    ctl.disconnect[family] = false;
    if let Some(cause) = cause {
        ctl.report(Input::SessionEnded { family, cause });
    }
    // A deferred IPv4 release (P3) is now due: the agent's step ends so the
    // last frames (BYE and FIN, or the RST) leave with the address, and the
    // next step releases it.
    ctl.status.session_down();
    net.p.status(&ctl.status);
}
