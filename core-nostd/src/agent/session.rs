//! One channel session: HELLO, WELCOME, then heartbeats until it ends.
//!
//! The loop runs over any [`ChannelIo`] (plain or TLS) and pumps the stack
//! between messages, so the address claims keep defending while a session is
//! up. Whatever the BMC sends that the protocol does not allow ends the
//! session with [`SessionEnd::Protocol`]; nothing here panics.

use core::cell::RefCell;

use smoltcp::time::Instant;

use super::channel::{borrow, ChannelIo};
use super::control::Control;
use super::link::Link;
use super::net::{earliest, Net};
pub use super::status::Established;
use crate::audit::{AuditEvent, SessionEvent};
use crate::config::Config;
use crate::platform::{Audit, OsEvents, Wake};
use crate::proto::{Hello, Message, ProtoError, Welcome, MAX_FRAME_LEN, PROOF_LEN, PROTO_VERSION};
use crate::time::SaturatingAdd;
use crate::types::Family;
use crate::Platform;

use super::events::{EventQueue, EVENT_QUEUE};
use super::serving::Serving;
pub use super::serving::{Heartbeat, SessionEnd};

/// BYE reasons the agent sends.
pub mod bye {
    /// The agent is shutting down.
    pub const SHUTDOWN: u8 = 0;
    /// The agent is moving to another family or channel.
    pub const MOVING: u8 = 1;
}

/// Moves the platform's new OS events into the queue (called in `serve`
/// and by `Agent::run`, so events logged while disconnected are queued, and
/// dropped and counted on overflow, by the agent). When the queue overflowed
/// it records [`SessionEvent::OsEventsDropped`] once, with how many were
/// dropped by this call.
pub fn pull_events(
    now: Instant,
    p: &mut (impl Audit<AuditEvent> + OsEvents),
    events: &mut EventQueue<EVENT_QUEUE>,
) {
    let before = events.dropped();
    while let Some(e) = p.next_os_event() {
        events.push(e);
    }
    let total = events.dropped();
    if total > before {
        let event = SessionEvent::OsEventsDropped {
            dropped: total.saturating_sub(before),
            total,
        };
        p.record(now, &AuditEvent::Session(event));
    }
}

/// Bytes buffered from the channel, reassembled into frames.
pub type Reader = crate::proto::FrameReader<{ 2 * MAX_FRAME_LEN }>;

/// Leaves a connection that said HELLO but has no session yet (no
/// WELCOME): a stop or a move still says BYE with its reason (DESIGN §5),
/// so the BMC is not left waiting; other ends send nothing more.
pub fn leave_unwelcomed(ch: &mut impl ChannelIo, end: SessionEnd) -> SessionEnd {
    let reason = match end {
        SessionEnd::Stopped => bye::SHUTDOWN,
        SessionEnd::Moving => bye::MOVING,
        _ => return end,
    };
    let _ = send_message(ch, &Message::Bye(reason));
    end
}

/// Sends one message.
pub fn send_message(ch: &mut impl ChannelIo, msg: &Message<'_>) -> Result<(), SessionEnd> {
    let mut buf = [0u8; MAX_FRAME_LEN];
    let n = msg.emit(&mut buf).map_err(SessionEnd::Protocol)?;
    let frame = buf
        .get(..n)
        .ok_or(SessionEnd::Protocol(ProtoError::Truncated))?;
    ch.send(frame).map_err(SessionEnd::Channel)
}

/// Pulls whatever the channel has into the reader.
fn fill(ch: &mut impl ChannelIo, reader: &mut Reader) -> Result<usize, SessionEnd> {
    let spare = reader.spare_mut();
    if spare.is_empty() {
        return Ok(0);
    }
    let n = ch.recv(spare).map_err(SessionEnd::Channel)?;
    reader.commit(n);
    Ok(n)
}

/// The HELLO this agent sends: the first frame on every connection (§5).
pub fn hello(cfg: &Config, family: Family, tls: bool, enrolling: bool) -> Message<'static> {
    Message::Hello(Hello {
        proto: PROTO_VERSION,
        agent_version: cfg.agent_version,
        hostname: cfg.hostname,
        family,
        tls,
        enrolling,
    })
}

