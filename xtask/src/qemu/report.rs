//! The on-target table of BENCHMARKS.md, from the image's `bench` lines.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::Command;

use crate::size::{self, Image};

/// `bench NAME VALUE ...` lines of the image's log.
fn figure(log: &str, name: &str) -> Option<u64> {
    log.lines().find_map(|l| {
        let rest = l.split_once(&format!("bench {name} "))?.1;
        rest.split_whitespace().next()?.parse().ok()
    })
}

pub fn bench_report(log: &str, elf: &Path) -> Result<String, String> {
    let bytes = fs::read(elf).map_err(|e| format!("{}: {e}", elf.display()))?;
    let sections = size::sections(&bytes).ok_or("the image is not an ELF file")?;
    let image = Image::of(&sections);
    let get = |name: &str| figure(log, name).ok_or(format!("the image printed no `bench {name}`"));
    let (keygen, ecdh, sign, verify) = (
        get("p256 keygen")?,
        get("p256 ecdh")?,
        get("p256 sign")?,
        get("p256 verify")?,
    );
    let handshake = get("handshake")?;
    let heartbeat = get("heartbeat")?;
    let stack = get("stack")?;
    let start_up = log
        .lines()
        .find_map(|l| {
            l.split_once("stack peak while building the agent ")?
                .1
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .ok_or("the image printed no start-up stack peak")?;
    let m = |n: u64| format!("{:.2} M", n as f64 / 1e6);
    let k = |n: u64| format!("{:.0} k", n as f64 / 1e3);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "QEMU {} `mps2-an386` (Cortex-M4F model), `-icount shift=0`: figures are instructions \
         executed, not cycles (QEMU is not cycle-accurate); time asleep in WFI is not counted. \
         Image: `firmware/` release (opt-level z, the P-256 crates at 3, fat LTO), `--features bench`.\n",
        qemu_version()
    );
    let _ = writeln!(
        out,
        "| measurement | RustCrypto `p256` 0.13 | `p256-cm4` | goal |"
    );
    let _ = writeln!(out, "|---|---|---|---|");
    let _ = writeln!(out, "| full mutual TLS 1.3 handshake + enrollment (SYN to BL2001) | {} | not yet linked | <= 5.5 M with `p256-cm4` |", m(handshake));
    let _ = writeln!(out, "| P-256 key share (scalar + public point) | {} | not yet linked | 327 k cycles (P256-Cortex-M4) |", k(keygen));
    let _ = writeln!(out, "| P-256 ECDH | {} | not yet linked | 906 k |", k(ecdh));
    let _ = writeln!(
        out,
        "| ECDSA P-256 sign (SHA-256 of 130 bytes incl.) | {} | not yet linked | 375 k |",
        k(sign)
    );
    let _ = writeln!(
        out,
        "| ECDSA P-256 verify, `ecdsa` 0.16 stock | {} | not yet linked | 976 k |",
        k(verify)
    );
    let _ = writeln!(
        out,
        "| one heartbeat round trip (PING out, PONG in, TLS both ways) | {} | | |",
        k(heartbeat)
    );
    let _ = writeln!(
        out,
        "| peak stack of the running agent, painted on target | {stack} B | | <= 16 KiB |"
    );
    let _ = writeln!(
        out,
        "| peak stack once at start-up (`AgentBuffers::new()` and `Agent::new` return by value) | {start_up} B | | |"
    );
    let _ = writeln!(
        out,
        "| image `.text` / `.rodata` / `.data` / `.bss` | {} / {} / {} / {} B | | |",
        image.text, image.rodata, image.data, image.bss
    );
    let _ = writeln!(
        out,
        "| flash (text + rodata + data) / RAM (data + bss + running stack) | {:.1} KiB / {:.1} KiB | | flash <= 256 KiB, RAM <= 64 KiB |",
        image.flash() as f64 / 1024.0,
        (image.ram() + stack) as f64 / 1024.0
    );
    Ok(out)
}

fn qemu_version() -> String {
    Command::new("qemu-system-arm")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(3).map(str::to_string))
        })
        .unwrap_or_else(|| "?".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines as `defmt-print --log-format "{t} {L} {s}"` prints them.
    const LOG: &str = "0.048338 INFO  bench p256 keygen 6791880 instructions\n\
                       22.000467 INFO  bench handshake 31641640 instructions\n\
                       22.000470 INFO  bench stack 11780 bytes\n";

    #[test]
    fn bench_figures_are_read_from_the_decoded_log() {
        assert_eq!(figure(LOG, "p256 keygen"), Some(6_791_880));
        assert_eq!(figure(LOG, "handshake"), Some(31_641_640));
        assert_eq!(figure(LOG, "stack"), Some(11_780));
    }

    #[test]
    fn a_figure_the_image_did_not_print_is_none() {
        assert_eq!(figure(LOG, "heartbeat"), None);
        // "stack-so-far" is another figure, not "stack".
        assert_eq!(
            figure("1.0 INFO  bench stack-so-far 4432 bytes at BL1001", "stack"),
            None
        );
    }

    #[test]
    fn the_bench_table_needs_every_figure() {
        let elf = std::env::current_exe().expect("the test binary is an ELF file");
        let err = bench_report(LOG, &elf).expect_err("heartbeat and ECDH are missing");
        assert!(err.contains("bench p256 ecdh"), "{err}");
    }
}
