//! One test per row P1–P10 of DESIGN §4.

extern crate std;

use std::string::ToString;

use smoltcp::time::Duration;

use super::*;
use crate::policy::{
    Features, Ipv4Unavailable, Ipv6Unavailable, Phase, RecordProblem, StayReason, Step,
};

#[test]
fn ipv4_is_tried_first_when_enabled() {
    for race in [false, true] {
        let mut s = Sim::with(|c| c.race = race, startup(bare(), None));
        assert_eq!(
            s.acts,
            [Action::ClaimIpv4 {
                preferred: PREFERRED
            }]
        );
        // Nothing IPv6 while IPv4 is still under way (race: before its delay).
        s.ms(200);
        assert!(
            !s.all_acts.iter().any(is_v6),
            "race={race}: {:?}",
            s.all_acts
        );
    }
    let mut host = bare();
    host.ipv4_present = true;
    let s = Sim::new(PolicyConfig::default(), startup(host, None));
    assert_eq!(s.acts, [Action::UseHostIpv4]);
}

#[test]
fn unconfigured_usbnic_claims_preferred_address_and_records_it_once() {
    let mut s = Sim::new(PolicyConfig::default(), startup(bare(), None));
    assert_eq!(
        s.acts,
        [Action::ClaimIpv4 {
            preferred: PREFERRED
        }]
    );
    s.input(Input::Ipv4Claimed { addr: PREFERRED });
    assert_eq!(
        s.acts,
        [
            Action::SaveLinkRecord { addr: PREFERRED },
            Action::Connect { family: Family::V4 }
        ]
    );
    assert_eq!(s.ids, [3003]);
    assert_eq!(s.p.state().link_record, Some(PREFERRED));
    // Failures, link flaps and restarts of the round never configure again.
    for _ in 0..5 {
        s.input(Input::LinkDown);
        s.input(Input::LinkUp);
        assert_eq!(s.acts, [Action::UseRecordedIpv4 { addr: PREFERRED }]);
        s.input(Input::Ipv4Claimed { addr: PREFERRED });
        s.input(Input::TcpRefused { family: Family::V4 });
        s.advance(Duration::from_secs(90));
    }
    assert_eq!(s.count(|a| matches!(a, Action::ClaimIpv4 { .. })), 1);
    assert_eq!(s.count(|a| matches!(a, Action::SaveLinkRecord { .. })), 1);
}

#[test]
fn link_record_present_uses_recorded_address_and_never_claims() {
    // The host does not carry the address itself: not "incomplete", the
    // record is the configuration.
    let mut s = Sim::new(PolicyConfig::default(), startup(bare(), Some(RECORDED)));
    assert_eq!(s.acts, [Action::UseRecordedIpv4 { addr: RECORDED }]);
    s.v4_session(RECORDED, CAPS_ALL);
    assert_eq!(s.p.state().ipv4_addr, Some(RECORDED));
    assert_eq!(s.count(|a| matches!(a, Action::SaveLinkRecord { .. })), 0);
}

#[test]
fn recorded_address_in_use_is_a_failed_round_never_a_p3_latch() {
    // Revised P3: a conflict on the recorded address is RFC 5227's business
    // (the claim re-probes the same address); the policy backs off and asks
    // for the same address again, never for another, never BL3002.
    let mut s = Sim::with(|c| c.ipv6 = false, startup(bare(), Some(RECORDED)));
    s.input(Input::Ipv4ClaimFailed);
    assert!(s.acts.is_empty(), "{:?}", s.acts);
    assert_eq!(s.ids, [3015, 3009]);
    assert!(s.all_events[0].to_string().contains("169.254.7.9"));
    assert!(matches!(s.p.state().phase, Phase::Backoff { .. }));
    assert_eq!(s.p.state().record_problem, None);
    // Every round asks for the recorded address again; BL3015 once per outage.
    for _ in 0..5 {
        let acts = s.advance(Duration::from_secs(61));
        assert_eq!(acts, [Action::UseRecordedIpv4 { addr: RECORDED }]);
        s.input(Input::Ipv4ClaimFailed);
    }
    assert_eq!(s.all_ids().iter().filter(|i| **i == 3015).count(), 1);
    assert!(!s.all_ids().contains(&3002));
    assert_eq!(s.count(|a| matches!(a, Action::ClaimIpv4 { .. })), 0);
    assert_eq!(s.count(|a| matches!(a, Action::StayDisconnected { .. })), 0);
    // The other host gives the address up: the next answer connects.
    s.advance(Duration::from_secs(61));
    s.v4_session(RECORDED, CAPS_ALL);
}

