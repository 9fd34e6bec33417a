//! A firmware-style image of the bmclink agent for a Cortex-M4F
//! (`thumbv7em-none-eabihf`): no `std`, no `main`, static memory only.
//!
//! It exists to be measured (`cargo xtask size` reports its `.text`,
//! `.data` and `.bss`), so it links everything a real port links: the agent
//! with smoltcp, the claims, the policy, the session and the TLS 1.3 client.
//! The platform is a stand-in over memory-mapped registers: every value the
//! agent reads from it is a volatile read, so the optimiser cannot prove a
//! frame, a certificate or a TLS record never arrives and drop the code that
//! handles them. It links; it is not meant to boot on a real board.
#![no_std]
#![no_main]

use core::fmt::Write as _;
use core::mem::MaybeUninit;
use core::panic::PanicInfo;
use core::ptr::{addr_of, addr_of_mut, read_volatile, write_volatile};

use bmclink_core::agent::{Agent, AgentBuffers, Status};
use bmclink_core::audit::AuditEvent;
use bmclink_core::platform::{
    Audit, BmcFacts, Bootstrap, Clock, Frames, HostFacts, HostNet, Record, Store, StoreError,
    Wake, MAX_FRAME_LEN,
};
use bmclink_core::Config;
use smoltcp::time::Instant;

/// The agent's borrowed memory: sockets, TCP and TLS buffers. Written at
/// reset rather than initialised statically: `AgentBuffers::new()` is not
/// all zero bytes (empty socket slots), so a `static` holding it would land
/// in `.data` and cost its whole size in flash too.
static mut BUFFERS: MaybeUninit<AgentBuffers<'static>> = MaybeUninit::uninit();

/// Largest stored record (the identity certificate is the largest).
const RECORD_LEN: usize = 512;

/// The persistent records, as a flash page would hold them (`.bss`).
static mut RECORDS: [(u16, [u8; RECORD_LEN]); Record::ALL.len()] =
    [(0, [0; RECORD_LEN]); Record::ALL.len()];

/// A stand-in Ethernet MAC: one receive and one transmit descriptor.
#[repr(C)]
struct Mac {
    /// Length of the frame waiting in `rx`, 0 when none.
    rx_len: u32,
    rx: [u8; MAX_FRAME_LEN],
    /// Writing a length starts a transmission of `tx`.
    tx_len: u32,
    tx: [u8; MAX_FRAME_LEN],
    /// Carrier, hardware address, a free-running microsecond counter and a
    /// hardware random number generator.
    carrier: u32,
    addr: [u8; 6],
    micros: u64,
    trng: u32,
    /// Bootstrap channel mailbox: the BMC's facts and its credential.
    facts: [u8; 40],
    credential_len: u32,
    credential: [u8; 255],
    /// A debug UART's data register.
    uart: u8,
}

static mut MAC: Mac = Mac {
    rx_len: 0,
    rx: [0; MAX_FRAME_LEN],
    tx_len: 0,
    tx: [0; MAX_FRAME_LEN],
    carrier: 0,
    addr: [0; 6],
    micros: 0,
    trng: 0,
    facts: [0; 40],
    credential_len: 0,
    credential: [0; 255],
    uart: 0,
};

/// The registers, read and written only with volatile accesses.
fn mac() -> *mut Mac {
    addr_of_mut!(MAC)
}

/// Copies `len` bytes out of a register block, volatile byte by byte.
fn read_bytes(src: *const u8, dst: &mut [u8]) {
    for (i, d) in dst.iter_mut().enumerate() {
        // SAFETY: callers pass a `src` with at least `dst.len()` bytes.
        *d = unsafe { read_volatile(src.add(i)) };
    }
}

/// The platform: every trait of `bmclink_core::platform` over the registers.
struct Board;

