//! Replays every fuzz corpus (fuzz/corpus/<target>/) through the target's
//! body on the stable toolchain, so inputs that once crashed stay fixed.

use std::path::Path;

fn replay(target: &str, body: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("corpus entry").path();
        let data = std::fs::read(&path).expect("corpus file readable");
        body(&data);
        n += 1;
    }
    assert!(n > 0, "corpus {} is empty", dir.display());
    println!("{target}: replayed {n} inputs");
}

#[test]
fn proto_corpus_replays_without_failures() {
    replay("proto", bmclink_tests::fuzzing::proto);
}

#[test]
fn frames_corpus_replays_without_failures() {
    replay("frames", bmclink_tests::fuzzing::frames);
}

#[test]
fn policy_corpus_replays_without_failures() {
    replay("policy", bmclink_tests::fuzzing::policy);
}

#[test]
fn cert_corpus_replays_without_failures() {
    replay("cert", bmclink_tests::fuzzing::cert);
}

#[test]
fn tls_server_corpus_replays_without_failures() {
    replay("tls_server", bmclink_tests::fuzzing::tls_server);
}

#[test]
fn tls_session_corpus_replays_without_failures() {
    replay("tls_session", bmclink_tests::fuzzing::tls_session);
}

/// Each `tls_session` seed ends where it was made to: the plaintext
/// injections with UnexpectedRecord, the forged protected records when
/// they fail to decrypt, each after the data sent before them and never
/// with the data sent after.
#[test]
fn tls_session_seeds_end_at_the_injection() {
    use bmclink_core::tls::TlsError;
    for (name, data) in bmclink_tests::fuzzing::tls_session_seeds() {
        let run = bmclink_tests::fuzzing::tls_session_run(&data);
        if name.starts_with("inject_") {
            assert_eq!(
                run.error,
                Some(TlsError::UnexpectedRecord),
                "{name}: {run:?}"
            );
            assert_eq!(run.received, b"\x00\x05WELCOME", "{name}");
        } else if name.starts_with("forge_") {
            assert!(
                matches!(run.error, Some(TlsError::Protocol { .. })),
                "{name}: {run:?}"
            );
            assert_eq!(run.received, b"\x00\x05WELCOME", "{name}");
        } else {
            assert_eq!(run.received, run.sent, "{name}");
        }
    }
}

#[test]
fn ipmi_corpus_replays_without_failures() {
    replay("ipmi", bmclink_tests::fuzzing::ipmi);
}

/// Regenerates the `ipmi` seeds.
/// `cargo test -p bmclink-tests --test corpora -- --ignored write_ipmi_seeds`
#[test]
#[ignore]
fn write_ipmi_seeds() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/ipmi");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, data) in bmclink_tests::fuzzing::ipmi_seeds() {
        std::fs::write(dir.join(name), data).unwrap();
    }
}

/// Regenerates the `cert` seeds (the OpenSSL certificate
/// `fuzz/corpus/cert/openssl` is kept, and its variants remade from it).
/// `cargo test -p bmclink-tests --test corpora -- --ignored write_cert_seeds`
#[test]
#[ignore]
fn write_cert_seeds() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/cert");
    let openssl = std::fs::read(dir.join("openssl")).expect("fuzz/corpus/cert/openssl");
    for (name, data) in bmclink_tests::fuzzing::cert_seeds(&[("openssl", openssl)]) {
        std::fs::write(dir.join(name), data).unwrap();
    }
}

/// Regenerates the `tls_server` seeds.
/// `cargo test -p bmclink-tests --test corpora -- --ignored write_tls_server_seeds`
#[test]
#[ignore]
fn write_tls_server_seeds() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/tls_server");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, data) in bmclink_tests::fuzzing::tls_server_seeds() {
        std::fs::write(dir.join(name), data).unwrap();
    }
}

/// Regenerates the `tls_session` seeds.
/// `cargo test -p bmclink-tests --test corpora -- --ignored write_tls_session_seeds`
#[test]
#[ignore]
fn write_tls_session_seeds() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/tls_session");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, data) in bmclink_tests::fuzzing::tls_session_seeds() {
        std::fs::write(dir.join(name), data).unwrap();
    }
}

/// Regenerates the `frames` seeds: the BMC's first frames of a real run
/// (ARP, NDP, TCP), in the target's input format.
/// `cargo test -p bmclink-tests --test corpora -- --ignored write_frames_seeds`
#[test]
#[ignore]
fn write_frames_seeds() {
    use bmclink_tests::{run_agent, BmcConfig, World};
    use smoltcp::time::Instant;
    let bmc = BmcConfig {
        firmware: [3, 20, 20, 20],
        tls: false,
        ..BmcConfig::default()
    };
    let mut world = World::new(bmc, 1);
    run_agent(
        &mut world,
        bmclink_core::Config::default(),
        Instant::from_secs(12),
    )
    .unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/frames");
    let mut seed = Vec::new();
    let mut last = Instant::ZERO;
    for (i, bmclink_tests::wire::Captured { at, port, frame }) in
        world.segment.captured().into_iter().enumerate()
    {
        // Port 0 is the agent, 1 the BMC.
        let gap = ((at - last).total_millis() / 50).min(255) as u8;
        last = at;
        seed.push(gap);
        seed.extend_from_slice(&(frame.len() as u16).to_be_bytes());
        seed.extend_from_slice(&frame);
        if port == 1 && i < 40 {
            let mut one = vec![0u8];
            one.extend_from_slice(&(frame.len() as u16).to_be_bytes());
            one.extend_from_slice(&frame);
            std::fs::write(dir.join(format!("bmc_{i:02}")), one).unwrap();
        }
    }
    seed.truncate(4096);
    std::fs::write(dir.join("whole_run"), seed).unwrap();
}

