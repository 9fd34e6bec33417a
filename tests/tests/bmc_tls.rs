//! The simulated BMC's TLS side driven by a rustls 0.23 client on a second
//! host of the simulated segment, in virtual time: enrollment, the enrolled
//! set, TLS-required firmware, and the misbehaviour knobs.

use bmclink_core::agent::enroll::{bmc_proof, host_proof};
use bmclink_core::platform::Bootstrap;
use bmclink_core::proto::{Enroll, Hello, Message, PROTO_VERSION};
use bmclink_core::Family;
use bmclink_tests::bmc_tls::{TlsIdentity, TlsTamper};
use bmclink_tests::tls_host::{client_config, client_config_mismatched, Received, TlsHost};
use bmclink_tests::{BmcConfig, World};
use smoltcp::socket::tcp;
use smoltcp::wire::{IpAddress, Ipv4Address};

const BMC: IpAddress = IpAddress::Ipv4(Ipv4Address::new(169, 254, 1, 1));

fn host(world: &World) -> TlsHost {
    TlsHost::new(
        world,
        [0x02, 0x00, 0x5e, 0x10, 0x00, 0x50],
        Ipv4Address::new(169, 254, 1, 50),
    )
}

fn client_identity(seed: u64) -> TlsIdentity {
    TlsIdentity::generate(
        seed,
        "host",
        bmclink_tests::clock::DEFAULT_EPOCH_UNIX,
        false,
    )
}

fn hello(tls: bool) -> Message<'static> {
    hello_flags(tls, false)
}

fn hello_flags(tls: bool, enrolling: bool) -> Message<'static> {
    Message::Hello(Hello {
        proto: PROTO_VERSION,
        agent_version: "test 0",
        hostname: "host",
        family: Family::V4,
        tls,
        enrolling,
    })
}

/// ENROLL for `account` with the proof `secret` gives for the BMC's real
/// certificate and `client`.
fn enroll_msg<'a>(
    world: &World,
    account: &'a str,
    secret: &str,
    client: &TlsIdentity,
) -> Message<'a> {
    let proof = host_proof(
        secret.as_bytes(),
        &world.bmc.fingerprint(),
        &client.fingerprint(),
    );
    Message::Enroll(Enroll { account, proof })
}

/// HELLO(enrolling) then ENROLL at once (§5), and what came back: ENROLLED
/// and WELCOME, or REJECT.
fn enroll(world: &mut World, host: &mut TlsHost, msg: &Message<'_>) -> Vec<Received> {
    host.send(world, &hello_flags(true, true));
    host.exchange(world, msg);
    host.run(world, |h| {
        h.messages().len() >= 2 || h.state() == tcp::State::Closed || h.tls_error.is_some()
    });
    host.messages()
}

/// ENROLLED with the right proof for `secret`, then WELCOME.
fn assert_enrolled(world: &World, got: &[Received], secret: &str, client: &TlsIdentity) {
    let want = bmc_proof(
        secret.as_bytes(),
        &world.bmc.fingerprint(),
        &client.fingerprint(),
    );
    assert!(
        matches!(got, [Received::Enrolled(p), Received::Welcome(_)] if *p == want),
        "{got:?}"
    );
}

fn reject(code: &str) -> Received {
    Received::Reject(code.into())
}

/// Connects over TLS to the BMC's TLS port with `identity`, pinning what
/// the bootstrap channel publishes.
fn connect_tls(world: &mut World, host: &mut TlsHost, identity: &TlsIdentity) {
    let pin = world.bmc_facts().and_then(|f| f.fingerprint).expect("pin");
    let (config, _) = client_config(identity, pin);
    let port = world.bmc.cfg.tls_port;
    host.connect(world, (BMC, port), Some(config));
}

/// The one-time account the host holds: (name, secret).
fn account(world: &mut World) -> Option<(String, String)> {
    let (mut n, mut s) = ([0u8; 255], [0u8; 64]);
    let (nl, sl) = world.enrollment_account(&mut n, &mut s)?;
    Some((
        String::from_utf8(n[..nl].to_vec()).unwrap(),
        String::from_utf8(s[..sl].to_vec()).unwrap(),
    ))
}

