//! B5 through the whole agent: recovery without a restart.

use bmclink_core::audit::{AuditEvent, SessionEvent};
use bmclink_core::{Config, Family};
use bmclink_tests::{run_agent, BmcConfig, World};
use smoltcp::time::Instant;

fn session_families(world: &World) -> Vec<(Instant, Family)> {
    world
        .audit
        .iter()
        .filter_map(|(at, e)| match e {
            AuditEvent::Session(SessionEvent::Started { family, .. }) => Some((*at, *family)),
            _ => None,
        })
        .collect()
}

/// A BMC that reboots 15 s into a session (well before a session counts as
/// "good") answered over IPv4, so IPv4 still works: the agent backs off and
/// comes back over IPv4, with no fallback to IPv6 (no BL3004).
#[test]
fn bmc_reboot_soon_after_connecting_comes_back_over_ipv4() {
    let bmc = BmcConfig {
        firmware: [3, 20, 20, 20],
        tls: false,
        ..BmcConfig::default()
    };
    let mut world = World::new(bmc, 21);
    world.at(Instant::from_secs(20), |w| {
        let now = w.clock.now();
        w.bmc.reboot(now);
    });
    run_agent(&mut world, Config::default(), Instant::from_secs(90)).expect("agent starts");
    let sessions = session_families(&world);
    assert!(sessions.len() >= 2, "{:?}", world.audit_ids());
    assert!(
        sessions.iter().all(|(_, f)| *f == Family::V4),
        "every session over IPv4: {sessions:?}"
    );
    assert!(sessions[1].0 > Instant::from_secs(20));
    assert!(
        !world.audit_ids().iter().any(|id| id == "BL3004"),
        "no fallback to IPv6: {:?}",
        world.audit_ids()
    );
}
