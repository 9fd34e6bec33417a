//! `cargo xtask`: the project's own commands.
//!
//! - `run [--seconds N]`: the main job: the agent against the in-process
//!   simulated BMC, in virtual time, printing the timeline; exits 0 only when
//!   a session came up, heartbeated and ended with BYE. `run --plain
//!   [--config FILE]`: the plain-channel BMC with a shim config (what
//!   `bmclink run --sim` was before the binary stopped linking the test kit).
//! - `fuzz [TARGET] [--seconds N]`: runs one or every cargo-fuzz target
//!   (default 60 s each) and reports exec/s, coverage and crashes.
//! - `ci`: adds the thumbv7em target, rustfmt and clippy when rustup lacks
//!   them, then everything CI checks: the shipped binary's dependencies, fmt,
//!   clippy `-D warnings`, all tests, the `thumbv7em-none-eabihf` build of the
//!   core, the firmware's size and its boot on QEMU (`qemu`), the main job and
//!   the Debian package (`deb`).
//! - `audit-table [--write]`: prints the audit table generated from the core,
//!   or writes it into README.md between its markers.
//! - `size [--write]`: `size_of` of every piece of the agent state and the
//!   flash/RAM of the `firmware/` image for thumbv7em-none-eabihf; fails over
//!   budget; `--write` puts the tables into BENCHMARKS.md.
//! - `qemu [--bench] [--backend rustcrypto|cm4|both] [--scenario ipv4|ipv6-fallback|impostor]`: the firmware image
//!   booted on QEMU's mps2-an386 against the kernel BMC in a network
//!   namespace (root); `--bench` writes the on-target figures of both P-256
//!   backends.
//! - `bench`: release-build measurements against rustls and OpenSSL; prints
//!   a table and writes BENCHMARKS.md.
//! - `deb [--no-check]`: the Debian package (cargo-deb), then its files and
//!   modes, its maintainer scripts against a scratch root, and lintian.
//! - `shipped-deps`: `cargo tree -p bmclink-linux -e normal` shows no
//!   bmclink-tests, rustls, ring or anyhow (issue 14).
//! - `modules`: the core's module graph has no cycle and `platform.rs`
//!   imports nothing from the crate (issue 14; `modgraph.rs` says how the
//!   graph is read).

use std::process::{Command, ExitCode};

mod bench;
mod deb;
mod fuzz;
mod modgraph;
mod plain;
mod qemu;
mod run;
mod size;
mod toolchain;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, rest) = match args.split_first() {
        Some((c, r)) => (c.as_str(), r),
        None => ("help", &[][..]),
    };
    match cmd {
        "run" => run::main(rest),
        "fuzz" => fuzz::main(rest),
        "ci" => ci(),
        "audit-table" => audit_table(rest),
        "size" => size::main(rest),
        "bench" => bench::main(rest),
        "qemu" => qemu::main(rest),
        "deb" => deb::main(rest),
        "modules" => modules(),
        "shipped-deps" => {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            if shipped_deps(&cargo) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        "help" | "--help" | "-h" => {
            println!(
                "usage: cargo xtask <run [--seconds N] [--scenario NAME | --list | --plain [--config FILE]] | ci | audit-table [--write] | size [--write] | bench | qemu [--bench] [--backend rustcrypto|cm4|both] [--scenario ipv4|ipv6-fallback|impostor] | fuzz [TARGET] [--seconds N] | deb [--no-check] | shipped-deps | modules>"
            );
            ExitCode::SUCCESS
        }
        other => {
            eprintln!("xtask: unknown command `{other}` (try `cargo xtask help`)");
            ExitCode::from(2)
        }
    }
}

