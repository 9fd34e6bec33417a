//! Channel protocol v1 (DESIGN §5): codecs in the style of `smoltcp::wire`.
//!
//! The channel runs inside TLS on the TLS port, or bare on the legacy plain
//! port. Every message is one frame; all integers are big-endian:
//!
//! ```text
//! frame   = len:u16 type:u8 body        len counts type+body; 1 <= len <= 1024
//! str8    = n:u8 utf8[n]
//! HELLO   0x01 a->b  proto:u8 agent_version:str8 hostname:str8 family:u8(4|6) flags:u8(bit0 tls, bit1 enrolling)
//! WELCOME 0x02 b->a  proto:u8 fw:[u8;4] caps:u8(bit0 tls, bit1 tls-required, bit2 ipv6-usbnic) session:u32
//! REJECT  0x03 b->a  code:u8(1 tls-required, 2 not-enrolled, 3 bad-version, 4 bad-credential) reason:str8
//! ENROLL  0x04 a->b  account:str8 proof:[u8;32]   (inside TLS, right after HELLO)
//! ENROLLED 0x0A b->a proof:[u8;32]                 (the BMC's answer to a good ENROLL)
//! PING    0x05 a<->b seq:u32
//! PONG    0x06 a<->b seq:u32
//! EVENT   0x07 a->b  seq:u32 severity:u8 id:str8 text:str8
//! ACK     0x08 b->a  seq:u32
//! BYE     0x09 a<->b reason:u8
//! ```
//!
//! The pieces, smallest first:
//!
//! - [`Packet`]: a zero-copy view over one whole frame (length prefix
//!   included). [`Packet::check_len`] validates the length field against the
//!   buffer once; after it no accessor can panic.
//! - [`Message`]: the high-level representation (smoltcp's `Repr`), with
//!   [`Message::parse`], [`Message::buffer_len`] and [`Message::emit`].
//!   Strings borrow from the frame; nothing is copied.
//! - [`FrameReader`]: reassembles frames from a TCP or TLS byte stream, in a
//!   fixed buffer the caller sizes.
//!
//! # Error policy
//!
//! An unknown message type, a length field out of `1..=1024`, or a malformed
//! body (truncated field, bytes left over, invalid UTF-8, an address family
//! other than 4 or 6, reserved HELLO flag bits) is a [`ProtoError`] carrying
//! the offending value. The codec never panics and never guesses: a receiver
//! treats any `ProtoError` as a protocol error, closes the connection and
//! records an audit event (`SessionEvent::ProtocolError`, BL2003); undelivered
//! events stay queued for the next connection, so nothing is lost.
//!
//! Decisions where §5 is silent, chosen so that anything that parses
//! re-emits to the same bytes:
//!
//! - **HELLO flags**: reserved bits (2..=7) are rejected with
//!   [`ProtoError::UnknownFlags`]. Flags are a request the BMC must honour,
//!   so a flag it does not understand cannot be silently dropped.
//! - **WELCOME caps**: reserved bits are kept in [`Caps`] and ignored by its
//!   accessors. Capabilities are an offer the agent may ignore, so a newer
//!   BMC advertising more does not break an older agent. [`Caps::known`]
//!   masks them off (do that before persisting the caps, since
//!   `records::BmcCapsRecord` rejects unknown bits).
//! - **REJECT codes**: an unknown code parses as [`RejectCode::Unknown`]
//!   (not an error): the refusal itself is what matters, and the number is
//!   kept for the audit log.
//! - **Protocol version**: the `proto` fields are carried, not checked; the
//!   session answers a version it does not speak with REJECT(bad-version).
//! - **Trailing bytes**: bytes after the last field of a body, or after the
//!   frame in a buffer given to [`Packet::new_checked`], are
//!   [`ProtoError::TrailingBytes`].

mod caps;
mod cursor;
mod error;
mod limits;
mod message;
mod packet;
mod reader;
mod reject_code;

pub use caps::Caps;
pub use error::ProtoError;
pub use limits::{
    HEADER_LEN, MAX_BODY_LEN, MAX_FRAME_LEN, MAX_LEN, MAX_STR_LEN, MIN_LEN, PROTO_VERSION,
};
pub use message::{Enroll, Enrolled, Event, Hello, Message, Reject, Welcome, PROOF_LEN};
pub use packet::{frame_len, MessageType, Packet};
pub use reader::FrameReader;
pub use reject_code::RejectCode;

#[cfg(test)]
mod tests {
    //! Randomized robustness over garbage: nothing panics, and anything that
    //! parses re-emits to exactly the bytes it was parsed from.
    extern crate std;

