//! The simulated BMC's TLS side: its certificate, a rustls 0.23 server (ring
//! provider only) that asks for a client certificate, and [`TlsSession`], the
//! sans-I/O glue between one TCP connection's bytes, rustls and the channel
//! [`Responder`].
//!
//! Client certificates: at the handshake the BMC accepts any well-formed,
//! self-signed P-256 certificate whose holder proves the key
//! ([`SelfSignedClientVerifier`]); enrollment happens inside TLS, so whether
//! that certificate is *enrolled* is the responder's decision, by its
//! SHA-256 fingerprint ([`Responder::client_fingerprint`]).

use std::io::{Read, Write};
use std::sync::Arc;

use bmclink_core::cert::{self, CertParams, MAX_CERT_LEN};
use p256::ecdsa::{SigningKey, VerifyingKey};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{ring, CryptoProvider};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivateSec1KeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme,
};

use crate::bmc::{BmcConfig, BmcState};
use crate::responder::{Next, Responder};
use crate::timeline;

/// A P-256 key and the self-signed certificate made for it.
#[derive(Clone)]
pub struct TlsIdentity {
    /// The private key.
    pub key: SigningKey,
    /// The certificate, DER.
    pub der: Vec<u8>,
}

impl TlsIdentity {
    /// A deterministic identity from `seed`: a fresh key and a certificate
    /// naming `common_name`, valid ten years from `not_before_unix`, made by
    /// the core's own generator (`server_auth` adds the serverAuth EKU).
    pub fn generate(seed: u64, common_name: &str, not_before_unix: u64, server_auth: bool) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let key = cert::identity::random(&mut rng);
        let mut params = CertParams::client(common_name, not_before_unix);
        if server_auth {
            params = params.with_server_auth();
        }
        let mut out = [0u8; MAX_CERT_LEN];
        let n = cert::generate(&key, &params, &mut rng, &mut out)
            .expect("the core generates a certificate for a valid name and time");
        TlsIdentity {
            key,
            der: out[..n].to_vec(),
        }
    }

    /// SHA-256 of the certificate's DER: what the other side pins.
    pub fn fingerprint(&self) -> [u8; 32] {
        cert::fingerprint(&self.der)
    }

    /// The certificate as rustls takes it.
    pub fn chain(&self) -> Vec<CertificateDer<'static>> {
        vec![CertificateDer::from(self.der.clone())]
    }

    /// The key as rustls loads it (SEC1 `ECPrivateKey`, RFC 5915).
    pub fn private_key(&self) -> PrivateKeyDer<'static> {
        let point = VerifyingKey::from(&self.key).to_encoded_point(false);
        let mut der = vec![0x30, 0x77, 0x02, 0x01, 0x01, 0x04, 0x20];
        der.extend_from_slice(&self.key.to_bytes());
        der.extend_from_slice(&[0xa0, 0x0a, 0x06, 0x08]);
        der.extend_from_slice(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]);
        der.extend_from_slice(&[0xa1, 0x44, 0x03, 0x42, 0x00]);
        der.extend_from_slice(point.as_bytes());
        PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(der))
    }
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "TlsIdentity({})",
            cert::ShortFingerprint::of(&self.fingerprint())
        )
    }
}

/// The ring provider narrowed to what bmclink speaks: TLS 1.3
/// AES-128-GCM-SHA256 over secp256r1, or for a TLS 1.2-only BMC
/// ECDHE-ECDSA-AES128-GCM-SHA256.
pub fn ring_provider(tls12_only: bool) -> Arc<CryptoProvider> {
    let mut p = ring::default_provider();
    p.cipher_suites = if tls12_only {
        vec![ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]
    } else {
        vec![ring::cipher_suite::TLS13_AES_128_GCM_SHA256]
    };
    p.kx_groups = vec![ring::kx_group::SECP256R1];
    Arc::new(p)
}

