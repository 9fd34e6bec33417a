//! TLS fixtures for measurements: both identities, a rustls 0.23 server
//! (ring) that requires the client's certificate, an in-memory transport
//! that pumps that server, and one full mutual TLS 1.3 handshake by
//! bmclink's client (embedded-tls + p256) or by a rustls client.
//!
//! The same approach as the core's TLS unit tests (core-nostd/src/tls/tests),
//! which cannot be shared across crates because they are `#[cfg(test)]`.

use std::collections::VecDeque;
use std::io::{Read as _, Write as _};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bmclink_core::cert::{self, CertParams, MAX_CERT_LEN};
use bmclink_core::tls::{Identity, PinnedTls, ServerAuth, TlsBuffers};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivateSec1KeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// The signing key type of both identities (p256's ECDSA key).
pub type SigningKey = p256::ecdsa::SigningKey;

/// Both identities: the host's (client) and the BMC's (server).
pub struct Pki {
    /// The host's P-256 key.
    pub client_key: SigningKey,
    /// The host's self-signed certificate.
    pub client_der: Vec<u8>,
    /// The BMC's P-256 key.
    pub server_key: SigningKey,
    /// The BMC's self-signed certificate.
    pub server_der: Vec<u8>,
}

impl Pki {
    /// Fresh identities from `seed`, valid from an hour ago.
    pub fn new(seed: u64) -> Pki {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let start = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            - 3600;
        let mut make = |key: &SigningKey, params: &CertParams| {
            let mut out = [0u8; MAX_CERT_LEN];
            let n = cert::generate(key, params, &mut rng, &mut out).expect("certificate fits");
            out[..n].to_vec()
        };
        let client_key = cert::identity::random(&mut ChaCha20Rng::seed_from_u64(seed ^ 1));
        let server_key = cert::identity::random(&mut ChaCha20Rng::seed_from_u64(seed ^ 2));
        let client_der = make(&client_key, &CertParams::client("host", start));
        let server_der = make(
            &server_key,
            &CertParams::client("bmc", start).with_server_auth(),
        );
        Pki {
            client_key,
            client_der,
            server_key,
            server_der,
        }
    }

    /// The pin of the server's certificate.
    pub fn server_pin(&self) -> [u8; 32] {
        cert::fingerprint(&self.server_der)
    }

    /// The client identity as bmclink's TLS client takes it.
    pub fn identity(&self) -> Identity {
        Identity::new(self.client_key.clone(), &self.client_der).expect("the certificate fits")
    }
}

/// SEC1 `ECPrivateKey` DER of a P-256 key (RFC 5915), what rustls and
/// OpenSSL load.
pub fn sec1_der(key: &SigningKey) -> Vec<u8> {
    let point = key.verifying_key().to_encoded_point(false);
    let mut der = vec![0x30, 0x77, 0x02, 0x01, 0x01, 0x04, 0x20];
    der.extend_from_slice(&key.to_bytes());
    der.extend_from_slice(&[0xa0, 0x0a, 0x06, 0x08]);
    der.extend_from_slice(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]);
    der.extend_from_slice(&[0xa1, 0x44, 0x03, 0x42, 0x00]);
    der.extend_from_slice(point.as_bytes());
    der
}

fn private_key(key: &SigningKey) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(sec1_der(key)))
}

/// The ring provider narrowed to what bmclink speaks: TLS_AES_128_GCM_SHA256,
/// secp256r1.
pub fn ring_provider() -> Arc<rustls::crypto::CryptoProvider> {
    let mut p = rustls::crypto::ring::default_provider();
    p.cipher_suites = vec![rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256];
    p.kx_groups = vec![rustls::crypto::ring::kx_group::SECP256R1];
    Arc::new(p)
}

/// A TLS 1.3 rustls server that requires the client certificate of `pki`.
pub fn server_config(pki: &Pki) -> Arc<rustls::ServerConfig> {
    let provider = ring_provider();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(pki.client_der.clone()))
        .expect("client certificate parses");
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .expect("client verifier");
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![CertificateDer::from(pki.server_der.clone())],
            private_key(&pki.server_key),
        )
        .expect("server certificate");
    Arc::new(config)
}

/// The rustls twin of bmclink's pinning verifier: fingerprint pin plus the
/// TLS 1.3 signature.
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

