//! The handshake and the record layer run in steps that never wait
//! (`Handshaking`, PATCHES.md #8): a transport that has nothing yet fails
//! the read, and the next step goes on from the byte where it stopped.

extern crate std;

use std::boxed::Box;
use std::vec::Vec;

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::duplex::{Duplex, Tamper};
use super::{server_config, Pki, Server};
use crate::tls::{Handshaking, Identity, ServerAuth, TlsBuffers, TlsError, RUST_CRYPTO};

/// A transport that lets through only the bytes it was given room for, and
/// fails a read with "nothing yet" when that room is used up, as a
/// non-blocking socket whose receive buffer is empty would.
struct Trickle<'d> {
    inner: &'d mut Duplex,
    /// Bytes the client may still read before the next "nothing yet".
    room: usize,
    /// The last read failed only because there was no room.
    starved: bool,
    /// How many reads failed so.
    starvations: usize,
    /// Bytes the client wrote.
    written: usize,
}

impl embedded_io::ErrorType for Trickle<'_> {
    type Error = embedded_io::ErrorKind;
}

impl embedded_io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        self.starved = false;
        let max = buf.len().min(self.room);
        if max == 0 {
            self.starved = true;
            self.starvations += 1;
            return Err(embedded_io::ErrorKind::Other);
        }
        let n = self.inner.read(&mut buf[..max])?;
        self.room -= n;
        Ok(n)
    }
}

impl embedded_io::Write for Trickle<'_> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.written += buf.len();
        self.inner.write(buf)
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// A handshake over `duplex` whose transport lets `room` bytes through.
fn start<'a, 'd>(
    pki: &'a Pki,
    auth: ServerAuth,
    duplex: &'d mut Duplex,
    room: usize,
    buffers: &'a mut TlsBuffers,
    rng: &'a mut ChaCha20Rng,
) -> Handshaking<'a, Trickle<'d>, &'a mut ChaCha20Rng> {
    let identity =
        Identity::new(pki.client_key.clone(), &pki.client_der).expect("the certificate fits");
    let transport = Trickle {
        inner: duplex,
        room,
        starved: false,
        starvations: 0,
        written: 0,
    };
    Handshaking::start(transport, buffers, auth, identity, rng, &RUST_CRYPTO)
}

/// Steps the handshake, giving the transport `per_step` more bytes each
/// time it ran dry. Returns the channel's echo of one frame, and how often
/// a step found nothing to read.
fn stepped(
    pki: &Pki,
    auth: ServerAuth,
    duplex: &mut Duplex,
    per_step: usize,
) -> Result<(Vec<u8>, usize), TlsError> {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let mut buffers = Box::new(TlsBuffers::new());
    let mut hs = start(pki, auth, duplex, 0, &mut buffers, &mut rng);
    loop {
        match hs.step() {
            Ok(true) => break,
            Ok(false) => {}
            Err(TlsError::Io(_)) if hs.transport_mut().starved => {
                assert!(hs.wants_read(), "only a read step may find nothing yet");
                hs.transport_mut().room += per_step;
            }
            Err(e) => return Err(e),
        }
    }
    let mut tls = hs.finish().map_err(|a| a.error)?;
    tls.send(b"\x00\x05\x05\x00\x00\x00\x01")?;
    let mut buf = [0u8; 64];
    // The echo, in a record read in steps too.
    let n = loop {
        match tls.read(&mut buf) {
            Ok(n) => break n,
            Err(TlsError::Io(_)) => {
                let t = tls.transport_mut();
                assert!(t.starved);
                t.room += per_step;
            }
            Err(e) => return Err(e),
        }
    };
    let starvations = tls.transport_mut().starvations;
    Ok((buf[..n].to_vec(), starvations))
}

#[test]
fn a_handshake_fed_one_byte_per_step_completes_and_its_records_resume_mid_header_and_mid_body() {
    let pki = Pki::new(1);
    let mut duplex = Duplex::new(server_config(&pki, Server::Mutual), Tamper::None);
    let (echo, starvations) =
        stepped(&pki, ServerAuth::Pinned(pki.server_pin()), &mut duplex, 1).unwrap();
    assert_eq!(echo, b"\x00\x05\x05\x00\x00\x00\x01");
    assert!(duplex.server_error.is_none());
    // One step found nothing for every byte the server sent: each record
    // was resumed inside its header and inside its body, and nothing was
    // lost or read twice.
    assert_eq!(
        starvations, duplex.delivered,
        "{starvations} steps for {} bytes",
        duplex.delivered
    );
    assert!(
        duplex.delivered > 500,
        "a whole server flight: {}",
        duplex.delivered
    );
}

#[test]
fn stepping_in_uneven_chunks_gives_the_same_channel() {
    let pki = Pki::new(2);
    for per_step in [2, 5, 7, 300, 4096] {
        let mut duplex = Duplex::new(server_config(&pki, Server::Mutual), Tamper::None);
        let (echo, _) = stepped(
            &pki,
            ServerAuth::Pinned(pki.server_pin()),
            &mut duplex,
            per_step,
        )
        .unwrap();
        assert_eq!(
            echo, b"\x00\x05\x05\x00\x00\x00\x01",
            "{per_step} bytes a step"
        );
    }
}

#[test]
fn a_stepped_handshake_still_refuses_the_wrong_certificate() {
    let pki = Pki::new(3);
    let mut duplex = Duplex::new(server_config(&pki, Server::Mutual), Tamper::None);
    let err = stepped(&pki, ServerAuth::Pinned([0x11; 32]), &mut duplex, 3).unwrap_err();
    assert!(matches!(err, TlsError::PinMismatch { .. }), "{err:?}");
    // Our certificate was never shown to the impostor.
    assert!(duplex.server.peer_certificates().is_none());

    let mut duplex = Duplex::new(server_config(&pki, Server::NoClientAuth), Tamper::None);
    let err = stepped(&pki, ServerAuth::Pinned(pki.server_pin()), &mut duplex, 3).unwrap_err();
    assert_eq!(err, TlsError::ClientCertificateNotRequested);
}

#[test]
fn a_failed_handshake_stays_failed_and_sends_nothing_more() {
    let pki = Pki::new(4);
    let mut duplex = Duplex::new(server_config(&pki, Server::Mutual), Tamper::None);
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let mut buffers = Box::new(TlsBuffers::new());
    let auth = ServerAuth::Pinned([0x11; 32]);
    let mut hs = start(&pki, auth, &mut duplex, usize::MAX, &mut buffers, &mut rng);
    let first = loop {
        match hs.step() {
            Ok(false) => {}
            Ok(true) => panic!("a wrong pin completed the handshake"),
            Err(e) => break e,
        }
    };
    assert!(matches!(first, TlsError::PinMismatch { .. }), "{first:?}");
    let written = hs.transport_mut().written;
    for _ in 0..3 {
        assert!(hs.step().is_err(), "a failed handshake never steps on");
    }
    assert_eq!(hs.transport_mut().written, written, "nothing more was sent");
    assert!(hs.finish().is_err());
    assert!(duplex.server.peer_certificates().is_none());
}
