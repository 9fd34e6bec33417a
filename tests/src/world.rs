//! The simulated host and world: implements every platform trait for the
//! agent, owns the segment, the BMC and the virtual clock, and runs them all
//! in one thread. [`World::wait`](bmclink_core::platform::Frames::wait) is
//! where virtual time moves: it lets the BMC work and jumps the clock to the
//! next event (a frame arriving, a timer of the BMC, the agent's deadline, a
//! scheduled fault).

use std::collections::BTreeMap;

use bmclink_core::agent::Status;
use bmclink_core::audit::AuditEvent;
use bmclink_core::platform::OsEvent;
use bmclink_core::platform::{
    Audit, BmcFacts, Bootstrap, Clock, Frames, HostFacts, HostNet, OsEvents, Record, Retire,
    Retired, StatusSink, Store, StoreError, Wake,
};
use rand_chacha::rand_core::{CryptoRng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use smoltcp::time::{Duration, Instant};

use crate::bmc::{BmcConfig, SimBmc};
use crate::clock::VirtualClock;
use crate::flood::{Flood, Nic};
use crate::rogue::{Rogue, RogueConfig};
use crate::timeline;
use crate::wire::{Port, Segment};

/// A scheduled change to the world (a link flap, a BMC reboot, ...).
pub type Action = Box<dyn FnOnce(&mut World)>;

/// The agent's MAC in the simulation.
pub const AGENT_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x10, 0x00, 0x02];

/// An in-memory [`Store`].
#[derive(Debug, Default, Clone)]
pub struct MemStore {
    /// The records.
    pub records: BTreeMap<Record, Vec<u8>>,
    /// Fail every operation on these records (I/O error injection).
    pub failing: Vec<Record>,
}

/// Everything the agent runs against in a simulation.
pub struct World {
    /// The shared virtual clock.
    pub clock: VirtualClock,
    /// The segment between host and BMC.
    pub segment: Segment,
    /// The simulated BMC.
    pub bmc: SimBmc,
    /// What the host OS says about the USBNIC.
    pub host: HostFacts,
    /// Persistent records.
    pub store: MemStore,
    /// Audit events the agent recorded.
    pub audit: Vec<(Instant, AuditEvent)>,
    /// Status updates the agent pushed.
    pub statuses: Vec<Status>,
    /// Whether the bootstrap channel answers.
    pub bootstrap_up: bool,
    /// When the simulation asks the agent to stop.
    pub stop_at: Option<Instant>,
    /// A misbehaving third host on the segment, if any.
    pub rogue: Option<Rogue>,
    /// OS events the host has for the BMC, taken by the agent in order
    /// (fill it, or push at scheduled times with [`World::at`]).
    pub os_events: std::collections::VecDeque<OsEvent>,
    /// One-time secrets the agent retired on the host.
    pub retired: Vec<String>,
    /// The secret the host holds, when not the BMC's (a wrong secret).
    pub host_secret: Option<String>,
    /// A bootstrap channel of the host's own (the shim's IPMI bootstrap
    /// over a simulated IPMI BMC) in place of the one built from the BMC's
    /// configuration.
    pub bootstrap: Option<Box<dyn Bootstrap>>,
    /// The agent's NIC receive ring with a flood and a CPU cost per frame
    /// ([`World::flood`]); without it frames go straight from the segment
    /// to the agent at no cost.
    pub nic: Option<Nic>,
    port: Port,
    rng: ChaCha8Rng,
    stop_signalled: bool,
    schedule: Vec<(Instant, Action)>,
    mac: [u8; 6],
}

impl World {
    /// A world with a BMC configured by `bmc`, a host with nothing on the
    /// USBNIC and IPv6 enabled, everything seeded by `seed`.
    pub fn new(bmc: BmcConfig, seed: u64) -> Self {
        let clock = VirtualClock::new();
        timeline::set_now(Instant::ZERO);
        let segment = Segment::new(clock.clone(), seed ^ 0x5e9);
        let port = segment.port();
        let bmc_port = segment.port();
        let bmc = SimBmc::new(bmc, bmc_port, clock.now(), seed, clock.unix_time());
        World {
            clock,
            segment,
            bmc,
            host: HostFacts {
                ipv4_present: false,
                ipv6_present: false,
                ipv6_enabled: true,
            },
            store: MemStore::default(),
            audit: Vec::new(),
            statuses: Vec::new(),
            bootstrap_up: true,
            stop_at: None,
            rogue: None,
            os_events: Default::default(),
            retired: Vec::new(),
            host_secret: None,
            bootstrap: None,
            nic: None,
            port,
            rng: ChaCha8Rng::seed_from_u64(seed),
            stop_signalled: false,
            schedule: Vec::new(),
            mac: AGENT_MAC,
        }
    }

