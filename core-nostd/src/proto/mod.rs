//! Channel protocol v1 (DESIGN §5): codecs in the style of `smoltcp::wire`.
//!
//! The channel runs inside TLS on the TLS port, or bare on the legacy plain
//! port. Every message is one frame; all integers are big-endian:
//!
//! ```text
//! frame   = len:u16 type:u8 body        len counts type+body; 1 <= len <= 1024
//! str8    = n:u8 utf8[n]
//! HELLO   0x01 a->b  proto:u8 agent_version:str8 hostname:str8 family:u8(4|6) flags:u8(bit0 tls)
//! WELCOME 0x02 b->a  proto:u8 fw:[u8;4] caps:u8(bit0 tls, bit1 tls-required, bit2 ipv6-usbnic) session:u32
//! REJECT  0x03 b->a  code:u8(1 tls-required, 2 not-enrolled, 3 bad-version, 4 bad-credential) reason:str8
//! ENROLL  0x04 a->b  credential:str8
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
//! - **HELLO flags**: reserved bits (1..=7) are rejected with
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

use core::fmt;

mod caps;
mod cursor;
mod message;
mod packet;
mod reader;
mod reject_code;

pub use caps::Caps;
pub use message::{Enroll, Event, Hello, Message, Reject, Welcome};
pub use packet::{frame_len, MessageType, Packet};
pub use reader::FrameReader;
pub use reject_code::RejectCode;

/// The protocol version this build speaks (HELLO/WELCOME `proto`).
pub const PROTO_VERSION: u8 = 1;
/// Length prefix plus type byte.
pub const HEADER_LEN: usize = 3;
/// Smallest value of the length field (a type byte and an empty body).
pub const MIN_LEN: u16 = 1;
/// Largest value of the length field (type byte plus body).
pub const MAX_LEN: u16 = 1024;
/// Largest body, in bytes.
pub const MAX_BODY_LEN: usize = 1023;
/// Largest whole frame: the 2-byte length prefix plus [`MAX_LEN`].
pub const MAX_FRAME_LEN: usize = 1026;
/// Longest string a `str8` field can carry, in bytes.
pub const MAX_STR_LEN: usize = 255;

/// A malformed or unexpected channel-protocol message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ProtoError {
    /// The length field is outside `1..=1024`.
    LengthOutOfRange(u16),
    /// The type byte names no v1 message.
    UnknownType(u8),
    /// Fewer bytes than the frame or field needs.
    Truncated,
    /// This many bytes were left after the message (or frame) ended.
    TrailingBytes(usize),
    /// A `str8` field is not valid UTF-8.
    BadUtf8,
    /// A string of this many bytes does not fit a `str8` (255 at most).
    StringTooLong(usize),
    /// HELLO's address family is neither 4 nor 6.
    BadFamily(u8),
    /// HELLO's flags have these reserved bits set.
    UnknownFlags(u8),
    /// The output buffer is too small for the frame.
    BufferTooSmall {
        /// Bytes the frame needs.
        need: usize,
        /// Bytes the buffer has.
        have: usize,
    },
    /// A well-formed message of this type that the receiver's state does not
    /// allow (e.g. HELLO sent to the agent). Never produced by the codec; the
    /// session reports it through the same audit event.
    Unexpected(u8),
}

impl fmt::Display for ProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtoError::LengthOutOfRange(len) => {
                write!(f, "frame length {len} outside {MIN_LEN}..={MAX_LEN}")
            }
            ProtoError::UnknownType(t) => write!(f, "unknown message type 0x{t:02x}"),
            ProtoError::Truncated => f.write_str("truncated message"),
            ProtoError::TrailingBytes(n) => write!(f, "{n} trailing bytes after the message"),
            ProtoError::BadUtf8 => f.write_str("string field is not valid UTF-8"),
            ProtoError::StringTooLong(n) => {
                write!(f, "string of {n} bytes is longer than {MAX_STR_LEN}")
            }
            ProtoError::BadFamily(v) => write!(f, "address family {v} is neither 4 nor 6"),
            ProtoError::UnknownFlags(bits) => {
                write!(f, "reserved HELLO flag bits 0x{bits:02x} set")
            }
            ProtoError::BufferTooSmall { need, have } => {
                write!(f, "buffer of {have} bytes too small, frame needs {need}")
            }
            ProtoError::Unexpected(t) => write!(f, "unexpected message type 0x{t:02x}"),
        }
    }
}
