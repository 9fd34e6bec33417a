//! Proves the rig: `bmclink-conform`'s checks against the kernel BMC
//! (kernel TCP on loopback + the simulated BMC's rustls server and
//! responder), correct and with each [`Mutation`] (one broken rule each).
//! The correct BMC passes every check that can run over kernel sockets;
//! each broken one fails exactly the checks for its rule.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bmclink_conform::{Options, Outcome, Rig, Target, Trust, Verdict};
use bmclink_tests::bmc_tls::TlsIdentity;
use bmclink_tests::kernel_bmc::{mutant_server_config, KernelBmc, Mutation};
use bmclink_tests::BmcConfig;

/// The mutation table: each fault and the checks it must fail.
const TABLE: &[(Mutation, &[&str])] = &[
    (Mutation::PlainHelloAccepted, &["t6-plain-hello"]),
    (Mutation::AcceptTls12, &["tls13-only"]),
    (Mutation::NoClientCertRequired, &["tls-client-cert"]),
    (
        Mutation::AcceptBadProof,
        &["enroll-bad-proof", "enroll-other-bmc"],
    ),
    (Mutation::ReuseAccount, &["enroll-retired-account"]),
    (
        Mutation::SkipEnrolled,
        &["enroll-good", "enroll-idempotent"],
    ),
    (
        Mutation::ForgeEnrolled,
        &["enroll-good", "enroll-idempotent"],
    ),
    (Mutation::WelcomeUnknownCert, &["not-enrolled"]),
    (Mutation::ForgetEnrollment, &["enrolled-reconnect"]),
    (Mutation::IgnorePing, &["ping-pong"]),
    (Mutation::AckOutOfOrder, &["event-ack-order"]),
    (Mutation::NoAckForRetransmit, &["event-ack-reconnect"]),
    (Mutation::IgnoreBye, &["bye"]),
    (Mutation::AnswerUnknownVersion, &["malformed-hello-version"]),
    (Mutation::CrashOnZeroLength, &["malformed-len-0"]),
    (Mutation::Serial, &["slow-client", "many-connections"]),
    (Mutation::FallOverOnFlood, &["many-connections"]),
    (
        Mutation::SkipMalformed,
        &[
            "malformed-hello-utf8",
            "malformed-len-over",
            "malformed-unknown-type",
            "malformed-truncated",
            "malformed-overlong",
            "malformed-event-utf8",
            "malformed-len-0",
        ],
    ),
    (Mutation::AcceptReplay, &["enroll-replay"]),
    (Mutation::PresentOtherCert, &["tls-bmc-fingerprint"]),
];

/// Checks that cannot run over kernel sockets.
const LINK: &[&str] = &["link-arp", "link-ndp", "link-acd-dad", "link-host-address"];

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

struct Bmc {
    tls: KernelBmc,
    target: Target,
    trust: Trust,
}

/// A TLS-required kernel BMC on loopback (TLS and plain ports), broken by
/// `mutation`.
fn bmc(mutation: Option<Mutation>) -> Bmc {
    let id = TlsIdentity::generate(0x600d, "idrac", unix_now() - 3600, true);
    let cfg = BmcConfig {
        firmware: [3, 30, 30, 30],
        tls: true,
        credential: "k7P2-one-time-secret-9xQ".into(),
        ..BmcConfig::default()
    };
    let tls_l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let plain_l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let (tls_addr, plain_addr) = (tls_l.local_addr().unwrap(), plain_l.local_addr().unwrap());
    let server = mutant_server_config(&id, mutation).expect("server config");
    let trust = Trust {
        account: Some((cfg.account.clone(), cfg.credential.clone().into_bytes())),
        bmc_fp: Some(id.fingerprint()),
        firmware_tls: Some(true),
        identity: None,
    };
    let tls = KernelBmc::spawn_mutant(
        tls_l,
        cfg.clone(),
        Some((server, id.fingerprint())),
        mutation,
        false,
    );
    let _plain = KernelBmc::spawn_mutant(plain_l, cfg, None, mutation, false);
    Bmc {
        tls,
        target: Target {
            tls: Some(tls_addr),
            plain: Some(plain_addr),
            no_link: "not run: --connect uses kernel sockets",
        },
        trust,
    }
}

fn opts() -> Options {
    Options {
        wait: Duration::from_secs(8),
        heartbeat: Duration::from_secs(4),
        flood: 50,
    }
}

