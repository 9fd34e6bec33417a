//! The channel protocol's version and size limits (DESIGN §5).

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
