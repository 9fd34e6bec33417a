//! DESIGN §4 rows T1–T8, B1 and B4 through the whole agent against the
//! simulated BMC's rustls server, in virtual time.

use bmclink_core::agent::identity::{self, ClientIdentity};
use bmclink_core::audit::{AuditEvent, SessionEvent};
use bmclink_core::cert;
use bmclink_core::platform::Record;
use bmclink_core::records::PinRecord;
use bmclink_core::{Channel, Config};
use bmclink_tests::bmc_tls::TlsTamper;
use bmclink_tests::{run_agent, BmcConfig, World};
use smoltcp::time::Instant;

const TEN_YEARS: u64 = 3_652 * 86_400;

fn run(world: &mut World, until_secs: i64) {
    run_agent(world, Config::default(), Instant::from_secs(until_secs)).expect("agent starts");
}

fn channels(world: &World) -> Vec<(Instant, Channel)> {
    world
        .audit
        .iter()
        .filter_map(|(at, e)| match e {
            AuditEvent::Session(SessionEvent::Started { channel, .. }) => Some((*at, *channel)),
            _ => None,
        })
        .collect()
}

fn sessions_after(world: &World, secs: i64) -> Vec<(Instant, Channel)> {
    channels(world)
        .into_iter()
        .filter(|(at, _)| *at > Instant::from_secs(secs))
        .collect()
}

fn has(world: &World, id: &str) -> bool {
    world.audit_ids().iter().any(|i| i == id)
}

fn count(world: &World, id: &str) -> usize {
    world.audit_ids().iter().filter(|i| *i == id).count()
}

fn pin(world: &World) -> Option<[u8; 32]> {
    world
        .store
        .records
        .get(&Record::BmcPin)
        .map(|b| PinRecord::decode(b).expect("pin decodes").sha256)
}

/// Plain HELLOs the BMC saw on its plain port.
fn plain_hellos(world: &World) -> usize {
    world
        .bmc
        .state
        .log
        .0
        .iter()
        .filter(|e| e.text.contains("(plain)") || e.id == "ISM0050")
        .count()
}

fn enrolled_world(seed: u64) -> World {
    let mut world = World::new(BmcConfig::default(), seed);
    run(&mut world, 30);
    assert!(has(&world, "BL4006"), "enrolled: {:?}", world.audit_ids());
    world
}

#[test]
fn t1_enrolls_then_runs_mutual_tls_with_both_certificates_pinned() {
    let mut world = enrolled_world(1);
    assert_eq!(channels(&world).len(), 1);
    assert_eq!(channels(&world)[0].1, Channel::Tls13);
    assert_eq!(pin(&world), Some(world.bmc.fingerprint()));
    let id = ClientIdentity::load(&mut world)
        .expect("loads")
        .expect("exists");
    assert_eq!(world.bmc.state.enrolled, vec![id.fingerprint()]);
    assert_eq!(world.bmc.state.log.count("BMC0020"), 1);
    // A restart: HELLO over TLS with the same identity, no new enrollment.
    run(&mut world, 70);
    let ch = channels(&world);
    assert!(
        ch.len() >= 2 && ch.iter().all(|(_, c)| *c == Channel::Tls13),
        "{ch:?}"
    );
    assert_eq!(count(&world, "BL4006"), 1);
    assert_eq!(
        world.bmc.state.log.count("BMC0021"),
        0,
        "never refused as unenrolled"
    );
    assert_eq!(plain_hellos(&world), 0, "no plain channel on TLS firmware");
}

#[test]
fn t2_every_install_makes_a_fresh_ten_year_identity() {
    let mut world = World::new(BmcConfig::default(), 2);
    let a = identity::reinstall(&mut world, "host").expect("install");
    let b = identity::reinstall(&mut world, "host").expect("install again");
    assert_ne!(a.fingerprint(), b.fingerprint());
    let view = cert::parse(b.cert()).expect("parses");
    let now = world.clock.unix_time();
    assert_eq!(view.not_before, now);
    assert!(
        view.not_after - view.not_before >= TEN_YEARS,
        "{} s",
        view.not_after - view.not_before
    );
    assert!(
        pin(&world).is_none(),
        "install drops the pin so the agent enrolls again"
    );
}