    use super::*;
    use rand_chacha::rand_core::{RngCore, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use std::vec::Vec;

    const VALID: &[&[u8]] = &[
        &[
            0, 15, 0x01, 1, 5, b'a', b'g', b'e', b'n', b't', 4, b'h', b'o', b's', b't', 4, 1,
        ],
        &[0, 11, 0x02, 1, 7, 10, 30, 0, 0x07, 0, 0, 0, 9],
        &[0, 5, 0x03, 1, 2, b'n', b'o'],
        &[
            0, 37, 0x04, 3, b'o', b't', b'p', 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
            16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32,
        ],
        &[
            0, 33, 0x0a, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
            22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32,
        ],
        &[0, 5, 0x05, 0, 0, 0, 1],
        &[0, 5, 0x06, 0, 0, 0, 1],
        &[0, 12, 0x07, 0, 0, 0, 2, 3, 2, b'i', b'd', 2, b'h', b'i'],
        &[0, 5, 0x08, 0, 0, 0, 2],
        &[0, 2, 0x09, 0],
    ];

    fn below(rng: &mut ChaCha8Rng, n: usize) -> usize {
        (rng.next_u32() as usize) % n
    }

    /// Garbage of three kinds: random bytes, a plausible header over a
    /// random body, and a valid frame with a few bytes changed or cut.
    fn garbage(rng: &mut ChaCha8Rng) -> Vec<u8> {
        match below(rng, 3) {
            0 => {
                let mut v = std::vec![0u8; below(rng, 1100)];
                rng.fill_bytes(&mut v);
                v
            }
            1 => {
                let body_len = below(rng, 40);
                let len = match below(rng, 8) {
                    0 => body_len,
                    1 => body_len + 2,
                    _ => body_len + 1,
                };
                let mut v = (len as u16).to_be_bytes().to_vec();
                v.push(below(rng, 12) as u8);
                let mut body = std::vec![0u8; body_len];
                rng.fill_bytes(&mut body);
                v.extend(body);
                v
            }
            _ => {
                let mut v = VALID[below(rng, VALID.len())].to_vec();
                for _ in 0..=below(rng, 3) {
                    let at = below(rng, v.len());
                    v[at] = rng.next_u32() as u8;
                }
                if below(rng, 4) == 0 {
                    v.truncate(below(rng, v.len() + 1));
                }
                v
            }
        }
    }

    fn assert_reemits(message: &Message<'_>, bytes: &[u8]) {
        let mut out = [0u8; MAX_FRAME_LEN];
        assert_eq!(message.buffer_len(), bytes.len(), "{message:?}");
        let n = message.emit(&mut out).unwrap();
        assert_eq!(&out[..n], bytes, "{message:?}");
    }

    #[test]
    fn errors_display_the_offending_value() {
        use std::string::ToString;
        assert_eq!(
            ProtoError::LengthOutOfRange(1025).to_string(),
            "frame length 1025 outside 1..=1024"
        );
        assert_eq!(
            ProtoError::UnknownType(0x0b).to_string(),
            "unknown message type 0x0b"
        );
        assert_eq!(
            ProtoError::BufferTooSmall { need: 7, have: 3 }.to_string(),
            "buffer of 3 bytes too small, frame needs 7"
        );
    }

    #[test]
    fn garbage_never_panics_and_whatever_parses_reemits_identically() {
        for v in VALID {
            assert_reemits(&Message::parse_frame(v).unwrap(), v);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(0x0062_6d63_6c69_6e6b);
        let mut parsed = 0;
        let mut parsed_by_type = [0u32; 11];
        for _ in 0..100_000 {
            let bytes = garbage(&mut rng);
            if let Ok(p) = Packet::new_checked(&bytes[..]) {
                assert_eq!(p.frame_len(), bytes.len());
                assert_eq!(p.body().len(), p.body_len());
                let _ = p.msg_type();
            }
            if let Ok(m) = Message::parse_frame(&bytes) {
                assert_reemits(&m, &bytes);
                parsed += 1;
                parsed_by_type[usize::from(u8::from(m.msg_type()))] += 1;
            }
        }
        // The generator must reach past the framing checks to mean anything.
        assert!(parsed > 5_000, "only {parsed} garbage frames parsed");
        assert!(
            parsed_by_type[1..].iter().all(|&n| n > 0),
            "some type never parsed: {parsed_by_type:?}"
        );
    }

    #[test]
    fn garbage_stream_never_panics_the_frame_reader() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut reader = FrameReader::<MAX_FRAME_LEN>::new();
        let (mut parsed, mut broken) = (0, 0);
        for _ in 0..20_000 {
            let mut chunk = garbage(&mut rng);
            chunk.truncate(below(&mut rng, 64) + 1);
            let mut rest = &chunk[..];
            while !rest.is_empty() {
                let n = reader.push(rest);
                rest = &rest[n..];
                while let Some(next) = reader.next_packet() {
                    let Ok(packet) = next else {
                        broken += 1;
                        reader.reset();
                        break;
                    };
                    let frame = packet.as_ref();
                    if let Ok(m) = Message::parse(&packet) {
                        assert_reemits(&m, frame);
                        parsed += 1;
                    }
                }
            }
        }
        assert!(
            parsed > 100 && broken > 100,
            "{parsed} parsed, {broken} broken"
        );
    }
}
