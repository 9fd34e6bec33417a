//! `cargo xtask`: the project's own commands.
//!
//! - `run [--seconds N]`: the main job: the agent against the in-process
//!   simulated BMC, in virtual time, printing the timeline; exits 0 only when
//!   a session came up, heartbeated and ended with BYE.
//! - `fuzz [TARGET] [--seconds N]`: runs one or every cargo-fuzz target
//!   (default 60 s each) and reports exec/s, coverage and crashes.
//! - `ci`: adds the thumbv7em target, rustfmt and clippy when rustup lacks
//!   them, then everything CI checks: fmt, clippy `-D warnings`, all tests, the
//!   `thumbv7em-none-eabihf` build of the core, the firmware's size and its
//!   boot on QEMU (`qemu`).
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

use std::process::{Command, ExitCode};

mod bench;
mod fuzz;
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
        "help" | "--help" | "-h" => {
            println!(
                "usage: cargo xtask <run [--seconds N] [--scenario NAME | --list] | ci | audit-table [--write] | size [--write] | bench | qemu [--bench] [--backend rustcrypto|cm4|both] [--scenario ipv4|ipv6-fallback|impostor] | fuzz [TARGET] [--seconds N]>"
            );
            ExitCode::SUCCESS
        }
        other => {
            eprintln!("xtask: unknown command `{other}` (try `cargo xtask help`)");
            ExitCode::from(2)
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
        ("firmware size and RAM budgets", &["xtask", "size"]),
        (
            "firmware booted on QEMU mps2-an386 against the kernel BMC (root)",
            &["xtask", "qemu"],
        ),
        ("main job", &["xtask", "run"]),
    ];
    for (name, args) in steps {
        if !step(name, &cargo, args) {
            return ExitCode::FAILURE;
        }
    }
    println!("xtask ci: all steps passed");
    ExitCode::SUCCESS
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
    } else {
        print!("{}", bmclink_tests::audit_table_markdown());
    }
    ExitCode::SUCCESS
}