impl Frames for Board {
    fn recv(&mut self, buf: &mut [u8]) -> Option<usize> {
        // SAFETY: single-threaded; `MAC` is only accessed through volatile ops.
        let len = unsafe { read_volatile(addr_of!((*mac()).rx_len)) } as usize;
        if len == 0 || len > MAX_FRAME_LEN || len > buf.len() {
            return None;
        }
        // SAFETY: as above; `len` is at most the descriptor's size.
        unsafe {
            read_bytes(addr_of!((*mac()).rx).cast(), &mut buf[..len]);
            write_volatile(addr_of_mut!((*mac()).rx_len), 0);
        }
        Some(len)
    }

    fn send(&mut self, frame: &[u8]) {
        let len = frame.len().min(MAX_FRAME_LEN);
        // SAFETY: as above; at most the descriptor's size is written.
        unsafe {
            let tx: *mut u8 = addr_of_mut!((*mac()).tx).cast();
            for (i, b) in frame[..len].iter().enumerate() {
                write_volatile(tx.add(i), *b);
            }
            write_volatile(addr_of_mut!((*mac()).tx_len), len as u32);
        }
    }

    fn mac(&self) -> [u8; 6] {
        let mut addr = [0; 6];
        // SAFETY: as above.
        read_bytes(unsafe { addr_of!((*mac()).addr).cast() }, &mut addr);
        addr
    }

    fn link_up(&self) -> bool {
        // SAFETY: as above.
        unsafe { read_volatile(addr_of!((*mac()).carrier)) != 0 }
    }

    fn wait(&mut self, _deadline: Option<Instant>) -> Wake {
        // A real port sleeps (WFI) until the MAC interrupt or the timer.
        Wake::Ready
    }
}

impl Clock for Board {
    fn now(&self) -> Instant {
        // SAFETY: as above.
        let micros = unsafe { read_volatile(addr_of!((*mac()).micros)) };
        Instant::from_micros(micros as i64)
    }

    fn unix_time(&self) -> Option<u64> {
        None
    }
}

/// Index of a record in `RECORDS`.
fn slot(record: Record) -> usize {
    Record::ALL.iter().position(|r| *r == record).unwrap_or(0)
}

impl Store for Board {
    fn load(&mut self, record: Record, buf: &mut [u8]) -> Result<Option<usize>, StoreError> {
        // SAFETY: single-threaded; the records are only touched here.
        let (len, data) = unsafe { &(*addr_of!(RECORDS))[slot(record)] };
        let len = usize::from(*len);
        if len == 0 {
            return Ok(None);
        }
        let dst = buf.get_mut(..len).ok_or(StoreError::TooLarge(record))?;
        read_bytes(data.as_ptr(), dst);
        Ok(Some(len))
    }

    fn save(&mut self, record: Record, data: &[u8]) -> Result<(), StoreError> {
        // SAFETY: as above.
        let (len, page) = unsafe { &mut (*addr_of_mut!(RECORDS))[slot(record)] };
        let dst = page.get_mut(..data.len()).ok_or(StoreError::Io(record))?;
        dst.copy_from_slice(data);
        *len = data.len() as u16;
        Ok(())
    }

    fn erase(&mut self, record: Record) -> Result<(), StoreError> {
        // SAFETY: as above.
        unsafe { (*addr_of_mut!(RECORDS))[slot(record)].0 = 0 };
        Ok(())
    }
}

/// Reads the facts mailbox.
fn facts() -> [u8; 40] {
    let mut f = [0; 40];
    // SAFETY: as above.
    read_bytes(unsafe { addr_of!((*mac()).facts).cast() }, &mut f);
    f
}

impl HostNet for Board {
    fn facts(&mut self) -> HostFacts {
        let f = facts();
        HostFacts {
            ipv4_present: f[0] & 1 != 0,
            ipv6_present: f[0] & 2 != 0,
            ipv6_enabled: f[0] & 4 != 0,
        }
    }
}

