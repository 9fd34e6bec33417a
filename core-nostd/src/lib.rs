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
//! - [`link`]: a smoltcp `phy::Device` over [`platform::Frames`] with a hook
//!   that sees every ARP and NDP frame first, and the link-local address
//!   claims (RFC 5227/3927 for IPv4, RFC 4862/7217 for IPv6);
//! - [`policy`]: the fallback policy (IPv4 first, IPv6 by strict rules) as a
//!   pure state machine: `handle(now, input)`, `poll_action()`, `next_deadline()`;
//! - [`tls`] and [`cert`]: the embedded-tls 0.19 client with a pinning
//!   verifier and the P-256 self-signed identity;
//! - [`agent`]: the driver that ties them to a platform: runs smoltcp, the
//!   claims, the policy, TCP (+ TLS) and the session (heartbeats, events).
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
//! agent.run(&mut board);                                // until Frames::wait says Stop
//! ```
//!
//! `run` is only a driver: the agent itself never waits. A superloop, an
//! RTIC task or a simulator drives it with [`agent::Agent::poll`] (does
//! what is due, returns `Poll::Wait(next deadline)` or `Poll::Stopped`)
//! and [`agent::Agent::stop`]; an executor awaits
//! [`agent::Agent::run_async`] over [`platform::WaitAsync`]:
//!
//! ```ignore
//! loop {
//!     match agent.poll(&mut board) {
//!         Poll::Stopped => break,
//!         Poll::Wait(at) => if board.sleep_until_frame_or(at) == Wake::Stop {
//!             agent.stop(&mut board);
//!         },
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

use platform::{Audit, Bootstrap, Clock, Frames, HostNet, OsEvents, StatusSink, Store};

/// Everything a platform provides, in one bound: the traits of
/// [`platform`] (the one file a port reads), with the audit sink and the
/// status sink given the core's [`audit::AuditEvent`] and
/// [`agent::Status`]. The RNG must be a CSPRNG: it seeds keys, TLS randoms,
/// RFC 3927 picks and backoff jitter.
pub trait Platform:
    Frames
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
    T: Frames
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