/// The BMC's rustls server configuration presenting `identity`; TLS 1.3
/// only, or TLS 1.2 only with `tls12_only` (a peer the agent must refuse).
pub fn server_config(
    identity: &TlsIdentity,
    tls12_only: bool,
) -> Result<Arc<ServerConfig>, rustls::Error> {
    let provider = ring_provider(tls12_only);
    let versions: &[&rustls::SupportedProtocolVersion] = if tls12_only {
        &[&rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13]
    };
    let verifier = Arc::new(SelfSignedClientVerifier {
        provider: provider.clone(),
    });
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(identity.chain(), identity.private_key())?;
    Ok(Arc::new(config))
}

/// Requires a client certificate and accepts any well-formed self-signed
/// P-256 one whose holder signs the handshake with its key. No CA, no
/// names, no validity check: the client's own agent refuses to use an
/// expired identity (T3), and the enrolled set is checked by fingerprint
/// after the handshake.
#[derive(Debug)]
pub struct SelfSignedClientVerifier {
    provider: Arc<CryptoProvider>,
}

impl SelfSignedClientVerifier {
    /// A verifier checking signatures with `provider`'s algorithms.
    pub fn new(provider: Arc<CryptoProvider>) -> Self {
        SelfSignedClientVerifier { provider }
    }
}

impl ClientCertVerifier for SelfSignedClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let view = cert::parse(end_entity.as_ref())
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        view.verify_self_signed()
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadSignature))?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
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
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Ways the BMC mangles its own TLS byte stream to the client (misbehaviour
/// tests). Offsets count bytes of the server's TLS stream from its first
/// byte (the ServerHello record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsTamper {
    /// Only the first `n` bytes of the stream reach the client; then the
    /// BMC closes the TCP connection (a truncated record or flight).
    TruncateAt(usize),
    /// The ServerHello record goes out intact, then these bytes instead of
    /// the rest of the flight; then the BMC closes the TCP connection.
    GarbageAfterServerHello(Vec<u8>),
    /// Right after WELCOME, a well-framed application_data record whose
    /// body is garbage (it fails authentication at the client). The
    /// connection stays open.
    GarbageRecordAfterWelcome,
    /// Right after WELCOME, these bytes as they are: what a host on the
    /// path can inject into the BMC→host stream without any key (a
    /// plaintext record). The connection stays open.
    InjectAfterWelcome(Vec<u8>),
}

/// One TLS connection on the BMC: client TLS bytes in, server TLS bytes
/// out, plaintext through the [`Responder`].
pub struct TlsSession {
    conn: rustls::ServerConnection,
    tamper: Option<TlsTamper>,
    /// Bytes of the server's TLS stream produced so far (before tampering).
    sent: usize,
    welcomed: bool,
}

impl TlsSession {
    /// A session presenting what `config` says, mangled by `tamper`.
    pub fn new(
        config: Arc<ServerConfig>,
        tamper: Option<TlsTamper>,
    ) -> Result<Self, rustls::Error> {
        Ok(TlsSession {
            conn: rustls::ServerConnection::new(config)?,
            tamper,
            sent: 0,
            welcomed: false,
        })
    }

