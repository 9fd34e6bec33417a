//! The agent's memory, piece by piece: `size_of` of every static buffer and
//! of the whole agent state, for `cargo xtask size` and the budget test.
//!
//! Everything the agent holds is sized at compile time, so these are the
//! exact bytes a port reserves (on top of its stack, see BENCHMARKS.md).

use core::mem::size_of;

use smoltcp::iface::{Interface, SocketStorage};

use crate::agent::conn::Conn;
use crate::agent::control::Control;
use crate::agent::link::Link;
use crate::agent::session::{Heartbeat, Reader};
use crate::agent::transport::{Hs, SocketIo};
use crate::agent::{Agent, AgentBuffers, Status, SOCKETS, TCP_RX_LEN, TCP_TX_LEN};
use crate::config::Config;
use crate::link::device::FrameBuf;
use crate::link::discover::Discovery;
use crate::link::ipv4ll::Ipv4Claim;
use crate::link::ipv6ll::Ipv6Claim;
use crate::policy::Policy;
use crate::tls::{PinnedTls, TlsBuffers, TLS_RECORD_READ_BUF, TLS_RECORD_WRITE_BUF};

/// One measured piece of the agent's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    /// What it is, in the code's own words (a type or a buffer).
    pub name: &'static str,
    /// Where it lives: `AgentBuffers` (borrowed storage) or `Agent` (owned).
    pub within: &'static str,
    /// Its size in bytes.
    pub bytes: usize,
}

const fn size(name: &'static str, within: &'static str, bytes: usize) -> Size {
    Size {
        name,
        within,
        bytes,
    }
}

/// The whole agent state: [`Agent`] plus the [`AgentBuffers`] it borrows.
pub const AGENT_STATE: usize = size_of::<Agent<'static>>() + size_of::<AgentBuffers<'static>>();

/// Every piece, the two totals first.
pub const SIZES: [Size; 24] = [
    size("Agent + AgentBuffers", "total", AGENT_STATE),
    size("Agent", "total", size_of::<Agent<'static>>()),
    size("AgentBuffers", "total", size_of::<AgentBuffers<'static>>()),
    size(
        "TCP receive buffers (SOCKETS x TCP_RX_LEN)",
        "AgentBuffers",
        SOCKETS * TCP_RX_LEN,
    ),
    size(
        "TCP transmit buffers (SOCKETS x TCP_TX_LEN)",
        "AgentBuffers",
        SOCKETS * TCP_TX_LEN,
    ),
    size(
        "smoltcp SocketStorage x SOCKETS",
        "AgentBuffers",
        SOCKETS * size_of::<SocketStorage<'static>>(),
    ),
    size("TlsBuffers", "AgentBuffers", size_of::<TlsBuffers>()),
    size("TLS record read buffer", "TlsBuffers", TLS_RECORD_READ_BUF),
    size(
        "TLS record write buffer",
        "TlsBuffers",
        TLS_RECORD_WRITE_BUF,
    ),
    size("smoltcp Interface", "Agent", size_of::<Interface>()),
    size(
        "the answer to the last frame in (FrameBuf)",
        "Agent",
        size_of::<FrameBuf>(),
    ),
    size(
        "Conn (the connection: TLS state, reader, heartbeat)",
        "Agent",
        size_of::<Conn<'static>>(),
    ),
    size(
        "TLS handshake in progress (Handshaking)",
        "Conn",
        size_of::<Hs<'static>>(),
    ),
    size(
        "TLS channel (PinnedTls)",
        "Conn",
        size_of::<PinnedTls<'static, SocketIo<'static>>>(),
    ),
    size("Reader (FrameReader)", "Conn", size_of::<Reader>()),
    size(
        "Control (policy, trust, identity, status)",
        "Agent",
        size_of::<Control>(),
    ),
    size("Policy", "Control", size_of::<Policy>()),
    size("Status", "Control", size_of::<Status>()),
    size("Link (claims + discovery)", "Agent", size_of::<Link>()),
    size("Ipv4Claim", "Link", size_of::<Ipv4Claim>()),
    size("Ipv6Claim", "Link", size_of::<Ipv6Claim>()),
    size("Discovery", "Link", size_of::<Discovery>()),
    size(
        "Heartbeat (with the OS-event queue)",
        "Conn",
        size_of::<Heartbeat>(),
    ),
    size("Config", "Agent", size_of::<Config>()),
];
