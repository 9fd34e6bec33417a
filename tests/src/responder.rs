//! The simulated BMC's side of the channel protocol, sans-I/O: plaintext
//! bytes in, plaintext bytes out, a Lifecycle log on the side. The TLS and
//! plain transports both feed it.

use bmclink_core::cert::ShortFingerprint;
use bmclink_core::proto::{
    Caps, FrameReader, Message, Reject, RejectCode, Welcome, MAX_FRAME_LEN, PROTO_VERSION,
};

use crate::bmc::{BmcConfig, BmcState};
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
    greeted: bool,
    /// The client certificate fingerprint, on TLS connections.
    pub client_fingerprint: Option<[u8; 32]>,
}

impl Responder {
    /// A responder for a connection over TLS (`tls`) or the plain port.
    pub fn new(tls: bool) -> Self {
        Responder {
            reader: FrameReader::new(),
            tls,
            greeted: false,
            client_fingerprint: None,
        }
    }

    /// Whether a session is established (WELCOME sent).
    pub fn is_greeted(&self) -> bool {
        self.greeted
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
                };
                if handle(&msg, peer, &mut self.greeted, cfg, state, out) == Next::Close {
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
}

fn reject(code: RejectCode, reason: &str, out: &mut Vec<u8>) {
    timeline::emit("bmc", format!("-> REJECT {code}"));
    emit(&Message::Reject(Reject { code, reason }), out);
}

/// Establishes the session: WELCOME with this firmware's facts.
fn welcome(how: String, cfg: &BmcConfig, state: &mut BmcState, out: &mut Vec<u8>) {
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
    greeted: &mut bool,
    cfg: &BmcConfig,
    state: &mut BmcState,
    out: &mut Vec<u8>,
) -> Next {
    let tls = peer.tls;
    let over = if tls { "TLS" } else { "plain" };
    match msg {
        Message::Hello(h) => {
            timeline::emit(
                "bmc",
                format!(
                    "<- HELLO agent {} host '{}' over {} ({over})",
                    h.agent_version, h.hostname, h.family
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
            *greeted = true;
            Next::Open
        }
        Message::Enroll(e) if !*greeted => {
            timeline::emit("bmc", format!("<- ENROLL over {over}"));
            let Some(fp) = peer.client_fingerprint.filter(|_| tls) else {
                // ENROLL is defined inside TLS only: without a client
                // certificate there is nothing to bind.
                state
                    .log
                    .add("BMC0003", "OS agent sent ENROLL outside TLS".into());
                reject(
                    RejectCode::TlsRequired,
                    "enrollment is only possible over TLS",
                    out,
                );
                return Next::Close;
            };
            let fresh = e.credential == cfg.credential
                && !state.used_credentials.iter().any(|c| c == e.credential);
            if !fresh {
                state.log.add(
                    "BMC0022",
                    "OS agent enrollment refused: wrong or already used credential".into(),
                );
                reject(
                    RejectCode::BadCredential,
                    "wrong or already used enrollment credential",
                    out,
                );
                return Next::Close;
            }
            state.used_credentials.push(cfg.credential.clone());
            if !state.enrolled.contains(&fp) {
                state.enrolled.push(fp);
            }
            state.log.add(
                "BMC0020",
                format!(
                    "OS agent enrolled (client certificate {})",
                    ShortFingerprint::of(&fp)
                ),
            );
            welcome("TLS (enrollment)".into(), cfg, state, out);
            *greeted = true;
            Next::Open
        }
        _ if !*greeted => {
            timeline::emit("bmc", format!("<- {msg:?} before HELLO; closing"));
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
