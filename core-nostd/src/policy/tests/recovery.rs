//! B2 (race mode) and B5 (recovery) behaviours, and the watchdogs.

use smoltcp::time::Duration;

use super::*;
use crate::policy::{Features, Phase, SessionEnd, Step};

fn race() -> PolicyConfig {
    PolicyConfig {
        race: true,
        ..PolicyConfig::default()
    }
}

#[test]
fn race_starts_ipv6_250ms_after_ipv4_when_ipv4_has_not_connected() {
    let mut s = Sim::new(race(), startup(bare(), None));
    assert_eq!(
        s.acts,
        [Action::ClaimIpv4 {
            preferred: PREFERRED
        }]
    );
    assert!(s.ms(249).is_empty());
    assert_eq!(s.ms(1), [Action::StartIpv6]);
    // No fallback event: this is the race, not P4.
    assert!(!s.all_ids().contains(&3004));
}

#[test]
fn race_ipv4_connecting_first_cancels_ipv6() {
    // IPv4 connected within the delay: IPv6 never starts.
    let mut s = Sim::new(race(), startup(bare(), Some(RECORDED)));
    s.ms(50);
    s.input(Input::Ipv4Claimed { addr: RECORDED });
    s.input(Input::TcpConnected { family: Family::V4 });
    s.ms(10_000);
    assert!(!s.all_acts.iter().any(is_v6));
    // IPv4 connects while IPv6 is connecting: IPv6 is dropped.
    let mut s = Sim::new(race(), startup(bare(), Some(RECORDED)));
    s.input(Input::Ipv4Claimed { addr: RECORDED });
    s.ms(250);
    s.v6_to_connect();
    s.input(Input::TcpConnected { family: Family::V4 });
    assert_eq!(s.acts, [Action::Disconnect { family: Family::V6 }]);
    assert_eq!(s.p.state().connected, Some(Family::V4));
    assert_eq!(s.p.state().ipv6, Step::Idle);
    // A late IPv6 connection is closed at once.
    s.input(Input::TcpConnected { family: Family::V6 });
    assert_eq!(s.acts, [Action::Disconnect { family: Family::V6 }]);
}

#[test]
fn race_moves_session_back_to_ipv4_when_it_becomes_reachable() {
    let mut s = Sim::new(race(), startup(bare(), Some(RECORDED)));
    s.input(Input::Ipv4Claimed { addr: RECORDED });
    s.ms(250);
    s.v6_to_connect();
    s.input(Input::TcpConnected { family: Family::V6 });
    s.input(Input::Welcome {
        authenticated: true,
        family: Family::V6,
        firmware: FW,
        caps: CAPS_ALL,
    });
    assert_eq!(s.p.session_family(), Some(Family::V6));
    // IPv4 is still being tried under the IPv6 session, with backoff.
    s.input(Input::TcpTimedOut { family: Family::V4 });
    assert_eq!(s.p.state().ipv4, Step::Waiting);
    assert!(s.p.next_deadline().is_some());
    assert_eq!(s.fire(), [Action::Connect { family: Family::V4 }]);
    s.input(Input::TcpRefused { family: Family::V4 });
    assert_eq!(s.fire(), [Action::Connect { family: Family::V4 }]);
    s.input(Input::TcpConnected { family: Family::V4 });
    assert_eq!(s.acts, [Action::Disconnect { family: Family::V6 }]);
    assert_eq!(s.ids, [3008]);
    assert_eq!(s.p.state().connected, Some(Family::V4));
    s.input(Input::Welcome {
        authenticated: true,
        family: Family::V4,
        firmware: FW,
        caps: CAPS_ALL,
    });
    assert_eq!(s.p.session_family(), Some(Family::V4));
    assert_eq!(s.p.features(), Features::ALL);
}

#[test]
fn sequential_mode_keeps_an_ipv6_session_until_it_ends() {
    let mut s = Sim::new(PolicyConfig::default(), startup(bare(), Some(RECORDED)));
    s.input(Input::Ipv4Claimed { addr: RECORDED });
    s.input(Input::TcpRefused { family: Family::V4 });
    s.v6_to_connect();
    s.input(Input::TcpConnected { family: Family::V6 });
    assert!(s.ms(3_600_000).is_empty());
    assert_eq!(s.p.state().connected, Some(Family::V6));
    assert_eq!(s.p.next_deadline(), None);
    // When it ends, the next round starts with IPv4 again (P1).
    s.input(Input::SessionEnded {
        family: Family::V6,
        cause: SessionEnd::Bye,
    });
    s.fire();
    assert_eq!(s.acts, [Action::Connect { family: Family::V4 }]);
}

#[test]
fn link_down_and_up_goes_back_through_the_policy_without_reconfiguring() {
    let mut s = Sim::new(PolicyConfig::default(), startup(bare(), None));
    s.v4_session(PREFERRED, CAPS_ALL);
    s.input(Input::LinkDown);
    assert_eq!(s.acts, [Action::Disconnect { family: Family::V4 }]);
    assert_eq!(s.p.state().phase, Phase::LinkDown);
    assert_eq!(s.p.next_deadline(), None);
    assert_eq!(s.p.features(), Features::NONE);
    // Results arriving while the link is down start nothing.
    s.input(Input::TcpRefused { family: Family::V4 });
    assert!(s.ms(120_000).is_empty());
    s.input(Input::LinkUp);
    assert_eq!(s.acts, [Action::UseRecordedIpv4 { addr: PREFERRED }]);
    s.v4_session(PREFERRED, CAPS_ALL);
    assert_eq!(s.count(|a| matches!(a, Action::ClaimIpv4 { .. })), 1);
}

