//! A bare host: everything a platform gives the agent (a clock, records,
//! facts, an audit list, a deterministic RNG) and no world: no BMC, no
//! segment, no other node. Whoever holds it hands the agent frames and
//! moves its clock: the state-machine tests (`agent_machine`) and the
//! `frames` fuzz target. It is also a [`Frames`] over a queue, for the
//! drivers.

use std::collections::{BTreeMap, VecDeque};

use bmclink_core::audit::AuditEvent;
use bmclink_core::platform::{
    Audit, BmcFacts, Bootstrap, Clock, Frames, HostFacts, HostNet, Nic, OsEvents, Record, Retire,
    Retired, StatusSink, Store, StoreError, WaitAsync, Wake,
};
use smoltcp::time::Instant;

/// The host's MAC.
pub const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];

/// Everything a platform gives, and nothing else: no BMC, no wire.
pub struct Host {
    /// The clock; whoever drives the agent moves it.
    pub now: Instant,
    /// Carrier.
    pub up: bool,
    /// The records, by name.
    pub records: BTreeMap<Record, Vec<u8>>,
    /// The ids of the audit events, in order.
    pub audits: Vec<u16>,
    rng: u64,
    /// For the drivers: frames waiting to be received.
    pub inbox: VecDeque<Vec<u8>>,
    /// For the drivers: frames sent.
    pub sent: Vec<Vec<u8>>,
    /// For the drivers: a frame received again and again, for ever.
    pub endless: Option<Vec<u8>>,
    /// For the drivers: how many frames were received.
    pub taken: usize,
    /// For the drivers: a wait at or after this instant says stop.
    pub stop_at: Instant,
    /// The host's facts about the USBNIC.
    pub facts: HostFacts,
    /// How many times the agent read them.
    pub facts_read: usize,
    /// What `facts_changed` says: `None`, a platform that cannot tell;
    /// `Some(true)` once, then `Some(false)`, one that was told of a change.
    pub notify: Option<bool>,
}

impl Default for Host {
    fn default() -> Self {
        Self::new()
    }
}

impl Host {
    /// A host at time zero with the link up and nothing stored.
    pub fn new() -> Self {
        Host {
            now: Instant::ZERO,
            up: true,
            records: BTreeMap::new(),
            audits: Vec::new(),
            rng: 0x9e37_79b9_7f4a_7c15,
            inbox: VecDeque::new(),
            sent: Vec::new(),
            endless: None,
            taken: 0,
            stop_at: Instant::from_secs(3600),
            facts: HostFacts::default(),
            facts_read: 0,
            notify: None,
        }
    }
}

impl Nic for Host {
    fn mac(&self) -> [u8; 6] {
        MAC
    }
    fn link_up(&self) -> bool {
        self.up
    }
}

impl Frames for Host {
    fn recv(&mut self, buf: &mut [u8]) -> Option<usize> {
        let frame = match &self.endless {
            Some(f) => f.clone(),
            None => self.inbox.pop_front()?,
        };
        self.taken += 1;
        let n = frame.len().min(buf.len());
        buf[..n].copy_from_slice(&frame[..n]);
        Some(n)
    }
    fn send(&mut self, frame: &[u8]) {
        self.sent.push(frame.to_vec());
    }
    fn wait(&mut self, deadline: Option<Instant>) -> Wake {
        if self.now >= self.stop_at {
            return Wake::Stop;
        }
        let to = deadline.unwrap_or(self.stop_at).min(self.stop_at);
        self.now = self.now.max(to);
        Wake::Ready
    }
}

impl WaitAsync for Host {
    fn wait_async(
        &mut self,
        deadline: Option<Instant>,
    ) -> impl core::future::Future<Output = Wake> {
        let wake = self.wait(deadline);
        core::future::ready(wake)
    }
}

impl Clock for Host {
    fn now(&self) -> Instant {
        self.now
    }
    fn unix_time(&self) -> Option<u64> {
        None
    }
}

impl Store for Host {
    fn load(&mut self, record: Record, buf: &mut [u8]) -> Result<Option<usize>, StoreError> {
        let Some(r) = self.records.get(&record) else {
            return Ok(None);
        };
        let to = buf.get_mut(..r.len()).ok_or(StoreError::TooLarge(record))?;
        to.copy_from_slice(r);
        Ok(Some(r.len()))
    }
    fn save(&mut self, record: Record, data: &[u8]) -> Result<(), StoreError> {
        self.records.insert(record, data.to_vec());
        Ok(())
    }
    fn erase(&mut self, record: Record) -> Result<(), StoreError> {
        self.records.remove(&record);
        Ok(())
    }
}

impl HostNet for Host {
    fn facts(&mut self) -> HostFacts {
        self.facts_read += 1;
        self.facts
    }
    fn facts_changed(&mut self) -> Option<bool> {
        let said = self.notify;
        if said == Some(true) {
            self.notify = Some(false);
        }
        said
    }
}

impl Bootstrap for Host {
    fn bmc_facts(&mut self) -> Option<BmcFacts> {
        None
    }
    fn enrollment_account(&mut self, _: &mut [u8], _: &mut [u8]) -> Option<(usize, usize)> {
        None
    }
    fn retire_account(&mut self, _: Retire) -> Retired {
        Retired::Erased
    }
}

impl Audit<AuditEvent> for Host {
    fn record(&mut self, _now: Instant, event: &AuditEvent) {
        self.audits.push(event.id().0);
    }
}

impl StatusSink<bmclink_core::agent::Status> for Host {}
impl OsEvents for Host {}

impl rand_core::RngCore for Host {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        // splitmix64: deterministic, which is all a test needs.
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl rand_core::CryptoRng for Host {}