/// A rustls client with the same identity, pin and suite as bmclink's, and
/// no resumption (every handshake full, as embedded-tls's).
pub fn rustls_client(pki: &Pki) -> Arc<rustls::ClientConfig> {
    let provider = ring_provider();
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedServer {
            pin: pki.server_pin(),
            provider,
        }))
        .with_client_auth_cert(
            vec![CertificateDer::from(pki.client_der.clone())],
            private_key(&pki.client_key),
        )
        .expect("client certificate");
    config.resumption = rustls::client::Resumption::disabled();
    Arc::new(config)
}

/// The client's end of an in-memory connection to a rustls server, pumped
/// on every read and write; the server echoes application data.
pub struct Duplex {
    /// The server connection.
    pub server: rustls::ServerConnection,
    /// Time spent inside the server, to tell the client's share.
    pub server_time: Duration,
    to_client: VecDeque<u8>,
}

impl Duplex {
    /// A fresh server connection.
    pub fn new(config: Arc<rustls::ServerConfig>) -> Duplex {
        Duplex {
            server: rustls::ServerConnection::new(config).expect("server connection"),
            server_time: Duration::ZERO,
            to_client: VecDeque::new(),
        }
    }

    fn serve(&mut self, mut input: &[u8]) {
        let started = Instant::now();
        while !input.is_empty() {
            match self.server.read_tls(&mut input) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            if self.server.process_new_packets().is_err() {
                break;
            }
        }
        let mut plain = Vec::new();
        let _ = self.server.reader().read_to_end(&mut plain);
        if !plain.is_empty() {
            let _ = self.server.writer().write_all(&plain);
        }
        let mut out = Vec::new();
        while self.server.wants_write() {
            if self.server.write_tls(&mut out).is_err() {
                break;
            }
        }
        self.to_client.extend(out);
        self.server_time += started.elapsed();
    }
}

impl embedded_io::ErrorType for Duplex {
    type Error = embedded_io::ErrorKind;
}

impl embedded_io::Read for Duplex {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        self.serve(&[]);
        let n = buf.len().min(self.to_client.len());
        for (d, s) in buf.iter_mut().zip(self.to_client.drain(..n)) {
            *d = s;
        }
        Ok(n)
    }
}

impl embedded_io::Write for Duplex {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.serve(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// One full mutual handshake by bmclink's client, its P-256 work done by
/// `backend`, against `server`, over a [`Duplex`]; returns the time spent
/// in the server. Panics when the
/// handshake fails or the server did not get the client certificate.
pub fn bmclink_handshake(
    pki: &Pki,
    server: &Arc<rustls::ServerConfig>,
    buffers: &mut TlsBuffers,
    rng: &mut ChaCha20Rng,
    backend: &'static dyn bmclink_core::tls::P256Backend,
) -> Duration {
    let mut duplex = Duplex::new(server.clone());
    let tls = PinnedTls::open_as(
        &mut duplex,
        buffers,
        ServerAuth::Pinned(pki.server_pin()),
        pki.identity(),
        rng,
        backend,
    );
    assert!(tls.is_ok(), "handshake failed: {:?}", tls.err());
    drop(tls);
    assert!(!duplex.server.is_handshaking());
    assert!(duplex.server.peer_certificates().is_some());
    duplex.server_time
}

/// One full mutual handshake by a rustls client against `server`, in
/// memory; returns the time spent in the server.
pub fn rustls_handshake(
    client: &Arc<rustls::ClientConfig>,
    server: &Arc<rustls::ServerConfig>,
) -> Duration {
    let mut server_time = Duration::ZERO;
    let name = ServerName::try_from("bmc").expect("name");
    let mut c = rustls::ClientConnection::new(client.clone(), name).expect("client");
    let mut s = rustls::ServerConnection::new(server.clone()).expect("server");
    let mut buf = Vec::new();
    while c.is_handshaking() || s.is_handshaking() {
        buf.clear();
        while c.wants_write() {
            c.write_tls(&mut buf).expect("client writes");
        }
        let started = Instant::now();
        let mut rd = &buf[..];
        while !rd.is_empty() {
            s.read_tls(&mut rd).expect("server reads");
            s.process_new_packets().expect("server accepts");
        }
        buf.clear();
        while s.wants_write() {
            s.write_tls(&mut buf).expect("server writes");
        }
        server_time += started.elapsed();
        let mut rd = &buf[..];
        while !rd.is_empty() {
            c.read_tls(&mut rd).expect("client reads");
            c.process_new_packets().expect("client accepts");
        }
    }
    assert!(s.peer_certificates().is_some());
    assert_eq!(c.handshake_kind(), Some(rustls::HandshakeKind::Full));
    server_time
}

/// A blocking byte stream as an `embedded_io` transport (a Unix socket or
/// a TCP stream).
pub struct Stream<S>(pub S);

impl<S> embedded_io::ErrorType for Stream<S> {
    type Error = embedded_io::ErrorKind;
}

impl<S: std::io::Read> embedded_io::Read for Stream<S> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        self.0.read(buf).map_err(|_| embedded_io::ErrorKind::Other)
    }
}

