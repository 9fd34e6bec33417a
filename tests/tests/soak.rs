//! Soak: 24 virtual hours with 10% frame loss and a BMC reboot every three
//! hours, for 20 seeds, in two variants that share one body ([`soak`]):
//!
//! - `plain`: firmware without TLS, the legacy plain channel (T5);
//! - `tls`: TLS-required firmware, trust from the bootstrap channel (the
//!   one-time account and the published fingerprint, as the enrollment
//!   scenarios start). The agent enrolls once (HELLO enrolling, ENROLL,
//!   ENROLLED, BL4006); every session after a reboot is pinned (no second
//!   ENROLL, the BMC keeps its certificate across reboots), every session
//!   is TLS 1.3 and no TLS failure is audited.
//!
//! Both: a session within ten minutes of the start and of every reboot, and
//! the OS events logged through the day all reach the BMC, in order.
//! Each variant prints its wall time and a line of counts per seed.
//!
//! A failing seed is printed with its audit trail; rerun one variant, or
//! one seed of it, alone with
//! `BMCLINK_SOAK_VARIANT=plain|tls BMCLINK_SOAK_SEED=<seed> cargo test -p bmclink-tests --test soak -- --nocapture`
//! (either variable may be left out: both variants, all 20 seeds).

use bmclink_core::agent::events::OsEvent;
use bmclink_core::audit::{AuditEvent, SessionEvent, TlsEvent};
use bmclink_core::cert::ShortFingerprint;
use bmclink_core::platform::Record;
use bmclink_core::records::PinRecord;
use bmclink_core::{Channel, Config};
use bmclink_tests::timeline;
use bmclink_tests::wire::Faults;
use bmclink_tests::{run_agent, BmcConfig, World};
use smoltcp::time::{Duration, Instant};

const SEEDS: u64 = 20;
const HOURS: i64 = 24;
const REBOOT_EVERY_H: i64 = 3;
/// How long after the start, and after a reboot, a session must be up.
const RECOVERY: Duration = Duration::from_secs(600);
/// One OS event every this many seconds.
const EVENT_EVERY_S: i64 = 1800;

/// Which channel the day runs over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// Firmware 3.20 without TLS: the legacy plain channel.
    Plain,
    /// Firmware 3.30 requiring TLS: enrolled once, then pinned.
    Tls,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Plain => "plain",
            Variant::Tls => "tls",
        }
    }

    fn bmc(self) -> BmcConfig {
        match self {
            Variant::Plain => BmcConfig {
                firmware: [3, 20, 20, 20],
                tls: false,
                ..BmcConfig::default()
            },
            // TLS required; the bootstrap channel gives the one-time
            // account and the BMC's fingerprint (`publish_fingerprint`).
            Variant::Tls => BmcConfig::default(),
        }
    }

    /// The channel every session must run over.
    fn channel(self) -> Channel {
        match self {
            Variant::Plain => Channel::Plain,
            Variant::Tls => Channel::Tls13,
        }
    }
}

/// What one seed's day looked like (printed, for the record).
#[derive(Debug)]
struct Counts {
    reboots: usize,
    sessions: usize,
    /// TLS handshakes the BMC completed.
    handshakes: usize,
    enrolls: u32,
    /// Sessions lost to a reset or closed connection (BL2006).
    resets: usize,
    /// Sessions lost to unanswered heartbeats (BL2004).
    heartbeats_missed: usize,
    /// EVENT frames the BMC took, retransmissions included.
    events_received: usize,
}

