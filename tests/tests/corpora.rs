//! Replays every fuzz corpus (fuzz/corpus/<target>/) through the target's
//! body on the stable toolchain, so inputs that once crashed stay fixed.

use std::path::Path;

fn replay(target: &str, body: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("corpus entry").path();
        let data = std::fs::read(&path).expect("corpus file readable");
        body(&data);
        n += 1;
    }
    assert!(n > 0, "corpus {} is empty", dir.display());
    println!("{target}: replayed {n} inputs");
}

#[test]
fn proto_corpus_replays_without_failures() {
    replay("proto", bmclink_tests::fuzzing::proto);
}