fn run(mutation: Option<Mutation>) -> (Vec<Outcome>, String) {
    let b = bmc(mutation);
    let out = Rig::new(b.target, b.trust, opts()).run(&[], |_| {});
    let table = out
        .iter()
        .map(|o| bmclink_conform::report::row(Some(o)))
        .collect::<Vec<_>>()
        .join("\n");
    (
        out,
        format!("{table}\n--- BMC timeline ---\n{}", b.tls.timeline()),
    )
}

fn names(out: &[Outcome], v: Verdict) -> BTreeSet<&'static str> {
    out.iter()
        .filter(|o| o.verdict == v)
        .map(|o| o.check)
        .collect()
}

#[test]
fn correct_bmc_passes_every_check() {
    let (out, story) = run(None);
    assert_eq!(names(&out, Verdict::Fail), BTreeSet::new(), "{story}");
    assert_eq!(
        names(&out, Verdict::Skip),
        LINK.iter().copied().collect(),
        "{story}"
    );
    assert_eq!(out.len(), bmclink_conform::CHECKS.len());
}

fn mutant(m: Mutation) {
    let want: BTreeSet<&str> = TABLE
        .iter()
        .find(|(x, _)| *x == m)
        .map(|(_, c)| c.iter().copied().collect())
        .expect("in the table");
    let (out, story) = run(Some(m));
    assert_eq!(names(&out, Verdict::Fail), want, "{m:?}\n{story}");
    // Not run: the link checks, and after a crash whatever came later.
    let mut skipped: BTreeSet<&str> = LINK.iter().copied().collect();
    if m == Mutation::CrashOnZeroLength {
        skipped.extend(["slow-client", "many-connections"]);
    }
    assert_eq!(names(&out, Verdict::Skip), skipped, "{m:?}\n{story}");
}

#[test]
fn the_table_covers_every_mutation() {
    for m in Mutation::ALL {
        assert!(TABLE.iter().any(|(x, _)| x == m), "{m:?} not in TABLE");
    }
    for (_, checks) in TABLE {
        for c in *checks {
            assert!(bmclink_conform::checks::info(c).is_some(), "no check {c}");
        }
    }
}

/// Every check can fail: each one that runs over kernel sockets is caught
/// by at least one mutation (the link checks are broken by the netns test).
#[test]
fn every_check_is_failed_by_some_mutation() {
    for c in bmclink_conform::CHECKS {
        if LINK.contains(&c.name) {
            continue;
        }
        assert!(
            TABLE.iter().any(|(_, checks)| checks.contains(&c.name)),
            "no mutation fails {}: nothing shows it can fail",
            c.name
        );
    }
}

macro_rules! mutants {
    ($($name:ident => $m:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                mutant(Mutation::$m);
            }
        )*
    };
}

mutants! {
    mutant_plain_hello_accepted => PlainHelloAccepted,
    mutant_accept_tls12 => AcceptTls12,
    mutant_no_client_cert_required => NoClientCertRequired,
    mutant_accept_bad_proof => AcceptBadProof,
    mutant_reuse_account => ReuseAccount,
    mutant_skip_enrolled => SkipEnrolled,
    mutant_forge_enrolled => ForgeEnrolled,
    mutant_welcome_unknown_cert => WelcomeUnknownCert,
    mutant_forget_enrollment => ForgetEnrollment,
    mutant_ignore_ping => IgnorePing,
    mutant_ack_out_of_order => AckOutOfOrder,
    mutant_no_ack_for_retransmit => NoAckForRetransmit,
    mutant_ignore_bye => IgnoreBye,
    mutant_answer_unknown_version => AnswerUnknownVersion,
    mutant_crash_on_zero_length => CrashOnZeroLength,
    mutant_serial => Serial,
    mutant_fall_over_on_flood => FallOverOnFlood,
    mutant_skip_malformed => SkipMalformed,
    mutant_accept_replay => AcceptReplay,
    mutant_present_other_cert => PresentOtherCert,
}

/// README "Testing a BMC" carries the mutation table; it says what
/// `TABLE` says.
#[test]
fn the_readme_mutation_table_matches() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    for (m, checks) in TABLE {
        let row = readme
            .lines()
            .find(|l| l.starts_with(&format!("| `{m:?}` |")))
            .unwrap_or_else(|| panic!("README has no row for {m:?}"));
        let last = row
            .trim_end_matches('|')
            .rsplit('|')
            .next()
            .unwrap_or_default();
        let listed: Vec<&str> = last
            .split('(')
            .next()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .collect();
        assert_eq!(listed, checks.to_vec(), "README row for {m:?}: {row}");
    }
}
