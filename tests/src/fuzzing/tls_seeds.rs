//! The seed corpus of the `tls_server` target and the helpers that build
//! its inputs.

use std::collections::VecDeque;

use super::tls_server::{
    answer, first_record, open, parse_client_hello, tls_pki, Scripted, ALERT, HANDSHAKE,
    TLS_AFTER_HELLO, TLS_FINISHED, TLS_RAW, TLS_VERBATIM,
};
use crate::bmc_tls::TlsIdentity;

/// ServerHello.random of a HelloRetryRequest (RFC 8446 §4.1.3).
const HELLO_RETRY_REQUEST: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];
/// A [`TLS_AFTER_HELLO`] input whose records are `records` (kind, bytes).
pub fn tls_after_hello_input(records: &[(u8, &[u8])]) -> Vec<u8> {
    let mut input = vec![TLS_AFTER_HELLO];
    for (kind, bytes) in records {
        input.push(*kind);
        if *kind != TLS_FINISHED {
            input.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
            input.extend_from_slice(bytes);
        }
    }
    input
}

/// A handshake message: `msg_type:u8 len:u24 body`.
pub fn handshake_message(msg_type: u8, body: &[u8]) -> Vec<u8> {
    let len = (body.len() as u32).to_be_bytes();
    let mut m = vec![msg_type, len[1], len[2], len[3]];
    m.extend_from_slice(body);
    m
}

