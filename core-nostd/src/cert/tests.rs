//! Certificate tests against independent implementations: OpenSSL (through
//! its command line) and rustls/webpki.

extern crate std;

use std::format;
use std::path::PathBuf;
use std::process::Command;
use std::string::String;
use std::sync::Arc;
use std::vec::Vec;

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::*;

/// 2026-11-21 09:53:08 UTC
const NOW: u64 = 1_795_254_788;
/// 2036-11-21 09:53:08 UTC
const NOW_PLUS_10Y: u64 = 2_110_873_988;

fn make(params: &CertParams, seed: u64) -> (p256::ecdsa::SigningKey, Vec<u8>) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let key = identity::random(&mut rng);
    let mut out = [0u8; MAX_CERT_LEN];
    let n = generate(&key, params, &mut rng, &mut out).unwrap();
    (key, out[..n].to_vec())
}

/// A temporary directory for one test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("bmclink-cert-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn openssl(args: &[&str]) -> String {
    let out = Command::new("/usr/bin/openssl")
        .args(args)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "openssl {args:?} failed:\n{text}");
    text
}

fn openssl_text(der: &[u8], name: &str) -> String {
    let dir = Scratch::new(name);
    let path = dir.path("cert.der");
    std::fs::write(&path, der).unwrap();
    openssl(&[
        "x509",
        "-inform",
        "DER",
        "-in",
        path.to_str().unwrap(),
        "-text",
        "-noout",
    ])
}

#[test]
fn generated_certificate_parses_back_with_exact_ten_year_validity() {
    let (key, der) = make(&CertParams::client("host-a.example", NOW), 1);
    assert!(der.len() <= MAX_CERT_LEN);
    let view = parse(&der).unwrap();
    assert_eq!(view.not_before, NOW);
    assert_eq!(view.not_after, NOW_PLUS_10Y);
    assert_eq!(view.public_key, p256::ecdsa::VerifyingKey::from(&key));
    assert_eq!(view.common_name(), Some("host-a.example"));
    assert_eq!(view.subject, view.issuer);
    assert_eq!(view.serial.len(), 16);
    assert!(view.serial[0] & 0x80 == 0 && view.serial[0] != 0);
    view.verify_self_signed().unwrap();
    assert!(view.is_valid_at(NOW) && view.is_valid_at(NOW_PLUS_10Y));
    assert!(!view.is_valid_at(NOW - 1) && !view.is_valid_at(NOW_PLUS_10Y + 1));
    assert_eq!(fingerprint(&der), fingerprint(&der.clone()));
}

#[test]
fn serials_differ_between_certificates_of_one_key() {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let key = identity::random(&mut rng);
    let params = CertParams::client("h", NOW);
    let (mut a, mut b) = ([0u8; MAX_CERT_LEN], [0u8; MAX_CERT_LEN]);
    let na = generate(&key, &params, &mut rng, &mut a).unwrap();
    let nb = generate(&key, &params, &mut rng, &mut b).unwrap();
    let (va, vb) = (parse(&a[..na]).unwrap(), parse(&b[..nb]).unwrap());
    assert_ne!(va.serial, vb.serial);
    assert_ne!(fingerprint(&a[..na]), fingerprint(&b[..nb]));
}

