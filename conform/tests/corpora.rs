//! Replays the `conform_replies` fuzz corpus, and the `proto` target's
//! corpus cut a byte at a time and whole, through the rig's reply parser
//! ([`bmclink_conform::fuzzing::replies`]); and pins what a known stream
//! parses to.

use std::path::PathBuf;

use bmclink_conform::conn::{Got, Replies, Reply};
use bmclink_core::proto::RejectCode;

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let p = e.unwrap().path();
            (p.display().to_string(), std::fs::read(&p).unwrap())
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "empty corpus {}", dir.display());
    out
}

#[test]
fn conform_replies_corpus() {
    for (name, data) in corpus("conform_replies") {
        eprintln!("{name}");
        bmclink_conform::fuzzing::replies(&data);
    }
}

#[test]
fn proto_corpus_as_replies() {
    for (name, data) in corpus("proto") {
        for split in [1u8, 2, 7, 255] {
            eprintln!("{name} in chunks of {split}");
            let mut input = vec![split];
            input.extend_from_slice(&data);
            bmclink_conform::fuzzing::replies(&input);
        }
    }
}

#[test]
fn a_session_stream_parses_to_its_replies_then_stops_at_a_bad_length() {
    let mut stream = vec![0, 33, 0x0a];
    stream.extend(0..32u8);
    stream.extend([0, 11, 0x02, 1, 3, 30, 30, 30, 0x07, 0, 0, 0, 1]);
    stream.extend([0, 5, 0x08, 0, 0, 0, 3]);
    stream.extend([0, 5, 0x03, 4, 2, b'n', b'o']);
    stream.extend([0x04, 0x01, 0x05]);
    stream.extend([0, 5, 0x06, 0, 0, 0, 7]);
    for chunk in [1, 4, stream.len()] {
        let mut r = Replies::default();
        let mut got = Vec::new();
        for c in stream.chunks(chunk) {
            r.feed_all(c, &mut got);
        }
        let mut proof = [0u8; 32];
        proof.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
        assert_eq!(got.len(), 5, "{got:?}");
        assert_eq!(got[0], Got::Msg(Reply::Enrolled(proof)));
        assert!(matches!(
            got[1],
            Got::Msg(Reply::Welcome {
                session: 1,
                firmware: [3, 30, 30, 30],
                ..
            })
        ));
        assert_eq!(got[2], Got::Msg(Reply::Ack(3)));
        assert_eq!(
            got[3],
            Got::Msg(Reply::Reject {
                code: RejectCode::BadCredential,
                reason: "no".into()
            })
        );
        assert!(
            matches!(&got[4], Got::Malformed(e) if e.contains("1025")),
            "{got:?}"
        );
    }
}