#[test]
fn recorded_address_in_use_falls_back_to_ipv6_meanwhile() {
    let mut s = Sim::new(PolicyConfig::default(), startup(bare(), Some(RECORDED)));
    s.input(Input::Ipv4ClaimFailed);
    assert_eq!(s.ids, [3015, 3004]);
    s.v6_to_connect();
    s.input(Input::TcpConnected { family: Family::V6 });
    s.input(Input::Welcome {
        authenticated: true,
        family: Family::V6,
        firmware: FW,
        caps: CAPS_ALL,
    });
    assert_eq!(s.p.session_family(), Some(Family::V6));
    assert_eq!(s.p.features(), Features::MONITORING);
    assert_eq!(s.p.state().record_problem, None);
    assert_eq!(s.count(|a| matches!(a, Action::ClaimIpv4 { .. })), 0);
}

#[test]
fn recorded_address_bound_again_during_the_backoff_connects_at_once() {
    let mut s = Sim::with(|c| c.ipv6 = false, startup(bare(), Some(RECORDED)));
    s.input(Input::Ipv4ClaimFailed);
    let Phase::Backoff { until } = s.p.state().phase else {
        panic!("{:?}", s.p.state())
    };
    s.ms(300);
    // The claim kept re-probing the recorded address and now holds it.
    s.input(Input::Ipv4Claimed { addr: RECORDED });
    assert_eq!(s.acts, [Action::Connect { family: Family::V4 }]);
    assert!(s.now < until);
    assert_eq!(s.p.state().ipv4_addr, Some(RECORDED));
}

#[test]
fn recorded_address_bound_again_while_ipv6_is_tried_connects_ipv4_at_once() {
    let mut s = Sim::new(PolicyConfig::default(), startup(bare(), Some(RECORDED)));
    s.input(Input::Ipv4ClaimFailed);
    assert_eq!(s.acts, [Action::StartIpv6]);
    s.input(Input::Ipv4Claimed { addr: RECORDED });
    assert_eq!(s.acts, [Action::Connect { family: Family::V4 }]);
    // IPv4 wins; the IPv6 attempt still in its address step is dropped.
    s.input(Input::TcpConnected { family: Family::V4 });
    assert_eq!(s.p.state().connected, Some(Family::V4));
    assert_eq!(s.p.state().ipv6, Step::Idle);
}

#[test]
fn race_mode_ipv6_bound_after_its_dad_failure_is_tried_again_in_the_round() {
    let mut s = Sim::with(|c| c.race = true, startup(bare(), None));
    s.input(Input::Ipv4Claimed { addr: PREFERRED });
    let acts = s.ms(300);
    assert!(acts.contains(&Action::StartIpv6), "{acts:?}");
    s.input(Input::Ipv6DadFailed);
    assert_eq!(s.p.state().ipv6, Step::Failed);
    // DAD passed on the claim's own retry, IPv4 still connecting.
    s.input(Input::Ipv6Claimed);
    assert_eq!(s.acts, [Action::DiscoverBmcIpv6]);
}

#[test]
fn unasked_ipv4_claim_of_another_address_starts_nothing() {
    let mut s = Sim::with(|c| c.ipv6 = false, startup(bare(), Some(RECORDED)));
    s.input(Input::Ipv4ClaimFailed);
    s.input(Input::Ipv4Claimed { addr: PREFERRED });
    assert!(s.acts.is_empty(), "{:?}", s.acts);
    assert_eq!(s.p.state().ipv4_addr, None);
    assert!(matches!(s.p.state().phase, Phase::Backoff { .. }));
}

#[test]
fn ipv6_dad_passing_after_its_failure_was_reported_ends_the_backoff() {
    // The IPv6 claim starts over by itself after DAD_RETRY_INTERVAL.
    let mut s = Sim::with(|c| c.ipv4 = false, startup(bare(), None));
    assert_eq!(s.acts, [Action::StartIpv6]);
    s.input(Input::Ipv6DadFailed);
    assert!(matches!(s.p.state().phase, Phase::Backoff { .. }));
    s.ms(500);
    s.input(Input::Ipv6Claimed);
    assert_eq!(s.acts, [Action::DiscoverBmcIpv6]);
}

