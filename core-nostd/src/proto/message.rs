//! The high-level representation of the ten v1 messages, with
//! `parse` / `buffer_len` / `emit` in the style of smoltcp's `Repr`.

use super::cursor::{str8_len_byte, str8_wire_len, BodyReader, BodyWriter};
use super::packet::{MessageType, Packet};
use super::{Caps, ProtoError, RejectCode, HEADER_LEN};
use crate::types::Family;

/// HELLO `flags` bit 0: the agent came over the TLS channel.
const HELLO_FLAG_TLS: u8 = 0x01;
/// HELLO `flags` bit 1: an ENROLL follows at once (§5).
const HELLO_FLAG_ENROLLING: u8 = 0x02;

/// Length of the HMAC-SHA256 proofs in ENROLL and ENROLLED (§5a).
pub const PROOF_LEN: usize = 32;

/// HELLO: the agent opens a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Hello<'a> {
    /// The protocol version the agent speaks ([`super::PROTO_VERSION`]).
    pub proto: u8,
    /// The agent's version string, e.g. `"bmclink 0.1.0"`.
    pub agent_version: &'a str,
    /// The host's name, for the BMC's log.
    pub hostname: &'a str,
    /// The IP family the connection runs over.
    pub family: Family,
    /// Whether the connection runs inside TLS (`flags` bit 0).
    pub tls: bool,
    /// Whether an ENROLL follows this HELLO at once (`flags` bit 1).
    pub enrolling: bool,
}

/// WELCOME: the BMC accepts a session (or an enrollment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Welcome {
    /// The protocol version the BMC speaks.
    pub proto: u8,
    /// The BMC firmware version, four numbers (e.g. 7.10.30.0).
    pub firmware: [u8; 4],
    /// What the BMC offers.
    pub caps: Caps,
    /// The BMC's identifier for this session.
    pub session: u32,
}

/// REJECT: the BMC refuses a session or an enrollment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Reject<'a> {
    /// Why, as a code.
    pub code: RejectCode,
    /// Why, for a person.
    pub reason: &'a str,
}

/// ENROLL: the agent binds its certificate with the one-time account
/// (inside TLS only, right after HELLO).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Enroll<'a> {
    /// The one-time account's name (the bootstrap user name).
    pub account: &'a str,
    /// `HMAC-SHA256(secret, "bmclink enroll host" || bmc_fp || client_fp)`.
    pub proof: [u8; PROOF_LEN],
}

/// ENROLLED: the BMC's answer to a good ENROLL, before WELCOME.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Enrolled {
    /// `HMAC-SHA256(secret, "bmclink enroll bmc" || bmc_fp || client_fp)`.
    pub proof: [u8; PROOF_LEN],
}

/// EVENT: an OS event for the BMC's log, delivered at least once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Event<'a> {
    /// The agent's sequence number, echoed by ACK.
    pub seq: u32,
    /// The event's severity (the agent's audit severity code).
    pub severity: u8,
    /// The stable event ID, e.g. `"BL2001"`.
    pub id: &'a str,
    /// The one-line text.
    pub text: &'a str,
}

