//! aws-lc-rs (AWS-LC's P-256 assembly): the host backend. Needs std and a
//! C compiler (no cmake or go), so it is a feature the Linux shim enables.

use aws_lc_rs::agreement::{self, PrivateKey, UnparsedPublicKey, ECDH_P256};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING,
};

use super::api::{P256Backend, MAX_SIGNATURE_LEN};

/// The aws-lc-rs backend.
#[derive(Debug, Clone, Copy, Default)]
pub struct AwsLc;

/// The aws-lc-rs backend.
pub static AWS_LC: AwsLc = AwsLc;

impl P256Backend for AwsLc {
    fn name(&self) -> &'static str {
        "aws-lc-rs"
    }

    fn public_key(&self, secret: &[u8; 32]) -> Option<[u8; 65]> {
        let key = PrivateKey::from_private_key(&ECDH_P256, secret).ok()?;
        let public = key.compute_public_key().ok()?;
        public.as_ref().try_into().ok()
    }

    fn ecdh(&self, secret: &[u8; 32], peer: &[u8]) -> Option<[u8; 32]> {
        let key = PrivateKey::from_private_key(&ECDH_P256, secret).ok()?;
        agreement::agree(
            &key,
            UnparsedPublicKey::new(&ECDH_P256, peer),
            (),
            |shared| shared.try_into().map_err(|_| ()),
        )
        .ok()
    }

    fn sign(
        &self,
        secret: &[u8; 32],
        public: &[u8; 65],
        message: &[u8],
        out: &mut [u8; MAX_SIGNATURE_LEN],
    ) -> Option<usize> {
        let pair = EcdsaKeyPair::from_private_key_and_public_key(
            &ECDSA_P256_SHA256_ASN1_SIGNING,
            secret,
            public,
        )
        .ok()?;
        let signature = pair.sign(&SystemRandom::new(), message).ok()?;
        let bytes = signature.as_ref();
        out.get_mut(..bytes.len())?.copy_from_slice(bytes);
        Some(bytes.len())
    }

    fn verify(&self, public: &[u8; 65], message: &[u8], signature: &[u8]) -> bool {
        signature::UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, public)
            .verify(message, signature)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_lc_agrees_with_rust_crypto() {
        super::super::agrees_with_rust_crypto(&AWS_LC, 0..16);
    }
}
