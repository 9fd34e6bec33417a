//! `cargo xtask run`: the agent against the simulated BMC, in virtual time.

use std::process::ExitCode;

use bmclink_core::Config;
use bmclink_tests::{run_agent, timeline, BmcConfig, World};
use smoltcp::time::Instant;

pub fn main(args: &[String]) -> ExitCode {
    let mut seconds = 35u64;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seconds" => match it.next().and_then(|s| s.parse().ok()) {
                Some(s) if s > 0 => seconds = s,
                _ => {
                    eprintln!("xtask run: --seconds takes a whole number of virtual seconds > 0");
                    return ExitCode::from(2);
                }
            },
            other => {
                eprintln!("xtask run: unknown argument `{other}`");
                return ExitCode::from(2);
            }
        }
    }
    timeline::Logger::install(log::LevelFilter::Info);
    timeline::echo(true);
    println!("bmclink: agent vs simulated BMC, virtual time, {seconds} s\n");
    let bmc = BmcConfig {
        // The walking skeleton speaks the plain channel: firmware without TLS.
        firmware: [3, 20, 20, 20],
        tls: false,
        ..BmcConfig::default()
    };
    let mut world = World::new(bmc, 1);
    let cfg = Config {
        hostname: "sim-host",
        ..Config::default()
    };
    let until = Instant::from_secs(seconds as i64);
    if let Err(e) = run_agent(&mut world, cfg, until) {
        eprintln!("xtask run: the agent could not start: {e:?}");
        return ExitCode::FAILURE;
    }
    timeline::echo(false);
    println!("\naudit events:");
    for (at, e) in &world.audit {
        println!(
            "  {:>10.6} s  {} {:<7} {}",
            at.total_micros() as f64 / 1e6,
            e.id(),
            e.severity().as_str(),
            e
        );
    }
    println!("BMC Lifecycle log:");
    for e in &world.bmc.state.log.0 {
        println!(
            "  {:>10.6} s  {} {}",
            e.at.total_micros() as f64 / 1e6,
            e.id,
            e.text
        );
    }
    let started = world.audit_ids().iter().any(|id| id == "BL2001");
    let bye = world.bmc.state.log.count("BMC0002") > 0;
    let pings = world.bmc.state.pings;
    if started && bye && pings > 0 {
        println!("\nok: session up, {pings} heartbeats, clean BYE");
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "\nxtask run: expected a session (BL2001: {started}), heartbeats ({pings}) and a clean BYE ({bye})"
        );
        ExitCode::FAILURE
    }
}
