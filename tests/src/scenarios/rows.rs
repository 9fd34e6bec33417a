//! The rows: each scenario's world and its check (DESIGN §4).

use bmclink_core::platform::{HostFacts, Record};
use bmclink_core::policy::Features;
use bmclink_core::records::LinkRecord;
use bmclink_core::{Config, Family};
use smoltcp::time::Instant;
use smoltcp::wire::Ipv4Address;

use super::{config, plain_bmc, run_world, Outcome, ETHERTYPE_ARP, ETHERTYPE_IPV6};
use crate::bmc::BmcConfig;
use crate::rogue::{ClaimBound, RogueConfig};
use crate::world::World;

/// `Ok` when `cond` holds, else the error `what` says.
pub(super) fn ensure(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(what())
    }
}

pub(super) fn preferred() -> Ipv4Address {
    Ipv4Address::new(169, 254, 1, 2)
}

pub(super) fn with_record(world: &mut World, ipv4: Ipv4Address) {
    world
        .store
        .records
        .insert(Record::Link, LinkRecord { ipv4 }.encode().to_vec());
}

fn bmc_without_ipv4() -> BmcConfig {
    BmcConfig {
        ipv4: None,
        ..plain_bmc()
    }
}

// ---- P1 ---------------------------------------------------------------

pub(super) fn p1_run() -> Outcome {
    run_world(World::new(plain_bmc(), 1), config(), 20)
}

pub(super) fn p1_check(o: &Outcome) -> Result<(), String> {
    ensure(o.families() == [Family::V4], || {
        format!("one IPv4 session, got {:?}", o.families())
    })?;
    ensure(o.agent_ipv6_frames() == 0, || {
        format!(
            "IPv4 worked: no IPv6 frame expected, got {}",
            o.agent_ipv6_frames()
        )
    })?;
    ensure(!o.agent_ipv4_syns().is_empty(), || "no IPv4 SYN".into())
}

// ---- P2 ---------------------------------------------------------------

pub(super) fn p2_check(o: &Outcome) -> Result<(), String> {
    let probes = o.agent_probes();
    ensure(
        probes.len() == 3 && probes.iter().all(|(_, a)| *a == preferred()),
        || format!("3 probes for {} expected, got {probes:?}", preferred()),
    )?;
    ensure(o.has("BL1001") && o.has("BL3003"), || {
        format!("BL1001 and BL3003 expected: {:?}", o.ids())
    })?;
    let record = o.world.store.records.get(&Record::Link);
    ensure(
        record.and_then(|r| LinkRecord::decode(r).ok()) == Some(LinkRecord { ipv4: preferred() }),
        || format!("link record for {} expected, got {record:?}", preferred()),
    )?;
    ensure(
        o.ids().iter().filter(|i| *i == "BL3003").count() == 1,
        || "configured more than once".into(),
    )?;
    ensure(o.families() == [Family::V4], || {
        format!("IPv4 session expected, got {:?}", o.families())
    })
}

// ---- P3 ---------------------------------------------------------------

pub(super) fn p3_record_run() -> Outcome {
    let mut world = World::new(plain_bmc(), 3);
    with_record(&mut world, preferred());
    run_world(world, config(), 15)
}

pub(super) fn p3_record_check(o: &Outcome) -> Result<(), String> {
    // The recorded address is checked with ACD before use (RFC 5227 §2.1
    // MUST), but no new address is ever claimed or recorded.
    ensure(
        o.agent_probes().iter().all(|(_, a)| *a == preferred()),
        || {
            format!(
                "a link record exists: no claim of another address: {:?}",
                o.agent_probes()
            )
        },
    )?;
    ensure(!o.has("BL3003"), || "configured IPv4 a second time".into())?;
    let record = o.world.store.records.get(&Record::Link).cloned();
    ensure(
        record == Some(LinkRecord { ipv4: preferred() }.encode().to_vec()),
        || format!("link record rewritten: {record:?}"),
    )?;
    ensure(o.families() == [Family::V4], || {
        format!("IPv4 session expected, got {:?}", o.families())
    })?;
    let syns = o.agent_ipv4_syns();
    ensure(syns.first().map(|(_, a)| *a) == Some(preferred()), || {
        format!("SYN from the recorded address expected: {syns:?}")
    })
}

/// When the host OS removes its IPv4 configuration of the USBNIC.
const HOST_IPV4_REMOVED: i64 = 20;

