//! The pinning verifier: the server is the BMC whose certificate we pinned,
//! and it proves it by signing the handshake transcript with that key.
//!
//! There is no CA and no name check: the SHA-256 fingerprint of the whole
//! certificate is compared with the pin, then the certificate's P-256 key
//! must verify the server's CertificateVerify (RFC 8446 §4.4.3). The BMC
//! certificate's validity period is not checked: the pin, bound at
//! enrollment over the trusted bootstrap channel, is the trust.
//!
//! embedded-tls calls `verify_certificate` and `verify_signature` only when
//! those messages arrive, so a server that skips them is never asked to
//! prove anything: stock embedded-tls 0.19 completes such a handshake (the
//! `mitm` tests show it). The verifier therefore records its progress; the
//! provider neither presents the client certificate nor signs unless it
//! reached [`Progress::Verified`], and `PinnedTls::open` fails otherwise.

use embedded_tls::alert::{AlertDescription, AlertLevel};
use embedded_tls::{
    Aes128GcmSha256, CertificateEntryRef, CertificateRef, CertificateVerifyRef, SignatureScheme,
    TlsVerifier,
};
use p256::ecdsa::VerifyingKey;
use sha2::{Digest, Sha256};

use super::backend::P256Backend;
use super::TlsError;
use crate::cert;

/// The context string of a server CertificateVerify (RFC 8446 §4.4.3).
const SERVER_CONTEXT: &[u8; 34] = b"TLS 1.3, server CertificateVerify\x00";

/// How far the server got in proving its identity.
#[derive(Debug, Clone)]
pub enum Progress {
    /// Nothing seen yet.
    AwaitingCertificate,
    /// The pinned certificate arrived; its signature over the transcript is due.
    CertificateSeen {
        /// The pinned certificate's key.
        key: VerifyingKey,
        /// Transcript hash through the Certificate message.
        transcript: [u8; 32],
    },
    /// The server proved the pinned identity.
    Verified,
    /// The server failed; the handshake was aborted for this reason.
    Failed(TlsError),
}

/// What the server's certificate must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ServerAuth {
    /// Exactly the certificate whose SHA-256 is this.
    Pinned([u8; 32]),
    /// First contact of an enrollment (DESIGN §5a) with no fingerprint to
    /// expect: any P-256 certificate whose key signs the transcript. Nothing
    /// is trusted yet; the channel only carries HELLO and ENROLL until the
    /// BMC's ENROLLED proof, bound to this certificate's fingerprint
    /// ([`PinnedVerifier::presented`]), checks out.
    Enrolling,
}

/// An embedded-tls `TlsVerifier` that accepts exactly one certificate, by
/// its SHA-256 fingerprint, or (for enrollment) any certificate whose key
/// proves itself, recording its fingerprint. It can only be built with one
/// of the two.
#[derive(Debug, Clone)]
pub struct PinnedVerifier {
    auth: ServerAuth,
    presented: Option<[u8; 32]>,
    progress: Progress,
    backend: &'static dyn P256Backend,
}

impl core::fmt::Debug for dyn P256Backend {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

impl PinnedVerifier {
    /// A verifier accepting only the certificate whose SHA-256 is `pin`.
    pub fn new(pin: [u8; 32]) -> Self {
        Self::with(ServerAuth::Pinned(pin), &super::backend::RUST_CRYPTO)
    }

    /// A verifier for `auth`, checking the signature with `backend`.
    pub fn with(auth: ServerAuth, backend: &'static dyn P256Backend) -> Self {
        PinnedVerifier {
            auth,
            presented: None,
            progress: Progress::AwaitingCertificate,
            backend,
        }
    }

    /// The pinned fingerprint (`None` for an enrolling verifier).
    pub fn pin(&self) -> Option<&[u8; 32]> {
        match &self.auth {
            ServerAuth::Pinned(pin) => Some(pin),
            ServerAuth::Enrolling => None,
        }
    }

    /// SHA-256 of the certificate the server presented, once it arrived.
    pub fn presented(&self) -> Option<[u8; 32]> {
        self.presented
    }

    /// How far the server got.
    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// Whether the server proved the pinned identity.
    pub fn is_verified(&self) -> bool {
        matches!(self.progress, Progress::Verified)
    }

    /// Records a failure and returns the alert embedded-tls sends the server.
    fn fail(&mut self, why: TlsError, alert: AlertDescription) -> embedded_tls::TlsError {
        warn!("TLS server authentication failed");
        self.progress = Progress::Failed(why);
        embedded_tls::TlsError::AbortHandshake(AlertLevel::Fatal, alert)
    }
}

impl TlsVerifier<Aes128GcmSha256> for PinnedVerifier {
    /// Names are not checked: the pin identifies the BMC.
    fn set_hostname_verification(&mut self, _hostname: &str) -> Result<(), embedded_tls::TlsError> {
        Ok(())
    }

    fn verify_certificate(
        &mut self,
        transcript: &Sha256,
        cert: CertificateRef,
    ) -> Result<(), embedded_tls::TlsError> {
        if !matches!(self.progress, Progress::AwaitingCertificate) {
            return Err(self.fail(
                TlsError::Protocol {
                    what: "second server Certificate",
                },
                AlertDescription::UnexpectedMessage,
            ));
        }
        let der = match cert.entries.first() {
            Some(CertificateEntryRef::X509(der)) => *der,
            _ => {
                return Err(self.fail(
                    TlsError::NoServerCertificate,
                    AlertDescription::CertificateRequired,
                ))
            }
        };
        let presented = cert::fingerprint(der);
        self.presented = Some(presented);
        if let ServerAuth::Pinned(pin) = self.auth {
            if presented != pin {
                let why = TlsError::PinMismatch {
                    pinned: pin,
                    presented,
                };
                return Err(self.fail(why, AlertDescription::BadCertificate));
            }
        }
        let key = match cert::parse(der) {
            Ok(view) => view.public_key,
            Err(e) => {
                return Err(self.fail(
                    TlsError::ServerCertificate(e),
                    AlertDescription::UnsupportedCertificate,
                ))
            }
        };
        self.progress = Progress::CertificateSeen {
            key,
            transcript: transcript.clone().finalize().into(),
        };
        Ok(())
    }

    fn verify_signature(
        &mut self,
        verify: CertificateVerifyRef,
    ) -> Result<(), embedded_tls::TlsError> {
        let (key, transcript) = match &self.progress {
            Progress::CertificateSeen { key, transcript } => (*key, *transcript),
            _ => {
                return Err(self.fail(
                    TlsError::ServerNotAuthenticated,
                    AlertDescription::UnexpectedMessage,
                ))
            }
        };
        let scheme = verify.signature_scheme.as_u16();
        if verify.signature_scheme != SignatureScheme::EcdsaSecp256r1Sha256 {
            return Err(self.fail(
                TlsError::BadSignature { scheme },
                AlertDescription::IllegalParameter,
            ));
        }
        // 64 spaces, the context string, the transcript hash (RFC 8446 §4.4.3).
        let mut signed = [0x20u8; 64 + 34 + 32];
        signed[64..98].copy_from_slice(SERVER_CONTEXT);
        signed[98..].copy_from_slice(&transcript);
        let public = super::backend::encode_point(&key.into());
        if !self.backend.verify(&public, &signed, verify.signature) {
            return Err(self.fail(
                TlsError::BadSignature { scheme },
                AlertDescription::DecryptError,
            ));
        }
        self.progress = Progress::Verified;
        Ok(())
    }
}
