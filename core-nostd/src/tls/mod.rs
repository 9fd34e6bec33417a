//! embedded-tls 0.19 glue: a `CryptoProvider` with a pinning verifier and the
//! P-256 client identity, and the blocking channel built on it.
//!
//! The channel is TLS 1.3 only, TLS_AES_128_GCM_SHA256 with secp256r1 key
//! exchange and ecdsa_secp256r1_sha256 signatures on both sides (T1, T4).
//! The BMC is authenticated by the SHA-256 fingerprint of its certificate
//! ([`PinnedVerifier`]); the host by its self-signed identity certificate,
//! which the BMC pins in turn after enrollment.
//!
//! [`PinnedTls::open`] returns only after the server proved the pinned
//! identity and asked for our certificate. One thing it cannot know: TLS 1.3
//! lets the server decide about our certificate after our last handshake
//! flight, so a BMC refusing it shows on the first read
//! ([`TlsError::AbortedAfterHandshake`]); the agent treats the first WELCOME
//! as part of authentication.
//!
//! The TLS crate is embedded-tls 0.19 with the fixes in
//! `vendor/embedded-tls/PATCHES.md`: an encrypted record without content is
//! an `unexpected_message` ([`TlsError::UnexpectedRecord`]), not a panic.
//! After the ServerHello only protected records are accepted, so anything
//! injected in plaintext ends the channel with
//! [`TlsError::UnexpectedRecord`] before embedded-tls parses it. The P-256
//! work (ECDHE, our signature, the check of the server's) is a
//! [`P256Backend`]'s: [`DEFAULT_BACKEND`] is chosen by the platform's cargo
//! features (`backend.rs`). Known limits left, all behind the authenticated
//! (pinned) server: a KeyUpdate ends the channel, and post-handshake alerts
//! lose their description.

mod backend;
mod ecdsa;
mod error;
mod provider;
mod verifier;

#[cfg(test)]
mod tests;

use embedded_io::{ErrorType, Read, Write};
use embedded_tls::blocking::{HandshakeStep, TlsConnection};
use embedded_tls::{Aes128GcmSha256, TlsConfig, TlsContext, TLS_RECORD_OVERHEAD};
use rand_core::CryptoRngCore;

#[cfg(feature = "aws-lc")]
pub use backend::{AwsLc, AWS_LC};
#[cfg(feature = "p256-cm4")]
pub use backend::{Cm4, CM4};
pub use backend::{P256Backend, RustCrypto, DEFAULT_BACKEND, MAX_SIGNATURE_LEN, RUST_CRYPTO};
pub use error::TlsError;
pub use provider::Identity;
pub(crate) use provider::PinnedProvider;
pub use verifier::{PinnedVerifier, Progress, ServerAuth};

use crate::cert::MAX_CERT_LEN;

/// Size of the record read buffer: the largest TLS record (2^14 bytes of
/// plaintext + 256 bytes of expansion). rustls ignores max_fragment_length,
/// so nothing smaller is safe.
pub const TLS_RECORD_READ_BUF: usize = 16_640;

/// Largest channel frame we write: `len:u16` + 1024 bytes (DESIGN §5).
const LARGEST_FRAME: usize = 2 + 1024;

/// Size of the record write buffer: one whole frame per record, plus
/// embedded-tls's per-record overhead. It also holds our largest handshake
/// record (the Certificate message with a [`MAX_CERT_LEN`] certificate).
pub const TLS_RECORD_WRITE_BUF: usize = 1280;

const _: () = assert!(TLS_RECORD_WRITE_BUF >= LARGEST_FRAME + TLS_RECORD_OVERHEAD);
const _: () = assert!(TLS_RECORD_WRITE_BUF >= MAX_CERT_LEN + TLS_RECORD_OVERHEAD);

/// The record buffers of one TLS connection, owned by the caller
/// (static memory in firmware, part of the agent's buffers elsewhere).
pub struct TlsBuffers {
    read: [u8; TLS_RECORD_READ_BUF],
    write: [u8; TLS_RECORD_WRITE_BUF],
}

impl TlsBuffers {
    /// Zeroed buffers.
    pub const fn new() -> Self {
        TlsBuffers {
            read: [0; TLS_RECORD_READ_BUF],
            write: [0; TLS_RECORD_WRITE_BUF],
        }
    }