pub(super) fn p3_incomplete_run() -> Outcome {
    // "Incomplete configuration" (P3, revised): the host OS's own IPv4 on
    // the USBNIC is removed by someone else after bmclink configured it once.
    let mut world = World::new(plain_bmc(), 3);
    with_record(&mut world, preferred());
    world.host.ipv4_present = true;
    world.at(Instant::from_secs(HOST_IPV4_REMOVED), |w| {
        w.host.ipv4_present = false;
    });
    run_world(world, config(), 60)
}

pub(super) fn p3_incomplete_check(o: &Outcome) -> Result<(), String> {
    let removed = Instant::from_secs(HOST_IPV4_REMOVED);
    let blocked = o.first_at("BL3002").ok_or_else(|| {
        format!(
            "BL3002 (stay disconnected, fix named) expected: {:?}",
            o.ids()
        )
    })?;
    ensure(blocked >= removed, || format!("BL3002 at {blocked}"))?;
    let text = o
        .world
        .audit
        .iter()
        .find(|(_, e)| e.id().to_string() == "BL3002")
        .map(|(_, e)| e.to_string())
        .unwrap_or_default();
    ensure(
        text.contains("vanished") && text.contains("`bmclink link reset`"),
        || format!("BL3002 names the cause and the fix: {text}"),
    )?;
    ensure(
        o.agent_probes().iter().all(|(_, a)| *a == preferred()),
        || format!("never a claim of another address: {:?}", o.agent_probes()),
    )?;
    ensure(!o.has("BL3003"), || "reconfigured IPv4".into())?;
    ensure(o.families().first() == Some(&Family::V4), || {
        format!("IPv4 session before the removal, got {:?}", o.families())
    })?;
    let v4_after: Vec<_> = o
        .agent_ipv4_attempts()
        .into_iter()
        .filter(|at| *at > blocked)
        .collect();
    ensure(v4_after.is_empty(), || {
        format!("no IPv4 connection attempt after BL3002: {v4_after:?}")
    })?;
    // P4 still applies: IPv6 is tried and the session comes back over it.
    ensure(
        o.sessions()
            .iter()
            .any(|(at, f)| *at > blocked && *f == Family::V6),
        || format!("IPv6 session after BL3002: {:?}", o.sessions()),
    )
}

// ---- P4 / P10 ---------------------------------------------------------

pub(super) fn p4_run() -> Outcome {
    run_world(World::new(bmc_without_ipv4(), 4), config(), 30)
}

pub(super) fn p4_check(o: &Outcome) -> Result<(), String> {
    ensure(o.has("BL3004"), || {
        format!("BL3004 expected: {:?}", o.ids())
    })?;
    ensure(!o.agent_ipv4_attempts().is_empty(), || {
        "IPv4 was not tried first".into()
    })?;
    ensure(o.families().first() == Some(&Family::V6), || {
        format!("IPv6 session expected, got {:?}", o.families())
    })?;
    let v4_first = o.agent_ipv4_attempts()[0];
    let v6_session = o.sessions()[0].0;
    ensure(v4_first < v6_session, || "IPv6 before IPv4".into())?;
    // P10: the agent claimed its IPv4 address, but the session runs over
    // IPv6, so it offers monitoring only, and says so.
    ensure(!o.agent_announces().is_empty(), || {
        "the IPv4 address was not claimed".into()
    })?;
    ensure(o.session_features() == Some(Features::MONITORING), || {
        format!(
            "IPv6 session: monitoring only, got {:?}",
            o.session_features()
        )
    })?;
    ensure(o.has("BL3012"), || {
        format!("BL3012 expected: {:?}", o.ids())
    })
}

pub(super) fn p10_run() -> Outcome {
    // IPv4 failing on the USBNIC: every address probed is taken, so no IPv4
    // is bound and the IPv6 session is IPv6-only.
    let mut world = World::new(bmc_without_ipv4(), 10);
    world.add_rogue(RogueConfig {
        owns_every_probed_ipv4: true,
        ..RogueConfig::default()
    });
    run_world(world, config(), 40)
}

pub(super) fn p10_check(o: &Outcome) -> Result<(), String> {
    ensure(!o.agent_probes().is_empty(), || {
        "IPv4 not tried first".into()
    })?;
    ensure(o.agent_announces().is_empty(), || {
        format!("no IPv4 address bound expected: {:?}", o.agent_announces())
    })?;
    ensure(o.families().first() == Some(&Family::V6), || {
        format!("IPv6 session expected, got {:?}", o.families())
    })?;
    ensure(o.session_features() == Some(Features::MONITORING), || {
        format!(
            "IPv6-only session: monitoring only, got {:?}",
            o.session_features()
        )
    })?;
    ensure(o.has("BL3012"), || {
        format!("BL3012 expected: {:?}", o.ids())
    })
}

