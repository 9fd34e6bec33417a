//! Link attacks by a third host on the USBNIC (issue 12, item 5): it squats
//! on the recorded IPv4 address, or answers every IPv6 DAD probe, for an
//! hour of virtual time. IPv4 must not be switched off for good, nothing
//! may panic, the audit stream must say what happened, and the session must
//! be back soon after the rogue stops.

use bmclink_core::audit::{AuditEvent, LinkEvent};
use bmclink_core::link::ipv4ll::{
    ANNOUNCE_WAIT, MAX_CONFLICTS, PROBE_MAX, PROBE_WAIT, RATE_LIMIT_INTERVAL,
};
use bmclink_core::link::ipv6ll::iid::link_local;
use bmclink_core::link::ipv6ll::{
    stable_iid, DAD_RETRY_INTERVAL, IDGEN_RETRIES, MAX_RTR_SOLICITATION_DELAY, RETRANS_TIMER,
};
use bmclink_core::platform::Record;
use bmclink_core::records::LinkRecord;
use bmclink_core::{Config, Family};
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{Icmpv6Packet, Icmpv6Repr, IpProtocol, Ipv6Address, Ipv6Packet, NdiscRepr};

use super::rows::{ensure, preferred, with_record};
use super::{config, plain_bmc, run_world, Outcome};
use crate::bmc::BmcConfig;
use crate::rogue::{RogueConfig, Squat};
use crate::world::{World, AGENT_MAC};

/// When the rogue starts: the first session is up by then.
pub const ATTACK_FROM: Instant = Instant::from_micros_const(30_000_000);
/// When the rogue stops: an hour later.
pub const ATTACK_UNTIL: Instant = Instant::from_micros_const(3_630_000_000);
/// How long each run goes on after the rogue stopped.
const AFTER: i64 = 150;
/// The rogue's announcements of the squatted address, 2 s apart: two within
/// DEFEND_INTERVAL, the frames that used to switch IPv4 off for good.
const SQUAT_EVERY: Duration = Duration::from_secs(2);

/// The audit IDs with runs of the same ID folded into `ID×n`, for messages.
fn folded(ids: &[String]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < ids.len() {
        let n = ids[i..].iter().take_while(|x| **x == ids[i]).count();
        out.push(if n == 1 {
            ids[i].clone()
        } else {
            format!("{}×{n}", ids[i])
        });
        i += n;
    }
    out.join(" ")
}

/// One step of an expected audit stream: an ID `min..=max` times in a row,
/// or a group of such steps repeated `min..=max` times.
#[derive(Clone, Copy)]
pub(super) enum Line {
    Id(&'static str, usize, usize),
    Repeat(&'static [(&'static str, usize, usize)], usize, usize),
}

/// Matches `(id, min, max)` at `ids[at..]`: how many lines it took.
fn take(ids: &[String], at: usize, (id, min, max): (&str, usize, usize)) -> Option<usize> {
    let n = ids[at..].iter().take_while(|x| *x == id).count().min(max);
    (n >= min).then_some(n)
}

/// Checks the audit stream line by line against `expect` (greedy, in order):
/// every line must be matched and nothing may be left over.
pub(super) fn audit_lines(o: &Outcome, expect: &[Line]) -> Result<(), String> {
    let ids = o.ids();
    let mut at = 0;
    for (step, line) in expect.iter().enumerate() {
        match *line {
            Line::Id(id, min, max) => {
                let n = take(&ids, at, (id, min, max)).ok_or_else(|| {
                    format!(
                        "audit line {at}: step {step} wants {id} ×{min}..={max}, got {:?}; stream: {}",
                        ids.get(at),
                        folded(&ids)
                    )
                })?;
                at += n;
            }
            Line::Repeat(group, min, max) => {
                let mut times = 0;
                while times < max {
                    let mut k = at;
                    let whole = group.iter().all(|g| match take(&ids, k, *g) {
                        Some(n) => {
                            k += n;
                            true
                        }
                        None => false,
                    });
                    if !whole || k == at {
                        break;
                    }
                    at = k;
                    times += 1;
                }
                ensure(times >= min, || {
                    format!(
                        "audit line {at}: step {step} wants {group:?} ×{min}..={max}, matched {times}×; stream: {}",
                        folded(&ids)
                    )
                })?;
            }
        }
    }
    ensure(at == ids.len(), || {
        format!(
            "audit line {at}: {:?} not expected; stream: {}",
            ids.get(at),
            folded(&ids)
        )
    })
}

