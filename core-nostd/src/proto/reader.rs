//! Reassembly of frames from a byte stream (TCP or TLS records).

use super::packet::{frame_len, Packet};
use super::{Message, ProtoError, MAX_FRAME_LEN};

/// Reassembles channel frames from a byte stream into a fixed buffer of `N`
/// bytes (`N >= MAX_FRAME_LEN`, checked at compile time).
///
/// Fill it either zero-copy, by reading into [`spare_mut`](Self::spare_mut)
/// and then calling [`commit`](Self::commit), or by copying with
/// [`push`](Self::push). Then drain it with
/// [`next_message`](Self::next_message) (or [`next_packet`](Self::next_packet)
/// for raw frames) until it returns `None`:
///
/// ```
/// # use bmclink_core::proto::{FrameReader, Message, MAX_FRAME_LEN};
/// let mut reader = FrameReader::<{ MAX_FRAME_LEN }>::new();
/// let stream = [0, 5, 0x05, 0, 0, 0, 7, 0, 2, 0x09]; // PING 7, then BYE cut short
/// let n = stream.len().min(reader.spare_mut().len());
/// reader.spare_mut()[..n].copy_from_slice(&stream[..n]);
/// reader.commit(n);
/// while let Some(message) = reader.next_message() {
///     assert_eq!(message, Ok(Message::Ping(7)));
/// }
/// assert_eq!(reader.push(&[1]), 1); // the rest of the BYE
/// assert_eq!(reader.next_message(), Some(Ok(Message::Bye(1))));
/// ```
///
/// A returned frame borrows the reader, so it is consumed lazily: the next
/// call to any `&mut self` method drops it first. That is what lets the
/// `while let` loop above compile.
///
/// Errors: a length prefix outside `1..=1024` is reported as soon as its two
/// bytes arrive, and it is sticky (the stream cannot be resynchronised):
/// every later call returns it again until [`reset`](Self::reset), so break
/// out of the loop on `Err`. A malformed body inside a well-framed frame is
/// reported once and its frame consumed. Either way the protocol says to
/// close the connection (see the [module docs](super)).
#[derive(Debug, Clone)]
pub struct FrameReader<const N: usize> {
    buf: [u8; N],
    /// Start of the bytes not yet returned.
    start: usize,
    /// End of the bytes received.
    end: usize,
    /// Length of the frame last returned, dropped on the next `&mut` call.
    returned: usize,
    /// A framing error; sticky until `reset`.
    broken: Option<ProtoError>,
}

impl<const N: usize> Default for FrameReader<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> FrameReader<N> {
    const CAPACITY_HOLDS_A_FRAME: () = assert!(
        N >= MAX_FRAME_LEN,
        "FrameReader<N> needs N >= MAX_FRAME_LEN (1026)"
    );

