//! What a peer on the channel can make the agent believe (DESIGN §5, §5a):
//! an ACK for an event never sent acknowledges nothing, and a plain
//! WELCOME's capabilities are not cached.

use bmclink_core::agent::events::OsEvent;
use bmclink_core::platform::Record;
use bmclink_core::proto::Message;
use bmclink_core::Config;
use bmclink_tests::{run_agent, BmcConfig, World};
use smoltcp::time::Instant;

fn frame(msg: &Message<'_>) -> Vec<u8> {
    let mut buf = [0u8; 64];
    let n = msg.emit(&mut buf).unwrap();
    buf[..n].to_vec()
}

fn plain_config() -> Config {
    Config {
        legacy_plain: true,
        ..Config::default()
    }
}

#[test]
fn an_ack_for_an_event_never_sent_is_a_protocol_error_and_drops_nothing() {
    let mut world = World::new(BmcConfig::legacy(), 1);
    world.bootstrap_up = false;
    for i in 0..6 {
        world
            .os_events
            .push_back(OsEvent::new(3, "OS1", &format!("event {i}")));
    }
    // Right after the first WELCOME, before any EVENT went out: ACK 6,
    // the sequence number the sixth queued event will carry.
    world.bmc.cfg.inject_after_welcome = Some(frame(&Message::Ack(6)));
    world.at(Instant::from_secs(12), |w| {
        w.bmc.cfg.inject_after_welcome = None
    });
    run_agent(&mut world, plain_config(), Instant::from_secs(60)).expect("agent");
    assert!(
        world.audit_ids().iter().any(|i| i == "BL2003"),
        "{:?}",
        world.audit_ids()
    );
    let mut texts: Vec<String> = world.bmc.state.events.iter().map(|e| e.2.clone()).collect();
    texts.sort();
    texts.dedup();
    let want: Vec<String> = (0..6).map(|i| format!("event {i}")).collect();
    assert_eq!(texts, want, "every event delivered after the bad ACK");
}

#[test]
fn caps_from_a_plain_welcome_are_not_cached() {
    // Anyone on the link can answer the plain port; its WELCOME saying "no
    // IPv6 on the USBNIC" must not switch the IPv6 fallback off for good.
    let mut world = World::new(
        BmcConfig {
            ipv6_usbnic: false,
            ..BmcConfig::legacy()
        },
        2,
    );
    world.bootstrap_up = false;
    run_agent(&mut world, plain_config(), Instant::from_secs(30)).expect("agent");
    assert!(
        world.audit_ids().iter().any(|i| i == "BL2001"),
        "a plain session: {:?}",
        world.audit_ids()
    );
    assert!(
        !world.store.records.contains_key(&Record::BmcCaps),
        "cached from a plain WELCOME"
    );
}

#[test]
fn caps_vouched_for_by_the_bootstrap_channel_are_cached() {
    let mut world = World::new(
        BmcConfig {
            ipv6_usbnic: false,
            ..BmcConfig::legacy()
        },
        3,
    );
    run_agent(&mut world, Config::default(), Instant::from_secs(30)).expect("agent");
    assert!(world.store.records.contains_key(&Record::BmcCaps));
}
