//! The README's audit table is generated from the code; this keeps them equal.

#[test]
fn readme_audit_table_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
    let readme = std::fs::read_to_string(path).expect("README.md readable");
    let fresh = bmclink_tests::readme_with_audit_table(&readme)
        .expect("README has the audit-table markers");
    assert!(
        readme == fresh,
        "README.md's audit table is stale: run `cargo xtask audit-table --write`"
    );
}
