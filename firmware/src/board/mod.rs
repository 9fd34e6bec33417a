//! The board: QEMU's mps2-an386 (Cortex-M4F at 25 MHz, LAN9118 at
//! 0x4020_0000 on IRQ 13), and every platform trait of
//! `bmclink_core::platform` implemented over its pieces.
//!
//! Nothing here knows how the agent is driven: `main.rs` owns that loop.
//! A rig on another board changes this file (its constants, its entropy,
//! its bootstrap source), `lan9118.rs` (its MAC) and `memory.x` (its memory
//! map); `clock.rs` (SysTick), `store.rs`, `rng.rs` and `sniff.rs` are
//! plain Cortex-M and carry over.

pub mod clock;
pub mod lan9118;
pub mod rng;
pub mod semihosting;
pub mod sniff;
pub mod store;

use core::sync::atomic::{AtomicBool, Ordering};

use bmclink_core::agent::Status;
use bmclink_core::audit::{AuditEvent, SessionEvent, TlsEvent};
use bmclink_core::platform::{
    Audit, BmcFacts, Bootstrap, Clock, Frames, HostFacts, Nic, HostNet, OsEvents, Record, Retire, Retired,
    StatusSink, Store,
    StoreError, Wake,
};
use bmclink_core::types::Channel;
use cortex_m::interrupt::InterruptNumber;
use cortex_m::peripheral::NVIC;
use cortex_m_rt::exception;
use defmt::{info, warn, Display2Format};
use smoltcp::time::Instant;

use self::lan9118::Lan9118;
use self::rng::Drbg;
use self::store::RamStore;

/// The core clock of the MPS2 FPGA images (AN385/AN386): 25 MHz.
pub const CORE_CLOCK_HZ: u32 = 25_000_000;
/// Where the board maps the LAN9118.
const LAN9118_BASE: usize = 0x4020_0000;
/// The LAN9118's interrupt line on the NVIC.
const LAN9118_IRQ: Irq = Irq(13);

/// The BMC's certificate fingerprint the bootstrap channel publishes,
/// built into the image (`cargo xtask qemu` sets it; hex, 64 digits).
const BMC_FINGERPRINT: Option<&str> = option_env!("BMCLINK_FW_BMC_FINGERPRINT");
/// The one-time enrollment credential, built in the same way.
const CREDENTIAL: Option<&str> = option_env!("BMCLINK_FW_CREDENTIAL");
/// The one-time enrollment account's name, built in the same way.
const ACCOUNT: Option<&str> = option_env!("BMCLINK_FW_ACCOUNT");
/// The BMC firmware the bootstrap channel reports (TLS-capable, 3.30).
const BMC_FIRMWARE: [u8; 4] = [3, 30, 30, 30];

/// An NVIC line.
#[derive(Clone, Copy)]
struct Irq(u16);

// SAFETY: 13 is a valid external interrupt number on this board.
unsafe impl InterruptNumber for Irq {
    fn number(self) -> u16 {
        self.0
    }
}

/// What the run showed, for the exit code.
#[derive(Debug, Clone, Copy, Default, defmt::Format)]
pub struct Seen {
    /// BL4006: enrolled, both certificates pinned.
    pub enrolled: bool,
    /// BL2001 over TLS 1.3.
    pub tls13_session: bool,
    /// BL2002: the session ended with BYE.
    pub bye: bool,
    /// Error-severity audit events.
    pub errors: u32,
}

/// The board and its state.
pub struct Board {
    mac: Lan9118,
    mac_address: [u8; 6],
    store: RamStore,
    rng: Drbg,
    credential_taken: bool,
    /// The host's Unix time when the board came up (semihosting), if any.
    boot_unix: Option<u64>,
    /// When the platform asks the agent to stop (µs since boot).
    stop_at: u64,
    /// What the audit sink has seen.
    pub seen: Seen,
}

/// Whether the board has been taken (there is one MAC).
static TAKEN: AtomicBool = AtomicBool::new(false);

