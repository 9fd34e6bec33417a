//! The embedded-tls `CryptoProvider`: the pinning verifier, the P-256 client
//! identity and the RNG, for TLS_AES_128_GCM_SHA256 only.

use embedded_tls::{Aes128GcmSha256, Certificate, CryptoProvider, SignatureScheme, TlsVerifier};
use p256::ecdsa::{DerSignature, SigningKey};
use rand_core::CryptoRngCore;

use super::verifier::{PinnedVerifier, ServerAuth};

/// The host's TLS client identity: its P-256 key and self-signed certificate.
#[derive(Clone)]
pub struct Identity<'a> {
    key: SigningKey,
    cert: &'a [u8],
}

impl<'a> Identity<'a> {
    /// Pairs a key with its certificate's DER (as made by
    /// [`crate::cert::generate`]). The pairing is the caller's to keep right:
    /// a mismatched pair is refused by the BMC, not by us.
    pub fn new(key: SigningKey, cert: &'a [u8]) -> Self {
        Identity { key, cert }
    }

    /// The certificate's DER.
    pub fn cert(&self) -> &'a [u8] {
        self.cert
    }
}

impl core::fmt::Debug for Identity<'_> {
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
/// Crate-private on purpose: embedded-tls alone completes a handshake with a
/// server that skips Certificate and CertificateVerify without calling any
/// verifier, so the provider is only safe behind [`super::PinnedTls::open`],
/// which checks the verifier's progress afterwards.
pub(crate) struct PinnedProvider<'a, R> {
    verifier: PinnedVerifier,
    identity: Identity<'a>,
    rng: &'a mut R,
    cert_requested: bool,
}

impl<'a, R: CryptoRngCore> PinnedProvider<'a, R> {
    /// A provider pinning the server certificate whose SHA-256 is `pin`.
    #[cfg(test)]
    pub(crate) fn new(pin: [u8; 32], identity: Identity<'a>, rng: &'a mut R) -> Self {
        Self::with(ServerAuth::Pinned(pin), identity, rng)
    }

    /// A provider authenticating the server as `auth` says.
    pub(crate) fn with(auth: ServerAuth, identity: Identity<'a>, rng: &'a mut R) -> Self {
        PinnedProvider {
            verifier: PinnedVerifier::with(auth),
            identity,
            rng,
            cert_requested: false,
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

impl<R: CryptoRngCore> CryptoProvider for PinnedProvider<'_, R> {
    type CipherSuite = Aes128GcmSha256;
    type Signature = DerSignature;

    fn rng(&mut self) -> impl CryptoRngCore {
        &mut *self.rng
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
            self.identity.key.clone(),
            SignatureScheme::EcdsaSecp256r1Sha256,
        ))
    }

    fn client_cert(&mut self) -> Option<Certificate<impl AsRef<[u8]>>> {
        self.cert_requested = true;
        // An empty Certificate to a server that did not prove itself: our
        // certificate is not shown to a stranger, and the handshake then
        // fails in `open` (ServerNotAuthenticated).
        if self.verifier.is_verified() {
            Some(Certificate::X509(self.identity.cert))
        } else {
            None
        }
    }
}
