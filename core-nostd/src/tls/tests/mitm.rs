//! A hand-rolled TLS 1.3 "server" that does the key exchange (as any man in
//! the middle can) and then sends records no real stack sends. It shows the
//! embedded-tls 0.19 panic on an empty encrypted record (fixed in the
//! in-tree copy) and its acceptance of a server that skips authentication.

extern crate std;

use std::vec;
use std::vec::Vec;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes128Gcm, Nonce};
use hkdf::Hkdf;
use p256::ecdh::EphemeralSecret;
use p256::PublicKey;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use sha2::{Digest, Sha256};

use super::Pki;
use crate::tls::{Identity, PinnedTls, TlsBuffers, TlsError};

/// HKDF-Expand-Label (RFC 8446 §7.1).
pub(super) fn expand_label(secret: &[u8], label: &str, context: &[u8], len: usize) -> Vec<u8> {
    let mut info = Vec::new();
    info.extend_from_slice(&(len as u16).to_be_bytes());
    let full = [b"tls13 ", label.as_bytes()].concat();
    info.push(full.len() as u8);
    info.extend_from_slice(&full);
    info.push(context.len() as u8);
    info.extend_from_slice(context);
    let mut out = vec![0u8; len];
    Hkdf::<Sha256>::from_prk(secret)
        .unwrap()
        .expand(&info, &mut out)
        .unwrap();
    out
}

/// The client's P-256 key share and session id from a ClientHello record.
pub(super) fn parse_client_hello(record: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let hs = &record[5..];
    let mut p = 4 + 2 + 32;
    let sid_len = hs[p] as usize;
    let session_id = hs[p + 1..p + 1 + sid_len].to_vec();
    p += 1 + sid_len;
    p += 2 + u16::from_be_bytes([hs[p], hs[p + 1]]) as usize;
    p += 1 + hs[p] as usize;
    let end = p + 2 + u16::from_be_bytes([hs[p], hs[p + 1]]) as usize;
    p += 2;
    while p < end {
        let kind = u16::from_be_bytes([hs[p], hs[p + 1]]);
        let len = u16::from_be_bytes([hs[p + 2], hs[p + 3]]) as usize;
        let body = &hs[p + 4..p + 4 + len];
        if kind == 0x0033 {
            let mut q = 2;
            while q < body.len() {
                let group = u16::from_be_bytes([body[q], body[q + 1]]);
                let klen = u16::from_be_bytes([body[q + 2], body[q + 3]]) as usize;
                if group == 0x0017 {
                    return (body[q + 4..q + 4 + klen].to_vec(), session_id);
                }
                q += 4 + klen;
            }
        }
        p += 4 + len;
    }
    panic!("no P-256 key share in the ClientHello");
}

/// What the fake server encrypts after its ServerHello.
#[derive(Clone)]
enum Flight {
    /// These bytes as the record's inner plaintext.
    Raw(Vec<u8>),
    /// EncryptedExtensions and a valid Finished: no Certificate, no
    /// CertificateVerify, no CertificateRequest.
    SkipAuthentication,
}

