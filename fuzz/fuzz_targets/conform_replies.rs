//! bmclink-conform's parsing of the BMC's replies (`conn::Replies`), over
//! a byte stream cut into chunks of the first byte's size.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    bmclink_conform::fuzzing::replies(data);
});
