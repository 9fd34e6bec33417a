//! `cargo xtask run`: the agent against the simulated BMC, in virtual time.
//! `--scenario NAME` runs one named policy scenario instead and checks its
//! expected outcome; `--list` lists them; `--plain [--config FILE]` runs the
//! plain-channel BMC with a shim config (what `bmclink run --sim` was; see
//! `plain.rs`).

use std::process::ExitCode;

use bmclink_core::Config;
use bmclink_tests::{run_agent, scenarios, timeline, BmcConfig, World};
use smoltcp::time::Instant;

pub fn main(args: &[String]) -> ExitCode {
    let mut seconds = None;
    let mut plain = false;
    let mut config = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--list" => {
                for s in scenarios::ALL {
                    println!("{:<34} {:<4} {}", s.name, s.row, s.about);
                }
                return ExitCode::SUCCESS;
            }
            "--scenario" => match it.next() {
                Some(name) => return scenario(name),
                None => {
                    eprintln!("xtask run: --scenario takes a name (see --list)");
                    return ExitCode::from(2);
                }
            },
            "--plain" => plain = true,
            "--config" => match it.next() {
                Some(path) => config = Some(std::path::PathBuf::from(path)),
                None => {
                    eprintln!("xtask run: --config takes a file (the shim's TOML config)");
                    return ExitCode::from(2);
                }
            },
            "--seconds" => match it.next().and_then(|s| s.parse().ok()) {
                Some(s) if s > 0 => seconds = Some(s),
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
    if plain {
        return plain_run(
            config.as_deref(),
            seconds.unwrap_or(crate::plain::DEFAULT_SECONDS),
        );
    }
    if config.is_some() {
        eprintln!("xtask run: --config is for --plain only");
        return ExitCode::from(2);
    }
    let seconds = seconds.unwrap_or(35);
    timeline::Logger::install(log::LevelFilter::Info);
    timeline::echo(true);
    println!("bmclink: agent vs simulated BMC, virtual time, {seconds} s\n");
    // iDRAC-like firmware 3.30.30.30: TLS required, IPv6 on the USBNIC. The
    // agent enrolls over the bootstrap channel, then runs mutual TLS 1.3.
    let mut world = World::new(BmcConfig::default(), 1);
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
    print_audit(&world);
    // HELLO(enrolling), ENROLL, ENROLLED (checked: BL4006), WELCOME (BL2001).
    let started = world.audit_ids().iter().any(|id| id == "BL2001")
        && world.audit_ids().iter().any(|id| id == "BL4006")
        && world.bmc.state.enrolls == 1;
    let bye = world.bmc.state.log.count("BMC0002") > 0;
    let pings = world.bmc.state.pings;
    if started && bye && pings > 0 {
        println!("\nok: session up, {pings} heartbeats, clean BYE");
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "\nxtask run: expected enrollment and a TLS session (BL4006, BL2001: {started}), heartbeats ({pings}) and a clean BYE ({bye})"
        );
        ExitCode::FAILURE
    }
}

/// `--plain`: the plain-channel run with the shim's config (exit 2 on a bad
/// config file, 1 when no session came up, as `bmclink run --sim` did).
fn plain_run(config: Option<&std::path::Path>, seconds: u64) -> ExitCode {
    // As `bmclink run --sim` did: the file given, else
    // /etc/bmclink/bmclink.toml when present, else the defaults.
    let cfg = match bmclink_linux::config::load(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("xtask run: {e}");
            return ExitCode::from(2);
        }
    };
    let stdout = std::io::stdout();
    match crate::plain::run(&cfg, seconds, &mut stdout.lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("xtask run: {why}");
            ExitCode::FAILURE
        }
    }
}

/// Prints the audit events and the BMC's Lifecycle log.
fn print_audit(world: &World) {
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
}

/// Runs the named scenario, prints its timeline and audit events, and
/// exits non-zero when its expected outcome does not hold.
fn scenario(name: &str) -> ExitCode {
    let Some(s) = scenarios::find(name) else {
        eprintln!("xtask run: no scenario `{name}` (see --list)");
        return ExitCode::from(2);
    };
    timeline::Logger::install(log::LevelFilter::Info);
    println!("bmclink scenario {} ({}): {}\n", s.name, s.row, s.about);
    let o = (s.run)();
    if let Some(first) = &o.first {
        println!("-- first run --\n{}", first.timeline_text());
        print_audit(&first.world);
        println!("\n-- second run --");
    }
    println!("{}", o.timeline_text());
    print_audit(&o.world);
    match (s.check)(&o) {
        Ok(()) => {
            println!("\nok: {} holds", s.name);
            ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("\nxtask run: scenario {} does not hold: {why}", s.name);
            ExitCode::FAILURE
        }
    }
}
