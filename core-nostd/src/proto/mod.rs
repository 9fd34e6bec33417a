//! Channel protocol v1 (DESIGN §5): codecs in the style of `smoltcp::wire`.

use core::fmt;

/// A malformed or unexpected channel-protocol message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ProtoError {
    /// Fewer bytes than the frame or field needs.
    Truncated,
}

impl fmt::Display for ProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtoError::Truncated => f.write_str("truncated message"),
        }
    }
}
