//! The enrollment proofs of DESIGN §5a: HMAC-SHA256 over both certificates'
//! fingerprints, keyed with the one-time secret, so a man in the middle (who
//! shows each side a different certificate) can relay neither.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::proto::PROOF_LEN;

/// The label of the agent's proof (in ENROLL).
pub const HOST_LABEL: &[u8] = b"bmclink enroll host";
/// The label of the BMC's proof (in ENROLLED).
pub const BMC_LABEL: &[u8] = b"bmclink enroll bmc";

fn proof(label: &[u8], secret: &[u8], bmc_fp: &[u8; 32], client_fp: &[u8; 32]) -> [u8; PROOF_LEN] {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(secret) else {
        return [0; PROOF_LEN];
    };
    mac.update(label);
    mac.update(bmc_fp);
    mac.update(client_fp);
    mac.finalize().into_bytes().into()
}

/// `HMAC-SHA256(secret, "bmclink enroll host" || bmc_fp || client_fp)`.
pub fn host_proof(secret: &[u8], bmc_fp: &[u8; 32], client_fp: &[u8; 32]) -> [u8; PROOF_LEN] {
    proof(HOST_LABEL, secret, bmc_fp, client_fp)
}

/// `HMAC-SHA256(secret, "bmclink enroll bmc" || bmc_fp || client_fp)`.
pub fn bmc_proof(secret: &[u8], bmc_fp: &[u8; 32], client_fp: &[u8; 32]) -> [u8; PROOF_LEN] {
    proof(BMC_LABEL, secret, bmc_fp, client_fp)
}

/// Compares two proofs in time independent of where they differ.
pub fn proofs_equal(a: &[u8; PROOF_LEN], b: &[u8; PROOF_LEN]) -> bool {
    let diff = a
        .iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // black_box keeps the compiler from turning the fold into an early exit.
    core::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;

    /// RFC 4231 test case 2 ("Jefe"), to pin the construction to plain
    /// HMAC-SHA256 over the concatenation.
    #[test]
    fn proof_is_hmac_sha256_over_label_and_fingerprints() {
        let mut msg = std::vec::Vec::new();
        let bmc = [1u8; 32];
        let client = [2u8; 32];
        msg.extend_from_slice(HOST_LABEL);
        msg.extend_from_slice(&bmc);
        msg.extend_from_slice(&client);
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"Jefe").unwrap();
        mac.update(&msg);
        let want: [u8; 32] = mac.finalize().into_bytes().into();
        assert_eq!(host_proof(b"Jefe", &bmc, &client), want);
        // And the primitive itself against RFC 4231 §4.3.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        let rfc = [
            0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e, 0x6a, 0x04, 0x24, 0x26, 0x08, 0x95,
            0x75, 0xc7, 0x5a, 0x00, 0x3f, 0x08, 0x9d, 0x27, 0x39, 0x83, 0x9d, 0xec, 0x58, 0xb9,
            0x64, 0xec, 0x38, 0x43,
        ];
        assert_eq!(mac.finalize().into_bytes().as_slice(), &rfc);
    }

    #[test]
    fn the_two_proofs_and_the_two_certificates_are_not_interchangeable() {
        let (s, b, c) = (b"secret-0123456789ab".as_slice(), [3u8; 32], [4u8; 32]);
        assert_ne!(host_proof(s, &b, &c), bmc_proof(s, &b, &c));
        assert_ne!(host_proof(s, &b, &c), host_proof(s, &c, &b));
        assert_ne!(host_proof(s, &b, &c), host_proof(b"other", &b, &c));
    }

    #[test]
    fn proofs_equal_compares_every_byte() {
        let a = [7u8; 32];
        assert!(proofs_equal(&a, &a));
        for i in 0..32 {
            let mut b = a;
            b[i] ^= 0x80;
            assert!(!proofs_equal(&a, &b));
        }
    }
}
