//! BL3xxx: the fallback policy.

audit_events! {
    /// Events of the fallback policy.
    pub enum PolicyEvent {
        /// Both families are disabled by configuration.
        NothingEnabled {}
            = (3001, Error, "both IPv4 and IPv6 are disabled in the configuration; nothing to try (enable one)")
            => ("IPv4 and IPv6 are both disabled in the configuration; nothing to try: set ipv4 = true or ipv6 = true"),
    }
}
