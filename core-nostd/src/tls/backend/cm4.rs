//! The `p256-cm4` crate (Emill Eriksson's Cortex-M4 P-256 assembly): the
//! thumbv7em backend, about 18x RustCrypto's signing and 12x its
//! verification speed on an M4 (its README). Its scalars and coordinates
//! are eight little-endian 32-bit words; ours are big-endian bytes.
//! Signing uses RFC 6979 nonces, as RustCrypto's does.
//!
//! The assembly only builds for ARM, so this backend is tested by building
//! it for thumbv7em-none-eabihf; its agreement with RustCrypto can only be
//! run on the target (no emulator in CI).

use p256::ecdsa::Signature;
use p256::elliptic_curve::bigint::Encoding;
use p256::elliptic_curve::Curve;
use p256::NistP256;
use sha2::{Digest, Sha256};

use super::api::{P256Backend, MAX_SIGNATURE_LEN};

/// The p256-cm4 backend.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cm4;

/// The p256-cm4 backend.
pub static CM4: Cm4 = Cm4;

/// Big-endian bytes to little-endian words.
fn words(be: &[u8; 32]) -> [u32; 8] {
    let mut out = [0u32; 8];
    for (word, chunk) in out.iter_mut().zip(be.rchunks_exact(4)) {
        let mut b = [0u8; 4];
        b.copy_from_slice(chunk);
        *word = u32::from_be_bytes(b);
    }
    out
}

/// Little-endian words to big-endian bytes.
fn bytes(words: &[u32; 8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (chunk, word) in out.rchunks_exact_mut(4).zip(words.iter()) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

/// A SEC1 uncompressed point, checked to be on the curve.
fn point(sec1: &[u8]) -> Option<([u32; 8], [u32; 8])> {
    // `octet_string_to_point` indexes the input: check its shape first.
    if sec1.len() != 65 || sec1.first() != Some(&4) {
        return None;
    }
    let (mut x, mut y) = ([0u32; 8], [0u32; 8]);
    p256_cm4::octet_string_to_point(&mut x, &mut y, sec1).then_some((x, y))
}

impl P256Backend for Cm4 {
    fn name(&self) -> &'static str {
        "p256-cm4"
    }

    fn public_key(&self, secret: &[u8; 32]) -> Option<[u8; 65]> {
        let (mut x, mut y) = ([0u32; 8], [0u32; 8]);
        if !p256_cm4::keygen(&mut x, &mut y, &words(secret)) {
            return None;
        }
        let mut out = [0u8; 65];
        p256_cm4::point_to_octet_string_uncompressed(&mut out, &x, &y);
        Some(out)
    }

    fn ecdh(&self, secret: &[u8; 32], peer: &[u8]) -> Option<[u8; 32]> {
        let (x, y) = point(peer)?;
        let mut shared = [0u8; 32];
        let secret = words(secret);
        if !p256_cm4::check_range_n(&secret) {
            return None;
        }
        p256_cm4::ecdh_calc_shared_secret(&mut shared, &secret, &x, &y).then_some(shared)
    }

    fn sign(
        &self,
        secret: &[u8; 32],
        _public: &[u8; 65],
        message: &[u8],
        out: &mut [u8; MAX_SIGNATURE_LEN],
    ) -> Option<usize> {
        let hash: [u8; 32] = Sha256::digest(message).into();
        let order: [u8; 32] = NistP256::ORDER.to_be_bytes();
        let key = words(secret);
        let (mut r, mut s) = ([0u32; 8], [0u32; 8]);
        // RFC 6979 k; the extra data counts the (2^-32 rare) retries.
        let signed = (0u8..8).any(|retry| {
            let k = rfc6979::generate_k::<Sha256, rfc6979::consts::U32>(
                secret.into(),
                &order.into(),
                &hash.into(),
                &[retry],
            );
            let k: [u8; 32] = k.into();
            p256_cm4::sign(&mut r, &mut s, &hash, &key, &words(&k))
        });
        if !signed {
            return None;
        }
        let signature = Signature::from_scalars(bytes(&r), bytes(&s)).ok()?;
        let der = signature.to_der();
        let der = der.as_bytes();
        out.get_mut(..der.len())?.copy_from_slice(der);
        Some(der.len())
    }

    fn verify(&self, public: &[u8; 65], message: &[u8], signature: &[u8]) -> bool {
        let Ok(signature) = Signature::from_der(signature) else {
            return false;
        };
        let Some((x, y)) = point(public) else {
            return false;
        };
        let hash: [u8; 32] = Sha256::digest(message).into();
        let (r, s) = signature.split_bytes();
        p256_cm4::verify(&x, &y, &hash, &words(&r.into()), &words(&s.into()))
    }
}
