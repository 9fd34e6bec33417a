//! The `tls_session` target: the agent's TLS client on an established,
//! mutually authenticated session (a real rustls server holding the pinned
//! certificate, in memory), then a script mixing records the server
//! protects with bytes injected into the stream as they are (plaintext
//! records, as anyone on the path can send without a key), client writes
//! and client reads.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::Write as _;
use std::rc::Rc;
use std::sync::{Arc, OnceLock};

use bmclink_core::tls::{Identity, PinnedTls, TlsBuffers, TlsError};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::tls_server::tls_pki;

/// Op: the server sends `len` bytes of application data (protected).
pub const SESSION_SERVER_DATA: u8 = 0;
/// Op: `len` bytes go into the server→client stream as they are.
pub const SESSION_INJECT: u8 = 1;
/// Op: the client sends `len` bytes.
pub const SESSION_CLIENT_SEND: u8 = 2;
/// Op: the client reads once, if bytes are waiting.
pub const SESSION_CLIENT_READ: u8 = 3;
/// Longest input the target looks at.
pub const SESSION_MAX_INPUT: usize = 8 * 1024;

/// The rustls server with the pinned identity: TLS 1.3, client certificate
/// required, no session tickets (the client would read past them into the
/// end of the script).
fn server_config() -> Arc<rustls::ServerConfig> {
    static CONFIG: OnceLock<Arc<rustls::ServerConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let base = crate::bmc_tls::server_config(&tls_pki().server, false)
                .expect("the pinned identity makes a server config");
            let mut config = (*base).clone();
            config.send_tls13_tickets = 0;
            Arc::new(config)
        })
        .clone()
}

/// Both ends of the in-memory connection.
struct Wire {
    server: rustls::ServerConnection,
    to_client: VecDeque<u8>,
}

impl Wire {
    /// Moves what the server wants to send into the client's stream.
    fn pump(&mut self) {
        let mut out = Vec::new();
        while self.server.wants_write() {
            if self.server.write_tls(&mut out).is_err() {
                break;
            }
        }
        self.to_client.extend(out);
    }
}

/// The client's transport: a handle on the shared [`Wire`].
struct ClientEnd(Rc<RefCell<Wire>>);

impl embedded_io::ErrorType for ClientEnd {
    type Error = embedded_io::ErrorKind;
}

impl embedded_io::Read for ClientEnd {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let mut wire = self.0.borrow_mut();
        wire.pump();
        let n = buf.len().min(wire.to_client.len());
        for (dst, src) in buf.iter_mut().zip(wire.to_client.drain(..n)) {
            *dst = src;
        }
        Ok(n)
    }
}