    /// Writes [`TlsBuffers::new`]'s value (zero bytes) at `p` without a
    /// temporary (for `AgentBuffers::init`).
    ///
    /// # Safety
    ///
    /// `p` must be valid for writes of one `TlsBuffers`.
    pub(crate) unsafe fn zero_in_place(p: *mut Self) {
        // SAFETY: the caller's promise; both fields are byte arrays, for
        // which zero bytes are their `new()` value.
        unsafe { p.write_bytes(0, 1) }
    }
}

impl TlsBuffers {
    /// The two record buffers, as a connection borrows them.
    pub fn halves(&mut self) -> TlsHalves<'_> {
        TlsHalves {
            read: &mut self.read,
            write: &mut self.write,
        }
    }
}

/// The record buffers of one connection, split (read, write): what a
/// connection borrows, and gives back when it is taken apart
/// ([`PinnedTls::into_parts`], [`Handshaking::abandon`]), so a caller that
/// keeps connections in its own state reuses one pair for all of them.
pub struct TlsHalves<'a> {
    read: &'a mut [u8],
    write: &'a mut [u8],
}

impl Default for TlsBuffers {
    fn default() -> Self {
        Self::new()
    }
}

/// An open, mutually authenticated TLS 1.3 channel over transport `T`.
/// Reads and writes speak [`TlsError`]; it is an `embedded_io` stream too.
pub struct PinnedTls<'a, T: Read + Write + 'a> {
    conn: TlsConnection<'a, T, Aes128GcmSha256>,
    server: [u8; 32],
}

impl<'a, T: Read + Write + 'a> PinnedTls<'a, T> {
    /// Runs the handshake over `transport` (a connected TCP stream): the
    /// server must present the certificate whose SHA-256 is `pin` and sign
    /// the transcript with its key, and must ask for our certificate, which
    /// `identity` then presents and signs for. On any failure the transport
    /// is dropped (the caller closes the TCP connection) and no application
    /// data has been sent. The P-256 work is [`DEFAULT_BACKEND`]'s.
    pub fn open<R: CryptoRngCore>(
        transport: T,
        buffers: &'a mut TlsBuffers,
        pin: [u8; 32],
        identity: Identity,
        rng: &mut R,
    ) -> Result<Self, TlsError> {
        Self::open_as(
            transport,
            buffers,
            ServerAuth::Pinned(pin),
            identity,
            rng,
            DEFAULT_BACKEND,
        )
    }

    /// [`Self::open`] with the server authenticated as `auth` says and the
    /// handshake's P-256 work (ECDHE, our signature, the check of the
    /// server's) done by `backend`. With [`ServerAuth::Enrolling`] the server
    /// is any certificate whose key signs the transcript: the caller trusts
    /// nothing on the channel until the enrollment proof bound to
    /// [`Self::server_fingerprint`] checks out.
    pub fn open_as<R: CryptoRngCore>(
        transport: T,
        buffers: &'a mut TlsBuffers,
        auth: ServerAuth,
        identity: Identity,
        rng: &mut R,
        backend: &'static dyn P256Backend,
    ) -> Result<Self, TlsError> {
        // embedded-tls's own loop rather than `Handshaking`'s steps: the
        // steps cost 2 KiB more of the firmware's 16 KiB stack (measured
        // on QEMU: 16,744 B against 14,744 B), for a caller that blocks
        // anyway.
        let mut conn = TlsConnection::new(transport, &mut buffers.read, &mut buffers.write);
        let config = TlsConfig::new();
        let mut provider = PinnedProvider::with(auth, identity, &mut *rng, backend);
        let result = conn.open(TlsContext::new(&config, &mut provider));
        let server = authenticated(&provider, result)?;
        Ok(PinnedTls { conn, server })
    }

    /// The transport, to move bytes in and out of it between reads: a
    /// read that fails because the transport has nothing yet loses nothing
    /// and can be retried (PATCHES.md #8).
    pub fn transport_mut(&mut self) -> &mut T {
        self.conn.transport_mut()
    }

    /// SHA-256 of the certificate the server presented (and proved).
    pub fn server_fingerprint(&self) -> [u8; 32] {
        self.server
    }

    /// Reads decrypted bytes; `Ok(0)` only for an empty `buf`.
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize, TlsError> {
        self.conn.read(buf).map_err(TlsError::from_application)
    }

    /// Buffers `buf` into records (sent when a record fills or on [`Self::flush`]).
    pub fn write(&mut self, buf: &[u8]) -> Result<usize, TlsError> {
        self.conn.write(buf).map_err(TlsError::from_application)
    }

    /// Writes all of `buf`, then sends it.
    pub fn send(&mut self, mut buf: &[u8]) -> Result<(), TlsError> {
        while !buf.is_empty() {
            let mut n = self.write(buf)?;
            if n == 0 {
                // The record buffer was full: send it and retry once.
                self.flush()?;
                n = self.write(buf)?;
                if n == 0 {
                    return Err(TlsError::Protocol {
                        what: "record buffer accepts no data",
                    });
                }
            }
            buf = buf.get(n..).unwrap_or(&[]);
        }
        self.flush()
    }

    /// Sends the buffered record.
    pub fn flush(&mut self) -> Result<(), TlsError> {
        self.conn.flush().map_err(TlsError::from_application)
    }

    /// Sends close_notify, keeping the connection (to take it apart with
    /// [`Self::into_parts`]).
    pub fn close_notify(&mut self) -> Result<(), TlsError> {
        self.conn.close_notify().map_err(TlsError::from_application)
    }

    /// The transport and the record buffers; nothing is sent.
    pub fn into_parts(self) -> (T, TlsHalves<'a>) {
        let (transport, read, write) = self.conn.into_parts();
        (transport, TlsHalves { read, write })
    }

    /// Sends close_notify and gives the transport back.
    pub fn close(self) -> Result<T, (T, TlsError)> {
        self.conn
            .close()
            .map_err(|(transport, e)| (transport, TlsError::from_application(e)))
    }
}

