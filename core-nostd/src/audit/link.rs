//! BL1xxx: link-local addressing (RFC 5227 ACD, RFC 4862 DAD).

use smoltcp::wire::Ipv4Address;

audit_events! {
    /// Events of the address claims.
    pub enum LinkEvent {
        /// An IPv4 link-local address is in use on the USBNIC.
        Ipv4Bound { addr: Ipv4Address }
            = (1001, Info, "IPv4 link-local address in use on the USBNIC")
            => ("using IPv4 link-local address {addr} on the USBNIC"),
    }
}
