//! A tiny DER writer and reader: just what a P-256 self-signed certificate needs.
//!
//! The writer nests by closure: it writes the tag, reserves the longest
//! length form it supports (`0x82 hi lo`, up to 65,535 bytes), lets the
//! closure write the contents, then encodes the real length and moves the
//! contents left when a shorter form suffices. Nothing is allocated; every
//! write is bounds-checked against the caller's slice.
//!
//! The reader walks tag-length-value triples over a borrowed slice. It
//! accepts only definite lengths in minimal form with at most two length
//! bytes (a certificate of ours is far smaller), and every length is checked
//! against what is left before anything is sliced.

use super::CertError;

/// Universal and context tags used by X.509.
pub(crate) mod tag {
    pub const BOOLEAN: u8 = 0x01;
    pub const INTEGER: u8 = 0x02;
    pub const BIT_STRING: u8 = 0x03;
    pub const OCTET_STRING: u8 = 0x04;
    pub const OID: u8 = 0x06;
    pub const UTF8_STRING: u8 = 0x0c;
    pub const PRINTABLE_STRING: u8 = 0x13;
    pub const UTC_TIME: u8 = 0x17;
    pub const GENERALIZED_TIME: u8 = 0x18;
    pub const SEQUENCE: u8 = 0x30;
    pub const SET: u8 = 0x31;
    /// `[0] EXPLICIT` (version).
    pub const CONTEXT_0: u8 = 0xa0;
    /// `[3] EXPLICIT` (extensions).
    pub const CONTEXT_3: u8 = 0xa3;
}

/// Bytes reserved for a length while its contents are written.
const RESERVED_LEN: usize = 3;

/// Writes DER into a caller's slice.
pub(crate) struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    /// A writer at the start of `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Writer { buf, pos: 0 }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.pos
    }

    /// The bytes written in `start..` (as returned by an earlier [`Self::len`]).
    pub fn written_since(&self, start: usize) -> &[u8] {
        self.buf.get(start..self.pos).unwrap_or(&[])
    }

    fn too_small(&self) -> CertError {
        CertError::BufferTooSmall {
            capacity: self.buf.len(),
        }
    }

    /// Appends raw bytes.
    pub fn raw(&mut self, bytes: &[u8]) -> Result<(), CertError> {
        let end = self
            .pos
            .checked_add(bytes.len())
            .ok_or_else(|| self.too_small())?;
        let dst = self.buf.get_mut(self.pos..end);
        match dst {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                self.pos = end;
                Ok(())
            }
            None => Err(self.too_small()),
        }
    }

    /// Writes a primitive element: tag, length, `value`.
    pub fn element(&mut self, tag: u8, value: &[u8]) -> Result<(), CertError> {
        self.nested(tag, |w| w.raw(value))
    }

    /// Writes a constructed (or wrapping) element whose contents `body` writes.
    pub fn nested(
        &mut self,
        tag: u8,
        body: impl FnOnce(&mut Self) -> Result<(), CertError>,
    ) -> Result<(), CertError> {
        self.raw(&[tag, 0, 0, 0])?;
        let len_at = self
            .pos
            .checked_sub(RESERVED_LEN)
            .ok_or(CertError::Encoding)?;
        let start = self.pos;
        body(self)?;
        let content_len = self.pos.checked_sub(start).ok_or(CertError::Encoding)?;
        let mut len_bytes = [0u8; RESERVED_LEN];
        let used = encode_len(content_len, &mut len_bytes)?;
        let shift = RESERVED_LEN.checked_sub(used).ok_or(CertError::Encoding)?;
        if shift > 0 {
            let to = start.checked_sub(shift).ok_or(CertError::Encoding)?;
            self.buf.copy_within(start..self.pos, to);
            self.pos = self.pos.checked_sub(shift).ok_or(CertError::Encoding)?;
        }
        let len_end = len_at.checked_add(used).ok_or(CertError::Encoding)?;
        let dst = self
            .buf
            .get_mut(len_at..len_end)
            .ok_or(CertError::Encoding)?;
        dst.copy_from_slice(len_bytes.get(..used).ok_or(CertError::Encoding)?);
        Ok(())
    }

    /// Writes a BIT STRING with no unused bits around the bytes `body` writes.
    pub fn bit_string(
        &mut self,
        body: impl FnOnce(&mut Self) -> Result<(), CertError>,
    ) -> Result<(), CertError> {
        self.nested(tag::BIT_STRING, |w| {
            w.raw(&[0])?;
            body(w)
        })
    }
}

/// Encodes a DER length into `out`, returning how many bytes it took.
fn encode_len(len: usize, out: &mut [u8; RESERVED_LEN]) -> Result<usize, CertError> {
    match len {
        0..=0x7f => {
            out[0] = len as u8;
            Ok(1)
        }
        0x80..=0xff => {
            out[0] = 0x81;
            out[1] = len as u8;
            Ok(2)
        }
        0x100..=0xffff => {
            out[0] = 0x82;
            out[1] = (len >> 8) as u8;
            out[2] = len as u8;
            Ok(3)
        }
        _ => Err(CertError::Encoding),
    }
}

/// One tag-length-value triple read from DER.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tlv<'a> {
    /// The identifier octet.
    pub tag: u8,
    /// The contents.
    pub value: &'a [u8],
    /// The whole element, header included (what a signature covers).
    pub raw: &'a [u8],
}