/// The `tls_session` body holds on seeded random scripts: random ops and
/// lengths, injections that are whole plaintext records of every type,
/// records with a random header, or random bytes.
#[test]
fn tls_session_body_holds_on_random_scripts() {
    use rand_chacha::rand_core::{RngCore, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(12);
    for _ in 0..150 {
        let mut script = Vec::new();
        for _ in 0..(rng.next_u32() % 8) {
            let op = (rng.next_u32() % 4) as u8;
            let mut bytes = vec![0u8; (rng.next_u32() % 60) as usize];
            rng.fill_bytes(&mut bytes);
            if op == 1 {
                match rng.next_u32() % 3 {
                    0 => {
                        let kind = 20 + (rng.next_u32() % 4) as u8;
                        let len = (bytes.len() as u16).to_be_bytes();
                        bytes.splice(0..0, [kind, 3, 3, len[0], len[1]]);
                    }
                    1 => {
                        // A protected record's header over random bytes.
                        let len = bytes.len() as u8;
                        bytes.splice(0..0, [23, 3, 3, 0, len]);
                    }
                    _ => {}
                }
            }
            script.push(op);
            script.push(bytes.len() as u8);
            script.extend_from_slice(&bytes);
        }
        bmclink_tests::fuzzing::tls_session(&script);
    }
}

/// The targets' bodies hold on seeded random inputs too (a cheap stand-in
/// for a fuzzing run, on stable).
#[test]
fn policy_and_proto_bodies_hold_on_random_inputs() {
    use rand_chacha::rand_core::{RngCore, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    for _ in 0..3000 {
        let mut data = vec![0u8; (rng.next_u32() % 600) as usize];
        rng.fill_bytes(&mut data);
        bmclink_tests::fuzzing::policy(&data);
        bmclink_tests::fuzzing::proto(&data);
    }
}

/// Each `tls_server` seed gets as far as it was made to (the harness's
/// ServerHello and record encryption are the ones the client derives: the
/// bad CertificateVerify is checked against the pinned key, the correct
/// Finished is accepted and the missing authentication then noticed).
#[test]
fn tls_server_seeds_reach_the_errors_they_are_made_for() {
    use bmclink_core::tls::TlsError;
    for (name, data) in bmclink_tests::fuzzing::tls_server_seeds() {
        let result = bmclink_tests::fuzzing::tls_server_run(&data).expect("a non-empty input");
        let err = result.expect_err(name);
        let expected = match name {
            "raw_rustls_tls13" | "hello_wrong_certificate" => {
                matches!(err, TlsError::PinMismatch { .. })
            }
            "raw_rustls_tls12" => matches!(err, TlsError::Version { .. }),
            "hello_bad_certificate_verify" | "raw_hello_bad_certificate_verify" => {
                err == TlsError::BadSignature { scheme: 0x0403 }
            }
            // The patched embedded-tls refuses a Finished before the
            // server's Certificate and CertificateVerify.
            "hello_skip_authentication" => err == TlsError::UnexpectedRecord,
            // embedded-tls 0.19 has no HelloRetryRequest: it fails to decode.
            // A protected alert during the handshake is the server's alert.
            "hello_alert" => err == TlsError::Alert { description: 40 },
            // A plaintext alert after the ServerHello is refused (RFC 8446 §5).
            "hello_empty_record_then_verbatim" => err == TlsError::UnexpectedRecord,
            "raw_hello_retry_request" => {
                matches!(err, TlsError::Protocol { .. })
            }
            _ => err == TlsError::Closed,
        };
        assert!(expected, "{name}: {err:?}");
    }
}

/// The real certificates among the `cert` seeds parse (OpenSSL's too) and
/// their cut copies do not, so the seeds start on both sides of the parser.
#[test]
fn cert_seeds_parse_whole_and_fail_truncated() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/cert");
    for name in ["core", "openssl"] {
        let der = std::fs::read(dir.join(name)).unwrap();
        let view = bmclink_core::cert::parse(&der).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(view.common_name().is_some(), "{name}");
        let cut = std::fs::read(dir.join(format!("{name}_truncated"))).unwrap();
        assert!(bmclink_core::cert::parse(&cut).is_err(), "{name}_truncated");
    }
}
