//! The drivers: what moves frames between a platform's [`Frames`] and the
//! sans-I/O [`Agent`], and waits between two steps.
//!
//! [`step`] is one turn: at most [`RX_BUDGET`] frames from the platform,
//! each handed to the agent and its answers sent at once, then the agent's
//! timers and connection, then what that wants sent. [`run`] loops it with
//! [`Frames::wait`]; [`run_async`] with [`WaitAsync::wait_async`]. A
//! simulator, a test or a superloop calls [`step`] (or the agent's own
//! calls) and waits however it waits.

use crate::link::device::FrameBuf;
use crate::platform::{Frames, WaitAsync, Wake};
use crate::Platform;

use crate::agent::{Agent, Exit, Poll};

/// The most frames one [`step`] takes from the platform.
///
/// Why 32: one step's ingress then costs at most 32 frames, under a
/// millisecond even at the tens of microseconds a frame costs a
/// microcontroller, so timers and defence run at least that often under any
/// flood (RFC 5227's shortest interval is PROBE_MIN, 1 s; smoltcp's ACK
/// delay is 10 ms). It is still more than one burst the agent's own traffic
/// brings: a full 3 KiB TCP window is 6 segments of 536 bytes. What is left
/// waits in the platform's queue (a NIC ring, a socket buffer), which drops
/// on overflow as hardware does; the step then asks to be called again at
/// once rather than sleep on frames already queued (an edge-triggered
/// interrupt that fired for them would not fire again).
pub const RX_BUDGET: usize = 32;

/// One turn of the agent over `p`, with `buf` for one frame at a time:
/// frames in (at most [`RX_BUDGET`]), the agent's timers and connection,
/// frames out. Returns when to step again.
///
/// Never inlined: its frame and those of the agent's calls are then only
/// on the stack while it runs, not added to its caller's (a firmware's
/// `main`, whose frame is there from start-up on).
#[inline(never)]
pub fn step<P: Platform + Frames>(agent: &mut Agent<'_>, p: &mut P, buf: &mut FrameBuf) -> Poll {
    let mut taken: usize = 0;
    for _ in 0..RX_BUDGET {
        let Some(n) = p.recv(&mut buf[..]) else {
            break;
        };
        taken = taken.saturating_add(1);
        // A platform that claims more bytes than the buffer holds gets its
        // frame dropped rather than its length trusted.
        if let Some(frame) = buf.get(..n) {
            agent.handle_frame(p, frame);
        }
        transmit(agent, p, buf);
    }
    agent.handle_timeout(p);
    transmit(agent, p, buf);
    if agent.is_stopped() {
        return Poll::Stopped;
    }
    if taken == RX_BUDGET {
        return Poll::Wait(Some(p.now()));
    }
    Poll::Wait(agent.poll_timeout(p))
}

/// Sends every frame the agent has now.
pub fn transmit<P: Platform + Frames>(agent: &mut Agent<'_>, p: &mut P, buf: &mut FrameBuf) {
    while let Some(n) = agent.poll_transmit(p, buf) {
        if let Some(frame) = buf.get(..n) {
            p.send(frame);
        }
    }
}

/// Steps until the platform asks to stop, waiting in [`Frames::wait`]
/// between steps; a stop request ([`Wake::Stop`]) starts the agent's stop,
/// a second one cuts its linger short.
pub fn run<P: Platform + Frames>(agent: &mut Agent<'_>, p: &mut P, buf: &mut FrameBuf) -> Exit {
    loop {
        match step(agent, p, buf) {
            Poll::Stopped => return Exit::Stopped,
            Poll::Wait(at) => {
                if p.wait(at) == Wake::Stop {
                    agent.stop(p);
                }
            }
        }
    }
}

/// [`run`] for an executor: waits in [`WaitAsync::wait_async`].
pub async fn run_async<P: Platform + Frames + WaitAsync>(
    agent: &mut Agent<'_>,
    p: &mut P,
    buf: &mut FrameBuf,
) -> Exit {
    loop {
        match step(agent, p, buf) {
            Poll::Stopped => return Exit::Stopped,
            Poll::Wait(at) => {
                if p.wait_async(at).await == Wake::Stop {
                    agent.stop(p);
                }
            }
        }
    }
}