/// `cargo xtask modules`.
fn modules() -> ExitCode {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    match modgraph::check(&root) {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(problems) => {
            eprintln!("{problems}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one step of CI, echoing it; false when it failed.
fn step(name: &str, program: &str, args: &[&str]) -> bool {
    println!("==> {name}: {program} {}", args.join(" "));
    match Command::new(program).args(args).status() {
        Ok(s) if s.success() => true,
        Ok(s) => {
            eprintln!("xtask ci: `{name}` failed ({s})");
            false
        }
        Err(e) => {
            eprintln!("xtask ci: cannot run `{program}`: {e}");
            false
        }
    }
}

fn ci() -> ExitCode {
    // A fresh machine has only the toolchain: bring the firmware target,
    // rustfmt and clippy first (rustup target/component add only).
    if !toolchain::ensure() {
        return ExitCode::FAILURE;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let steps: &[(&str, &[&str])] = &[
        (
            "the shipped binary links no test kit, rustls or ring",
            &["xtask", "shipped-deps"],
        ),
        (
            "the core's modules form no cycle, platform.rs is a leaf",
            &["xtask", "modules"],
        ),
        ("format", &["fmt", "--all", "--check"]),
        (
            "clippy",
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
        ),
        (
            "no_std core for thumbv7em",
            &[
                "build",
                "-p",
                "bmclink-core",
                "--target",
                "thumbv7em-none-eabihf",
            ],
        ),
        ("tests", &["test", "--workspace"]),
        (
            "handshake stack budget (release)",
            &[
                "test",
                "--release",
                "-p",
                "bmclink-tests",
                "--test",
                "budgets",
            ],
        ),
        (
            "the 10-minute flood at a CPU that keeps up, session up throughout (release)",
            &[
                "test",
                "--release",
                "-p",
                "bmclink-tests",
                "--test",
                "policy_rows",
                "--",
                "--ignored",
                "a_flood_the_cpu_keeps_up_with_leaves_the_session_up",
            ],
        ),
        ("firmware size and RAM budgets", &["xtask", "size"]),
        (
            "firmware booted on QEMU mps2-an386 against the kernel BMC (root)",
            &["xtask", "qemu"],
        ),
        ("main job", &["xtask", "run"]),
        (
            "Debian package: files, modes, maintainer scripts, lintian",
            &["xtask", "deb"],
        ),
    ];
    for (name, args) in steps {
        if !step(name, &cargo, args) {
            return ExitCode::FAILURE;
        }
    }
    println!("xtask ci: all steps passed");
    ExitCode::SUCCESS
}

/// Crates the shipped `bmclink` binary must never link (issue 14): the
/// simulation kit, rustls and its ring (aws-lc-rs is the core's P-256
/// backend, and welcome), and the unused anyhow.
const NOT_SHIPPED: &[&str] = &["bmclink-tests", "rustls", "ring", "anyhow"];

/// The crates of `cargo tree --prefix none` output that are in
/// [`NOT_SHIPPED`], each once.
fn forbidden_in(tree: &str) -> Vec<&str> {
    let mut found: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| NOT_SHIPPED.contains(name))
        .collect();
    found.sort_unstable();
    found.dedup();
    found
}

/// `cargo tree -p bmclink-linux -e normal` shows none of [`NOT_SHIPPED`].
fn shipped_deps(cargo: &str) -> bool {
    let args = [
        "tree",
        "-p",
        "bmclink-linux",
        "-e",
        "normal",
        "--prefix",
        "none",
    ];
    println!("==> {cargo} {}", args.join(" "));
    let out = match Command::new(cargo).args(args).output() {
        Ok(o) if o.status.success() => o,
        Ok(o) => {
            eprintln!(
                "xtask ci: cargo tree failed ({}): {}",
                o.status,
                String::from_utf8_lossy(&o.stderr)
            );
            return false;
        }
        Err(e) => {
            eprintln!("xtask ci: cannot run `{cargo} tree`: {e}");
            return false;
        }
    };
    let tree = String::from_utf8_lossy(&out.stdout);
    let bad = forbidden_in(&tree);
    if bad.is_empty() {
        println!(
            "bmclink-linux's normal dependencies: none of {}",
            NOT_SHIPPED.join(", ")
        );
        return true;
    }
    eprintln!(
        "xtask ci: bmclink-linux's normal dependencies include {}; they belong in [dev-dependencies] or xtask",
        bad.join(", ")
    );
    false
}

fn audit_table(args: &[String]) -> ExitCode {
    if args.iter().any(|a| a == "--write") {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
        let readme = match std::fs::read_to_string(path) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("xtask audit-table: cannot read README.md: {e}");
                return ExitCode::FAILURE;
            }
        };
        let Some(fresh) = bmclink_tests::readme_with_audit_table(&readme) else {
            eprintln!("xtask audit-table: README.md lacks the audit-table markers");
            return ExitCode::FAILURE;
        };
        if let Err(e) = std::fs::write(path, fresh) {
            eprintln!("xtask audit-table: cannot write README.md: {e}");
            return ExitCode::FAILURE;
        }
        println!("README.md audit table updated");
        let catalog = concat!(env!("CARGO_MANIFEST_DIR"), "/../");
        let catalog = std::path::Path::new(catalog).join(bmclink_tests::CATALOG_PATH);
        if let Err(e) = std::fs::write(&catalog, bmclink_tests::catalog()) {
            eprintln!("xtask audit-table: cannot write {}: {e}", catalog.display());
            return ExitCode::FAILURE;
        }
        println!("{} updated", bmclink_tests::CATALOG_PATH);
    } else {
        print!("{}", bmclink_tests::audit_table_markdown());
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_crates_are_found_by_name_not_by_prefix() {
        let tree = "bmclink-linux v0.1.0 (/x/shim-linux)\n\
                    aws-lc-rs v1.19.0\n\
                    ring v0.17.14\n\
                    rustls-pki-types v1.15.1\n\
                    rustls v0.23.46\n\
                    ring v0.17.14\n";
        assert_eq!(forbidden_in(tree), ["ring", "rustls"]);
        assert!(
            forbidden_in("bmclink-core v0.1.0\nrustls-webpki v0.103.16\nspring v1.0.0\n")
                .is_empty()
        );
    }
}
