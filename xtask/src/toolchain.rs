//! What `cargo xtask ci` needs from rustup, brought when missing: the
//! `thumbv7em-none-eabihf` standard library (the firmware and no_std
//! builds), rustfmt and clippy, for the toolchain that runs this xtask.
//!
//! Only `rustup target add` and `rustup component add` for the toolchain in
//! use: never `rustup update` or a toolchain install, which on a machine
//! whose `stable` is pinned (the project is tested on 1.95.0) could move
//! `stable` to a release without that target.

use std::process::Command;

/// The cross target the firmware and the no_std check build for.
pub const FIRMWARE_TARGET: &str = "thumbv7em-none-eabihf";
/// The components the CI steps run.
pub const COMPONENTS: [&str; 2] = ["rustfmt", "clippy"];

/// Adds what is missing, one line each; false when rustup failed to add it
/// (the step that needs it then fails with its own message too).
pub fn ensure() -> bool {
    let Some(toolchain) = active_toolchain() else {
        println!("==> toolchain: no rustup found; assuming {FIRMWARE_TARGET}, rustfmt and clippy are installed");
        return true;
    };
    let mut ok = true;
    let targets = rustup(&["target", "list", "--installed", "--toolchain", &toolchain]);
    if !targets
        .as_deref()
        .is_some_and(|t| has_target(t, FIRMWARE_TARGET))
    {
        println!("==> toolchain {toolchain}: adding target {FIRMWARE_TARGET} (rustup target add)");
        ok &= run(&["target", "add", "--toolchain", &toolchain, FIRMWARE_TARGET]);
    }
    let components = rustup(&[
        "component",
        "list",
        "--installed",
        "--toolchain",
        &toolchain,
    ]);
    let missing = missing_components(components.as_deref().unwrap_or(""));
    if !missing.is_empty() {
        println!(
            "==> toolchain {toolchain}: adding {} (rustup component add)",
            missing.join(", ")
        );
        let mut args = vec!["component", "add", "--toolchain", &toolchain];
        args.extend(missing.iter().copied());
        ok &= run(&args);
    }
    ok
}

/// The toolchain running this build: rustup's proxy sets RUSTUP_TOOLCHAIN
/// for cargo and everything it runs; else what `rustup show
/// active-toolchain` names.
fn active_toolchain() -> Option<String> {
    if let Ok(t) = std::env::var("RUSTUP_TOOLCHAIN") {
        if !t.is_empty() {
            return Some(t);
        }
    }
    rustup(&["show", "active-toolchain"]).and_then(|out| toolchain_name(&out))
}

/// The first word of `rustup show active-toolchain`'s output
/// (`stable-x86_64-unknown-linux-gnu (default)`).
fn toolchain_name(out: &str) -> Option<String> {
    out.split_whitespace().next().map(str::to_owned)
}

/// Whether `rustup target list --installed` printed `target`.
fn has_target(list: &str, target: &str) -> bool {
    list.lines().any(|l| l.trim() == target)
}

/// The [`COMPONENTS`] absent from `rustup component list --installed`
/// (whose lines carry the host triple: `clippy-x86_64-unknown-linux-gnu`).
fn missing_components(list: &str) -> Vec<&'static str> {
    COMPONENTS
        .into_iter()
        .filter(|c| {
            !list.lines().any(|l| {
                let l = l.trim();
                l == *c || l.strip_prefix(c).is_some_and(|rest| rest.starts_with('-'))
            })
        })
        .collect()
}

fn rustup(args: &[&str]) -> Option<String> {
    let out = Command::new("rustup").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn run(args: &[&str]) -> bool {
    match Command::new("rustup").args(args).status() {
        Ok(s) if s.success() => true,
        Ok(s) => {
            eprintln!("xtask ci: `rustup {}` failed ({s})", args.join(" "));
            false
        }
        Err(e) => {
            eprintln!("xtask ci: cannot run rustup: {e}");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_installed_target_is_found_by_its_whole_line() {
        let list = "thumbv7em-none-eabihf\nx86_64-unknown-linux-gnu\n";
        assert!(has_target(list, FIRMWARE_TARGET));
        assert!(!has_target("x86_64-unknown-linux-gnu\n", FIRMWARE_TARGET));
        assert!(!has_target("thumbv7em-none-eabi\n", FIRMWARE_TARGET));
    }

    #[test]
    fn components_are_matched_with_their_host_suffix() {
        let all = "cargo-x86_64-unknown-linux-gnu\nclippy-x86_64-unknown-linux-gnu\nrustfmt-x86_64-unknown-linux-gnu\n";
        assert!(missing_components(all).is_empty());
        assert_eq!(
            missing_components("cargo-x86_64-unknown-linux-gnu\nrustc-x86_64-unknown-linux-gnu\n"),
            vec!["rustfmt", "clippy"]
        );
        // A component whose name merely starts with another's is not it.
        assert_eq!(missing_components("clippyish\nrustfmt\n"), vec!["clippy"]);
    }

    #[test]
    fn the_active_toolchain_is_the_first_word() {
        assert_eq!(
            toolchain_name("stable-x86_64-unknown-linux-gnu (default)\n").as_deref(),
            Some("stable-x86_64-unknown-linux-gnu")
        );
        assert_eq!(toolchain_name(""), None);
    }
}
