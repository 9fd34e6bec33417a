//! What the channel protocol's parsers and emitters fail with.

use core::fmt;

use super::limits::{MAX_LEN, MAX_STR_LEN, MIN_LEN};

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
    /// An ACK for an event sequence number not in the sent window.
    UnexpectedAck(u32),
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
            ProtoError::UnexpectedAck(seq) => write!(f, "ACK {seq} for an event never sent"),
        }
    }
}