#[test]
fn bmc_reboot_reconnects_at_once_after_a_good_session() {
    for cause in [SessionEnd::Reset, SessionEnd::PeerDead, SessionEnd::Bye] {
        let mut s = Sim::new(PolicyConfig::default(), startup(bare(), Some(RECORDED)));
        s.v4_session(RECORDED, CAPS_ALL);
        s.ms(3_600_000);
        s.input(Input::SessionEnded {
            family: Family::V4,
            cause,
        });
        // The address is still bound: straight to the connection.
        assert_eq!(s.acts, [Action::Connect { family: Family::V4 }]);
        assert_eq!(s.p.state().backoff_step, 0);
    }
}

#[test]
fn backoff_doubles_to_sixty_seconds_and_resets_after_a_good_session() {
    let mut s = Sim::with(|c| c.ipv6 = false, startup(bare(), Some(RECORDED)));
    s.input(Input::Ipv4Claimed { addr: RECORDED });
    let mut delays = std::vec::Vec::new();
    for _ in 0..10 {
        s.input(Input::TcpRefused { family: Family::V4 });
        let Phase::Backoff { until } = s.p.state().phase else {
            panic!("{:?}", s.p.state())
        };
        delays.push((until - s.now).total_millis());
        assert_eq!(s.fire(), [Action::Connect { family: Family::V4 }]);
    }
    let bases = [
        1_000u64, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000, 60_000,
    ];
    for (d, base) in delays.iter().zip(bases) {
        assert!(
            *d <= base && *d >= base * 3 / 4,
            "{d} ms for base {base} ms"
        );
    }
    // Backoff events stop once the ceiling was announced.
    assert_eq!(s.all_ids().iter().filter(|id| **id == 3009).count(), 7);
    // A short session does not reset the backoff; a good one does.
    s.input(Input::TcpConnected { family: Family::V4 });
    s.input(Input::Welcome {
        authenticated: true,
        family: Family::V4,
        firmware: FW,
        caps: CAPS_ALL,
    });
    s.ms(5_000);
    s.input(Input::SessionEnded {
        family: Family::V4,
        cause: SessionEnd::PeerDead,
    });
    let Phase::Backoff { until } = s.p.state().phase else {
        panic!()
    };
    assert!(until - s.now >= Duration::from_secs(45));
    s.fire();
    s.input(Input::TcpConnected { family: Family::V4 });
    s.input(Input::Welcome {
        authenticated: true,
        family: Family::V4,
        firmware: FW,
        caps: CAPS_ALL,
    });
    s.ms(60_000);
    s.input(Input::SessionEnded {
        family: Family::V4,
        cause: SessionEnd::Reset,
    });
    assert_eq!(s.acts, [Action::Connect { family: Family::V4 }]);
    s.input(Input::TcpRefused { family: Family::V4 });
    let Phase::Backoff { until } = s.p.state().phase else {
        panic!()
    };
    assert!(until - s.now <= Duration::from_secs(1));
}

#[test]
fn recorded_address_lost_under_a_session_asks_for_the_same_address_again() {
    // Revised P3: losing the recorded address to a conflict is not an
    // incomplete configuration; the claim re-probes it (RFC 5227).
    let mut s = Sim::new(PolicyConfig::default(), startup(bare(), Some(RECORDED)));
    s.v4_session(RECORDED, CAPS_ALL);
    s.input(Input::Ipv4Lost);
    assert_eq!(
        s.acts,
        [
            Action::Disconnect { family: Family::V4 },
            Action::UseRecordedIpv4 { addr: RECORDED }
        ]
    );
    assert!(s.ids.is_empty(), "{:?}", s.ids);
    assert_eq!(s.p.state().record_problem, None);
    s.input(Input::Ipv4Claimed { addr: RECORDED });
    assert_eq!(s.acts, [Action::Connect { family: Family::V4 }]);
}

#[test]
fn host_address_lost_without_record_is_claimed_per_p2() {
    let host = HostFacts {
        ipv4_present: true,
        ..bare()
    };
    let mut s = Sim::new(PolicyConfig::default(), startup(host, None));
    assert_eq!(s.acts, [Action::UseHostIpv4]);
    s.v4_session(Ipv4Address::new(169, 254, 1, 3), CAPS_ALL);
    s.input(Input::HostFacts(bare()));
    assert_eq!(
        s.acts,
        [
            Action::Disconnect { family: Family::V4 },
            Action::ClaimIpv4 {
                preferred: PREFERRED
            }
        ]
    );
    assert_eq!(s.count(|a| matches!(a, Action::SaveLinkRecord { .. })), 0);
}

#[test]
fn watchdogs_abandon_steps_the_agent_never_answers() {
    let mut s = Sim::new(PolicyConfig::default(), startup(bare(), None));
    let dl = s.p.next_deadline().unwrap();
    assert_eq!(dl - s.now, Duration::from_secs(120));
    assert_eq!(s.fire(), [Action::StartIpv6]);
    assert_eq!(s.ids, [3013, 3004]);
    s.input(Input::Ipv6Claimed);
    s.input(Input::BmcIpv6Learned);
    assert_eq!(s.fire(), [Action::Disconnect { family: Family::V6 }]);
    assert!(matches!(s.p.state().phase, Phase::Backoff { .. }));
    // The outstanding claim is not asked for twice; a late answer still
    // records the configuration once.
    s.fire();
    assert_eq!(s.count(|a| matches!(a, Action::ClaimIpv4 { .. })), 1);
    s.input(Input::Ipv4Claimed { addr: PREFERRED });
    assert_eq!(
        s.acts,
        [
            Action::SaveLinkRecord { addr: PREFERRED },
            Action::Connect { family: Family::V4 }
        ]
    );
}