#[test]
fn enrollment_binds_the_client_certificate_and_hello_is_welcomed_after() {
    let mut world = World::new(BmcConfig::default(), 1);
    let mut host = host(&world);
    let me = client_identity(10);
    let (name, secret) = account(&mut world).expect("a fresh account");

    connect_tls(&mut world, &mut host, &me);
    assert!(host.tls_established(), "{:?}", host.tls_error);
    assert_eq!(host.tls_version(), Some(rustls::ProtocolVersion::TLSv1_3));
    let msg = enroll_msg(&world, &name, &secret, &me);
    let got = enroll(&mut world, &mut host, &msg);
    assert_enrolled(&world, &got, &secret, &me);
    assert_eq!(world.bmc.state.enrolled, vec![me.fingerprint()]);
    assert_eq!(world.bmc.state.log.count("BMC0020"), 1);
    // The account is retired at the BMC.
    assert_eq!(world.bmc.state.used_credentials, vec![secret.clone()]);

    // A new connection with the same certificate: HELLO is enough.
    connect_tls(&mut world, &mut host, &me);
    let got = host.exchange(&mut world, &hello(true));
    assert!(matches!(got[..], [Received::Welcome(_)]), "{got:?}");
    assert_eq!(world.bmc.state.log.count("BMC0021"), 0);
}

#[test]
fn second_enrollment_with_a_used_credential_is_rejected() {
    let mut world = World::new(BmcConfig::default(), 2);
    let mut host = host(&world);
    let (name, secret) = account(&mut world).unwrap();
    let first = client_identity(20);
    connect_tls(&mut world, &mut host, &first);
    let msg = enroll_msg(&world, &name, &secret, &first);
    let got = enroll(&mut world, &mut host, &msg);
    assert_enrolled(&world, &got, &secret, &first);

    // The right secret, another certificate: the account is used.
    let other = client_identity(21);
    connect_tls(&mut world, &mut host, &other);
    let msg = enroll_msg(&world, &name, &secret, &other);
    let got = enroll(&mut world, &mut host, &msg);
    assert_eq!(got, vec![reject("bad-credential")]);
    host.wait_closed(&mut world);
    assert_ne!(host.state(), tcp::State::Established);
    assert_eq!(world.bmc.state.log.count("BMC0022"), 1);
    assert!(!world.bmc.state.enrolled.contains(&other.fingerprint()));
}

#[test]
fn wrong_credential_is_rejected_and_the_right_one_stays_usable() {
    let mut world = World::new(BmcConfig::default(), 3);
    let mut host = host(&world);
    let me = client_identity(30);
    let (name, secret) = account(&mut world).unwrap();
    connect_tls(&mut world, &mut host, &me);
    let msg = enroll_msg(&world, &name, "guessed", &me);
    let got = enroll(&mut world, &mut host, &msg);
    assert_eq!(got, vec![reject("bad-credential")]);
    assert!(world.bmc.state.enrolled.is_empty());
    // An unknown account, with the right secret's proof.
    connect_tls(&mut world, &mut host, &me);
    let msg = enroll_msg(&world, "someone-else", &secret, &me);
    assert_eq!(
        enroll(&mut world, &mut host, &msg),
        vec![reject("bad-credential")]
    );
    // The right one still works.
    connect_tls(&mut world, &mut host, &me);
    let msg = enroll_msg(&world, &name, &secret, &me);
    let got = enroll(&mut world, &mut host, &msg);
    assert_enrolled(&world, &got, &secret, &me);
}

#[test]
fn a_repeated_enroll_for_the_same_certificate_is_answered_again() {
    // §5a idempotence: a connection lost after the BMC bound the
    // certificate costs a retry, never the enrollment.
    let mut world = World::new(BmcConfig::default(), 31);
    let mut host = host(&world);
    let me = client_identity(31);
    let (name, secret) = account(&mut world).unwrap();
    for _ in 0..2 {
        connect_tls(&mut world, &mut host, &me);
        let msg = enroll_msg(&world, &name, &secret, &me);
        let got = enroll(&mut world, &mut host, &msg);
        assert_enrolled(&world, &got, &secret, &me);
    }
    assert_eq!(world.bmc.state.log.count("BMC0020"), 1, "bound once");
}

