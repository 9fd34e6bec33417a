//! One test per row of the fallback policy (DESIGN §4: P1–P10, B2, B5),
//! each running its named scenario (`bmclink_tests::scenarios`) through the
//! real agent, the simulated BMC, link and host, in virtual time.

use bmclink_tests::scenarios::flood::FloodSummary;
use bmclink_tests::scenarios::{run_and_check, Outcome};

fn holds(name: &str) -> Outcome {
    let Some((o, verdict)) = run_and_check(name) else {
        panic!("no scenario {name}");
    };
    if let Err(why) = verdict {
        eprintln!("{}\naudit: {:?}", o.timeline_text(), o.ids());
        panic!("scenario {name}: {why}");
    }
    o
}

#[test]
fn p1_ipv4_is_tried_first_and_no_ipv6_frame_when_it_works() {
    holds("p1-ipv4-first");
}

#[test]
fn p2_no_ip_on_usbnic_claims_preferred_address_once_and_records_it() {
    holds("p2-claim-ipv4-once");
}

#[test]
fn p3_link_record_present_means_no_arp_probe() {
    holds("p3-record-no-reclaim");
}

#[test]
fn p3_host_ipv4_removed_from_the_usbnic_stays_disconnected_on_ipv4_with_the_fix_named() {
    holds("p3-incomplete-stays-disconnected");
}

#[test]
fn p4_ipv4_failure_falls_back_to_ipv6() {
    holds("p4-fallback-ipv6");
}

#[test]
fn p5_host_ipv6_disabled_never_emits_ipv6_and_retries_ipv4() {
    holds("p5-host-ipv6-disabled");
}

#[test]
fn p6_ipv6_disabled_by_config_never_emits_ipv6() {
    holds("p6-ipv6-off-by-config");
}

#[test]
fn p6_ipv4_disabled_by_config_never_emits_arp_or_ipv4() {
    holds("p6-ipv4-off-by-config");
}

#[test]
fn p6_both_disabled_sends_nothing() {
    holds("p6-both-off");
}

#[test]
fn p7_bmc_without_usbnic_ipv6_is_cached_and_ipv6_never_tried_next_start() {
    holds("p7-bmc-without-ipv6-remembered");
}

#[test]
fn p8_each_session_start_names_family_and_channel() {
    holds("p8-session-start-names-family");
}

#[test]
fn p9_ipv6_only_usbnic_still_claims_ipv4() {
    holds("p9-ipv6-only-usbnic-claims-ipv4");
}

#[test]
fn p10_ipv6_only_session_offers_monitoring_only() {
    holds("p10-ipv6-only-monitoring");
}

#[test]
fn b2_race_mode_moves_session_back_to_ipv4() {
    holds("b2-race-back-to-ipv4");
}

#[test]
fn b2_race_mode_starts_ipv6_after_the_delay_and_still_prefers_ipv4() {
    holds("b2-race-ipv6-after-delay");
}

#[test]
fn b2_sequential_mode_keeps_the_ipv6_session() {
    holds("b2-sequential-stays");
}

#[test]
fn b5_link_down_up_reconnects_without_reconfiguring() {
    holds("b5-link-flap");
}

#[test]
fn b5_bmc_reboot_with_rst_reconnects() {
    holds("b5-bmc-reboot-rst");
}

#[test]
fn b5_silent_bmc_is_declared_dead_and_reconnected() {
    holds("b5-bmc-silent");
}

#[test]
fn b5_recorded_address_taken_after_binding_is_defended_given_up_reprobed_and_session_recovers() {
    holds("b5-address-lost");
}

#[test]
fn p3_a_host_squatting_on_the_recorded_address_for_an_hour_never_switches_ipv4_off() {
    holds("p3-recorded-address-squatted");
}

#[test]
fn b3_a_host_answering_every_dad_probe_for_an_hour_is_rate_limited_and_ipv6_comes_back() {
    holds("b3-dad-answered-for-an-hour");
}

#[test]
fn b3_a_host_answering_every_dad_probe_never_ends_the_ipv4_session() {
    holds("b3-dad-attack-spares-ipv4");
}

// The audit stream of each scenario whose audit log used to say something
// other than what happened (issue 19), and the deadlines (§5a), line by line.

#[test]
fn a_lost_session_names_its_port_and_a_refused_certificate_is_not_a_failed_connection() {
    holds("audit-pin-mismatch");
}

#[test]
fn a_stop_before_welcome_says_bye_and_audits_no_session() {
    holds("audit-stop-before-welcome");
}

#[test]
fn ipv4_blocked_by_p3_stops_its_claim_and_says_nothing_more_about_it() {
    holds("audit-p3-blocked-claim-stops");
}

#[test]
fn a_bmc_that_never_welcomes_meets_the_welcome_deadline_each_time() {
    holds("deadline-welcome");
}

#[test]
fn acd_defence_runs_while_a_handshake_waits() {
    holds("deadline-defence-during-handshake");
}

#[test]
fn a_refused_tls_port_is_audited_once_per_outage() {
    holds("audit-tls-port-refused");
}

#[test]
fn a_flood_saturating_the_cpu_keeps_the_timers_and_the_defence() {
    let o = holds("b3-flood-defended");
    if let Some(s) = FloodSummary::of(&o) {
        println!("{}", s.report());
    }
}

/// The same flood against a CPU that keeps up (90% busy): all 60 million
/// frames are read and the session stays up. About two minutes of CPU in
/// the debug profile, 13 s in release: `cargo xtask ci` runs it in release
/// (`cargo test --release -p bmclink-tests --test policy_rows -- --ignored
/// a_flood_the_cpu_keeps_up_with_leaves_the_session_up`), so it is ignored
/// only in the debug run of every test.
#[test]
#[ignore]
fn a_flood_the_cpu_keeps_up_with_leaves_the_session_up() {
    use bmclink_tests::scenarios::flood::{kept_up_check, kept_up_run};
    let o = kept_up_run();
    let s = FloodSummary::of(&o);
    if let Some(s) = &s {
        println!("{}", s.report());
    }
    if let Err(why) = kept_up_check(&o) {
        panic!("kept-up flood: {why}");
    }
}

#[test]
fn every_scenario_has_a_test() {
    let src = include_str!("policy_rows.rs");
    for s in bmclink_tests::scenarios::ALL {
        assert!(
            src.contains(&format!("holds(\"{}\")", s.name)),
            "scenario {} has no test",
            s.name
        );
    }
}
