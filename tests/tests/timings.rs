//! Start → session in virtual time, over 20 seeds, against the RFC floors
//! (IPv4: the RFC 5227 claim, 4–7 s of timers; IPv6: DAD 1 s + discovery).
//! `cargo test -p bmclink-tests --test timings -- --nocapture` prints them.

use bmclink_core::{Config, Family};
use bmclink_tests::scenarios::{config, plain_bmc, run_world};
use bmclink_tests::{BmcConfig, World};

/// Seconds from start to the first session, and its family, per seed.
fn start_to_session(bmc: &BmcConfig, cfg: &Config) -> Vec<(f64, Family)> {
    (1..=20)
        .map(|seed| {
            let o = run_world(World::new(bmc.clone(), seed), cfg.clone(), 40);
            let (at, family) = o.sessions()[0];
            (at.total_micros() as f64 / 1e6, family)
        })
        .collect()
}

fn range(name: &str, runs: &[(f64, Family)]) -> (f64, f64) {
    let min = runs.iter().map(|r| r.0).fold(f64::MAX, f64::min);
    let max = runs.iter().map(|r| r.0).fold(0.0, f64::max);
    let mean = runs.iter().map(|r| r.0).sum::<f64>() / runs.len() as f64;
    println!("{name:<34} min {min:6.3} s  mean {mean:6.3} s  max {max:6.3} s");
    (min, max)
}

#[test]
fn start_to_session_times_sit_on_the_rfc_floors() {
    let v6_only = BmcConfig {
        ipv4: None,
        ..plain_bmc()
    };
    let race = Config {
        race: true,
        ..config()
    };
    let v4 = start_to_session(&plain_bmc(), &config());
    let seq = start_to_session(&v6_only, &config());
    let raced = start_to_session(&v6_only, &race);
    assert!(v4.iter().all(|r| r.1 == Family::V4));
    assert!(seq.iter().chain(&raced).all(|r| r.1 == Family::V6));
    let (v4_min, v4_max) = range("IPv4 (claim + connect)", &v4);
    let (seq_min, _) = range("IPv6-only BMC, sequential", &seq);
    let (_, race_max) = range("IPv6-only BMC, race mode", &raced);
    // IPv4: the claim's timers (4–7 s) plus a few round trips of 50 µs.
    assert!(v4_min >= 4.0 && v4_max < 7.01, "{v4:?}");
    // Sequential: IPv6 only after IPv4 failed (claim + connect timeout).
    assert!(seq_min > v4_min, "{seq:?}");
    // Race mode: IPv6 starts at once, DAD 1 s + discovery, beats sequential.
    assert!(race_max < seq_min, "{raced:?} vs {seq:?}");
}
