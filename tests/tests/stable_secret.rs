//! Issue 19: the per-install RFC 7217 secret (`stable.secret`) is never
//! replaced silently. A stored secret that is not 256 bits (RFC 7217 §5
//! asks for at least 128; ours is 256) or cannot be read is audited
//! (BL5003, BL5001) and keeps IPv6 off, as a corrupt link record keeps IPv4
//! off (BL5002): a new secret would move the host's stable IPv6 address.
//! An absent secret is made once and kept; a good one is used as stored.

use bmclink_core::platform::Record;
use bmclink_core::Family;
use bmclink_tests::scenarios::{config, plain_bmc, run_world, Outcome};
use bmclink_tests::{BmcConfig, World};

/// A BMC reachable over IPv6 only, so a working IPv6 is the only session.
fn ipv6_only_world(seed: u64) -> World {
    World::new(
        BmcConfig {
            ipv4: None,
            ..plain_bmc()
        },
        seed,
    )
}

fn count(o: &Outcome, id: &str) -> usize {
    o.ids().iter().filter(|i| *i == id).count()
}

fn run_with_secret(seed: u64, secret: Option<Vec<u8>>, failing: bool) -> Outcome {
    let mut world = ipv6_only_world(seed);
    if let Some(s) = secret {
        world.store.records.insert(Record::StableSecret, s);
    }
    if failing {
        world.store.failing.push(Record::StableSecret);
    }
    run_world(world, config(), 40)
}

#[test]
fn a_secret_of_the_wrong_length_is_audited_kept_and_ipv6_stays_off() {
    // Short (16 bytes), one byte long (33: larger than the agent's buffer),
    // and empty.
    for (seed, bad) in [(51u64, vec![0x5a; 16]), (52, vec![0xa5; 33]), (53, vec![])] {
        let len = bad.len();
        let o = run_with_secret(seed, Some(bad.clone()), false);
        assert_eq!(count(&o, "BL5003"), 1, "{len} bytes: {:?}", o.ids());
        let text = o
            .world
            .audit
            .iter()
            .find(|(_, e)| e.id().to_string() == "BL5003")
            .map(|(_, e)| e.to_string())
            .unwrap_or_default();
        assert!(
            text.contains("stable.secret")
                && text.contains("IPv6 stays off")
                && text.contains("remove the file"),
            "{len} bytes: {text}"
        );
        assert_eq!(
            o.world.store.records.get(&Record::StableSecret),
            Some(&bad),
            "{len} bytes: the record was replaced"
        );
        assert_eq!(o.agent_ipv6_frames(), 0, "{len} bytes: IPv6 was used");
        assert!(o.families().is_empty(), "{len} bytes: {:?}", o.families());
    }
}

#[test]
fn an_unreadable_secret_is_audited_and_ipv6_stays_off() {
    let o = run_with_secret(54, Some(vec![7; 32]), true);
    assert!(o.has("BL5001"), "{:?}", o.ids());
    assert!(!o.has("BL5003"), "{:?}", o.ids());
    assert_eq!(o.agent_ipv6_frames(), 0);
    assert!(o.families().is_empty(), "{:?}", o.families());
}

#[test]
fn a_good_secret_is_used_as_stored_and_a_missing_one_is_made_once() {
    let stored = vec![0x3c; 32];
    let o = run_with_secret(55, Some(stored.clone()), false);
    assert!(!o.has("BL5003") && !o.has("BL5001"), "{:?}", o.ids());
    assert_eq!(o.families().first(), Some(&Family::V6));
    assert_eq!(
        o.world.store.records.get(&Record::StableSecret),
        Some(&stored)
    );

    let first = run_with_secret(56, None, false);
    assert_eq!(first.families().first(), Some(&Family::V6));
    let made = first
        .world
        .store
        .records
        .get(&Record::StableSecret)
        .cloned()
        .expect("a secret was made");
    assert_eq!(made.len(), 32);
    let addr = first.world.statuses.iter().find_map(|s| s.host_ipv6);
    // The next start reads it back: same secret, same stable address.
    let mut world = ipv6_only_world(57);
    world.store = first.world.store.clone();
    let second = run_world(world, config(), 40);
    assert!(!second.has("BL5003"), "{:?}", second.ids());
    assert_eq!(
        second.world.store.records.get(&Record::StableSecret),
        Some(&made)
    );
    assert_eq!(second.world.statuses.iter().find_map(|s| s.host_ipv6), addr);
    assert!(addr.is_some());
}
