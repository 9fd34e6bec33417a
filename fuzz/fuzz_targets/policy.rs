//! Random input sequences into the fallback policy, checking its invariants.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    bmclink_tests::fuzzing::policy(data);
});
