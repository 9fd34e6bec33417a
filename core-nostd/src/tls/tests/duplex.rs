//! An in-memory transport whose far end is a rustls server connection,
//! pumped on every read and write. The server echoes application data.

extern crate std;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};
use std::vec::Vec;

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// What happens to the server's bytes on their way to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    /// Delivered as sent.
    None,
    /// Only the first `n` bytes arrive, then the connection ends.
    TruncateAt(usize),
    /// Byte `i` arrives with its low bit flipped.
    Flip(usize),
    /// Every byte is replaced by seeded random garbage.
    Garbage(u64),
}

/// The client's end of an in-memory connection to a rustls server.
pub struct Duplex {
    pub server: rustls::ServerConnection,
    pub tamper: Tamper,
    /// The first error the server reported (an alert it received, or why it
    /// aborted).
    pub server_error: Option<rustls::Error>,
    /// Bytes the server produced so far (before tampering).
    pub produced: usize,
    /// Bytes the client has read so far.
    pub delivered: usize,
    /// After echoing, the server also sends a KeyUpdate.
    pub key_update_after_echo: bool,
    /// Time spent inside the rustls server (to tell the client's share).
    pub server_time: Duration,
    to_client: VecDeque<u8>,
    garbage: ChaCha20Rng,
}

impl Duplex {
    pub fn new(config: Arc<rustls::ServerConfig>, tamper: Tamper) -> Duplex {
        let seed = match tamper {
            Tamper::Garbage(seed) => seed,
            _ => 0,
        };
        Duplex {
            server: rustls::ServerConnection::new(config).unwrap(),
            tamper,
            server_error: None,
            produced: 0,
            delivered: 0,
            key_update_after_echo: false,
            server_time: Duration::ZERO,
            to_client: VecDeque::new(),
            garbage: ChaCha20Rng::seed_from_u64(seed),
        }
    }

    fn pump(&mut self) {
        let started = Instant::now();
        let mut out = Vec::new();
        while self.server.wants_write() {
            if self.server.write_tls(&mut out).is_err() {
                break;
            }
        }
        self.server_time += started.elapsed();
        for b in out {
            let i = self.produced;
            self.produced += 1;
            let b = match self.tamper {
                Tamper::None => b,
                Tamper::TruncateAt(n) if i >= n => continue,
                Tamper::TruncateAt(_) => b,
                Tamper::Flip(at) if at == i => b ^ 1,
                Tamper::Flip(_) => b,
                Tamper::Garbage(_) => self.garbage.next_u32() as u8,
            };
            self.to_client.push_back(b);
        }
    }

    fn serve(&mut self, input: &[u8]) {
        let started = Instant::now();
        self.serve_untimed(input);
        self.server_time += started.elapsed();
    }

    fn serve_untimed(&mut self, mut input: &[u8]) {
        if self.server_error.is_some() {
            return;
        }
        while !input.is_empty() {
            match self.server.read_tls(&mut input) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            if let Err(e) = self.server.process_new_packets() {
                self.server_error = Some(e);
                break;
            }
        }
        // Echo whatever the client sent.
        let mut plain = Vec::new();
        let _ = std::io::Read::read_to_end(&mut self.server.reader(), &mut plain);
        if !plain.is_empty() {
            std::io::Write::write_all(&mut self.server.writer(), &plain).unwrap();
            if self.key_update_after_echo {
                self.server.refresh_traffic_keys().unwrap();
            }
        }
    }
}

impl embedded_io::ErrorType for Duplex {
    type Error = embedded_io::ErrorKind;
}

impl embedded_io::Read for Duplex {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        self.pump();
        let mut n = 0;
        while n < buf.len() {
            match self.to_client.pop_front() {
                Some(b) => {
                    buf[n] = b;
                    n += 1;
                }
                None => break,
            }
        }
        // Nothing to read in a single-threaded world is the end of the
        // stream: the server has nothing more to say.
        self.delivered += n;
        Ok(n)
    }
}

impl embedded_io::Write for Duplex {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.serve(buf);
        self.pump();
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}
