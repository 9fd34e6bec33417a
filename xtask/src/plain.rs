//! `cargo xtask run --plain`: the agent against the simulation kit's BMC
//! with firmware without TLS (3.20.20.20), so the plain channel (T5), in
//! virtual time. This was `bmclink run --sim`; it lives here so the shipped
//! binary links no test kit. The core settings come from a shim config file
//! (`--config FILE`, the same TOML as `/etc/bmclink/bmclink.toml`, which is
//! read when no file is given and it exists), or the defaults. The run lasts `--seconds` virtual seconds (35 by default),
//! which takes milliseconds of real time, then the world asks the agent to
//! stop, as SIGTERM does on a real run; it prints the timeline (frames, BMC
//! log, status changes) and the audit events. Nothing touches a state
//! directory, the network or the hosts file: the world keeps its records in
//! memory.

use std::io::Write;

use bmclink_core::Config;
use bmclink_linux::config::ShimConfig;
use bmclink_tests::{run_agent, timeline, BmcConfig, World};
use smoltcp::time::Instant;

/// Virtual seconds a `--plain` run lasts when `--seconds` is not given.
pub const DEFAULT_SECONDS: u64 = 35;

/// The seed of the simulated world (runs are reproducible).
pub const SEED: u64 = 1;

/// The simulated BMC: firmware without TLS, so the plain channel (T5).
pub fn bmc() -> BmcConfig {
    BmcConfig {
        firmware: [3, 20, 20, 20],
        tls: false,
        ..BmcConfig::default()
    }
}

fn secs(at: Instant) -> String {
    let us = at.total_micros();
    format!("{:>6}.{:06} s", us / 1_000_000, us % 1_000_000)
}

/// Runs the agent with `cfg`'s core settings against the simulated BMC for
/// `seconds` virtual seconds; writes the timeline and the audit events to
/// `out`. `Err` (the sentence for stderr) when no session came up.
pub fn run(cfg: &ShimConfig, seconds: u64, out: &mut dyn Write) -> Result<(), String> {
    let mut world = World::new(bmc(), SEED);
    let core = Config {
        hostname: cfg.core.hostname,
        ..cfg.core.clone()
    };
    let until = Instant::from_secs(i64::try_from(seconds).unwrap_or(i64::MAX));
    run_agent(&mut world, core, until)
        .map_err(|e| format!("the agent could not start against the simulated BMC: {e:?}"))?;
    let io = |e: std::io::Error| format!("cannot write the output: {e}");
    writeln!(
        out,
        "bmclink (plain): agent vs simulated BMC (firmware 3.20.20.20, plain channel), {seconds} virtual seconds\n"
    )
    .map_err(io)?;
    for line in timeline::take() {
        writeln!(out, "{}", timeline::format_line(&line)).map_err(io)?;
    }
    writeln!(out, "\naudit events:").map_err(io)?;
    for (at, e) in &world.audit {
        writeln!(
            out,
            "  {}  {} {:<7} {}",
            secs(*at),
            e.id(),
            e.severity().as_str(),
            e
        )
        .map_err(io)?;
    }
    writeln!(out, "BMC Lifecycle log:").map_err(io)?;
    for e in &world.bmc.state.log.0 {
        writeln!(out, "  {}  {} {}", secs(e.at), e.id, e.text).map_err(io)?;
    }
    let sessions = world.statuses.iter().filter(|s| s.is_up()).count();
    let pings = world.bmc.state.pings;
    let bye = world.bmc.state.log.count("BMC0002") > 0;
    writeln!(
        out,
        "\n{sessions} session(s), {pings} heartbeat(s), BYE: {}",
        if bye { "yes" } else { "no" }
    )
    .map_err(io)?;
    if sessions == 0 {
        return Err(format!(
            "no session came up against the simulated BMC in {seconds} virtual seconds"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_run_reaches_a_session_heartbeats_and_says_bye() {
        let mut out = Vec::new();
        run(&ShimConfig::default(), 20, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("BL2001"), "{text}");
        let last = text.lines().last().unwrap();
        assert!(last.starts_with("1 session(s)"), "{last}");
        assert!(last.ends_with("BYE: yes"), "{last}");
        assert!(!last.contains(" 0 heartbeat"), "{last}");
    }

    #[test]
    fn a_plain_run_too_short_for_a_session_fails() {
        let mut out = Vec::new();
        let e = run(&ShimConfig::default(), 1, &mut out).unwrap_err();
        assert!(e.contains("no session came up"), "{e}");
    }
}