/// Reads DER elements in sequence from a borrowed slice.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    /// Offset of `data` inside the outermost input, for error messages.
    base: usize,
}

impl<'a> Reader<'a> {
    /// A reader over a whole input.
    pub fn new(data: &'a [u8]) -> Self {
        Reader {
            data,
            pos: 0,
            base: 0,
        }
    }

    /// Whether everything was read.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// The input offset of the next element.
    pub fn offset(&self) -> usize {
        self.base.saturating_add(self.pos)
    }

    fn byte(&mut self) -> Result<u8, CertError> {
        let b = *self.data.get(self.pos).ok_or(CertError::Truncated {
            offset: self.offset(),
        })?;
        self.pos = self.pos.saturating_add(1);
        Ok(b)
    }

    /// Reads the next element, whatever its tag.
    pub fn any(&mut self) -> Result<(Tlv<'a>, Reader<'a>), CertError> {
        let start = self.pos;
        let at = self.offset();
        let tag = self.byte()?;
        if tag & 0x1f == 0x1f {
            // High tag numbers never occur in what we parse.
            return Err(CertError::Malformed { offset: at });
        }
        let first = self.byte()?;
        let len = match first {
            0..=0x7f => usize::from(first),
            0x81 => {
                let l = usize::from(self.byte()?);
                if l < 0x80 {
                    return Err(CertError::Malformed { offset: at });
                }
                l
            }
            0x82 => {
                let hi = usize::from(self.byte()?);
                let lo = usize::from(self.byte()?);
                let l = (hi << 8) | lo;
                if l < 0x100 {
                    return Err(CertError::Malformed { offset: at });
                }
                l
            }
            _ => return Err(CertError::Malformed { offset: at }),
        };
        let value_start = self.pos;
        let end = value_start
            .checked_add(len)
            .filter(|&e| e <= self.data.len())
            .ok_or(CertError::Truncated { offset: at })?;
        let value = self
            .data
            .get(value_start..end)
            .ok_or(CertError::Truncated { offset: at })?;
        let raw = self
            .data
            .get(start..end)
            .ok_or(CertError::Truncated { offset: at })?;
        self.pos = end;
        let inner = Reader {
            data: value,
            pos: 0,
            base: self.base.saturating_add(value_start),
        };
        Ok((Tlv { tag, value, raw }, inner))
    }

    /// Reads the next element and checks its tag.
    pub fn expect(&mut self, tag: u8) -> Result<(Tlv<'a>, Reader<'a>), CertError> {
        let at = self.offset();
        let (tlv, inner) = self.any()?;
        if tlv.tag != tag {
            return Err(CertError::UnexpectedTag {
                offset: at,
                expected: tag,
                found: tlv.tag,
            });
        }
        Ok((tlv, inner))
    }

    /// Fails unless everything was read.
    pub fn finish(&self) -> Result<(), CertError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(CertError::TrailingData {
                offset: self.offset(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_lengths_pick_the_shortest_form() {
        let mut buf = [0u8; 400];
        let mut w = Writer::new(&mut buf);
        w.nested(tag::SEQUENCE, |w| {
            w.element(tag::OCTET_STRING, &[1, 2, 3])?;
            w.element(tag::OCTET_STRING, &[9; 200])?;
            w.element(tag::OCTET_STRING, &[])
        })
        .unwrap();
        let n = w.len();
        let out = &buf[..n];
        // 5 + (3 + 200) + 2 = 210 bytes of contents: the 0x81 form.
        assert_eq!(&out[..3], &[0x30, 0x81, 210]);
        assert_eq!(&out[3..8], &[0x04, 3, 1, 2, 3]);
        assert_eq!(&out[8..11], &[0x04, 0x81, 200]);
        assert_eq!(n, 3 + 210);

        let mut r = Reader::new(out);
        let (seq, mut inner) = r.expect(tag::SEQUENCE).unwrap();
        assert_eq!(seq.raw, out);
        assert_eq!(inner.expect(tag::OCTET_STRING).unwrap().0.value, &[1, 2, 3]);
        assert_eq!(inner.expect(tag::OCTET_STRING).unwrap().0.value, &[9; 200]);
        assert_eq!(inner.expect(tag::OCTET_STRING).unwrap().0.value, &[]);
        inner.finish().unwrap();
        r.finish().unwrap();
    }

    #[test]
    fn writer_reports_a_short_buffer() {
        let mut buf = [0u8; 6];
        let mut w = Writer::new(&mut buf);
        assert_eq!(
            w.element(tag::OCTET_STRING, &[0; 8]),
            Err(CertError::BufferTooSmall { capacity: 6 })
        );
    }

    #[test]
    fn reader_rejects_non_minimal_indefinite_and_overlong_lengths() {
        for bad in [
            &[0x04, 0x81, 0x05, 0, 0, 0, 0, 0][..],
            &[0x30, 0x80, 0, 0],
            &[0x04, 0x83, 0, 0, 1, 0],
            &[0x04, 0x05, 1, 2],
            &[0x1f, 0x01, 0],
        ] {
            assert!(Reader::new(bad).any().is_err(), "{bad:02x?}");
        }
    }
}
