//! ECDSA P-256 / SHA-256 signature verification with Shamir's trick.
//!
//! Checking the server's CertificateVerify is one of the four P-256
//! operations of our handshake, and the only one that costs two scalar
//! multiplications: `ecdsa` 0.16 computes `u1·G + u2·Q` as two separate
//! constant-time 4-bit-window multiplications (512 doublings). Everything in
//! a verification is public, so it may take variable time: here both
//! scalars are walked together two bits at a time against a 16-entry table
//! of `i·G + j·Q` (Straus–Shamir), which costs 256 doublings and at most
//! 128 additions, about 0.6 of the stock verification (BENCHMARKS.md).
//!
//! The arithmetic is p256 0.13's own (complete projective formulas), so
//! the result is the standard one: [`verify`] accepts exactly the
//! signatures `VerifyingKey::verify` accepts; the tests compare the two.

use p256::ecdsa::{Signature, VerifyingKey};
use p256::elliptic_curve::bigint::U256;
use p256::elliptic_curve::group::Group;
use p256::elliptic_curve::ops::{Invert, Reduce};
use p256::elliptic_curve::point::AffineCoordinates;
use p256::{FieldBytes, ProjectivePoint, Scalar};
use sha2::{Digest, Sha256};

/// Whether `signature` (ASN.1 DER bytes, as TLS carries it) is `key`'s ECDSA
/// signature of SHA-256(`message`).
pub fn verify(key: &VerifyingKey, message: &[u8], signature: &[u8]) -> bool {
    let Ok(signature) = Signature::from_der(signature) else {
        return false;
    };
    let digest: FieldBytes = Sha256::digest(message);
    verify_prehashed(key, &digest, &signature)
}

/// [`verify`] with the message already hashed (32 bytes, SEC 1 §4.1.4).
// reason: `*` here is p256's arithmetic modulo the group order; it cannot overflow.
#[allow(clippy::arithmetic_side_effects)]
fn verify_prehashed(key: &VerifyingKey, digest: &FieldBytes, signature: &Signature) -> bool {
    // `Signature` holds r and s in [1, n) already (from_der checks).
    let (r, s) = (*signature.r(), *signature.s());
    let z = <Scalar as Reduce<U256>>::reduce_bytes(digest);
    let w = Option::<Scalar>::from(s.invert_vartime());
    let Some(w) = w else {
        return false;
    };
    let u1 = z * w;
    let u2 = r * w;
    let point = shamir(&u1, &ProjectivePoint::from(*key.as_affine()), &u2);
    if bool::from(point.is_identity()) {
        return false;
    }
    let x = point.to_affine().x();
    <Scalar as Reduce<U256>>::reduce_bytes(&x) == r
}

/// `u1·G + u2·q`, in variable time (public inputs only).
// reason: `+` here is P-256 point addition (complete formulas); it cannot overflow.
#[allow(clippy::arithmetic_side_effects)]
fn shamir(u1: &Scalar, q: &ProjectivePoint, u2: &Scalar) -> ProjectivePoint {
    let g = ProjectivePoint::GENERATOR;
    // table[i][j] = i·G + j·Q for i, j in 0..4.
    let mut table = [[ProjectivePoint::IDENTITY; 4]; 4];
    let multiples = |p: ProjectivePoint| {
        let two = p.double();
        [ProjectivePoint::IDENTITY, p, two, two + p]
    };
    let gs = multiples(g);
    let qs = multiples(*q);
    for (row, gi) in table.iter_mut().zip(gs.iter()) {
        for (slot, qj) in row.iter_mut().zip(qs.iter()) {
            *slot = *gi + qj;
        }
    }
    let (a, b) = (u1.to_bytes(), u2.to_bytes());
    let mut acc = ProjectivePoint::IDENTITY;
    // Big-endian bytes, four 2-bit digits each, most significant first.
    for (&x, &y) in a.iter().zip(b.iter()) {
        for shift in [6u8, 4, 2, 0] {
            acc = acc.double().double();
            let i = usize::from((x >> shift) & 3);
            let j = usize::from((y >> shift) & 3);
            if let Some(entry) = table.get(i).and_then(|row| row.get(j)) {
                if i != 0 || j != 0 {
                    acc += entry;
                }
            }
        }
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::{Signer, Verifier};
    use p256::ecdsa::{DerSignature, SigningKey};
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn keys(seed: u64) -> (SigningKey, VerifyingKey) {
        let key = SigningKey::random(&mut ChaCha20Rng::seed_from_u64(seed));
        let public = *key.verifying_key();
        (key, public)
    }

    #[test]
    fn accepts_what_the_ecdsa_crate_signs() {
        for seed in 0..24u64 {
            let (key, public) = keys(seed);
            let message = seed.to_be_bytes();
            let sig: DerSignature = key.sign(&message);
            assert!(public.verify(&message, &sig).is_ok());
            assert!(verify(&public, &message, sig.as_bytes()), "seed {seed}");
        }
    }

    #[test]
    fn agrees_with_the_ecdsa_crate_on_tampered_signatures() {
        let (key, public) = keys(7);
        let (_, other) = keys(8);
        let message = b"TLS 1.3, server CertificateVerify";
        let sig: Signature = key.sign(message);
        let der = sig.to_der();
        // Another key, another message.
        assert!(!verify(&other, message, der.as_bytes()));
        assert!(!verify(
            &public,
            b"TLS 1.3, client CertificateVerify",
            der.as_bytes()
        ));
        // Every single-bit flip of r and of s.
        let bytes = sig.to_bytes();
        for bit in 0..512 {
            let mut flipped = bytes;
            flipped[bit / 8] ^= 1 << (bit % 8);
            let Ok(bad) = Signature::from_slice(&flipped) else {
                continue;
            };
            let stock = public.verify(message, &bad).is_ok();
            assert!(!stock, "bit {bit}");
            assert_eq!(
                verify(&public, message, bad.to_der().as_bytes()),
                stock,
                "bit {bit}"
            );
        }
    }

    #[test]
    fn accepts_the_high_s_twin_like_the_ecdsa_crate() {
        // (r, n - s) is valid too; ecdsa 0.16 verification accepts it.
        let (key, public) = keys(3);
        let sig: Signature = key.sign(b"m");
        let twin = Signature::from_scalars(*sig.r(), -*sig.s()).expect("twin");
        assert_eq!(
            public.verify(b"m", &twin).is_ok(),
            verify(&public, b"m", twin.to_der().as_bytes())
        );
        assert!(verify(&public, b"m", twin.to_der().as_bytes()));
    }

    #[test]
    fn refuses_malformed_der() {
        let (_, public) = keys(1);
        for bytes in [
            &[][..],
            &[0x30, 0x00],
            &[0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x01],
        ] {
            assert!(!verify(&public, b"m", bytes), "{bytes:02x?}");
        }
    }

    #[test]
    fn shamir_matches_two_multiplications() {
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        use p256::elliptic_curve::Field;
        for _ in 0..8 {
            let (u1, u2, k) = (
                Scalar::random(&mut rng),
                Scalar::random(&mut rng),
                Scalar::random(&mut rng),
            );
            let q = ProjectivePoint::GENERATOR * k;
            let expected = ProjectivePoint::GENERATOR * u1 + q * u2;
            assert_eq!(shamir(&u1, &q, &u2), expected);
        }
        assert_eq!(
            shamir(&Scalar::ZERO, &ProjectivePoint::GENERATOR, &Scalar::ZERO),
            ProjectivePoint::IDENTITY
        );
    }
}