#[test]
fn a_replayed_enroll_from_another_certificate_is_refused() {
    // The exact ENROLL a legitimate host sent (say a man in the middle
    // recorded it on its leg), replayed over a connection with another
    // client certificate: the proof binds the first one.
    let mut world = World::new(BmcConfig::default(), 32);
    let mut host = host(&world);
    let me = client_identity(32);
    let (name, secret) = account(&mut world).unwrap();
    let recorded = enroll_msg(&world, &name, &secret, &me);
    let thief = client_identity(33);
    connect_tls(&mut world, &mut host, &thief);
    assert_eq!(
        enroll(&mut world, &mut host, &recorded),
        vec![reject("bad-credential")]
    );
    assert!(world.bmc.state.enrolled.is_empty());
    // After the real enrollment a replay is refused too.
    connect_tls(&mut world, &mut host, &me);
    let got = enroll(&mut world, &mut host, &recorded);
    assert_enrolled(&world, &got, &secret, &me);
    connect_tls(&mut world, &mut host, &thief);
    assert_eq!(
        enroll(&mut world, &mut host, &recorded),
        vec![reject("bad-credential")]
    );
    assert_eq!(world.bmc.state.enrolled, vec![me.fingerprint()]);
}

#[test]
fn three_bad_proofs_retire_the_account() {
    let mut world = World::new(BmcConfig::default(), 34);
    let mut host = host(&world);
    let me = client_identity(34);
    let (name, secret) = account(&mut world).unwrap();
    for guess in ["a", "b", "c"] {
        connect_tls(&mut world, &mut host, &me);
        let msg = enroll_msg(&world, &name, guess, &me);
        assert_eq!(
            enroll(&mut world, &mut host, &msg),
            vec![reject("bad-credential")]
        );
    }
    connect_tls(&mut world, &mut host, &me);
    let msg = enroll_msg(&world, &name, &secret, &me);
    assert_eq!(
        enroll(&mut world, &mut host, &msg),
        vec![reject("bad-credential")]
    );
}

#[test]
fn enroll_without_an_enrolling_hello_first_is_a_protocol_error() {
    let mut world = World::new(BmcConfig::default(), 35);
    let mut host = host(&world);
    let me = client_identity(35);
    let (name, secret) = account(&mut world).unwrap();
    connect_tls(&mut world, &mut host, &me);
    let msg = enroll_msg(&world, &name, &secret, &me);
    host.exchange(&mut world, &msg);
    host.wait_closed(&mut world);
    assert!(host.messages().is_empty(), "{:?}", host.messages());
    assert_eq!(world.bmc.state.log.count("BMC0003"), 1);
    assert!(world.bmc.state.enrolled.is_empty());
    // HELLO without the flag, then ENROLL: refused the same way.
    connect_tls(&mut world, &mut host, &me);
    let got = host.exchange(&mut world, &hello(true));
    assert_eq!(got, vec![reject("not-enrolled")]);
    assert!(world.bmc.state.enrolled.is_empty());
}

#[test]
fn an_enrolling_hello_on_the_plain_port_is_refused_with_bad_credential() {
    let mut world = World::new(
        BmcConfig {
            firmware: [3, 20, 20, 20],
            ..BmcConfig::default()
        },
        36,
    );
    assert!(!world.bmc.cfg.tls_required());
    let mut host = host(&world);
    host.connect(&mut world, (BMC, 5080), None);
    let got = host.exchange(&mut world, &hello_flags(false, true));
    assert_eq!(got, vec![reject("bad-credential")]);
}

#[test]
fn hello_from_an_unenrolled_certificate_is_rejected_and_logged() {
    let mut world = World::new(BmcConfig::default(), 4);
    let mut host = host(&world);
    connect_tls(&mut world, &mut host, &client_identity(40));
    assert!(host.tls_established(), "{:?}", host.tls_error);
    let got = host.exchange(&mut world, &hello(true));
    assert_eq!(got, vec![reject("not-enrolled")]);
    host.wait_closed(&mut world);
    assert_eq!(world.bmc.state.log.count("BMC0021"), 1);
    assert_eq!(world.bmc.state.session, 0);
}

