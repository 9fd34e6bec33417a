//! The README's audit table and the journal catalog are generated from the
//! code; this keeps them equal.

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

#[test]
fn the_journal_catalog_matches_the_code() {
    let path = format!(
        "{}/../{}",
        env!("CARGO_MANIFEST_DIR"),
        bmclink_tests::CATALOG_PATH
    );
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == bmclink_tests::catalog(),
        "{path} is stale or missing: run `cargo xtask audit-table --write`"
    );
}

#[test]
fn the_catalog_has_one_entry_per_audit_id_in_systemds_format() {
    let catalog = bmclink_tests::catalog();
    let ids: Vec<_> = bmclink_core::audit::TABLE
        .iter()
        .flat_map(|l| l.iter())
        .collect();
    let entries: Vec<&str> = catalog.split("\n-- ").skip(1).collect();
    assert_eq!(entries.len(), ids.len());
    for (entry, row) in entries.iter().zip(&ids) {
        let mut lines = entry.lines();
        let id = lines.next().unwrap();
        // A 128-bit id in 32 lower-case hex digits (sd_id128 form).
        assert_eq!(id.len(), 32, "{id}");
        assert!(id
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_eq!(id, bmclink_tests::message_id_hex(row.id));
        let headers: Vec<&str> = lines.by_ref().take_while(|l| !l.is_empty()).collect();
        assert!(
            headers[0].starts_with(&format!("Subject: {} ", row.id)),
            "{headers:?}"
        );
        assert!(headers.contains(&"Defined-By: bmclink"));
        assert!(headers.iter().any(|h| h.starts_with("Documentation: ")));
        let body: String = lines.collect::<Vec<_>>().join(" ");
        // The body is the table's meaning and fix, and names each field.
        let first_words: String = row
            .summary
            .split_whitespace()
            .skip(1)
            .take(4)
            .collect::<Vec<_>>()
            .join(" ");
        assert!(body.contains(&first_words), "{}: {body}", row.id);
        for f in row.fields {
            let name = format!("BMCLINK_{}", f.to_ascii_uppercase());
            assert!(
                body.contains(&format!("{name}=@{name}@")),
                "{}: {body}",
                row.id
            );
        }
        assert!(!body.lines().any(|l| l.starts_with("-- ")));
    }
}