impl Bootstrap for Board {
    fn bmc_facts(&mut self) -> Option<BmcFacts> {
        let f = facts();
        if f[1] == 0 {
            return None;
        }
        let mut fingerprint = [0; 32];
        fingerprint.copy_from_slice(&f[8..40]);
        Some(BmcFacts {
            fingerprint: (f[1] & 2 != 0).then_some(fingerprint),
            firmware: [f[2], f[3], f[4], f[5]],
            tls: f[1] & 4 != 0,
            ipv6_usbnic: f[1] & 8 != 0,
        })
    }

    /// The mailbox holds DSP0270's answer: user[16] then password[16],
    /// NUL-padded, valid while `credential_len` is nonzero.
    fn enrollment_account(&mut self, name: &mut [u8], secret: &mut [u8]) -> Option<(usize, usize)> {
        // SAFETY: as above.
        let len = unsafe { read_volatile(addr_of!((*mac()).credential_len)) } as usize;
        if len < 32 {
            return None;
        }
        let mut raw = [0u8; 32];
        // SAFETY: as above; 32 of the mailbox's 255 bytes are read.
        unsafe { read_bytes(addr_of!((*mac()).credential).cast(), &mut raw) };
        let (user, password) = raw.split_at(16);
        let n = user.iter().position(|&b| b == 0).unwrap_or(16);
        let s = password.iter().position(|&b| b == 0).unwrap_or(16);
        name.get_mut(..n)?.copy_from_slice(user.get(..n)?);
        secret.get_mut(..s)?.copy_from_slice(password.get(..s)?);
        raw.fill(0);
        Some((n, s))
    }

    fn retire_account(&mut self) {
        // SAFETY: as above.
        unsafe { write_volatile(addr_of_mut!((*mac()).credential_len), 0) };
    }
}

/// The debug UART as a `core::fmt` sink.
struct Uart;

impl core::fmt::Write for Uart {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for b in s.bytes() {
            // SAFETY: as above.
            unsafe { write_volatile(addr_of_mut!((*mac()).uart), b) };
        }
        Ok(())
    }
}

impl Audit for Board {
    fn record(&mut self, now: Instant, event: &AuditEvent) {
        // The one-line text, as a firmware log would carry it.
        let _ = writeln!(Uart, "{} {} {}", now.total_millis(), event.id(), event);
    }

    fn status(&mut self, status: &Status) {
        let _ = writeln!(Uart, "sessions {}", status.sessions);
    }
}

impl rand_core::RngCore for Board {
    fn next_u32(&mut self) -> u32 {
        // SAFETY: as above.
        unsafe { read_volatile(addr_of!((*mac()).trng)) }
    }

    fn next_u64(&mut self) -> u64 {
        rand_core::impls::next_u64_via_u32(self)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        rand_core::impls::fill_bytes_via_next(self, dest)
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

/// A hardware TRNG is a CSPRNG.
impl rand_core::CryptoRng for Board {}

/// `size_of` of every piece of the agent on this target, in the order of
/// `bmclink_core::sizes::SIZES`, for `cargo xtask size` (a section that is
/// not loaded: it costs no flash).
#[used]
#[link_section = ".bmclink_sizes"]
static SIZES: [u32; SIZES_LEN] = {
    let mut out = [0u32; SIZES_LEN];
    let mut i = 0;
    while i < SIZES_LEN {
        out[i] = bmclink_core::sizes::SIZES[i].bytes as u32;
        i += 1;
    }
    out
};

const SIZES_LEN: usize = bmclink_core::sizes::SIZES.len();

/// The reset handler: builds the agent over the static buffers and runs it.
#[no_mangle]
pub extern "C" fn _start() -> ! {
    let mut board = Board;
    // SAFETY: the reset handler runs once; nothing else borrows BUFFERS.
    let buffers = unsafe { (*addr_of_mut!(BUFFERS)).write(AgentBuffers::new()) };
    if let Ok(mut agent) = Agent::new(Config::default(), buffers, &mut board) {
        let _ = agent.run(&mut board);
    }
    #[allow(clippy::empty_loop)]
    loop {}
}

#[panic_handler]
fn panic(_: &PanicInfo) -> ! {
    #[allow(clippy::empty_loop)]
    loop {}
}
