//! The smoltcp `phy::Device` over [`Frames`], with the ARP/NDP hook.
//!
//! Every received frame is shown to a [`FrameHook`] before smoltcp sees it,
//! because smoltcp 0.14 does no ARP probing and no duplicate address
//! detection: the address claims need to see probes (sender 0.0.0.0) and
//! DAD solicitations (source `::`) that smoltcp would silently ignore, and to
//! keep frames about a not-yet-claimed address away from the interface.
//!
//! A device takes at most [`RX_BUDGET`] frames from the platform in one poll
//! (one `Device` lives for one poll): smoltcp's `Interface::poll` asks for
//! frames until the device has none, so under a sustained flood it would
//! never return, and the claims' timers, their defence, TCP and the session
//! would starve.

use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

pub use super::claim::Verdict;
use crate::platform::{Frames, MAX_FRAME_LEN};

/// Sees every received frame first.
pub trait FrameHook {
    /// Inspects one received Ethernet frame.
    fn inspect(&mut self, now: Instant, frame: &[u8]) -> Verdict;
}

/// The most frames one poll takes from the platform, whatever the hook does
/// with them (passed, withheld or dropped as malformed all count).
///
/// Why 32: one poll's ingress then costs at most 32 frames, under a
/// millisecond even at the tens of microseconds a frame costs a
/// microcontroller, so timers and defence run at least that often under any
/// flood (RFC 5227's shortest interval is PROBE_MIN, 1 s; smoltcp's ACK
/// delay is 10 ms). It is still more than one burst the agent's own traffic
/// brings: a full 4 KiB TCP window is 8 segments of 536 bytes. What is left
/// waits in the platform's queue (a NIC ring, a socket buffer), which drops
/// on overflow as hardware does.
pub const RX_BUDGET: usize = 32;

/// One frame's worth of buffer, for the device's receive and transmit paths.
pub type FrameBuf = [u8; MAX_FRAME_LEN];

/// A smoltcp device over a platform's [`Frames`], borrowed for one poll.
pub struct Device<'d, F: Frames + ?Sized, H: FrameHook + ?Sized> {
    frames: &'d mut F,
    hook: &'d mut H,
    rx: &'d mut FrameBuf,
    tx: &'d mut FrameBuf,
    taken: usize,
}

impl<'d, F: Frames + ?Sized, H: FrameHook + ?Sized> Device<'d, F, H> {
    /// Borrows a platform and a hook, with one receive and one transmit
    /// buffer, for one poll: its [`RX_BUDGET`] starts full.
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
            taken: 0,
        }
    }

    /// Whether this poll took its whole [`RX_BUDGET`]: more frames may be
    /// waiting in the platform, so the driver polls again without sleeping.
    pub fn budget_spent(&self) -> bool {
        self.taken >= RX_BUDGET
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
            if self.budget_spent() {
                return None;
            }
            let n = self.frames.recv(&mut self.rx[..])?;
            self.taken = self.taken.saturating_add(1);
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

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::iface::{Config, Interface, SocketSet};
    use smoltcp::wire::{EthernetAddress, HardwareAddress};

    /// A link that always has another frame (a broadcast of an unknown
    /// ethertype) and counts how many were taken.
    struct Flood {
        taken: usize,
    }

    impl Frames for Flood {
        fn recv(&mut self, buf: &mut [u8]) -> Option<usize> {
            self.taken += 1;
            let frame = [0xffu8; 60];
            let n = frame.len().min(buf.len());
            buf.get_mut(..n)?.copy_from_slice(frame.get(..n)?);
            Some(n)
        }
        fn send(&mut self, _frame: &[u8]) {}
        fn mac(&self) -> [u8; 6] {
            [2, 0, 0, 0, 0, 1]
        }
        fn link_up(&self) -> bool {
            true
        }
        fn wait(&mut self, _deadline: Option<Instant>) -> crate::platform::Wake {
            crate::platform::Wake::Ready
        }
    }

    /// Passes every other frame and withholds the rest.
    struct Alternate(bool);

    impl FrameHook for Alternate {
        fn inspect(&mut self, _now: Instant, _frame: &[u8]) -> Verdict {
            self.0 = !self.0;
            if self.0 {
                Verdict::Pass
            } else {
                Verdict::Withhold
            }
        }
    }

    #[test]
    fn one_poll_takes_at_most_the_budget_from_an_endless_flood() {
        let mut frames = Flood { taken: 0 };
        let mut hook = Alternate(false);
        let (mut rx, mut tx) = ([0; MAX_FRAME_LEN], [0; MAX_FRAME_LEN]);
        let now = Instant::ZERO;
        let mac = HardwareAddress::Ethernet(EthernetAddress(frames.mac()));
        let mut iface = {
            let mut device = Device::new(&mut frames, &mut hook, &mut rx, &mut tx);
            Interface::new(Config::new(mac), &mut device, now)
        };
        let mut sockets = SocketSet::new(&mut [][..]);
        for poll in 1..=3 {
            let mut device = Device::new(&mut frames, &mut hook, &mut rx, &mut tx);
            // Returns at all: smoltcp loops while the device yields frames.
            iface.poll(now, &mut device, &mut sockets);
            assert!(device.budget_spent());
            // Withheld frames count against the budget too.
            assert_eq!(frames.taken, poll * RX_BUDGET);
        }
    }
}
