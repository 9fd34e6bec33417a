//! Puts `memory.x` where cortex-m-rt's `link.x` finds it.

use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::copy("memory.x", out.join("memory.x")).expect("memory.x is next to build.rs");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-env-changed=BMCLINK_FW_BMC_FINGERPRINT");
    println!("cargo:rerun-if-env-changed=BMCLINK_FW_CREDENTIAL");
    println!("cargo:rerun-if-env-changed=BMCLINK_FW_ACCOUNT");
}
