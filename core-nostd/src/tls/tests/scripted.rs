//! A scripted TLS 1.3 server, written from RFC 8446 with the RustCrypto
//! primitives: it answers the ClientHello with a complete, correctly keyed
//! and signed server flight whose extensions the test chooses, then plays
//! records the test scripts after the handshake (encrypted under the server
//! application traffic key, or injected in plaintext as an on-path host
//! could), and keeps what the client wrote. It sends the code points a
//! current OpenSSL puts in EncryptedExtensions and CertificateRequest,
//! which embedded-tls 0.19 did not know, without needing that OpenSSL.

extern crate std;

use std::vec;
use std::vec::Vec;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes128Gcm, Nonce};
use hkdf::Hkdf;
use p256::ecdh::EphemeralSecret;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::DerSignature;
use p256::PublicKey;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use sha2::{Digest, Sha256};

use super::mitm::{expand_label, parse_client_hello};
use super::Pki;

/// A record the server sends after its Finished.
#[derive(Clone, Debug)]
pub enum After {
    /// Encrypted under the server application traffic key, with this inner
    /// content type and content.
    Sealed(u8, Vec<u8>),
    /// In plaintext with this outer content type (no key needed).
    Plain(u8, Vec<u8>),
}

/// The server's script.
#[derive(Clone, Debug)]
pub struct Script {
    /// EncryptedExtensions' extension block (without its length).
    pub ee_extensions: Vec<u8>,
    /// CertificateRequest's extension block (without its length); `None`
    /// sends no CertificateRequest.
    pub cr_extensions: Option<Vec<u8>>,
    /// Records after the server Finished.
    pub after: Vec<After>,
}

