//! The host link over Arm semihosting: the defmt log, the exit code, and
//! the host's clock (entropy for the seed).
//!
//! defmt frames (rzcobs-encoded, as `defmt-print` reads them) go to the
//! semihosting console (`:tt`); QEMU's `-semihosting-config
//! enable=on,target=native` hands them to its own output, a debug probe to
//! its host tool. Each frame is buffered and written with one `SYS_WRITE`,
//! so a log line costs one trap, not one per byte. Exiting uses
//! `SYS_EXIT`: QEMU ends with status 0 for "application exit", 1 otherwise.
//!
//! On a board without a debugger attached, semihosting calls fault: a rig
//! replaces this file's transport with a UART or RTT (defmt-rtt).

use core::cell::RefCell;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use cortex_m_semihosting::{debug, syscall};
use critical_section::{CriticalSection, Mutex, RestoreState};

/// Bytes of one buffered defmt frame before it is flushed early.
const FRAME_BUF: usize = 256;

struct Out {
    encoder: defmt::Encoder,
    buf: [u8; FRAME_BUF],
    used: usize,
}

static OUT: Mutex<RefCell<Out>> = Mutex::new(RefCell::new(Out {
    encoder: defmt::Encoder::new(),
    buf: [0; FRAME_BUF],
    used: 0,
}));

/// The console's semihosting handle, opened on first use (0: not yet).
static CONSOLE: AtomicUsize = AtomicUsize::new(0);
static TAKEN: AtomicBool = AtomicBool::new(false);
static mut RESTORE: RestoreState = RestoreState::invalid();

fn console() -> usize {
    let fd = CONSOLE.load(Ordering::Relaxed);
    if fd != 0 {
        return fd;
    }
    let name = b":tt\0";
    // SAFETY: SYS_OPEN reads the NUL-terminated name; mode 4 = "w".
    let fd = unsafe { syscall!(OPEN, name.as_ptr(), 4, name.len() - 1) };
    // Keep 0 meaning "not opened": semihosting handles start at 1.
    let fd = fd.wrapping_add(1);
    CONSOLE.store(fd, Ordering::Relaxed);
    fd
}

fn flush(out: &mut Out) {
    if out.used == 0 {
        return;
    }
    let fd = console().wrapping_sub(1);
    // SAFETY: SYS_WRITE reads `used` bytes of `buf`.
    unsafe { syscall!(WRITE, fd, out.buf.as_ptr(), out.used) };
    out.used = 0;
}

fn push(out: &mut Out, bytes: &[u8]) {
    for b in bytes {
        if out.used == FRAME_BUF {
            flush(out);
        }
        out.buf[out.used] = *b;
        out.used += 1;
    }
}

fn with_out(cs: CriticalSection<'_>, f: impl FnOnce(&mut Out)) {
    f(&mut OUT.borrow_ref_mut(cs));
}

#[defmt::global_logger]
struct Logger;

// SAFETY: acquire/release bracket every frame inside one critical section;
// a nested acquire (logging from an interrupt that interrupted logging)
// cannot happen because the critical section masks interrupts.
unsafe impl defmt::Logger for Logger {
    fn acquire() {
        // SAFETY: released in `release`.
        let restore = unsafe { critical_section::acquire() };
        if TAKEN.swap(true, Ordering::Acquire) {
            // Re-entered from a panic while logging: drop the frame.
            return;
        }
        // SAFETY: only written inside the critical section.
        unsafe { RESTORE = restore };
        critical_section::with(|cs| {
            with_out(cs, |out| {
                let Out { encoder, .. } = out;
                let mut pending = [0u8; 8];
                let mut n = 0;
                encoder.start_frame(|b| {
                    for x in b {
                        if n < pending.len() {
                            pending[n] = *x;
                            n += 1;
                        }
                    }
                });
                push(out, &pending[..n]);
            })
        });
    }

    unsafe fn flush() {
        critical_section::with(|cs| with_out(cs, flush));
    }

    unsafe fn release() {
        critical_section::with(|cs| {
            with_out(cs, |out| {
                let mut tail = [0u8; 8];
                let mut n = 0;
                out.encoder.end_frame(|b| {
                    for x in b {
                        if n < tail.len() {
                            tail[n] = *x;
                            n += 1;
                        }
                    }
                });
                push(out, &tail[..n]);
                flush(out);
            })
        });
        TAKEN.store(false, Ordering::Release);
        // SAFETY: the state `acquire` saved.
        unsafe { critical_section::release(RESTORE) };
    }

    unsafe fn write(bytes: &[u8]) {
        critical_section::with(|cs| {
            with_out(cs, |out| {
                let mut staged = [0u8; 64];
                for chunk in bytes.chunks(32) {
                    let mut n = 0;
                    out.encoder.write(chunk, |b| {
                        for x in b {
                            if n < staged.len() {
                                staged[n] = *x;
                                n += 1;
                            }
                        }
                    });
                    push(out, &staged[..n]);
                }
            })
        });
    }
}

/// Seconds since the Unix epoch on the host (`SYS_TIME`).
pub fn host_time() -> u32 {
    // SAFETY: SYS_TIME takes no argument.
    unsafe { syscall!(TIME) as u32 }
}

/// Ends the run: QEMU exits 0 when `success`, 1 otherwise.
pub fn exit(success: bool) -> ! {
    // SAFETY: flushing what is buffered before leaving.
    unsafe { <Logger as defmt::Logger>::flush() };
    debug::exit(if success {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    #[allow(clippy::empty_loop)]
    loop {}
}
