//! Soak: 24 virtual hours with 10% frame loss and a BMC reboot every three
//! hours, for 20 seeds. After every reboot the session must come back within
//! ten minutes, and OS events logged through the day must all reach the BMC.
//!
//! A failing seed is printed; rerun it alone with
//! `BMCLINK_SOAK_SEED=<seed> cargo test -p bmclink-tests --test soak`.

use bmclink_core::agent::events::OsEvent;
use bmclink_core::audit::{AuditEvent, SessionEvent};
use bmclink_core::Config;
use bmclink_tests::wire::Faults;
use bmclink_tests::{run_agent, BmcConfig, World};
use smoltcp::time::{Duration, Instant};

const SEEDS: u64 = 20;
const HOURS: i64 = 24;
const REBOOT_EVERY_H: i64 = 3;
/// How long after a reboot a new session must be up.
const RECOVERY: Duration = Duration::from_secs(600);
/// One OS event every this many seconds.
const EVENT_EVERY_S: i64 = 1800;

fn soak(seed: u64) -> Result<(), String> {
    let bmc = BmcConfig {
        firmware: [3, 20, 20, 20],
        tls: false,
        ..BmcConfig::default()
    };
    let mut w = World::new(bmc, seed);
    w.segment.set_tap(false);
    w.segment.set_faults(Faults {
        loss_pct: 10,
        ..Faults::default()
    });
    let reboots: Vec<Instant> = (1..HOURS / REBOOT_EVERY_H)
        .map(|k| Instant::from_secs(k * REBOOT_EVERY_H * 3600))
        .collect();
    for &at in &reboots {
        w.at(at, |w| {
            let now = w.clock.now();
            w.bmc.reboot(now);
        });
    }
    let events = HOURS * 3600 / EVENT_EVERY_S;
    for i in 0..events {
        w.at(Instant::from_secs(i * EVENT_EVERY_S + 60), move |w| {
            w.os_events
                .push_back(OsEvent::new(3, "OS0001", &format!("soak event {i}")))
        });
    }
    run_agent(&mut w, Config::default(), Instant::from_secs(HOURS * 3600))
        .map_err(|e| format!("agent did not start: {e:?}"))?;
    let starts: Vec<Instant> = w
        .audit
        .iter()
        .filter(|(_, e)| matches!(e, AuditEvent::Session(SessionEvent::Started { .. })))
        .map(|(at, _)| *at)
        .collect();
    if starts.first().is_none_or(|s| *s > Instant::from_secs(600)) {
        return Err(format!("no session in the first ten minutes: {starts:?}"));
    }
    for r in &reboots {
        if !starts.iter().any(|s| *s > *r && *s <= *r + RECOVERY) {
            return Err(format!(
                "no session within {RECOVERY} after the reboot at {r}"
            ));
        }
    }
    let mut seen = std::collections::HashSet::new();
    let got: Vec<&str> = w
        .bmc
        .state
        .events
        .iter()
        .filter(|(seq, _, _)| seen.insert(*seq))
        .map(|(_, _, text)| text.as_str())
        .collect();
    let want: Vec<String> = (0..events).map(|i| format!("soak event {i}")).collect();
    if got != want {
        return Err(format!("events delivered {got:?}, wanted {want:?}"));
    }
    Ok(())
}

#[test]
fn sessions_come_back_after_every_bmc_reboot_for_24_hours_with_10_percent_loss() {
    let seeds: Vec<u64> = match std::env::var("BMCLINK_SOAK_SEED") {
        Ok(s) => vec![s.parse().expect("BMCLINK_SOAK_SEED is a number")],
        Err(_) => (1..=SEEDS).collect(),
    };
    let started = std::time::Instant::now();
    let mut failed = Vec::new();
    for seed in seeds {
        if let Err(e) = soak(seed) {
            eprintln!(
                "soak seed {seed} failed: {e}\n  rerun: BMCLINK_SOAK_SEED={seed} cargo test -p bmclink-tests --test soak"
            );
            failed.push(seed);
        }
    }
    println!("soak: wall time {:?}", started.elapsed());
    assert!(failed.is_empty(), "failing seeds: {failed:?}");
}
