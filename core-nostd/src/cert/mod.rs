//! P-256 self-signed X.509 v3 certificates: generation into a caller's buffer
//! (no alloc) and parsing of what the core needs.