/// What a completed handshake (`result`) proved, or why it proved
/// nothing: the verifier's own failure first (the precise reason), then the
/// handshake's; the server must have asked for our certificate and proved
/// the one `auth` names. The server's certificate fingerprint when it did.
fn authenticated<R: CryptoRngCore>(
    provider: &PinnedProvider<R>,
    result: Result<(), embedded_tls::TlsError>,
) -> Result<[u8; 32], TlsError> {
    // The patched embedded-tls itself refuses a Finished before the
    // server's Certificate and CertificateVerify (unexpected_message).
    result.map_err(|e| failure(provider, e))?;
    let verifier = provider.pinned_verifier();
    if let Progress::Failed(why) = verifier.progress() {
        return Err(*why);
    }
    if !provider.cert_requested() {
        return Err(TlsError::ClientCertificateNotRequested);
    }
    let server = verifier
        .presented()
        .ok_or(TlsError::ServerNotAuthenticated)?;
    debug!("TLS 1.3 channel open, server authenticated");
    Ok(server)
}

/// Why a handshake failed: the verifier's own reason when it refused the
/// server (the precise one), else what embedded-tls said.
fn failure<R: CryptoRngCore>(provider: &PinnedProvider<R>, e: embedded_tls::TlsError) -> TlsError {
    match provider.pinned_verifier().progress() {
        Progress::Failed(why) => *why,
        _ => TlsError::from_handshake(e),
    }
}

/// A handshake in progress, one state per [`Handshaking::step`], with the
/// same checks as [`PinnedTls::open_as`] at [`Handshaking::finish`]: for a
/// caller that must not wait inside the handshake (the agent, which keeps it
/// in its own state and steps it from `Agent::handle_timeout`; a superloop). It owns
/// everything but its record buffers (the identity, the RNG), so it can live
/// in a caller's static state and be stepped in place through `&mut`.
///
/// A step that reads (`wants_read`) takes one whole record from the
/// transport; if the transport fails the read (it has nothing yet), the step
/// fails with [`TlsError::Io`] and nothing is lost: the bytes read so far
/// are kept, and the caller steps again once more arrived (the in-tree
/// embedded-tls, PATCHES.md #8). A step that writes needs the transport to
/// take the whole flight, at most [`TLS_RECORD_WRITE_BUF`] bytes. Every other
/// failure ends the handshake, and every later step returns it.
pub struct Handshaking<'a, T: Read + Write + 'a, R> {
    conn: TlsConnection<'a, T, Aes128GcmSha256>,
    config: TlsConfig<'static>,
    provider: PinnedProvider<R>,
    step: HandshakeStep<Aes128GcmSha256>,
}