fn sessions_after(o: &Outcome, t: Instant) -> Vec<(Instant, Family)> {
    o.sessions()
        .into_iter()
        .filter(|(at, _)| *at >= t)
        .collect()
}

// ---- the recorded IPv4 address squatted on for an hour ----------------

/// A BMC with IPv4 only on its USBNIC: the session can only come back over
/// IPv4, so the run shows whether IPv4 was switched off.
fn ipv4_only_bmc() -> BmcConfig {
    BmcConfig {
        ipv6_usbnic: false,
        ipv6: None,
        ..plain_bmc()
    }
}

pub(super) fn squatted_run() -> Outcome {
    let mut world = World::new(ipv4_only_bmc(), 61);
    with_record(&mut world, preferred());
    world.add_rogue(RogueConfig {
        squats_ipv4: Some(Squat {
            addr: preferred(),
            from: ATTACK_FROM,
            until: ATTACK_UNTIL,
            every: SQUAT_EVERY,
        }),
        ..RogueConfig::default()
    });
    run_world(world, config(), ATTACK_UNTIL.secs() + AFTER)
}

/// RFC 5227's bound on the return of the address once the squatter is
/// gone: the rate-limited attempt (RATE_LIMIT_INTERVAL + up to PROBE_WAIT
/// after the last conflict), then three probes and ANNOUNCE_WAIT.
pub fn squat_recovery_bound() -> Duration {
    RATE_LIMIT_INTERVAL + PROBE_WAIT + PROBE_MAX + PROBE_MAX + ANNOUNCE_WAIT
}

