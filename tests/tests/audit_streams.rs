//! The audit stream of each scenario whose audit log used to say something
//! other than what happened (issue 19), checked line by line
//! (`bmclink_tests::scenarios`, the `audit-*` scenarios).

use bmclink_tests::scenarios::run_and_check;

fn holds(name: &str) {
    let Some((o, verdict)) = run_and_check(name) else {
        panic!("no scenario {name}");
    };
    if let Err(why) = verdict {
        eprintln!("{}\naudit: {:?}", o.timeline_text(), o.ids());
        panic!("scenario {name}: {why}");
    }
}

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
