//! The smoltcp `phy::Device` over [`Frames`], with the ARP/NDP hook.
//!
//! Every received frame is shown to a [`FrameHook`] before smoltcp sees it,
//! because smoltcp 0.14 does no ARP probing and no duplicate address
//! detection: the address claims need to see probes (sender 0.0.0.0) and
//! DAD solicitations (source `::`) that smoltcp would silently ignore, and to
//! keep frames about a not-yet-claimed address away from the interface.

use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

pub use super::claim::Verdict;
use crate::platform::{Frames, MAX_FRAME_LEN};

/// Sees every received frame first.
pub trait FrameHook {
    /// Inspects one received Ethernet frame.
    fn inspect(&mut self, now: Instant, frame: &[u8]) -> Verdict;
}

/// One frame's worth of buffer, for the device's receive and transmit paths.
pub type FrameBuf = [u8; MAX_FRAME_LEN];

/// A smoltcp device over a platform's [`Frames`], borrowed for one poll.
pub struct Device<'d, F: Frames + ?Sized, H: FrameHook + ?Sized> {
    frames: &'d mut F,
    hook: &'d mut H,
    rx: &'d mut FrameBuf,
    tx: &'d mut FrameBuf,
}

impl<'d, F: Frames + ?Sized, H: FrameHook + ?Sized> Device<'d, F, H> {
    /// Borrows a platform and a hook, with one receive and one transmit buffer.
    pub fn new(
        frames: &'d mut F,
        hook: &'d mut H,
        rx: &'d mut FrameBuf,
        tx: &'d mut FrameBuf,
    ) -> Self {
        Device {
            frames,
            hook,
            rx,
            tx,
        }
    }
}

/// Receive token: one frame that passed the hook.
pub struct RxToken<'a> {
    frame: &'a [u8],
}

/// Transmit token: sends through the platform when consumed.
pub struct TxToken<'a, F: Frames + ?Sized> {
    frames: &'a mut F,
    buf: &'a mut FrameBuf,
}

impl<F: Frames + ?Sized, H: FrameHook + ?Sized> phy::Device for Device<'_, F, H> {
    type RxToken<'a>
        = RxToken<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = TxToken<'a, F>
    where
        Self: 'a;

    fn receive(&mut self, now: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        if !self.frames.link_up() {
            return None;
        }
        let len = loop {
            let n = self.frames.recv(&mut self.rx[..])?;
            // A platform that claims more bytes than the buffer holds gets its
            // frame dropped rather than its length trusted.
            if let Some(frame) = self.rx.get(..n) {
                if self.hook.inspect(now, frame).passes() {
                    break n;
                }
            }
        };
        let rx = RxToken {
            frame: self.rx.get(..len).unwrap_or(&[]),
        };
        Some((
            rx,
            TxToken {
                frames: &mut *self.frames,
                buf: &mut *self.tx,
            },
        ))
    }

    fn transmit(&mut self, _now: Instant) -> Option<Self::TxToken<'_>> {
        if !self.frames.link_up() {
            return None;
        }
        Some(TxToken {
            frames: &mut *self.frames,
            buf: &mut *self.tx,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = MAX_FRAME_LEN;
        caps.max_burst_size = Some(1);
        caps
    }
}

impl phy::RxToken for RxToken<'_> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        f(self.frame)
    }
}

impl<Fr: Frames + ?Sized> phy::TxToken for TxToken<'_, Fr> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        // smoltcp never asks for more than the MTU it was given; clamp anyway
        // so a logic error cannot index out of bounds.
        let len = len.min(self.buf.len());
        let (head, _) = self.buf.split_at_mut(len);
        let r = f(head);
        self.frames.send(head);
        r
    }
}
