//! A record-framing guard between embedded-tls and the transport.
//!
//! embedded-tls 0.19 panics (`unwrap` on an empty slice in
//! `connection::decrypt_record`) when an encrypted record decrypts to zero
//! bytes: a 16-byte record holding only the AEAD tag. During the handshake
//! that needs only the handshake keys, which anyone answering our
//! ClientHello has, so a man in the middle could crash the agent before the
//! pin is ever checked. TLS 1.3 never sends such a record (the inner
//! plaintext carries at least its content type byte, RFC 8446 §5.2), so the
//! guard follows the server's record framing and fails the read instead of
//! handing embedded-tls an `application_data` record shorter than 17 bytes.

use core::cell::Cell;

use embedded_io::{ErrorKind, ErrorType, Read, Write};

/// TLS record header length.
const HEADER_LEN: usize = 5;
/// `application_data`, the outer type of every encrypted TLS 1.3 record.
const APPLICATION_DATA: u8 = 23;
/// Smallest valid encrypted record body: one byte of content type + the
/// 16-byte AES-GCM tag.
pub(crate) const MIN_ENCRYPTED_LEN: usize = 1 + 16;

/// The transport as embedded-tls sees it: reads are checked record by record.
pub(crate) struct RecordGuard<'a, T> {
    inner: T,
    header: [u8; HEADER_LEN],
    header_len: usize,
    body_left: usize,
    /// Set to the record length once a runt record was refused (kept
    /// outside the guard, which embedded-tls owns, so the error can be
    /// told apart from a transport failure); every later read fails too.
    refused: &'a Cell<Option<u16>>,
}

impl<'a, T> RecordGuard<'a, T> {
    pub(crate) fn new(inner: T, refused: &'a Cell<Option<u16>>) -> Self {
        refused.set(None);
        RecordGuard {
            inner,
            header: [0; HEADER_LEN],
            header_len: 0,
            body_left: 0,
            refused,
        }
    }

    pub(crate) fn into_inner(self) -> T {
        self.inner
    }

    /// Follows the framing over bytes just read; `Err` for a runt record.
    fn inspect(&mut self, bytes: &[u8]) -> Result<(), u16> {
        let mut rest = bytes;
        while !rest.is_empty() {
            if self.body_left > 0 {
                let skip = self.body_left.min(rest.len());
                self.body_left = self.body_left.saturating_sub(skip);
                rest = rest.get(skip..).unwrap_or(&[]);
                continue;
            }
            let (first, tail) = match rest.split_first() {
                Some(split) => split,
                None => break,
            };
            if let Some(slot) = self.header.get_mut(self.header_len) {
                *slot = *first;
            }
            self.header_len = self.header_len.saturating_add(1);
            rest = tail;
            if self.header_len == HEADER_LEN {
                self.header_len = 0;
                let [kind, _, _, hi, lo] = self.header;
                let len = u16::from_be_bytes([hi, lo]);
                if kind == APPLICATION_DATA && usize::from(len) < MIN_ENCRYPTED_LEN {
                    return Err(len);
                }
                self.body_left = usize::from(len);
            }
        }
        Ok(())
    }
}

impl<T: ErrorType> ErrorType for RecordGuard<'_, T> {
    type Error = ErrorKind;
}

impl<T: Read> Read for RecordGuard<'_, T> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        if self.refused.get().is_some() {
            return Err(ErrorKind::InvalidData);
        }
        let n = self
            .inner
            .read(buf)
            .map_err(|e| embedded_io::Error::kind(&e))?;
        let got = buf.get(..n).unwrap_or(&[]);
        if let Err(len) = self.inspect(got) {
            warn!("refused an encrypted TLS record of {} bytes", len);
            self.refused.set(Some(len));
            return Err(ErrorKind::InvalidData);
        }
        Ok(n)
    }
}

impl<T: Write> Write for RecordGuard<'_, T> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        self.inner
            .write(buf)
            .map_err(|e| embedded_io::Error::kind(&e))
    }

    fn flush(&mut self) -> Result<(), ErrorKind> {
        self.inner.flush().map_err(|e| embedded_io::Error::kind(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runt_encrypted_record_is_refused_across_split_reads() {
        let flag = Cell::new(None);
        let mut g = RecordGuard::new((), &flag);
        // A handshake record of 3 bytes, then an encrypted one of 16.
        assert_eq!(g.inspect(&[22, 3, 3, 0, 3, 1, 2]), Ok(()));
        assert_eq!(g.inspect(&[3, 23, 3]), Ok(()));
        assert_eq!(g.inspect(&[3, 0]), Ok(()));
        assert_eq!(g.inspect(&[16]), Err(16));
    }

    #[test]
    fn well_formed_records_pass() {
        let flag = Cell::new(None);
        let mut g = RecordGuard::new((), &flag);
        let mut stream = [0u8; 5 + 17 + 5 + 300];
        stream[..5].copy_from_slice(&[23, 3, 3, 0, 17]);
        stream[22..27].copy_from_slice(&[23, 3, 3, 1, 44]);
        for chunk in stream.chunks(7) {
            assert_eq!(g.inspect(chunk), Ok(()));
        }
        assert_eq!((g.header_len, g.body_left), (0, 0));
    }
}
