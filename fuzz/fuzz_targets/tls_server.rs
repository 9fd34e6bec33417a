//! The agent's TLS client against arbitrary server bytes, raw or after a
//! real ServerHello (records encrypted under the handshake key).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    bmclink_tests::fuzzing::tls_server(data);
});