/// ServerHello + one encrypted record under the server handshake traffic
/// key, answering `client_hello`.
fn answer(client_hello: &[u8], flight: &Flight) -> Vec<u8> {
    let (client_share, session_id) = parse_client_hello(client_hello);
    let mut rng = ChaCha20Rng::seed_from_u64(66);
    let secret = EphemeralSecret::random(&mut rng);
    let share = p256::EncodedPoint::from(secret.public_key());
    let share = share.as_bytes();

    let mut body = vec![0x03, 0x03];
    body.extend_from_slice(&[0x42; 32]);
    body.push(session_id.len() as u8);
    body.extend_from_slice(&session_id);
    body.extend_from_slice(&[0x13, 0x01, 0x00]);
    let mut ext = vec![0x00, 0x2b, 0x00, 0x02, 0x03, 0x04, 0x00, 0x33];
    ext.extend_from_slice(&((4 + share.len()) as u16).to_be_bytes());
    ext.extend_from_slice(&[0x00, 0x17]);
    ext.extend_from_slice(&(share.len() as u16).to_be_bytes());
    ext.extend_from_slice(share);
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut server_hello = vec![0x02, 0x00];
    server_hello.extend_from_slice(&(body.len() as u16).to_be_bytes());
    server_hello.extend_from_slice(&body);

    let shared = secret.diffie_hellman(&PublicKey::from_sec1_bytes(&client_share).unwrap());
    let mut hash = Sha256::new()
        .chain_update(&client_hello[5..])
        .chain_update(&server_hello);
    let transcript = hash.clone().finalize();
    let (early, _) = Hkdf::<Sha256>::extract(None, &[0u8; 32]);
    let derived = expand_label(&early, "derived", &Sha256::digest([]), 32);
    let (handshake, _) = Hkdf::<Sha256>::extract(Some(&derived), shared.raw_secret_bytes());
    let traffic = expand_label(&handshake, "s hs traffic", &transcript, 32);
    let key = expand_label(&traffic, "key", &[], 16);
    let iv = expand_label(&traffic, "iv", &[], 12);
    let plaintext = match flight {
        Flight::Raw(bytes) => bytes.clone(),
        Flight::SkipAuthentication => {
            let extensions = [0x08, 0x00, 0x00, 0x02, 0x00, 0x00];
            hash.update(extensions);
            let finished_key = expand_label(&traffic, "finished", &[], 32);
            let mut mac = <hmac::Hmac<Sha256> as hmac::Mac>::new_from_slice(&finished_key).unwrap();
            hmac::Mac::update(&mut mac, &hash.finalize());
            let verify_data = hmac::Mac::finalize(mac).into_bytes();
            let mut p = extensions.to_vec();
            p.extend_from_slice(&[0x14, 0x00, 0x00, 0x20]);
            p.extend_from_slice(&verify_data);
            p.push(0x16);
            p
        }
    };

    let mut out = vec![0x16, 0x03, 0x03];
    out.extend_from_slice(&(server_hello.len() as u16).to_be_bytes());
    out.extend_from_slice(&server_hello);
    let header = [0x17, 0x03, 0x03, 0x00, (plaintext.len() + 16) as u8];
    let mut data = plaintext;
    let tag = Aes128Gcm::new_from_slice(&key)
        .unwrap()
        .encrypt_in_place_detached(Nonce::from_slice(&iv), &header, &mut data)
        .unwrap();
    out.extend_from_slice(&header);
    out.extend_from_slice(&data);
    out.extend_from_slice(&tag);
    out
}

/// Reads the ClientHello, then plays back [`answer`].
struct Mitm {
    flight: Flight,
    to_client: Vec<u8>,
}

impl embedded_io::ErrorType for Mitm {
    type Error = embedded_io::ErrorKind;
}

impl embedded_io::Write for Mitm {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        if buf.first() == Some(&0x16) && self.to_client.is_empty() {
            self.to_client = answer(buf, &self.flight);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

impl embedded_io::Read for Mitm {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let n = buf.len().min(self.to_client.len());
        buf[..n].copy_from_slice(&self.to_client[..n]);
        self.to_client.drain(..n);
        Ok(n)
    }
}

fn open_against(flight: Flight) -> Result<(), TlsError> {
    let pki = Pki::new(60);
    let mut mitm = Mitm {
        flight,
        to_client: Vec::new(),
    };
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let mut buffers = std::boxed::Box::new(TlsBuffers::new());
    let identity =
        Identity::new(pki.client_key.clone(), &pki.client_der).expect("the certificate fits");
    PinnedTls::open(
        &mut mitm,
        &mut buffers,
        pki.server_pin(),
        identity,
        &mut rng,
    )
    .map(|_| ())
}

#[test]
fn the_fake_server_really_speaks_tls13_key_exchange() {
    // A well-encrypted handshake record holding an empty Finished: it
    // decrypts, then its content is refused, which proves the keys above
    // are the ones embedded-tls derives.
    let err = open_against(Flight::Raw(vec![0x14, 0x00, 0x00, 0x00, 0x16])).unwrap_err();
    // A wrong key would give "CryptoError (record failed to decrypt)".
    assert_eq!(err, TlsError::Protocol { what: "ParseError" });
}

#[test]
fn empty_encrypted_record_from_a_man_in_the_middle_is_refused_without_panic() {
    assert_eq!(
        open_against(Flight::Raw(Vec::new())),
        Err(TlsError::UnexpectedRecord)
    );
}

#[test]
fn empty_encrypted_record_in_one_byte_reads_is_refused_without_panic() {
    // The record's header and tag arriving a byte at a time change nothing.
    let pki = Pki::new(63);
    let mut mitm = Mitm {
        flight: Flight::Raw(Vec::new()),
        to_client: Vec::new(),
    };
    let mut trickle = Trickle(&mut mitm);
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let mut buffers = std::boxed::Box::new(TlsBuffers::new());
    let identity =
        Identity::new(pki.client_key.clone(), &pki.client_der).expect("the certificate fits");
    let opened = PinnedTls::open(
        &mut trickle,
        &mut buffers,
        pki.server_pin(),
        identity,
        &mut rng,
    );
    assert_eq!(opened.map(|_| ()), Err(TlsError::UnexpectedRecord));
}

/// Reads at most one byte at a time.
struct Trickle<'m>(&'m mut Mitm);

