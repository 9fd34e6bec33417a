//! The P-256 operations of our handshake, from a backend the platform
//! chooses: the ECDHE key share and shared secret (through the in-tree
//! embedded-tls's `ecdhe_p256_*` hooks), the CertificateVerify signature
//! with the client identity, and the check of the server's.
//!
//! [`RustCrypto`] (the `p256` crate, portable, every target) is the
//! default. A platform picks a faster one with a cargo feature of the core,
//! which makes it [`DEFAULT_BACKEND`] (what `PinnedTls::open`, and so the
//! agent, uses): `aws-lc` (hosts: aws-lc-rs's assembly; the Linux shim
//! enables it) and `p256-cm4` (thumbv7em: Cortex-M4 assembly; the firmware's
//! `p256-cm4` feature). Any backend can also be passed to
//! `PinnedTls::open_as`. Every backend must agree with RustCrypto
//! (the tests check shared secrets and cross-verify signatures).

use p256::ecdsa::{DerSignature, SigningKey, VerifyingKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::{PublicKey, SecretKey};

mod api;
#[cfg(feature = "aws-lc")]
mod aws_lc;
#[cfg(feature = "p256-cm4")]
mod cm4;
pub use api::{P256Backend, MAX_SIGNATURE_LEN};
#[cfg(feature = "aws-lc")]
pub use aws_lc::{AwsLc, AWS_LC};
#[cfg(feature = "p256-cm4")]
pub use cm4::{Cm4, CM4};

/// RustCrypto's `p256` 0.13 (portable field arithmetic); verification with
/// Shamir's trick (`ecdsa.rs`).
#[derive(Debug, Clone, Copy, Default)]
pub struct RustCrypto;

/// The RustCrypto backend.
pub static RUST_CRYPTO: RustCrypto = RustCrypto;

/// The backend of this build: aws-lc-rs with the `aws-lc` feature,
/// p256-cm4 with `p256-cm4`, else RustCrypto.
#[cfg(feature = "aws-lc")]
pub static DEFAULT_BACKEND: &dyn P256Backend = &AWS_LC;
/// The backend of this build: aws-lc-rs with the `aws-lc` feature,
/// p256-cm4 with `p256-cm4`, else RustCrypto.
#[cfg(all(feature = "p256-cm4", not(feature = "aws-lc")))]
pub static DEFAULT_BACKEND: &dyn P256Backend = &CM4;
/// The backend of this build: aws-lc-rs with the `aws-lc` feature,
/// p256-cm4 with `p256-cm4`, else RustCrypto.
#[cfg(not(any(feature = "aws-lc", feature = "p256-cm4")))]
pub static DEFAULT_BACKEND: &dyn P256Backend = &RUST_CRYPTO;

/// The SEC1 uncompressed encoding of `key`.
pub fn encode_point(key: &PublicKey) -> [u8; 65] {
    let mut out = [0u8; 65];
    let point = key.to_encoded_point(false);
    if let Some(dst) = out.get_mut(..point.as_bytes().len()) {
        dst.copy_from_slice(point.as_bytes());
    }
    out
}

impl P256Backend for RustCrypto {
    fn name(&self) -> &'static str {
        "RustCrypto p256"
    }

    fn public_key(&self, secret: &[u8; 32]) -> Option<[u8; 65]> {
        let secret = SecretKey::from_bytes(secret.into()).ok()?;
        Some(encode_point(&secret.public_key()))
    }

    fn ecdh(&self, secret: &[u8; 32], peer: &[u8]) -> Option<[u8; 32]> {
        let secret = SecretKey::from_bytes(secret.into()).ok()?;
        let peer = PublicKey::from_sec1_bytes(peer).ok()?;
        let shared = p256::ecdh::diffie_hellman(secret.to_nonzero_scalar(), peer.as_affine());
        Some((*shared.raw_secret_bytes()).into())
    }

    fn sign(
        &self,
        secret: &[u8; 32],
        _public: &[u8; 65],
        message: &[u8],
        out: &mut [u8; MAX_SIGNATURE_LEN],
    ) -> Option<usize> {
        use p256::ecdsa::signature::Signer;
        let key = SigningKey::from_bytes(secret.into()).ok()?;
        let signature: DerSignature = key.try_sign(message).ok()?;
        let bytes = signature.as_bytes();
        out.get_mut(..bytes.len())?.copy_from_slice(bytes);
        Some(bytes.len())
    }

    fn verify(&self, public: &[u8; 65], message: &[u8], signature: &[u8]) -> bool {
        match VerifyingKey::from_sec1_bytes(public) {
            Ok(key) => super::ecdsa::verify(&key, message, signature),
            Err(_) => false,
        }
    }
}