#[test]
fn host_ipv4_vanishing_with_a_record_is_incomplete_until_it_returns() {
    let mut host = bare();
    host.ipv4_present = true;
    host.ipv6_enabled = false;
    let mut s = Sim::new(PolicyConfig::default(), startup(host, Some(RECORDED)));
    assert_eq!(s.acts, [Action::UseRecordedIpv4 { addr: RECORDED }]);
    s.v4_session(RECORDED, CAPS_ALL);
    let gone = HostFacts {
        ipv4_present: false,
        ..host
    };
    s.input(Input::HostFacts(gone));
    let reason = StayReason {
        ipv4: Ipv4Unavailable::RecordUnusable(RecordProblem::HostIpv4Vanished),
        ipv6: Ipv6Unavailable::HostDisabled,
    };
    // IPv4 stays off: the claim is released too (nothing goes on probing
    // the recorded address while BL3002 says IPv4 stays disconnected).
    assert_eq!(
        s.acts,
        [
            Action::ReleaseIpv4,
            Action::Disconnect { family: Family::V4 },
            Action::StayDisconnected { reason }
        ]
    );
    assert_eq!(s.ids, [3002, 3010]);
    assert_eq!(s.p.features(), Features::NONE);
    s.input(Input::HostFacts(host));
    assert_eq!(s.ids, [3014]);
    assert_eq!(s.acts, [Action::UseRecordedIpv4 { addr: RECORDED }]);
}

#[test]
fn ipv4_connection_failure_falls_back_to_ipv6() {
    for fail in [
        Input::TcpRefused { family: Family::V4 },
        Input::TcpTimedOut { family: Family::V4 },
    ] {
        let mut s = Sim::new(PolicyConfig::default(), startup(bare(), None));
        s.input(Input::Ipv4Claimed { addr: PREFERRED });
        s.input(fail);
        assert_eq!(s.acts, [Action::StartIpv6]);
        assert_eq!(s.ids, [3004]);
        s.v6_to_connect();
        s.input(Input::TcpConnected { family: Family::V6 });
        s.input(Input::Welcome {
            authenticated: true,
            family: Family::V6,
            firmware: FW,
            caps: CAPS_ALL,
        });
        assert_eq!(s.p.session_family(), Some(Family::V6));
        // P10: IPv4 is configured on the USBNIC, but the session runs over
        // IPv6: monitoring only, audited.
        assert_eq!(s.p.features(), Features::MONITORING);
        assert_eq!(s.ids, [3012]);
    }
}

#[test]
fn ipv6_disabled_on_host_retries_ipv4_with_backoff() {
    let host = HostFacts {
        ipv6_enabled: false,
        ..bare()
    };
    let mut s = Sim::new(PolicyConfig::default(), startup(host, None));
    s.input(Input::Ipv4Claimed { addr: PREFERRED });
    s.input(Input::TcpRefused { family: Family::V4 });
    assert!(s.acts.is_empty());
    assert_eq!(s.ids, [3005, 3009]);
    let Phase::Backoff { until } = s.p.state().phase else {
        panic!("{:?}", s.p.state())
    };
    let first = until - s.now;
    assert!(first <= Duration::from_secs(1) && first >= Duration::from_millis(750));
    assert_eq!(s.fire(), [Action::Connect { family: Family::V4 }]);
    s.input(Input::TcpRefused { family: Family::V4 });
    // Said once per outage; the backoff still grows and is audited.
    assert_eq!(s.ids, [3009]);
    let Phase::Backoff { until } = s.p.state().phase else {
        panic!()
    };
    assert!(until - s.now > Duration::from_millis(1400));
    for _ in 0..20 {
        s.fire();
        s.input(Input::TcpRefused { family: Family::V4 });
    }
    assert!(!s.all_acts.iter().any(is_v6), "{:?}", s.all_acts);
    assert!(!s
        .all_acts
        .iter()
        .any(|a| matches!(a, Action::Disconnect { family: Family::V6 })));
}

