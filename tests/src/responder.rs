//! The simulated BMC's side of the channel protocol, sans-I/O: plaintext
//! bytes in, plaintext bytes out, a Lifecycle log on the side. The TLS and
//! plain transports both feed it.

use bmclink_core::agent::enroll;
use bmclink_core::cert::ShortFingerprint;
use bmclink_core::proto::{
    Caps, Enroll, Enrolled, FrameReader, Message, Reject, RejectCode, Welcome, MAX_FRAME_LEN,
    PROTO_VERSION,
};

use crate::bmc::{Binding, BmcConfig, BmcState, EnrollFault};
use crate::timeline;

/// What the responder wants done with the connection after a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Keep it open.
    Open,
    /// Close it (after sending what was produced).
    Close,
}

/// One connection's protocol state.
pub struct Responder {
    reader: FrameReader<{ 4 * MAX_FRAME_LEN }>,
    tls: bool,
    stage: Stage,
    /// The client certificate fingerprint, on TLS connections.
    pub client_fingerprint: Option<[u8; 32]>,
    /// SHA-256 of the BMC's own certificate (what the enrollment proofs
    /// bind on the BMC's side), on TLS connections.
    pub server_fingerprint: Option<[u8; 32]>,
}

/// Where a connection is in DESIGN §5's message order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Nothing yet: HELLO must come first.
    Start,
    /// HELLO with `enrolling` arrived: ENROLL must follow at once.
    AwaitingEnroll,
    /// WELCOME sent.
    Greeted,
}

impl Responder {
    /// A responder for a connection over TLS (`tls`) or the plain port.
    pub fn new(tls: bool) -> Self {
        Responder {
            reader: FrameReader::new(),
            tls,
            stage: Stage::Start,
            client_fingerprint: None,
            server_fingerprint: None,
        }
    }

    /// The BMC's own certificate fingerprint, for the enrollment proofs.
    pub fn with_server(mut self, fingerprint: [u8; 32]) -> Self {
        self.server_fingerprint = Some(fingerprint);
        self
    }

    /// Whether a session is established (WELCOME sent).
    pub fn is_greeted(&self) -> bool {
        self.stage == Stage::Greeted
    }

    /// Feeds received plaintext; appends replies to `out`.
    pub fn on_bytes(
        &mut self,
        mut bytes: &[u8],
        cfg: &BmcConfig,
        state: &mut BmcState,
        out: &mut Vec<u8>,
    ) -> Next {
        while !bytes.is_empty() {
            let n = self.reader.push(bytes);
            bytes = &bytes[n..];
            loop {
                let msg = match self.reader.next_message() {
                    None => break,
                    Some(Ok(msg)) => msg,
                    Some(Err(e)) => {
                        timeline::emit("bmc", format!("protocol error from the agent: {e}"));
                        state
                            .log
                            .add("BMC0003", format!("protocol error from the OS agent: {e}"));
                        return Next::Close;
                    }
                };
                let peer = Peer {
                    tls: self.tls,
                    client_fingerprint: self.client_fingerprint,
                    server_fingerprint: self.server_fingerprint,
                };
                if handle(&msg, peer, &mut self.stage, cfg, state, out) == Next::Close {
                    return Next::Close;
                }
            }
            if n == 0 {
                break;
            }
        }
        Next::Open
    }
}

fn emit(msg: &Message<'_>, out: &mut Vec<u8>) {
    let mut buf = [0u8; MAX_FRAME_LEN];
    match msg.emit(&mut buf) {
        Ok(n) => out.extend_from_slice(&buf[..n]),
        Err(e) => timeline::emit("bmc", format!("cannot emit {msg:?}: {e}")),
    }
}

/// What the responder knows of the connection's far end.
#[derive(Debug, Clone, Copy)]
struct Peer {
    tls: bool,
    client_fingerprint: Option<[u8; 32]>,
    server_fingerprint: Option<[u8; 32]>,
}

fn reject(code: RejectCode, reason: &str, out: &mut Vec<u8>) {
    timeline::emit("bmc", format!("-> REJECT {code}"));
    emit(&Message::Reject(Reject { code, reason }), out);
}

/// Establishes the session: WELCOME with this firmware's facts.
fn welcome(how: String, cfg: &BmcConfig, state: &mut BmcState, out: &mut Vec<u8>) {
    if cfg.withhold_welcome {
        timeline::emit("bmc", format!("withholding WELCOME ({how})"));
        return;
    }
    state.session = state.session.wrapping_add(1);
    let caps = cfg.caps();
    let fw = cfg.firmware;
    timeline::emit(
        "bmc",
        format!(
            "-> WELCOME firmware {}.{}.{}.{} session {} caps {:#05b}",
            fw[0],
            fw[1],
            fw[2],
            fw[3],
            state.session,
            caps.bits()
        ),
    );
    state
        .log
        .add("BMC0001", format!("OS agent connected over {how}"));
    emit(
        &Message::Welcome(Welcome {
            proto: PROTO_VERSION,
            firmware: fw,
            caps,
            session: state.session,
        }),
        out,
    );
    if let Some(raw) = &cfg.inject_after_welcome {
        timeline::emit("bmc", format!("-> (injected {} raw bytes)", raw.len()));
        out.extend_from_slice(raw);
    }
}

