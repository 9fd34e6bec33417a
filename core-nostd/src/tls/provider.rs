//! The embedded-tls `CryptoProvider`: the pinning verifier, the P-256 client
//! identity and the RNG, for TLS_AES_128_GCM_SHA256 only.

use embedded_tls::{Aes128GcmSha256, Certificate, CryptoProvider, SignatureScheme, TlsVerifier};
use p256::ecdsa::{DerSignature, SigningKey};
use p256::SecretKey;
use rand_core::CryptoRngCore;

use super::backend::{encode_point, BackendSigner, P256Backend};
use super::verifier::{PinnedVerifier, ServerAuth};
use super::TlsError;
use crate::cert::MAX_CERT_LEN;

/// The host's TLS client identity: its P-256 key and self-signed
/// certificate, owned (a copy of at most [`MAX_CERT_LEN`] bytes), so a
/// handshake kept in a caller's state borrows nothing but its buffers.
#[derive(Clone)]
pub struct Identity {
    key: SigningKey,
    cert: heapless::Vec<u8, MAX_CERT_LEN>,
}

impl Identity {
    /// Pairs a key with its certificate's DER (as made by
    /// [`crate::cert::generate`]). The pairing is the caller's to keep right:
    /// a mismatched pair is refused by the BMC, not by us. A certificate
    /// longer than [`MAX_CERT_LEN`] (which would not fit our handshake
    /// record) is refused here.
    pub fn new(key: SigningKey, cert: &[u8]) -> Result<Self, TlsError> {
        let cert = heapless::Vec::from_slice(cert).map_err(|_| TlsError::Protocol {
            what: "client certificate longer than MAX_CERT_LEN",
        })?;
        Ok(Identity { key, cert })
    }

    /// The certificate's DER.
    pub fn cert(&self) -> &[u8] {
        &self.cert
    }
}

impl core::fmt::Debug for Identity {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never print the key.
        f.debug_struct("Identity")
            .field("cert_len", &self.cert.len())
            .finish_non_exhaustive()
    }
}

/// A `CryptoProvider` whose verifier is always the [`PinnedVerifier`]: there
/// is no constructor without a pin, and [`CryptoProvider::verifier`] never
/// fails, so embedded-tls's "no verifier, skip verification" path cannot be
/// reached. The client certificate is presented, and the CertificateVerify
/// signed, only after the server proved the pinned identity.
///
/// Crate-private: [`super::PinnedTls::open`] is the one way in, which also
/// requires that the server asked for our certificate. (Published
/// embedded-tls 0.19 completed a handshake with a server that skipped
/// Certificate and CertificateVerify without calling any verifier; the
/// in-tree copy refuses it, PATCHES.md #6.)
pub(crate) struct PinnedProvider<R> {
    verifier: PinnedVerifier,
    identity: Identity,
    rng: R,
    cert_requested: bool,
    backend: &'static dyn P256Backend,
    /// The ECDHE secret between ClientHello and ServerHello.
    ephemeral: Option<[u8; 32]>,
}

impl<R> Drop for PinnedProvider<R> {
    fn drop(&mut self) {
        if let Some(secret) = self.ephemeral.as_mut() {
            secret.fill(0);
        }
    }
}

impl<R: CryptoRngCore> PinnedProvider<R> {
    /// A provider pinning the server certificate whose SHA-256 is `pin`.
    #[cfg(test)]
    pub(crate) fn new(pin: [u8; 32], identity: Identity, rng: R) -> Self {
        Self::with(
            ServerAuth::Pinned(pin),
            identity,
            rng,
            &super::backend::RUST_CRYPTO,
        )
    }

    /// A provider authenticating the server as `auth` says, doing its P-256
    /// work with `backend`.
    pub(crate) fn with(
        auth: ServerAuth,
        identity: Identity,
        rng: R,
        backend: &'static dyn P256Backend,
    ) -> Self {
        PinnedProvider {
            verifier: PinnedVerifier::with(auth, backend),
            identity,
            rng,
            cert_requested: false,
            backend,
            ephemeral: None,
        }
    }

    /// The verifier and what it saw.
    pub(crate) fn pinned_verifier(&self) -> &PinnedVerifier {
        &self.verifier
    }

    /// Whether the server asked for the client certificate.
    pub(crate) fn cert_requested(&self) -> bool {
        self.cert_requested
    }
}

impl<R: CryptoRngCore> CryptoProvider for PinnedProvider<R> {
    type CipherSuite = Aes128GcmSha256;
    type Signature = DerSignature;

    fn rng(&mut self) -> impl CryptoRngCore {
        &mut self.rng
    }

    fn verifier(
        &mut self,
    ) -> Result<&mut impl TlsVerifier<Self::CipherSuite>, embedded_tls::TlsError> {
        Ok(&mut self.verifier)
    }

    fn signer(
        &mut self,
    ) -> Result<
        (
            impl p256::ecdsa::signature::SignerMut<Self::Signature>,
            SignatureScheme,
        ),
        embedded_tls::TlsError,
    > {
        if !self.verifier.is_verified() {
            return Err(embedded_tls::TlsError::InvalidCertificate);
        }
        Ok((
            BackendSigner {
                backend: self.backend,
                secret: self.identity.key.to_bytes().into(),
                public: encode_point(&self.identity.key.verifying_key().into()),
            },
            SignatureScheme::EcdsaSecp256r1Sha256,
        ))
    }

    fn ecdhe_p256_public(&mut self) -> Option<[u8; 65]> {
        // A uniformly random scalar in [1, n): redraw the (2^-32 rare)
        // out-of-range values.
        for _ in 0..64 {
            let mut secret = [0u8; 32];
            self.rng.fill_bytes(&mut secret);
            if SecretKey::from_bytes(&secret.into()).is_ok() {
                let public = self.backend.public_key(&secret);
                self.ephemeral = Some(secret);
                secret.fill(0);
                return public;
            }
        }
        None
    }

    fn ecdhe_p256_shared(&mut self, peer: &[u8]) -> Result<[u8; 32], embedded_tls::TlsError> {
        let mut secret = self
            .ephemeral
            .take()
            .ok_or(embedded_tls::TlsError::InvalidHandshake)?;
        let shared = self.backend.ecdh(&secret, peer);
        secret.fill(0);
        shared.ok_or(embedded_tls::TlsError::InvalidKeyShare)
    }

    fn client_cert(&mut self) -> Option<Certificate<impl AsRef<[u8]>>> {
        self.cert_requested = true;
        // An empty Certificate to a server that did not prove itself: our
        // certificate is not shown to a stranger. (The patched embedded-tls
        // never gets here without the server's CertificateVerify; this stays
        // as the provider's own rule.)
        if self.verifier.is_verified() {
            Some(Certificate::X509(self.identity.cert()))
        } else {
            None
        }
    }
}