/// One channel-protocol v1 message. Strings borrow from the frame it was
/// parsed from (or from the caller, when emitting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Message<'a> {
    /// 0x01, agent to BMC.
    Hello(Hello<'a>),
    /// 0x02, BMC to agent.
    Welcome(Welcome),
    /// 0x03, BMC to agent.
    Reject(Reject<'a>),
    /// 0x04, agent to BMC.
    Enroll(Enroll<'a>),
    /// 0x05, either way: heartbeat with this sequence number.
    Ping(u32),
    /// 0x06, either way: answer to the PING with this sequence number.
    Pong(u32),
    /// 0x07, agent to BMC.
    Event(Event<'a>),
    /// 0x08, BMC to agent: the EVENT with this sequence number is stored.
    Ack(u32),
    /// 0x09, either way: orderly close, with a reason byte.
    Bye(u8),
    /// 0x0A, BMC to agent.
    Enrolled(Enrolled),
}

impl<'a> Message<'a> {
    /// The type byte this message is sent with.
    pub fn msg_type(&self) -> MessageType {
        match self {
            Message::Hello(_) => MessageType::Hello,
            Message::Welcome(_) => MessageType::Welcome,
            Message::Reject(_) => MessageType::Reject,
            Message::Enroll(_) => MessageType::Enroll,
            Message::Ping(_) => MessageType::Ping,
            Message::Pong(_) => MessageType::Pong,
            Message::Event(_) => MessageType::Event,
            Message::Ack(_) => MessageType::Ack,
            Message::Bye(_) => MessageType::Bye,
            Message::Enrolled(_) => MessageType::Enrolled,
        }
    }

    /// Parses a frame. The packet's length is checked here, so an unchecked
    /// packet is fine; the body must be consumed exactly.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&'a T>) -> Result<Self, ProtoError> {
        packet.check_len()?;
        let mut r = BodyReader::new(packet.body());
        let message = match packet.msg_type() {
            MessageType::Hello => Message::Hello(Hello {
                proto: r.u8()?,
                agent_version: r.str8()?,
                hostname: r.str8()?,
                family: family_from_wire(r.u8()?)?,
                tls: false,
                enrolling: false,
            })
            .with_flags(r.u8()?)?,
            MessageType::Welcome => Message::Welcome(Welcome {
                proto: r.u8()?,
                firmware: r.array::<4>()?,
                caps: Caps::from_bits(r.u8()?),
                session: r.u32()?,
            }),
            MessageType::Reject => Message::Reject(Reject {
                code: RejectCode::from(r.u8()?),
                reason: r.str8()?,
            }),
            MessageType::Enroll => Message::Enroll(Enroll {
                account: r.str8()?,
                proof: r.array::<PROOF_LEN>()?,
            }),
            MessageType::Enrolled => Message::Enrolled(Enrolled {
                proof: r.array::<PROOF_LEN>()?,
            }),
            MessageType::Ping => Message::Ping(r.u32()?),
            MessageType::Pong => Message::Pong(r.u32()?),
            MessageType::Event => Message::Event(Event {
                seq: r.u32()?,
                severity: r.u8()?,
                id: r.str8()?,
                text: r.str8()?,
            }),
            MessageType::Ack => Message::Ack(r.u32()?),
            MessageType::Bye => Message::Bye(r.u8()?),
            MessageType::Unknown(t) => return Err(ProtoError::UnknownType(t)),
        };
        r.finish()?;
        Ok(message)
    }

    /// Parses a buffer that holds exactly one frame.
    pub fn parse_frame(frame: &'a [u8]) -> Result<Self, ProtoError> {
        Self::parse(&Packet::new_unchecked(frame))
    }

    /// The body length in bytes (saturating for strings too long to emit).
    pub fn body_len(&self) -> usize {
        match self {
            Message::Hello(h) => 3usize
                .saturating_add(str8_wire_len(h.agent_version))
                .saturating_add(str8_wire_len(h.hostname)),
            Message::Welcome(_) => 10,
            Message::Reject(r) => str8_wire_len(r.reason).saturating_add(1),
            Message::Enroll(e) => str8_wire_len(e.account).saturating_add(PROOF_LEN),
            Message::Enrolled(_) => PROOF_LEN,
            Message::Ping(_) | Message::Pong(_) | Message::Ack(_) => 4,
            Message::Event(e) => str8_wire_len(e.id)
                .saturating_add(str8_wire_len(e.text))
                .saturating_add(5),
            Message::Bye(_) => 1,
        }
    }

    /// The whole frame length in bytes, length prefix included. At most 520
    /// for any message whose strings fit their `str8`, so always within
    /// [`super::MAX_FRAME_LEN`].
    pub fn buffer_len(&self) -> usize {
        self.body_len().saturating_add(HEADER_LEN)
    }

    /// Writes the whole frame, length prefix included, at the start of `buf`
    /// and returns its length. Fails, writing nothing, on a string longer
    /// than 255 bytes or a buffer shorter than [`buffer_len`](Self::buffer_len).
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, ProtoError> {
        self.check_strings()?;
        let need = self.buffer_len();
        let have = buf.len();
        let frame = buf
            .get_mut(..need)
            .ok_or(ProtoError::BufferTooSmall { need, have })?;
        let len_field = need
            .checked_sub(2)
            .and_then(|n| u16::try_from(n).ok())
            .ok_or(ProtoError::LengthOutOfRange(u16::MAX))?;
        super::packet::frame_len(len_field)?;
        let mut packet = Packet::new_unchecked(frame);
        packet.set_len(len_field);
        packet.set_msg_type(self.msg_type());
        let mut w = BodyWriter::new(packet.body_mut());
        match self {
            Message::Hello(h) => {
                w.u8(h.proto)?;
                w.str8(h.agent_version)?;
                w.str8(h.hostname)?;
                w.u8(h.family.wire())?;
                w.u8(h.flags())?;
            }
            Message::Welcome(wl) => {
                w.u8(wl.proto)?;
                w.bytes(&wl.firmware)?;
                w.u8(wl.caps.bits())?;
                w.u32(wl.session)?;
            }
            Message::Reject(r) => {
                w.u8(r.code.into())?;
                w.str8(r.reason)?;
            }
            Message::Enroll(e) => {
                w.str8(e.account)?;
                w.bytes(&e.proof)?;
            }
            Message::Enrolled(e) => w.bytes(&e.proof)?,
            Message::Ping(seq) | Message::Pong(seq) | Message::Ack(seq) => w.u32(*seq)?,
            Message::Event(e) => {
                w.u32(e.seq)?;
                w.u8(e.severity)?;
                w.str8(e.id)?;
                w.str8(e.text)?;
            }
            Message::Bye(reason) => w.u8(*reason)?,
        }
        w.finish()?;
        Ok(need)
    }

    /// Every string fits a `str8`.
    fn check_strings(&self) -> Result<(), ProtoError> {
        let (a, b) = match self {
            Message::Hello(h) => (h.agent_version, h.hostname),
            Message::Reject(r) => (r.reason, ""),
            Message::Enroll(e) => (e.account, ""),
            Message::Event(e) => (e.id, e.text),
            _ => ("", ""),
        };
        str8_len_byte(a)?;
        str8_len_byte(b)?;
        Ok(())
    }
}

/// HELLO's `family` byte.
fn family_from_wire(value: u8) -> Result<Family, ProtoError> {
    match value {
        4 => Ok(Family::V4),
        6 => Ok(Family::V6),
        other => Err(ProtoError::BadFamily(other)),
    }
}

impl Hello<'_> {
    /// HELLO's `flags` byte.
    pub fn flags(&self) -> u8 {
        let tls = if self.tls { HELLO_FLAG_TLS } else { 0 };
        let enrolling = if self.enrolling {
            HELLO_FLAG_ENROLLING
        } else {
            0
        };
        tls | enrolling
    }
}

impl<'a> Message<'a> {
    /// Sets a parsed HELLO's flags: bit 0 TLS, bit 1 enrolling, the others
    /// reserved and refused.
    fn with_flags(self, flags: u8) -> Result<Self, ProtoError> {
        let Message::Hello(mut h) = self else {
            return Ok(self);
        };
        match flags & !(HELLO_FLAG_TLS | HELLO_FLAG_ENROLLING) {
            0 => {
                h.tls = flags & HELLO_FLAG_TLS != 0;
                h.enrolling = flags & HELLO_FLAG_ENROLLING != 0;
                Ok(Message::Hello(h))
            }
            reserved => Err(ProtoError::UnknownFlags(reserved)),
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::proto::{MAX_FRAME_LEN, PROTO_VERSION};
    use std::string::String;
    use std::vec::Vec;

    fn hello<'a>(agent_version: &'a str, hostname: &'a str) -> Message<'a> {
        Message::Hello(Hello {
            proto: PROTO_VERSION,
            agent_version,
            hostname,
            family: Family::V6,
            tls: true,
            enrolling: true,
        })
    }

    fn event<'a>(id: &'a str, text: &'a str) -> Message<'a> {
        Message::Event(Event {
            seq: 0xdead_beef,
            severity: 3,
            id,
            text,
        })
    }

    /// One message of each type; `s` fills every string field.
    fn samples(s: &str) -> [Message<'_>; 10] {
        [
            hello(s, s),
            Message::Welcome(Welcome {
                proto: PROTO_VERSION,
                firmware: [7, 10, 30, 0],
                caps: Caps::TLS | Caps::IPV6_USBNIC,
                session: 0x0102_0304,
            }),
            Message::Reject(Reject {
                code: RejectCode::NotEnrolled,
                reason: s,
            }),
            Message::Enroll(Enroll {
                account: s,
                proof: core::array::from_fn(|i| i as u8),
            }),
            Message::Ping(1),
            Message::Pong(u32::MAX),
            event(s, s),
            Message::Ack(0),
            Message::Bye(2),
            Message::Enrolled(Enrolled {
                proof: core::array::from_fn(|i| 0xff - i as u8),
            }),
        ]
    }

    fn emit_vec(m: &Message<'_>) -> Vec<u8> {
        let mut buf = [0u8; MAX_FRAME_LEN];
        let n = m.emit(&mut buf).unwrap();
        assert_eq!(n, m.buffer_len());
        buf[..n].to_vec()
    }

    /// A frame with the given type byte and body.
    fn frame(msg_type: u8, body: &[u8]) -> Vec<u8> {
        let len = u16::try_from(body.len() + 1).unwrap();
        let mut f = len.to_be_bytes().to_vec();
        f.push(msg_type);
        f.extend_from_slice(body);
        f
    }

    fn assert_round_trips(m: &Message<'_>) {
        let bytes = emit_vec(m);
        assert_eq!(Message::parse_frame(&bytes).as_ref(), Ok(m));
    }

    #[test]
    fn every_message_type_round_trips() {
        for m in samples("node-1.example") {
            assert_round_trips(&m);
        }
        for m in samples("") {
            assert_round_trips(&m);
        }
    }

    #[test]
    fn max_length_strings_round_trip() {
        let ascii = String::from_utf8(std::vec![b'a'; 255]).unwrap();
        let mut multibyte: String = core::iter::repeat_n('é', 127).collect();
        multibyte.push('!');
        assert_eq!(multibyte.len(), 255);
        for s in [&ascii, &multibyte] {
            for m in samples(s) {
                assert_round_trips(&m);
            }
        }
        assert_eq!(hello(&ascii, &ascii).buffer_len(), 518);
        assert_eq!(event(&ascii, &ascii).buffer_len(), 520);
    }

    #[test]
    fn emitted_bytes_match_the_wire_format() {
        let bytes = emit_vec(&Message::Hello(Hello {
            proto: 1,
            agent_version: "v1",
            hostname: "h",
            family: Family::V4,
            tls: true,
            enrolling: false,
        }));
        assert_eq!(bytes, [0, 9, 0x01, 1, 2, b'v', b'1', 1, b'h', 4, 0x01]);
        let bytes = emit_vec(&Message::Hello(Hello {
            proto: 1,
            agent_version: "v1",
            hostname: "h",
            family: Family::V4,
            tls: true,
            enrolling: true,
        }));
        assert_eq!(bytes, [0, 9, 0x01, 1, 2, b'v', b'1', 1, b'h', 4, 0x03]);
        let bytes = emit_vec(&Message::Enroll(Enroll {
            account: "ab",
            proof: [7; 32],
        }));
        let mut want = std::vec![0, 36, 0x04, 2, b'a', b'b'];
        want.extend([7u8; 32]);
        assert_eq!(bytes, want);
        let bytes = emit_vec(&Message::Enrolled(Enrolled { proof: [9; 32] }));
        let mut want = std::vec![0, 33, 0x0a];
        want.extend([9u8; 32]);
        assert_eq!(bytes, want);
        let bytes = emit_vec(&samples("")[1]);
        assert_eq!(bytes, [0, 11, 0x02, 1, 7, 10, 30, 0, 0x05, 1, 2, 3, 4]);
        let bytes = emit_vec(&event("B", "t"));
        assert_eq!(
            bytes,
            [0, 10, 0x07, 0xde, 0xad, 0xbe, 0xef, 3, 1, b'B', 1, b't']
        );
        assert_eq!(emit_vec(&Message::Ack(258)), [0, 5, 0x08, 0, 0, 1, 2]);
        assert_eq!(emit_vec(&Message::Bye(2)), [0, 2, 0x09, 2]);
    }

    #[test]
    fn unknown_types_are_rejected() {
        for t in [0x00, 0x0b, 0xff] {
            assert_eq!(
                Message::parse_frame(&frame(t, &[0, 0, 0, 1])),
                Err(ProtoError::UnknownType(t))
            );
            assert_eq!(
                Message::parse_frame(&frame(t, &[])),
                Err(ProtoError::UnknownType(t))
            );
        }
    }

    #[test]
    fn lengths_zero_and_1025_are_rejected() {
        assert_eq!(
            Message::parse_frame(&[0, 0]),
            Err(ProtoError::LengthOutOfRange(0))
        );
        let mut big = std::vec![0u8; 1027];
        big[..3].copy_from_slice(&[0x04, 0x01, 0x05]);
        assert_eq!(
            Message::parse_frame(&big),
            Err(ProtoError::LengthOutOfRange(1025))
        );
    }

    #[test]
    fn a_frame_shorter_than_its_length_is_truncated() {
        let bytes = emit_vec(&Message::Ping(9));
        for cut in 0..bytes.len() {
            assert_eq!(
                Message::parse_frame(&bytes[..cut]),
                Err(ProtoError::Truncated)
            );
        }
    }

    #[test]
    fn truncated_body_of_every_type_is_rejected() {
        for m in samples("abc") {
            let bytes = emit_vec(&m);
            let body = &bytes[3..];
            for k in 0..body.len() {
                let short = frame(bytes[2], &body[..k]);
                assert_eq!(
                    Message::parse_frame(&short),
                    Err(ProtoError::Truncated),
                    "{m:?} cut to {k} body bytes"
                );
            }
        }
    }

    #[test]
    fn trailing_bytes_after_every_type_are_rejected() {
        for m in samples("abc") {
            let bytes = emit_vec(&m);
            for extra in [1usize, 3] {
                let mut body = bytes[3..].to_vec();
                body.extend(core::iter::repeat_n(0u8, extra));
                assert_eq!(
                    Message::parse_frame(&frame(bytes[2], &body)),
                    Err(ProtoError::TrailingBytes(extra)),
                    "{m:?} with {extra} extra bytes"
                );
            }
            // Bytes after the frame itself, in the buffer.
            let mut long = bytes.clone();
            long.push(0);
            assert_eq!(
                Message::parse_frame(&long),
                Err(ProtoError::TrailingBytes(1))
            );
        }
    }

    #[test]
    fn invalid_utf8_in_any_string_field_is_rejected() {
        let marked = [
            hello("@@", "ok"),
            hello("ok", "@@"),
            samples("@@")[2],
            samples("@@")[3],
            event("@@", "ok"),
            event("ok", "@@"),
        ];
        for m in marked {
            let mut bytes = emit_vec(&m);
            let at = bytes.windows(2).position(|w| w == b"@@").unwrap();
            bytes[at..at + 2].copy_from_slice(&[0xc3, 0x28]);
            assert_eq!(
                Message::parse_frame(&bytes),
                Err(ProtoError::BadUtf8),
                "{m:?}"
            );
        }
    }

    #[test]
    fn hello_with_a_family_other_than_4_or_6_is_rejected() {
        let mut bytes = emit_vec(&hello("a", "b"));
        let family_at = bytes.len() - 2;
        for bad in [0u8, 5, 46, 255] {
            bytes[family_at] = bad;
            assert_eq!(
                Message::parse_frame(&bytes),
                Err(ProtoError::BadFamily(bad))
            );
        }
        bytes[family_at] = 4;
        assert!(matches!(
            Message::parse_frame(&bytes),
            Ok(Message::Hello(Hello {
                family: Family::V4,
                ..
            }))
        ));
    }

    #[test]
    fn hello_with_reserved_flag_bits_is_rejected() {
        let mut bytes = emit_vec(&hello("a", "b"));
        let flags_at = bytes.len() - 1;
        for (flags, reserved) in [(0x04u8, 0x04u8), (0x07, 0x04), (0xff, 0xfc), (0x80, 0x80)] {
            bytes[flags_at] = flags;
            assert_eq!(
                Message::parse_frame(&bytes),
                Err(ProtoError::UnknownFlags(reserved))
            );
        }
        for (flags, tls, enrolling) in [
            (0u8, false, false),
            (1, true, false),
            (2, false, true),
            (3, true, true),
        ] {
            bytes[flags_at] = flags;
            let Ok(Message::Hello(h)) = Message::parse_frame(&bytes) else {
                panic!("flags {flags:#x} refused")
            };
            assert_eq!((h.tls, h.enrolling), (tls, enrolling), "flags {flags:#x}");
        }
    }

    #[test]
    fn unknown_reject_codes_and_caps_bits_are_kept() {
        for code in [0u8, 5, 200] {
            let bytes = frame(0x03, &[code, 1, b'x']);
            let m = Message::parse_frame(&bytes).unwrap();
            assert_eq!(
                m,
                Message::Reject(Reject {
                    code: RejectCode::Unknown(code),
                    reason: "x"
                })
            );
            assert_eq!(emit_vec(&m), bytes);
        }
        let bytes = frame(0x02, &[1, 1, 2, 3, 4, 0xf9, 0, 0, 0, 1]);
        let m = Message::parse_frame(&bytes).unwrap();
        let Message::Welcome(w) = m else {
            panic!("{m:?}")
        };
        assert!(w.caps.tls() && !w.caps.tls_required() && !w.caps.ipv6_usbnic());
        assert_eq!(w.caps.unknown_bits(), 0xf8);
        assert_eq!(emit_vec(&m), bytes);
    }

    #[test]
    fn emit_refuses_a_too_small_buffer_and_writes_nothing() {
        for m in samples("abc") {
            let need = m.buffer_len();
            for have in [0, 1, 2, need - 1] {
                let mut buf = std::vec![0u8; have];
                assert_eq!(
                    m.emit(&mut buf),
                    Err(ProtoError::BufferTooSmall { need, have })
                );
                assert!(buf.iter().all(|&b| b == 0));
            }
        }
    }

    #[test]
    fn emit_refuses_strings_longer_than_255_bytes() {
        let long = String::from_utf8(std::vec![b'x'; 256]).unwrap();
        let too_long = [
            hello(&long, ""),
            hello("", &long),
            samples(&long)[2],
            samples(&long)[3],
            event(&long, ""),
            event("", &long),
        ];
        let mut buf = [0u8; MAX_FRAME_LEN];
        for m in too_long {
            assert_eq!(m.emit(&mut buf), Err(ProtoError::StringTooLong(256)));
            // Refused even with a buffer too small: the string is the cause.
            assert_eq!(m.emit(&mut [0u8; 4]), Err(ProtoError::StringTooLong(256)));
        }
    }

    #[test]
    fn parse_checks_the_length_of_an_unchecked_packet() {
        let p = Packet::new_unchecked(&[0u8, 9, 5][..]);
        assert_eq!(Message::parse(&p), Err(ProtoError::Truncated));
        let p = Packet::new_unchecked(&[0u8][..]);
        assert_eq!(Message::parse(&p), Err(ProtoError::Truncated));
    }
}