/// Runs the day for `variant` and `seed` and checks it.
fn soak(variant: Variant, seed: u64) -> Result<Counts, String> {
    timeline::take();
    let mut w = World::new(variant.bmc(), seed);
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
    let presented_at_start = bmclink_core::cert::fingerprint(w.bmc.presented_cert_der());
    run_agent(&mut w, Config::default(), Instant::from_secs(HOURS * 3600))
        .map_err(|e| format!("agent did not start: {e:?}"))?;
    let lines = timeline::take();
    check(variant, &w, &reboots, events, presented_at_start).map_err(|e| {
        let trail: Vec<String> = w
            .audit
            .iter()
            .map(|(at, e)| format!("    {at} {} {e}", e.id()))
            .collect();
        format!("{e}\n  audit trail:\n{}", trail.join("\n"))
    })?;
    Ok(Counts {
        reboots: w.bmc.state.log.count("BMC0010"),
        sessions: sessions(&w).len(),
        handshakes: lines
            .iter()
            .filter(|l| l.who == "bmc" && l.text.starts_with("TLS 1.3 up"))
            .count(),
        enrolls: w.bmc.state.enrolls,
        resets: w.audit_ids().iter().filter(|i| *i == "BL2006").count(),
        heartbeats_missed: w.audit_ids().iter().filter(|i| *i == "BL2004").count(),
        events_received: w.bmc.state.events.len(),
    })
}

/// Every session start: when, and over which channel.
fn sessions(w: &World) -> Vec<(Instant, Channel)> {
    w.audit
        .iter()
        .filter_map(|(at, e)| match e {
            AuditEvent::Session(SessionEvent::Started { channel, .. }) => Some((*at, *channel)),
            _ => None,
        })
        .collect()
}