fn handle(
    msg: &Message<'_>,
    peer: Peer,
    stage: &mut Stage,
    cfg: &BmcConfig,
    state: &mut BmcState,
    out: &mut Vec<u8>,
) -> Next {
    let tls = peer.tls;
    let over = if tls { "TLS" } else { "plain" };
    match msg {
        Message::Hello(h) if *stage == Stage::Start => {
            timeline::emit(
                "bmc",
                format!(
                    "<- HELLO agent {} host '{}' over {} ({over}){}",
                    h.agent_version,
                    h.hostname,
                    h.family,
                    if h.enrolling { ", enrolling" } else { "" }
                ),
            );
            if h.proto != PROTO_VERSION {
                reject(RejectCode::BadVersion, "unsupported protocol version", out);
                return Next::Close;
            }
            if !tls && cfg.tls_required() {
                // T6: a non-TLS agent on TLS-capable firmware fails, and the
                // BMC logs it (iSM 3.3 on iDRAC 3.30.30.30: ISM0050).
                state.log.add(
                    "ISM0050",
                    "OS agent without TLS tried to connect; TLS is required on the USBNIC".into(),
                );
                reject(
                    RejectCode::TlsRequired,
                    "TLS is required on this firmware",
                    out,
                );
                return Next::Close;
            }
            if !tls && h.enrolling {
                // §5: the flag is meaningless on the plain port.
                state
                    .log
                    .add("BMC0022", "OS agent tried to enroll outside TLS".into());
                reject(
                    RejectCode::BadCredential,
                    "enrollment is only possible over TLS",
                    out,
                );
                return Next::Close;
            }
            if tls && h.enrolling {
                // Answered only after the ENROLL that must follow.
                *stage = Stage::AwaitingEnroll;
                return Next::Open;
            }
            if tls
                && !peer
                    .client_fingerprint
                    .is_some_and(|fp| state.enrolled.contains(&fp))
            {
                let who = peer
                    .client_fingerprint
                    .map(|fp| ShortFingerprint::of(&fp).to_string())
                    .unwrap_or_else(|| "none".into());
                state.log.add(
                    "BMC0021",
                    format!(
                        "OS agent with a client certificate that is not enrolled ({who}) refused"
                    ),
                );
                reject(
                    RejectCode::NotEnrolled,
                    "client certificate not enrolled",
                    out,
                );
                return Next::Close;
            }
            welcome(format!("{} ({over})", h.family), cfg, state, out);
            *stage = Stage::Greeted;
            Next::Open
        }
        Message::Enroll(e) if *stage == Stage::AwaitingEnroll => {
            timeline::emit(
                "bmc",
                format!("<- ENROLL account '{}' over {over}", e.account),
            );
            state.enrolls += 1;
            let (Some(client), Some(server)) = (peer.client_fingerprint, peer.server_fingerprint)
            else {
                state
                    .log
                    .add("BMC0003", "ENROLL without both certificates".into());
                return Next::Close;
            };
            if cfg.enroll_fault == Some(EnrollFault::DropBeforeBind) && state.faults_left > 0 {
                state.faults_left -= 1;
                timeline::emit("bmc", "(dropping the connection before binding)");
                return Next::Close;
            }
            match check_enroll(e, client, server, cfg, state) {
                Ok(secret) => {
                    if cfg.enroll_fault == Some(EnrollFault::DropAfterBind) && state.faults_left > 0
                    {
                        state.faults_left -= 1;
                        timeline::emit("bmc", "(dropping the connection after binding)");
                        return Next::Close;
                    }
                    let mut proof = enroll::bmc_proof(secret.as_bytes(), &server, &client);
                    match cfg.enroll_fault {
                        Some(EnrollFault::ForgeEnrolled) => proof[0] ^= 1,
                        Some(EnrollFault::SkipEnrolled) => {
                            welcome("TLS (enrollment)".into(), cfg, state, out);
                            *stage = Stage::Greeted;
                            return Next::Open;
                        }
                        _ => {}
                    }
                    timeline::emit("bmc", "-> ENROLLED");
                    emit(&Message::Enrolled(Enrolled { proof }), out);
                    welcome("TLS (enrollment)".into(), cfg, state, out);
                    *stage = Stage::Greeted;
                    Next::Open
                }
                Err(why) => {
                    state
                        .log
                        .add("BMC0022", format!("OS agent enrollment refused: {why}"));
                    reject(RejectCode::BadCredential, why, out);
                    Next::Close
                }
            }
        }
        _ if *stage != Stage::Greeted => {
            timeline::emit(
                "bmc",
                format!("<- {} out of order (HELLO first, ENROLL right after an enrolling HELLO); closing", msg.msg_type()),
            );
            state.log.add(
                "BMC0003",
                format!("{} from the OS agent out of order", msg.msg_type()),
            );
            Next::Close
        }
        Message::Ping(seq) => {
            state.pings = state.pings.wrapping_add(1);
            if cfg.answer_ping {
                timeline::emit("bmc", format!("<- PING {seq}, -> PONG {seq}"));
                emit(&Message::Pong(*seq), out);
            } else {
                timeline::emit("bmc", format!("<- PING {seq} (not answering)"));
            }
            Next::Open
        }
        Message::Pong(seq) => {
            timeline::emit("bmc", format!("<- PONG {seq}"));
            Next::Open
        }
        Message::Event(ev) => {
            timeline::emit("bmc", format!("<- EVENT {} {}: {}", ev.seq, ev.id, ev.text));
            state
                .events
                .push((ev.seq, ev.id.to_string(), ev.text.to_string()));
            state.log.add("OSE0001", format!("{}: {}", ev.id, ev.text));
            emit(&Message::Ack(ev.seq), out);
            Next::Open
        }
        Message::Bye(reason) => {
            timeline::emit("bmc", format!("<- BYE reason {reason}"));
            state.log.add(
                "BMC0002",
                format!("OS agent said goodbye (reason {reason})"),
            );
            Next::Close
        }
        other => {
            timeline::emit("bmc", format!("<- unexpected {other:?}; closing"));
            state.log.add(
                "BMC0003",
                format!("unexpected message from the OS agent: {other:?}"),
            );
            Next::Close
        }
    }
}

