//! Peak stack of a piece of code, measured by stack painting.
//!
//! Method: on a fresh thread with a known stack, take the address of a local
//! as the top, paint the [`PAINTED`] bytes below it (minus [`SKIP`] for the
//! painter's own frame) with a pattern word, run the code, then scan from
//! the deepest painted word upwards for the first word that changed. The
//! distance from the top to that word is the peak depth the code reached.
//!
//! Error bars: it undercounts by at most the deepest write if that write
//! happened to store the pattern itself (one word, 4 bytes, in practice
//! never), and by the bytes the code reserved but never wrote (a frame's
//! unused padding: those bytes cost stack too but stay painted, typically
//! tens of bytes); it overcounts nothing of the measured code but includes
//! the closure's call frames (a few hundred bytes). Painting and scanning
//! read and write below the live stack pointer through raw pointers, which
//! is outside Rust's abstract machine: it relies on the thread's stack being
//! mapped and unused there, which holds on Linux for a thread we spawned.

use std::ptr::{read_volatile, write_volatile};

/// The pattern painted on the stack.
const PATTERN: u32 = 0xA5C3_5A3C;
/// Bytes below the top left unpainted for the painter's own frame.
pub const SKIP: usize = 4096;
/// Bytes painted below the top: the largest depth this can measure.
pub const PAINTED: usize = 256 * 1024;
/// The measuring thread's stack: the painted region plus headroom.
const THREAD_STACK: usize = PAINTED + 256 * 1024;

/// How deep a piece of code went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StackUse {
    /// Bytes from the top to the deepest word written.
    pub peak: usize,
    /// The code wrote the deepest painted word: `peak` is a lower bound.
    pub overflowed: bool,
}

#[inline(never)]
fn paint(top: usize) {
    let mut at = top - PAINTED;
    while at < top - SKIP {
        // SAFETY: see the module docs: unused, mapped stack of this thread.
        unsafe { write_volatile(at as *mut u32, PATTERN) };
        at += 4;
    }
}

#[inline(never)]
fn scan(top: usize) -> StackUse {
    let mut at = top - PAINTED;
    // SAFETY: as in `paint`.
    while at < top - SKIP && unsafe { read_volatile(at as *const u32) } == PATTERN {
        at += 4;
    }
    StackUse {
        peak: top - at,
        overflowed: at == top - PAINTED,
    }
}

#[inline(never)]
fn measured<T>(f: impl FnOnce() -> T) -> (T, StackUse) {
    let marker = 0u8;
    let top = std::hint::black_box(&marker) as *const u8 as usize & !3;
    paint(top);
    let out = std::hint::black_box(f());
    (out, scan(top))
}

/// Runs `f` on a fresh thread and returns its result and peak stack.
pub fn peak_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> (T, StackUse) {
    std::thread::Builder::new()
        .name("stack-paint".into())
        .stack_size(THREAD_STACK)
        .spawn(move || measured(f))
        .expect("spawn the measuring thread")
        .join()
        .expect("the measured code did not panic")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn touch(n: usize) -> u8 {
        let mut buf = [0u8; 32 * 1024];
        for (i, b) in buf.iter_mut().enumerate().take(n) {
            *b = i as u8 | 1;
        }
        std::hint::black_box(&mut buf);
        buf[n - 1]
    }

    #[test]
    fn painting_sees_a_32_kib_local_array() {
        let (_, used) = peak_stack(|| touch(32 * 1024));
        assert!(!used.overflowed);
        assert!(used.peak >= 32 * 1024, "{used:?}");
        assert!(used.peak < 40 * 1024, "{used:?}");
    }

    #[test]
    fn painting_tells_a_shallow_call_from_a_deep_one() {
        let (_, shallow) = peak_stack(|| std::hint::black_box(1u32) + 1);
        assert!(shallow.peak < 8 * 1024, "{shallow:?}");
    }
}
