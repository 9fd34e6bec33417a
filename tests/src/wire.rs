//! A simulated Ethernet segment: a hub joining any number of ports, with a
//! fixed latency, seeded faults and a tap that describes frames on the
//! timeline.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use smoltcp::time::{Duration, Instant};

use crate::clock::VirtualClock;
use crate::describe::describe;
use crate::timeline;

/// Seeded misbehaviour of the segment, as probabilities in percent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    /// Frames dropped.
    pub loss_pct: u8,
    /// Frames with one byte flipped.
    pub corrupt_pct: u8,
    /// Frames delivered twice.
    pub duplicate_pct: u8,
    /// Extra random delay up to this many microseconds (reorders frames).
    pub jitter_us: u32,
}

struct Inner {
    clock: VirtualClock,
    latency: Duration,
    queues: Vec<VecDeque<(Instant, Vec<u8>)>>,
    link_up: bool,
    faults: Faults,
    rng: ChaCha8Rng,
    tap: bool,
    sent: u64,
    dropped: u64,
    capture: Vec<Captured>,
    echo: bool,
    deaf: Vec<usize>,
}

/// One frame put on the segment (the capture every test can read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    /// When it was sent.
    pub at: Instant,
    /// The sending port.
    pub port: usize,
    /// The frame, as sent (before any fault).
    pub frame: Vec<u8>,
}

impl Captured {
    /// The Ethernet source MAC, if the frame is long enough to have one.
    pub fn src_mac(&self) -> Option<[u8; 6]> {
        self.frame.get(6..12)?.try_into().ok()
    }

    /// The ethertype, if the frame is long enough to have one.
    pub fn ethertype(&self) -> Option<u16> {
        let b = self.frame.get(12..14)?;
        Some(u16::from_be_bytes([b[0], b[1]]))
    }
}

/// The segment; clones share it.
#[derive(Clone)]
pub struct Segment(Rc<RefCell<Inner>>);

/// One attachment to the segment.
#[derive(Clone)]
pub struct Port {
    seg: Segment,
    id: usize,
}

impl Segment {
    /// A segment with a 50 µs latency, no faults, the tap on.
    pub fn new(clock: VirtualClock, seed: u64) -> Self {
        Segment(Rc::new(RefCell::new(Inner {
            clock,
            latency: Duration::from_micros(50),
            queues: Vec::new(),
            link_up: true,
            faults: Faults::default(),
            rng: ChaCha8Rng::seed_from_u64(seed),
            tap: true,
            sent: 0,
            dropped: 0,
            capture: Vec::new(),
            echo: false,
            deaf: Vec::new(),
        })))
    }

    /// Attaches a new port.
    pub fn port(&self) -> Port {
        let mut inner = self.0.borrow_mut();
        inner.queues.push(VecDeque::new());
        Port {
            seg: self.clone(),
            id: inner.queues.len() - 1,
        }
    }

    /// Attaches a port that only sends (an intruder, a fuzzer): nothing is
    /// queued for it, so it never holds up virtual time.
    pub fn deaf_port(&self) -> Port {
        let port = self.port();
        self.0.borrow_mut().deaf.push(port.id);
        port
    }

    /// Sets the faults from now on.
    pub fn set_faults(&self, faults: Faults) {
        self.0.borrow_mut().faults = faults;
    }

    /// Echoes every frame back to its sender too (a looped link or a hub
    /// that reflects), from now on.
    pub fn set_echo(&self, on: bool) {
        self.0.borrow_mut().echo = on;
    }

    /// Sets the one-way latency from now on (a slow BMC or a slow link).
    pub fn set_latency(&self, latency: Duration) {
        self.0.borrow_mut().latency = latency;
    }

    /// Turns the frame descriptions on the timeline on or off.
    pub fn set_tap(&self, on: bool) {
        self.0.borrow_mut().tap = on;
    }