/// The seed corpus of `tls_server`, by file name (the rustls flights differ
/// at each regeneration: rustls draws its own randomness).
///
/// [`TLS_RAW`]: what real rustls servers send this client when they do not
/// hold the pinned certificate (TLS 1.3, TLS 1.2 only), cut short, and
/// nothing at all. [`TLS_AFTER_HELLO`]: EncryptedExtensions,
/// CertificateRequest and the pinned certificate (waiting for a
/// CertificateVerify); the same with a bad CertificateVerify and a correct
/// Finished; a server skipping authentication; a wrong certificate; an
/// alert; an empty record. No seed holds a valid signature by the pinned
/// key: the fixed client RNG would make it a replayable authentication.
pub fn tls_server_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let pki = tls_pki();
    let other = TlsIdentity::generate(0x07e, "bmc", 1_700_000_000, true);
    let mut seeds = Vec::new();
    for (name, tls12) in [("raw_rustls_tls13", false), ("raw_rustls_tls12", true)] {
        let config = crate::bmc_tls::server_config(&other, tls12).expect("server config");
        let mut server = Recorded {
            conn: rustls::ServerConnection::new(config).expect("server"),
            sent: Vec::new(),
            pending: VecDeque::new(),
        };
        assert!(open(&mut server).is_err());
        let mut input = vec![TLS_RAW];
        input.extend_from_slice(&server.sent);
        if !tls12 {
            seeds.push(("raw_rustls_tls13_cut", input[..input.len() / 2].to_vec()));
        }
        seeds.push((name, input));
    }
    seeds.push(("raw_empty", vec![TLS_RAW]));
    let client_hello = {
        let mut listen = Scripted::new(false, &[]);
        assert!(open(&mut listen).is_err());
        first_record(listen.written())
            .expect("a ClientHello")
            .to_vec()
    };
    // A HelloRetryRequest asking for secp256r1 again.
    let (_, session_id) = parse_client_hello(&client_hello);
    let mut body = vec![0x03, 0x03];
    body.extend_from_slice(&HELLO_RETRY_REQUEST);
    body.push(session_id.len() as u8);
    body.extend_from_slice(&session_id);
    body.extend_from_slice(&[0x13, 0x01, 0x00, 0x00, 0x0c]);
    body.extend_from_slice(&[
        0x00, 0x2b, 0x00, 0x02, 0x03, 0x04, 0x00, 0x33, 0x00, 0x02, 0x00, 0x17,
    ]);
    let hrr = handshake_message(2, &body);
    let mut input = vec![TLS_RAW, HANDSHAKE, 3, 3];
    input.extend_from_slice(&(hrr.len() as u16).to_be_bytes());
    input.extend_from_slice(&hrr);
    seeds.push(("raw_hello_retry_request", input));

    let ee = handshake_message(8, &[0, 0]);
    // No context; signature_algorithms: ecdsa_secp256r1_sha256.
    let cr = handshake_message(13, &[0, 0, 8, 0, 0x0d, 0, 4, 0, 2, 4, 3]);
    let certificate = |der: &[u8]| {
        let entry = (der.len() as u32).to_be_bytes();
        let list = (der.len() as u32 + 5).to_be_bytes();
        let mut body = vec![0, list[1], list[2], list[3], entry[1], entry[2], entry[3]];
        body.extend_from_slice(der);
        body.extend_from_slice(&[0, 0]);
        handshake_message(11, &body)
    };
    let pinned = certificate(&pki.server.der);
    // A well-formed DER ECDSA signature that is not the key's.
    let mut sig = vec![0x30, 0x44, 0x02, 0x20];
    sig.extend_from_slice(&[0x11; 32]);
    sig.extend_from_slice(&[0x02, 0x20]);
    sig.extend_from_slice(&[0x22; 32]);
    let mut cv_body = vec![0x04, 0x03, 0x00, sig.len() as u8];
    cv_body.extend_from_slice(&sig);
    let cv = handshake_message(15, &cv_body);
    let flight = [ee.clone(), cr.clone(), pinned.clone()].concat();
    seeds.push((
        "hello_ee_cr_pinned_cert",
        tls_after_hello_input(&[(HANDSHAKE, &ee), (HANDSHAKE, &cr), (HANDSHAKE, &pinned)]),
    ));
    seeds.push((
        "hello_one_record_flight",
        tls_after_hello_input(&[(HANDSHAKE, &flight)]),
    ));
    seeds.push((
        "hello_bad_certificate_verify",
        tls_after_hello_input(&[
            (HANDSHAKE, &ee),
            (HANDSHAKE, &cr),
            (HANDSHAKE, &pinned),
            (HANDSHAKE, &cv),
            (TLS_FINISHED, &[]),
        ]),
    ));
    // The same, raw: mutations of the ServerHello keep later records readable.
    let (bytes, _) = answer(&client_hello, &seeds.last().expect("the seed above").1[1..]);
    seeds.push((
        "raw_hello_bad_certificate_verify",
        [&[TLS_RAW], &bytes[..]].concat(),
    ));
    seeds.push((
        "hello_skip_authentication",
        tls_after_hello_input(&[(HANDSHAKE, &ee), (HANDSHAKE, &cr), (TLS_FINISHED, &[])]),
    ));
    seeds.push((
        "hello_wrong_certificate",
        tls_after_hello_input(&[
            (HANDSHAKE, &ee),
            (HANDSHAKE, &cr),
            (HANDSHAKE, &certificate(&other.der)),
        ]),
    ));
    seeds.push(("hello_alert", tls_after_hello_input(&[(ALERT, &[2, 40])])));
    seeds.push((
        "hello_empty_record_then_verbatim",
        tls_after_hello_input(&[(HANDSHAKE, &[]), (TLS_VERBATIM, &[21, 3, 3, 0, 2, 2, 10])]),
    ));
    seeds
}

/// A transport to a real rustls server that records what it sent.
struct Recorded {
    conn: rustls::ServerConnection,
    sent: Vec<u8>,
    pending: VecDeque<u8>,
}

impl embedded_io::ErrorType for Recorded {
    type Error = embedded_io::ErrorKind;
}

impl embedded_io::Write for Recorded {
    fn write(&mut self, mut buf: &[u8]) -> Result<usize, Self::Error> {
        let n = buf.len();
        while !buf.is_empty() {
            match self.conn.read_tls(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            if self.conn.process_new_packets().is_err() {
                break;
            }
        }
        let mut out = Vec::new();
        while self.conn.wants_write() {
            if self.conn.write_tls(&mut out).is_err() {
                break;
            }
        }
        self.sent.extend_from_slice(&out);
        self.pending.extend(out);
        Ok(n)
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

impl embedded_io::Read for Recorded {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let n = buf.len().min(self.pending.len());
        for (dst, src) in buf.iter_mut().zip(self.pending.drain(..n)) {
            *dst = src;
        }
        Ok(n)
    }
}
