//! An established session's protocol, sans I/O: what to answer, when to
//! PING, when the BMC is dead, which OS events go out, in the quinn-proto
//! shape (`handle_message`, `handle_timeout`, `poll_transmit(now, buf)`,
//! `poll_timeout`). It reads no socket and waits for nothing; the session
//! loop ([`super::session::serve`]) moves frames between it and the channel.
//!
//! Order on the wire, as DESIGN §5 has it: a PONG goes out right after the
//! PING it answers; the OS events the window allows and the heartbeat's PING
//! go out at the end of each round (after the frames read in it), events
//! first.

use core::fmt::Write;

use smoltcp::time::{Duration, Instant};

use super::channel::ChannelError;
use super::events::{Entry, EventQueue, DROPPED_ID, DROPPED_SEVERITY, EVENT_QUEUE};
use crate::config::Config;
use crate::proto::{Message, ProtoError};
use crate::time::SaturatingAdd;

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SessionEnd {
    /// The platform asked to stop; BYE was sent.
    Stopped,
    /// The BMC said BYE with this reason.
    PeerBye(u8),
    /// The BMC missed this many heartbeats in a row.
    PeerDead(u8),
    /// The BMC sent something the protocol does not allow.
    Protocol(ProtoError),
    /// The BMC refused the session with this REJECT code.
    Rejected(u8),
    /// No WELCOME within the connect timeout.
    NoWelcome,
    /// The channel failed (TCP closed or reset, TLS failure).
    Channel(ChannelError),
    /// The policy moved away from this family (race mode back to IPv4,
    /// address lost); BYE was sent.
    Moving,
    /// The BMC now offers TLS (firmware upgrade, T7): the plain session ends
    /// so the next connection enrolls.
    Upgrade,
    /// The connection could not be trusted (no trust source, a failed
    /// enrollment proof): it ends without a session, audited already.
    Untrusted,
}

/// Heartbeat bookkeeping that outlives one session (sequence numbers keep
/// counting so a trace never shows the same PING twice), and the OS events
/// on their way to the BMC, kept across sessions until ACKed.
#[derive(Debug, Default)]
pub struct Heartbeat {
    seq: u32,
    outstanding: Option<u32>,
    missed: u8,
    /// OS events not yet ACKed by the BMC.
    pub events: EventQueue<EVENT_QUEUE>,
}

/// One established session, borrowing the heartbeat state that outlives it.
/// Between polls the agent keeps only its [`ServingState`] ([`Self::state`],
/// [`Self::resume`]).
#[derive(Debug)]
pub struct Serving<'h> {
    hb: &'h mut Heartbeat,
    s: ServingState,
}

/// What a session knows apart from the heartbeat state it borrows: small
/// and `Copy`, kept by the agent between polls.
#[derive(Debug, Clone, Copy)]
pub struct ServingState {
    heartbeat: Duration,
    misses: u8,
    next_ping: Instant,
    /// The PING to answer, if one came since the last `poll_transmit`.
    pong: Option<u32>,
    /// A round ended (`handle_timeout`): events and the PING may go.
    round: bool,
    end: Option<SessionEnd>,
}

impl ServingState {
    /// When the session next needs a round (the next PING).
    pub fn poll_timeout(&self) -> Instant {
        self.next_ping
    }
}

impl<'h> Serving<'h> {
    /// A session that starts at `now` (WELCOME). Whatever the last session
    /// did not see ACKed goes again; the first PING is due a heartbeat
    /// interval from now.
    pub fn start(now: Instant, cfg: &Config, hb: &'h mut Heartbeat) -> Self {
        hb.outstanding = None;
        hb.missed = 0;
        hb.events.resend_all();
        Serving {
            hb,
            s: ServingState {
                heartbeat: cfg.heartbeat,
                misses: cfg.heartbeat_misses,
                next_ping: now.saturating_add(cfg.heartbeat),
                pong: None,
                round: false,
                end: None,
            },
        }
    }

