//! A no_std driver for the SMSC LAN9118 Ethernet controller (MAC and PHY in
//! one chip, 32-bit PIO FIFOs), as on the ARM MPS2 boards and modelled by
//! QEMU (`hw/net/lan9118.c`).
//!
//! Only what the agent needs: reset, the MAC address from the chip (its
//! EEPROM, or QEMU's `-nic ...,mac=`), receive with exact unicast match,
//! every multicast (the agent joins IPv6 solicited-node and all-nodes
//! groups; smoltcp filters) and broadcast, transmit one frame at a time,
//! link state from the PHY, and the "a frame is waiting" interrupt. Frames
//! cross the FIFOs as little-endian 32-bit words; the chip appends the FCS
//! on transmit and leaves it (4 bytes) at the end of every received frame.
//!
//! Register names and bits are the datasheet's (SMSC LAN9118, rev. 1.5).
//! A rig on another board replaces this file with its own MAC's driver: the
//! rest of the firmware only calls [`Lan9118::recv`], [`Lan9118::send`],
//! [`Lan9118::mac_address`], [`Lan9118::link_up`] and the interrupt pair
//! [`Lan9118::arm_rx_interrupt`] / [`Lan9118::on_interrupt`].

use core::ptr::{read_volatile, write_volatile};

/// Direct-address registers (byte offsets from the chip's base).
mod reg {
    pub const RX_DATA_FIFO: usize = 0x00;
    pub const TX_DATA_FIFO: usize = 0x20;
    pub const RX_STATUS_FIFO: usize = 0x40;
    pub const ID_REV: usize = 0x50;
    pub const IRQ_CFG: usize = 0x54;
    pub const INT_STS: usize = 0x58;
    pub const INT_EN: usize = 0x5c;
    pub const BYTE_TEST: usize = 0x64;
    pub const FIFO_INT: usize = 0x68;
    pub const RX_CFG: usize = 0x6c;
    pub const TX_CFG: usize = 0x70;
    pub const HW_CFG: usize = 0x74;
    pub const RX_FIFO_INF: usize = 0x7c;
    pub const TX_FIFO_INF: usize = 0x80;
    pub const PMT_CTRL: usize = 0x84;
    pub const MAC_CSR_CMD: usize = 0xa4;
    pub const MAC_CSR_DATA: usize = 0xa8;
}

/// MAC control and status registers, reached through `MAC_CSR_CMD`.
mod mac {
    pub const MAC_CR: u32 = 1;
    pub const ADDRH: u32 = 2;
    pub const ADDRL: u32 = 3;
    pub const MII_ACC: u32 = 6;
    pub const MII_DATA: u32 = 7;

    pub const CR_FDPX: u32 = 1 << 20;
    /// Pass all multicast.
    pub const CR_MCPAS: u32 = 1 << 19;
    pub const CR_TXEN: u32 = 1 << 3;
    pub const CR_RXEN: u32 = 1 << 2;
}

const BYTE_TEST_VALUE: u32 = 0x8765_4321;
const HW_CFG_SRST: u32 = 1;
const PMT_CTRL_READY: u32 = 1;
const CSR_BUSY: u32 = 1 << 31;
const CSR_READ: u32 = 1 << 30;
const TX_CFG_TX_ON: u32 = 1 << 1;
/// Let the TX status FIFO overrun: nothing reads it.
const TX_CFG_TXSAO: u32 = 1 << 2;
/// IRQ pin enabled, active high, push-pull.
const IRQ_CFG_EN_HIGH_PUSH_PULL: u32 = (1 << 8) | (1 << 4) | 1;
/// RX status FIFO level interrupt: a frame is waiting.
const INT_RSFL: u32 = 1 << 3;
const TX_CMD_A_FIRST: u32 = 1 << 13;
const TX_CMD_A_LAST: u32 = 1 << 12;
/// RX status: error summary (CRC, runt, too long, collision).
const RX_STS_ES: u32 = 1 << 15;
const FCS_LEN: usize = 4;
/// The PHY's MII address on the LAN9118 (internal PHY).
const PHY_ADDR: u32 = 1;
const PHY_BSR: u32 = 1;
const PHY_BSR_LINK: u32 = 1 << 2;
/// Polls of a busy bit before giving up (the chip clears them in µs).
const SPIN: u32 = 100_000;

/// Why the chip did not come up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, defmt::Format)]
pub enum InitError {
    /// `BYTE_TEST` did not read 0x87654321: no chip, or wrong bus width.
    NoChip(u32),
    /// Soft reset or the ready bit did not complete.
    Timeout,
}

/// One LAN9118 at a fixed base address.
pub struct Lan9118 {
    base: usize,
}

impl Lan9118 {
    /// The chip at `base`.
    ///
    /// # Safety
    /// `base` is the LAN9118's register block and nothing else drives it.
    pub const unsafe fn new(base: usize) -> Self {
        Lan9118 { base }
    }

    fn read(&self, offset: usize) -> u32 {
        // SAFETY: `new`'s contract: a register of this chip.
        unsafe { read_volatile((self.base + offset) as *const u32) }
    }

    fn write(&mut self, offset: usize, value: u32) {
        // SAFETY: as in `read`.
        unsafe { write_volatile((self.base + offset) as *mut u32, value) }
    }

    fn spin_until(&self, mut done: impl FnMut(&Self) -> bool) -> Result<(), InitError> {
        for _ in 0..SPIN {
            if done(self) {
                return Ok(());
            }
        }
        Err(InitError::Timeout)
    }

    fn mac_read(&mut self, index: u32) -> u32 {
        self.write(reg::MAC_CSR_CMD, CSR_BUSY | CSR_READ | index);
        let _ = self.spin_until(|c| c.read(reg::MAC_CSR_CMD) & CSR_BUSY == 0);
        self.read(reg::MAC_CSR_DATA)
    }

