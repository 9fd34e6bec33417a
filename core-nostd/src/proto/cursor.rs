//! Sequential readers and writers for message bodies.
//!
//! Bodies hold variable-length `str8` fields, so their layout is not a set of
//! fixed ranges; these cursors walk them instead. Every step is a checked
//! split, so a short body is [`ProtoError::Truncated`], never a panic.

use super::{ProtoError, MAX_STR_LEN};

/// Reads the fields of a body front to back.
pub(super) struct BodyReader<'a> {
    rest: &'a [u8],
}

impl<'a> BodyReader<'a> {
    /// A reader over a whole body.
    pub(super) fn new(body: &'a [u8]) -> Self {
        BodyReader { rest: body }
    }

    /// The next `n` bytes.
    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], ProtoError> {
        let (head, tail) = self.rest.split_at_checked(n).ok_or(ProtoError::Truncated)?;
        self.rest = tail;
        Ok(head)
    }

    /// The next `K` bytes as an array.
    pub(super) fn array<const K: usize>(&mut self) -> Result<[u8; K], ProtoError> {
        let (head, tail) = self
            .rest
            .split_first_chunk::<K>()
            .ok_or(ProtoError::Truncated)?;
        self.rest = tail;
        Ok(*head)
    }

    /// A `u8` field.
    pub(super) fn u8(&mut self) -> Result<u8, ProtoError> {
        let [b] = self.array::<1>()?;
        Ok(b)
    }

    /// A big-endian `u32` field.
    pub(super) fn u32(&mut self) -> Result<u32, ProtoError> {
        self.array::<4>().map(u32::from_be_bytes)
    }

    /// A `str8` field: a length byte, then that many bytes of UTF-8.
    pub(super) fn str8(&mut self) -> Result<&'a str, ProtoError> {
        let n = self.u8()?;
        let bytes = self.take(usize::from(n))?;
        core::str::from_utf8(bytes).map_err(|_| ProtoError::BadUtf8)
    }

    /// Ends the body: every byte must have been read.
    pub(super) fn finish(self) -> Result<(), ProtoError> {
        match self.rest.len() {
            0 => Ok(()),
            n => Err(ProtoError::TrailingBytes(n)),
        }
    }
}

/// Writes the fields of a body front to back into a buffer sized for it.
pub(super) struct BodyWriter<'a> {
    rest: &'a mut [u8],
}

impl<'a> BodyWriter<'a> {
    /// A writer over the body part of a frame.
    pub(super) fn new(body: &'a mut [u8]) -> Self {
        BodyWriter { rest: body }
    }

    /// Copies `bytes` in.
    pub(super) fn bytes(&mut self, bytes: &[u8]) -> Result<(), ProtoError> {
        let buf = core::mem::take(&mut self.rest);
        let have = buf.len();
        let (head, tail) =
            buf.split_at_mut_checked(bytes.len())
                .ok_or(ProtoError::BufferTooSmall {
                    need: bytes.len(),
                    have,
                })?;
        head.copy_from_slice(bytes);
        self.rest = tail;
        Ok(())
    }

    /// A `u8` field.
    pub(super) fn u8(&mut self, value: u8) -> Result<(), ProtoError> {
        self.bytes(&[value])
    }

    /// A big-endian `u32` field.
    pub(super) fn u32(&mut self, value: u32) -> Result<(), ProtoError> {
        self.bytes(&value.to_be_bytes())
    }

    /// A `str8` field.
    pub(super) fn str8(&mut self, s: &str) -> Result<(), ProtoError> {
        let n = str8_len_byte(s)?;
        self.u8(n)?;
        self.bytes(s.as_bytes())
    }

    /// Ends the body: the buffer must be exactly full.
    pub(super) fn finish(self) -> Result<(), ProtoError> {
        match self.rest.len() {
            0 => Ok(()),
            n => Err(ProtoError::TrailingBytes(n)),
        }
    }
}

/// The length byte of a `str8` carrying `s`, or why it cannot be one.
pub(super) fn str8_len_byte(s: &str) -> Result<u8, ProtoError> {
    u8::try_from(s.len())
        .ok()
        .filter(|_| s.len() <= MAX_STR_LEN)
        .ok_or(ProtoError::StringTooLong(s.len()))
}

/// Bytes a `str8` carrying `s` takes on the wire (saturating, so a string
/// too long for the field still yields a size, never an overflow).
pub(super) fn str8_wire_len(s: &str) -> usize {
    s.len().saturating_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_reads_fields_in_order_and_reports_leftovers() {
        let body = [7, 0, 0, 1, 2, 2, b'h', b'i', 9];
        let mut r = BodyReader::new(&body);
        assert_eq!(r.u8().unwrap(), 7);
        assert_eq!(r.u32().unwrap(), 0x0102);
        assert_eq!(r.str8().unwrap(), "hi");
        assert_eq!(r.finish(), Err(ProtoError::TrailingBytes(1)));
    }

    #[test]
    fn reader_reports_truncation_of_every_field_kind() {
        assert_eq!(BodyReader::new(&[]).u8(), Err(ProtoError::Truncated));
        assert_eq!(
            BodyReader::new(&[1, 2, 3]).u32(),
            Err(ProtoError::Truncated)
        );
        assert_eq!(
            BodyReader::new(&[3, b'a']).str8(),
            Err(ProtoError::Truncated)
        );
        assert_eq!(BodyReader::new(&[]).str8(), Err(ProtoError::Truncated));
    }

    #[test]
    fn reader_rejects_invalid_utf8() {
        assert_eq!(
            BodyReader::new(&[2, 0xc3, 0x28]).str8(),
            Err(ProtoError::BadUtf8)
        );
    }

    #[test]
    fn writer_refuses_overflow_and_long_strings() {
        let mut buf = [0u8; 3];
        let mut w = BodyWriter::new(&mut buf);
        assert_eq!(
            w.u32(1),
            Err(ProtoError::BufferTooSmall { need: 4, have: 3 })
        );
        let long = [b'x'; 256];
        let long = core::str::from_utf8(&long).unwrap();
        assert_eq!(str8_len_byte(long), Err(ProtoError::StringTooLong(256)));
        assert_eq!(str8_len_byte(&long[..255]), Ok(255));
    }
}
