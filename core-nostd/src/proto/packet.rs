//! The frame view: a zero-copy [`Packet`] over one whole frame.

use core::fmt;

use super::{ProtoError, MAX_LEN, MIN_LEN};

/// The type byte of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MessageType {
    /// 0x01, agent to BMC: opens a session.
    Hello,
    /// 0x02, BMC to agent: accepts a session or an enrollment.
    Welcome,
    /// 0x03, BMC to agent: refuses a session or an enrollment.
    Reject,
    /// 0x04, agent to BMC: binds the agent's certificate (inside TLS only).
    Enroll,
    /// 0x05, either way: heartbeat request.
    Ping,
    /// 0x06, either way: heartbeat answer.
    Pong,
    /// 0x07, agent to BMC: an OS event for the BMC's log.
    Event,
    /// 0x08, BMC to agent: an EVENT was stored.
    Ack,
    /// 0x09, either way: orderly end of the session.
    Bye,
    /// 0x0A, BMC to agent: the BMC's proof that it checked ENROLL (§5a).
    Enrolled,
    /// Any other value; parsing such a frame is [`ProtoError::UnknownType`].
    Unknown(u8),
}

impl MessageType {
    /// Whether the agent may send this type (HELLO, ENROLL, PING, PONG,
    /// EVENT, BYE). A BMC receiving any other type reports
    /// [`ProtoError::Unexpected`].
    pub const fn sent_by_agent(self) -> bool {
        matches!(
            self,
            MessageType::Hello
                | MessageType::Enroll
                | MessageType::Ping
                | MessageType::Pong
                | MessageType::Event
                | MessageType::Bye
        )
    }

    /// Whether the BMC may send this type (WELCOME, REJECT, ENROLLED, PING,
    /// PONG, ACK, BYE). An agent receiving any other type reports
    /// [`ProtoError::Unexpected`].
    pub const fn sent_by_bmc(self) -> bool {
        matches!(
            self,
            MessageType::Welcome
                | MessageType::Reject
                | MessageType::Enrolled
                | MessageType::Ping
                | MessageType::Pong
                | MessageType::Ack
                | MessageType::Bye
        )
    }
}

impl From<u8> for MessageType {
    fn from(value: u8) -> Self {
        match value {
            0x01 => MessageType::Hello,
            0x02 => MessageType::Welcome,
            0x03 => MessageType::Reject,
            0x04 => MessageType::Enroll,
            0x05 => MessageType::Ping,
            0x06 => MessageType::Pong,
            0x07 => MessageType::Event,
            0x08 => MessageType::Ack,
            0x09 => MessageType::Bye,
            0x0a => MessageType::Enrolled,
            other => MessageType::Unknown(other),
        }
    }
}

impl From<MessageType> for u8 {
    fn from(value: MessageType) -> Self {
        match value {
            MessageType::Hello => 0x01,
            MessageType::Welcome => 0x02,
            MessageType::Reject => 0x03,
            MessageType::Enroll => 0x04,
            MessageType::Ping => 0x05,
            MessageType::Pong => 0x06,
            MessageType::Event => 0x07,
            MessageType::Ack => 0x08,
            MessageType::Bye => 0x09,
            MessageType::Enrolled => 0x0a,
            MessageType::Unknown(other) => other,
        }
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageType::Hello => f.write_str("HELLO"),
            MessageType::Welcome => f.write_str("WELCOME"),
            MessageType::Reject => f.write_str("REJECT"),
            MessageType::Enroll => f.write_str("ENROLL"),
            MessageType::Ping => f.write_str("PING"),
            MessageType::Pong => f.write_str("PONG"),
            MessageType::Event => f.write_str("EVENT"),
            MessageType::Ack => f.write_str("ACK"),
            MessageType::Bye => f.write_str("BYE"),
            MessageType::Enrolled => f.write_str("ENROLLED"),
            MessageType::Unknown(t) => write!(f, "type 0x{t:02x}"),
        }
    }
}

mod field {
    #![allow(non_snake_case)]

    pub type Field = core::ops::Range<usize>;

    /// The length prefix: counts the type byte and the body.
    pub const LEN: Field = 0..2;
    /// The type byte.
    pub const TYPE: usize = 2;

    /// Where the body starts: after the type byte.
    const BODY_START: usize = TYPE + 1;

    /// The body, given the length field.
    pub const fn BODY(len: u16) -> Field {
        BODY_START..LEN.end.saturating_add(len as usize)
    }
}

/// The whole frame size for a length field, or why that field is invalid.
///
/// This is all a stream reader needs once the two prefix bytes have
/// arrived: a bad length is known at once, before any body byte.
pub fn frame_len(len_field: u16) -> Result<usize, ProtoError> {
    if (MIN_LEN..=MAX_LEN).contains(&len_field) {
        Ok(field::LEN.end + usize::from(len_field))
    } else {
        Err(ProtoError::LengthOutOfRange(len_field))
    }
}

