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
            self.end -= self.start;
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
