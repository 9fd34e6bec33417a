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

/// The start-up stack line (printed with and without `bench`).
fn start_up(log: &str) -> Result<u64, String> {
    log.lines()
        .find_map(|l| {
            l.split_once("stack peak while building the agent ")?
                .1
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .ok_or_else(|| "the image printed no start-up stack peak".to_owned())
}

/// The figures of one bench run (one image, one P-256 backend).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Figures {
    keygen: u64,
    ecdh: u64,
    sign: u64,
    verify: u64,
    handshake: u64,
    heartbeat: u64,
    stack: u64,
    start_up: u64,
    image: Image,
}

impl Figures {
    /// Reads the figures from a decoded log and the sections of its image.
    pub fn read(log: &str, elf: &Path) -> Result<Figures, String> {
        let bytes = fs::read(elf).map_err(|e| format!("{}: {e}", elf.display()))?;
        let sections = size::sections(&bytes).ok_or("the image is not an ELF file")?;
        let get =
            |name: &str| figure(log, name).ok_or(format!("the image printed no `bench {name}`"));
        Ok(Figures {
            keygen: get("p256 keygen")?,
            ecdh: get("p256 ecdh")?,
            sign: get("p256 sign")?,
            verify: get("p256 verify")?,
            handshake: get("handshake")?,
            heartbeat: get("heartbeat")?,
            stack: get("stack")?,
            start_up: start_up(log)?,
            image: Image::of(&sections),
        })
    }
}

/// The handshake goal of issue 15 with `p256-cm4`, in instructions.
pub const HANDSHAKE_GOAL: u64 = 5_500_000;

/// Whether the `p256-cm4` handshake meets [`HANDSHAKE_GOAL`], as a phrase.
pub fn handshake_verdict(cm4: &Figures) -> String {
    if cm4.handshake <= HANDSHAKE_GOAL {
        format!(
            "met: {:.2} M <= 5.5 M instructions",
            cm4.handshake as f64 / 1e6
        )
    } else {
        format!(
            "NOT met: {:.2} M > 5.5 M instructions",
            cm4.handshake as f64 / 1e6
        )
    }
}

/// The on-target table: the RustCrypto column and, when measured, the
/// `p256-cm4` one.
pub fn bench_report(rust_crypto: &Figures, cm4: Option<&Figures>) -> String {
    let m = |n: u64| format!("{:.2} M", n as f64 / 1e6);
    let k = |n: u64| format!("{:.0} k", n as f64 / 1e3);
    let b = |n: u64| format!("{n} B");
    let col = |f: &dyn Fn(&Figures) -> String| -> (String, String) {
        (
            f(rust_crypto),
            cm4.map_or_else(|| "not measured".to_owned(), f),
        )
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "QEMU {} `mps2-an386` (Cortex-M4F model), `-icount shift=0`: figures are instructions \
         executed, not cycles (QEMU is not cycle-accurate); time asleep in WFI is not counted. \
         Images: `firmware/` release (opt-level z, the P-256 crates at 3, fat LTO), `--features bench` \
         and `--features bench,p256-cm4`.\n",
        qemu_version()
    );
    let _ = writeln!(
        out,
        "| measurement | RustCrypto `p256` 0.13 | `p256-cm4` 0.3 | goal |"
    );
    let _ = writeln!(out, "|---|---|---|---|");
    let mut row = |what: &str, (a, c): (String, String), goal: &str| {
        let _ = writeln!(out, "| {what} | {a} | {c} | {goal} |");
    };
    let goal = match cm4 {
        Some(c) if c.handshake <= HANDSHAKE_GOAL => "<= 5.5 M with `p256-cm4`: met".to_owned(),
        Some(_) => "<= 5.5 M with `p256-cm4`: NOT met".to_owned(),
        None => "<= 5.5 M with `p256-cm4`".to_owned(),
    };
    row(
        "full mutual TLS 1.3 handshake + enrollment (SYN to BL2001)",
        col(&|f| m(f.handshake)),
        &goal,
    );
    row(
        "P-256 key share (public point of a scalar)",
        col(&|f| k(f.keygen)),
        "327 k cycles (P256-Cortex-M4)",
    );
    row("P-256 ECDH", col(&|f| k(f.ecdh)), "906 k");
    row(
        "ECDSA P-256 sign (SHA-256 of 130 bytes and RFC 6979 incl.)",
        col(&|f| k(f.sign)),
        "375 k",
    );
    row(
        "ECDSA P-256 verify (RustCrypto: the core's Straus-Shamir verify)",
        col(&|f| k(f.verify)),
        "976 k",
    );
    row(
        "one heartbeat round trip (PING out, PONG in, TLS both ways)",
        col(&|f| k(f.heartbeat)),
        "",
    );
    row(
        "peak stack of the running agent, painted on target",
        col(&|f| b(f.stack)),
        "<= 16 KiB",
    );
    row(
        "peak stack while building the agent at start-up (in place)",
        col(&|f| b(f.start_up)),
        "<= 16 KiB",
    );
    row(
        "image `.text` / `.rodata` / `.data` / `.bss`",
        col(&|f| {
            format!(
                "{} / {} / {} / {} B",
                f.image.text, f.image.rodata, f.image.data, f.image.bss
            )
        }),
        "",
    );
    row(
        "flash (text + rodata + data) / RAM (data + bss + deepest stack)",
        col(&|f| {
            format!(
                "{:.1} KiB / {:.1} KiB",
                f.image.flash() as f64 / 1024.0,
                (f.image.ram() + f.stack.max(f.start_up)) as f64 / 1024.0
            )
        }),
        "flash <= 256 KiB, RAM <= 64 KiB",
    );
    out
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
        let err = Figures::read(LOG, &elf).expect_err("heartbeat and ECDH are missing");
        assert!(err.contains("bench p256 ecdh"), "{err}");
    }

    fn figures(handshake: u64) -> Figures {
        Figures {
            keygen: 1,
            ecdh: 2,
            sign: 3,
            verify: 4,
            handshake,
            heartbeat: 5,
            stack: 6,
            start_up: 7,
            image: Image::default(),
        }
    }

    #[test]
    fn the_handshake_goal_is_judged_on_the_cm4_figure() {
        assert!(handshake_verdict(&figures(5_500_000)).starts_with("met"));
        assert!(handshake_verdict(&figures(5_500_001)).starts_with("NOT met"));
        let table = bench_report(&figures(31_000_000), Some(&figures(6_000_000)));
        assert!(
            table.contains("| 31.00 M | 6.00 M | <= 5.5 M with `p256-cm4`: NOT met |"),
            "{table}"
        );
        let table = bench_report(&figures(31_000_000), None);
        assert!(table.contains("| 31.00 M | not measured |"), "{table}");
    }
}