impl embedded_io::Write for ClientEnd {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        let mut wire = self.0.borrow_mut();
        let mut input = buf;
        while !input.is_empty() {
            if wire.server.read_tls(&mut input).is_err() {
                break;
            }
            // A server error (for example on a client record it refuses)
            // ends its side; the client notices on its next read.
            if wire.server.process_new_packets().is_err() {
                break;
            }
        }
        wire.pump();
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// What one run saw.
#[derive(Debug)]
pub struct SessionRun {
    /// Application data the server protected and sent, in order.
    pub sent: Vec<u8>,
    /// The part of `sent` sent before the first injection.
    pub sent_before_injection: usize,
    /// Whether the first injection was exactly one whole plaintext record
    /// of type change_cipher_spec, alert or handshake.
    pub first_injection_is_plain_record: bool,
    /// Application data the client read.
    pub received: Vec<u8>,
    /// The error that ended the client's reading, if any.
    pub error: Option<TlsError>,
}

/// `tls_session`: [`tls_session_run`], then its checks: nothing panics;
/// the client reads only what the server protected, in order (a prefix of
/// it); with no injection it reads all of it; when the first injection is
/// a whole plaintext record, reading ends there with
/// [`TlsError::UnexpectedRecord`] after exactly the data sent before it.
pub fn tls_session(data: &[u8]) {
    let run = tls_session_run(data);
    assert!(
        run.sent.starts_with(&run.received),
        "the client read bytes the server never protected: {run:?}"
    );
    if run.sent_before_injection == run.sent.len() && run.error.is_none() {
        assert_eq!(run.received, run.sent, "with no injection all data arrives");
    }
    if run.first_injection_is_plain_record {
        assert_eq!(run.error, Some(TlsError::UnexpectedRecord), "{run:?}");
        assert_eq!(run.received.len(), run.sent_before_injection, "{run:?}");
    }
}

/// Opens the session, plays the script `op:u8 len:u8 bytes[len]` (the
/// bytes of client sends and server data come from the input too), then
/// reads until the stream is drained or an error ends the session.
pub fn tls_session_run(data: &[u8]) -> SessionRun {
    let data = &data[..data.len().min(SESSION_MAX_INPUT)];
    let wire = Rc::new(RefCell::new(Wire {
        server: rustls::ServerConnection::new(server_config()).expect("server connection"),
        to_client: VecDeque::new(),
    }));
    let pki = tls_pki();
    let mut rng = ChaCha20Rng::seed_from_u64(0x5e55);
    let mut buffers = Box::new(TlsBuffers::new());
    let identity =
        Identity::new(pki.client.key.clone(), &pki.client.der).expect("the certificate fits");
    let mut tls = PinnedTls::open(
        ClientEnd(wire.clone()),
        &mut buffers,
        pki.server.fingerprint(),
        identity,
        &mut rng,
    )
    .expect("the pinned rustls server completes the handshake");
    let mut run = SessionRun {
        sent: Vec::new(),
        sent_before_injection: 0,
        first_injection_is_plain_record: false,
        received: Vec::new(),
        error: None,
    };
    let mut injected = false;
    let mut rest = data;
    while let [op, len, tail @ ..] = rest {
        let (bytes, tail) = tail.split_at(usize::from(*len).min(tail.len()));
        rest = tail;
        match op % 4 {
            SESSION_SERVER_DATA => {
                let mut w = wire.borrow_mut();
                if !bytes.is_empty() && w.server.writer().write_all(bytes).is_ok() {
                    run.sent.extend_from_slice(bytes);
                    if !injected {
                        run.sent_before_injection = run.sent.len();
                    }
                }
                w.pump();
            }
            SESSION_INJECT => {
                if !injected {
                    injected = true;
                    run.first_injection_is_plain_record = is_plain_record(bytes);
                }
                wire.borrow_mut().to_client.extend(bytes.iter().copied());
            }
            SESSION_CLIENT_SEND => {
                if let Err(e) = tls.send(bytes) {
                    run.error = Some(e);
                    return run;
                }
            }
            _ => {
                if !read_once(&wire, &mut tls, &mut run) {
                    return run;
                }
            }
        }
    }
    while !wire.borrow().to_client.is_empty() {
        if !read_once(&wire, &mut tls, &mut run) {
            break;
        }
    }
    run
}

/// One client read when bytes are waiting; `false` once the session ended.
fn read_once(
    wire: &Rc<RefCell<Wire>>,
    tls: &mut PinnedTls<'_, ClientEnd>,
    run: &mut SessionRun,
) -> bool {
    if wire.borrow().to_client.is_empty() {
        return true;
    }
    let mut buf = [0u8; 100];
    match tls.read(&mut buf) {
        Ok(n) => {
            run.received.extend_from_slice(&buf[..n]);
            true
        }
        Err(e) => {
            run.error = Some(e);
            false
        }
    }
}

/// Exactly one whole record `type 03 0x len body` of type 20, 21 or 22.
fn is_plain_record(bytes: &[u8]) -> bool {
    match bytes {
        [20..=22, 3, _, hi, lo, body @ ..] => {
            usize::from(u16::from_be_bytes([*hi, *lo])) == body.len()
        }
        _ => false,
    }
}

/// The seed corpus of `tls_session`, by file name.
pub fn tls_session_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let op = |op: u8, bytes: &[u8]| {
        let mut out = vec![op, bytes.len() as u8];
        out.extend_from_slice(bytes);
        out
    };
    let plain = |kind: u8, body: &[u8]| {
        let mut out = vec![kind, 3, 3, 0, body.len() as u8];
        out.extend_from_slice(body);
        out
    };
    let hello = op(SESSION_SERVER_DATA, b"\x00\x05WELCOME");
    let finished = [vec![0x14, 0, 0, 32], vec![0x5a; 32]].concat();
    let mut seeds = vec![
        (
            "data_read_send_data",
            [
                hello.clone(),
                op(SESSION_CLIENT_READ, &[]),
                op(SESSION_CLIENT_SEND, b"\x00\x01P"),
                op(SESSION_SERVER_DATA, b"more"),
            ]
            .concat(),
        ),
        ("empty", Vec::new()),
    ];
    for (name, record) in [
        ("inject_plaintext_finished", plain(22, &finished)),
        (
            "inject_plaintext_key_update",
            plain(22, &[0x18, 0, 0, 1, 0]),
        ),
        ("inject_plaintext_close_notify", plain(21, &[1, 0])),
        ("inject_plaintext_fatal_alert", plain(21, &[2, 42])),
        ("inject_change_cipher_spec", plain(20, &[1])),
        ("forge_empty_application_data", plain(23, &[])),
        ("forge_application_data", plain(23, &[0; 17])),
    ] {
        seeds.push((
            name,
            [
                hello.clone(),
                op(SESSION_INJECT, &record),
                op(SESSION_SERVER_DATA, b"after"),
            ]
            .concat(),
        ));
    }
    seeds
}