    /// An empty reader.
    pub const fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::CAPACITY_HOLDS_A_FRAME;
        FrameReader {
            buf: [0; N],
            start: 0,
            end: 0,
            returned: 0,
            broken: None,
        }
    }

    /// Forgets everything buffered and any error, for a new connection.
    pub fn reset(&mut self) {
        self.start = 0;
        self.end = 0;
        self.returned = 0;
        self.broken = None;
    }

    /// The buffer size, `N`.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Bytes received and not yet consumed (a frame last returned counts
    /// until the next `&mut self` call).
    pub fn buffered(&self) -> usize {
        self.end.saturating_sub(self.start)
    }

    /// The sticky framing error, if the stream is broken.
    pub fn error(&self) -> Option<ProtoError> {
        self.broken
    }

    /// The free space to receive into; follow with [`commit`](Self::commit).
    ///
    /// Consumes the frame last returned and moves any partial frame to the
    /// front, so after draining with `next_message` this is at least
    /// `N - MAX_FRAME_LEN + 1` bytes. It is empty only while complete frames
    /// are waiting to be drained.
    pub fn spare_mut(&mut self) -> &mut [u8] {
        self.drop_returned();
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end = self.end.saturating_sub(self.start);
            self.start = 0;
        }
        self.buf.get_mut(self.end..).unwrap_or_default()
    }

    /// Marks `n` bytes written into [`spare_mut`](Self::spare_mut) as
    /// received. `n` is clamped to the free space.
    pub fn commit(&mut self, n: usize) {
        self.end = self.end.saturating_add(n).min(N);
    }

    /// Copies as much of `bytes` as fits and returns how many were taken.
    pub fn push(&mut self, bytes: &[u8]) -> usize {
        let spare = self.spare_mut();
        let n = bytes.len().min(spare.len());
        if let (Some(dst), Some(src)) = (spare.get_mut(..n), bytes.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.commit(n);
        n
    }

    /// The next complete frame, checked for length only: `None` until one
    /// has fully arrived, `Some(Err(LengthOutOfRange))` as soon as a bad
    /// length prefix has.
    pub fn next_packet(&mut self) -> Option<Result<Packet<&[u8]>, ProtoError>> {
        self.drop_returned();
        if let Some(e) = self.broken {
            return Some(Err(e));
        }
        let data = self.buf.get(self.start..self.end)?;
        let prefix = data.first_chunk::<2>()?;
        let need = match frame_len(u16::from_be_bytes(*prefix)) {
            Ok(need) => need,
            Err(e) => {
                self.broken = Some(e);
                return Some(Err(e));
            }
        };
        let frame = data.get(..need)?;
        self.returned = need;
        Some(Ok(Packet::new_unchecked(frame)))
    }

    /// The next complete frame, parsed: `None` until one has fully arrived.
    pub fn next_message(&mut self) -> Option<Result<Message<'_>, ProtoError>> {
        Some(
            self.next_packet()?
                .and_then(|packet| Message::parse(&packet)),
        )
    }

    /// Consumes the frame last returned.
    fn drop_returned(&mut self) {
        self.start = self.start.saturating_add(self.returned).min(self.end);
        self.returned = 0;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::proto::{Caps, Event, Hello, RejectCode, Welcome, PROTO_VERSION};
    use crate::types::Family;
    use std::vec::Vec;

    const LONG: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\
                        0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\
                        0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\
                        0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde";

    /// A stream of all ten types, two carrying 255-byte strings, and
    /// the frames it is made of.
    fn stream() -> (Vec<u8>, Vec<Vec<u8>>) {
        let messages = [
            Message::Hello(Hello {
                proto: PROTO_VERSION,
                agent_version: "bmclink 0.1.0",
                hostname: "node-1",
                family: Family::V4,
                tls: false,
                enrolling: false,
            }),
            Message::Welcome(Welcome {
                proto: PROTO_VERSION,
                firmware: [7, 10, 30, 0],
                caps: Caps::TLS,
                session: 42,
            }),
            Message::Reject(crate::proto::Reject {
                code: RejectCode::TlsRequired,
                reason: "TLS required",
            }),
            Message::Enroll(crate::proto::Enroll {
                account: "otp",
                proof: [0xa5; 32],
            }),
            Message::Ping(1),
            Message::Pong(1),
            Message::Event(Event {
                seq: 7,
                severity: 2,
                id: LONG,
                text: LONG,
            }),
            Message::Ack(7),
            Message::Hello(Hello {
                proto: PROTO_VERSION,
                agent_version: LONG,
                hostname: LONG,
                family: Family::V6,
                tls: true,
                enrolling: true,
            }),
            Message::Bye(0),
            Message::Enrolled(crate::proto::Enrolled { proof: [0x5a; 32] }),
        ];
        let frames: Vec<Vec<u8>> = messages.iter().map(emit_vec).collect();
        (frames.concat(), frames)
    }

    fn emit_vec(m: &Message<'_>) -> Vec<u8> {
        let mut buf = [0u8; MAX_FRAME_LEN];
        let n = m.emit(&mut buf).unwrap();
        buf[..n].to_vec()
    }

    /// Pushes all of `bytes`, draining whenever the buffer fills.
    fn feed<const N: usize>(r: &mut FrameReader<N>, mut bytes: &[u8], out: &mut Vec<Vec<u8>>) {
        while !bytes.is_empty() {
            let n = r.push(bytes);
            bytes = &bytes[n..];
            drain(r, out);
        }
    }

    fn drain<const N: usize>(r: &mut FrameReader<N>, out: &mut Vec<Vec<u8>>) {
        while let Some(m) = r.next_message() {
            out.push(emit_vec(&m.unwrap()));
        }
    }

    #[test]
    fn stream_split_at_every_boundary_reassembles() {
        let (bytes, frames) = stream();
        assert!(
            bytes.len() > MAX_FRAME_LEN,
            "the stream must overfill the reader"
        );
        let mut r = FrameReader::<MAX_FRAME_LEN>::new();
        for cut in 0..=bytes.len() {
            r.reset();
            let mut out = Vec::new();
            feed(&mut r, &bytes[..cut], &mut out);
            feed(&mut r, &bytes[cut..], &mut out);
            assert_eq!(out, frames, "split at {cut}");
            assert_eq!(r.next_message(), None);
            assert_eq!(r.buffered(), 0);
        }
    }

    #[test]
    fn stream_split_at_every_pair_of_boundaries_reassembles() {
        let (_, frames) = stream();
        // Without the long EVENT, to keep the quadratic loop quick.
        let frames: Vec<Vec<u8>> = frames.into_iter().filter(|f| f.len() < 100).collect();
        let bytes = frames.concat();
        let mut r = FrameReader::<{ 2 * MAX_FRAME_LEN }>::new();
        for i in 0..=bytes.len() {
            for j in i..=bytes.len() {
                r.reset();
                let mut out = Vec::new();
                feed(&mut r, &bytes[..i], &mut out);
                feed(&mut r, &bytes[i..j], &mut out);
                feed(&mut r, &bytes[j..], &mut out);
                assert_eq!(out, frames, "split at {i} and {j}");
            }
        }
    }

    #[test]
    fn stream_fed_one_byte_at_a_time_reassembles() {
        let (bytes, frames) = stream();
        let mut r = FrameReader::<MAX_FRAME_LEN>::new();
        let mut out = Vec::new();
        for b in &bytes {
            feed(&mut r, core::slice::from_ref(b), &mut out);
        }
        assert_eq!(out, frames);
    }

    #[test]
    fn zero_copy_fill_with_uneven_reads_reassembles() {
        let (bytes, frames) = stream();
        let mut r = FrameReader::<MAX_FRAME_LEN>::new();
        let mut out = Vec::new();
        let mut rest = &bytes[..];
        let mut step = 1usize;
        while !rest.is_empty() {
            // A "socket read" of up to `step` bytes straight into the reader.
            let spare = r.spare_mut();
            assert!(!spare.is_empty());
            let n = rest.len().min(spare.len()).min(step);
            spare[..n].copy_from_slice(&rest[..n]);
            r.commit(n);
            rest = &rest[n..];
            drain(&mut r, &mut out);
            step = step * 7 % 601 + 1;
        }
        assert_eq!(out, frames);
    }

    #[test]
    fn bad_length_is_reported_as_soon_as_its_two_bytes_arrive() {
        let mut r = FrameReader::<MAX_FRAME_LEN>::new();
        assert_eq!(r.push(&[0x04]), 1);
        assert_eq!(r.next_message(), None);
        assert_eq!(r.push(&[0x01]), 1);
        let err = Some(Err(ProtoError::LengthOutOfRange(1025)));
        assert_eq!(r.next_message(), err);
        // Sticky: the stream cannot be resynchronised.
        r.push(&[0, 5, 0x05, 0, 0, 0, 1]);
        assert_eq!(r.next_message(), err);
        assert_eq!(r.error(), Some(ProtoError::LengthOutOfRange(1025)));
        r.reset();
        r.push(&[0, 5, 0x05, 0, 0, 0, 1]);
        assert_eq!(r.next_message(), Some(Ok(Message::Ping(1))));
    }

    #[test]
    fn zero_length_after_a_good_frame_is_reported_after_it() {
        let mut r = FrameReader::<MAX_FRAME_LEN>::new();
        r.push(&[0, 5, 0x06, 0, 0, 0, 3, 0, 0]);
        assert_eq!(r.next_message(), Some(Ok(Message::Pong(3))));
        assert_eq!(r.next_message(), Some(Err(ProtoError::LengthOutOfRange(0))));
    }

    #[test]
    fn malformed_body_is_reported_once_and_its_frame_consumed() {
        let mut r = FrameReader::<MAX_FRAME_LEN>::new();
        r.push(&[0, 6, 0x05, 0, 0, 0, 1, 9]); // PING with a 5-byte body
        r.push(&[0, 2, 0x0b, 0]); // unknown type
        r.push(&[0, 2, 0x09, 4]);
        assert_eq!(r.next_message(), Some(Err(ProtoError::TrailingBytes(1))));
        assert_eq!(r.next_message(), Some(Err(ProtoError::UnknownType(0x0b))));
        assert_eq!(r.next_message(), Some(Ok(Message::Bye(4))));
        assert_eq!(r.next_message(), None);
        assert_eq!(r.error(), None);
    }

    #[test]
    fn next_packet_yields_the_raw_frame() {
        let mut r = FrameReader::<MAX_FRAME_LEN>::new();
        r.push(&[0, 2, 0x09, 4, 0, 2]);
        let p = r.next_packet().unwrap().unwrap();
        assert_eq!(p.as_ref(), &[0, 2, 0x09, 4]);
        assert_eq!(p.body(), &[4]);
        assert!(r.next_packet().is_none());
        assert_eq!(r.buffered(), 2);
    }

    #[test]
    fn spare_space_after_draining_leaves_room_for_a_whole_frame() {
        let mut r = FrameReader::<MAX_FRAME_LEN>::new();
        let mut frame = std::vec![0u8; MAX_FRAME_LEN];
        frame[..3].copy_from_slice(&[0x04, 0x00, 0x0a]);
        // Fill with one nearly complete largest frame: no frame ready yet.
        assert_eq!(r.push(&frame[..MAX_FRAME_LEN - 1]), MAX_FRAME_LEN - 1);
        assert!(r.next_packet().is_none());
        assert_eq!(r.spare_mut().len(), 1);
        assert_eq!(r.push(&frame[MAX_FRAME_LEN - 1..]), 1);
        assert_eq!(r.spare_mut().len(), 0);
        let p = r.next_packet().unwrap().unwrap();
        assert_eq!(p.frame_len(), MAX_FRAME_LEN);
        assert!(r.next_packet().is_none());
        assert_eq!(r.spare_mut().len(), MAX_FRAME_LEN);
    }

    #[test]
    fn commit_is_clamped_to_the_free_space() {
        let mut r = FrameReader::<MAX_FRAME_LEN>::new();
        r.commit(usize::MAX);
        assert_eq!(r.buffered(), MAX_FRAME_LEN);
        assert!(r.spare_mut().is_empty());
        assert_eq!(r.push(&[1]), 0);
    }
}
