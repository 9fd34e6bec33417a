//! The persistent records, in RAM: what a flash page would hold, lost at
//! reset (every boot enrolls afresh, as a rig that is re-flashed would).
//! A rig that must survive resets keeps the same layout in a flash sector
//! and writes it atomically (erase a spare page, write, switch).

use bmclink_core::platform::{Record, Store, StoreError};

/// Largest stored record (the identity certificate is the largest).
pub const RECORD_LEN: usize = 640;

/// One record slot: its length (0 = absent) and bytes.
#[derive(Clone, Copy)]
struct Slot {
    len: u16,
    bytes: [u8; RECORD_LEN],
}

/// The records, one slot each, in `.bss` (not on the stack).
static mut SLOTS: [Slot; Record::ALL.len()] = [Slot {
    len: 0,
    bytes: [0; RECORD_LEN],
}; Record::ALL.len()];

/// The records' one handle.
pub struct RamStore(());

impl RamStore {
    /// The handle to the records.
    ///
    /// # Safety
    /// Called once: the handle has the records to itself.
    pub const unsafe fn take() -> Self {
        RamStore(())
    }

    fn slot(&mut self, record: Record) -> Result<&mut Slot, StoreError> {
        let index = Record::ALL
            .iter()
            .position(|r| *r == record)
            .ok_or(StoreError::Io(record))?;
        // SAFETY: `take`'s contract: this is the only handle, and `&mut
        // self` makes this the only borrow.
        let slots = unsafe { &mut *core::ptr::addr_of_mut!(SLOTS) };
        slots.get_mut(index).ok_or(StoreError::Io(record))
    }
}

impl Store for RamStore {
    fn load(&mut self, record: Record, buf: &mut [u8]) -> Result<Option<usize>, StoreError> {
        let slot = self.slot(record)?;
        let len = usize::from(slot.len);
        if len == 0 {
            return Ok(None);
        }
        let dst = buf.get_mut(..len).ok_or(StoreError::TooLarge(record))?;
        dst.copy_from_slice(&slot.bytes[..len]);
        Ok(Some(len))
    }

    fn save(&mut self, record: Record, data: &[u8]) -> Result<(), StoreError> {
        let slot = self.slot(record)?;
        let dst = slot
            .bytes
            .get_mut(..data.len())
            .ok_or(StoreError::Io(record))?;
        dst.copy_from_slice(data);
        slot.len = data.len() as u16;
        Ok(())
    }

    fn erase(&mut self, record: Record) -> Result<(), StoreError> {
        self.slot(record)?.len = 0;
        Ok(())
    }
}
