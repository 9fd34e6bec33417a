//! The provider and verifier on their own: no path skips authentication.

use embedded_tls::{CertificateVerifyRef, CryptoProvider, SignatureScheme, TlsVerifier};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::Pki;
use crate::tls::{Identity, PinnedProvider, PinnedVerifier, Progress, TlsError};

#[test]
fn provider_always_hands_out_the_pinned_verifier() {
    let pki = Pki::new(20);
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let identity =
        Identity::new(pki.client_key.clone(), &pki.client_der).expect("the certificate fits");
    let mut provider = PinnedProvider::new(pki.server_pin(), identity, &mut rng);
    // embedded-tls skips server authentication when verifier() fails; ours
    // never does, before, during or after a handshake.
    for _ in 0..3 {
        assert!(provider.verifier().is_ok());
    }
    assert_eq!(provider.pinned_verifier().pin(), Some(&pki.server_pin()));
}

#[test]
fn provider_does_not_sign_or_show_the_certificate_to_an_unproven_server() {
    let pki = Pki::new(21);
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let identity =
        Identity::new(pki.client_key.clone(), &pki.client_der).expect("the certificate fits");
    let mut provider = PinnedProvider::new(pki.server_pin(), identity, &mut rng);
    assert!(provider.signer().is_err());
    assert!(provider.client_cert().is_none());
    assert!(provider.cert_requested());
}

#[test]
fn certificate_verify_without_a_certificate_is_refused() {
    let mut v = PinnedVerifier::new([1; 32]);
    let sig = [0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01];
    let verify = CertificateVerifyRef {
        signature_scheme: SignatureScheme::EcdsaSecp256r1Sha256,
        signature: &sig,
    };
    assert!(v.verify_signature(verify).is_err());
    assert!(matches!(
        v.progress(),
        Progress::Failed(TlsError::ServerNotAuthenticated)
    ));
    assert!(!v.is_verified());
}