#[test]
fn tls12_only_bmc_fails_the_handshake() {
    let mut world = World::new(
        BmcConfig {
            tls12_only: true,
            ..BmcConfig::default()
        },
        5,
    );
    let mut host = host(&world);
    connect_tls(&mut world, &mut host, &client_identity(50));
    assert!(!host.tls_established());
    let err = host.tls_error.clone().expect("the handshake failed");
    assert!(
        matches!(
            err,
            rustls::Error::AlertReceived(rustls::AlertDescription::ProtocolVersion)
                | rustls::Error::PeerIncompatible(_)
        ),
        "{err:?}"
    );
    assert_eq!(world.bmc.state.log.count("BMC0023"), 1);
}

#[test]
fn impostor_presents_another_certificate_than_the_bootstrap_publishes() {
    let mut world = World::new(
        BmcConfig {
            impostor_cert: true,
            ..BmcConfig::default()
        },
        6,
    );
    let mut host = host(&world);
    let pin = world.bmc_facts().and_then(|f| f.fingerprint).unwrap();
    assert_eq!(pin, world.bmc.fingerprint());
    let (config, check) = client_config(&client_identity(60), pin);
    host.connect(&mut world, (BMC, 5443), Some(config));
    assert!(!host.tls_established());
    let presented = check.presented.lock().unwrap().expect("a certificate came");
    assert_ne!(presented, pin);
    assert_eq!(
        presented,
        bmclink_core::cert::fingerprint(world.bmc.presented_cert_der())
    );
    assert!(matches!(
        host.tls_error,
        Some(rustls::Error::InvalidCertificate(_))
    ));
}

#[test]
fn plain_hello_on_tls_required_firmware_is_rejected_with_ism0050() {
    let mut world = World::new(BmcConfig::default(), 7);
    assert!(world.bmc.cfg.tls_required());
    let mut host = host(&world);
    host.connect(&mut world, (BMC, 5080), None);
    let got = host.exchange(&mut world, &hello(false));
    assert_eq!(got, vec![reject("tls-required")]);
    assert_eq!(world.bmc.state.log.count("ISM0050"), 1);
}

#[test]
fn bmc_without_tls_refuses_the_tls_port_and_publishes_no_fingerprint() {
    let mut world = World::new(BmcConfig::legacy(), 8);
    let facts = world.bmc_facts().unwrap();
    assert!(!facts.tls);
    assert_eq!(facts.fingerprint, None);
    let mut host = host(&world);
    let (config, check) = client_config(&client_identity(80), world.bmc.fingerprint());
    host.connect(&mut world, (BMC, 5443), Some(config));
    // RST: the connection is gone at once, no certificate ever came.
    assert_eq!(host.state(), tcp::State::Closed);
    assert!(check.presented.lock().unwrap().is_none());
    // The plain port answers.
    host.connect(&mut world, (BMC, 5080), None);
    let got = host.exchange(&mut world, &hello(false));
    assert!(matches!(got[..], [Received::Welcome(_)]), "{got:?}");
}

#[test]
fn firmware_upgrade_opens_the_tls_port() {
    let mut world = World::new(BmcConfig::legacy(), 9);
    let mut host = host(&world);
    let me = client_identity(90);
    let now = world.clock.now();
    world.bmc.upgrade_firmware([3, 30, 30, 30], now);
    assert!(world.bmc.cfg.tls_required());
    assert_eq!(world.bmc.state.log.count("BMC0030"), 1);
    let facts = world.bmc_facts().unwrap();
    assert_eq!(facts.fingerprint, Some(world.bmc.fingerprint()));
    let (name, secret) = account(&mut world).unwrap();
    let (config, _) = client_config(&me, facts.fingerprint.unwrap());
    host.connect(&mut world, (BMC, 5443), Some(config));
    assert!(host.tls_established(), "{:?}", host.tls_error);
    let msg = enroll_msg(&world, &name, &secret, &me);
    let got = enroll(&mut world, &mut host, &msg);
    assert_enrolled(&world, &got, &secret, &me);
}

#[test]
fn bootstrap_down_gives_neither_facts_nor_credential() {
    let mut world = World::new(BmcConfig::default(), 10);
    world.bootstrap_up = false;
    assert!(world.bmc_facts().is_none());
    assert_eq!(account(&mut world), None);
}