    /// Carrier up or down; frames in flight are lost when it goes down.
    pub fn set_link(&self, up: bool) {
        let mut inner = self.0.borrow_mut();
        if inner.link_up != up {
            timeline::emit("sim", if up { "link up" } else { "link down" });
        }
        inner.link_up = up;
        if !up {
            for q in inner.queues.iter_mut() {
                q.clear();
            }
        }
    }

    /// Whether the carrier is up.
    pub fn link_up(&self) -> bool {
        self.0.borrow().link_up
    }

    /// The earliest pending delivery to any port.
    pub fn next_delivery(&self) -> Option<Instant> {
        let inner = self.0.borrow();
        inner
            .queues
            .iter()
            .flat_map(|q| q.iter().map(|(t, _)| *t))
            .min()
    }

    /// Every frame put on the segment so far, in order.
    pub fn captured(&self) -> Vec<Captured> {
        self.0.borrow().capture.clone()
    }

    /// Frames sent and frames dropped by faults, so far.
    pub fn counters(&self) -> (u64, u64) {
        let inner = self.0.borrow();
        (inner.sent, inner.dropped)
    }
}

impl Port {
    /// Sends a frame to every other port.
    pub fn send(&self, frame: &[u8]) {
        let mut inner = self.seg.0.borrow_mut();
        if !inner.link_up {
            return;
        }
        inner.sent += 1;
        let at = inner.clock.now();
        let port = self.id;
        inner.capture.push(Captured {
            at,
            port,
            frame: frame.to_vec(),
        });
        if inner.tap {
            if let Some(text) = describe(frame) {
                timeline::emit("wire", text);
            }
        }
        let f = inner.faults;
        let roll =
            |rng: &mut ChaCha8Rng, pct: u8| pct > 0 && (rng.next_u32() % 100) < u32::from(pct);
        if roll(&mut inner.rng, f.loss_pct) {
            inner.dropped += 1;
            return;
        }
        let mut frame = frame.to_vec();
        if roll(&mut inner.rng, f.corrupt_pct) && !frame.is_empty() {
            let i = inner.rng.next_u32() as usize % frame.len();
            frame[i] ^= 1 << (inner.rng.next_u32() % 8);
        }
        let copies = if roll(&mut inner.rng, f.duplicate_pct) {
            2
        } else {
            1
        };
        for (id, _) in (0..inner.queues.len()).map(|i| (i, ())).collect::<Vec<_>>() {
            if (id == self.id && !inner.echo) || inner.deaf.contains(&id) {
                continue;
            }
            for _ in 0..copies {
                let jitter = if f.jitter_us > 0 {
                    Duration::from_micros(u64::from(inner.rng.next_u32() % f.jitter_us))
                } else {
                    Duration::ZERO
                };
                let at = inner.clock.now() + inner.latency + jitter;
                let q = &mut inner.queues[id];
                // Keep each queue ordered by delivery time.
                let pos = q.iter().position(|(t, _)| *t > at).unwrap_or(q.len());
                q.insert(pos, (at, frame.clone()));
            }
        }
    }

    /// Takes the next frame due for this port.
    pub fn recv(&self) -> Option<Vec<u8>> {
        let mut inner = self.seg.0.borrow_mut();
        let now = inner.clock.now();
        let q = &mut inner.queues[self.id];
        match q.front() {
            Some((t, _)) if *t <= now => q.pop_front().map(|(_, f)| f),
            _ => None,
        }
    }

    /// When the next frame queued for this port is due, whether or not it is
    /// due yet.
    pub fn next_at(&self) -> Option<Instant> {
        let inner = self.seg.0.borrow();
        inner.queues[self.id].front().map(|(t, _)| *t)
    }

    /// Whether a frame is due for this port now.
    pub fn ready(&self) -> bool {
        let inner = self.seg.0.borrow();
        let now = inner.clock.now();
        matches!(inner.queues[self.id].front(), Some((t, _)) if *t <= now)
    }

    /// The segment this port is on.
    pub fn segment(&self) -> &Segment {
        &self.seg
    }
}