impl Board {
    /// Brings the board up: SysTick, the MAC, its interrupt, the DRBG.
    /// `None` when called twice or when the MAC does not answer.
    pub fn take(stop_after_secs: u64) -> Option<Board> {
        if TAKEN.swap(true, Ordering::AcqRel) {
            return None;
        }
        let core = cortex_m::Peripherals::take()?;
        clock::start(core.SYST);
        // SAFETY: the board maps the LAN9118 here and `TAKEN` makes this
        // the only driver instance (the interrupt handler only masks).
        let mut mac = unsafe { Lan9118::new(LAN9118_BASE) };
        match mac.init() {
            Ok(id) => info!("LAN9118 up (ID_REV {=u32:#010x})", id),
            Err(e) => {
                warn!("LAN9118 did not come up: {}", e);
                return None;
            }
        }
        let mac_address = mac.mac_address();
        info!("MAC {=[u8]:02x}, link {}", mac_address, mac.link_up());
        // SAFETY: the handler below only touches the MAC's interrupt mask.
        unsafe { NVIC::unmask(LAN9118_IRQ) };
        let rng = Drbg::from_entropy(&entropy_seed(&mac_address));
        // The debug host's calendar: without it the client certificate
        // would be made valid from 1970 (for ten years).
        let boot_unix = match semihosting::host_time() {
            0 | u32::MAX => None,
            t => Some(u64::from(t)),
        };
        Some(Board {
            mac,
            mac_address,
            // SAFETY: `TAKEN` makes this the only call.
            store: unsafe { RamStore::take() },
            rng,
            credential_taken: false,
            boot_unix,
            stop_at: stop_after_secs.saturating_mul(1_000_000),
            seen: Seen::default(),
        })
    }
}

/// The DRBG's seed material (NOT FOR PRODUCTION, see `rng.rs`): the
/// host's time over semihosting, the MAC and the clock.
fn entropy_seed(mac: &[u8; 6]) -> [u8; 18] {
    let mut seed = [0u8; 18];
    seed[..4].copy_from_slice(&semihosting::host_time().to_le_bytes());
    seed[4..10].copy_from_slice(mac);
    seed[10..].copy_from_slice(&clock::ticks().to_le_bytes());
    seed
}

/// Hex digits to bytes; `None` unless exactly `N` bytes of hex.
fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let digits = text.as_bytes();
    if digits.len() != 2 * N {
        return None;
    }
    let nibble = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

impl Nic for Board {
    fn mac(&self) -> [u8; 6] {
        self.mac_address
    }
    fn link_up(&self) -> bool {
        // The PHY read needs `&mut`; a second handle reads the same chip.
        // SAFETY: single-threaded; MII reads do not disturb the FIFOs.
        unsafe { Lan9118::new(LAN9118_BASE) }.link_up()
    }
}

impl Frames for Board {
    fn recv(&mut self, buf: &mut [u8]) -> Option<usize> {
        let n = self.mac.recv(buf)?;
        sniff::frame(sniff::Dir::Rx, buf.get(..n).unwrap_or(&[]));
        Some(n)
    }

    fn send(&mut self, frame: &[u8]) {
        sniff::frame(sniff::Dir::Tx, frame);
        if !self.mac.send(frame) {
            warn!("TX FIFO full: frame of {=usize} bytes dropped", frame.len());
        }
    }



    fn wait(&mut self, deadline: Option<Instant>) -> Wake {
        loop {
            let now = clock::micros();
            if now >= self.stop_at {
                return Wake::Stop;
            }
            if self.mac.rx_waiting() || deadline.is_some_and(|d| d.total_micros() as u64 <= now) {
                return Wake::Ready;
            }
            // Sleep until the next millisecond tick or a frame; a frame
            // that arrived since the check leaves the interrupt pending,
            // so WFI returns at once.
            self.mac.arm_rx_interrupt();
            crate::bench::on_sleep();
            let before = clock::ticks();
            cortex_m::asm::wfi();
            clock::add_idle(clock::ticks().saturating_sub(before));
            crate::bench::on_wake();
        }
    }
}

impl Clock for Board {
    fn now(&self) -> Instant {
        Instant::from_micros(clock::micros() as i64)
    }