/// §5a on the BMC's side: the proof must be the account's for these two
/// certificates; a fresh account is bound and retired, a retired one only
/// answers (idempotently) the certificate pair it bound. Returns the secret
/// for the ENROLLED proof.
fn check_enroll(
    e: &Enroll<'_>,
    client: [u8; 32],
    server: [u8; 32],
    cfg: &BmcConfig,
    state: &mut BmcState,
) -> Result<String, &'static str> {
    let secret = cfg.credential.clone();
    if e.account != cfg.account {
        return Err("unknown account");
    }
    let expected = enroll::host_proof(secret.as_bytes(), &server, &client);
    let valid = enroll::proofs_equal(&expected, &e.proof);
    let binding = Binding {
        account: cfg.account.clone(),
        secret: secret.clone(),
        client,
        server,
    };
    let retired = state.used_credentials.contains(&secret);
    if retired {
        // Idempotent: the same account, secret and certificates again.
        if valid && state.bindings.contains(&binding) {
            timeline::emit(
                "bmc",
                "ENROLL repeated for the same certificate: idempotent",
            );
            return Ok(secret);
        }
        let replayed = state.bindings.iter().any(|b| {
            b.account == cfg.account
                && enroll::proofs_equal(
                    &enroll::host_proof(b.secret.as_bytes(), &b.server, &b.client),
                    &e.proof,
                )
        });
        if cfg.enroll_fault == Some(EnrollFault::AcceptReplayedProof) && replayed {
            timeline::emit(
                "bmc",
                "(a known proof from another certificate: enrolled it)",
            );
            if !state.enrolled.contains(&client) {
                state.enrolled.push(client);
            }
            return Ok(secret);
        }
        return Err("account already used");
    }
    if !valid {
        state.bad_proofs += 1;
        if state.bad_proofs >= crate::bmc::MAX_BAD_PROOFS {
            // The BMC may retire an account after a few bad proofs (§5a).
            state.used_credentials.push(secret);
        }
        return Err("bad proof for this account and these certificates");
    }
    state.used_credentials.push(secret.clone());
    state.bindings.push(binding);
    if !state.enrolled.contains(&client) {
        state.enrolled.push(client);
    }
    state.log.add(
        "BMC0020",
        format!(
            "OS agent enrolled (client certificate {})",
            ShortFingerprint::of(&client)
        ),
    );
    Ok(secret)
}

impl BmcConfig {
    /// WELCOME's capability bits for this firmware.
    pub fn caps(&self) -> Caps {
        let mut caps = Caps::empty();
        if self.tls {
            caps = caps.union(Caps::TLS);
        }
        if self.tls_required() {
            caps = caps.union(Caps::TLS_REQUIRED);
        }
        if self.ipv6_usbnic {
            caps = caps.union(Caps::IPV6_USBNIC);
        }
        caps
    }
}
