//! BL4xxx: TLS, certificates and enrollment.

use crate::cert::{Fingerprint, ShortFingerprint};
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
        /// The BMC refused enrollment (REJECT; bad-credential retires the secret).
        EnrollmentRejected { code: u8 }
            = (4007, Error, "the BMC rejected enrollment (REJECT code given; 4 bad-credential: wrong or used secret, or a man in the middle on first contact); create a new one-time account and run `bmclink install --account NAME --secret-file FILE`")
            => ("the BMC rejected enrollment with code {code} (4 is bad-credential: the secret is wrong or used, or a man in the middle answered first contact); create a new one-time account on the BMC and run `bmclink install --account NAME --secret-file FILE`"),
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
        /// Not enrolled and no one-time account to enroll with.
        NoAccount {}
            = (4011, Warning, "not enrolled and no one-time enrollment account; create one on the BMC and run `bmclink install --account NAME --secret-file FILE`")
            => ("this host is not enrolled with the BMC and has no one-time enrollment account: create one on the BMC and run `bmclink install --account NAME --secret-file FILE` (and, from the BMC's own UI, `--bmc-fingerprint HEX`)"),
        /// ENROLLED was wrong or missing: the peer does not know the secret.
        EnrollmentUnproven { bmc: ShortFingerprint }
            = (4012, Error, "the BMC did not prove the one-time secret (bad or missing ENROLLED): suspected man in the middle; nothing pinned, the secret is kept")
            => ("certificate {bmc} answered enrollment without a valid ENROLLED proof: suspected man in the middle on the USBNIC; nothing pinned, the secret is kept; check for a third host on the link"),
        /// The connection ended during enrollment before ENROLLED.
        EnrollmentInterrupted {}
            = (4013, Warning, "the connection ended during enrollment before the BMC's proof; the one-time secret is kept and the next attempt enrolls again")
            => ("the connection ended during enrollment before the BMC's ENROLLED proof; the one-time secret is kept, the next attempt enrolls again"),
        /// The administrator's and the bootstrap channel's fingerprints differ.
        TrustSourcesDisagree {}
            = (4014, Error, "the administrator's BMC fingerprint and the bootstrap channel's differ; no connection (fix: `bmclink install --bmc-fingerprint` with the BMC's current one)")
            => ("the BMC fingerprint given with `bmclink install --bmc-fingerprint` differs from the one the bootstrap channel publishes: no connection; check the BMC's UI and run `bmclink install --bmc-fingerprint HEX` again"),
        /// After enrollment the BMC disabled host bootstrapping (DSP0270).
        BootstrapDisabled {}
            = (4017, Notice, "after enrollment the BMC disabled host bootstrapping (DSP0270); no further bootstrap account is handed out")
            => ("enrolled: the BMC disabled host bootstrapping (DSP0270 Get Bootstrap Account Credentials with [0x52, 0x00]); it hands out no further bootstrap accounts"),
        /// After enrollment the BMC did not disable host bootstrapping.
        BootstrapNotDisabled {}
            = (4018, Warning, "after enrollment the BMC did not disable host bootstrapping (no answer, an error, or not supported); disable it on the BMC")
            => ("enrolled, but the BMC did not disable host bootstrapping (DSP0270 [0x52, 0x00] failed or is not supported): any host process with the IPMI device can still get bootstrap accounts; disable host bootstrapping in the BMC's settings"),
        /// The TLS handshake did not finish within its overall deadline.
        HandshakeTimedOut { secs: u64 }
            = (4016, Error, "the TLS handshake with the BMC did not finish within its deadline (`handshake_timeout_secs`); the connection is dropped and the fallback goes on")
            => ("the TLS handshake with the BMC did not finish within {secs} s: connection dropped, trying the next family or again later (a stalled or hostile peer on the TLS port?)"),
        /// No trust source: the certificate the BMC presents, for the administrator.
        UntrustedBmc { presented: Fingerprint }
            = (4015, Warning, "no trust source for the BMC's certificate; the fingerprint it presents is named, no session runs")
            => ("the BMC's TLS port presents certificate {presented}, which nothing here vouches for: no session; if the BMC's own UI shows this fingerprint, run `bmclink install --bmc-fingerprint {presented}`"),
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

    #[test]
    fn client_certificate_expiry_events_name_the_renewal() {
        let expired = TlsEvent::ClientCertExpired { not_after: 1 };
        assert_eq!(expired.id().0, 4004);
        assert!(format!("{expired}").contains("bmclink cert renew"));
        assert_eq!(TlsEvent::ClientCertExpiring { days_left: 3 }.id().0, 4005);
    }
}
