//! Handshake cost: the embedded-tls client vs a rustls client against the
//! same rustls server, over the same in-memory transport, full mutual
//! TLS 1.3 handshakes (P-256 ECDHE, ECDSA both ways). Run in release:
//! `cargo test --release -p bmclink-core handshake_cost -- --ignored --nocapture`

extern crate std;

use std::sync::Arc;
use std::time::{Duration, Instant};
use std::vec;
use std::vec::Vec;

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use super::duplex::{Duplex, Tamper};
use super::{ring_provider, sec1_der, server_config, Pki, Server};
use crate::cert;
use crate::tls::{Identity, PinnedTls, TlsBuffers};

/// The rustls twin of `PinnedVerifier`: fingerprint pin + TLS 1.3 signature.
#[derive(Debug)]
struct PinnedServer {
    pin: [u8; 32],
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for PinnedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if cert::fingerprint(end_entity) == self.pin {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ECDSA_NISTP256_SHA256]
    }
}

fn rustls_client(pki: &Pki) -> Arc<rustls::ClientConfig> {
    let provider = ring_provider();
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedServer {
            pin: pki.server_pin(),
            provider,
        }))
        .with_client_auth_cert(
            vec![CertificateDer::from(pki.client_der.clone())],
            sec1_der(&pki.client_key),
        )
        .unwrap();
    // Every handshake full, as embedded-tls's: no ticket resumption.
    config.resumption = rustls::client::Resumption::disabled();
    Arc::new(config)
}

/// One full rustls-to-rustls handshake in memory; returns the time spent
/// in the server.
fn rustls_handshake(
    client: &Arc<rustls::ClientConfig>,
    server: &Arc<rustls::ServerConfig>,
) -> Duration {
    let mut server_time = Duration::ZERO;
    let name = ServerName::try_from("bmc").unwrap();
    let mut c = rustls::ClientConnection::new(client.clone(), name).unwrap();
    let mut s = rustls::ServerConnection::new(server.clone()).unwrap();
    let mut buf = Vec::new();
    while c.is_handshaking() || s.is_handshaking() {
        buf.clear();
        while c.wants_write() {
            c.write_tls(&mut buf).unwrap();
        }
        let started = Instant::now();
        let mut rd = &buf[..];
        while !rd.is_empty() {
            s.read_tls(&mut rd).unwrap();
            s.process_new_packets().unwrap();
        }
        buf.clear();
        while s.wants_write() {
            s.write_tls(&mut buf).unwrap();
        }
        server_time += started.elapsed();
        let mut rd = &buf[..];
        while !rd.is_empty() {
            c.read_tls(&mut rd).unwrap();
            c.process_new_packets().unwrap();
        }
    }
    assert!(s.peer_certificates().is_some());
    assert_eq!(c.handshake_kind(), Some(rustls::HandshakeKind::Full));
    server_time
}

/// One full embedded-tls-to-rustls handshake in memory; returns the time
/// spent in the server.
fn embedded_handshake(
    pki: &Pki,
    server: &Arc<rustls::ServerConfig>,
    rng: &mut ChaCha20Rng,
) -> Duration {
    let mut duplex = Duplex::new(server.clone(), Tamper::None);
    let mut buffers = std::boxed::Box::new(TlsBuffers::new());
    let identity = Identity::new(pki.client_key.clone(), &pki.client_der);
    let tls = PinnedTls::open(&mut duplex, &mut buffers, pki.server_pin(), identity, rng);
    assert!(tls.is_ok());
    // The server has our Finished: the mutual handshake is complete on both sides.
    assert!(!duplex.server.is_handshaking());
    assert!(duplex.server.peer_certificates().is_some());
    duplex.server_time
}

#[test]
#[ignore = "measurement; run in release with --ignored --nocapture"]
fn handshake_cost_embedded_tls_vs_rustls() {
    const N: usize = 300;
    let pki = Pki::new(30);
    let server = server_config(&pki, Server::Mutual);
    let client = rustls_client(&pki);
    let mut rng = ChaCha20Rng::seed_from_u64(30);
    // Warm up both paths (and check they work) before timing.
    for _ in 0..5 {
        let _ = embedded_handshake(&pki, &server, &mut rng);
        let _ = rustls_handshake(&client, &server);
    }
    // Medians, not means: the build machine is shared and preemption
    // would otherwise dominate.
    let mut e = Vec::new();
    for _ in 0..N {
        let t = Instant::now();
        let server = embedded_handshake(&pki, &server, &mut rng);
        e.push((t.elapsed(), server));
    }
    let mut r = Vec::new();
    for _ in 0..N {
        let t = Instant::now();
        let server = rustls_handshake(&client, &server);
        r.push((t.elapsed(), server));
    }
    let (e_total, e_server, e_client) = medians(&e);
    let (r_total, r_server, r_client) = medians(&r);
    std::println!(
        "full mutual TLS 1.3 handshake, median of {N}: \
         embedded-tls client {e_client:?} (+ rustls server {e_server:?} = {e_total:?}), \
         rustls client {r_client:?} (+ rustls server {r_server:?} = {r_total:?}); \
         client ratio {:.1}, total ratio {:.1}",
        e_client.as_secs_f64() / r_client.as_secs_f64(),
        e_total.as_secs_f64() / r_total.as_secs_f64()
    );
}

/// Medians of (total, server share, client share) of timed handshakes.
fn medians(runs: &[(Duration, Duration)]) -> (Duration, Duration, Duration) {
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    (
        median(runs.iter().map(|r| r.0).collect()),
        median(runs.iter().map(|r| r.1).collect()),
        median(runs.iter().map(|r| r.0.saturating_sub(r.1)).collect()),
    )
}