    /// The session `state` was taken from ([`Self::state`]), going on.
    pub fn resume(hb: &'h mut Heartbeat, state: ServingState) -> Self {
        Serving { hb, s: state }
    }

    /// What to keep until the next poll.
    pub fn state(&self) -> ServingState {
        self.s
    }

    /// Takes one frame the BMC sent (or why it could not be read). PING is
    /// answered at the next `poll_transmit`; anything the protocol does not
    /// allow in a session ends it.
    pub fn handle_message(&mut self, msg: Result<Message<'_>, ProtoError>) {
        if self.s.end.is_some() {
            return;
        }
        match msg {
            Err(e) => self.s.end = Some(SessionEnd::Protocol(e)),
            Ok(Message::Ping(seq)) => self.s.pong = Some(seq),
            Ok(Message::Pong(seq)) => {
                if self.hb.outstanding == Some(seq) {
                    self.hb.outstanding = None;
                    self.hb.missed = 0;
                    debug!("PONG {}", seq);
                }
            }
            Ok(Message::Ack(seq)) => {
                // An ACK for an event never sent is a protocol error and
                // acknowledges nothing (DESIGN §5: nothing is lost).
                if !self.hb.events.ack(seq) {
                    self.s.end = Some(SessionEnd::Protocol(ProtoError::UnexpectedAck(seq)));
                }
            }
            Ok(Message::Bye(reason)) => self.s.end = Some(SessionEnd::PeerBye(reason)),
            Ok(other) => {
                self.s.end = Some(SessionEnd::Protocol(ProtoError::Unexpected(u8::from(
                    other.msg_type(),
                ))))
            }
        }
    }

    /// The round is over: the events the window allows, then the PING when
    /// it is due, leave at the next `poll_transmit`.
    pub fn handle_timeout(&mut self) {
        self.s.round = true;
    }

    /// Writes the next frame to send into `buf` and returns its length;
    /// `None` when there is nothing more this round, or the session ended
    /// ([`Self::end`]).
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        if self.s.end.is_some() {
            return None;
        }
        if let Some(seq) = self.s.pong.take() {
            return emit(&mut self.s.end, &Message::Pong(seq), buf);
        }
        if !self.s.round {
            return None;
        }
        if let Some(n) = self.next_event(buf) {
            return Some(n);
        }
        self.s.round = false;
        if now < self.s.next_ping {
            return None;
        }
        if self.hb.outstanding.is_some() {
            self.hb.missed = self.hb.missed.saturating_add(1);
            if self.hb.missed >= self.s.misses {
                self.s.end = Some(SessionEnd::PeerDead(self.hb.missed));
                return None;
            }
        }
        self.hb.seq = self.hb.seq.wrapping_add(1);
        self.hb.outstanding = Some(self.hb.seq);
        self.s.next_ping = now.saturating_add(self.s.heartbeat);
        debug!("PING {}", self.hb.seq);
        emit(&mut self.s.end, &Message::Ping(self.hb.seq), buf)
    }

    /// The OS events on their way, to queue new ones.
    pub fn events(&mut self) -> &mut EventQueue<EVENT_QUEUE> {
        &mut self.hb.events
    }

    /// When the session next needs `handle_timeout` (the next PING).
    pub fn poll_timeout(&self) -> Instant {
        self.s.next_ping
    }

    /// How the session ended, once it did.
    pub fn end(&self) -> Option<SessionEnd> {
        self.s.end
    }

    /// The next queued OS event the window allows, as EVENT.
    fn next_event(&mut self, buf: &mut [u8]) -> Option<usize> {
        let q = self.hb.events.next_to_send()?;
        let mut text: heapless::String<64> = heapless::String::new();
        let (severity, id, text) = match &q.entry {
            Entry::Os(e) => (e.severity, e.id.as_str(), e.text.as_str()),
            Entry::Dropped(n) => {
                // Fits: the longest u32 and the words are under 64 bytes.
                let _ = write!(text, "{n} OS events dropped: the queue was full");
                (DROPPED_SEVERITY, DROPPED_ID, text.as_str())
            }
        };
        let msg = Message::Event(crate::proto::Event {
            seq: q.seq,
            severity,
            id,
            text,
        });
        // `q` borrows the queue: the end is the only other field touched.
        emit(&mut self.s.end, &msg, buf)
    }
}

