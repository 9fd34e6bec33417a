//! Why a connection's byte channel stopped moving bytes. The channel itself
//! (plain TCP, or TLS over it) is [`super::transport::Chan`]: it reads and
//! writes without waiting, and the agent checks for room before it writes.

use smoltcp::time::Duration;

/// Why a channel stopped moving bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ChannelError {
    /// The TCP connection closed or was reset.
    Closed,
    /// A write found no room in the socket for [`WRITE_TIMEOUT`].
    Timeout,
    /// The TLS layer failed.
    Tls,
}

/// How long a frame may wait for room in the TCP send buffer.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