/// The signer embedded-tls calls for our CertificateVerify: the identity's
/// key through a backend.
pub(crate) struct BackendSigner {
    pub(crate) backend: &'static dyn P256Backend,
    pub(crate) secret: [u8; 32],
    pub(crate) public: [u8; 65],
}

impl Drop for BackendSigner {
    fn drop(&mut self) {
        self.secret.fill(0);
    }
}

impl p256::ecdsa::signature::SignerMut<DerSignature> for BackendSigner {
    fn try_sign(&mut self, msg: &[u8]) -> Result<DerSignature, p256::ecdsa::signature::Error> {
        let mut out = [0u8; MAX_SIGNATURE_LEN];
        let n = self
            .backend
            .sign(&self.secret, &self.public, msg, &mut out)
            .ok_or_else(p256::ecdsa::signature::Error::new)?;
        let der = out
            .get(..n)
            .ok_or_else(p256::ecdsa::signature::Error::new)?;
        DerSignature::try_from(der)
    }
}

/// Checks `backend` against RustCrypto on `seeds` keys: public keys, ECDH
/// both ways, and signatures cross-verified. For each backend's tests.
#[cfg(test)]
pub(crate) fn agrees_with_rust_crypto(backend: &dyn P256Backend, seeds: core::ops::Range<u64>) {
    use rand_chacha::rand_core::SeedableRng;
    let reference = &RUST_CRYPTO;
    for seed in seeds {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
        let a: [u8; 32] = SecretKey::random(&mut rng).to_bytes().into();
        let b: [u8; 32] = SecretKey::random(&mut rng).to_bytes().into();
        let (pa, pb) = (
            reference.public_key(&a).unwrap(),
            reference.public_key(&b).unwrap(),
        );
        assert_eq!(
            backend.public_key(&a),
            Some(pa),
            "{} public key",
            backend.name()
        );
        let shared = reference.ecdh(&a, &pb).unwrap();
        assert_eq!(
            backend.ecdh(&a, &pb),
            Some(shared),
            "{} ecdh",
            backend.name()
        );
        assert_eq!(
            backend.ecdh(&b, &pa),
            Some(shared),
            "{} ecdh",
            backend.name()
        );
        let message = seed.to_be_bytes();
        let mut out = [0u8; MAX_SIGNATURE_LEN];
        let n = backend.sign(&a, &pa, &message, &mut out).unwrap();
        assert!(
            reference.verify(&pa, &message, &out[..n]),
            "{} sign",
            backend.name()
        );
        assert!(!reference.verify(&pb, &message, &out[..n]));
        let n = reference.sign(&b, &pb, &message, &mut out).unwrap();
        assert!(
            backend.verify(&pb, &message, &out[..n]),
            "{} verify",
            backend.name()
        );
        assert!(!backend.verify(&pb, b"another message", &out[..n]));
        assert!(!backend.verify(&pa, &message, &out[..n]));
    }
    // Not points: refused, never a panic.
    let a = [7u8; 32];
    assert_eq!(backend.ecdh(&a, &[4u8; 65]), None);
    assert_eq!(backend.ecdh(&a, &[]), None);
    assert_eq!(backend.public_key(&[0u8; 32]), None);
    assert_eq!(backend.public_key(&[0xffu8; 32]), None);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_crypto_agrees_with_itself_and_refuses_non_points() {
        agrees_with_rust_crypto(&RUST_CRYPTO, 0..4);
    }
}