#[test]
fn openssl_reads_validity_name_and_usages() {
    let (_, der) = make(&CertParams::client("host-a.example", NOW), 3);
    let text = openssl_text(&der, "client.der");
    for want in [
        "Version: 3 (0x2)",
        "Signature Algorithm: ecdsa-with-SHA256",
        "Issuer: CN = host-a.example",
        "Subject: CN = host-a.example",
        "Not Before: Nov 21 09:53:08 2026 GMT",
        "Not After : Nov 21 09:53:08 2036 GMT",
        "NIST CURVE: P-256",
        "X509v3 Basic Constraints: critical",
        "CA:FALSE",
        "X509v3 Key Usage: critical",
        "Digital Signature",
        "TLS Web Client Authentication",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    assert!(!text.contains("TLS Web Server Authentication"));
    assert!(!text.contains("Certificate Sign"));
}

#[test]
fn openssl_reads_server_usage_and_generalized_time_after_2049() {
    // 2045-06-01 00:00:00 → 2055-06-01: notAfter must be a GeneralizedTime.
    let start = 2_379_888_000;
    let (_, der) = make(&CertParams::client("bmc", start).with_server_auth(), 4);
    let text = openssl_text(&der, "server.der");
    assert!(text.contains("TLS Web Server Authentication, TLS Web Client Authentication"));
    assert!(
        text.contains("Not Before: Jun  1 00:00:00 2045 GMT"),
        "{text}"
    );
    assert!(
        text.contains("Not After : Jun  1 00:00:00 2055 GMT"),
        "{text}"
    );
    // 0x18 = GeneralizedTime, "2055..." follows its length byte.
    assert!(der.windows(6).any(|w| w == b"\x18\x0f2055"));
    assert_eq!(parse(&der).unwrap().not_after, 2_695_420_800);
}

#[test]
fn openssl_verifies_the_self_signature() {
    let (_, der) = make(&CertParams::client("host-b", NOW), 5);
    let dir = Scratch::new("sig");
    let cert = dir.path("sig.der");
    std::fs::write(&cert, &der).unwrap();
    let pubkey = dir.path("sig.pub.pem");
    openssl(&[
        "x509",
        "-inform",
        "DER",
        "-in",
        cert.to_str().unwrap(),
        "-noout",
        "-pubkey",
        "-out",
        pubkey.to_str().unwrap(),
    ]);
    let view = parse(&der).unwrap();
    let (tbs, sig) = (dir.path("sig.tbs"), dir.path("sig.sig"));
    std::fs::write(&tbs, view.tbs).unwrap();
    std::fs::write(&sig, view.signature).unwrap();
    let out = openssl(&[
        "dgst",
        "-sha256",
        "-verify",
        pubkey.to_str().unwrap(),
        "-signature",
        sig.to_str().unwrap(),
        tbs.to_str().unwrap(),
    ]);
    assert!(out.contains("Verified OK"), "{out}");
    // A flipped bit in the signed part must not verify.
    let mut bad = view.tbs.to_vec();
    bad[20] ^= 1;
    std::fs::write(&tbs, &bad).unwrap();
    let status = Command::new("/usr/bin/openssl")
        .args(["dgst", "-sha256", "-verify", pubkey.to_str().unwrap()])
        .args(["-signature", sig.to_str().unwrap(), tbs.to_str().unwrap()])
        .output()
        .unwrap()
        .status;
    assert!(!status.success());
}

fn rustls_client_verifier(root: &[u8]) -> Arc<dyn rustls::server::danger::ClientCertVerifier> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(root.to_vec()))
        .unwrap();
    rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .unwrap()
}

#[test]
fn rustls_client_verifier_accepts_it_within_validity_only() {
    use rustls::pki_types::{CertificateDer, UnixTime};
    let (_, der) = make(&CertParams::client("host-c", NOW), 6);
    let verifier = rustls_client_verifier(&der);
    let at = |t: u64| UnixTime::since_unix_epoch(core::time::Duration::from_secs(t));
    let ee = CertificateDer::from(der.clone());
    verifier.verify_client_cert(&ee, &[], at(NOW + 60)).unwrap();
    verifier
        .verify_client_cert(&ee, &[], at(NOW_PLUS_10Y - 60))
        .unwrap();
    let expired = verifier.verify_client_cert(&ee, &[], at(NOW_PLUS_10Y + 60));
    assert!(
        matches!(
            expired,
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ExpiredContext { .. }
            ))
        ),
        "{expired:?}"
    );
    // Another identity is not accepted by this verifier.
    let (_, other) = make(&CertParams::client("host-c", NOW), 7);
    assert!(verifier
        .verify_client_cert(&CertificateDer::from(other), &[], at(NOW + 60))
        .is_err());
}

#[test]
fn identity_key_round_trips_and_rejects_bad_records() {
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    let key = identity::random(&mut rng);
    let bytes = identity::encode(&key);
    assert_eq!(identity::decode(&bytes).unwrap(), key);
    assert_eq!(
        identity::decode(&bytes[..31]).unwrap_err(),
        CertError::IdentityKey { len: 31 }
    );
    assert!(identity::decode(&[0u8; 32]).is_err());
    assert!(identity::decode(&[0xff; 32]).is_err());
}

#[test]
fn generate_rejects_bad_names_small_buffers_and_far_futures() {
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let key = identity::random(&mut rng);
    let mut out = [0u8; MAX_CERT_LEN];
    let long = "x".repeat(65);
    assert_eq!(
        generate(&key, &CertParams::client("", NOW), &mut rng, &mut out),
        Err(CertError::CommonName { len: 0 })
    );
    assert_eq!(
        generate(&key, &CertParams::client(&long, NOW), &mut rng, &mut out),
        Err(CertError::CommonName { len: 65 })
    );
    let max = "x".repeat(MAX_COMMON_NAME_LEN);
    let n = generate(&key, &CertParams::client(&max, NOW), &mut rng, &mut out).unwrap();
    assert!(n <= MAX_CERT_LEN);
    for cap in [0, 10, 100, n - 1] {
        assert_eq!(
            generate(
                &key,
                &CertParams::client(&max, NOW),
                &mut rng,
                &mut out[..cap]
            ),
            Err(CertError::BufferTooSmall { capacity: cap })
        );
    }
    // 9995-01-01 + 10 years is past 9999.
    let far = 253_244_534_400;
    assert_eq!(
        generate(&key, &CertParams::client("h", far), &mut rng, &mut out),
        Err(CertError::NotBefore { unix: far })
    );
}

