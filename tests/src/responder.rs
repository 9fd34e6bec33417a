//! The simulated BMC's side of the channel protocol, sans-I/O: plaintext
//! bytes in, plaintext bytes out, a Lifecycle log on the side. The TLS and
//! plain transports both feed it.

use bmclink_core::proto::{
    Caps, FrameReader, Message, RejectCode, Welcome, MAX_FRAME_LEN, PROTO_VERSION,
};

use crate::bmc::BmcConfig;
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

    /// Feeds received plaintext; appends replies to `out`.
    pub fn on_bytes(
        &mut self,
        mut bytes: &[u8],
        cfg: &BmcConfig,
        state: &mut crate::bmc::BmcState,
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
                if handle(&msg, self.tls, &mut self.greeted, cfg, state, out) == Next::Close {
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

fn handle(
    msg: &Message<'_>,
    tls: bool,
    greeted: &mut bool,
    cfg: &BmcConfig,
    state: &mut crate::bmc::BmcState,
    out: &mut Vec<u8>,
) -> Next {
    match msg {
        Message::Hello(h) => {
            timeline::emit(
                "bmc",
                format!(
                    "<- HELLO agent {} host '{}' over {} ({})",
                    h.agent_version,
                    h.hostname,
                    h.family,
                    if tls { "TLS" } else { "plain" }
                ),
            );
            if h.proto != PROTO_VERSION {
                emit(
                    &Message::Reject(bmclink_core::proto::Reject {
                        code: RejectCode::BadVersion,
                        reason: "unsupported protocol version",
                    }),
                    out,
                );
                return Next::Close;
            }
            if !tls && cfg.tls_required() {
                // T6: a non-TLS agent on TLS-capable firmware fails, and the
                // BMC logs it (iSM 3.3 on iDRAC 3.30.30.30: ISM0050).
                state.log.add(
                    "ISM0050",
                    "OS agent without TLS tried to connect; TLS is required on the USBNIC".into(),
                );
                timeline::emit("bmc", "-> REJECT tls-required");
                emit(
                    &Message::Reject(bmclink_core::proto::Reject {
                        code: RejectCode::TlsRequired,
                        reason: "TLS is required on this firmware",
                    }),
                    out,
                );
                return Next::Close;
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
            state.log.add(
                "BMC0001",
                format!(
                    "OS agent connected over {} ({})",
                    h.family,
                    if tls { "TLS" } else { "plain" }
                ),
            );
            emit(
                &Message::Welcome(Welcome {
                    proto: PROTO_VERSION,
                    firmware: fw,
                    caps,
                    session: state.session,
                }),
                out,
            );
            *greeted = true;
            if let Some(raw) = &cfg.inject_after_welcome {
                timeline::emit("bmc", format!("-> (injected {} raw bytes)", raw.len()));
                out.extend_from_slice(raw);
            }
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
