//! Peak stack by painting: at start-up every word between the end of the
//! statics and just below the current stack pointer gets a pattern; at the
//! end the lowest word that lost it is the deepest the stack reached.

use core::ptr::{addr_of, read_volatile, write_volatile};

const PAINT: u32 = 0xC0DE_5AFE;
/// Left untouched below the live frame while painting.
const MARGIN: usize = 256;

extern "C" {
    static mut __sheap: u32;
    static _stack_start: u32;
}

fn bottom() -> usize {
    // Linker symbols: only their addresses are taken.
    addr_of!(__sheap) as usize
}

fn top() -> usize {
    addr_of!(_stack_start) as usize
}

pub fn paint() {
    let sp = cortex_m::register::msp::read() as usize;
    let mut at = bottom();
    while at + 4 <= sp.saturating_sub(MARGIN) {
        // SAFETY: RAM between the statics and the live stack, unused.
        unsafe { write_volatile(at as *mut u32, PAINT) };
        at += 4;
    }
}

/// Bytes of stack used at the deepest point since [`paint`].
pub fn peak() -> usize {
    let mut at = bottom();
    // SAFETY: reads of the painted region.
    while at < top() && unsafe { read_volatile(at as *const u32) } == PAINT {
        at += 4;
    }
    top().saturating_sub(at)
}
