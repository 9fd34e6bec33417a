//! The audit stream says what happened (issue 19, item 3): scenarios whose
//! audit log used to say something else, each checked line by line.
//!
//! - a pinned BMC that reboots with another certificate: the lost session
//!   names the port it ran on (it said "port 0", read from a closed
//!   socket), and each refused certificate (BL4002) stands alone, with no
//!   "TCP connection failed" (BL2006) beside it;
//! - a stop after the TLS handshake but before WELCOME: BYE and
//!   close_notify go out, and no "session ended" (BL2002) is audited for a
//!   session that never started;
//! - a BMC whose TLS port refuses connections while TLS is expected: said
//!   once per outage (BL2007), and the stop at the end audits no session;
//! - the host's IPv4 configuration vanishing (P3, BL3002: IPv4 stays
//!   disconnected) while a squatter keeps the recorded address's claim
//!   backing off: the claim stops, so no BL1002 "probing it again" and no
//!   ARP probe follow BL3002.

use bmclink_core::audit::{AuditEvent, SessionEvent};
use smoltcp::time::{Duration, Instant};

use super::attacks::{audit_lines, Line, ATTACK_FROM};
use super::rows::{ensure, preferred, with_record};
use super::{config, run_world, Outcome};
use crate::bmc::BmcConfig;
use crate::rogue::{RogueConfig, Squat};
use crate::run_agent;
use crate::timeline;
use crate::world::World;

/// The BMC's timeline lines that contain `text`.
fn bmc_said(o: &Outcome, text: &str) -> usize {
    o.lines
        .iter()
        .filter(|l| l.who == "bmc" && l.text.contains(text))
        .count()
}

// ---- a pinned BMC comes back with another certificate -------------------

/// When the BMC reboots presenting another certificate.
const IMPOSTOR_AT: i64 = 40;

pub(super) fn pin_mismatch_run() -> Outcome {
    timeline::take();
    let mut world = World::new(BmcConfig::default(), 13);
    // Enroll and pin; the run ends with a stop (BL2002 for that session).
    if let Err(e) = run_agent(&mut world, config(), Instant::from_secs(30)) {
        timeline::emit("sim", format!("the agent could not start: {e:?}"));
    }
    world.at(Instant::from_secs(IMPOSTOR_AT), |w| {
        w.bmc.cfg.impostor_cert = true;
        let now = w.clock.now();
        w.bmc.reboot(now);
    });
    if let Err(e) = run_agent(&mut world, config(), Instant::from_secs(100)) {
        timeline::emit("sim", format!("the agent could not start: {e:?}"));
    }
    Outcome {
        world,
        lines: timeline::take(),
        first: None,
    }
}

pub(super) fn pin_mismatch_check(o: &Outcome) -> Result<(), String> {
    // Line by line: the first run claims (BL1001, BL3003), enrolls
    // (BL4006), runs a session (BL2001) ended by the stop (BL2002); the
    // second starts on the recorded address (BL1001) and a session
    // (BL2001) that the BMC's reboot cuts (BL2006, with backoff BL3009);
    // from then on every attempt meets the other certificate (BL4002, once
    // per family and round) and nothing else: IPv4 gives way to IPv6
    // (BL3004, BL1101) and the rounds back off (BL3009).
    audit_lines(
        o,
        &[
            Line::Id("BL1001", 1, 1),
            Line::Id("BL3003", 1, 1),
            Line::Id("BL4006", 1, 1),
            Line::Id("BL2001", 1, 1),
            Line::Id("BL2002", 1, 1),
            Line::Id("BL1001", 1, 1),
            Line::Id("BL2001", 1, 1),
            Line::Id("BL2006", 1, 1),
            Line::Id("BL3009", 1, 1),
            Line::Id("BL4002", 1, 1),
            Line::Id("BL3004", 1, 1),
            Line::Id("BL1101", 1, 1),
            Line::Repeat(&[("BL4002", 1, 2), ("BL3009", 0, 1)], 3, 20),
        ],
    )?;
    for (at, e) in &o.world.audit {
        if let AuditEvent::Session(SessionEvent::ConnectFailed { port, .. }) = e {
            ensure(*port == config().tls_port, || {
                format!("BL2006 at {at} names port {port}, not the TLS port")
            })?;
        }
    }
    Ok(())
}

// ---- stopped after the handshake, before WELCOME -----------------------