pub(super) fn squatted_check(o: &Outcome) -> Result<(), String> {
    let ids = o.ids();
    // P3 revised: a conflict never latches IPv4 off, and the recorded
    // address is the only one ever probed or announced.
    ensure(!o.has("BL3002") && !o.has("BL3003"), || {
        format!("no BL3002/BL3003 expected: {}", folded(&ids))
    })?;
    ensure(
        o.agent_arp().iter().all(|(_, _, s, t)| {
            *t == preferred() && (s.is_unspecified() || *s == preferred())
                || *t == Config::default().bmc_ipv4
        }),
        || "an ARP frame for another host address".into(),
    )?;
    let record = o.world.store.records.get(&Record::Link).cloned();
    ensure(
        record == Some(LinkRecord { ipv4: preferred() }.encode().to_vec()),
        || format!("link record rewritten: {record:?}"),
    )?;
    // RFC 5227 §2.4: one defence, then given up (the rogue's second
    // announcement comes 2 s later, inside DEFEND_INTERVAL).
    let defended = o.first_at("BL1003").ok_or("no defence (BL1003)")?;
    let lost = o.first_at("BL1004").ok_or("never given up (BL1004)")?;
    ensure(
        defended >= ATTACK_FROM && lost - defended <= SQUAT_EVERY,
        || format!("defence at {defended}, loss at {lost}"),
    )?;
    let texts: Vec<String> = o
        .world
        .audit
        .iter()
        .filter(|(_, e)| {
            matches!(
                e,
                AuditEvent::Link(LinkEvent::Ipv4Lost { .. } | LinkEvent::Ipv4Conflict { .. })
            )
        })
        .map(|(_, e)| e.to_string())
        .collect();
    ensure(
        texts
            .iter()
            .all(|t| t.contains("probing the same address again") && !t.contains("another IPv4")),
        || format!("BL1002/BL1004 must say the recorded address is probed again: {texts:?}"),
    )?;
    // Rate limit: after MAX_CONFLICTS conflicts, one attempt a minute.
    let conflicts: Vec<Instant> = o
        .world
        .audit
        .iter()
        .filter(|(_, e)| matches!(e, AuditEvent::Link(LinkEvent::Ipv4Conflict { .. })))
        .map(|(at, _)| *at)
        .collect();
    // The MAX_CONFLICTS-th conflict (the loss counts as the first) is the
    // 9th BL1002; from it on, one a minute.
    for w in conflicts.windows(2).skip(MAX_CONFLICTS as usize - 2) {
        ensure(w[1] - w[0] >= RATE_LIMIT_INTERVAL, || {
            format!("conflicts {} apart after the rate limit", w[1] - w[0])
        })?;
    }
    let probes_in_hour = o
        .agent_probes()
        .iter()
        .filter(|(at, _)| *at >= ATTACK_FROM && *at < ATTACK_UNTIL)
        .count();
    ensure(
        (50..=MAX_CONFLICTS as usize + 3600 / 60 + 1).contains(&probes_in_hour),
        || format!("{probes_in_hour} probes in the hour: rate-limited but never stopped"),
    )?;
    // No IPv4 session while the rogue holds the address; after it stops,
    // the session is back over IPv4 within RFC 5227's bound.
    let during: Vec<_> = o
        .sessions()
        .into_iter()
        .filter(|(at, _)| *at > ATTACK_FROM && *at < ATTACK_UNTIL)
        .collect();
    ensure(during.is_empty(), || {
        format!("a session while squatted: {during:?}")
    })?;
    let back = sessions_after(o, ATTACK_UNTIL);
    let (at, family) = *back
        .first()
        .ok_or_else(|| format!("no session after the rogue stopped: {}", folded(&ids)))?;
    ensure(family == Family::V4, || format!("back over {family}"))?;
    ensure(at - ATTACK_UNTIL <= squat_recovery_bound(), || {
        format!("session back {} after the rogue stopped", at - ATTACK_UNTIL)
    })?;
    // Line by line. Before the attack: the recorded address in use
    // (BL1001), the plain channel (BL4001), the session (BL2001) with a BMC
    // without IPv6 (BL3006). The attack: one defence (BL1003), then the
    // loss (BL1004) since the rogue answers the defence at once, the
    // session closed (BL2002, our BYE); re-probes of the same address, each
    // met by a conflict (BL1002), up to MAX_CONFLICTS with the loss; the
    // rate limit (BL1005) and the policy's failed round (BL3015 once, a
    // backoff BL3009); then once a minute a conflict and the rate limit
    // (BL3009 until the backoff reaches its ceiling). After the rogue: the
    // address (BL1001), the plain channel (BL4001, said at every plain session since the trust rework) and the session (BL2001) are back; BL2002 is the BYE
    // when the run ends.
    audit_lines(
        o,
        &[
            Line::Id("BL1001", 1, 1),
            Line::Id("BL4001", 1, 1),
            Line::Id("BL2001", 1, 1),
            Line::Id("BL3006", 1, 1),
            Line::Id("BL1003", 1, 1),
            Line::Id("BL1004", 1, 1),
            Line::Id("BL2002", 1, 1),
            Line::Id(
                "BL1002",
                MAX_CONFLICTS as usize - 1,
                MAX_CONFLICTS as usize - 1,
            ),
            Line::Id("BL1005", 1, 1),
            Line::Id("BL3015", 1, 1),
            Line::Id("BL3009", 1, 1),
            Line::Repeat(
                &[("BL1002", 1, 1), ("BL1005", 1, 1), ("BL3009", 0, 1)],
                55,
                60,
            ),
            Line::Id("BL1001", 1, 1),
            Line::Id("BL4001", 1, 1),
            Line::Id("BL2001", 1, 1),
            Line::Id("BL2002", 1, 1),
        ],
    )
}

// ---- every DAD probe answered for an hour -----------------------------

/// When the DAD rogue stops (it answers from the start).
pub const DAD_UNTIL: Instant = Instant::from_micros_const(3_600_000_000);

fn dad_rogue() -> RogueConfig {
    RogueConfig {
        answers_dad_between: Some((Instant::ZERO, DAD_UNTIL)),
        ..RogueConfig::default()
    }
}

/// The targets of the agent's DAD solicitations (NS from `::`), with when.
fn agent_dad_ns(o: &Outcome) -> Vec<(Instant, Ipv6Address)> {
    o.agent_frames()
        .iter()
        .filter_map(|c| {
            let ip = Ipv6Packet::new_checked(c.frame.get(14..)?).ok()?;
            if ip.next_header() != IpProtocol::Icmpv6 || !ip.src_addr().is_unspecified() {
                return None;
            }
            let icmp = Icmpv6Packet::new_checked(ip.payload()).ok()?;
            let caps = ChecksumCapabilities::default();
            match Icmpv6Repr::parse(&ip.src_addr(), &ip.dst_addr(), &icmp, &caps).ok()? {
                Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit { target_addr, .. }) => {
                    Some((c.at, target_addr))
                }
                _ => None,
            }
        })
        .collect()
}

