//! Certificate parsing (and generation round trips) on arbitrary bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    bmclink_tests::fuzzing::cert(data);
});