    fn mac_write(&mut self, index: u32, value: u32) {
        self.write(reg::MAC_CSR_DATA, value);
        self.write(reg::MAC_CSR_CMD, CSR_BUSY | index);
        let _ = self.spin_until(|c| c.read(reg::MAC_CSR_CMD) & CSR_BUSY == 0);
    }

    fn phy_read(&mut self, index: u32) -> u32 {
        // MII_ACC: PHY address, register, write bit 1 clear = read, busy bit 0.
        self.mac_write(mac::MII_ACC, (PHY_ADDR << 11) | (index << 6) | 1);
        for _ in 0..SPIN {
            if self.mac_read(mac::MII_ACC) & 1 == 0 {
                break;
            }
        }
        self.mac_read(mac::MII_DATA) & 0xffff
    }

    /// Resets the chip and starts the MAC: TX on, RX on with unicast to us,
    /// all multicast and broadcast. The interrupt pin is enabled, the
    /// frame-waiting source masked until [`Lan9118::arm_rx_interrupt`].
    pub fn init(&mut self) -> Result<u32, InitError> {
        let test = self.read(reg::BYTE_TEST);
        if test != BYTE_TEST_VALUE {
            return Err(InitError::NoChip(test));
        }
        self.write(reg::HW_CFG, HW_CFG_SRST);
        self.spin_until(|c| c.read(reg::HW_CFG) & HW_CFG_SRST == 0)?;
        self.spin_until(|c| c.read(reg::PMT_CTRL) & PMT_CTRL_READY != 0)?;
        self.write(reg::INT_EN, 0);
        self.write(reg::INT_STS, u32::MAX);
        // Interrupt as soon as one RX status is waiting (level 0).
        self.write(reg::FIFO_INT, 0x4800_0000);
        self.write(reg::RX_CFG, 0);
        self.write(reg::TX_CFG, TX_CFG_TX_ON | TX_CFG_TXSAO);
        self.mac_write(
            mac::MAC_CR,
            mac::CR_FDPX | mac::CR_MCPAS | mac::CR_TXEN | mac::CR_RXEN,
        );
        self.write(reg::IRQ_CFG, IRQ_CFG_EN_HIGH_PUSH_PULL);
        Ok(self.read(reg::ID_REV))
    }

    /// The hardware address the chip filters on (loaded from its EEPROM).
    pub fn mac_address(&mut self) -> [u8; 6] {
        let lo = self.mac_read(mac::ADDRL).to_le_bytes();
        let hi = self.mac_read(mac::ADDRH).to_le_bytes();
        [lo[0], lo[1], lo[2], lo[3], hi[0], hi[1]]
    }

    /// Link status from the PHY's basic status register.
    pub fn link_up(&mut self) -> bool {
        self.phy_read(PHY_BSR) & PHY_BSR_LINK != 0
    }

    /// Whether a received frame is waiting in the RX FIFO.
    pub fn rx_waiting(&self) -> bool {
        (self.read(reg::RX_FIFO_INF) >> 16) & 0xff != 0
    }

    /// Unmasks the frame-waiting interrupt (before sleeping).
    pub fn arm_rx_interrupt(&mut self) {
        self.write(reg::INT_EN, INT_RSFL);
    }

    /// From the interrupt handler: masks the source again, so the level
    /// interrupt does not fire until the main loop re-arms it.
    pub fn on_interrupt(&mut self) {
        self.write(reg::INT_EN, 0);
        self.write(reg::INT_STS, INT_RSFL);
    }

    /// Takes one frame (FCS stripped) into `buf`; `None` when none waits.
    /// Frames with an error status or longer than `buf` are read out of
    /// the FIFO and dropped.
    pub fn recv(&mut self, buf: &mut [u8]) -> Option<usize> {
        while self.rx_waiting() {
            let status = self.read(reg::RX_STATUS_FIFO);
            let len = ((status >> 16) & 0x3fff) as usize;
            let words = len.div_ceil(4);
            let keep = len
                .checked_sub(FCS_LEN)
                .filter(|n| status & RX_STS_ES == 0 && *n >= 14 && *n <= buf.len());
            let mut at = 0;
            for _ in 0..words {
                let word = self.read(reg::RX_DATA_FIFO).to_le_bytes();
                if let Some(n) = keep {
                    for b in word {
                        if let Some(slot) = buf.get_mut(at).filter(|_| at < n) {
                            *slot = b;
                        }
                        at += 1;
                    }
                }
            }
            if keep.is_some() {
                return keep;
            }
        }
        None
    }

    /// Queues one frame (no FCS); dropped when the TX FIFO lacks room, as
    /// a wire drops frames.
    pub fn send(&mut self, frame: &[u8]) -> bool {
        let len = frame.len();
        if !(14..=2047).contains(&len) {
            return false;
        }
        let free = (self.read(reg::TX_FIFO_INF) & 0xffff) as usize;
        if free < len + 8 {
            return false;
        }
        self.write(
            reg::TX_DATA_FIFO,
            TX_CMD_A_FIRST | TX_CMD_A_LAST | len as u32,
        );
        // Command B: a tag (the length) and the packet length.
        self.write(reg::TX_DATA_FIFO, ((len as u32) << 16) | len as u32);
        let mut words = frame.chunks_exact(4);
        for w in &mut words {
            self.write(
                reg::TX_DATA_FIFO,
                u32::from_le_bytes([w[0], w[1], w[2], w[3]]),
            );
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 4];
            last[..rest.len()].copy_from_slice(rest);
            self.write(reg::TX_DATA_FIFO, u32::from_le_bytes(last));
        }
        true
    }
}
