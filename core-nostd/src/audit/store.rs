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
        /// The RFC 7217 secret exists but is not 256 bits: a new one would
        /// move the host's stable IPv6 address, so it is not made silently.
        SecretUnusable { record: Record }
            = (5003, Error, "the stable IPv6 secret is not 256 bits; it is not replaced silently: IPv6 stays off until the file is removed")
            => ("persistent record {} is not a 256-bit secret and was not replaced; IPv6 stays off: remove the file (`bmclink install --repair` does) and restart the agent to make a new one (the host's stable IPv6 link-local address then changes)", record.name()),
        /// The hosts file's bmclink block is malformed (a BEGIN line
        /// without its END, or two BEGINs): the file is left unchanged.
        HostsBlockMalformed { line: u32 }
            = (5004, Error, "the hosts file's bmclink block has a `# BEGIN bmclink` line without its `# END bmclink` (or two BEGINs); the file is left unchanged until the marker lines are fixed")
            => ("the hosts file's bmclink block is malformed at line {line}; the file was left unchanged and idrac.local is not mapped: remove the stray `# BEGIN bmclink` line or add `# END bmclink` where the block ends"),
    }
}
