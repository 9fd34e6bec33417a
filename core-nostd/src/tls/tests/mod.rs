//! The embedded-tls client against a rustls 0.23 server (ring provider) in
//! the same thread: an in-memory duplex pumps the server on every read and
//! write, so every test is deterministic and needs no socket.

extern crate std;

mod duplex;
mod handshake;
mod mitm;
mod openssl;
mod patches;
mod scripted;
mod stepped;
mod verifier;

use std::sync::Arc;
use std::vec;
use std::vec::Vec;

use p256::ecdsa::{SigningKey, VerifyingKey};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivateSec1KeyDer};

use crate::cert::{self, CertParams, MAX_CERT_LEN};

/// Both identities of a test: the host's and the simulated BMC's.
pub struct Pki {
    pub client_key: SigningKey,
    pub client_der: Vec<u8>,
    pub server_key: SigningKey,
    pub server_der: Vec<u8>,
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn make_cert(key: &SigningKey, params: &CertParams, rng: &mut ChaCha20Rng) -> Vec<u8> {
    let mut out = [0u8; MAX_CERT_LEN];
    let n = cert::generate(key, params, rng, &mut out).unwrap();
    out[..n].to_vec()
}

impl Pki {
    pub fn new(seed: u64) -> Pki {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        // An hour ago, so the rustls server's clock finds it valid.
        let start = unix_now() - 3600;
        let client_key = cert::identity::random(&mut rng);
        let client_der = make_cert(&client_key, &CertParams::client("host", start), &mut rng);
        let server_key = cert::identity::random(&mut rng);
        let server_der = make_cert(
            &server_key,
            &CertParams::client("bmc", start).with_server_auth(),
            &mut rng,
        );
        Pki {
            client_key,
            client_der,
            server_key,
            server_der,
        }
    }

    pub fn server_pin(&self) -> [u8; 32] {
        cert::fingerprint(&self.server_der)
    }
}

/// SEC1 `ECPrivateKey` DER of a P-256 key (RFC 5915), what rustls loads.
pub fn sec1_der(key: &SigningKey) -> PrivateKeyDer<'static> {
    let point = VerifyingKey::from(key).to_encoded_point(false);
    let mut der = vec![0x30, 0x77, 0x02, 0x01, 0x01, 0x04, 0x20];
    der.extend_from_slice(&key.to_bytes());
    der.extend_from_slice(&[0xa0, 0x0a, 0x06, 0x08]);
    der.extend_from_slice(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]);
    der.extend_from_slice(&[0xa1, 0x44, 0x03, 0x42, 0x00]);
    der.extend_from_slice(point.as_bytes());
    PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(der))
}

/// The ring provider narrowed to what bmclink speaks.
pub fn ring_provider() -> Arc<rustls::crypto::CryptoProvider> {
    let mut p = rustls::crypto::ring::default_provider();
    p.cipher_suites = vec![rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256];
    p.kx_groups = vec![rustls::crypto::ring::kx_group::SECP256R1];
    Arc::new(p)
}

/// How the simulated BMC's TLS server behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// TLS 1.3, requires the enrolled client certificate.
    Mutual,
    /// TLS 1.3, but the enrolled set holds another certificate.
    RefusesClient,
    /// TLS 1.3 without client authentication.
    NoClientAuth,
    /// TLS 1.2 only.
    Tls12Only,
    /// Presents the pinned certificate but signs with another key.
    WrongKey,
}

#[derive(Debug)]
struct FixedCert(Arc<rustls::sign::CertifiedKey>);

impl rustls::server::ResolvesServerCert for FixedCert {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }
}

pub fn server_config(pki: &Pki, mode: Server) -> Arc<rustls::ServerConfig> {
    let provider = ring_provider();
    let versions: &[&rustls::SupportedProtocolVersion] = if mode == Server::Tls12Only {
        &[&rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13]
    };
    let mut p = (*provider).clone();
    if mode == Server::Tls12Only {
        p.cipher_suites =
            vec![rustls::crypto::ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256];
    }
    let builder = rustls::ServerConfig::builder_with_provider(Arc::new(p))
        .with_protocol_versions(versions)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    let root = if mode == Server::RefusesClient {
        Pki::new(99).client_der
    } else {
        pki.client_der.clone()
    };
    roots.add(CertificateDer::from(root)).unwrap();
    let builder = if mode == Server::NoClientAuth {
        builder.with_no_client_auth()
    } else {
        builder.with_client_cert_verifier(
            rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider.clone(),
            )
            .build()
            .unwrap(),
        )
    };
    let chain = vec![CertificateDer::from(pki.server_der.clone())];
    let config = if mode == Server::WrongKey {
        let other = Pki::new(98).server_key;
        let key = provider
            .key_provider
            .load_private_key(sec1_der(&other))
            .unwrap();
        builder.with_cert_resolver(Arc::new(FixedCert(Arc::new(
            rustls::sign::CertifiedKey::new(chain, key),
        ))))
    } else {
        builder
            .with_single_cert(chain, sec1_der(&pki.server_key))
            .unwrap()
    };
    Arc::new(config)
}