#[test]
fn truncated_server_flight_fails_the_client_handshake() {
    let mut world = World::new(
        BmcConfig {
            tls_tamper: Some(TlsTamper::TruncateAt(100)),
            ..BmcConfig::default()
        },
        11,
    );
    let mut host = host(&world);
    connect_tls(&mut world, &mut host, &client_identity(110));
    assert!(!host.tls_established());
    host.wait_closed(&mut world);
    assert_ne!(host.state(), tcp::State::Established);
    assert!(host.received.is_empty());
}

#[test]
fn garbage_after_server_hello_fails_the_client_handshake() {
    let mut world = World::new(
        BmcConfig {
            tls_tamper: Some(TlsTamper::GarbageAfterServerHello(vec![0x17; 64])),
            ..BmcConfig::default()
        },
        12,
    );
    let mut host = host(&world);
    connect_tls(&mut world, &mut host, &client_identity(120));
    assert!(!host.tls_established());
    assert!(host.tls_error.is_some());
}

#[test]
fn garbage_record_after_welcome_fails_authentication_at_the_client() {
    let mut world = World::new(
        BmcConfig {
            tls_tamper: Some(TlsTamper::GarbageRecordAfterWelcome),
            ..BmcConfig::default()
        },
        13,
    );
    let mut host = host(&world);
    let (name, secret) = account(&mut world).unwrap();
    let me = client_identity(130);
    connect_tls(&mut world, &mut host, &me);
    let msg = enroll_msg(&world, &name, &secret, &me);
    let got = enroll(&mut world, &mut host, &msg);
    assert!(
        got.iter().any(|m| matches!(m, Received::Welcome(_))),
        "{got:?}"
    );
    assert_eq!(host.tls_error, Some(rustls::Error::DecryptError));
}

