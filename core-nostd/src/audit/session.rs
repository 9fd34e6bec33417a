//! BL2xxx: the channel session and its protocol.

use crate::proto::ProtoError;
use crate::types::{Channel, Family};

audit_events! {
    /// Events of the channel session.
    pub enum SessionEvent {
        /// A session began (P8: names the family and the channel).
        Started { family: Family, channel: Channel, firmware: [u8; 4] }
            = (2001, Notice, "session with the BMC started; names the IP family and the channel (plain or TLS version)")
            => ("connected to the BMC (firmware {}.{}.{}.{}) over {family} link-local, channel {channel}",
                firmware[0], firmware[1], firmware[2], firmware[3]),
        /// The session ended in an orderly way.
        Ended { family: Family, reason: u8 }
            = (2002, Info, "session ended with BYE")
            => ("session over {family} ended (BYE reason {reason})"),
        /// The BMC sent something the protocol does not allow.
        ProtocolError { error: ProtoError }
            = (2003, Error, "the BMC sent a malformed or unexpected message; the connection was closed and will be retried")
            => ("protocol error from the BMC: {error}; connection closed, will retry"),
        /// Heartbeats went unanswered.
        PeerDead { missed: u8 }
            = (2004, Warning, "the BMC stopped answering heartbeats; the connection was closed and will be retried")
            => ("the BMC missed {missed} heartbeats; connection closed, will retry"),
        /// The BMC refused the session.
        Rejected { code: u8 }
            = (2005, Error, "the BMC rejected the session (REJECT code given)")
            => ("the BMC rejected the session with code {code}"),
        /// The TCP connection failed or was reset.
        ConnectFailed { family: Family, port: u16 }
            = (2006, Warning, "TCP connection to the BMC failed or was reset; will retry with backoff")
            => ("TCP connection to the BMC over {family} port {port} failed; will retry"),
        /// No WELCOME (or ENROLLED) within the deadline after HELLO.
        WelcomeTimedOut { family: Family, port: u16 }
            = (2008, Warning, "the BMC did not answer HELLO with WELCOME within `welcome_timeout_secs`; the connection was closed and is retried with backoff")
            => ("no WELCOME from the BMC over {family} port {port} within the deadline after HELLO; closed, will retry (a BMC that is still starting, or one that does not speak this protocol)"),
        /// The BMC refused TCP on its TLS port while TLS is expected (the
        /// bootstrap facts, a pin, or TLS by default): said once per outage.
        TlsPortRefused { family: Family, port: u16 }
            = (2007, Warning, "the BMC refused connections on its TLS port while TLS is expected; bmclink does not fall back to the plain channel by itself and keeps retrying; if it persists: enable TLS for the host link on the BMC, or correct `tls_port` in the config (a BMC whose connections are all taken refuses too, until they time out)")
            => ("the BMC refused the connection to its TLS port {port} over {family}; TLS is expected, so no plain fallback; retrying (if it persists: enable TLS for the host link on the BMC, or correct `tls_port` in the config)"),
        /// The queue of OS events for the BMC overflowed (the same ID as the
        /// drop report sent to the BMC, `agent::events::DROPPED_ID`).
        OsEventsDropped { dropped: u32, total: u32 }
            = (2090, Warning, "the queue of OS events for the BMC was full; the oldest were dropped and their count is sent to the BMC")
            => ("{dropped} OS events for the BMC dropped: the queue was full ({total} dropped since start)"),
    }
}