/// The agent's RFC 7217 identifiers with DAD counter 0..=IDGEN_RETRIES,
/// from the stable secret it stored.
fn stable_addresses(o: &Outcome) -> Result<Vec<Ipv6Address>, String> {
    let secret = o
        .world
        .store
        .records
        .get(&Record::StableSecret)
        .ok_or("no stable secret stored")?;
    Ok((0..=IDGEN_RETRIES)
        .map(|n| link_local(stable_iid(secret, &AGENT_MAC, &[], n)))
        .collect())
}

/// What both DAD scenarios show about the IPv6 claim.
fn dad_attack_checks(o: &Outcome) -> Result<(), String> {
    let four = stable_addresses(o)?;
    let ns = agent_dad_ns(o);
    ensure(ns.iter().all(|(_, t)| four.contains(t)), || {
        "a DAD probe for an identifier beyond DAD counter IDGEN_RETRIES (RFC 7217)".into()
    })?;
    // Rate-limited (IDGEN_RETRIES + 1 in a row, then DAD_RETRY_INTERVAL),
    // never given up.
    let during = ns.iter().filter(|(at, _)| *at < DAD_UNTIL).count();
    let cycles = (DAD_UNTIL.secs() as u64 / DAD_RETRY_INTERVAL.secs()) as usize + 1;
    let tries = usize::from(IDGEN_RETRIES) + 1;
    ensure(
        during <= cycles * tries && during >= cycles / 2 * tries,
        || format!("{during} DAD probes in the hour"),
    )?;
    let last_hour = ns
        .iter()
        .filter(|(at, _)| *at > DAD_UNTIL - Duration::from_secs(60) && *at < DAD_UNTIL)
        .count();
    ensure(last_hour > 0, || "DAD given up during the attack".into())?;
    let failed: Vec<String> = o
        .world
        .audit
        .iter()
        .filter(|(_, e)| matches!(e, AuditEvent::Link(LinkEvent::Ipv6DadFailed { .. })))
        .map(|(_, e)| e.to_string())
        .collect();
    ensure(
        !failed.is_empty()
            && failed
                .iter()
                .all(|t| t.contains("starts over") && !t.contains("stays off")),
        || format!("BL1103 must say DAD starts over: {failed:?}"),
    )?;
    // After the rogue: DAD passes within a minute, on a stable identifier.
    let (bound_at, addr) = o
        .world
        .audit
        .iter()
        .find_map(|(at, e)| match e {
            AuditEvent::Link(LinkEvent::Ipv6Bound { addr }) => Some((*at, *addr)),
            _ => None,
        })
        .ok_or("IPv6 never bound after the rogue stopped")?;
    ensure(bound_at >= DAD_UNTIL, || {
        format!("IPv6 bound at {bound_at} during the attack")
    })?;
    // By the claim's own retry: at most one pause and one attempt after the
    // rogue's last answer, whatever the policy is doing.
    let dad_by = DAD_RETRY_INTERVAL + MAX_RTR_SOLICITATION_DELAY + RETRANS_TIMER;
    ensure(bound_at - DAD_UNTIL <= dad_by, || {
        format!(
            "DAD passed {} after the rogue stopped (by {dad_by})",
            bound_at - DAD_UNTIL
        )
    })?;
    ensure(four.contains(&addr), || {
        format!("{addr} is not a stable identifier")
    })
}

/// A BMC with IPv6 only on its USBNIC.
fn ipv6_only_bmc() -> BmcConfig {
    BmcConfig {
        ipv4: None,
        ..plain_bmc()
    }
}

pub(super) fn dad_answered_run() -> Outcome {
    let mut world = World::new(ipv6_only_bmc(), 62);
    world.add_rogue(dad_rogue());
    run_world(world, config(), DAD_UNTIL.secs() + AFTER)
}

