//! SMBIOS tables, type-42 structures and Redfish-over-IP records (the
//! shim's `smbios` parser): a dump, a bare table and a record at once.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    bmclink_linux::smbios::fuzz(data);
});