#[test]
fn t3_expired_client_certificate_stops_connection_attempts() {
    let mut world = enrolled_world(3);
    let sessions = world.bmc.state.session;
    world.clock.jump_wall_clock(TEN_YEARS + 2 * 86_400);
    run(&mut world, 90);
    assert!(has(&world, "BL4004"), "{:?}", world.audit_ids());
    assert_eq!(count(&world, "BL4004"), 1, "said once, not on every retry");
    assert_eq!(world.bmc.state.session, sessions, "no new session");
    assert_eq!(plain_hellos(&world), 0);
}

#[test]
fn t4_bmc_speaking_only_tls12_fails_without_plain_fallback() {
    let mut world = World::new(
        BmcConfig {
            tls12_only: true,
            ..BmcConfig::default()
        },
        4,
    );
    run(&mut world, 40);
    assert!(has(&world, "BL4003"), "{:?}", world.audit_ids());
    assert!(channels(&world).is_empty());
    assert_eq!(plain_hellos(&world), 0, "never the plain channel");
    assert!(world.bmc.state.log.count("BMC0023") >= 1);
}

#[test]
fn t5_firmware_without_tls_uses_the_plain_channel() {
    let mut world = World::new(
        BmcConfig {
            firmware: [3, 20, 20, 20],
            tls: false,
            ..BmcConfig::default()
        },
        5,
    );
    run(&mut world, 30);
    assert!(has(&world, "BL4001"));
    assert_eq!(channels(&world)[0].1, Channel::Plain);
    assert!(pin(&world).is_none());
}

#[test]
fn t6_plain_hello_on_tls_required_firmware_is_rejected_and_logged_by_the_bmc() {
    // A non-TLS agent: one configured `legacy_plain = true` (the only way
    // bmclink speaks plain without bootstrap evidence) on TLS firmware.
    let mut world = World::new(BmcConfig::default(), 6);
    world.bootstrap_up = false;
    let cfg = Config {
        legacy_plain: true,
        ..Config::default()
    };
    run_agent(&mut world, cfg, Instant::from_secs(40)).expect("agent starts");
    assert!(world.bmc.state.log.count("ISM0050") >= 1);
    assert!(
        has(&world, "BL2005"),
        "REJECT audited: {:?}",
        world.audit_ids()
    );
    assert!(channels(&world).is_empty());
}

#[test]
fn t6_without_host_local_evidence_the_agent_never_speaks_plain() {
    // The same BMC and no bootstrap channel, default configuration: TLS
    // is tried (BL4011/BL4015 say what is missing), never a plain HELLO.
    let mut world = World::new(BmcConfig::default(), 6);
    world.bootstrap_up = false;
    run(&mut world, 40);
    assert_eq!(world.bmc.state.log.count("ISM0050"), 0);
    assert_eq!(plain_hellos(&world), 0);
    assert!(
        has(&world, "BL4011") && has(&world, "BL4015"),
        "{:?}",
        world.audit_ids()
    );
    assert!(!has(&world, "BL4001"), "{:?}", world.audit_ids());
}