/// A read/write view over one whole channel frame, length prefix included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Imbues a buffer with frame structure without checking it. Until
    /// [`check_len`](Self::check_len) has succeeded, accessors read zero or
    /// an empty body where the buffer is too short, and setters write
    /// nothing there (they never panic).
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// [`new_unchecked`](Self::new_unchecked) followed by
    /// [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Packet<T>, ProtoError> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Ensures every accessor sees the whole frame: the buffer holds a length prefix, the
    /// length is in `1..=1024`, and the buffer is exactly that frame long.
    ///
    /// A bad length field is reported before a short buffer, so two bytes
    /// are enough to reject a garbage stream. The check is invalidated by
    /// [`set_len`](Self::set_len).
    pub fn check_len(&self) -> Result<(), ProtoError> {
        let data = self.buffer.as_ref();
        let prefix = data.first_chunk::<2>().ok_or(ProtoError::Truncated)?;
        let need = frame_len(u16::from_be_bytes(*prefix))?;
        match data.len().checked_sub(need) {
            None => Err(ProtoError::Truncated),
            Some(0) => Ok(()),
            Some(extra) => Err(ProtoError::TrailingBytes(extra)),
        }
    }

    /// Consumes the view, returning the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The length field: the type byte plus the body, in bytes.
    #[allow(clippy::len_without_is_empty)] // a valid frame is never empty
    pub fn len(&self) -> u16 {
        self.buffer
            .as_ref()
            .first_chunk::<2>()
            .map_or(0, |prefix| u16::from_be_bytes(*prefix))
    }

    /// The whole frame in bytes: the length prefix plus [`len`](Self::len).
    pub fn frame_len(&self) -> usize {
        field::LEN.end + usize::from(self.len())
    }

    /// The type byte.
    pub fn msg_type(&self) -> MessageType {
        MessageType::from(self.buffer.as_ref().get(field::TYPE).copied().unwrap_or(0))
    }

    /// The body length in bytes.
    pub fn body_len(&self) -> usize {
        field::BODY(self.len()).len()
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// The body, borrowed for as long as the underlying buffer.
    pub fn body(&self) -> &'a [u8] {
        let data = self.buffer.as_ref();
        data.get(field::BODY(self.len())).unwrap_or_default()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the length field (type byte plus body).
    pub fn set_len(&mut self, value: u16) {
        if let Some(prefix) = self.buffer.as_mut().first_chunk_mut::<2>() {
            *prefix = value.to_be_bytes();
        }
    }

    /// Sets the type byte.
    pub fn set_msg_type(&mut self, value: MessageType) {
        if let Some(slot) = self.buffer.as_mut().get_mut(field::TYPE) {
            *slot = value.into();
        }
    }

    /// The body, mutably.
    pub fn body_mut(&mut self) -> &mut [u8] {
        let range = field::BODY(self.len());
        self.buffer.as_mut().get_mut(range).unwrap_or_default()
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static PING_7: [u8; 7] = [0x00, 0x05, 0x05, 0x00, 0x00, 0x00, 0x07];

    #[test]
    fn accessors_read_a_checked_frame() {
        let p = Packet::new_checked(&PING_7[..]).unwrap();
        assert_eq!(p.len(), 5);
        assert_eq!(p.frame_len(), 7);
        assert_eq!(p.msg_type(), MessageType::Ping);
        assert_eq!(p.body_len(), 4);
        assert_eq!(p.body(), &[0, 0, 0, 7]);
    }

    #[test]
    fn setters_build_a_frame_that_checks() {
        let mut buf = [0u8; 4];
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_len(2);
        p.set_msg_type(MessageType::Bye);
        p.body_mut().copy_from_slice(&[3]);
        assert_eq!(buf, [0, 2, 9, 3]);
        assert!(Packet::new_checked(&buf[..]).is_ok());
    }

    #[test]
    fn check_len_rejects_lengths_zero_and_above_1024() {
        let zero = [0x00, 0x00, 0x05];
        assert_eq!(
            Packet::new_checked(&zero[..]).err(),
            Some(ProtoError::LengthOutOfRange(0))
        );
        // Reported from the prefix alone, before any body byte arrives.
        let big = [0x04, 0x01];
        assert_eq!(
            Packet::new_checked(&big[..]).err(),
            Some(ProtoError::LengthOutOfRange(1025))
        );
        let max = [0xff, 0xff];
        assert_eq!(
            Packet::new_checked(&max[..]).err(),
            Some(ProtoError::LengthOutOfRange(0xffff))
        );
    }

    #[test]
    fn check_len_accepts_the_largest_frame() {
        let mut buf = [0u8; super::super::MAX_FRAME_LEN];
        buf[..3].copy_from_slice(&[0x04, 0x00, 0x07]);
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.body_len(), super::super::MAX_BODY_LEN);
    }

    #[test]
    fn check_len_rejects_short_and_long_buffers() {
        assert_eq!(
            Packet::new_checked(&[][..]).err(),
            Some(ProtoError::Truncated)
        );
        assert_eq!(
            Packet::new_checked(&[0x00][..]).err(),
            Some(ProtoError::Truncated)
        );
        assert_eq!(
            Packet::new_checked(&PING_7[..6]).err(),
            Some(ProtoError::Truncated)
        );
        let mut long = [0u8; 9];
        long[..7].copy_from_slice(&PING_7);
        assert_eq!(
            Packet::new_checked(&long[..]).err(),
            Some(ProtoError::TrailingBytes(2))
        );
    }

    #[test]
    fn direction_follows_the_design_table() {
        let agent: [u8; 6] = [0x01, 0x04, 0x05, 0x06, 0x07, 0x09];
        let bmc: [u8; 7] = [0x02, 0x03, 0x05, 0x06, 0x08, 0x09, 0x0a];
        for b in 0..=255u8 {
            let t = MessageType::from(b);
            assert_eq!(t.sent_by_agent(), agent.contains(&b), "{t}");
            assert_eq!(t.sent_by_bmc(), bmc.contains(&b), "{t}");
        }
    }

    #[test]
    fn message_type_round_trips_every_byte() {
        for b in 0..=255u8 {
            let t = MessageType::from(b);
            assert_eq!(u8::from(t), b);
            assert_eq!(matches!(t, MessageType::Unknown(_)), !(1..=10).contains(&b));
        }
    }
}