    /// Schedules `action` at virtual time `at`.
    pub fn at(&mut self, at: Instant, action: impl FnOnce(&mut World) + 'static) {
        self.schedule.push((at, Box::new(action)));
        self.schedule.sort_by_key(|(t, _)| *t);
    }

    /// Asks the agent to stop at `at`.
    pub fn stop_at(&mut self, at: Instant) {
        self.stop_at = Some(at);
        self.stop_signalled = false;
    }

    /// The IDs of the audit events recorded so far, in order.
    pub fn audit_ids(&self) -> Vec<String> {
        self.audit.iter().map(|(_, e)| e.id().to_string()).collect()
    }

    /// Floods the agent's NIC as `flood` says, through a receive ring that
    /// drops on overflow and charges each frame read its CPU cost (see
    /// [`crate::flood`]).
    pub fn flood(&mut self, flood: Flood) {
        self.nic = Some(Nic::new(flood));
    }

    /// Whether a frame waits for the agent now.
    fn rx_ready(&mut self) -> bool {
        let now = self.clock.now();
        match self.nic.as_mut() {
            Some(nic) => nic.ready(now, &self.port),
            None => self.port.ready(),
        }
    }

    /// A new port on the segment (a third host).
    pub fn extra_port(&self) -> Port {
        self.segment.port()
    }

    /// Puts a misbehaving third host with `cfg` on the segment.
    pub fn add_rogue(&mut self, cfg: RogueConfig) {
        let port = self.extra_port();
        self.rogue = Some(Rogue::new(cfg, port));
    }

    fn run_due(&mut self) -> bool {
        let now = self.clock.now();
        let mut ran = false;
        while self.schedule.first().is_some_and(|(t, _)| *t <= now) {
            let (_, action) = self.schedule.remove(0);
            action(self);
            ran = true;
        }
        ran
    }
}

impl bmclink_core::platform::Nic for World {
    fn mac(&self) -> [u8; 6] {
        self.mac
    }
    fn link_up(&self) -> bool {
        self.segment.link_up()
    }
}

impl Frames for World {
    fn recv(&mut self, buf: &mut [u8]) -> Option<usize> {
        if let Some(nic) = self.nic.as_mut() {
            let n = nic.recv(self.clock.now(), &self.port, buf)?;
            self.clock.advance(nic.last_cost());
            return Some(n);
        }
        let frame = self.port.recv()?;
        let n = frame.len().min(buf.len());
        buf[..n].copy_from_slice(&frame[..n]);
        Some(n)
    }

    fn send(&mut self, frame: &[u8]) {
        self.port.send(frame);
    }

    fn wait(&mut self, deadline: Option<Instant>) -> Wake {
        self.step(deadline)
    }
}

impl World {
    /// Runs the world (the BMC, the segment, scheduled faults) in virtual
    /// time until a frame is waiting for the agent or `deadline` (the
    /// agent's next poll) has passed. The stop request comes first, so a
    /// flood that never leaves the wire empty still delivers it.
    pub fn step(&mut self, deadline: Option<Instant>) -> Wake {
        let mut spins = 0u32;
        loop {
            let now = self.clock.now();
            self.run_due();
            self.bmc.poll(now);
            if let Some(rogue) = self.rogue.as_mut() {
                rogue.poll(now);
            }
            if let Some(stop) = self.stop_at {
                if now >= stop && !self.stop_signalled {
                    self.stop_signalled = true;
                    return Wake::Stop;
                }
            }
            if self.rx_ready() {
                return Wake::Ready;
            }
            if deadline.is_some_and(|d| now >= d) {
                return Wake::Ready;
            }
            let stop = self.stop_at.filter(|_| !self.stop_signalled);
            let next = [
                deadline,
                self.segment.next_delivery(),
                self.bmc.poll_at(now),
                self.rogue.as_ref().and_then(Rogue::poll_at),
                stop,
                self.schedule.first().map(|(t, _)| *t),
                self.nic.as_ref().and_then(Nic::next_arrival),
            ]
            .into_iter()
            .flatten()
            .min();
            match next {
                Some(t) if t > now => self.clock.advance_to(t),
                Some(_) => {
                    // Work due now that is not for the agent (a frame to the
                    // BMC, a BMC timer): go round again, but never spin.
                    spins += 1;
                    if spins > 100 {
                        self.clock.advance(Duration::from_micros(1));
                        spins = 0;
                    }
                }
                None => {
                    // Nothing will ever happen: let the agent look again.
                    self.clock.advance(Duration::from_secs(1));
                    return Wake::Ready;
                }
            }
        }
    }
}