pub(super) fn dad_answered_check(o: &Outcome) -> Result<(), String> {
    dad_attack_checks(o)?;
    // IPv4 is not stopped: it is tried to the end of the attack.
    let v4_late = o
        .agent_ipv4_attempts()
        .iter()
        .any(|at| *at > DAD_UNTIL - Duration::from_secs(120) && *at < DAD_UNTIL);
    ensure(v4_late, || "IPv4 no longer tried during the attack".into())?;
    // The session is back over IPv6 within a minute after the rogue stops.
    let back = sessions_after(o, DAD_UNTIL);
    let (at, family) = *back.first().ok_or("no session after the rogue stopped")?;
    ensure(
        family == Family::V6 && at - DAD_UNTIL <= Duration::from_secs(60),
        || {
            format!(
                "session over {family} {} after the rogue stopped",
                at - DAD_UNTIL
            )
        },
    )?;
    ensure(o.sessions().len() == 1, || {
        format!("sessions {:?}", o.sessions())
    })?;
    // Line by line: the IPv4 claim binds and is recorded (BL1001, BL4001
    // the plain channel, BL3003), IPv4 reaches no BMC (BL3004, once per
    // outage); then for the hour, DAD cycles: IDGEN_RETRIES + 1 duplicates
    // (BL1102) and the failure that names the restart (BL1103), with the
    // policy's backoff (BL3009) until its ceiling; the last cycle may be
    // cut short when the rogue stops; then the address (BL1101), the IPv6
    // session (BL2001) with its P10 limits (BL3012: the session runs over
    // IPv6 although the host holds an IPv4 address) and the BYE at the end
    // of the run (BL2002).
    let (min, max) = dad_cycles();
    audit_lines(
        o,
        &[
            Line::Id("BL1001", 1, 1),
            Line::Id("BL4001", 1, 1),
            Line::Id("BL3003", 1, 1),
            Line::Id("BL3004", 1, 1),
            Line::Repeat(
                &[("BL1102", 4, 4), ("BL1103", 1, 1), ("BL3009", 0, 1)],
                min,
                max,
            ),
            Line::Id("BL1102", 0, 3),
            Line::Id("BL1101", 1, 1),
            Line::Id("BL2001", 1, 1),
            Line::Id("BL3012", 1, 1),
            Line::Id("BL2002", 1, 1),
        ],
    )
}

/// How many whole DAD cycles fit in the hour: each is IDGEN_RETRIES + 1
/// attempts answered at once (0..1 s delay, IDGEN_DELAY between them), then
/// DAD_RETRY_INTERVAL.
fn dad_cycles() -> (usize, usize) {
    let tries = u64::from(IDGEN_RETRIES) + 1;
    let short = DAD_RETRY_INTERVAL.secs() + (tries - 1);
    let long = DAD_RETRY_INTERVAL.secs() + 2 * tries;
    let hour = DAD_UNTIL.secs() as u64;
    ((hour / long) as usize - 1, (hour / short) as usize + 1)
}

pub(super) fn dad_spares_ipv4_run() -> Outcome {
    let mut world = World::new(plain_bmc(), 63);
    world.add_rogue(dad_rogue());
    let cfg = Config {
        race: true,
        ..config()
    };
    run_world(world, cfg, DAD_UNTIL.secs() + AFTER)
}

pub(super) fn dad_spares_ipv4_check(o: &Outcome) -> Result<(), String> {
    dad_attack_checks(o)?;
    // One IPv4 session for the whole run: the IPv6 rogue never ends it.
    ensure(o.families() == [Family::V4], || {
        format!("one IPv4 session expected: {:?}", o.sessions())
    })?;
    // Line by line: IPv6 starts 250 ms in (race) and meets the rogue (a
    // DAD cycle: BL1102 ×4, BL1103) before IPv4 is up (BL1001, BL4001,
    // BL3003, BL2001); then only DAD cycles for the hour, nothing about the
    // IPv4 session; DAD passes after the rogue stops (BL1101), and the only
    // end of session is the BYE when the run stops (BL2002).
    let (min, max) = dad_cycles();
    audit_lines(
        o,
        &[
            Line::Id("BL1102", 4, 4),
            Line::Id("BL1103", 1, 1),
            Line::Id("BL1001", 1, 1),
            Line::Id("BL4001", 1, 1),
            Line::Id("BL3003", 1, 1),
            Line::Id("BL2001", 1, 1),
            Line::Repeat(&[("BL1102", 4, 4), ("BL1103", 1, 1)], min - 1, max),
            Line::Id("BL1102", 0, 3),
            Line::Id("BL1101", 1, 1),
            Line::Id("BL2002", 1, 1),
        ],
    )
}