fn check(
    variant: Variant,
    w: &World,
    reboots: &[Instant],
    events: i64,
    presented_at_start: [u8; 32],
) -> Result<(), String> {
    let sessions = sessions(w);
    let starts: Vec<Instant> = sessions.iter().map(|(at, _)| *at).collect();
    if starts.first().is_none_or(|s| *s > Instant::ZERO + RECOVERY) {
        return Err(format!("no session in the first ten minutes: {starts:?}"));
    }
    for r in reboots {
        if !starts.iter().any(|s| *s > *r && *s <= *r + RECOVERY) {
            return Err(format!(
                "no session within {RECOVERY} after the reboot at {r}"
            ));
        }
    }
    if let Some((at, channel)) = sessions.iter().find(|(_, c)| *c != variant.channel()) {
        return Err(format!(
            "the session at {at} runs over {channel:?}, not {:?}",
            variant.channel()
        ));
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
    if variant == Variant::Tls {
        check_pinned(w, presented_at_start)?;
    }
    Ok(())
}

/// The TLS variant: one enrollment, then pinned sessions only.
fn check_pinned(w: &World, presented_at_start: [u8; 32]) -> Result<(), String> {
    let bmc_fp = w.bmc.fingerprint();
    // The premise: the BMC's reboots keep its certificate.
    let presented = bmclink_core::cert::fingerprint(w.bmc.presented_cert_der());
    if presented != presented_at_start || presented != bmc_fp {
        return Err("the simulated BMC changed its certificate during the day".into());
    }
    let enrolled: Vec<(Instant, ShortFingerprint)> = w
        .audit
        .iter()
        .filter_map(|(at, e)| match e {
            AuditEvent::Tls(TlsEvent::Enrolled { bmc, .. }) => Some((*at, *bmc)),
            _ => None,
        })
        .collect();
    let short = ShortFingerprint::of(&bmc_fp);
    if !matches!(enrolled.as_slice(), [(_, bmc)] if *bmc == short) {
        let got: Vec<String> = enrolled
            .iter()
            .map(|(at, bmc)| format!("BL4006 at {at} pinning {bmc}"))
            .collect();
        return Err(format!(
            "wanted one enrollment (BL4006) pinning the BMC's certificate {short}, got {got:?}"
        ));
    }
    // The first session is the enrolling one: no session before the pin.
    if let (Some((first, _)), [(enrolled_at, _)]) = (sessions(w).first(), enrolled.as_slice()) {
        if enrolled_at > first {
            return Err(format!(
                "a session started at {first}, before the enrollment at {enrolled_at}"
            ));
        }
    }
    let st = &w.bmc.state;
    if st.enrolls != 1 || st.log.count("BMC0020") != 1 {
        return Err(format!(
            "the BMC saw {} ENROLL and bound {} times, wanted once each",
            st.enrolls,
            st.log.count("BMC0020")
        ));
    }
    let pin = w
        .store
        .records
        .get(&Record::BmcPin)
        .map(|b| PinRecord::decode(b).map(|p| p.sha256));
    if pin != Some(Ok(bmc_fp)) {
        return Err(format!(
            "the pin in the store is {pin:?}, not the BMC's certificate {bmc_fp:02x?}"
        ));
    }
    // Enrolled (checked above) and the bootstrap account's retirement are
    // the only TLS events of a good day; anything else (BL4002 pin
    // mismatch, BL4003 handshake failed, BL4013 enrollment interrupted,
    // BL4016 handshake timed out, ...) is a failure.
    let failures: Vec<String> = w
        .audit
        .iter()
        .filter(|(_, e)| match e {
            AuditEvent::Tls(TlsEvent::Enrolled { .. } | TlsEvent::BootstrapDisabled {}) => false,
            AuditEvent::Tls(_) => true,
            _ => false,
        })
        .map(|(at, e)| format!("{at} {} {e}", e.id()))
        .collect();
    if !failures.is_empty() {
        return Err(format!("TLS failures audited: {failures:#?}"));
    }
    // The BMC's side of the same: no refused HELLO, no bad ENROLL, no
    // failed handshake, no TLS error after one.
    for id in ["BMC0021", "BMC0022", "BMC0023", "BMC0024"] {
        if st.log.count(id) != 0 {
            let entries: Vec<_> = st.log.0.iter().filter(|e| e.id == id).collect();
            return Err(format!("the BMC logged {id}: {entries:?}"));
        }
    }
    Ok(())
}

/// Runs `variant` over every seed, or over what `BMCLINK_SOAK_VARIANT` and
/// `BMCLINK_SOAK_SEED` select.
fn run_variant(variant: Variant) {
    if let Ok(only) = std::env::var("BMCLINK_SOAK_VARIANT") {
        assert!(
            ["plain", "tls"].contains(&only.as_str()),
            "BMCLINK_SOAK_VARIANT is plain or tls, not {only:?}"
        );
        if only != variant.name() {
            println!(
                "soak {}: skipped (BMCLINK_SOAK_VARIANT={only})",
                variant.name()
            );
            return;
        }
    }
    let seeds: Vec<u64> = match std::env::var("BMCLINK_SOAK_SEED") {
        Ok(s) => vec![s.parse().expect("BMCLINK_SOAK_SEED is a number")],
        Err(_) => (1..=SEEDS).collect(),
    };
    let name = variant.name();
    let started = std::time::Instant::now();
    let mut failed = Vec::new();
    for seed in seeds {
        let seed_started = std::time::Instant::now();
        match soak(variant, seed) {
            Ok(c) => println!(
                "soak {name} seed {seed}: {} reboots, {} sessions, lost {} to BL2006 and {} to \
                 BL2004, {} TLS handshakes, {} ENROLL, {} EVENTs received, {:?}",
                c.reboots,
                c.sessions,
                c.resets,
                c.heartbeats_missed,
                c.handshakes,
                c.enrolls,
                c.events_received,
                seed_started.elapsed()
            ),
            Err(e) => {
                eprintln!(
                    "soak {name} seed {seed} failed: {e}\n  rerun: BMCLINK_SOAK_VARIANT={name} \
                     BMCLINK_SOAK_SEED={seed} cargo test -p bmclink-tests --test soak -- --nocapture"
                );
                failed.push(seed);
            }
        }
    }
    println!("soak {name}: wall time {:?}", started.elapsed());
    assert!(failed.is_empty(), "soak {name}: failing seeds: {failed:?}");
}

#[test]
fn sessions_come_back_after_every_bmc_reboot_for_24_hours_with_10_percent_loss() {
    run_variant(Variant::Plain);
}

#[test]
fn pinned_tls_sessions_come_back_after_every_bmc_reboot_for_24_hours_with_10_percent_loss() {
    run_variant(Variant::Tls);
}