/// `type(u16) len(u16) body`.
pub fn extension(kind: u16, body: &[u8]) -> Vec<u8> {
    let mut out = kind.to_be_bytes().to_vec();
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// A `u16`-length list of `u16` code points (supported_groups,
/// signature_algorithms).
pub fn u16_list(values: &[u16]) -> Vec<u8> {
    let mut out = ((values.len() * 2) as u16).to_be_bytes().to_vec();
    for v in values {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out
}

/// OpenSSL 3.5's default groups as its EncryptedExtensions lists them
/// (`openssl s_server` / a pyOpenSSL server on a current `cryptography`
/// wheel): X25519MLKEM768, x25519, secp256r1, x448, secp384r1, secp521r1,
/// ffdhe2048..8192 and, unknown to embedded-tls 0.19, curveSM2 (0x0029),
/// curveSM2MLKEM768 (0x11ee) and the X25519MLKEM768 code point 0x11ec.
pub const OPENSSL35_GROUPS: &[u16] = &[
    0x11ec, 0x001d, 0x0017, 0x001e, 0x0018, 0x0019, 0x0029, 0x11ee, 0x0100, 0x0101, 0x0102, 0x0103,
    0x0104,
];

/// OpenSSL 3.5's CertificateRequest signature_algorithms, with sm2sig_sm3
/// (0x0708) and the ML-DSA code points.
pub const OPENSSL35_SIGALGS: &[u16] = &[
    0x0905, 0x0906, 0x0904, 0x0403, 0x0503, 0x0603, 0x0807, 0x0808, 0x081a, 0x081b, 0x081c, 0x0809,
    0x080a, 0x080b, 0x0804, 0x0805, 0x0806, 0x0708, 0x0401, 0x0501, 0x0601, 0x0303, 0x0301, 0x0203,
    0x0201,
];

/// The default script: no extra EE extensions, a CertificateRequest asking
/// for ecdsa_secp256r1_sha256, nothing after the handshake.
pub fn plain_script() -> Script {
    Script {
        ee_extensions: Vec::new(),
        cr_extensions: Some(extension(0x000d, &u16_list(&[0x0403]))),
        after: Vec::new(),
    }
}

fn handshake_message(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![kind];
    out.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(body);
    out
}

fn nonce(iv: &[u8], seq: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n.copy_from_slice(iv);
    for (b, s) in n[4..].iter_mut().zip(seq.to_be_bytes()) {
        *b ^= s;
    }
    n
}

/// One encrypted record: `inner` + its content type, sealed.
pub fn seal(key: &[u8], iv: &[u8], seq: u64, inner: &[u8], content_type: u8) -> Vec<u8> {
    let mut data = inner.to_vec();
    data.push(content_type);
    let len = (data.len() + 16) as u16;
    let header = [0x17, 0x03, 0x03, (len >> 8) as u8, len as u8];
    let tag = Aes128Gcm::new_from_slice(key)
        .unwrap()
        .encrypt_in_place_detached(Nonce::from_slice(&nonce(iv, seq)), &header, &mut data)
        .unwrap();
    let mut out = header.to_vec();
    out.extend_from_slice(&data);
    out.extend_from_slice(&tag);
    out
}

/// Opens an encrypted record (header included); `(content type, content)`.
pub fn open_record(key: &[u8], iv: &[u8], seq: u64, record: &[u8]) -> Option<(u8, Vec<u8>)> {
    let (header, body) = record.split_at(5);
    let (data, tag) = body.split_at(body.len().checked_sub(16)?);
    let mut data = data.to_vec();
    Aes128Gcm::new_from_slice(key)
        .unwrap()
        .decrypt_in_place_detached(
            Nonce::from_slice(&nonce(iv, seq)),
            header,
            &mut data,
            tag.into(),
        )
        .ok()?;
    while data.last() == Some(&0) {
        data.pop();
    }
    let kind = data.pop()?;
    Some((kind, data))
}

/// The traffic keys of one direction.
#[derive(Clone, Debug, Default)]
pub struct Keys {
    pub key: Vec<u8>,
    pub iv: Vec<u8>,
}

fn keys(secret: &[u8]) -> Keys {
    Keys {
        key: expand_label(secret, "key", &[], 16),
        iv: expand_label(secret, "iv", &[], 12),
    }
}

/// What the server computed, for the test to check the client's bytes.
#[derive(Clone, Debug, Default)]
pub struct Session {
    /// The client handshake traffic keys.
    pub client_handshake: Keys,
}

/// ServerHello, the encrypted server flight and the scripted records.
pub fn answer(pki: &Pki, client_hello: &[u8], script: &Script) -> (Vec<u8>, Session) {
    let (client_share, session_id) = parse_client_hello(client_hello);
    let mut rng = ChaCha20Rng::seed_from_u64(67);
    let secret = EphemeralSecret::random(&mut rng);
    let share = p256::EncodedPoint::from(secret.public_key());
    let share = share.as_bytes();

    let mut body = vec![0x03, 0x03];
    body.extend_from_slice(&[0x43; 32]);
    body.push(session_id.len() as u8);
    body.extend_from_slice(&session_id);
    body.extend_from_slice(&[0x13, 0x01, 0x00]);
    let mut ext = extension(0x002b, &[0x03, 0x04]);
    let mut ks = vec![0x00, 0x17];
    ks.extend_from_slice(&(share.len() as u16).to_be_bytes());
    ks.extend_from_slice(share);
    ext.extend_from_slice(&extension(0x0033, &ks));
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let server_hello = handshake_message(0x02, &body);

    let shared = secret.diffie_hellman(&PublicKey::from_sec1_bytes(&client_share).unwrap());
    let mut hash = Sha256::new()
        .chain_update(&client_hello[5..])
        .chain_update(&server_hello);
    let transcript = hash.clone().finalize();
    let (early, _) = Hkdf::<Sha256>::extract(None, &[0u8; 32]);
    let derived = expand_label(&early, "derived", &Sha256::digest([]), 32);
    let (hs_secret, _) = Hkdf::<Sha256>::extract(Some(&derived), shared.raw_secret_bytes());
    let s_hs = expand_label(&hs_secret, "s hs traffic", &transcript, 32);
    let c_hs = expand_label(&hs_secret, "c hs traffic", &transcript, 32);

    let mut flight = Vec::new();
    let mut add = |msg: Vec<u8>, hash: &mut Sha256| {
        hash.update(&msg);
        flight.extend_from_slice(&msg);
    };
    let mut ee = (script.ee_extensions.len() as u16).to_be_bytes().to_vec();
    ee.extend_from_slice(&script.ee_extensions);
    add(handshake_message(0x08, &ee), &mut hash);
    if let Some(cr_ext) = &script.cr_extensions {
        let mut cr = vec![0x00];
        cr.extend_from_slice(&(cr_ext.len() as u16).to_be_bytes());
        cr.extend_from_slice(cr_ext);
        add(handshake_message(0x0d, &cr), &mut hash);
    }
    let der = &pki.server_der;
    let mut cert = vec![0x00];
    cert.extend_from_slice(&((der.len() + 5) as u32).to_be_bytes()[1..]);
    cert.extend_from_slice(&(der.len() as u32).to_be_bytes()[1..]);
    cert.extend_from_slice(der);
    cert.extend_from_slice(&[0x00, 0x00]);
    add(handshake_message(0x0b, &cert), &mut hash);
    let mut signed = vec![0x20u8; 64];
    signed.extend_from_slice(b"TLS 1.3, server CertificateVerify\x00");
    signed.extend_from_slice(&hash.clone().finalize());
    let signature: DerSignature = pki.server_key.sign(&signed);
    let mut cv = vec![0x04, 0x03];
    cv.extend_from_slice(&(signature.as_bytes().len() as u16).to_be_bytes());
    cv.extend_from_slice(signature.as_bytes());
    add(handshake_message(0x0f, &cv), &mut hash);
    let finished_key = expand_label(&s_hs, "finished", &[], 32);
    let mut mac = <hmac::Hmac<Sha256> as hmac::Mac>::new_from_slice(&finished_key).unwrap();
    hmac::Mac::update(&mut mac, &hash.clone().finalize());
    let verify_data = hmac::Mac::finalize(mac).into_bytes();
    add(handshake_message(0x14, &verify_data), &mut hash);

    let derived = expand_label(&hs_secret, "derived", &Sha256::digest([]), 32);
    let (master, _) = Hkdf::<Sha256>::extract(Some(&derived), &[0u8; 32]);
    let s_ap = keys(&expand_label(&master, "s ap traffic", &hash.finalize(), 32));

    let mut out = vec![0x16, 0x03, 0x03];
    out.extend_from_slice(&(server_hello.len() as u16).to_be_bytes());
    out.extend_from_slice(&server_hello);
    let s_hs = keys(&s_hs);
    out.extend_from_slice(&seal(&s_hs.key, &s_hs.iv, 0, &flight, 0x16));
    let mut seq = 0;
    for record in &script.after {
        match record {
            After::Sealed(kind, inner) => {
                out.extend_from_slice(&seal(&s_ap.key, &s_ap.iv, seq, inner, *kind));
                seq += 1;
            }
            After::Plain(kind, inner) => {
                out.extend_from_slice(&[*kind, 0x03, 0x03]);
                out.extend_from_slice(&(inner.len() as u16).to_be_bytes());
                out.extend_from_slice(inner);
            }
        }
    }
    let session = Session {
        client_handshake: keys(&c_hs),
    };
    (out, session)
}

/// The scripted server as the client's transport: everything the client
/// writes is kept in `from_client`.
pub struct Scripted<'p> {
    pub pki: &'p Pki,
    pub script: Script,
    pub to_client: Vec<u8>,
    pub from_client: Vec<u8>,
    pub session: Option<Session>,
}

impl<'p> Scripted<'p> {
    pub fn new(pki: &'p Pki, script: Script) -> Self {
        Scripted {
            pki,
            script,
            to_client: Vec::new(),
            from_client: Vec::new(),
            session: None,
        }
    }

    /// The client's records after its ClientHello, split on record headers.
    pub fn client_records(&self) -> Vec<Vec<u8>> {
        let mut records = Vec::new();
        let mut rest = &self.from_client[..];
        while rest.len() >= 5 {
            let len = u16::from_be_bytes([rest[3], rest[4]]) as usize;
            let end = (5 + len).min(rest.len());
            records.push(rest[..end].to_vec());
            rest = &rest[end..];
        }
        records.remove(0);
        records
    }
}

impl embedded_io::ErrorType for Scripted<'_> {
    type Error = embedded_io::ErrorKind;
}

impl embedded_io::Write for Scripted<'_> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        if self.session.is_none() && buf.first() == Some(&0x16) {
            let (to_client, session) = answer(self.pki, buf, &self.script);
            self.to_client = to_client;
            self.session = Some(session);
        }
        self.from_client.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

impl embedded_io::Read for Scripted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let n = buf.len().min(self.to_client.len());
        buf[..n].copy_from_slice(&self.to_client[..n]);
        self.to_client.drain(..n);
        Ok(n)
    }
}
