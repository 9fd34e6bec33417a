//! A per-connection deterministic random bit generator: SHA-256 in counter
//! mode over a 256-bit seed drawn from the platform's CSPRNG. The TLS client
//! needs randomness while the platform is busy being its transport, so each
//! connection draws one seed up front and expands it here.

use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};

/// SHA-256(seed ‖ counter) blocks, consumed in order.
pub struct HashDrbg {
    seed: [u8; 32],
    counter: u64,
    block: [u8; 32],
    used: usize,
}

impl HashDrbg {
    /// Seeds from `rng`.
    pub fn from_rng(rng: &mut impl RngCore) -> Self {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        HashDrbg {
            seed,
            counter: 0,
            block: [0; 32],
            used: 32,
        }
    }

    fn refill(&mut self) {
        let mut h = Sha256::new();
        h.update(self.seed);
        h.update(self.counter.to_be_bytes());
        self.block = h.finalize().into();
        self.counter = self.counter.wrapping_add(1);
        self.used = 0;
    }
}

impl RngCore for HashDrbg {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for byte in dest.iter_mut() {
            if self.used >= self.block.len() {
                self.refill();
            }
            *byte = self.block.get(self.used).copied().unwrap_or(0);
            self.used = self.used.saturating_add(1);
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for HashDrbg {}

impl Drop for HashDrbg {
    fn drop(&mut self) {
        // Leave no seed behind in memory that outlives the connection.
        self.seed = [0; 32];
        self.block = [0; 32];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;

    #[test]
    fn same_seed_same_stream_and_blocks_do_not_repeat() {
        let mut a = HashDrbg::from_rng(&mut rand_chacha::ChaCha8Rng::seed_from_u64(1));
        let mut b = HashDrbg::from_rng(&mut rand_chacha::ChaCha8Rng::seed_from_u64(1));
        let (mut x, mut y) = ([0u8; 100], [0u8; 100]);
        a.fill_bytes(&mut x);
        b.fill_bytes(&mut y);
        assert_eq!(x, y);
        assert_ne!(x[..32], x[32..64]);
        let mut c = HashDrbg::from_rng(&mut rand_chacha::ChaCha8Rng::seed_from_u64(2));
        let mut z = [0u8; 100];
        c.fill_bytes(&mut z);
        assert_ne!(x, z);
    }
}
