//! The smoltcp `phy::Device` the agent hands smoltcp: one frame each way.
//!
//! The agent never reads or writes the wire; it is handed one received
//! frame at a time (`Agent::handle_frame`) and asked for one frame to send
//! at a time (`Agent::poll_transmit`). A [`Port`] is what smoltcp sees for
//! one such call: the one received frame, if any, and one buffer for the
//! one frame it may write (the answer to that frame, or the next segment a
//! socket has). smoltcp's `poll_ingress_single` and `poll_egress` stop at
//! the first frame the port cannot take, and a socket whose frame found no
//! room keeps it for the next call.
//!
//! Every received frame is shown to a [`FrameHook`] before smoltcp sees it,
//! because smoltcp 0.14 does no ARP probing and no duplicate address
//! detection: the address claims need to see probes (sender 0.0.0.0) and
//! DAD solicitations (source `::`) that smoltcp would silently ignore, and to
//! keep frames about a not-yet-claimed address away from the interface.

use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

pub use super::claim::Verdict;
use crate::platform::MAX_FRAME_LEN;

/// Sees every received frame first.
pub trait FrameHook {
    /// Inspects one received Ethernet frame.
    fn inspect(&mut self, now: Instant, frame: &[u8]) -> Verdict;
}

/// One frame's worth of buffer.
pub type FrameBuf = [u8; MAX_FRAME_LEN];

/// A smoltcp device for one call: at most one frame in, at most one out.
pub struct Port<'d> {
    rx: Option<&'d [u8]>,
    tx: &'d mut FrameBuf,
    sent: Option<usize>,
}

impl<'d> Port<'d> {
    /// A port that yields `frame` once and writes what smoltcp answers with
    /// into `tx`.
    pub fn ingress(frame: &'d [u8], tx: &'d mut FrameBuf) -> Self {
        Port {
            rx: Some(frame),
            tx,
            sent: None,
        }
    }

    /// A port with nothing to receive and room for one frame in `tx`.
    pub fn egress(tx: &'d mut FrameBuf) -> Self {
        Port {
            rx: None,
            tx,
            sent: None,
        }
    }

    /// The length of the frame smoltcp wrote into the transmit buffer, if
    /// it wrote one.
    pub fn sent(&self) -> Option<usize> {
        self.sent
    }
}

/// Receive token: the one frame.
pub struct RxToken<'a> {
    frame: &'a [u8],
}

/// Transmit token: writes the one frame into the port's buffer.
pub struct TxToken<'a> {
    buf: &'a mut FrameBuf,
    sent: &'a mut Option<usize>,
}

impl phy::Device for Port<'_> {
    type RxToken<'a>
        = RxToken<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = TxToken<'a>
    where
        Self: 'a;

    fn receive(&mut self, _now: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        if self.sent.is_some() {
            return None;
        }
        let frame = self.rx.take()?;
        Some((
            RxToken { frame },
            TxToken {
                buf: &mut *self.tx,
                sent: &mut self.sent,
            },
        ))
    }

    fn transmit(&mut self, _now: Instant) -> Option<Self::TxToken<'_>> {
        if self.sent.is_some() {
            return None;
        }
        Some(TxToken {
            buf: &mut *self.tx,
            sent: &mut self.sent,
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

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        // smoltcp never asks for more than the MTU it was given; clamp anyway
        // so a logic error cannot index out of bounds.
        let len = len.min(self.buf.len());
        let (head, _) = self.buf.split_at_mut(len);
        let r = f(head);
        *self.sent = Some(len);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::phy::Device as _;

    #[test]
    fn a_port_yields_its_frame_once_and_takes_one_frame() {
        let frame = [0xffu8; 60];
        let mut tx = [0; MAX_FRAME_LEN];
        let mut port = Port::ingress(&frame, &mut tx);
        let (rx, tx_token) = port.receive(Instant::ZERO).expect("the frame");
        phy::RxToken::consume(rx, |f| assert_eq!(f, &frame[..]));
        phy::TxToken::consume(tx_token, 42, |b| b.fill(7));
        assert_eq!(port.sent(), Some(42));
        // The frame is spent and the buffer is full: nothing more either way.
        assert!(port.receive(Instant::ZERO).is_none());
        assert!(port.transmit(Instant::ZERO).is_none());
        assert_eq!(tx.get(..42), Some(&[7u8; 42][..]));
    }

    #[test]
    fn an_egress_port_has_nothing_to_receive() {
        let mut tx = [0; MAX_FRAME_LEN];
        let mut port = Port::egress(&mut tx);
        assert!(port.receive(Instant::ZERO).is_none());
        assert!(port.sent().is_none());
        let token = port.transmit(Instant::ZERO).expect("room for one");
        // A request longer than the buffer is clamped, never out of bounds.
        phy::TxToken::consume(token, MAX_FRAME_LEN + 10, |b| {
            assert_eq!(b.len(), MAX_FRAME_LEN)
        });
        assert_eq!(port.sent(), Some(MAX_FRAME_LEN));
    }
}
