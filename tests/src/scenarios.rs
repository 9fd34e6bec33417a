//! The named scenarios of the fallback policy (DESIGN §4, rows P1–P10, B2, B3
//! and B5): a world, an agent configuration, a duration and the outcome
//! each must show. The tests (`tests/tests/policy_rows.rs`) and
//! `cargo xtask run --scenario NAME` share them.

mod attacks;
mod audit;
pub mod flood;
mod outcome;
mod rows;

use bmclink_core::Config;
use smoltcp::time::Instant;

use crate::bmc::BmcConfig;
use crate::run_agent;
use crate::timeline;
use crate::world::World;

use attacks::*;
pub use attacks::{squat_recovery_bound, ATTACK_FROM, ATTACK_UNTIL};
use audit::*;
use flood::{flood_check, flood_run};
pub use outcome::Outcome;
pub use rows::claim_after_binding;
use rows::*;

/// Ethertype of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
/// Ethertype of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;

/// One named scenario.
pub struct Scenario {
    /// Its name (`cargo xtask run --scenario NAME`).
    pub name: &'static str,
    /// The DESIGN §4 row it shows.
    pub row: &'static str,
    /// What it shows, in one line.
    pub about: &'static str,
    /// Builds and runs it.
    pub run: fn() -> Outcome,
    /// Checks its expected outcome; the error says what did not hold.
    pub check: fn(&Outcome) -> Result<(), String>,
}

/// The plain-channel BMC the scenarios use (TLS is wired in elsewhere).
pub fn plain_bmc() -> BmcConfig {
    BmcConfig {
        firmware: [3, 20, 20, 20],
        tls: false,
        ..BmcConfig::default()
    }
}

/// The agent configuration of the scenarios.
pub fn config() -> Config {
    Config {
        hostname: "sim-host",
        ..Config::default()
    }
}

/// Runs the agent with `cfg` in `world` for `secs` virtual seconds and
/// collects the timeline.
pub fn run_world(mut world: World, cfg: Config, secs: i64) -> Outcome {
    timeline::take();
    if let Err(e) = run_agent(&mut world, cfg, Instant::from_secs(secs)) {
        timeline::emit("sim", format!("the agent could not start: {e:?}"));
    }
    Outcome {
        world,
        lines: timeline::take(),
        first: None,
    }
}

