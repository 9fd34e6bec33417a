//! P10 has one source of truth: in every scenario of the simulated world,
//! each status the agent pushes, the audit log (BL3012) and the shim's
//! hosts block and `status.json` say the same thing about which features
//! the session offers (DESIGN §4, P10: features follow the session's
//! family).

use std::fs;

use bmclink_core::policy::Features;
use bmclink_core::Family;
use bmclink_linux::hosts::HostsFile;
use bmclink_linux::platform::StatusSink;
use bmclink_linux::session::SessionReport;
use bmclink_linux::status::{Observed, Status};
use bmclink_tests::scenarios::{Outcome, ALL};

const HOSTS: &str = "127.0.0.1 localhost\n";

/// What one scenario run showed, for the coverage check at the end.
#[derive(Default)]
struct Seen {
    v4_sessions: usize,
    v6_sessions: usize,
}

#[test]
fn status_audit_and_hosts_block_agree_on_the_features_in_every_scenario() {
    let mut seen = Seen::default();
    for s in ALL {
        let o = (s.run)();
        let mut runs = vec![&o];
        if let Some(first) = o.first.as_deref() {
            runs.push(first);
        }
        for run in runs {
            if let Err(why) = agree(run, &mut seen) {
                panic!("scenario {}: {why}\naudit: {:?}", s.name, run.ids());
            }
        }
    }
    // The check is only worth something if both families were exercised.
    assert!(seen.v4_sessions > 0, "no scenario ran an IPv4 session");
    assert!(seen.v6_sessions > 0, "no scenario ran an IPv6 session");
}

fn agree(o: &Outcome, seen: &mut Seen) -> Result<(), String> {
    // The audit log: one BL3012 at each IPv6 session start, none otherwise.
    let starts = o.sessions();
    let limited = o.times("BL3012");
    let v6_starts: Vec<_> = starts
        .iter()
        .filter(|(_, f)| *f == Family::V6)
        .map(|(at, _)| *at)
        .collect();
    if limited != v6_starts {
        return Err(format!(
            "BL3012 at {limited:?}, IPv6 session starts at {v6_starts:?}"
        ));
    }
    seen.v6_sessions += v6_starts.len();
    seen.v4_sessions += starts.len() - v6_starts.len();

    // Each status, as the core pushed it and as the shim publishes it.
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let hosts = dir.path().join("hosts");
    fs::write(&hosts, HOSTS).map_err(|e| e.to_string())?;
    let mut sink = StatusSink {
        report: SessionReport::new(dir.path(), Some(HostsFile::new(&hosts)), [2, 0, 0, 0, 0, 5]),
        bmc_ipv4: "169.254.1.1".parse().unwrap(),
        hosts_block_audited: None,
    };
    for (i, st) in o.world.statuses.iter().enumerate() {
        let want = st.features();
        sink.publish(st)
            .map_err(|e| format!("status #{i}: publish: {e}"))?;
        let text = fs::read_to_string(&hosts).map_err(|e| e.to_string())?;
        let mapped = text.contains("idrac.local");
        if mapped != want.contains(Features::BMC_LOCAL_NAMES) {
            return Err(format!(
                "status #{i} over {:?} offers {want} but the hosts file reads {text:?}",
                st.family
            ));
        }
        let file = match Status::observe(dir.path()).map_err(|e| e.to_string())? {
            Observed::Running(f) => f,
            other => return Err(format!("status #{i}: status.json: {other:?}")),
        };
        let offered: Vec<String> = file
            .features
            .iter()
            .filter(|f| f.available)
            .map(|f| f.name.clone())
            .collect();
        let expected: Vec<String> = want
            .names()
            .filter(|(_, on)| *on)
            .map(|(n, _)| n.to_owned())
            .collect();
        if st.is_up() && offered != expected {
            return Err(format!(
                "status #{i}: status.json offers {offered:?}, the core {expected:?}"
            ));
        }
        if !st.is_up() && !offered.is_empty() {
            return Err(format!(
                "status #{i}: no session but status.json offers {offered:?}"
            ));
        }
    }
    Ok(())
}