impl<'a, T: Read + Write + 'a, R: CryptoRngCore> Handshaking<'a, T, R> {
    /// Starts a handshake over `transport`, as [`PinnedTls::open_as`]
    /// would; nothing is sent before the first [`Self::step`].
    pub fn start(
        transport: T,
        buffers: &'a mut TlsBuffers,
        auth: ServerAuth,
        identity: Identity,
        rng: R,
        backend: &'static dyn P256Backend,
    ) -> Self {
        Self::start_in(transport, buffers.halves(), auth, identity, rng, backend)
    }

    /// [`Self::start`] over buffers given back by an earlier connection.
    pub fn start_in(
        transport: T,
        buffers: TlsHalves<'a>,
        auth: ServerAuth,
        identity: Identity,
        rng: R,
        backend: &'static dyn P256Backend,
    ) -> Self {
        Handshaking {
            conn: TlsConnection::new(transport, buffers.read, buffers.write),
            config: TlsConfig::new(),
            provider: PinnedProvider::with(auth, identity, rng, backend),
            step: HandshakeStep::new(),
        }
    }

    /// Whether the next step reads a record from the server (otherwise it
    /// writes a flight, or the handshake is complete).
    pub fn wants_read(&self) -> bool {
        self.step.wants_read()
    }

    /// The transport, to move bytes in and out of it between steps.
    pub fn transport_mut(&mut self) -> &mut T {
        self.conn.transport_mut()
    }

    /// Runs one state of the handshake: `Ok(true)` once it is complete
    /// (then [`Self::finish`]), `Ok(false)` when more steps are needed.
    pub fn step(&mut self) -> Result<bool, TlsError> {
        let context = TlsContext::new(&self.config, &mut self.provider);
        self.conn
            .open_step(&mut self.step, context)
            .map_err(|e| failure(&self.provider, e))
    }

    /// The open channel, once [`Self::step`] said the handshake is
    /// complete: the server proved the certificate `auth` asked for, and
    /// asked for ours. Otherwise the connection is taken apart, and the
    /// transport and the buffers come back with the reason.
    pub fn finish(self) -> Result<PinnedTls<'a, T>, Abandoned<'a, T>> {
        let checked = if self.step.is_done() {
            authenticated(&self.provider, Ok(()))
        } else {
            Err(TlsError::Protocol {
                what: "handshake not complete",
            })
        };
        match checked {
            Ok(server) => Ok(PinnedTls {
                conn: self.conn,
                server,
            }),
            Err(error) => {
                let (transport, buffers) = self.abandon();
                Err(Abandoned {
                    transport,
                    buffers,
                    error,
                })
            }
        }
    }

    /// Ends the handshake without a word: the transport and the buffers.
    pub fn abandon(self) -> (T, TlsHalves<'a>) {
        let (transport, read, write) = self.conn.into_parts();
        (transport, TlsHalves { read, write })
    }
}

/// A handshake that completed without proving what it had to: why, and
/// what it held.
pub struct Abandoned<'a, T> {
    /// The transport.
    pub transport: T,
    /// The record buffers, for the next connection.
    pub buffers: TlsHalves<'a>,
    /// Why the handshake proved nothing.
    pub error: TlsError,
}

impl<'a, T: Read + Write + 'a> ErrorType for PinnedTls<'a, T> {
    type Error = TlsError;
}

impl<'a, T: Read + Write + 'a> Read for PinnedTls<'a, T> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, TlsError> {
        PinnedTls::read(self, buf)
    }
}

impl<'a, T: Read + Write + 'a> Write for PinnedTls<'a, T> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, TlsError> {
        PinnedTls::write(self, buf)
    }

    fn flush(&mut self) -> Result<(), TlsError> {
        PinnedTls::flush(self)
    }
}
