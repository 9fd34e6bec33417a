//! DESIGN §5a through the whole agent against the simulated BMC: enrollment
//! bound to both certificates, what a man in the middle on first contact
//! gets, the one-time secret's life, and the handshake's deadline.

use bmclink_core::audit::{AuditEvent, SessionEvent, TlsEvent};
use bmclink_core::platform::Record;
use bmclink_core::records::PinRecord;
use bmclink_core::{Channel, Config};
use bmclink_tests::bmc::EnrollFault;
use bmclink_tests::world::AGENT_MAC;
use bmclink_tests::{run_agent, BmcConfig, World};
use smoltcp::time::{Duration, Instant};

fn run(world: &mut World, until_secs: i64) {
    run_agent(world, Config::default(), Instant::from_secs(until_secs)).expect("agent starts");
}

fn ids(world: &World) -> Vec<String> {
    world.audit_ids()
}

fn has(world: &World, id: &str) -> bool {
    ids(world).iter().any(|i| i == id)
}

fn sessions(world: &World) -> Vec<Channel> {
    world
        .audit
        .iter()
        .filter_map(|(_, e)| match e {
            AuditEvent::Session(SessionEvent::Started { channel, .. }) => Some(*channel),
            _ => None,
        })
        .collect()
}

fn pin(world: &World) -> Option<[u8; 32]> {
    world
        .store
        .records
        .get(&Record::BmcPin)
        .map(|b| PinRecord::decode(b).expect("pin decodes").sha256)
}

/// A TLS BMC whose bootstrap channel gives the account but no fingerprint
/// (DSP0270's credentials alone): enrollment rests on the proofs.
fn no_fingerprint() -> BmcConfig {
    BmcConfig {
        publish_fingerprint: false,
        ..BmcConfig::default()
    }
}

fn secret(world: &World) -> String {
    world.bmc.cfg.credential.clone()
}

#[test]
fn enrollment_without_a_published_fingerprint_pins_after_a_checked_enrolled() {
    let mut world = World::new(no_fingerprint(), 1);
    run(&mut world, 30);
    assert!(has(&world, "BL4006"), "{:?}", ids(&world));
    assert_eq!(pin(&world), Some(world.bmc.fingerprint()));
    assert_eq!(sessions(&world), vec![Channel::Tls13]);
    // Enrolled: the host erased its copy of the secret.
    assert_eq!(world.retired, vec![secret(&world)]);
    assert_eq!(world.bmc.state.enrolls, 1);
}

#[test]
fn mitm_with_its_own_certificate_on_first_contact_fails_the_bmc_proof_check() {
    // The impostor relays to the real BMC: the agent's proof binds the
    // impostor's certificate, the BMC checks against its own.
    let mut world = World::new(
        BmcConfig {
            impostor_cert: true,
            ..no_fingerprint()
        },
        2,
    );
    run(&mut world, 30);
    assert!(world.bmc.state.log.count("BMC0022") >= 1);
    assert!(world.bmc.state.enrolled.is_empty(), "nothing bound");
    assert!(
        world
            .audit
            .iter()
            .any(|(_, e)| matches!(e, AuditEvent::Tls(TlsEvent::EnrollmentRejected { code: 4 }))),
        "{:?}",
        ids(&world)
    );
    assert_eq!(pin(&world), None, "nothing pinned");
    assert!(sessions(&world).is_empty(), "no session with the impostor");
    // §5a: bad-credential retires the secret on the host.
    assert_eq!(world.retired, vec![secret(&world)]);
}

#[test]
fn mitm_answering_with_a_forged_or_no_enrolled_fails_the_agent_check() {
    for fault in [EnrollFault::ForgeEnrolled, EnrollFault::SkipEnrolled] {
        let mut world = World::new(
            BmcConfig {
                enroll_fault: Some(fault),
                ..no_fingerprint()
            },
            3,
        );
        world.bmc.state.faults_left = u32::MAX;
        run(&mut world, 40);
        assert!(has(&world, "BL4012"), "{fault:?}: {:?}", ids(&world));
        assert!(!has(&world, "BL4006"), "{fault:?}");
        assert_eq!(pin(&world), None, "{fault:?}: nothing pinned");
        assert!(sessions(&world).is_empty(), "{fault:?}: no session");
        assert!(world.retired.is_empty(), "{fault:?}: the secret is kept");
        assert!(!has(&world, "BL2006"), "{fault:?}: not a lost connection");
    }
}

#[test]
fn with_a_published_fingerprint_an_impostor_never_sees_enroll() {
    let mut world = World::new(
        BmcConfig {
            impostor_cert: true,
            ..BmcConfig::default()
        },
        4,
    );
    run(&mut world, 30);
    assert!(has(&world, "BL4002"), "{:?}", ids(&world));
    assert_eq!(world.bmc.state.enrolls, 0, "ENROLL was sent");
    assert!(world.retired.is_empty(), "the secret is kept");
    assert_eq!(pin(&world), None);
}

#[test]
fn a_wrong_secret_is_refused_and_retired_and_nothing_is_pinned() {
    let mut world = World::new(no_fingerprint(), 5);
    world.host_secret = Some("not-the-secret".into());
    run(&mut world, 40);
    assert!(world.bmc.state.log.count("BMC0022") >= 1);
    assert!(has(&world, "BL4007"), "{:?}", ids(&world));
    assert_eq!(world.retired, vec!["not-the-secret".to_owned()]);
    // Retired: the agent does not try it again.
    assert_eq!(world.bmc.state.enrolls, 1, "tried once");
    assert_eq!(pin(&world), None);
    assert!(sessions(&world).is_empty());
    assert!(has(&world, "BL4011"), "says an account is missing");
}