/// Every scenario, in table order.
pub static ALL: &[Scenario] = &[
    Scenario {
        name: "p1-ipv4-first",
        row: "P1",
        about: "IPv4 link-local is tried first and used; no IPv6 frame when it works",
        run: p1_run,
        check: p1_check,
    },
    Scenario {
        name: "p2-claim-ipv4-once",
        row: "P2",
        about: "no IP on the USBNIC: claim 169.254.1.2 (3 probes), save the link record once",
        run: p1_run,
        check: p2_check,
    },
    Scenario {
        name: "p3-record-no-reclaim",
        row: "P3",
        about: "a link record exists: use the recorded address (ACD-checked), never claim or record another",
        run: p3_record_run,
        check: p3_record_check,
    },
    Scenario {
        name: "p3-incomplete-stays-disconnected",
        row: "P3",
        about:
            "the host OS's IPv4 on the USBNIC is removed: stay disconnected on IPv4 (BL3002), no reclaim, IPv6 tried",
        run: p3_incomplete_run,
        check: p3_incomplete_check,
    },
    Scenario {
        name: "p4-fallback-ipv6",
        row: "P4",
        about: "IPv4 fails (BMC without IPv4): fall back to IPv6 link-local",
        run: p4_run,
        check: p4_check,
    },
    Scenario {
        name: "p5-host-ipv6-disabled",
        row: "P5",
        about: "host IPv6 disabled: never an IPv6 frame, IPv4 retried with backoff",
        run: p5_run,
        check: p5_check,
    },
    Scenario {
        name: "p6-ipv6-off-by-config",
        row: "P6",
        about: "ipv6 = false: never an IPv6 frame even when IPv4 fails",
        run: p6_v6_off_run,
        check: no_ipv6_and_ipv4_retried,
    },
    Scenario {
        name: "p6-ipv4-off-by-config",
        row: "P6",
        about: "ipv4 = false: never an ARP or IPv4 frame, session over IPv6",
        run: p6_v4_off_run,
        check: p6_v4_off_check,
    },
    Scenario {
        name: "p6-both-off",
        row: "P6",
        about: "both families off: nothing sent, BL3001",
        run: p6_both_off_run,
        check: p6_both_off_check,
    },
    Scenario {
        name: "p7-bmc-without-ipv6-remembered",
        row: "P7",
        about: "BMC without USBNIC IPv6: caps cached; the next start never tries IPv6",
        run: p7_run,
        check: p7_check,
    },
    Scenario {
        name: "p8-session-start-names-family",
        row: "P8",
        about: "one BL2001 per session start naming family and channel",
        run: p8_run,
        check: p8_check,
    },
    Scenario {
        name: "p9-ipv6-only-usbnic-claims-ipv4",
        row: "P9",
        about: "USBNIC with only IPv6: IPv4 is still claimed and used",
        run: p9_run,
        check: p2_check,
    },
    Scenario {
        name: "p10-ipv6-only-monitoring",
        row: "P10",
        about: "IPv6-only session: features are monitoring only (BL3012)",
        run: p10_run,
        check: p10_check,
    },
    Scenario {
        name: "b2-race-back-to-ipv4",
        row: "B2",
        about: "race mode: IPv6 session first, IPv4 comes up, the session moves to IPv4 (BL3008)",
        run: b2_run,
        check: b2_check,
    },
    Scenario {
        name: "b2-race-ipv6-after-delay",
        row: "B2",
        about: "race mode, both families up: IPv6 starts 250 ms in, IPv4 still ends up preferred",
        run: b2_race_delay_run,
        check: b2_race_delay_check,
    },
    Scenario {
        name: "b2-sequential-stays",
        row: "B2",
        about: "sequential mode: the IPv6 session stays when IPv4 comes up",
        run: b2_sequential_run,
        check: b2_sequential_check,
    },
    Scenario {
        name: "b5-link-flap",
        row: "B5",
        about: "link down/up: back through the policy, new session, no reconfiguration",
        run: b5_link_run,
        check: b5_link_check,
    },
    Scenario {
        name: "b5-bmc-reboot-rst",
        row: "B5",
        about: "BMC reboot (RST): the session comes back",
        run: b5_reboot_run,
        check: b5_reboot_check,
    },
    Scenario {
        name: "b5-bmc-silent",
        row: "B5",
        about: "BMC silent past 3 heartbeats (BL2004), then back: new session",
        run: b5_silence_run,
        check: b5_silence_check,
    },
    Scenario {
        name: "b5-address-lost",
        row: "B5",
        about: "another host takes our recorded address: defend, give up, re-probe the same address (P3), session recovers over IPv4",
        run: b5_address_lost_run,
        check: b5_address_lost_check,
    },
    Scenario {
        name: "p3-recorded-address-squatted",
        row: "P3",
        about: "a host squats on the recorded IPv4 address for an hour: defend, give up, re-probe the same address once a minute, never BL3002; IPv4 session back after it stops",
        run: squatted_run,
        check: squatted_check,
    },
    Scenario {
        name: "b3-dad-answered-for-an-hour",
        row: "B3",
        about: "a host answers every DAD probe for an hour (IPv6-only BMC): DAD rate-limited, IPv4 still tried, IPv6 session within a minute after it stops",
        run: dad_answered_run,
        check: dad_answered_check,
    },
    Scenario {
        name: "b3-dad-attack-spares-ipv4",
        row: "B3",
        about: "race mode, a host answers every DAD probe for an hour: the IPv4 session is never ended, DAD passes within a minute after it stops",
        run: dad_spares_ipv4_run,
        check: dad_spares_ipv4_check,
    },
    Scenario {
        name: "audit-pin-mismatch",
        row: "T1",
        about: "a pinned BMC reboots with another certificate: the lost session names its port, each refusal is BL4002 alone (no BL2006 beside it)",
        run: pin_mismatch_run,
        check: pin_mismatch_check,
    },
    Scenario {
        name: "audit-stop-before-welcome",
        row: "§5",
        about: "stopped after the TLS handshake, before WELCOME: BYE and close_notify go out, no BL2002 for a session that never started",
        run: stop_before_welcome_run,
        check: stop_before_welcome_check,
    },
    Scenario {
        name: "audit-tls-port-refused",
        row: "T6",
        about: "the BMC's TLS port refuses while TLS is expected: BL2007 once per outage, no plain fallback, no BL2002 at the stop",
        run: tls_port_refused_run,
        check: tls_port_refused_check,
    },
    Scenario {
        name: "audit-p3-blocked-claim-stops",
        row: "P3",
        about: "the host's IPv4 vanishes (BL3002) while a squatter keeps the recorded address's claim backing off: the claim stops, no BL1002 or ARP probe after BL3002",
        run: blocked_claim_run,
        check: blocked_claim_check,
    },
    Scenario {
        name: "deadline-welcome",
        row: "§5a",
        about: "a BMC that never sends WELCOME: each connection ends at the WELCOME deadline (BL2008), IPv6 tried, backoff",
        run: welcome_deadline_run,
        check: welcome_deadline_check,
    },
    Scenario {
        name: "deadline-defence-during-handshake",
        row: "B5",
        about: "a host claims our address while a trickling TLS handshake waits: defended at once (BL1003), before the handshake deadline (BL4016)",
        run: defence_during_handshake_run,
        check: defence_during_handshake_check,
    },
    Scenario {
        name: "b3-flood-defended",
        row: "B3",
        about: "10 virtual minutes of 100,000 frames/s of junk and ARP for others into a 256-frame ring, a CPU for a fifth of it: the agent reads all it can, heartbeats keep time, a conflict midway is defended within 1 s, the address kept",
        run: flood_run,
        check: flood_check,
    },
];

/// The scenario called `name`.
pub fn find(name: &str) -> Option<&'static Scenario> {
    ALL.iter().find(|s| s.name == name)
}

/// Runs the scenario called `name` and checks it: the outcome and the
/// check's verdict; `None` for an unknown name.
pub fn run_and_check(name: &str) -> Option<(Outcome, Result<(), String>)> {
    let s = find(name)?;
    let o = (s.run)();
    let verdict = (s.check)(&o);
    Some((o, verdict))
}
