//! The random number generator: ChaCha20 seeded once at start-up from
//! whatever the board offers.
//!
//! NOT FOR PRODUCTION. QEMU's mps2-an386 has no hardware TRNG, so the seed
//! mixes the host's time read over semihosting, the MAC address and the
//! SysTick counter at seeding: enough to make two runs differ, not enough
//! to resist anyone who can guess when the board booted. A real rig seeds
//! from its TRNG (or keeps a seed in a secure element) in
//! [`super::entropy_seed`]; the DRBG stays as it is.

use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, RngCore, SeedableRng};
use sha2::{Digest, Sha256};

/// The board's CSPRNG (seeded DRBG; see the module docs).
pub struct Drbg(ChaCha20Rng);

impl Drbg {
    /// Seeds from SHA-256 of `entropy`.
    pub fn from_entropy(entropy: &[u8]) -> Self {
        Drbg(ChaCha20Rng::from_seed(Sha256::digest(entropy).into()))
    }
}

impl RngCore for Drbg {
    fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }

    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill_bytes(dest)
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.0.try_fill_bytes(dest)
    }
}

/// ChaCha20 is a CSPRNG; the seed's quality is the caveat above.
impl CryptoRng for Drbg {}
