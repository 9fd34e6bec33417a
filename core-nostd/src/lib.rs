//! # bmclink-core
//!
//! The `no_std`, allocation-free core of bmclink: it gives a host a secure,
//! self-configuring channel to its BMC over the OS-to-BMC USB network link.
//!
//! The core owns every decision and every byte on the wire; a platform only
//! moves Ethernet frames and tells time ([`platform`] is the whole boundary).
//! Inside, the layers stack the way smoltcp's `wire` / `iface` / `socket` do:
//!
//! - [`proto`]: the channel protocol codecs (zero-copy `Packet` views and
//!   `Repr`s with `parse`/`emit`), no I/O;
//! - [`link`]: the one-frame smoltcp `phy::Device` the agent hands smoltcp,
//!   a hook that sees every ARP and NDP frame first, and the link-local
//!   address claims (RFC 5227/3927 for IPv4, RFC 4862/7217 for IPv6);
//! - [`policy`]: the fallback policy (IPv4 first, IPv6 by strict rules) as a
//!   pure state machine: `handle(now, input)`, `poll_action()`, `next_deadline()`;
//! - [`tls`] and [`cert`]: the embedded-tls 0.19 client with a pinning
//!   verifier and the P-256 self-signed identity;
//! - [`agent`]: the sans-I/O machine that ties them together (smoltcp, the
//!   claims, the policy, TCP + TLS, the session: heartbeats, events) with
//!   frames in and out as calls;
//! - [`drive`]: the drivers that move a platform's frames through it and
//!   wait between steps (blocking, async, one step).
//!
//! Memory is static: every buffer is an array sized by a constant, and the
//! caller owns the storage ([`agent::AgentBuffers`]). Time is always a
//! parameter, so a simulation with a virtual clock runs RFC timers (seconds)
//! in microseconds and every test is reproducible. Nothing in the core
//! panics on any input: malformed frames, records and messages are errors.
//!
//! ## Porting
//!
//! Implement the traits of [`platform`] for one type (that file imports
//! nothing from the rest of the crate, so it is all there is to read); the
//! audit sink and the status sink take the core's [`audit::AuditEvent`] and
//! [`agent::Status`] as their type parameters, which the [`Platform`] bound
//! below names. Then build the agent in place and run it:
//!
//! ```ignore
//! let bufs = AgentBuffers::init(&mut BUFS);            // a static MaybeUninit
//! let agent = Agent::init(&mut AGENT, Config::default(), bufs, &mut board)?;
//! drive::run(agent, &mut board, &mut FRAME);            // until Frames::wait says Stop
//! ```
//!
//! `run` is only a driver ([`drive`]): the agent itself never
//! touches the wire and never waits. It is a state machine in quinn-proto's
//! shape, and a superloop, an RTIC task, a fuzzer or a simulator calls it
//! directly; an executor awaits [`drive::run_async`] over
//! [`platform::WaitAsync`]. [`platform::Frames`] is then not needed, only
//! [`platform::Nic`] (the MAC and the carrier):
//!
//! ```ignore
//! let mut frame = [0u8; MAX_FRAME_LEN];
//! loop {
//!     while let Some(n) = nic.take_rx(&mut frame) {        // at most a budget
//!         agent.handle_frame(&mut board, &frame[..n]);     // frames in
//!         while let Some(n) = agent.poll_transmit(&mut board, &mut frame) {
//!             nic.send(&frame[..n]);                       // its answers out
//!         }
//!     }
//!     agent.handle_timeout(&mut board);                    // timers, policy, session
//!     while let Some(n) = agent.poll_transmit(&mut board, &mut frame) {
//!         nic.send(&frame[..n]);
//!     }
//!     if agent.is_stopped() { break }
//!     if board.sleep_until_frame_or(agent.poll_timeout(&mut board)) == Wake::Stop {
//!         agent.stop(&mut board);
//!     }
//! }
//! ```
#![no_std]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects
    )
)]

#[macro_use]
mod fmt;

#[macro_use]
pub mod audit;
pub mod agent;
pub mod cert;
pub mod config;
pub mod drive;
pub mod ipmi;
pub mod link;
pub mod platform;
pub mod policy;
pub mod proto;
pub mod records;
pub mod sizes;
pub mod time;
pub mod tls;
pub mod types;

pub use config::Config;
pub use types::{Channel, Family};

use platform::{Audit, Bootstrap, Clock, HostNet, Nic, OsEvents, StatusSink, Store};

/// Everything a platform provides, in one bound: the traits of
/// [`platform`] (the one file a port reads), with the audit sink and the
/// status sink given the core's [`audit::AuditEvent`] and
/// [`agent::Status`]. The RNG must be a CSPRNG: it seeds keys, TLS randoms,
/// RFC 3927 picks and backoff jitter.
pub trait Platform:
    Nic
    + Clock
    + Store
    + HostNet
    + Bootstrap
    + Audit<audit::AuditEvent>
    + StatusSink<agent::Status>
    + OsEvents
    + rand_core::RngCore
    + rand_core::CryptoRng
{
}

impl<T> Platform for T where
    T: Nic
        + Clock
        + Store
        + HostNet
        + Bootstrap
        + Audit<audit::AuditEvent>
        + StatusSink<agent::Status>
        + OsEvents
        + rand_core::RngCore
        + rand_core::CryptoRng
{
}