/// The agent's own TLS client (embedded-tls, pinning) against the BMC:
/// runs `PinnedTls::open`, sends `msg`, returns the first frame's reply.
fn core_client_exchange(
    world: &mut World,
    host: &mut TlsHost,
    identity: &TlsIdentity,
    pin: [u8; 32],
    msgs: &[Message<'_>],
) -> Result<Vec<Received>, bmclink_core::tls::TlsError> {
    use bmclink_core::tls::{Identity, PinnedTls, TlsBuffers};
    use rand_chacha::rand_core::SeedableRng;
    let port = world.bmc.cfg.tls_port;
    host.connect(world, (BMC, port), None);
    let stream = bmclink_tests::tls_host::RawStream { host, world };
    let mut buffers = Box::new(TlsBuffers::new());
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
    let id = Identity::new(identity.key.clone(), &identity.der).expect("the certificate fits");
    let mut tls = PinnedTls::open(stream, &mut buffers, pin, id, &mut rng)?;
    for msg in msgs {
        let mut frame = [0u8; 1026];
        let n = msg.emit(&mut frame).unwrap();
        tls.send(&frame[..n])?;
    }
    // ENROLL is answered with two messages, anything else with one.
    let want = if msgs.len() > 1 { 2 } else { 1 };
    let mut reader = bmclink_core::proto::FrameReader::<4096>::new();
    let mut out = Vec::new();
    while out.len() < want {
        let mut buf = [0u8; 1026];
        let n = tls.read(&mut buf)?;
        reader.push(&buf[..n]);
        while let Some(Ok(m)) = reader.next_message() {
            out.push(match m {
                Message::Welcome(w) => Received::Welcome(w.session),
                Message::Reject(r) => Received::Reject(r.code.to_string()),
                Message::Enrolled(e) => Received::Enrolled(e.proof),
                other => Received::Other(format!("{other:?}")),
            });
        }
        if matches!(out.last(), Some(Received::Reject(_))) {
            break;
        }
    }
    Ok(out)
}

#[test]
fn core_tls_client_enrolls_then_says_hello() {
    let mut world = World::new(BmcConfig::default(), 14);
    let me = client_identity(140);
    let mut host = host(&world);
    let pin = world.bmc_facts().and_then(|f| f.fingerprint).unwrap();
    let (name, secret) = account(&mut world).unwrap();
    let msgs = [
        hello_flags(true, true),
        enroll_msg(&world, &name, &secret, &me),
    ];
    let got = core_client_exchange(&mut world, &mut host, &me, pin, &msgs).unwrap();
    assert_enrolled(&world, &got, &secret, &me);
    assert_eq!(world.bmc.state.enrolled, vec![me.fingerprint()]);
    let got = core_client_exchange(&mut world, &mut host, &me, pin, &[hello(true)]).unwrap();
    assert!(matches!(got[..], [Received::Welcome(_)]), "{got:?}");
    let stranger = client_identity(141);
    let got = core_client_exchange(&mut world, &mut host, &stranger, pin, &[hello(true)]).unwrap();
    assert_eq!(got, vec![reject("not-enrolled")]);
}

#[test]
fn core_tls_client_refuses_the_impostor_with_a_pin_mismatch() {
    let mut world = World::new(
        BmcConfig {
            impostor_cert: true,
            ..BmcConfig::default()
        },
        15,
    );
    let pin = world.bmc_facts().and_then(|f| f.fingerprint).unwrap();
    let mut host = host(&world);
    let err = core_client_exchange(
        &mut world,
        &mut host,
        &client_identity(150),
        pin,
        &[hello(true)],
    )
    .unwrap_err();
    assert_eq!(
        err,
        bmclink_core::tls::TlsError::PinMismatch {
            pinned: pin,
            presented: bmclink_core::cert::fingerprint(world.bmc.presented_cert_der()),
        }
    );
    assert!(world.bmc.state.enrolled.is_empty());
}

#[test]
fn core_tls_client_fails_cleanly_against_a_tls12_only_bmc() {
    let mut world = World::new(
        BmcConfig {
            tls12_only: true,
            ..BmcConfig::default()
        },
        16,
    );
    let pin = world.bmc.fingerprint();
    let mut host = host(&world);
    let err = core_client_exchange(
        &mut world,
        &mut host,
        &client_identity(160),
        pin,
        &[hello(true)],
    )
    .unwrap_err();
    assert!(
        matches!(err, bmclink_core::tls::TlsError::Version { .. }),
        "{err:?}"
    );
}

#[test]
fn turning_tls_off_closes_the_tls_port() {
    let mut world = World::new(BmcConfig::default(), 17);
    world.bmc.cfg.tls = false;
    let mut host = host(&world);
    let (config, check) = client_config(&client_identity(170), world.bmc.fingerprint());
    host.connect(&mut world, (BMC, 5443), Some(config));
    assert_eq!(host.state(), tcp::State::Closed);
    assert!(check.presented.lock().unwrap().is_none());
}

#[test]
fn client_signing_with_another_key_than_its_certificate_is_refused() {
    let mut world = World::new(BmcConfig::default(), 18);
    let mut host = host(&world);
    let shown = client_identity(180);
    let config =
        client_config_mismatched(&shown.der, &client_identity(181), world.bmc.fingerprint());
    host.connect(&mut world, (BMC, 5443), Some(config));
    host.run(&mut world, |h| h.tls_error.is_some());
    assert!(
        matches!(
            host.tls_error,
            Some(rustls::Error::AlertReceived(
                rustls::AlertDescription::DecryptError
            ))
        ),
        "{:?}",
        host.tls_error
    );
    assert_eq!(world.bmc.state.log.count("BMC0023"), 1);
    assert_eq!(world.bmc.state.session, 0);
}

#[test]
fn malformed_client_certificate_is_refused_at_the_handshake() {
    let mut world = World::new(BmcConfig::default(), 19);
    let mut host = host(&world);
    let me = client_identity(190);
    let mut broken = me.der.clone();
    let last = broken.len() - 1;
    broken[last] ^= 0x01; // the self-signature no longer verifies
    for cert in [vec![0x30, 0x03, 0x02, 0x01, 0x00], broken] {
        let config = client_config_mismatched(&cert, &me, world.bmc.fingerprint());
        host.connect(&mut world, (BMC, 5443), Some(config));
        host.run(&mut world, |h| h.tls_error.is_some());
        assert!(
            matches!(host.tls_error, Some(rustls::Error::AlertReceived(_))),
            "{:?}",
            host.tls_error
        );
    }
    assert_eq!(world.bmc.state.log.count("BMC0023"), 2);
    assert!(world.bmc.state.enrolled.is_empty());
}
