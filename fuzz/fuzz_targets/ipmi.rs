//! The bootstrap channel's codecs (DSP0270, Get Device ID, QEMU's
//! external-BMC framing) on arbitrary bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    bmclink_tests::fuzzing::ipmi(data);
});