// ---- P5 ---------------------------------------------------------------

pub(super) fn p5_run() -> Outcome {
    let mut world = World::new(bmc_without_ipv4(), 5);
    world.host = HostFacts {
        ipv4_present: false,
        ipv6_present: false,
        ipv6_enabled: false,
    };
    run_world(world, config(), 60)
}

pub(super) fn no_ipv6_and_ipv4_retried(o: &Outcome) -> Result<(), String> {
    ensure(o.agent_ipv6_frames() == 0, || {
        format!("no IPv6 frame expected, got {}", o.agent_ipv6_frames())
    })?;
    ensure(o.sessions().is_empty(), || "no session possible".into())?;
    ensure(o.agent_ipv4_attempts().len() >= 3, || {
        format!("IPv4 retried: {:?}", o.agent_ipv4_attempts())
    })?;
    ensure(o.has("BL3009"), || {
        format!("BL3009 expected: {:?}", o.ids())
    })
}

pub(super) fn p5_check(o: &Outcome) -> Result<(), String> {
    no_ipv6_and_ipv4_retried(o)?;
    ensure(
        o.ids().iter().filter(|i| *i == "BL3005").count() == 1,
        || format!("BL3005 once expected: {:?}", o.ids()),
    )
}

// ---- P6 ---------------------------------------------------------------

pub(super) fn p6_v6_off_run() -> Outcome {
    let cfg = Config {
        ipv6: false,
        ..config()
    };
    run_world(World::new(bmc_without_ipv4(), 6), cfg, 60)
}

pub(super) fn p6_v4_off_run() -> Outcome {
    let cfg = Config {
        ipv4: false,
        ..config()
    };
    run_world(World::new(plain_bmc(), 6), cfg, 20)
}

pub(super) fn p6_v4_off_check(o: &Outcome) -> Result<(), String> {
    let arp = o
        .agent_frames()
        .iter()
        .filter(|c| c.ethertype() == Some(ETHERTYPE_ARP))
        .count();
    let v4 = o
        .agent_frames()
        .iter()
        .filter(|c| c.ethertype() == Some(0x0800))
        .count();
    ensure(arp == 0 && v4 == 0, || {
        format!("IPv4 disabled: no ARP ({arp}) and no IPv4 ({v4}) frame expected")
    })?;
    ensure(o.families() == [Family::V6], || {
        format!("IPv6 session expected, got {:?}", o.families())
    })
}

pub(super) fn p6_both_off_run() -> Outcome {
    let cfg = Config {
        ipv4: false,
        ipv6: false,
        ..config()
    };
    run_world(World::new(plain_bmc(), 6), cfg, 10)
}

pub(super) fn p6_both_off_check(o: &Outcome) -> Result<(), String> {
    ensure(o.agent_frames().is_empty(), || {
        format!("no frame at all expected, got {}", o.agent_frames().len())
    })?;
    ensure(o.has("BL3001"), || {
        format!("BL3001 expected: {:?}", o.ids())
    })
}

// ---- P7 ---------------------------------------------------------------

pub(super) fn p7_run() -> Outcome {
    let bmc = BmcConfig {
        ipv6_usbnic: false,
        ipv6: None,
        ..plain_bmc()
    };
    let first = run_world(World::new(bmc.clone(), 7), config(), 15);
    // Second start with the same store; the BMC's IPv4 is gone now.
    let mut world = World::new(BmcConfig { ipv4: None, ..bmc }, 8);
    world.store = first.world.store.clone();
    let mut second = run_world(world, config(), 40);
    second.first = Some(Box::new(first));
    second
}

pub(super) fn p7_check(o: &Outcome) -> Result<(), String> {
    let first = o.first.as_ref().ok_or("no first run")?;
    ensure(first.families() == [Family::V4], || {
        format!(
            "first run: IPv4 session expected, got {:?}",
            first.families()
        )
    })?;
    ensure(first.has("BL3006"), || {
        format!("first run: BL3006 expected: {:?}", first.ids())
    })?;
    ensure(
        first.world.store.records.contains_key(&Record::BmcCaps),
        || "caps not cached".into(),
    )?;
    ensure(o.agent_ipv6_frames() == 0, || {
        format!(
            "second run: IPv6 never tried, got {} IPv6 frames",
            o.agent_ipv6_frames()
        )
    })?;
    ensure(!o.agent_ipv4_attempts().is_empty(), || {
        "second run: IPv4 not tried".into()
    })
}

// ---- P8 ---------------------------------------------------------------

pub(super) fn p8_run() -> Outcome {
    let mut world = World::new(plain_bmc(), 8);
    world.at(Instant::from_secs(75), |w| {
        let now = w.clock.now();
        w.bmc.reboot(now);
    });
    run_world(world, config(), 100)
}

