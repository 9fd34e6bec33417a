//! The bodies of the fuzz targets in `fuzz/`, here so that `cargo test`
//! replays every corpus on the stable toolchain (tests/tests/corpora.rs) and
//! a crash found once stays fixed.

use bmclink_core::proto::{FrameReader, Message, Packet, MAX_FRAME_LEN};

/// `proto`: the first byte picks a split point; the rest is a byte stream fed
/// to a [`FrameReader`] in two parts, and also parsed as one frame. Anything
/// that parses must re-emit to exactly the bytes it came from.
pub fn proto(data: &[u8]) {
    let Some((&split, stream)) = data.split_first() else {
        return;
    };
    if let Ok(packet) = Packet::new_checked(stream) {
        if let Ok(msg) = Message::parse(&packet) {
            assert_reemits(&msg, &stream[..packet.frame_len()]);
        }
    }
    let mut reader: FrameReader<{ 2 * MAX_FRAME_LEN }> = FrameReader::new();
    let cut = usize::from(split).min(stream.len());
    let mut parts = [&stream[..cut], &stream[cut..]];
    for part in parts.iter_mut() {
        while !part.is_empty() {
            let n = reader.push(part);
            *part = &part[n..];
            loop {
                match reader.next_message() {
                    Some(Ok(msg)) => {
                        let mut buf = [0u8; MAX_FRAME_LEN];
                        let len = msg.emit(&mut buf).expect("a parsed message re-emits");
                        let again = Message::parse_frame(&buf[..len]).expect("re-emitted parses");
                        assert_eq!(again, msg);
                    }
                    Some(Err(_)) => return,
                    None => break,
                }
            }
            if n == 0 {
                return;
            }
        }
    }
}

fn assert_reemits(msg: &Message<'_>, frame: &[u8]) {
    let mut buf = [0u8; MAX_FRAME_LEN];
    let len = msg.emit(&mut buf).expect("a parsed message re-emits");
    assert_eq!(&buf[..len], frame, "re-emitted bytes differ for {msg:?}");
}