pub(super) fn stop_before_welcome_run() -> Outcome {
    let world = World::new(
        BmcConfig {
            withhold_welcome: true,
            ..BmcConfig::default()
        },
        21,
    );
    let mut cfg = config();
    // The stop at 20 s falls while the agent still waits for WELCOME.
    cfg.welcome_timeout = Duration::from_secs(60);
    run_world(world, cfg, 20)
}

pub(super) fn stop_before_welcome_check(o: &Outcome) -> Result<(), String> {
    // The claim (BL1001, BL3003) and the enrollment (BL4006: ENROLLED came,
    // WELCOME never did); the stop audits no session (no BL2002).
    audit_lines(
        o,
        &[
            Line::Id("BL1001", 1, 1),
            Line::Id("BL3003", 1, 1),
            Line::Id("BL4006", 1, 1),
        ],
    )?;
    ensure(bmc_said(o, "withholding WELCOME") == 1, || {
        "the BMC never got to withhold WELCOME".into()
    })?;
    ensure(bmc_said(o, "<- BYE reason 0") == 1, || {
        format!(
            "BYE (shutdown) expected at the stop:\n{}",
            o.timeline_text()
        )
    })?;
    ensure(bmc_said(o, "<- close_notify") == 1, || {
        format!(
            "close_notify expected after the BYE:\n{}",
            o.timeline_text()
        )
    })
}

// ---- the TLS port refuses while TLS is expected -------------------------

pub(super) fn tls_port_refused_run() -> Outcome {
    let world = World::new(
        BmcConfig {
            // Listens elsewhere: the agent's TLS port answers with RST.
            tls_port: 5999,
            ..BmcConfig::default()
        },
        14,
    );
    run_world(world, config(), 90)
}

pub(super) fn tls_port_refused_check(o: &Outcome) -> Result<(), String> {
    // The claim (BL1001, BL3003); the refused TLS port, said once for the
    // whole outage (BL2007); IPv4 gives way to IPv6 (BL3004, BL1101), which
    // is refused too, and the rounds back off (BL3009) until the stop,
    // which audits no session.
    audit_lines(
        o,
        &[
            Line::Id("BL1001", 1, 1),
            Line::Id("BL3003", 1, 1),
            Line::Id("BL2007", 1, 1),
            Line::Id("BL3004", 1, 1),
            Line::Id("BL1101", 1, 1),
            Line::Id("BL3009", 4, 12),
        ],
    )?;
    let port = o.world.audit.iter().find_map(|(_, e)| match e {
        AuditEvent::Session(SessionEvent::TlsPortRefused { port, .. }) => Some(*port),
        _ => None,
    });
    ensure(port == Some(config().tls_port), || {
        format!("BL2007 names port {port:?}")
    })
}

// ---- P3 blocks IPv4 while its claim backs off ---------------------------

/// When the host's own IPv4 on the USBNIC vanishes.
const HOST_IPV4_GONE: i64 = 95;

pub(super) fn blocked_claim_run() -> Outcome {
    let mut world = World::new(BmcConfig::default(), 61);
    with_record(&mut world, preferred());
    world.host.ipv4_present = true;
    world.add_rogue(RogueConfig {
        squats_ipv4: Some(Squat {
            addr: preferred(),
            from: ATTACK_FROM,
            until: Instant::from_secs(400),
            every: Duration::from_secs(2),
        }),
        ..RogueConfig::default()
    });
    world.at(Instant::from_secs(HOST_IPV4_GONE), |w| {
        w.host.ipv4_present = false;
    });
    run_world(world, config(), 200)
}

pub(super) fn blocked_claim_check(o: &Outcome) -> Result<(), String> {
    // Line by line: the recorded address (BL1001), enrollment (BL4006) and
    // the session (BL2001); the squatter: defended (BL1003), given up
    // (BL1004), the session ends (BL2002); the same address probed again
    // and taken (BL1002, up to MAX_CONFLICTS, then BL1005 and BL3015), IPv6
    // (BL3004, BL1101, BL2001 with its P10 limits BL3012); the claim's
    // rate-limited attempts once a minute (BL1002 BL1005); then the host's
    // IPv4 vanishes (BL3002) and nothing more about IPv4 until the stop
    // ends the IPv6 session (BL2002).
    audit_lines(
        o,
        &[
            Line::Id("BL1001", 1, 1),
            Line::Id("BL4006", 1, 1),
            Line::Id("BL2001", 1, 1),
            Line::Id("BL1003", 1, 1),
            Line::Id("BL1004", 1, 1),
            Line::Id("BL2002", 1, 1),
            Line::Id("BL1002", 1, 10),
            Line::Id("BL1005", 1, 1),
            Line::Id("BL3015", 1, 1),
            Line::Id("BL3004", 1, 1),
            Line::Id("BL1101", 1, 1),
            Line::Id("BL2001", 1, 1),
            Line::Id("BL3012", 1, 1),
            Line::Repeat(&[("BL1002", 1, 1), ("BL1005", 1, 1)], 0, 2),
            Line::Id("BL3002", 1, 1),
            Line::Id("BL2002", 1, 1),
        ],
    )?;
    let blocked = o
        .first_at("BL3002")
        .ok_or_else(|| "no BL3002".to_string())?;
    let probes: Vec<_> = o
        .agent_probes()
        .into_iter()
        .filter(|(at, _)| *at > blocked)
        .collect();
    ensure(probes.is_empty(), || {
        format!("ARP probes after BL3002 (IPv4 stays off): {probes:?}")
    })
}

