//! What a P-256 backend provides: the contract every backend (RustCrypto,
//! aws-lc, p256-cm4) implements and is tested against.

/// Largest DER ECDSA P-256 signature.
pub const MAX_SIGNATURE_LEN: usize = 72;

/// The P-256 operations a TLS 1.3 handshake of ours needs. Keys are a
/// secret scalar (32 bytes big-endian, in `[1, n)`) and a SEC1 uncompressed
/// public point (65 bytes); signatures are ECDSA with SHA-256, ASN.1 DER.
pub trait P256Backend: Sync {
    /// A short name for logs and benchmarks.
    fn name(&self) -> &'static str;
    /// The public point of `secret`; `None` if `secret` is not a valid scalar.
    fn public_key(&self, secret: &[u8; 32]) -> Option<[u8; 65]>;
    /// ECDH: the x-coordinate of `secret`·`peer`; `None` if `peer` is not a
    /// point on the curve (SEC1) or the result is the identity.
    fn ecdh(&self, secret: &[u8; 32], peer: &[u8]) -> Option<[u8; 32]>;
    /// Signs SHA-256(`message`) with `secret` (whose point is `public`);
    /// the DER signature's length in `out`.
    fn sign(
        &self,
        secret: &[u8; 32],
        public: &[u8; 65],
        message: &[u8],
        out: &mut [u8; MAX_SIGNATURE_LEN],
    ) -> Option<usize>;
    /// Whether `signature` (DER) is `public`'s signature of SHA-256(`message`).
    fn verify(&self, public: &[u8; 65], message: &[u8], signature: &[u8]) -> bool;
}