/// What the BMC answered a HELLO (or ENROLL) with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// WELCOME.
    Welcome(Established),
    /// ENROLLED with this proof.
    Enrolled([u8; PROOF_LEN]),
}

/// The deadline of the wait for WELCOME, from now.
pub fn welcome_deadline<P: Platform>(
    net: &RefCell<Net<'_, '_, P, Link>>,
    cfg: &Config,
) -> Result<Instant, SessionEnd> {
    Ok(borrow(net)
        .map_err(SessionEnd::Channel)?
        .now()
        .saturating_add(cfg.welcome_timeout))
}

/// What a frame received before WELCOME means (DESIGN §5, §5a): WELCOME
/// or ENROLLED answer; REJECT and BYE end the connection with their code,
/// and anything else, or a frame that does not parse, is a protocol error.
pub fn reply(msg: Result<Message<'_>, ProtoError>) -> Result<Reply, SessionEnd> {
    match msg.map_err(SessionEnd::Protocol)? {
        Message::Welcome(Welcome {
            firmware,
            caps,
            session,
            ..
        }) => Ok(Reply::Welcome(Established {
            firmware,
            caps: caps.bits(),
            session,
        })),
        Message::Enrolled(e) => Ok(Reply::Enrolled(e.proof)),
        Message::Reject(r) => Err(SessionEnd::Rejected(u8::from(r.code))),
        Message::Bye(reason) => Err(SessionEnd::PeerBye(reason)),
        other => Err(SessionEnd::Protocol(ProtoError::Unexpected(u8::from(
            other.msg_type(),
        )))),
    }
}

/// Waits for the BMC's answer until `deadline` (overall): WELCOME or
/// ENROLLED; REJECT, BYE and anything else end the connection.
#[allow(clippy::too_many_arguments)]
pub fn await_reply<P: Platform>(
    net: &RefCell<Net<'_, '_, P, Link>>,
    ch: &mut impl ChannelIo,
    reader: &mut Reader,
    cfg: &Config,
    ctl: &mut Control,
    family: Family,
    deadline: Instant,
) -> Result<Reply, SessionEnd> {
    loop {
        ctl.tick(cfg, &mut *borrow(net).map_err(SessionEnd::Channel)?);
        if ctl.disconnect[family] {
            return Err(SessionEnd::Moving);
        }
        // Everything the channel holds before waiting (a WELCOME may come
        // in two records).
        loop {
            let got = fill(ch, reader)?;
            if let Some(msg) = reader.next_message() {
                return reply(msg);
            }
            if got == 0 {
                break;
            }
        }
        let mut n = borrow(net).map_err(SessionEnd::Channel)?;
        if n.now() >= deadline {
            return Err(SessionEnd::NoWelcome);
        }
        if n.wait(earliest(Some(deadline), ctl.poll_at())) == Wake::Stop {
            return Err(SessionEnd::Stopped);
        }
    }
}

/// Sends HELLO and waits for WELCOME (or REJECT) until the WELCOME deadline.
pub fn greet<P: Platform>(
    net: &RefCell<Net<'_, '_, P, Link>>,
    ch: &mut impl ChannelIo,
    reader: &mut Reader,
    cfg: &Config,
    ctl: &mut Control,
    family: Family,
    first: &Message<'_>,
) -> Result<Established, SessionEnd> {
    send_message(ch, first)?;
    info!("{} sent over {}", first.msg_type(), family);
    let deadline = welcome_deadline(net, cfg)?;
    match await_reply(net, ch, reader, cfg, ctl, family, deadline)? {
        Reply::Welcome(est) => Ok(est),
        Reply::Enrolled(_) => Err(SessionEnd::Protocol(ProtoError::Unexpected(u8::from(
            crate::proto::MessageType::Enrolled,
        )))),
    }
}

