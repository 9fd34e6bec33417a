//! BL5xxx: persistent records.

use crate::platform::Record;

audit_events! {
    /// Events of the record store.
    pub enum StoreEvent {
        /// A record could not be read or written.
        Failed { record: Record }
            = (5001, Error, "a persistent record could not be read or written; the file is named, fix or remove it")
            => ("persistent record {} could not be read or written; check or remove it", record.name()),
        /// A record exists but does not decode.
        Corrupt { record: Record }
            = (5002, Error, "a persistent record is corrupt; it is not reset silently (run `bmclink link reset` or reinstall)")
            => ("persistent record {} is corrupt and was not used; run `bmclink link reset` for the link record or `bmclink install` for the identity", record.name()),
    }
}
