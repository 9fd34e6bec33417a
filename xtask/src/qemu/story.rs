//! What a run shows: the timeline printed, and the checks it must pass.

use super::{Run, Scenario};

/// Prints the image's log and the BMC's timeline as one timeline on the
/// BMC's clock: the board's SysTick time plus an offset (the two sides'
/// views of the first TCP connection). Under `-icount` virtual time runs
/// apart from wall time: two timelines.
pub fn print_timelines(run: &Run) {
    let board: Vec<(f64, String)> = run
        .log
        .lines()
        .map(|l| {
            let (t, rest) = l.split_once(' ').unwrap_or(("", l));
            let t = t.parse::<f64>().unwrap_or(0.0);
            let rest = rest
                .trim_start()
                .strip_prefix("INFO")
                .unwrap_or(rest)
                .trim_start();
            (t, rest.to_string())
        })
        .collect();
    let bmc: Vec<(f64, String)> = run
        .bmc
        .timeline()
        .lines()
        .map(|l| {
            let l = l.trim_start();
            let (t, rest) = l.split_once(" s ").unwrap_or(("", l));
            (
                t.parse::<f64>().unwrap_or(0.0),
                rest.trim_start().to_string(),
            )
        })
        .collect();
    let line = |t: f64, who: &str, text: &str| println!("{t:>10.6} s  {who:<6} {text}");
    if run.icount {
        println!("--- board (Cortex-M4F, decoded defmt; virtual seconds under -icount) ---");
        for (t, text) in &board {
            line(*t, "board", text);
        }
        println!("--- kernel BMC (wall seconds since it started listening) ---");
        for (t, text) in &bmc {
            line(*t, "", text);
        }
        return;
    }
    // The board's clock starts when QEMU has booted, a little after QEMU
    // started: align the two on the first TCP connection when both saw it.
    let first = |lines: &[(f64, String)], what: &str| {
        lines
            .iter()
            .find(|(_, text)| text.contains(what))
            .map(|(t, _)| *t)
    };
    let (offset, how) = match (first(&board, "TCP connected"), first(&bmc, "accepted")) {
        (Some(b), Some(k)) => (k - b, "aligned on the first TCP connection"),
        _ => (run.qemu_at.as_secs_f64(), "from QEMU's start"),
    };
    println!(
        "--- timeline: the board (Cortex-M4F, decoded defmt) and the kernel BMC, wall seconds \
         since the BMC listened; board time + {offset:.3} s ({how}) ---"
    );
    let mut all: Vec<(f64, u8, &str, &str)> = board
        .iter()
        .map(|(t, text)| (t + offset, 0, "board", text.as_str()))
        .chain(bmc.iter().map(|(t, text)| (*t, 1, "", text.as_str())))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    for (t, _, who, text) in all {
        line(t, who, text);
    }
}

/// What a run must show; empty when it passed.
pub fn check(scenario: Scenario, run: &Run) -> Vec<String> {
    let mut problems = Vec::new();
    let log = &run.log;
    let timeline = run.bmc.timeline();
    let mut need = |ok: bool, what: &str| {
        if !ok {
            problems.push(what.to_string());
        }
    };
    need(
        log.contains("-> ARP probe for"),
        "no RFC 5227 ARP probe from the image",
    );
    need(
        log.contains("audit BL1001"),
        "no IPv4 link-local address claimed (BL1001)",
    );
    need(
        log.contains("TLS ClientHello"),
        "no TLS ClientHello on the wire",
    );
    need(!log.contains("panic"), "the image panicked");
    if scenario == Scenario::Impostor {
        need(
            !run.qemu_ok,
            "QEMU exited 0 although the BMC presented the wrong certificate",
        );
        need(
            log.contains("audit BL4002"),
            "the wrong certificate was not refused (BL4002)",
        );
        need(
            !log.contains("audit BL4006"),
            "the image enrolled with an impostor (BL4006)",
        );
        need(
            !log.contains("audit BL2001"),
            "a session came up with an impostor (BL2001)",
        );
        need(
            !timeline.contains("ENROLL"),
            "the impostor received an ENROLL",
        );
        need(
            run.bmc.count("BMC0001") == 0,
            "the impostor saw a session (BMC0001)",
        );
        return problems;
    }
    need(
        run.qemu_ok,
        "QEMU did not exit 0 (the image's verdict: enrolled, TLS 1.3 session, BYE, no error event)",
    );
    need(log.contains("audit BL4006"), "not enrolled (BL4006)");
    let family = match scenario {
        Scenario::Ipv6Fallback => "IPv6",
        _ => "IPv4",
    };
    need(
        log.lines()
            .any(|l| l.contains("audit BL2001") && l.contains(family) && l.contains("TLS 1.3")),
        &format!("no TLS 1.3 session over {family} (BL2001)"),
    );
    need(log.contains("WELCOME"), "no WELCOME in the image's log");
    need(
        log.contains("audit BL2002"),
        "the image did not end the session with BYE (BL2002)",
    );
    need(!log.contains(" ERROR "), "the image logged an error");
    if scenario == Scenario::Ipv6Fallback {
        need(log.contains("audit BL3004"), "no fallback to IPv6 (BL3004)");
        need(
            log.contains("audit BL1101"),
            "no IPv6 link-local address claimed (BL1101)",
        );
    }
    need(
        run.bmc.count("BMC0001") >= 1,
        "the BMC saw no session (BMC0001)",
    );
    need(run.bmc.pings() >= 1, "the BMC saw no PING");
    need(timeline.contains("-> PONG"), "the BMC sent no PONG");
    need(timeline.contains("ENROLL"), "the BMC saw no ENROLL");
    need(
        run.bmc.count("BMC0002") >= 1,
        "the BMC saw no BYE (BMC0002)",
    );
    problems
}