pub(super) fn p8_check(o: &Outcome) -> Result<(), String> {
    let starts = o.ids().iter().filter(|i| *i == "BL2001").count();
    ensure(starts == 2, || {
        format!("two session starts expected: {:?}", o.ids())
    })?;
    ensure(starts as u32 == o.world.bmc.state.session, || {
        format!(
            "one BL2001 per session: {starts} vs {} WELCOMEs",
            o.world.bmc.state.session
        )
    })?;
    let texts: Vec<String> = o
        .world
        .audit
        .iter()
        .filter(|(_, e)| e.id().to_string() == "BL2001")
        .map(|(_, e)| e.to_string())
        .collect();
    ensure(
        texts
            .iter()
            .all(|t| t.contains("IPv4") && t.contains("plain")),
        || format!("family and channel named: {texts:?}"),
    )
}

// ---- P9 ---------------------------------------------------------------

pub(super) fn p9_run() -> Outcome {
    let mut world = World::new(plain_bmc(), 9);
    world.host = HostFacts {
        ipv4_present: false,
        ipv6_present: true,
        ipv6_enabled: true,
    };
    run_world(world, config(), 20)
}

// ---- B2 ---------------------------------------------------------------

pub(super) fn b2_run() -> Outcome {
    let mut world = World::new(bmc_without_ipv4(), 22);
    world.at(Instant::from_secs(25), |w| {
        w.bmc.cfg.ipv4 = Some(Ipv4Address::new(169, 254, 1, 1));
        w.bmc.reconfigure();
    });
    let cfg = Config {
        race: true,
        ..config()
    };
    run_world(world, cfg, 120)
}

pub(super) fn b2_check(o: &Outcome) -> Result<(), String> {
    ensure(o.families() == [Family::V6, Family::V4], || {
        format!("IPv6 then IPv4 sessions expected, got {:?}", o.families())
    })?;
    ensure(o.has("BL3008"), || {
        format!("BL3008 expected: {:?}", o.ids())
    })?;
    // The IPv6 session ends with BYE "moving" (DESIGN §5: BYE a↔b), so the
    // BMC hears why it went rather than a reset.
    let log = &o.world.bmc.state.log.0;
    ensure(
        log.iter()
            .any(|e| e.id == "BMC0002" && e.text.ends_with("(reason 1)")),
        || format!("the BMC never heard BYE moving: {log:?}"),
    )?;
    ensure(o.session_features() == Some(Features::ALL), || {
        format!("all features on IPv4, got {:?}", o.session_features())
    })
}

pub(super) fn b2_race_delay_run() -> Outcome {
    let cfg = Config {
        race: true,
        ..config()
    };
    run_world(World::new(plain_bmc(), 23), cfg, 30)
}

pub(super) fn b2_race_delay_check(o: &Outcome) -> Result<(), String> {
    let frames = o.agent_frames();
    let first = |ethertype: u16| {
        frames
            .iter()
            .find(|c| c.ethertype() == Some(ethertype))
            .map(|c| c.at)
    };
    let first_v4 = first(ETHERTYPE_ARP).ok_or("no IPv4 claim")?;
    let first_v6 = first(ETHERTYPE_IPV6).ok_or("no IPv6 attempt in race mode")?;
    // The round starts at 0 s; IPv6 waits `race_delay` (250 ms).
    ensure(first_v6 >= Instant::from_millis(250), || {
        format!("IPv6 must wait 250 ms: IPv4 at {first_v4}, IPv6 at {first_v6}")
    })?;
    ensure(o.families().last() == Some(&Family::V4), || {
        format!("IPv4 preferred in the end, got {:?}", o.families())
    })?;
    ensure(o.session_features() == Some(Features::ALL), || {
        format!("all features on IPv4, got {:?}", o.session_features())
    })
}

pub(super) fn b2_sequential_run() -> Outcome {
    let mut world = World::new(bmc_without_ipv4(), 22);
    world.at(Instant::from_secs(25), |w| {
        w.bmc.cfg.ipv4 = Some(Ipv4Address::new(169, 254, 1, 1));
        w.bmc.reconfigure();
    });
    run_world(world, config(), 120)
}

pub(super) fn b2_sequential_check(o: &Outcome) -> Result<(), String> {
    ensure(o.families() == [Family::V6], || {
        format!("sequential: one IPv6 session kept, got {:?}", o.families())
    })?;
    ensure(!o.has("BL3008"), || "sequential mode moved".into())
}

// ---- B5 ---------------------------------------------------------------