#[test]
fn ipv6_disabled_mid_attempt_drops_ipv6_and_starts_nothing_more_for_it() {
    let mut s = Sim::new(PolicyConfig::default(), startup(bare(), None));
    s.input(Input::Ipv4Claimed { addr: PREFERRED });
    s.input(Input::TcpRefused { family: Family::V4 });
    s.v6_to_connect();
    s.input(Input::HostFacts(HostFacts {
        ipv6_enabled: false,
        ..bare()
    }));
    assert_eq!(s.acts, [Action::Disconnect { family: Family::V6 }]);
    let n = s.all_acts.len();
    s.advance(Duration::from_secs(600));
    s.input(Input::TcpConnected { family: Family::V6 });
    assert_eq!(s.acts, [Action::Disconnect { family: Family::V6 }]);
    assert!(!s.all_acts[n..].iter().any(is_v6));
    assert!(s.all_acts[n..].contains(&Action::Connect { family: Family::V4 }));
}

#[test]
fn disabled_family_is_never_tried() {
    // ipv4 = false: IPv6 first and only.
    let mut s = Sim::with(|c| c.ipv4 = false, startup(bare(), None));
    assert_eq!(s.acts, [Action::StartIpv6]);
    s.input(Input::Ipv6DadFailed);
    assert_eq!(s.ids, [3009]);
    for _ in 0..10 {
        s.fire();
        s.input(Input::Ipv6DadFailed);
    }
    assert!(!s.all_acts.iter().any(|a| matches!(
        a,
        Action::ClaimIpv4 { .. } | Action::UseHostIpv4 | Action::UseRecordedIpv4 { .. }
    ) || *a == Action::Connect { family: Family::V4 }));
    // ipv6 = false: IPv4 only, and no "host IPv6 disabled" talk.
    let mut s = Sim::with(|c| c.ipv6 = false, startup(bare(), None));
    s.input(Input::Ipv4Claimed { addr: PREFERRED });
    s.input(Input::TcpRefused { family: Family::V4 });
    assert_eq!(s.ids, [3009]);
    s.fire();
    s.input(Input::TcpRefused { family: Family::V4 });
    assert!(!s.all_acts.iter().any(is_v6));
    // Both false: nothing at all, waiting for a new configuration.
    let mut s = Sim::with(
        |c| {
            c.ipv4 = false;
            c.ipv6 = false
        },
        startup(bare(), None),
    );
    let reason = StayReason {
        ipv4: Ipv4Unavailable::Disabled,
        ipv6: Ipv6Unavailable::Disabled,
    };
    assert_eq!(s.acts, [Action::StayDisconnected { reason }]);
    assert_eq!(s.ids, [3001]);
    assert_eq!(s.p.next_deadline(), None);
    s.input(Input::Config(PolicyConfig::default()));
    assert_eq!(
        s.acts,
        [Action::ClaimIpv4 {
            preferred: PREFERRED
        }]
    );
}

#[test]
fn bmc_without_ipv6_is_remembered_and_ipv4_only() {
    let mut s = Sim::new(PolicyConfig::default(), startup(bare(), None));
    s.input(Input::Ipv4Claimed { addr: PREFERRED });
    s.input(Input::TcpConnected { family: Family::V4 });
    s.input(Input::Welcome {
        authenticated: true,
        family: Family::V4,
        firmware: FW,
        caps: CAPS_NO_V6,
    });
    let record = BmcCapsRecord {
        firmware: FW,
        caps: CAPS_NO_V6,
    };
    assert_eq!(s.acts, [Action::SaveBmcCaps { record }]);
    assert_eq!(s.ids, [3006]);
    s.input(Input::SessionEnded {
        family: Family::V4,
        cause: crate::policy::SessionEnd::Reset,
    });
    for _ in 0..5 {
        s.advance(Duration::from_secs(61));
        s.input(Input::TcpRefused { family: Family::V4 });
    }
    assert!(!s.all_acts.iter().any(is_v6));
    assert!(s.p.state().bmc_without_ipv6);
    // Remembered across restarts through the cached record.
    let mut s = Sim::new(
        PolicyConfig::default(),
        Startup {
            caps: caps(CAPS_NO_V6),
            ..startup(bare(), Some(PREFERRED))
        },
    );
    s.input(Input::Ipv4Claimed { addr: PREFERRED });
    s.input(Input::TcpRefused { family: Family::V4 });
    assert!(s.acts.is_empty());
    assert_eq!(s.ids, [3009]);
    assert!(!s.all_acts.iter().any(is_v6));
}