/// Writes `msg` into `buf`; a message that cannot be written ends the
/// session (`end`).
fn emit(end: &mut Option<SessionEnd>, msg: &Message<'_>, buf: &mut [u8]) -> Option<usize> {
    match msg.emit(buf) {
        Ok(n) => Some(n),
        Err(e) => {
            *end = Some(SessionEnd::Protocol(e));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;
    use crate::platform::OsEvent;
    use crate::proto::{FrameReader, MAX_FRAME_LEN};

    fn cfg() -> Config {
        Config::default()
    }

    fn at(secs: u64) -> Instant {
        Instant::from_secs(secs as i64)
    }

    /// Everything the session sends now, decoded.
    fn sent(s: &mut Serving<'_>, now: Instant) -> Vec<Message<'static>> {
        let mut out = Vec::new();
        let mut buf = [0u8; MAX_FRAME_LEN];
        while let Some(n) = s.poll_transmit(now, &mut buf) {
            let mut reader = FrameReader::<{ 2 * MAX_FRAME_LEN }>::new();
            reader.spare_mut()[..n].copy_from_slice(&buf[..n]);
            reader.commit(n);
            let msg = reader.next_message().unwrap().unwrap();
            out.push(match msg {
                Message::Ping(s) => Message::Ping(s),
                Message::Pong(s) => Message::Pong(s),
                Message::Event(e) => Message::Event(crate::proto::Event {
                    seq: e.seq,
                    severity: e.severity,
                    id: std::string::String::from(e.id).leak(),
                    text: std::string::String::from(e.text).leak(),
                }),
                other => panic!("unexpected {other:?}"),
            });
        }
        out
    }

    fn round(s: &mut Serving<'_>, now: Instant) -> Vec<Message<'static>> {
        s.handle_timeout();
        sent(s, now)
    }

    #[test]
    fn a_ping_is_answered_with_its_pong_at_once_and_nothing_else() {
        let mut hb = Heartbeat::default();
        let mut s = Serving::start(at(0), &cfg(), &mut hb);
        s.handle_message(Ok(Message::Ping(41)));
        assert_eq!(sent(&mut s, at(1)), [Message::Pong(41)]);
        assert_eq!(s.end(), None);
    }

    #[test]
    fn the_first_ping_goes_a_heartbeat_after_welcome_and_then_every_heartbeat() {
        let mut hb = Heartbeat::default();
        let mut s = Serving::start(at(100), &cfg(), &mut hb);
        assert_eq!(s.poll_timeout(), at(110));
        assert_eq!(round(&mut s, at(109)), []);
        assert_eq!(round(&mut s, at(110)), [Message::Ping(1)]);
        s.handle_message(Ok(Message::Pong(1)));
        assert_eq!(s.poll_timeout(), at(120));
        assert_eq!(round(&mut s, at(120)), [Message::Ping(2)]);
    }

    #[test]
    fn the_bmc_is_dead_after_heartbeat_misses_unanswered_pings() {
        let mut hb = Heartbeat::default();
        let mut s = Serving::start(at(0), &cfg(), &mut hb);
        assert_eq!(round(&mut s, at(10)), [Message::Ping(1)]);
        assert_eq!(round(&mut s, at(20)), [Message::Ping(2)]);
        assert_eq!(round(&mut s, at(30)), [Message::Ping(3)]);
        assert_eq!(s.end(), None);
        // The third PING is unanswered a heartbeat later: three misses.
        assert_eq!(round(&mut s, at(40)), []);
        assert_eq!(s.end(), Some(SessionEnd::PeerDead(3)));
    }

    #[test]
    fn a_pong_for_an_older_ping_does_not_count_as_an_answer() {
        let mut hb = Heartbeat::default();
        let mut s = Serving::start(at(0), &cfg(), &mut hb);
        round(&mut s, at(10));
        round(&mut s, at(20));
        s.handle_message(Ok(Message::Pong(1)));
        round(&mut s, at(30));
        round(&mut s, at(40));
        assert_eq!(s.end(), Some(SessionEnd::PeerDead(3)));

        let mut hb = Heartbeat::default();
        let mut s = Serving::start(at(0), &cfg(), &mut hb);
        round(&mut s, at(10));
        round(&mut s, at(20));
        s.handle_message(Ok(Message::Pong(2)));
        round(&mut s, at(30));
        round(&mut s, at(40));
        assert_eq!(
            s.end(),
            None,
            "the answer to the latest PING resets the count"
        );
    }

    #[test]
    fn an_ack_for_an_event_never_sent_ends_the_session_and_acknowledges_nothing() {
        let mut hb = Heartbeat::default();
        hb.events.push(OsEvent::new(3, "OS1", "one"));
        let mut s = Serving::start(at(0), &cfg(), &mut hb);
        s.handle_message(Ok(Message::Ack(7)));
        assert_eq!(
            s.end(),
            Some(SessionEnd::Protocol(ProtoError::UnexpectedAck(7)))
        );
        assert_eq!(round(&mut s, at(0)), [], "an ended session sends nothing");
        assert_eq!(hb.events.iter().count(), 1, "the event is kept");
    }

    #[test]
    fn os_events_go_at_the_end_of_a_round_in_order_and_unacked_ones_again_next_session() {
        let mut hb = Heartbeat::default();
        for i in 0..2 {
            hb.events
                .push(OsEvent::new(3, "OS1", &std::format!("event {i}")));
        }
        let mut s = Serving::start(at(0), &cfg(), &mut hb);
        s.handle_message(Ok(Message::Ping(5)));
        // The PONG at once; the events wait for the round's end.
        assert_eq!(sent(&mut s, at(1)), [Message::Pong(5)]);
        let texts = |msgs: Vec<Message<'static>>| -> Vec<(u32, &'static str)> {
            msgs.into_iter()
                .map(|m| match m {
                    Message::Event(e) => (e.seq, e.text),
                    other => panic!("{other:?}"),
                })
                .collect()
        };
        let first = texts(round(&mut s, at(1)));
        assert_eq!(
            first.iter().map(|e| e.1).collect::<Vec<_>>(),
            ["event 0", "event 1"]
        );
        s.handle_message(Ok(Message::Ack(first[0].0)));
        assert_eq!(s.end(), None);
        // A new session sends what was not ACKed, with its sequence number.
        let mut s = Serving::start(at(50), &cfg(), &mut hb);
        assert_eq!(texts(round(&mut s, at(50))), [first[1]]);
    }

    #[test]
    fn bye_and_messages_outside_a_session_end_it() {
        let mut hb = Heartbeat::default();
        let mut s = Serving::start(at(0), &cfg(), &mut hb);
        s.handle_message(Ok(Message::Bye(2)));
        assert_eq!(s.end(), Some(SessionEnd::PeerBye(2)));

        let mut hb = Heartbeat::default();
        let mut s = Serving::start(at(0), &cfg(), &mut hb);
        s.handle_message(Ok(Message::Enrolled(crate::proto::Enrolled {
            proof: [0; crate::proto::PROOF_LEN],
        })));
        assert!(matches!(
            s.end(),
            Some(SessionEnd::Protocol(ProtoError::Unexpected(_)))
        ));

        let mut hb = Heartbeat::default();
        let mut s = Serving::start(at(0), &cfg(), &mut hb);
        s.handle_message(Err(ProtoError::Truncated));
        assert_eq!(s.end(), Some(SessionEnd::Protocol(ProtoError::Truncated)));
    }
}