pub(super) fn b5_link_run() -> Outcome {
    let mut world = World::new(plain_bmc(), 51);
    world.at(Instant::from_secs(15), |w| w.segment.set_link(false));
    world.at(Instant::from_secs(20), |w| w.segment.set_link(true));
    run_world(world, config(), 40)
}

pub(super) fn two_ipv4_sessions(o: &Outcome) -> Result<(), String> {
    ensure(o.families() == [Family::V4, Family::V4], || {
        format!("two IPv4 sessions expected, got {:?}", o.families())
    })
}

pub(super) fn b5_link_check(o: &Outcome) -> Result<(), String> {
    two_ipv4_sessions(o)?;
    let second = o.sessions()[1].0;
    ensure(second >= Instant::from_secs(20), || {
        format!("second session at {second}, before link up")
    })?;
    ensure(
        o.ids().iter().filter(|i| *i == "BL3003").count() == 1,
        || "IPv4 configured twice".into(),
    )
}

pub(super) fn b5_reboot_run() -> Outcome {
    // After a good session (60 s, the policy's `good_session`): a shorter
    // session that ends counts as a failure of its family in the round.
    let mut world = World::new(plain_bmc(), 52);
    world.at(Instant::from_secs(75), |w| {
        let now = w.clock.now();
        w.bmc.reboot(now);
    });
    run_world(world, config(), 100)
}

pub(super) fn b5_reboot_check(o: &Outcome) -> Result<(), String> {
    two_ipv4_sessions(o)?;
    ensure(o.has("BL2006"), || {
        format!("BL2006 (reset) expected: {:?}", o.ids())
    })
}

pub(super) fn b5_silence_run() -> Outcome {
    let mut world = World::new(plain_bmc(), 53);
    world.at(Instant::from_secs(12), |w| w.bmc.set_up(false));
    world.at(Instant::from_secs(60), |w| {
        let now = w.clock.now();
        w.bmc.reboot(now);
        w.bmc.set_up(true);
    });
    run_world(world, config(), 100)
}

pub(super) fn b5_silence_check(o: &Outcome) -> Result<(), String> {
    two_ipv4_sessions(o)?;
    ensure(o.has("BL2004"), || {
        format!("BL2004 (peer dead) expected: {:?}", o.ids())
    })
}

pub(super) fn b5_address_lost_run() -> Outcome {
    let mut world = World::new(plain_bmc(), 54);
    world.add_rogue(RogueConfig {
        claims_bound: Some(claim_after_binding()),
        ..RogueConfig::default()
    });
    run_world(world, config(), 60)
}

/// The rogue's claim in the address-lost scenarios: 8 s after our first
/// announcement, three announcements 3 s apart (inside DEFEND_INTERVAL).
pub fn claim_after_binding() -> ClaimBound {
    ClaimBound {
        after: smoltcp::time::Duration::from_secs(8),
        every: smoltcp::time::Duration::from_secs(3),
        times: 3,
    }
}

pub(super) fn b5_address_lost_check(o: &Outcome) -> Result<(), String> {
    let ids = o.ids();
    let pos = |id: &str| ids.iter().position(|i| i == id);
    ensure(
        matches!((pos("BL1003"), pos("BL1004")), (Some(a), Some(b)) if a < b),
        || format!("defend (BL1003) then give up (BL1004) expected: {ids:?}"),
    )?;
    // The claimed address was recorded (P2), so it is the recorded one now:
    // given up, it is probed again (RFC 5227), never replaced (P3) and never
    // a reason to switch IPv4 off (no BL3002).
    ensure(!o.has("BL3002"), || format!("no BL3002 expected: {ids:?}"))?;
    ensure(ids.iter().filter(|i| *i == "BL3003").count() == 1, || {
        format!("configured once (BL3003): {ids:?}")
    })?;
    let lost = o.first_at("BL1004").unwrap_or(Instant::ZERO);
    ensure(
        o.agent_probes().iter().all(|(_, a)| *a == preferred()),
        || {
            format!(
                "only the recorded address is probed: {:?}",
                o.agent_probes()
            )
        },
    )?;
    ensure(o.agent_probes().iter().any(|(at, _)| *at > lost), || {
        "the recorded address is probed again after the loss".into()
    })?;
    ensure(ids.iter().filter(|i| *i == "BL1001").count() == 2, || {
        format!("bound twice (BL1001): {ids:?}")
    })?;
    ensure(
        o.sessions()
            .last()
            .is_some_and(|(at, f)| *at > lost && *f == Family::V4),
        || format!("the session recovers over IPv4: {:?}", o.sessions()),
    )
}
