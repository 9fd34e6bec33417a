//! The agent under a misbehaving link and BMC, all seeded and in virtual
//! time: loss, corruption, duplication, reordering, delay, link flaps, BMC
//! reboots, a slow BMC; and OS events delivered through all of it exactly
//! once and in order (the BMC drops repeats by sequence number, as the
//! protocol allows at-least-once delivery).

use bmclink_core::agent::events::{OsEvent, DROPPED_ID, EVENT_QUEUE};
use bmclink_core::audit::{AuditEvent, SessionEvent};
use bmclink_core::Config;
use bmclink_tests::wire::Faults;
use bmclink_tests::{run_agent, BmcConfig, World};
use smoltcp::time::{Duration, Instant};

fn plain_bmc() -> BmcConfig {
    BmcConfig {
        firmware: [3, 20, 20, 20],
        tls: false,
        ..BmcConfig::default()
    }
}

fn world(seed: u64, faults: Faults) -> World {
    let w = World::new(plain_bmc(), seed);
    w.segment.set_tap(false);
    w.segment.set_faults(faults);
    w
}

fn run(world: &mut World, secs: i64) {
    run_agent(world, Config::default(), Instant::from_secs(secs)).expect("agent starts");
}

/// Times a session started.
fn sessions(world: &World) -> Vec<Instant> {
    world
        .audit
        .iter()
        .filter(|(_, e)| matches!(e, AuditEvent::Session(SessionEvent::Started { .. })))
        .map(|(at, _)| *at)
        .collect()
}

fn os_event(i: usize) -> OsEvent {
    OsEvent::new(3, "OS0001", &format!("host event {i}"))
}

/// Schedules event `i` for every `(i, at)`.
fn schedule_events(world: &mut World, times: impl IntoIterator<Item = (usize, Instant)>) {
    for (i, at) in times {
        world.at(at, move |w| w.os_events.push_back(os_event(i)));
    }
}

/// What the BMC stored, repeats (same sequence number) removed: `(id, text)`.
fn delivered(world: &World) -> Vec<(String, String)> {
    let mut seen = std::collections::HashSet::new();
    world
        .bmc
        .state
        .events
        .iter()
        .filter(|(seq, _, _)| seen.insert(*seq))
        .map(|(_, id, text)| (id.clone(), text.clone()))
        .collect()
}

fn expected(range: std::ops::Range<usize>) -> Vec<(String, String)> {
    range
        .map(|i| ("OS0001".to_string(), format!("host event {i}")))
        .collect()
}

#[test]
fn session_comes_up_and_heartbeats_through_loss_corruption_duplicates_and_reordering() {
    let faults = Faults {
        loss_pct: 10,
        corrupt_pct: 5,
        duplicate_pct: 10,
        jitter_us: 20_000,
    };
    let mut w = world(11, faults);
    run(&mut w, 300);
    let (sent, dropped) = w.segment.counters();
    assert!(
        dropped * 20 > sent,
        "faults were injected: {dropped}/{sent}"
    );
    assert!(!sessions(&w).is_empty(), "no session");
    assert!(w.bmc.state.pings >= 10, "{} PINGs", w.bmc.state.pings);
}

#[test]
fn events_are_delivered_exactly_once_in_order_with_30_percent_loss_and_corruption() {
    let faults = Faults {
        loss_pct: 30,
        corrupt_pct: 30,
        ..Faults::default()
    };
    let mut w = world(5, faults);
    // Fewer than the queue holds, so none may be dropped however long the
    // session takes to come up.
    let n = EVENT_QUEUE - 2;
    schedule_events(
        &mut w,
        (0..n).map(|i| (i, Instant::from_secs(i as i64 * 10))),
    );
    run(&mut w, 900);
    let s = sessions(&w);
    assert!(!s.is_empty(), "no session");
    println!("sessions at {s:?}");
    assert_eq!(delivered(&w), expected(0..n));
}

#[test]
fn link_flap_mid_session_brings_the_session_back_and_loses_no_event() {
    let mut w = world(3, Faults::default());
    schedule_events(
        &mut w,
        (0..20).map(|i| (i, Instant::from_secs(10 + i as i64 * 3))),
    );
    w.at(Instant::from_secs(20), |w| w.segment.set_link(false));
    w.at(Instant::from_secs(40), |w| w.segment.set_link(true));
    run(&mut w, 150);
    let s = sessions(&w);
    assert!(s.len() >= 2, "sessions at {s:?}");
    assert!(s[1] > Instant::from_secs(40));
    assert_eq!(delivered(&w), expected(0..20));
}

