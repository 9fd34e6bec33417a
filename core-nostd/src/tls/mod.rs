//! embedded-tls 0.19 glue: a `CryptoProvider` with a pinning verifier and the
//! P-256 client identity.
