//! The `tls_server` target: the agent's TLS client (the real
//! [`PinnedTls::open`]) against a scripted server.

use std::collections::VecDeque;
use std::sync::{Mutex, OnceLock};

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes128Gcm, Nonce};
use bmclink_core::tls::{Identity, PinnedTls, TlsBuffers};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use p256::ecdh::EphemeralSecret;
use p256::PublicKey;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use sha2::{Digest, Sha256};

use crate::bmc_tls::TlsIdentity;

/// Mode byte: the rest of the input is the server's byte stream from the start.
pub const TLS_RAW: u8 = 0;
/// Mode byte: a real ServerHello, then the rest of the input as records.
pub const TLS_AFTER_HELLO: u8 = 1;
/// Record kind: a correct server Finished over the transcript so far,
/// encrypted (no length or body follows).
pub const TLS_FINISHED: u8 = 0xf0;
/// Record kind: `len:u16be bytes` sent as they are, unencrypted.
pub const TLS_VERBATIM: u8 = 0xf1;
/// Longest input the target looks at.
pub const TLS_MAX_INPUT: usize = 16 * 1024;
/// Most records one input sends after the ServerHello.
const MAX_RECORDS: usize = 64;
/// Most reads one handshake may make (each returns at least one byte or
/// ends the stream, so this is only a backstop).
const MAX_READS: usize = 4096;

pub(super) const HANDSHAKE: u8 = 22;
pub(super) const ALERT: u8 = 21;
const CHANGE_CIPHER_SPEC: u8 = 20;
const APPLICATION_DATA: u8 = 23;

/// The two identities: the BMC's (whose certificate is pinned; the fuzzer
/// may send its certificate but never has its key) and the host's.
pub struct FuzzPki {
    /// The pinned server identity.
    pub server: TlsIdentity,
    /// The client identity `open` presents.
    pub client: TlsIdentity,
}

/// The fixed identities of every run.
pub fn tls_pki() -> &'static FuzzPki {
    static PKI: OnceLock<FuzzPki> = OnceLock::new();
    PKI.get_or_init(|| FuzzPki {
        server: TlsIdentity::generate(0xb3c, "bmc", 1_700_000_000, true),
        client: TlsIdentity::generate(0x405, "host", 1_700_000_000, false),
    })
}

/// `tls_server`: [`PinnedTls::open`] with the pin of [`tls_pki`]'s server
/// over a scripted transport, with a fixed-seed client RNG so every run of
/// an input is the same run. The first byte picks the mode:
///
/// - [`TLS_RAW`]: the rest (up to [`TLS_MAX_INPUT`]) is everything the server
///   sends, from before the ServerHello on.
/// - [`TLS_AFTER_HELLO`]: the harness answers the ClientHello as a real
///   TLS 1.3 server (P-256 ECDHE, TLS_AES_128_GCM_SHA256) and then sends the
///   rest as records `kind:u8 len:u16be bytes`, each encrypted under the
///   server handshake traffic key with inner content type `kind`; kind
///   [`TLS_FINISHED`] is a correct Finished (no length), [`TLS_VERBATIM`]
///   sends its bytes unencrypted.
///
/// Checks: nothing panics; `open` fails (the fuzzer cannot sign with the
/// pinned key); in [`TLS_AFTER_HELLO`] mode every record the client wrote
/// decrypts under the client handshake key to a handshake message or an
/// alert, so no application data left before `open` returned.
pub fn tls_server(data: &[u8]) {
    if let Some(result) = tls_server_run(data) {
        assert!(result.is_err(), "open succeeded without the server's key");
    }
}

/// What [`tls_server`] does, returning what `open` returned (`None` for an
/// empty input) after checking the client's records.
pub fn tls_server_run(data: &[u8]) -> Option<Result<(), bmclink_core::tls::TlsError>> {
    let data = &data[..data.len().min(TLS_MAX_INPUT)];
    let (&mode, script) = data.split_first()?;
    let mode = mode % 2;
    let mut server = Scripted::new(mode == TLS_AFTER_HELLO, script);
    let result = open(&mut server);
    server.check_client_records();
    Some(result)
}

/// [`PinnedTls::open`] as every run calls it: the fixed client RNG and
/// identity, pinning [`tls_pki`]'s server.
pub(super) fn open<T: embedded_io::Read + embedded_io::Write>(
    transport: T,
) -> Result<(), bmclink_core::tls::TlsError> {
    let pki = tls_pki();
    let mut rng = ChaCha20Rng::seed_from_u64(0x7e5);
    let mut buffers = Box::new(TlsBuffers::new());
    let identity =
        Identity::new(pki.client.key.clone(), &pki.client.der).expect("the certificate fits");
    PinnedTls::open(
        transport,
        &mut buffers,
        pki.server.fingerprint(),
        identity,
        &mut rng,
    )
    .map(|_| ())
}

