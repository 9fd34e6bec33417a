//! P-256 self-signed X.509 v3 certificates: generation into a caller's buffer
//! (no alloc) and parsing of what the core needs.
//!
//! Both ends of the channel authenticate with a self-signed certificate and
//! pin the other's by its SHA-256 [`fingerprint`] (DESIGN T1); there is no CA.
//! The host's identity is a P-256 key ([`identity`]) and a certificate made by
//! [`generate`]: valid exactly ten years from its creation (T2), subject and
//! issuer naming the host, key usage digitalSignature, extended key usage
//! clientAuth (serverAuth too when [`CertParams::server_auth`] is set, so the
//! simulated BMC uses the same generator), CA:false, signed ecdsa-with-SHA256.
//!
//! [`parse`] reads back what the core uses: validity, the P-256 public key,
//! the signed bytes and the signature. It never panics on any input.

mod der;
mod error;
mod expiry;
mod fingerprint;
mod generate;
pub mod identity;
pub(crate) mod oid;
mod time;
mod view;

#[cfg(test)]
mod tests;

pub use error::{CertError, MAX_CERT_LEN, MAX_COMMON_NAME_LEN};
pub use expiry::{Expiry, RENEW_WARNING_DAYS};
pub use fingerprint::{fingerprint, Fingerprint, ShortFingerprint};
pub use generate::{generate, CertParams, VALIDITY_YEARS};
pub use view::{parse, CertView};
