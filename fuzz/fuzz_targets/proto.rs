//! Channel-protocol frames and byte streams (split at fuzzer-chosen points).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    bmclink_tests::fuzzing::proto(data);
});