#[test]
fn bmc_reboot_mid_session_reconnects_and_delivers_events_queued_meanwhile() {
    let mut w = world(4, Faults::default());
    // As many events as the agent's queue holds (EVENT_QUEUE - 2), most of
    // them raised while the BMC is down; the overflow path has its own test.
    let n = EVENT_QUEUE - 2;
    schedule_events(
        &mut w,
        (0..n).map(|i| (i, Instant::from_secs(10 + i as i64 * 2))),
    );
    w.at(Instant::from_secs(25), |w| {
        let now = w.clock.now();
        w.bmc.reboot(now);
        w.bmc.set_up(false);
    });
    w.at(Instant::from_secs(60), |w| w.bmc.set_up(true));
    run(&mut w, 200);
    let s = sessions(&w);
    assert!(s.len() >= 2, "sessions at {s:?}");
    assert!(s[1] >= Instant::from_secs(60), "{s:?}");
    assert_eq!(w.bmc.state.log.count("BMC0010"), 1);
    assert_eq!(delivered(&w), expected(0..n));
}

#[test]
fn slow_bmc_with_delayed_frames_still_gets_a_session_and_every_event() {
    let mut w = world(6, Faults::default());
    w.segment.set_latency(Duration::from_millis(400));
    schedule_events(
        &mut w,
        (0..10).map(|i| (i, Instant::from_secs(i as i64 * 4))),
    );
    run(&mut w, 120);
    let s = sessions(&w);
    assert_eq!(s.len(), 1, "one session, never dropped: {s:?}");
    assert_eq!(delivered(&w), expected(0..10));
}

#[test]
fn overflow_while_disconnected_drops_the_oldest_and_reports_the_count() {
    let mut w = world(8, Faults::default());
    // The BMC is down for the first minute; the host logs 100 events.
    w.bmc.set_up(false);
    for i in 0..100 {
        w.os_events.push_back(os_event(i));
    }
    w.at(Instant::from_secs(60), |w| w.bmc.set_up(true));
    run(&mut w, 150);
    let got = delivered(&w);
    let kept = EVENT_QUEUE - 1;
    let lost = 100 - kept;
    assert_eq!(got.len(), kept + 1, "{got:?}");
    assert_eq!(got[0].0, DROPPED_ID);
    assert!(
        got[0].1.starts_with(&format!("{lost} OS events dropped")),
        "{}",
        got[0].1
    );
    assert_eq!(got[1..], expected(lost..100)[..]);
}

/// The local audit records of the queue overflowing: (dropped, total).
fn drop_audits(world: &World) -> Vec<(u32, u32)> {
    world
        .audit
        .iter()
        .filter_map(|(_, e)| match e {
            AuditEvent::Session(SessionEvent::OsEventsDropped { dropped, total }) => {
                assert_eq!(e.id().to_string(), DROPPED_ID, "local and BMC IDs agree");
                Some((*dropped, *total))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn overflow_is_audited_locally_once_per_burst_with_the_count() {
    let mut w = world(9, Faults::default());
    // First burst: 100 events while the BMC is down.
    w.bmc.set_up(false);
    for i in 0..100 {
        w.os_events.push_back(os_event(i));
    }
    w.at(Instant::from_secs(60), |w| w.bmc.set_up(true));
    // Second burst, long after the queue drained: 40 events at once.
    w.at(Instant::from_secs(120), |w| {
        for i in 100..140 {
            w.os_events.push_back(os_event(i));
        }
    });
    run(&mut w, 200);
    // A burst into an empty queue keeps EVENT_QUEUE - 1 events (one slot
    // holds the drop report) and drops the rest.
    let first = u32::try_from(100 - (EVENT_QUEUE - 1)).unwrap();
    let second = u32::try_from(40 - (EVENT_QUEUE - 1)).unwrap();
    assert_eq!(
        drop_audits(&w),
        vec![(first, first), (second, first + second)],
        "one local audit per burst"
    );
    // The BMC saw both drop reports too, with the same counts.
    let reports: Vec<String> = w
        .bmc
        .state
        .events
        .iter()
        .filter(|(_, id, _)| id == DROPPED_ID)
        .map(|(_, _, text)| text.clone())
        .collect();
    assert!(
        reports
            .iter()
            .any(|t| t.starts_with(&format!("{first} OS events dropped")))
            && reports
                .iter()
                .any(|t| t.starts_with(&format!("{second} OS events dropped"))),
        "{reports:?}"
    );
}