impl<S: std::io::Write> embedded_io::Write for Stream<S> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.0.write(buf).map_err(|_| embedded_io::ErrorKind::Other)
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        self.0.flush().map_err(|_| embedded_io::ErrorKind::Other)
    }
}

/// Serves one connection on `stream` until the handshake completes and the
/// client closes it; true when the client presented its certificate.
pub fn serve_one<S: std::io::Read + std::io::Write>(
    config: Arc<rustls::ServerConfig>,
    mut stream: S,
) -> bool {
    let Ok(mut conn) = rustls::ServerConnection::new(config) else {
        return false;
    };
    while conn.is_handshaking() {
        if conn.complete_io(&mut stream).is_err() {
            return false;
        }
    }
    let authenticated = conn.peer_certificates().is_some();
    // Echo until the client goes away. Plaintext first: rustls does not
    // read more while received plaintext waits (`wants_read` is false), so
    // a `complete_io` that does nothing is not the end until it is drained.
    loop {
        let mut plain = Vec::new();
        let _ = conn.reader().read_to_end(&mut plain);
        if !plain.is_empty() && conn.writer().write_all(&plain).is_err() {
            break;
        }
        match conn.complete_io(&mut stream) {
            Err(_) => break,
            Ok((0, 0)) if plain.is_empty() => break,
            Ok(_) => {}
        }
    }
    authenticated
}

/// Peak stack of bmclink's TLS client through a full mutual handshake plus
/// one echo round trip (so the server has read our last flight before the
/// stream closes), by [`crate::bench_stack::peak_stack`]. The server runs
/// on another thread over a Unix socket pair, so only the client's stack is
/// painted; the record buffers are on the heap, as in `AgentBuffers`. The
/// P-256 work is `backend`'s.
pub fn handshake_peak_stack(
    pki: &Pki,
    seed: u64,
    backend: &'static dyn bmclink_core::tls::P256Backend,
) -> Result<crate::bench_stack::StackUse, String> {
    let config = server_config(pki);
    let (client_end, server_end) =
        std::os::unix::net::UnixStream::pair().map_err(|e| e.to_string())?;
    let server = std::thread::spawn(move || serve_one(config, server_end));
    let mut buffers = Box::new(TlsBuffers::new());
    let key = pki.client_key.clone();
    let cert = pki.client_der.clone();
    let pin = pki.server_pin();
    let (client, used) = crate::bench_stack::peak_stack(move || {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let identity = Identity::new(key, &cert).expect("the certificate fits");
        let mut tls = PinnedTls::open_as(
            Stream(client_end),
            &mut buffers,
            ServerAuth::Pinned(pin),
            identity,
            &mut rng,
            backend,
        )
        .map_err(|e| format!("handshake: {e:?}"))?;
        tls.send(b"ping").map_err(|e| format!("send: {e:?}"))?;
        let mut echo = [0u8; 4];
        let mut got = 0;
        while got < echo.len() {
            match tls.read(&mut echo[got..]) {
                Ok(0) => return Err("echo: end of stream".to_string()),
                Ok(n) => got += n,
                Err(e) => return Err(format!("echo: {e:?}")),
            }
        }
        if &echo != b"ping" {
            return Err(format!("echo: got {echo:?}"));
        }
        Ok(())
    });
    let served = server.join().map_err(|_| "server panicked".to_string())?;
    client?;
    if !served {
        return Err("the server did not get the client certificate".into());
    }
    Ok(used)
}