    fn unix_time(&self) -> Option<u64> {
        // The board has no calendar clock of its own; the debug host's,
        // read once at start-up, plus the time since. A rig without one
        // returns `None`: expiry is then not checked (authentication
        // still is), but the client certificate the agent makes starts in
        // 1970 and has expired for any peer that checks (BENCHMARKS.md).
        self.boot_unix
            .map(|t| t.saturating_add(clock::micros() / 1_000_000))
    }
}

impl Store for Board {
    fn load(&mut self, record: Record, buf: &mut [u8]) -> Result<Option<usize>, StoreError> {
        self.store.load(record, buf)
    }

    fn save(&mut self, record: Record, data: &[u8]) -> Result<(), StoreError> {
        self.store.save(record, data)
    }

    fn erase(&mut self, record: Record) -> Result<(), StoreError> {
        self.store.erase(record)
    }
}

impl HostNet for Board {
    fn facts(&mut self) -> HostFacts {
        // The board is the host: no OS stack beside the agent's own.
        HostFacts {
            ipv4_present: false,
            ipv6_present: false,
            ipv6_enabled: true,
        }
    }
}

impl Bootstrap for Board {
    fn bmc_facts(&mut self) -> Option<BmcFacts> {
        Some(BmcFacts {
            fingerprint: BMC_FINGERPRINT.and_then(unhex::<32>),
            firmware: BMC_FIRMWARE,
            tls: true,
            ipv6_usbnic: true,
        })
    }

    /// The one-time account built in (DSP0270's user and password); kept
    /// until the core retires it, so a dropped connection does not use it up.
    fn enrollment_account(&mut self, name: &mut [u8], secret: &mut [u8]) -> Option<(usize, usize)> {
        if self.credential_taken {
            return None;
        }
        let account = ACCOUNT?.as_bytes();
        let credential = CREDENTIAL?.as_bytes();
        name.get_mut(..account.len())?.copy_from_slice(account);
        secret
            .get_mut(..credential.len())?
            .copy_from_slice(credential);
        Some((account.len(), credential.len()))
    }

    /// The built-in account is only marked taken: a rig has no
    /// bootstrapping to disable.
    fn retire_account(&mut self, _why: Retire) -> Retired {
        self.credential_taken = true;
        Retired::Erased
    }
}

impl Audit<AuditEvent> for Board {
    fn record(&mut self, _now: Instant, event: &AuditEvent) {
        let id = event.id();
        info!(
            "audit {} {}: {}",
            Display2Format(&id),
            event.severity().as_str(),
            Display2Format(event)
        );
        match event {
            AuditEvent::Tls(TlsEvent::Enrolled { .. }) => self.seen.enrolled = true,
            AuditEvent::Session(SessionEvent::Started {
                channel: Channel::Tls13,
                ..
            }) => self.seen.tls13_session = true,
            AuditEvent::Session(SessionEvent::Ended { .. }) => self.seen.bye = true,
            _ => {}
        }
        if event.severity() == bmclink_core::audit::Severity::Error {
            self.seen.errors += 1;
        }
        crate::bench::on_audit(id.0);
    }
}

/// The rig has no OS whose events would go to the BMC.
impl OsEvents for Board {}

impl StatusSink<Status> for Board {
    fn status(&mut self, status: &Status) {
        info!(
            "status: sessions {=u32}, family {}, channel {}",
            status.sessions, status.family, status.channel
        );
    }
}

impl rand_core::RngCore for Board {
    fn next_u32(&mut self) -> u32 {
        self.rng.next_u32()
    }

    fn next_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.rng.fill_bytes(dest)
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.rng.try_fill_bytes(dest)
    }
}

/// The DRBG is a CSPRNG (its seed is the caveat, see `rng.rs`).
impl rand_core::CryptoRng for Board {}

/// Every interrupt without a handler of its own; the LAN9118's (13) masks
/// its source so the main loop, woken from WFI, reads the FIFO.
#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    if irqn == 13 {
        // SAFETY: only the interrupt mask and status are written.
        unsafe { Lan9118::new(LAN9118_BASE) }.on_interrupt();
    }
}
