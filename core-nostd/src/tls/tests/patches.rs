//! One test per patch of the in-tree embedded-tls (vendor/embedded-tls/
//! PATCHES.md), each against the scripted server: what RFC 8446 requires
//! of the client, checked on the wire or on the result. Every one failed
//! (or panicked) on the published embedded-tls 0.19.0.

extern crate std;

use std::boxed::Box;
use std::vec;
use std::vec::Vec;

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::scripted::{
    extension, open_record, plain_script, u16_list, After, Script, Scripted, OPENSSL35_GROUPS,
    OPENSSL35_SIGALGS,
};
use super::Pki;
use crate::tls::{Identity, PinnedTls, TlsBuffers, TlsError};

/// Opens against the scripted server, then reads until an error; returns
/// the open result or the first read's outcome, and the server.
fn run<'p>(
    pki: &'p Pki,
    pin: [u8; 32],
    script: Script,
) -> (Result<Vec<u8>, TlsError>, Scripted<'p>) {
    let mut server = Scripted::new(pki, script);
    let mut buffers = Box::new(TlsBuffers::new());
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let identity =
        Identity::new(pki.client_key.clone(), &pki.client_der).expect("the certificate fits");
    let outcome =
        PinnedTls::open(&mut server, &mut buffers, pin, identity, &mut rng).and_then(|mut tls| {
            let mut got = Vec::new();
            let mut buf = [0u8; 64];
            loop {
                match tls.read(&mut buf) {
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(TlsError::Closed) if !got.is_empty() => return Ok(got),
                    Err(e) => return Err(e),
                }
            }
        });
    (outcome, server)
}

/// A script whose server says `hello` and then closes cleanly.
fn hello_then(mut after: Vec<After>) -> Script {
    let mut script = plain_script();
    after.insert(0, After::Sealed(23, b"hello".to_vec()));
    after.push(After::Sealed(21, vec![1, 0]));
    script.after = after;
    script
}

#[test]
fn the_scripted_server_completes_a_mutual_handshake() {
    let pki = Pki::new(70);
    let (outcome, _) = run(&pki, pki.server_pin(), hello_then(Vec::new()));
    assert_eq!(outcome, Ok(b"hello".to_vec()));
}

#[test]
fn unknown_groups_and_signature_schemes_are_skipped() {
    // RFC 8446 §4.2.7 (supported_groups in EncryptedExtensions: the client
    // MUST NOT act on it, but it must parse) and §4.2.3 (a list may hold
    // schemes the peer does not know): unknown values are ignored.
    let pki = Pki::new(71);
    let mut script = hello_then(Vec::new());
    script.ee_extensions = extension(0x000a, &u16_list(OPENSSL35_GROUPS));
    let mut cr = extension(0x000d, &u16_list(OPENSSL35_SIGALGS));
    cr.extend_from_slice(&extension(0x0032, &u16_list(&[0x0708, 0xfe00, 0x0403])));
    // An extension nobody knows, in both messages.
    cr.extend_from_slice(&extension(0x7a7a, &[1, 2, 3]));
    script
        .ee_extensions
        .extend_from_slice(&extension(0x7a7a, &[]));
    script.cr_extensions = Some(cr);
    let (outcome, _) = run(&pki, pki.server_pin(), script);
    assert_eq!(outcome, Ok(b"hello".to_vec()));
}

#[test]
fn a_pin_mismatch_alert_is_an_encrypted_alert_record() {
    // After the ServerHello the client's records are protected with the
    // client handshake traffic key (RFC 8446 §5, §7.3): the bad_certificate
    // alert goes out as an application_data record whose inner content type
    // is alert (21), not as a plaintext record labelled change_cipher_spec.
    let pki = Pki::new(72);
    let (outcome, server) = run(&pki, [0x5a; 32], plain_script());
    assert!(
        matches!(outcome, Err(TlsError::PinMismatch { .. })),
        "{outcome:?}"
    );
    let records = server.client_records();
    let alert = records.last().expect("an alert record");
    assert_eq!(
        alert[0], 0x17,
        "outer type of a protected record: {alert:02x?}"
    );
    let keys = &server.session.as_ref().unwrap().client_handshake;
    let (kind, content) = open_record(&keys.key, &keys.iv, 0, alert).expect("decrypts");
    assert_eq!((kind, content), (21, vec![2, 42]));
}

/// The first read after the handshake, with `record` injected after the
/// server's first application data.
fn after_injection(seed: u64, record: After) -> Result<Vec<u8>, TlsError> {
    let pki = Pki::new(seed);
    run(&pki, pki.server_pin(), hello_then(vec![record])).0
}

#[test]
fn plaintext_records_after_the_handshake_are_refused() {
    // RFC 8446 §5.1/§5.2: once the handshake keys are in use every record
    // is protected; a plaintext one is an unexpected_message. Each of these
    // needs no key, so anyone on the path can inject it.
    let key_update = vec![0x18, 0, 0, 1, 0];
    let finished = [vec![0x14, 0, 0, 32], vec![0u8; 32]].concat();
    for (name, record) in [
        ("handshake KeyUpdate", After::Plain(22, key_update)),
        ("handshake Finished", After::Plain(22, finished)),
        ("close_notify", After::Plain(21, vec![1, 0])),
        ("fatal alert", After::Plain(21, vec![2, 42])),
        ("change_cipher_spec", After::Plain(20, vec![1])),
    ] {
        let outcome = after_injection(73, record);
        assert_eq!(outcome, Err(TlsError::UnexpectedRecord), "{name}");
    }
}

#[test]
fn encrypted_records_that_decrypt_to_nothing_are_unexpected_messages() {
    // RFC 8446 §5.4: no non-zero octet in the plaintext → unexpected_message.
    for record in [After::Sealed(0, Vec::new()), After::Sealed(0, vec![0; 40])] {
        // Content type 0 with padding only: the inner plaintext is all zeros.
        let outcome = after_injection(74, record);
        assert_eq!(outcome, Err(TlsError::UnexpectedRecord));
    }
}

#[test]
fn a_post_handshake_handshake_message_other_than_a_ticket_is_an_error() {
    // A CertificateRequest after the handshake (post-handshake auth we never
    // offered, RFC 8446 §4.6.2) reached `unimplemented!()` in 0.19.
    let request = vec![0x0d, 0, 0, 3, 0, 0, 0];
    let outcome = after_injection(75, After::Sealed(22, request));
    assert_eq!(outcome, Err(TlsError::UnexpectedRecord));
}
