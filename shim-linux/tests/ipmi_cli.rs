//! The bootstrap channel from the command line, on any host: errors a person
//! can act on when there is no IPMI device, and `install` naming the trust
//! source it found.

use std::process::Command;

fn bmclink(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_bmclink"))
        .args(args)
        .output()
        .expect("run bmclink")
}

#[test]
fn bootstrap_show_on_a_missing_device_names_it_and_exits_1() {
    let out = bmclink(&["bootstrap", "show", "--device", "/nonexistent/ipmi0"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the IPMI device /nonexistent/ipmi0 does not exist"),
        "{err}"
    );
    let out = bmclink(&["bootstrap", "disable", "--device", "/dev/null"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Get Bootstrap Account Credentials") && err.contains("refused the request"),
        "{err}"
    );
}

#[test]
fn bootstrap_timeouts_out_of_range_are_usage_errors() {
    let out = bmclink(&["bootstrap", "show", "--timeout-ms", "0"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn install_says_which_trust_source_it_found() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    let state = t.path().join("state");
    let out = bmclink(&[
        "install",
        "--root",
        root.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let has_ipmi = ["/dev/ipmi0", "/dev/ipmi/0", "/dev/ipmidev/0"]
        .iter()
        .any(|p| std::path::Path::new(p).exists());
    let want = if has_ipmi {
        "bootstrap (trust source): IPMI"
    } else {
        "bootstrap (trust source): none"
    };
    assert!(text.contains(want), "{text}");
}
