//! BL4xxx: TLS, certificates and enrollment.

use crate::cert::ShortFingerprint;
use crate::tls::TlsError;

audit_events! {
    /// Events of the TLS channel and the identity.
    pub enum TlsEvent {
        /// The legacy plain channel is in use (T5).
        PlainChannel {}
            = (4001, Warning, "the BMC firmware has no TLS on the USBNIC; the legacy plain channel is in use")
            => ("the BMC firmware offers no TLS on the USBNIC; using the legacy plain channel"),
        /// The server presented a certificate other than the pinned one.
        PinMismatch { pinned: ShortFingerprint, presented: ShortFingerprint }
            = (4002, Error, "the BMC presented a certificate that is not the pinned one (man in the middle?); connection refused, no plain fallback")
            => ("the BMC presented certificate {presented}, not the pinned {pinned}: possible man in the middle; connection refused, no plain fallback (if the BMC was reset, run `bmclink install`)"),
        /// The TLS 1.3 handshake failed, or the peer does not speak TLS 1.3 (T4).
        HandshakeFailed { error: TlsError }
            = (4003, Error, "the TLS 1.3 handshake with the BMC failed or the BMC does not speak TLS 1.3; no plain fallback")
            => ("TLS 1.3 handshake with the BMC failed: {error}; communication fails, no plain fallback"),
        /// The client certificate has expired: no connection is attempted (T3).
        ClientCertExpired { not_after: u64 }
            = (4004, Error, "the client certificate has expired; no connection is attempted (fix: `bmclink cert renew`)")
            => ("the client certificate expired (not after {not_after}, Unix time); no connection attempted: run `bmclink cert renew`"),
        /// The client certificate expires soon (B4).
        ClientCertExpiring { days_left: u64 }
            = (4005, Warning, "the client certificate expires within 30 days (fix: `bmclink cert renew`)")
            => ("the client certificate expires in {days_left} days: run `bmclink cert renew`"),
        /// Enrollment succeeded: both sides pin each other.
        Enrolled { bmc: ShortFingerprint, client: ShortFingerprint }
            = (4006, Notice, "enrolled with the BMC; the BMC certificate and the client certificate are now pinned")
            => ("enrolled with the BMC: pinned BMC certificate {bmc}, client certificate {client} bound by the BMC"),
        /// The BMC refused enrollment.
        EnrollmentRejected { code: u8 }
            = (4007, Error, "the BMC rejected enrollment (REJECT code given); run `bmclink install` with a fresh one-time credential")
            => ("the BMC rejected enrollment with code {code}; run `bmclink install` to enroll with a fresh one-time credential"),
        /// A downgrade to the plain channel was refused because a pin exists (B1).
        DowngradeRefused {}
            = (4008, Error, "the BMC no longer offers TLS but its certificate is pinned; the plain channel is refused (downgrade protection)")
            => ("the BMC offers no TLS but its certificate is pinned: refusing the plain channel (downgrade protection); if the BMC firmware was really downgraded, run `bmclink install`"),
        /// The BMC refused the client certificate after the handshake.
        ClientCertRefused { client: ShortFingerprint }
            = (4009, Error, "the BMC refused the client certificate (not enrolled or replaced); run `bmclink install --repair` to enroll again")
            => ("the BMC refused client certificate {client}; run `bmclink install --repair` to enroll again"),
        /// The client certificate was renewed without reinstalling (B4).
        Renewed { not_after: u64 }
            = (4010, Notice, "the client certificate was renewed")
            => ("the client certificate was renewed; valid until {not_after} (Unix time)"),
        /// After the handshake the BMC's stream carried a record TLS 1.3
        /// forbids there: a plaintext record (which needs no key, so anyone
        /// on the path can inject it) or a protected one without content or
        /// with a handshake message. Not the BMC refusing us: the pin and the
        /// identity stay, nothing needs repairing.
        ForbiddenRecord {}
            = (4020, Error, "the TLS connection to the BMC carried a record TLS 1.3 forbids after the handshake (an on-path attacker injecting into it, or a broken BMC); connection closed, pin kept")
            => ("the TLS connection to the BMC carried a record TLS 1.3 forbids after the handshake (plaintext, or empty): an on-path attacker injecting into the connection, or a broken BMC; connection closed, the pinned certificate is kept, nothing to repair"),
    }
}

impl TlsEvent {
    /// The event for a failed TLS handshake: a pin mismatch is a possible
    /// man in the middle (BL4002), anything else a handshake failure (BL4003).
    pub fn handshake_failed(error: TlsError) -> TlsEvent {
        match error {
            TlsError::PinMismatch { pinned, presented } => TlsEvent::PinMismatch {
                pinned: ShortFingerprint::of(&pinned),
                presented: ShortFingerprint::of(&presented),
            },
            error => TlsEvent::HandshakeFailed { error },
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::format;

    use super::*;

    #[test]
    fn failure_events_name_the_cause_and_the_fix() {
        let mitm = TlsEvent::handshake_failed(TlsError::PinMismatch {
            pinned: [0x11; 32],
            presented: [0x22; 32],
        });
        assert_eq!(mitm.id().0, 4002);
        let text = format!("{mitm}");
        assert!(text.contains("222222222222") && text.contains("111111111111"));
        assert!(text.contains("man in the middle") && text.contains("no plain fallback"));

        let t4 = TlsEvent::handshake_failed(TlsError::Version {
            what: "protocol_version alert",
        });
        assert_eq!(t4.id().0, 4003);
        let text = format!("{t4}");
        assert!(
            text.contains("TLS 1.3") && text.contains("no plain fallback"),
            "{text}"
        );

        let injected = TlsEvent::ForbiddenRecord {};
        let text = format!("{injected}");
        assert!(text.contains("on-path attacker") && text.contains("broken BMC"));
        assert!(text.contains("pinned certificate is kept") && !text.contains("install"));

        let b1 = TlsEvent::DowngradeRefused {};
        assert!(format!("{b1}").contains("downgrade protection"));
        assert_eq!(b1.severity(), crate::audit::Severity::Error);
    }
}
