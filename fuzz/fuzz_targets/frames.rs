//! Raw Ethernet frames from a third node into a running agent.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    bmclink_tests::fuzzing::frames(data);
});