#[test]
fn a_dropped_connection_mid_enrollment_keeps_the_secret_and_the_retry_enrolls() {
    for fault in [EnrollFault::DropBeforeBind, EnrollFault::DropAfterBind] {
        let mut world = World::new(
            BmcConfig {
                enroll_fault: Some(fault),
                ..no_fingerprint()
            },
            6,
        );
        world.bmc.state.faults_left = 1;
        run(&mut world, 40);
        let ids = ids(&world);
        let dropped = ids.iter().position(|i| i == "BL4013");
        let enrolled = ids.iter().position(|i| i == "BL4006");
        assert!(
            matches!((dropped, enrolled), (Some(d), Some(e)) if d < e),
            "{fault:?}: {ids:?}"
        );
        assert_eq!(world.bmc.state.enrolls, 2, "{fault:?}");
        assert_eq!(
            world.bmc.state.log.count("BMC0020"),
            1,
            "{fault:?}: bound once"
        );
        assert_eq!(pin(&world), Some(world.bmc.fingerprint()), "{fault:?}");
        assert_eq!(sessions(&world), vec![Channel::Tls13], "{fault:?}");
        assert_eq!(world.retired, vec![secret(&world)], "{fault:?}");
    }
}

#[test]
fn pinned_restarts_reconnect_without_enroll() {
    let mut world = World::new(no_fingerprint(), 7);
    run(&mut world, 30);
    assert!(has(&world, "BL4006"));
    assert_eq!(world.bmc.state.enrolls, 1);
    for until in [60, 90] {
        run(&mut world, until);
    }
    assert_eq!(world.bmc.state.enrolls, 1, "no ENROLL after the pin");
    assert_eq!(sessions(&world), vec![Channel::Tls13; 3]);
    assert_eq!(world.bmc.state.log.count("BMC0021"), 0);
}

#[test]
fn nothing_to_trust_tries_tls_names_the_fingerprint_and_never_plain() {
    // No bootstrap channel, no administrator fingerprint, no account.
    let mut world = World::new(BmcConfig::default(), 8);
    world.bootstrap_up = false;
    run(&mut world, 40);
    assert!(has(&world, "BL4011"), "{:?}", ids(&world));
    let named = world.audit.iter().any(|(_, e)| {
        matches!(e, AuditEvent::Tls(TlsEvent::UntrustedBmc { presented })
            if presented.0 == world.bmc.fingerprint())
    });
    assert!(named, "{:?}", ids(&world));
    assert!(sessions(&world).is_empty());
    assert_eq!(world.bmc.state.log.count("ISM0050"), 0, "no plain HELLO");
    assert_eq!(world.bmc.state.session, 0);
    assert_eq!(pin(&world), None);
}

#[test]
fn an_administrator_fingerprint_is_required_before_enroll() {
    let mut world = World::new(
        BmcConfig {
            impostor_cert: true,
            ..no_fingerprint()
        },
        9,
    );
    // The administrator read the real fingerprint from the BMC's UI.
    let real = world.bmc.fingerprint();
    world
        .store
        .records
        .insert(Record::AdminFingerprint, real.to_vec());
    run(&mut world, 30);
    assert!(has(&world, "BL4002"), "{:?}", ids(&world));
    assert_eq!(world.bmc.state.enrolls, 0);
    // Without the impostor it enrolls.
    world.bmc.cfg.impostor_cert = false;
    run(&mut world, 60);
    assert!(has(&world, "BL4006"), "{:?}", ids(&world));
    assert_eq!(pin(&world), Some(real));
}

#[test]
fn a_bmc_trickling_a_byte_every_9_s_on_the_tls_port_does_not_hold_the_agent() {
    let mut world = World::new(
        BmcConfig {
            tls_trickle: Some(Duration::from_secs(9)),
            ..BmcConfig::default()
        },
        10,
    );
    run(&mut world, 80);
    let timed_out: Vec<Instant> = world
        .audit
        .iter()
        .filter(|(_, e)| matches!(e, AuditEvent::Tls(TlsEvent::HandshakeTimedOut { .. })))
        .map(|(at, _)| *at)
        .collect();
    assert!(!timed_out.is_empty(), "{:?}", ids(&world));
    // ACD takes up to 7 s, TCP well under one: the 10 s deadline holds.
    assert!(timed_out[0] < Instant::from_secs(20), "{timed_out:?}");
    // The fallback goes on: IPv6 is tried (TCP to the TLS port over IPv6
    // on the wire) and its handshake times out too. A handshake timeout is
    // audited as such (BL4016), never as a failed connection (BL2006).
    let v6 = world.segment.captured().iter().any(|c| {
        let f = &c.frame;
        c.src_mac() == Some(AGENT_MAC)
            && c.ethertype() == Some(0x86dd)
            && f.get(20) == Some(&6)
            && f.get(56..58) == Some(&5443u16.to_be_bytes()[..])
    });
    assert!(v6, "no IPv6 attempt: {:?}", ids(&world));
    assert!(!has(&world, "BL2006"), "{:?}", ids(&world));
    assert!(timed_out.len() >= 2, "{timed_out:?}");
}