    /// Feeds TLS bytes received from the client (possibly none, to flush);
    /// appends TLS bytes for the client to `out`.
    pub fn on_bytes(
        &mut self,
        mut input: &[u8],
        responder: &mut Responder,
        cfg: &BmcConfig,
        state: &mut BmcState,
        out: &mut Vec<u8>,
    ) -> Next {
        let mut next = Next::Open;
        while !input.is_empty() {
            match self.conn.read_tls(&mut input) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    timeline::emit("bmc", format!("TLS: cannot take client bytes: {e}"));
                    next = Next::Close;
                    break;
                }
            }
            if let Err(e) = self.conn.process_new_packets() {
                let (id, what) = if self.conn.is_handshaking() {
                    ("BMC0023", "TLS handshake with the OS agent failed")
                } else {
                    ("BMC0024", "TLS error on the OS agent's connection")
                };
                timeline::emit("bmc", format!("{what}: {e}"));
                state.log.add(id, format!("{what}: {e}"));
                // Whatever rustls has left to say is its alert.
                self.drain(out);
                return Next::Close;
            }
        }
        if !self.conn.is_handshaking() && responder.client_fingerprint.is_none() {
            if let Some(peer) = self.conn.peer_certificates().and_then(|c| c.first()) {
                let fp = cert::fingerprint(peer.as_ref());
                timeline::emit(
                    "bmc",
                    format!(
                        "TLS 1.3 up, client certificate {}",
                        cert::ShortFingerprint::of(&fp)
                    ),
                );
                responder.client_fingerprint = Some(fp);
            }
        }
        let mut plain = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match self.conn.reader().read(&mut buf) {
                Ok(0) => {
                    // close_notify from the client.
                    timeline::emit("bmc", "<- close_notify");
                    next = Next::Close;
                    break;
                }
                Ok(n) => plain.extend_from_slice(&buf[..n]),
                Err(_) => break, // WouldBlock: nothing more yet.
            }
        }
        if !plain.is_empty() {
            let mut reply = Vec::new();
            if responder.on_bytes(&plain, cfg, state, &mut reply) == Next::Close {
                next = Next::Close;
            }
            if !reply.is_empty() && self.conn.writer().write_all(&reply).is_err() {
                next = Next::Close;
            }
        }
        if next == Next::Close {
            self.conn.send_close_notify();
        }
        let just_welcomed = !self.welcomed && responder.is_greeted();
        self.welcomed |= responder.is_greeted();
        if self.drain(out) == Next::Close {
            next = Next::Close;
        }
        match &self.tamper {
            Some(TlsTamper::GarbageRecordAfterWelcome) if just_welcomed => {
                timeline::emit("bmc", "-> (garbage TLS record after WELCOME)");
                out.extend_from_slice(&[0x17, 0x03, 0x03, 0x00, 0x20]);
                out.extend((0..32u8).map(|i| i.wrapping_mul(37) ^ 0xa5));
            }
            Some(TlsTamper::InjectAfterWelcome(bytes)) if just_welcomed => {
                timeline::emit(
                    "bmc",
                    format!("-> (injected {} bytes after WELCOME)", bytes.len()),
                );
                out.extend_from_slice(bytes);
            }
            _ => {}
        }
        next
    }

    /// Moves what rustls wants to send to `out`, through the tamper.
    fn drain(&mut self, out: &mut Vec<u8>) -> Next {
        let mut raw = Vec::new();
        while self.conn.wants_write() {
            if self.conn.write_tls(&mut raw).is_err() {
                break;
            }
        }
        if raw.is_empty() {
            return Next::Open;
        }
        let start = self.sent;
        self.sent += raw.len();
        match &self.tamper {
            Some(TlsTamper::TruncateAt(n)) => {
                let keep = n.saturating_sub(start).min(raw.len());
                out.extend_from_slice(&raw[..keep]);
                if self.sent >= *n {
                    timeline::emit("bmc", format!("-> (TLS stream cut at byte {n})"));
                    return Next::Close;
                }
                Next::Open
            }
            Some(TlsTamper::GarbageAfterServerHello(garbage)) if start == 0 => {
                let hello = raw
                    .get(3..5)
                    .map(|l| 5 + usize::from(u16::from_be_bytes([l[0], l[1]])))
                    .unwrap_or(raw.len())
                    .min(raw.len());
                out.extend_from_slice(&raw[..hello]);
                out.extend_from_slice(garbage);
                timeline::emit(
                    "bmc",
                    format!("-> (ServerHello, then {} garbage bytes)", garbage.len()),
                );
                Next::Close
            }
            _ => {
                out.extend_from_slice(&raw);
                Next::Open
            }
        }
    }

    /// The negotiated protocol version, once known.
    pub fn protocol_version(&self) -> Option<rustls::ProtocolVersion> {
        self.conn.protocol_version()
    }
}