/// A server that plays back a script and records what the client wrote.
pub(super) struct Scripted {
    after_hello: bool,
    script: Vec<u8>,
    to_client: VecDeque<u8>,
    written: Vec<u8>,
    /// Once answered: the handshake keys, to check the client's records.
    keys: Option<Keys>,
    reads: usize,
}

impl Scripted {
    /// A server in mode [`TLS_AFTER_HELLO`] (or [`TLS_RAW`]) playing `script`.
    pub(super) fn new(after_hello: bool, script: &[u8]) -> Scripted {
        Scripted {
            after_hello,
            script: script.to_vec(),
            to_client: if after_hello {
                VecDeque::new()
            } else {
                script.iter().copied().collect()
            },
            written: Vec::new(),
            keys: None,
            reads: 0,
        }
    }

    /// What the client wrote.
    pub(super) fn written(&self) -> &[u8] {
        &self.written
    }
}

impl embedded_io::ErrorType for Scripted {
    type Error = embedded_io::ErrorKind;
}

impl embedded_io::Write for Scripted {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.written.extend_from_slice(buf);
        if self.after_hello && self.keys.is_none() {
            if let Some(hello) = first_record(&self.written) {
                let (answer, keys) = answer(hello, &self.script);
                self.to_client.extend(answer);
                self.keys = Some(keys);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

impl embedded_io::Read for Scripted {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        self.reads += 1;
        if self.reads > MAX_READS {
            return Err(embedded_io::ErrorKind::TimedOut);
        }
        let n = buf.len().min(self.to_client.len());
        for (dst, src) in buf.iter_mut().zip(self.to_client.drain(..n)) {
            *dst = src;
        }
        Ok(n)
    }
}

impl Scripted {
    /// Every client record after the ClientHello is a ChangeCipherSpec, a
    /// plaintext alert, or (once keys exist) a handshake message or alert
    /// under the client handshake key.
    fn check_client_records(&self) {
        let mut rest = self.written.as_slice();
        let mut seq = 0u64;
        let mut first = true;
        while let Some(record) = first_record(rest) {
            rest = &rest[record.len()..];
            let kind = record[0];
            if first {
                assert_eq!(kind, HANDSHAKE, "the client starts with a ClientHello");
                first = false;
                continue;
            }
            match kind {
                CHANGE_CIPHER_SPEC | ALERT => {}
                APPLICATION_DATA => {
                    let Some(keys) = &self.keys else {
                        continue;
                    };
                    let inner = keys
                        .client
                        .open(seq, record)
                        .expect("a client record before open returned is under the handshake key");
                    seq += 1;
                    let inner_kind = inner.iter().rev().find(|&&b| b != 0).copied();
                    assert!(
                        matches!(inner_kind, Some(HANDSHAKE | ALERT)),
                        "client sent inner type {inner_kind:?} during the handshake"
                    );
                }
                other => panic!("client sent a record of type {other}"),
            }
        }
    }
}

/// The first complete TLS record in `bytes`, header included.
pub(super) fn first_record(bytes: &[u8]) -> Option<&[u8]> {
    let len = usize::from(u16::from_be_bytes([*bytes.get(3)?, *bytes.get(4)?]));
    bytes.get(..5 + len)
}

/// HKDF-Expand-Label (RFC 8446 §7.1).
fn expand_label(secret: &[u8], label: &str, context: &[u8], len: usize) -> Vec<u8> {
    let full = [b"tls13 ", label.as_bytes()].concat();
    let mut info = (len as u16).to_be_bytes().to_vec();
    info.push(full.len() as u8);
    info.extend_from_slice(&full);
    info.push(context.len() as u8);
    info.extend_from_slice(context);
    let mut out = vec![0u8; len];
    Hkdf::<Sha256>::from_prk(secret)
        .expect("a 32-byte PRK")
        .expand(&info, &mut out)
        .expect("a short output");
    out
}

/// One direction's handshake traffic protection.
#[derive(Clone)]
struct Direction {
    secret: Vec<u8>,
    aead: Aes128Gcm,
    iv: [u8; 12],
}

impl Direction {
    fn new(handshake_secret: &[u8], label: &str, transcript: &[u8]) -> Direction {
        let secret = expand_label(handshake_secret, label, transcript, 32);
        let aead = Aes128Gcm::new_from_slice(&expand_label(&secret, "key", &[], 16))
            .expect("a 16-byte key");
        let iv = expand_label(&secret, "iv", &[], 12)
            .try_into()
            .expect("12 bytes");
        Direction { secret, aead, iv }
    }

    fn nonce(&self, seq: u64) -> [u8; 12] {
        let mut nonce = self.iv;
        for (n, s) in nonce[4..].iter_mut().zip(seq.to_be_bytes()) {
            *n ^= s;
        }
        nonce
    }

    /// A whole record holding `inner` (content and type byte).
    fn seal(&self, seq: u64, mut inner: Vec<u8>) -> Vec<u8> {
        let len = (inner.len() + 16) as u16;
        let [hi, lo] = len.to_be_bytes();
        let header = [APPLICATION_DATA, 3, 3, hi, lo];
        let tag = self
            .aead
            .encrypt_in_place_detached(Nonce::from_slice(&self.nonce(seq)), &header, &mut inner)
            .expect("a record fits");
        let mut out = header.to_vec();
        out.extend_from_slice(&inner);
        out.extend_from_slice(&tag);
        out
    }

    /// The inner plaintext of a whole record, if it decrypts.
    fn open(&self, seq: u64, record: &[u8]) -> Option<Vec<u8>> {
        let (header, body) = record.split_at(5);
        let (data, tag) = body.split_at(body.len().checked_sub(16)?);
        let mut data = data.to_vec();
        self.aead
            .decrypt_in_place_detached(
                Nonce::from_slice(&self.nonce(seq)),
                header,
                &mut data,
                tag.into(),
            )
            .ok()?;
        Some(data)
    }
}

#[derive(Clone)]
pub(super) struct Keys {
    server: Direction,
    client: Direction,
}

/// The ServerHello record answering `client_hello` and the keys it sets up.
/// The client's RNG has a fixed seed, so this is computed once.
fn hello(client_hello: &[u8]) -> (Vec<u8>, Keys) {
    /// ClientHello record, ServerHello message, keys.
    type Answered = (Vec<u8>, Vec<u8>, Keys);
    static CACHE: Mutex<Option<Answered>> = Mutex::new(None);
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((ch, sh, keys)) = cache.as_ref() {
        if ch == client_hello {
            return (sh.clone(), keys.clone());
        }
    }
    let (client_share, session_id) = parse_client_hello(client_hello);
    let secret = EphemeralSecret::random(&mut ChaCha20Rng::seed_from_u64(66));
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

    let shared = secret.diffie_hellman(
        &PublicKey::from_sec1_bytes(&client_share).expect("the client's share is a point"),
    );
    let transcript = Sha256::new()
        .chain_update(&client_hello[5..])
        .chain_update(&server_hello)
        .finalize();
    let (early, _) = Hkdf::<Sha256>::extract(None, &[0u8; 32]);
    let derived = expand_label(&early, "derived", &Sha256::digest([]), 32);
    let (handshake, _) = Hkdf::<Sha256>::extract(Some(&derived), shared.raw_secret_bytes());
    let keys = Keys {
        server: Direction::new(&handshake, "s hs traffic", &transcript),
        client: Direction::new(&handshake, "c hs traffic", &transcript),
    };
    *cache = Some((client_hello.to_vec(), server_hello.clone(), keys.clone()));
    (server_hello, keys)
}

/// The server's bytes: the ServerHello record, then the script's records.
pub(super) fn answer(client_hello: &[u8], script: &[u8]) -> (Vec<u8>, Keys) {
    let (server_hello, keys) = hello(client_hello);
    let mut transcript = Sha256::new()
        .chain_update(&client_hello[5..])
        .chain_update(&server_hello);
    let mut out = vec![HANDSHAKE, 3, 3];
    out.extend_from_slice(&(server_hello.len() as u16).to_be_bytes());
    out.extend_from_slice(&server_hello);
    let mut rest = script;
    let mut seq = 0u64;
    for _ in 0..MAX_RECORDS {
        let Some((&kind, tail)) = rest.split_first() else {
            break;
        };
        rest = tail;
        if kind == TLS_FINISHED {
            let finished_key = expand_label(&keys.server.secret, "finished", &[], 32);
            let mut mac =
                <Hmac<Sha256> as Mac>::new_from_slice(&finished_key).expect("any key length");
            mac.update(&transcript.clone().finalize());
            let mut inner = vec![0x14, 0x00, 0x00, 0x20];
            inner.extend_from_slice(&mac.finalize().into_bytes());
            transcript.update(&inner);
            inner.push(HANDSHAKE);
            out.extend(keys.server.seal(seq, inner));
            seq += 1;
            continue;
        }
        let len = match rest {
            [hi, lo, ..] => usize::from(u16::from_be_bytes([*hi, *lo])),
            _ => rest.len(),
        };
        rest = rest.get(2..).unwrap_or(&[]);
        let (bytes, tail) = rest.split_at(len.min(rest.len()));
        rest = tail;
        if kind == TLS_VERBATIM {
            out.extend_from_slice(bytes);
            continue;
        }
        if kind == HANDSHAKE {
            transcript.update(bytes);
        }
        let mut inner = bytes.to_vec();
        inner.push(kind);
        out.extend(keys.server.seal(seq, inner));
        seq += 1;
    }
    (out, keys)
}

/// The client's P-256 key share and session id from its ClientHello record
/// (made by embedded-tls, not the fuzzer: a failure here is a harness bug).
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
