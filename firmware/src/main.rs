//! The bmclink agent booted on a Cortex-M4F: QEMU's `mps2-an386` with its
//! LAN9118 Ethernet controller (`cargo xtask qemu` runs it against the
//! kernel BMC in a network namespace).
//!
//! This file is the agent loop and nothing else: build the agent over the
//! board, run it for [`RUN_SECS`] seconds of the board's clock, stop (the
//! agent says BYE), and exit with success only when the run enrolled, held
//! a TLS 1.3 session and ended it with BYE. The board (start-up, SysTick,
//! the MAC driver, the records, the DRBG, the log) is in `board/`; when the
//! agent's API changes, only this file follows.
//!
//! The image also carries, for `cargo xtask size`, `size_of` of every piece
//! of the agent on this target in a section that is not loaded.
#![no_std]
#![no_main]

mod bench;
mod board;
mod stack;

use core::mem::MaybeUninit;
use core::panic::PanicInfo;
use core::ptr::addr_of_mut;

use bmclink_core::agent::{Agent, AgentBuffers};
use bmclink_core::drive;
use bmclink_core::link::device::FrameBuf;
use bmclink_core::platform::MAX_FRAME_LEN;
use bmclink_core::Config;
use cortex_m_rt::entry;
use defmt::{error, info};
use smoltcp::time::Duration;

use board::{clock, semihosting, Board};

/// How long the agent runs before the board asks it to stop: long enough
/// for the IPv4 claim (4-7 s), the IPv6 fallback after a 5 s connect
/// timeout, enrollment and a few heartbeats.
const RUN_SECS: u64 = 22;

/// The agent's borrowed memory: sockets, TCP and TLS buffers. Written in
/// place at start-up rather than initialised statically:
/// `AgentBuffers::new()` is not all zero bytes (empty socket slots), so a
/// `static` holding it would land in `.data` and cost its whole size in
/// flash too.
static mut BUFFERS: MaybeUninit<AgentBuffers<'static>> = MaybeUninit::uninit();

/// The agent itself, in `.bss` too: its size is static RAM, not stack.
static mut AGENT: MaybeUninit<Agent<'static>> = MaybeUninit::uninit();

/// The driver's one frame buffer (each received frame, then each frame to
/// send), in `.bss` rather than in `main`'s stack frame.
static mut FRAME: FrameBuf = [0; MAX_FRAME_LEN];

defmt::timestamp!("{=u64:us}", clock::micros());

/// The agent's configuration on the board: the defaults, with a 2 s
/// heartbeat so a short run shows several.
fn config() -> Config {
    Config {
        heartbeat: Duration::from_secs(2),
        hostname: "mps2-an386",
        ..Config::default()
    }
}

/// Builds the agent into its statics, in place: `AgentBuffers::init` and
/// `Agent::init` write them field by field, so neither the buffers (35 KiB)
/// nor the agent (12 KiB) pass through the stack.
#[inline(never)]
fn build_agent(board: &mut Board) -> Option<&'static mut Agent<'static>> {
    // SAFETY: called once, from `main`; nothing else borrows BUFFERS or AGENT.
    let (buffers, agent) = unsafe { (&mut *addr_of_mut!(BUFFERS), &mut *addr_of_mut!(AGENT)) };
    match Agent::init(agent, config(), AgentBuffers::init(buffers), board) {
        Ok(a) => Some(a),
        Err(e) => {
            error!("agent: {}", e);
            None
        }
    }
}

#[entry]
fn main() -> ! {
    stack::paint();
    let Some(mut board) = Board::take(RUN_SECS) else {
        error!("board did not come up");
        semihosting::exit(false);
    };
    info!("bmclink firmware on mps2-an386, running {=u64} s", RUN_SECS);
    #[cfg(feature = "bench")]
    if !bench::p256_ops(&mut board) {
        semihosting::exit(false);
    }
    // The start-up figure is building the agent alone.
    stack::paint();
    let Some(agent) = build_agent(&mut board) else {
        semihosting::exit(false);
    };
    // Start-up (building the agent in place) and the running agent are
    // measured apart.
    let start_up = stack::peak();
    stack::paint();
    // SAFETY: the only use of FRAME, from `main`, once.
    let frame = unsafe { &mut *addr_of_mut!(FRAME) };
    let exit = drive::run(agent, &mut board, frame);
    let seen = board.seen;
    info!("agent ended ({}): {}", exit, seen);
    info!(
        "stack peak while building the agent {=usize} bytes",
        start_up
    );
    bench::report(stack::peak());
    semihosting::exit(seen.enrolled && seen.tls13_session && seen.bye && seen.errors == 0);
}

/// `size_of` of every piece of the agent on this target, in the order of
/// `bmclink_core::sizes::SIZES`, for `cargo xtask size` (a section that is
/// not loaded: it costs no flash).
#[used]
#[link_section = ".bmclink_sizes"]
static SIZES: [u32; SIZES_LEN] = {
    let mut out = [0u32; SIZES_LEN];
    let mut i = 0;
    while i < SIZES_LEN {
        out[i] = bmclink_core::sizes::SIZES[i].bytes as u32;
        i += 1;
    }
    out
};

const SIZES_LEN: usize = bmclink_core::sizes::SIZES.len();

/// Reports the panic and ends QEMU with a failure status.
#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    error!("panic: {}", defmt::Display2Format(info));
    semihosting::exit(false);
}
