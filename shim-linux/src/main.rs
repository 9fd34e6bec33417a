//! `bmclink`: the Linux shim.

fn main() {
    eprintln!("bmclink: the Linux shim is not built yet; use `cargo xtask run`");
    std::process::exit(2);
}
