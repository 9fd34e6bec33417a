//! A smoltcp device over a segment [`Port`], for the simulated BMC and hosts.

use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

use crate::wire::Port;

/// A smoltcp device over a port.
pub struct PortDevice<'p> {
    port: &'p Port,
}

impl<'p> PortDevice<'p> {
    /// Wraps a port.
    pub fn new(port: &'p Port) -> Self {
        PortDevice { port }
    }
}

/// A received frame.
pub struct Rx(Vec<u8>);

/// Sends on the port when consumed.
pub struct Tx<'p>(&'p Port);

impl phy::Device for PortDevice<'_> {
    type RxToken<'a>
        = Rx
    where
        Self: 'a;
    type TxToken<'a>
        = Tx<'a>
    where
        Self: 'a;

    fn receive(&mut self, _now: Instant) -> Option<(Rx, Tx<'_>)> {
        if !self.port.segment().link_up() {
            return None;
        }
        self.port.recv().map(|f| (Rx(f), Tx(self.port)))
    }

    fn transmit(&mut self, _now: Instant) -> Option<Tx<'_>> {
        if !self.port.segment().link_up() {
            return None;
        }
        Some(Tx(self.port))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = 1514;
        caps
    }
}

impl phy::RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buf = vec![0u8; len];
        let r = f(&mut buf);
        self.0.send(&buf);
        r
    }
}
