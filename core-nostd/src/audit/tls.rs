//! BL4xxx: TLS, certificates and enrollment.

audit_events! {
    /// Events of the TLS channel and the identity.
    pub enum TlsEvent {
        /// The legacy plain channel is in use (T5).
        PlainChannel {}
            = (4001, Warning, "the BMC firmware has no TLS on the USBNIC; the legacy plain channel is in use")
            => ("the BMC firmware offers no TLS on the USBNIC; using the legacy plain channel"),
    }
}