impl embedded_io::ErrorType for Trickle<'_> {
    type Error = embedded_io::ErrorKind;
}

impl embedded_io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let end = buf.len().min(1);
        self.0.read(&mut buf[..end])
    }
}

impl embedded_io::Write for Trickle<'_> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

#[test]
fn embedded_tls_alone_refuses_the_empty_record_without_panic() {
    // Published embedded-tls 0.19 panicked here (`last().unwrap()` in
    // `decrypt_record`); PATCHES.md #3 makes it an unexpected_message.
    let pki = Pki::new(61);
    let mut mitm = Mitm {
        flight: Flight::Raw(Vec::new()),
        to_client: Vec::new(),
    };
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let (mut read, mut write) = (vec![0u8; 16_640], vec![0u8; 1280]);
    let mut conn = embedded_tls::blocking::TlsConnection::new(&mut mitm, &mut read, &mut write);
    let config = embedded_tls::TlsConfig::new();
    let identity =
        Identity::new(pki.client_key.clone(), &pki.client_der).expect("the certificate fits");
    let mut provider = crate::tls::PinnedProvider::new(pki.server_pin(), identity, &mut rng);
    let opened = conn.open(embedded_tls::TlsContext::new(&config, &mut provider));
    assert!(
        matches!(
            opened,
            Err(embedded_tls::TlsError::AbortHandshake(
                _,
                embedded_tls::alert::AlertDescription::UnexpectedMessage
            ))
        ),
        "{opened:?}"
    );
}

#[test]
fn server_skipping_certificate_and_certificate_verify_is_refused() {
    assert_eq!(
        open_against(Flight::SkipAuthentication),
        Err(TlsError::UnexpectedRecord)
    );
}

#[test]
fn embedded_tls_alone_refuses_a_server_that_skips_authentication() {
    // Published embedded-tls 0.19 completed this handshake without calling
    // any verifier (PATCHES.md #6); now the state machine itself requires
    // Certificate and CertificateVerify before the server's Finished.
    let pki = Pki::new(62);
    let mut mitm = Mitm {
        flight: Flight::SkipAuthentication,
        to_client: Vec::new(),
    };
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let (mut read, mut write) = (vec![0u8; 16_640], vec![0u8; 1280]);
    let mut conn = embedded_tls::blocking::TlsConnection::new(&mut mitm, &mut read, &mut write);
    let config = embedded_tls::TlsConfig::new();
    let identity =
        Identity::new(pki.client_key.clone(), &pki.client_der).expect("the certificate fits");
    let mut provider = crate::tls::PinnedProvider::new(pki.server_pin(), identity, &mut rng);
    let opened = conn.open(embedded_tls::TlsContext::new(&config, &mut provider));
    assert!(
        matches!(
            opened,
            Err(embedded_tls::TlsError::AbortHandshake(
                _,
                embedded_tls::alert::AlertDescription::UnexpectedMessage
            ))
        ),
        "{opened:?}"
    );
    assert!(!provider.pinned_verifier().is_verified());
}