#[test]
fn t7_firmware_gaining_tls_makes_the_agent_enroll_by_itself() {
    let mut world = World::new(
        BmcConfig {
            firmware: [3, 20, 20, 20],
            tls: false,
            ..BmcConfig::default()
        },
        7,
    );
    world.at(Instant::from_secs(30), |w| {
        let now = w.clock.now();
        w.bmc.upgrade_firmware([3, 30, 30, 30], now);
    });
    run(&mut world, 120);
    let ch = channels(&world);
    assert_eq!(ch[0].1, Channel::Plain);
    let tls: Vec<_> = ch.iter().filter(|(_, c)| *c == Channel::Tls13).collect();
    assert!(!tls.is_empty(), "{ch:?} {:?}", world.audit_ids());
    assert!(tls[0].0 > Instant::from_secs(30));
    assert!(has(&world, "BL4006"));
    assert_eq!(pin(&world), Some(world.bmc.fingerprint()));
}

#[test]
fn t8_repair_install_makes_a_new_identity_and_enrolls_again() {
    let mut world = enrolled_world(8);
    let before = world.bmc.state.enrolled.clone();
    identity::reinstall(&mut world, "host").expect("repair");
    assert!(has(&world, "BL4010"));
    world.bmc.issue_credential("second-credential");
    run(&mut world, 80);
    assert_eq!(count(&world, "BL4006"), 2, "{:?}", world.audit_ids());
    assert_eq!(world.bmc.state.enrolled.len(), 2);
    assert_ne!(world.bmc.state.enrolled[1], before[0]);
    assert_eq!(channels(&world).last().map(|c| c.1), Some(Channel::Tls13));
}

#[test]
fn b1_pinned_bmc_that_stops_offering_tls_never_gets_the_plain_channel() {
    let mut world = enrolled_world(11);
    world.at(Instant::from_secs(40), |w| {
        w.bmc.cfg.tls = false;
        let now = w.clock.now();
        w.bmc.reboot(now);
    });
    run(&mut world, 120);
    assert!(has(&world, "BL4008"), "{:?}", world.audit_ids());
    assert_eq!(count(&world, "BL4008"), 1, "said once per outage");
    assert_eq!(plain_hellos(&world), 0, "no plain-channel data sent");
    assert!(sessions_after(&world, 40).is_empty());
}

#[test]
fn b4_certificate_expiring_within_thirty_days_is_audited_and_still_works() {
    let mut world = enrolled_world(12);
    world.clock.jump_wall_clock(TEN_YEARS - 10 * 86_400);
    world.at(Instant::from_secs(40), |w| {
        let now = w.clock.now();
        w.bmc.reboot(now);
    });
    run(&mut world, 90);
    assert!(has(&world, "BL4005"), "{:?}", world.audit_ids());
    assert!(channels(&world).len() >= 2);
}

#[test]
fn man_in_the_middle_certificate_after_pinning_fails_closed() {
    let mut world = enrolled_world(13);
    world.at(Instant::from_secs(40), |w| {
        w.bmc.cfg.impostor_cert = true;
        let now = w.clock.now();
        w.bmc.reboot(now);
    });
    run(&mut world, 100);
    assert!(has(&world, "BL4002"), "{:?}", world.audit_ids());
    assert!(
        sessions_after(&world, 40).is_empty(),
        "no session with the impostor"
    );
    assert_eq!(plain_hellos(&world), 0);
}

#[test]
fn garbage_or_truncated_tls_from_the_bmc_fails_closed_without_panicking() {
    for (name, tamper) in [
        ("truncated", TlsTamper::TruncateAt(40)),
        (
            "garbage after ServerHello",
            TlsTamper::GarbageAfterServerHello(vec![0x17, 0x03, 0x03, 0x00, 0x10, 1, 2, 3]),
        ),
        (
            "garbage record after WELCOME",
            TlsTamper::GarbageRecordAfterWelcome,
        ),
    ] {
        let mut world = World::new(
            BmcConfig {
                tls_tamper: Some(tamper),
                ..BmcConfig::default()
            },
            14,
        );
        run(&mut world, 40);
        assert!(
            has(&world, "BL4003") || has(&world, "BL2006"),
            "{name}: {:?}",
            world.audit_ids()
        );
        assert_eq!(plain_hellos(&world), 0, "{name}: no plain channel");
    }
}