impl Clock for World {
    fn now(&self) -> Instant {
        self.clock.now()
    }

    fn unix_time(&self) -> Option<u64> {
        Some(self.clock.unix_time())
    }
}

impl Store for World {
    fn load(&mut self, record: Record, buf: &mut [u8]) -> Result<Option<usize>, StoreError> {
        if self.store.failing.contains(&record) {
            return Err(StoreError::Io(record));
        }
        match self.store.records.get(&record) {
            None => Ok(None),
            Some(data) if data.len() > buf.len() => Err(StoreError::TooLarge(record)),
            Some(data) => {
                buf[..data.len()].copy_from_slice(data);
                Ok(Some(data.len()))
            }
        }
    }

    fn save(&mut self, record: Record, data: &[u8]) -> Result<(), StoreError> {
        if self.store.failing.contains(&record) {
            return Err(StoreError::Io(record));
        }
        self.store.records.insert(record, data.to_vec());
        Ok(())
    }

    fn erase(&mut self, record: Record) -> Result<(), StoreError> {
        if self.store.failing.contains(&record) {
            return Err(StoreError::Io(record));
        }
        self.store.records.remove(&record);
        Ok(())
    }
}

impl HostNet for World {
    fn facts(&mut self) -> HostFacts {
        self.host
    }
}

impl Bootstrap for World {
    fn bmc_facts(&mut self) -> Option<BmcFacts> {
        if let Some(b) = &mut self.bootstrap {
            return b.bmc_facts();
        }
        if !self.bootstrap_up {
            return None;
        }
        let cfg = &self.bmc.cfg;
        Some(BmcFacts {
            fingerprint: (cfg.tls && cfg.publish_fingerprint).then(|| self.bmc.fingerprint()),
            firmware: cfg.firmware,
            tls: cfg.tls,
            ipv6_usbnic: cfg.ipv6_usbnic,
        })
    }

    /// The BMC's one-time account as the host received it, until the
    /// agent retires it on the host (the host's copy, not the BMC's: a
    /// BMC that bound it already still answers the same certificates).
    /// [`World::host_secret`] overrides the secret (a wrong one).
    fn enrollment_account(&mut self, name: &mut [u8], secret: &mut [u8]) -> Option<(usize, usize)> {
        if let Some(b) = &mut self.bootstrap {
            return b.enrollment_account(name, secret);
        }
        if !self.bootstrap_up {
            return None;
        }
        let cfg = &self.bmc.cfg;
        let given = self
            .host_secret
            .clone()
            .unwrap_or_else(|| cfg.credential.clone());
        if self.retired.contains(&given) {
            return None;
        }
        let (a, s) = (cfg.account.as_bytes(), given.as_bytes());
        if a.len() > name.len() || s.len() > secret.len() {
            return None;
        }
        name[..a.len()].copy_from_slice(a);
        secret[..s.len()].copy_from_slice(s);
        Some((a.len(), s.len()))
    }

    fn retire_account(&mut self, why: Retire) -> Retired {
        if let Some(b) = &mut self.bootstrap {
            timeline::emit("host", format!("bootstrap account retired ({why:?})"));
            return b.retire_account(why);
        }
        let cfg = &self.bmc.cfg;
        let given = self
            .host_secret
            .clone()
            .unwrap_or_else(|| cfg.credential.clone());
        timeline::emit("host", "one-time secret erased");
        self.retired.push(given);
        Retired::Erased
    }
}

impl Audit<AuditEvent> for World {
    fn record(&mut self, now: Instant, event: &AuditEvent) {
        timeline::emit(
            "audit",
            format!("{} {} {}", event.id(), event.severity().as_str(), event),
        );
        self.audit.push((now, event.clone()));
    }
}

impl StatusSink<Status> for World {
    fn status(&mut self, status: &Status) {
        self.statuses.push(*status);
    }
}

impl OsEvents for World {
    fn next_os_event(&mut self) -> Option<OsEvent> {
        self.os_events.pop_front()
    }
}

impl RngCore for World {
    fn next_u32(&mut self) -> u32 {
        self.rng.next_u32()
    }
    fn next_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.rng.fill_bytes(dest)
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_chacha::rand_core::Error> {
        self.rng.try_fill_bytes(dest)
    }
}

impl CryptoRng for World {}
