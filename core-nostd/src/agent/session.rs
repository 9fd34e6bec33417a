//! What a connection says and reads, as pure functions: the HELLO that
//! opens it, what a frame before WELCOME means ([`reply`]), BYE's reasons,
//! and the OS-event intake. The connection's phases that use them are
//! [`super::conn`]'s; the established session's protocol is
//! [`super::serving`]'s.

use smoltcp::time::Instant;

pub use super::status::Established;
use crate::audit::{AuditEvent, SessionEvent};
use crate::config::Config;
use crate::platform::{Audit, OsEvents};
use crate::proto::{Hello, Message, ProtoError, Welcome, MAX_FRAME_LEN, PROOF_LEN, PROTO_VERSION};
use crate::types::Family;

use super::events::{EventQueue, EVENT_QUEUE};
pub use super::serving::{Heartbeat, SessionEnd};

/// BYE reasons the agent sends.
pub mod bye {
    /// The agent is shutting down.
    pub const SHUTDOWN: u8 = 0;
    /// The agent is moving to another family or channel.
    pub const MOVING: u8 = 1;
}

/// Moves the platform's new OS events into the queue (called by every
/// `Agent::handle_timeout`, so events logged while disconnected are queued, and
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
