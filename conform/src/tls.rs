//! The rig's TLS side: fresh P-256 client identities made by the core's
//! certificate generator, and rustls client configurations (the agent's
//! TLS 1.3 offer, a TLS 1.2-only offer, a client without a certificate).
//!
//! The rig does not authenticate the BMC at the handshake: it records the
//! certificate the BMC presented (its SHA-256 is what the enrollment proofs
//! bind, DESIGN §5a) and checks it against `--bmc-fingerprint` in a check of
//! its own, so a wrong certificate is a verdict, not a connection error.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bmclink_core::cert::{self, CertParams, MAX_CERT_LEN};
use p256::ecdsa::{SigningKey, VerifyingKey};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{ring, CryptoProvider};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivateSec1KeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

/// A client identity: a P-256 key and its self-signed certificate.
#[derive(Clone)]
pub struct Identity {
    key: SigningKey,
    /// The certificate, DER.
    pub der: Vec<u8>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Identity({})",
            cert::ShortFingerprint::of(&self.fingerprint())
        )
    }
}

impl Identity {
    /// A fresh identity from the OS RNG, valid from now for ten years.
    pub fn fresh(common_name: &str) -> Result<Identity, String> {
        let mut rng = rand_core::OsRng;
        let key = cert::identity::random(&mut rng);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        // An hour back, for a BMC whose clock runs a little behind.
        let params = CertParams::client(common_name, now.saturating_sub(3600));
        let mut out = [0u8; MAX_CERT_LEN];
        let n = cert::generate(&key, &params, &mut rng, &mut out)
            .map_err(|e| format!("cannot make a client certificate: {e:?}"))?;
        Ok(Identity {
            key,
            der: out.get(..n).unwrap_or_default().to_vec(),
        })
    }

    /// SHA-256 of the certificate's DER: `client_fp` of DESIGN §5a.
    pub fn fingerprint(&self) -> [u8; 32] {
        cert::fingerprint(&self.der)
    }

    fn chain(&self) -> Vec<CertificateDer<'static>> {
        vec![CertificateDer::from(self.der.clone())]
    }

    /// The key as rustls loads it (SEC1 `ECPrivateKey`, RFC 5915).
    fn private_key(&self) -> PrivateKeyDer<'static> {
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

/// What the rig offers at the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// What the agent offers: TLS 1.3, AES-128-GCM-SHA256, secp256r1.
    Agent,
    /// TLS 1.2 only (ECDHE-ECDSA with AES-GCM), which the BMC must refuse.
    Tls12Only,
}

fn provider(offer: Offer) -> Arc<CryptoProvider> {
    let mut p = ring::default_provider();
    p.cipher_suites = match offer {
        Offer::Agent => vec![ring::cipher_suite::TLS13_AES_128_GCM_SHA256],
        Offer::Tls12Only => vec![
            ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        ],
    };
    p.kx_groups = vec![ring::kx_group::SECP256R1];
    Arc::new(p)
}

/// A client configuration offering `offer`, presenting `identity` (none: a
/// client without a certificate).
pub fn client_config(
    offer: Offer,
    identity: Option<&Identity>,
) -> Result<Arc<ClientConfig>, String> {
    let provider = provider(offer);
    let versions: &[&rustls::SupportedProtocolVersion] = match offer {
        Offer::Agent => &[&rustls::version::TLS13],
        Offer::Tls12Only => &[&rustls::version::TLS12],
    };
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| format!("TLS configuration: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(RecordOnly { provider }));
    let config = match identity {
        Some(id) => builder
            .with_client_auth_cert(id.chain(), id.private_key())
            .map_err(|e| format!("client certificate: {e}"))?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// The name the rig sends in SNI (the BMC has no DNS name on the USBNIC).
pub fn server_name() -> ServerName<'static> {
    ServerName::try_from("bmc")
        .unwrap_or(ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()))
}

/// Accepts any server certificate whose holder signs the handshake with its
/// key; the certificate itself is judged by the checks.
#[derive(Debug)]
struct RecordOnly {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for RecordOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
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
