//! The agent's link layer: the IPv4 and IPv6 address claims and the BMC
//! IPv6 discovery, behind the device's frame hook. Every received frame is
//! shown to each running piece; a frame reaches smoltcp only if all let it
//! pass.

use smoltcp::time::Instant;
use smoltcp::wire::{Ipv4Address, Ipv6Address};

use super::net::{LinkLayer, Timers};
use crate::link::claim::{Claim, Received, Verdict};
use crate::link::device::FrameHook;
use crate::link::discover::{Discovery, DiscoveryEvent};
use crate::link::ipv4ll::{Ipv4Claim, Ipv4ClaimEvent};
use crate::link::ipv6ll::{IidMode, Ipv6Claim, Ipv6ClaimEvent};

/// How the IPv4 claim is being used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipv4Mode {
    /// A fresh claim (P2): conflicts move on to another RFC 3927 address.
    Fresh,
    /// The recorded address (P3): a conflict makes the claim probe the same
    /// address again (RFC 5227 delays and rate limit), never another one.
    Recorded(Ipv4Address),
}

/// The running claims.
#[derive(Default)]
pub struct Link {
    /// The IPv4 claim, while IPv4 is in use.
    pub v4: Option<(Ipv4Claim, Ipv4Mode)>,
    /// The IPv6 claim, while IPv6 is in use.
    pub v6: Option<Ipv6Claim>,
    /// BMC IPv6 discovery, while it runs.
    pub discovery: Option<Discovery>,
}

/// Something a claim or the discovery reported, for the agent to act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkReport {
    /// IPv4 claim event.
    V4(Ipv4ClaimEvent, Ipv4Mode),
    /// IPv6 claim event.
    V6(Ipv6ClaimEvent),
    /// Discovery outcome.
    Discovery(DiscoveryEvent),
}

impl Link {
    /// Starts an IPv4 claim.
    pub fn claim_ipv4(
        &mut self,
        mac: [u8; 6],
        addr: Ipv4Address,
        mode: Ipv4Mode,
        seed: u64,
        now: Instant,
    ) {
        let mut claim = match mode {
            Ipv4Mode::Fresh => Ipv4Claim::new(mac, addr, seed),
            Ipv4Mode::Recorded(_) => Ipv4Claim::recorded(mac, addr, seed),
        };
        claim.start(now);
        self.v4 = Some((claim, mode));
    }

    /// Starts an IPv6 claim.
    pub fn claim_ipv6(&mut self, mac: [u8; 6], mode: IidMode, seed: u64, now: Instant) {
        let mut claim = Ipv6Claim::new(mac, mode, false, seed);
        claim.start(now);
        self.v6 = Some(claim);
    }

    /// The IPv4 address in use, if bound.
    pub fn ipv4(&self) -> Option<Ipv4Address> {
        self.v4.as_ref().and_then(|(c, _)| c.bound())
    }

    /// The IPv6 address in use, if bound.
    pub fn ipv6(&self) -> Option<Ipv6Address> {
        self.v6.as_ref().and_then(|c| c.bound())
    }

    /// Stops everything (link down).
    pub fn stop(&mut self) {
        self.v4 = None;
        self.v6 = None;
        self.discovery = None;
    }

    /// Takes the next report of any running piece.
    pub fn poll_report(&mut self) -> Option<LinkReport> {
        if let Some((claim, mode)) = self.v4.as_mut() {
            if let Some(e) = claim.poll_event() {
                return Some(LinkReport::V4(e, *mode));
            }
        }
        if let Some(claim) = self.v6.as_mut() {
            if let Some(e) = claim.poll_event() {
                return Some(LinkReport::V6(e));
            }
        }
        if let Some(d) = self.discovery.as_mut() {
            if let Some(e) = d.poll_event() {
                self.discovery = None;
                return Some(LinkReport::Discovery(e));
            }
        }
        None
    }

    /// Runs every piece's timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        for c in self.claims_mut().into_iter().flatten() {
            c.handle_timeout(now);
        }
    }

    /// The running pieces, in the order they are served: IPv4 claim, IPv6
    /// claim, discovery.
    fn claims_mut(&mut self) -> [Option<&mut dyn Claim>; 3] {
        [
            self.v4.as_mut().map(|(c, _)| c as &mut dyn Claim),
            self.v6.as_mut().map(|c| c as &mut dyn Claim),
            self.discovery.as_mut().map(|d| d as &mut dyn Claim),
        ]
    }

    /// [`Link::claims_mut`], shared.
    fn claims(&self) -> [Option<&dyn Claim>; 3] {
        [
            self.v4.as_ref().map(|(c, _)| c as &dyn Claim),
            self.v6.as_ref().map(|c| c as &dyn Claim),
            self.discovery.as_ref().map(|d| d as &dyn Claim),
        ]
    }
}

impl FrameHook for Link {
    /// Parses the frame once and shows it to every running piece; the last
    /// piece that keeps it from smoltcp decides the verdict.
    fn inspect(&mut self, now: Instant, frame: &[u8]) -> Verdict {
        let received = Received::parse(frame);
        let mut verdict = Verdict::Pass;
        for c in self.claims_mut().into_iter().flatten() {
            let v = c.handle(now, &received);
            if !v.passes() {
                verdict = v;
            }
        }
        verdict
    }
}

impl Timers for Link {
    fn poll_at(&self) -> Option<Instant> {
        self.claims()
            .into_iter()
            .flatten()
            .map(|c| c.poll_at())
            .fold(None, super::net::earliest)
    }
}

impl LinkLayer for Link {
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        self.claims_mut()
            .into_iter()
            .flatten()
            .find_map(|c| c.poll_transmit(now, &mut *buf))
    }
}
