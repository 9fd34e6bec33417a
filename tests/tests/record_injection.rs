//! Issue 12 item 3: after the handshake, records a host on the path can
//! inject into the BMC→host TCP stream without any key (plaintext TLS
//! records) are refused before embedded-tls acts on them. The agent closes
//! the connection with BL4020 (an on-path attacker or a broken BMC), keeps
//! the pin, gives no repair advice, and nothing panics. Each of these
//! panicked the agent (a Handshake record), ended the session as a clean
//! close (close_notify) or was audited BL4009 with `install --repair`
//! advice (a fatal alert) before the patched embedded-tls.

use bmclink_core::audit::{AuditEvent, TlsEvent};
use bmclink_core::platform::Record;
use bmclink_core::records::PinRecord;
use bmclink_core::{Channel, Config};
use bmclink_tests::bmc_tls::TlsTamper;
use bmclink_tests::{run_agent, BmcConfig, World};
use smoltcp::time::Instant;

fn pin(world: &World) -> Option<[u8; 32]> {
    world
        .store
        .records
        .get(&Record::BmcPin)
        .map(|b| PinRecord::decode(b).expect("pin decodes").sha256)
}

fn tls_sessions(world: &World) -> usize {
    world
        .audit
        .iter()
        .filter(|(_, e)| {
            matches!(
                e,
                AuditEvent::Session(bmclink_core::audit::SessionEvent::Started {
                    channel: Channel::Tls13,
                    ..
                })
            )
        })
        .count()
}

/// A plaintext TLS record: `type 03 03 len body`.
fn plaintext(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![kind, 0x03, 0x03];
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(body);
    out
}

#[test]
fn injected_plaintext_records_close_the_session_with_bl4020_and_keep_the_pin() {
    // The 41-byte plaintext Finished of the issue, a KeyUpdate, a
    // close_notify, a fatal bad_certificate alert, a change_cipher_spec.
    let finished = [vec![0x14, 0, 0, 32], vec![0x5a; 32]].concat();
    let cases = [
        ("handshake Finished", plaintext(22, &finished)),
        ("handshake KeyUpdate", plaintext(22, &[0x18, 0, 0, 1, 0])),
        ("close_notify", plaintext(21, &[1, 0])),
        ("fatal alert", plaintext(21, &[2, 42])),
        ("change_cipher_spec", plaintext(20, &[1])),
    ];
    assert_eq!(cases[0].1.len(), 41);
    for (seed, (name, bytes)) in (40u64..).zip(cases) {
        let mut world = World::new(BmcConfig::default(), seed);
        run_agent(&mut world, Config::default(), Instant::from_secs(30)).expect("agent starts");
        let bmc_pin = world.bmc.fingerprint();
        assert_eq!(pin(&world), Some(bmc_pin), "{name}: enrolled first");
        let before = tls_sessions(&world);

        world.bmc.cfg.tls_tamper = Some(TlsTamper::InjectAfterWelcome(bytes));
        // The agent restarts; its next session meets the injector.
        run_agent(&mut world, Config::default(), Instant::from_secs(90)).expect("agent runs");

        assert!(
            tls_sessions(&world) > before,
            "{name}: a new session met the injection"
        );
        let forbidden: Vec<_> = world
            .audit
            .iter()
            .filter(|(_, e)| matches!(e, AuditEvent::Tls(TlsEvent::ForbiddenRecord {})))
            .collect();
        assert!(!forbidden.is_empty(), "{name}: {:?}", world.audit_ids());
        let ids = world.audit_ids();
        assert!(
            !ids.iter().any(|i| i == "BL4009"),
            "{name}: no repair advice: {ids:?}"
        );
        let text = format!("{}", forbidden[0].1);
        assert!(
            !text.contains("install") && text.contains("on-path attacker"),
            "{text}"
        );
        assert_eq!(pin(&world), Some(bmc_pin), "{name}: the pin is kept");
    }
}