// ---- deadlines: WELCOME, and ACD defence while a handshake waits ----------

pub(super) fn welcome_deadline_run() -> Outcome {
    let world = World::new(
        BmcConfig {
            withhold_welcome: true,
            ..BmcConfig::default()
        },
        22,
    );
    run_world(world, config(), 40)
}

pub(super) fn welcome_deadline_check(o: &Outcome) -> Result<(), String> {
    // The claim (BL1001, BL3003) and the enrollment (BL4006: ENROLLED came,
    // WELCOME never does); each connection then ends at the WELCOME
    // deadline (BL2008), never as a failed TCP connection (BL2006): IPv4
    // first, then IPv6 (BL3004, BL1101), rounds with backoff (BL3009).
    audit_lines(
        o,
        &[
            Line::Id("BL1001", 1, 1),
            Line::Id("BL3003", 1, 1),
            Line::Id("BL4006", 1, 1),
            Line::Id("BL2008", 1, 1),
            Line::Id("BL3004", 1, 1),
            Line::Id("BL1101", 1, 1),
            Line::Repeat(&[("BL2008", 1, 2), ("BL3009", 0, 1)], 2, 10),
        ],
    )?;
    // Each deadline is the configured one after its HELLO.
    let hellos: Vec<Instant> = o
        .lines
        .iter()
        .filter(|l| l.who == "bmc" && l.text.contains("withholding WELCOME"))
        .map(|l| l.at)
        .collect();
    let timeouts = o.times("BL2008");
    let limit = config().welcome_timeout;
    for (h, t) in hellos.iter().zip(&timeouts) {
        ensure(
            *t >= *h && *t - *h <= limit + Duration::from_millis(50),
            || format!("HELLO answered by nothing at {h}, deadline audited at {t} (limit {limit})"),
        )?;
    }
    Ok(())
}

/// When the rogue announces the host's address, during the first handshake.
const CLAIM_DURING_HANDSHAKE: i64 = 9;

pub(super) fn defence_during_handshake_run() -> Outcome {
    let mut world = World::new(
        BmcConfig {
            // The TLS port holds the handshake open, a byte every 9 s.
            tls_trickle: Some(Duration::from_secs(9)),
            ..BmcConfig::default()
        },
        23,
    );
    world.add_rogue(RogueConfig {
        squats_ipv4: Some(Squat {
            addr: preferred(),
            from: Instant::from_secs(CLAIM_DURING_HANDSHAKE),
            until: Instant::from_secs(CLAIM_DURING_HANDSHAKE + 1),
            every: Duration::from_secs(2),
        }),
        ..RogueConfig::default()
    });
    run_world(world, config(), 30)
}

pub(super) fn defence_during_handshake_check(o: &Outcome) -> Result<(), String> {
    let claimed = Instant::from_secs(CLAIM_DURING_HANDSHAKE);
    // RFC 5227 §2.4 (b): a conflicting ARP is defended with one
    // announcement (the squatter answering it makes the second conflict,
    // BL1004, and the claim moves on); it happens while the handshake
    // waits, not after it.
    let defended = o
        .first_at("BL1003")
        .ok_or_else(|| format!("no defence (BL1003): {:?}", o.ids()))?;
    let timed_out = o
        .first_at("BL4016")
        .ok_or_else(|| format!("the handshake never timed out: {:?}", o.ids()))?;
    ensure(defended >= claimed && defended < timed_out, || {
        format!("defended at {defended}, the handshake ended at {timed_out}")
    })?;
    let announced = o.agent_announces().into_iter().any(|(at, a)| {
        at >= claimed && at <= defended + Duration::from_millis(10) && a == preferred()
    });
    ensure(announced, || {
        format!("no defending announcement on the wire by {defended}")
    })
}
