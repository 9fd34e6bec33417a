//! The agent's TLS client on an established session: records the pinned
//! server protects mixed with bytes injected in plaintext, client writes
//! and reads.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    bmclink_tests::fuzzing::tls_session(data);
});