#[test]
fn parser_survives_truncation_at_every_length() {
    let (_, der) = make(&CertParams::client("truncate-me", NOW), 10);
    for n in 0..der.len() {
        assert!(parse(&der[..n]).is_err(), "prefix of {n} bytes parsed");
    }
    let mut longer = der.clone();
    longer.push(0);
    assert!(matches!(
        parse(&longer),
        Err(CertError::TrailingData { .. })
    ));
}

#[test]
fn parser_survives_garbage_and_bit_flips() {
    let (_, der) = make(&CertParams::client("flip-me", NOW), 11);
    let mut rng = ChaCha20Rng::seed_from_u64(12);
    let mut buf = [0u8; 600];
    for _ in 0..20_000 {
        let n = (rng.next_u32() as usize) % buf.len();
        rng.fill_bytes(&mut buf[..n]);
        // Half of them start like a certificate, to get past the first tag.
        if n > 4 && rng.next_u32() & 1 == 0 {
            buf[..4].copy_from_slice(&[0x30, 0x82, (n >> 8) as u8, n as u8]);
        }
        let _ = parse(&buf[..n]);
    }
    let mut flipped_ok = 0;
    for i in 0..der.len() * 8 {
        let mut bad = der.clone();
        bad[i / 8] ^= 1 << (i % 8);
        if let Ok(view) = parse(&bad) {
            // Whatever still parses must fail its signature check or be
            // a change outside the signed part that DER tolerates.
            if view.verify_self_signed().is_ok() {
                flipped_ok += 1;
            }
        }
    }
    // Only flips inside the signature's DER that keep it equal (none) or
    // the unsigned outer header could pass; the header flips break lengths.
    assert_eq!(flipped_ok, 0);
}

#[test]
fn expiry_warns_thirty_days_ahead_and_refuses_after_the_end() {
    let (_, der) = make(&CertParams::client("host-e", NOW), 13);
    let view = parse(&der).unwrap();
    let day = 86_400;
    assert_eq!(Expiry::at(&view, NOW), Expiry::Valid);
    assert_eq!(Expiry::at(&view, NOW - 1), Expiry::NotYetValid);
    assert_eq!(Expiry::at(&view, NOW_PLUS_10Y - 30 * day), Expiry::Valid);
    assert_eq!(
        Expiry::at(&view, NOW_PLUS_10Y - 30 * day + 1),
        Expiry::Expiring { days_left: 29 }
    );
    assert_eq!(
        Expiry::at(&view, NOW_PLUS_10Y),
        Expiry::Expiring { days_left: 0 }
    );
    let expired = Expiry::at(&view, NOW_PLUS_10Y + 1);
    assert_eq!(
        expired,
        Expiry::Expired {
            not_after: NOW_PLUS_10Y
        }
    );
}

#[test]
fn renewal_with_the_same_key_keeps_the_spki_pin_and_changes_the_certificate_pin() {
    let mut rng = ChaCha20Rng::seed_from_u64(14);
    let key = identity::random(&mut rng);
    let (mut a, mut b) = ([0u8; MAX_CERT_LEN], [0u8; MAX_CERT_LEN]);
    let na = generate(&key, &CertParams::client("h", NOW), &mut rng, &mut a).unwrap();
    let later = NOW_PLUS_10Y - 10 * 86_400;
    let nb = generate(&key, &CertParams::client("h", later), &mut rng, &mut b).unwrap();
    let (old, new) = (parse(&a[..na]).unwrap(), parse(&b[..nb]).unwrap());
    assert_eq!(old.spki_fingerprint(), new.spki_fingerprint());
    assert_ne!(fingerprint(&a[..na]), fingerprint(&b[..nb]));
    assert!(new.is_valid_at(NOW_PLUS_10Y + 86_400));
    // openssl agrees on what the SPKI is.
    let dir = Scratch::new("spki");
    let cert = dir.path("c.der");
    std::fs::write(&cert, &a[..na]).unwrap();
    let spki = dir.path("spki.der");
    openssl(&[
        "x509",
        "-inform",
        "DER",
        "-in",
        cert.to_str().unwrap(),
        "-noout",
        "-pubkey",
        "-out",
        dir.path("p.pem").to_str().unwrap(),
    ]);
    openssl(&[
        "pkey",
        "-pubin",
        "-in",
        dir.path("p.pem").to_str().unwrap(),
        "-outform",
        "DER",
        "-out",
        spki.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(&spki).unwrap(), old.spki);
}
