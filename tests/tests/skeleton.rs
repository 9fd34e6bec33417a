//! The walking skeleton end to end: the real agent against the simulated BMC
//! over the simulated segment, in virtual time.

use bmclink_core::audit::{AuditEvent, SessionEvent};
use bmclink_core::{Channel, Config, Family};
use bmclink_tests::{run_agent, timeline, BmcConfig, World};
use smoltcp::time::Instant;

fn plain_bmc() -> BmcConfig {
    BmcConfig {
        firmware: [3, 20, 20, 20],
        tls: false,
        ..BmcConfig::default()
    }
}

fn run(world: &mut World, secs: i64) {
    run_agent(world, Config::default(), Instant::from_secs(secs)).expect("agent starts");
}

fn session_start(world: &World) -> Instant {
    world
        .audit
        .iter()
        .find(|(_, e)| matches!(e, AuditEvent::Session(SessionEvent::Started { .. })))
        .map(|(at, _)| *at)
        .expect("a session started")
}

fn protocol_errors(world: &World) -> usize {
    world
        .audit
        .iter()
        .filter(|(_, e)| matches!(e, AuditEvent::Session(SessionEvent::ProtocolError { .. })))
        .count()
}

#[test]
fn agent_connects_over_plain_channel_heartbeats_and_says_bye() {
    let mut world = World::new(plain_bmc(), 7);
    run(&mut world, 42);
    let start = session_start(&world);
    // The RFC 5227 claim takes PROBE_WAIT (0–1 s) + 2 gaps of 1–2 s between
    // the 3 probes + ANNOUNCE_WAIT (2 s): 4–7 s, and the session follows.
    assert!(
        start >= Instant::from_secs(4) && start < Instant::from_secs(7),
        "{start}"
    );
    let started: Vec<_> = world
        .audit
        .iter()
        .filter_map(|(_, e)| match e {
            AuditEvent::Session(SessionEvent::Started {
                family,
                channel,
                firmware,
            }) => Some((*family, *channel, *firmware)),
            _ => None,
        })
        .collect();
    assert_eq!(started, vec![(Family::V4, Channel::Plain, [3, 20, 20, 20])]);
    // Heartbeats every 10 s: at 10, 20 and 30 s after WELCOME, before 42 s.
    assert_eq!(world.bmc.state.pings, 3);
    assert_eq!(world.bmc.state.log.count("BMC0001"), 1);
    assert_eq!(world.bmc.state.log.count("BMC0002"), 1, "clean BYE on stop");
    assert_eq!(protocol_errors(&world), 0);
    let last = world.statuses.last().expect("status pushed");
    assert!(!last.is_up());
    assert!(world.statuses.iter().any(|s| s.family == Some(Family::V4)));
}

#[test]
fn same_seed_gives_the_same_timeline() {
    let mut a = World::new(plain_bmc(), 3);
    timeline::take();
    run(&mut a, 25);
    let ta = timeline::take();
    let mut b = World::new(plain_bmc(), 3);
    run(&mut b, 25);
    let tb = timeline::take();
    assert!(!ta.is_empty());
    assert_eq!(ta, tb);
}

/// Each malformed input from the BMC ends the connection with a protocol
/// error audit event, and the agent comes back by itself.
#[test]
fn malformed_messages_from_the_bmc_close_the_connection_and_the_agent_retries() {
    let cases: &[(&str, &[u8])] = &[
        ("length zero", &[0x00, 0x00]),
        ("length over 1024", &[0x04, 0x01, 0x05]),
        ("unknown type", &[0x00, 0x05, 0x0a, 0, 0, 0, 1]),
        ("truncated PING body", &[0x00, 0x03, 0x05, 0x00, 0x01]),
        (
            "WELCOME again",
            &[0x00, 0x0b, 0x02, 1, 3, 20, 20, 20, 0, 0, 0, 0, 9],
        ),
        ("bad UTF-8 in REJECT", &[0x00, 0x04, 0x03, 0x01, 0x01, 0xff]),
    ];
    for (name, raw) in cases {
        let mut world = World::new(
            BmcConfig {
                inject_after_welcome: Some(raw.to_vec()),
                ..plain_bmc()
            },
            11,
        );
        run(&mut world, 30);
        assert!(
            protocol_errors(&world) >= 1,
            "{name}: expected a protocol error, got {:?}",
            world.audit_ids()
        );
        assert!(
            world.bmc.state.session >= 2,
            "{name}: the agent should have reconnected (sessions: {})",
            world.bmc.state.session
        );
    }
}

#[test]
fn bmc_that_stops_answering_is_declared_dead_after_three_missed_heartbeats() {
    let mut world = World::new(
        BmcConfig {
            answer_ping: false,
            ..plain_bmc()
        },
        5,
    );
    run(&mut world, 55);
    let start = session_start(&world);
    let dead: Vec<_> = world
        .audit
        .iter()
        .filter_map(|(at, e)| match e {
            AuditEvent::Session(SessionEvent::PeerDead { missed }) => Some((*at, *missed)),
            _ => None,
        })
        .collect();
    assert_eq!(dead.len(), 1, "{:?}", world.audit_ids());
    let (at, missed) = dead[0];
    assert_eq!(missed, 3);
    // PINGs at +10, +20, +30 s unanswered; the fourth tick at +40 s declares it.
    let after = at - start;
    assert!(
        after >= smoltcp::time::Duration::from_secs(40)
            && after < smoltcp::time::Duration::from_secs(41),
        "declared dead {after} after the session started"
    );
}

#[test]
fn unreachable_bmc_is_retried_with_doubling_backoff() {
    timeline::Logger::install(log::LevelFilter::Info);
    let mut world = World::new(
        BmcConfig {
            ipv4: None,
            ipv6: None,
            ..plain_bmc()
        },
        9,
    );
    timeline::take();
    run(&mut world, 120);
    let attempts: Vec<Instant> = timeline::take()
        .into_iter()
        .filter(|l| l.who == "agent" && l.text.starts_with("TCP connecting to 169.254.1.1"))
        .map(|l| l.at)
        .collect();
    assert!(attempts.len() >= 4, "{attempts:?}");
    // Each attempt times out after 5 s; the pause after it grows (1 s
    // doubling, minus up to a quarter of jitter), never beyond 60 s. The
    // first round also tried IPv6 (P4), found no BMC there and skips it in
    // the next rounds (P7), so the growth is measured from the second gap.
    let gaps: Vec<i64> = attempts[1..]
        .windows(2)
        .map(|w| (w[1] - w[0]).total_millis() as i64)
        .collect();
    for pair in gaps.windows(2) {
        assert!(pair[1] > pair[0], "backoff must grow: {gaps:?}");
    }
    assert!(
        world.audit_ids().iter().any(|id| id == "BL3009"),
        "{:?}",
        world.audit_ids()
    );
    assert_eq!(world.bmc.state.session, 0);
}