#[test]
fn no_ipv6_answer_skips_ipv6_until_the_link_flaps() {
    let mut s = Sim::new(PolicyConfig::default(), startup(bare(), None));
    s.input(Input::Ipv4Claimed { addr: PREFERRED });
    s.input(Input::TcpRefused { family: Family::V4 });
    s.input(Input::Ipv6Claimed);
    s.input(Input::BmcIpv6NotFound);
    assert_eq!(s.ids, [3007, 3009]);
    s.fire();
    s.input(Input::TcpRefused { family: Family::V4 });
    assert!(s.acts.is_empty(), "{:?}", s.acts);
    assert!(matches!(s.p.state().phase, Phase::Backoff { .. }));
    s.input(Input::LinkDown);
    s.input(Input::LinkUp);
    s.input(Input::Ipv4Claimed { addr: PREFERRED });
    s.input(Input::TcpRefused { family: Family::V4 });
    assert_eq!(s.acts, [Action::StartIpv6]);
}

#[test]
fn session_family_is_exposed_for_the_session_start_event() {
    let mut s = Sim::new(PolicyConfig::default(), startup(bare(), None));
    assert_eq!(s.p.session_family(), None);
    s.input(Input::Ipv4Claimed { addr: PREFERRED });
    s.input(Input::TcpConnected { family: Family::V4 });
    assert_eq!(s.p.state().connected, Some(Family::V4));
    assert_eq!(s.p.session_family(), None, "no session before WELCOME");
    s.input(Input::Welcome {
        authenticated: true,
        family: Family::V4,
        firmware: FW,
        caps: CAPS_ALL,
    });
    assert_eq!(s.p.session_family(), Some(Family::V4));
    assert_eq!(s.p.state().session, Some(Family::V4));
    // The policy does not emit the session-start event itself.
    assert!(s.all_ids().iter().all(|id| (3000..4000).contains(id)));
}

#[test]
fn ipv6_only_usbnic_still_claims_ipv4() {
    let host = HostFacts {
        ipv6_present: true,
        ..bare()
    };
    let mut s = Sim::new(PolicyConfig::default(), startup(host, None));
    assert_eq!(
        s.acts,
        [Action::ClaimIpv4 {
            preferred: PREFERRED
        }]
    );
    s.v4_session(PREFERRED, CAPS_ALL);
    assert_eq!(s.count(|a| matches!(a, Action::SaveLinkRecord { .. })), 1);
}

#[test]
fn an_ipv6_session_offers_monitoring_only() {
    let mut s = Sim::with(|c| c.ipv4 = false, startup(bare(), None));
    assert_eq!(s.p.features(), Features::NONE);
    s.v6_to_connect();
    s.input(Input::TcpConnected { family: Family::V6 });
    s.input(Input::Welcome {
        authenticated: true,
        family: Family::V6,
        firmware: FW,
        caps: CAPS_ALL,
    });
    assert_eq!(s.ids, [3012]);
    assert_eq!(s.p.features(), Features::MONITORING);
    assert_eq!(s.p.features().to_string(), "monitoring");
    // IPv4 appearing on the host's USBNIC does not change what this IPv6
    // session offers (P10 follows the session's family).
    s.input(Input::HostFacts(HostFacts {
        ipv4_present: true,
        ..bare()
    }));
    assert_eq!(s.p.features(), Features::MONITORING);
    // An IPv4 session has everything.
    let mut s = Sim::new(PolicyConfig::default(), startup(bare(), None));
    s.v4_session(PREFERRED, CAPS_ALL);
    assert_eq!(s.p.features(), Features::ALL);
}

#[test]
fn link_reset_clears_p3_and_configures_again_once() {
    let host = HostFacts {
        ipv4_present: true,
        ipv6_enabled: false,
        ..bare()
    };
    let mut s = Sim::new(PolicyConfig::default(), startup(host, Some(RECORDED)));
    assert_eq!(s.acts, [Action::UseRecordedIpv4 { addr: RECORDED }]);
    // The host configuration vanishes before the recorded address was bound.
    s.input(Input::HostFacts(HostFacts {
        ipv4_present: false,
        ..host
    }));
    assert!(matches!(s.p.state().phase, Phase::Stay(_)));
    s.input(Input::LinkRecord(None));
    assert_eq!(
        s.acts,
        [Action::ClaimIpv4 {
            preferred: PREFERRED
        }]
    );
    s.input(Input::Ipv4Claimed { addr: PREFERRED });
    assert_eq!(
        s.acts,
        [
            Action::SaveLinkRecord { addr: PREFERRED },
            Action::Connect { family: Family::V4 }
        ]
    );
    assert_eq!(s.count(|a| matches!(a, Action::SaveLinkRecord { .. })), 1);
}