/// Runs an established session until it ends: the session's protocol is
/// [`Serving`]'s (PONGs, PINGs every heartbeat interval, the BMC dead after
/// `heartbeat_misses` unanswered, OS events); this loop moves its frames
/// to and from the channel, runs the control loop between rounds, and says
/// BYE when the platform asks to stop or the policy moves away.
pub fn serve<P: Platform>(
    net: &RefCell<Net<'_, '_, P, Link>>,
    ch: &mut impl ChannelIo,
    reader: &mut Reader,
    cfg: &Config,
    ctl: &mut Control,
    family: Family,
    hb: &mut Heartbeat,
) -> SessionEnd {
    let now = match borrow(net) {
        Ok(n) => n.now(),
        Err(e) => return SessionEnd::Channel(e),
    };
    let mut s = Serving::start(now, cfg, hb);
    let mut buf = [0u8; MAX_FRAME_LEN];
    loop {
        // Run the stack and the policy, then drain what arrived.
        let now = match borrow(net) {
            Ok(mut n) => {
                ctl.tick(cfg, &mut n);
                let now = n.now();
                pull_events(now, n.p, s.events());
                now
            }
            Err(e) => return SessionEnd::Channel(e),
        };
        if ctl.disconnect[family] {
            let _ = send_message(ch, &Message::Bye(bye::MOVING));
            return SessionEnd::Moving;
        }
        // Everything the channel holds, not one read's worth: a TLS read
        // gives at most one record, and bytes left in it would otherwise
        // wait for the next frame.
        loop {
            let got = match fill(ch, reader) {
                Ok(got) => got,
                Err(end) => return end,
            };
            while let Some(msg) = reader.next_message() {
                s.handle_message(msg);
                if let Err(end) = transmit(ch, &mut s, now, &mut buf) {
                    return end;
                }
            }
            if got == 0 {
                break;
            }
        }
        // The clock again: the sends above may have waited for room.
        let now = match borrow(net) {
            Ok(n) => n.now(),
            Err(e) => return SessionEnd::Channel(e),
        };
        s.handle_timeout();
        if let Err(end) = transmit(ch, &mut s, now, &mut buf) {
            return end;
        }
        // Wait for the next frame or timer.
        let mut n = match borrow(net) {
            Ok(n) => n,
            Err(e) => return SessionEnd::Channel(e),
        };
        n.poll();
        if n.tcp(family).can_recv() {
            // More arrived while we were answering: no waiting.
            continue;
        }
        if n.wait(earliest(Some(s.poll_timeout()), ctl.poll_at())) == Wake::Stop {
            drop(n);
            // Best effort: the session is ending either way.
            let _ = send_message(ch, &Message::Bye(bye::SHUTDOWN));
            return SessionEnd::Stopped;
        }
    }
}

/// Sends what the session has to send now; its end, once it ended.
fn transmit(
    ch: &mut impl ChannelIo,
    s: &mut Serving<'_>,
    now: Instant,
    buf: &mut [u8],
) -> Result<(), SessionEnd> {
    while let Some(n) = s.poll_transmit(now, buf) {
        let frame = buf
            .get(..n)
            .ok_or(SessionEnd::Protocol(ProtoError::Truncated))?;
        ch.send(frame).map_err(SessionEnd::Channel)?;
    }
    match s.end() {
        Some(end) => Err(end),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{Caps, Enrolled, Reject, RejectCode, PROOF_LEN};

    #[test]
    fn before_welcome_welcome_and_enrolled_answer_and_everything_else_ends_the_connection() {
        let welcome = Message::Welcome(Welcome {
            proto: PROTO_VERSION,
            firmware: [3, 30, 30, 30],
            caps: Caps::TLS,
            session: 9,
        });
        assert_eq!(
            reply(Ok(welcome)),
            Ok(Reply::Welcome(Established {
                firmware: [3, 30, 30, 30],
                caps: Caps::TLS.bits(),
                session: 9
            }))
        );
        let proof = [7; PROOF_LEN];
        assert_eq!(
            reply(Ok(Message::Enrolled(Enrolled { proof }))),
            Ok(Reply::Enrolled(proof))
        );
        assert_eq!(
            reply(Ok(Message::Reject(Reject {
                code: RejectCode::BadCredential,
                reason: "bad credential",
            }))),
            Err(SessionEnd::Rejected(u8::from(RejectCode::BadCredential)))
        );
        assert_eq!(reply(Ok(Message::Bye(1))), Err(SessionEnd::PeerBye(1)));
        assert!(matches!(
            reply(Ok(Message::Ping(1))),
            Err(SessionEnd::Protocol(ProtoError::Unexpected(_)))
        ));
        assert_eq!(
            reply(Err(ProtoError::Truncated)),
            Err(SessionEnd::Protocol(ProtoError::Truncated))
        );
    }
}
