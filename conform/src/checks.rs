//! The checks, each tied to the rule of DESIGN.md it covers, and the
//! runner that plays the host through them in a fixed order.
//!
//! Order matters on a real BMC, which cannot be reset between checks: the
//! two bad-proof enrollments run while the one-time account is still fresh
//! (a BMC may retire an account after a few bad proofs, §5a; two stay below
//! the simulated BMC's three), then the good enrollment spends it, then the
//! checks that need a spent account or an enrolled certificate. The checks
//! that may knock the BMC over (malformed frames, the slow client, the
//! flood) come last; once the BMC stops serving, the rest are not run and
//! say why.
//!
//! A check that needs an enrolled session gets one from the identity the
//! good enrollment bound: by reconnecting without ENROLL, or, if the BMC
//! refuses that, by an idempotent ENROLL (§5a), so a BMC that breaks one
//! rule fails that rule's checks and not every check after it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bmclink_core::agent::enroll;
use bmclink_core::proto::{Enroll, Message, RejectCode, PROTO_VERSION};

use crate::conn::{self, Conn, Got, Reply};
use crate::tls::{self, Identity, Offer};

/// A check: its name, the rule it covers, and what it does.
#[derive(Debug, Clone, Copy)]
pub struct CheckInfo {
    /// The name `--only` takes.
    pub name: &'static str,
    /// The rule (DESIGN.md section and row).
    pub rule: &'static str,
    /// What the check does and expects, one line.
    pub what: &'static str,
}

const fn c(name: &'static str, rule: &'static str, what: &'static str) -> CheckInfo {
    CheckInfo { name, rule, what }
}

/// Every check, in the order they run.
pub const CHECKS: &[CheckInfo] = &[
    c("link-arp", "§2 link, RFC 826", "the BMC answers ARP for its IPv4 address"),
    c("link-ndp", "§2 link, RFC 4861", "the BMC answers NDP for its IPv6 address"),
    c("link-acd-dad", "§2 link, RFC 5227/4862", "the BMC answers ACD and DAD probes for its own addresses (defends them)"),
    c("link-host-address", "§2 link, RFC 5227/4862", "the BMC never claims the host's addresses (probes for them go unanswered)"),
    c("t6-plain-hello", "§4 T6", "plain HELLO on TLS-required firmware gets REJECT tls-required"),
    c("tls13-only", "§4 T4", "a TLS 1.2-only ClientHello is refused"),
    c("tls-client-cert", "§4 T1", "a TLS client without a certificate is refused"),
    c("tls-bmc-fingerprint", "§5a trust", "the BMC presents the certificate whose fingerprint was given"),
    c("enroll-bad-proof", "§5a enrollment", "ENROLL with a wrong proof gets REJECT bad-credential"),
    c("enroll-other-bmc", "§5a enrollment (MITM)", "ENROLL with a proof bound to another BMC certificate gets REJECT bad-credential"),
    c("enroll-good", "§5a enrollment", "a good ENROLL gets ENROLLED with the correct BMC proof, then WELCOME"),
    c("enroll-replay", "§5a enrollment", "the same ENROLL replayed from another certificate gets REJECT bad-credential"),
    c("enroll-retired-account", "§5a one-time account", "a good proof on a used account from another certificate gets REJECT bad-credential"),
    c("enroll-idempotent", "§5a idempotent ENROLL", "the enrolled certificate's ENROLL again gets ENROLLED and WELCOME"),
    c("enrolled-reconnect", "§5 message order", "the enrolled certificate reconnects with HELLO alone and gets WELCOME"),
    c("not-enrolled", "§5 message order", "an unknown certificate's HELLO without ENROLL gets REJECT not-enrolled"),
    c("ping-pong", "§5 heartbeats", "PING gets PONG with the same seq within the heartbeat interval"),
    c("event-ack-order", "§5 events", "every EVENT gets its ACK, in order"),
    c("event-ack-reconnect", "§5 events (at least once)", "an EVENT retransmitted after a reconnect is ACKed again, and the next one too"),
    c("bye", "§5 BYE", "BYE is answered (BYE or an orderly close)"),
    c("malformed-hello-version", "§5 HELLO version", "HELLO with an unknown protocol version gets REJECT bad-version or a close"),
    c("malformed-hello-utf8", "§5 error policy", "HELLO with bad UTF-8 in a str8 closes the connection or gets REJECT; the BMC serves the next one"),
    c("malformed-len-over", "§5 error policy", "a frame of length 1025 closes the connection; the BMC serves the next one"),
    c("malformed-unknown-type", "§5 error policy", "an unknown message type closes the connection; the BMC serves the next one"),
    c("malformed-truncated", "§5 error policy", "a PING with a 3-byte body closes the connection; the BMC serves the next one"),
    c("malformed-overlong", "§5 error policy", "a PING with a 5-byte body closes the connection; the BMC serves the next one"),
    c("malformed-event-utf8", "§5 error policy", "an EVENT with bad UTF-8 in its id closes the connection; the BMC serves the next one"),
    c("malformed-len-0", "§5 error policy", "a frame of length 0 closes the connection; the BMC serves the next one"),
    c("slow-client", "§5 robustness", "a client sending one byte a second does not stall another client's session"),
    c("many-connections", "§5 robustness", "many connections at once are served or refused, and the BMC serves the next one"),
];

/// The rule of check `name`.
pub fn info(name: &str) -> Option<&'static CheckInfo> {
    CHECKS.iter().find(|c| c.name == name)
}

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The BMC follows the rule.
    Pass,
    /// The BMC departs from the rule.
    Fail,
    /// The check could not run (the evidence says why).
    Skip,
}

impl Verdict {
    /// `pass`, `FAIL`, `skip`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "FAIL",
            Verdict::Skip => "skip",
        }
    }
}

/// One check's result.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The check.
    pub check: &'static str,
    /// The rule it covers.
    pub rule: &'static str,
    /// The verdict.
    pub verdict: Verdict,
    /// What was seen, one line.
    pub evidence: String,
}

/// Where the BMC under test is.
#[derive(Debug, Clone)]
pub struct Target {
    /// The TLS channel port over kernel sockets (`None`: only the link
    /// checks can run).
    pub tls: Option<SocketAddr>,
    /// The plain channel port, if the rig should try it (T6).
    pub plain: Option<SocketAddr>,
    /// Why the link checks cannot run, when there is no link.
    pub no_link: &'static str,
}

/// What the rig is given to trust, as the agent takes it.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    /// The one-time enrollment account: name and secret.
    pub account: Option<(String, Vec<u8>)>,
    /// The BMC certificate's fingerprint (`--bmc-fingerprint` or the facts file).
    pub bmc_fp: Option<[u8; 32]>,
    /// The facts file says whether the firmware has TLS.
    pub firmware_tls: Option<bool>,
    /// An identity the BMC has already enrolled (reused for the session
    /// checks when there is no account to enroll one).
    pub identity: Option<Identity>,
}

/// How long to wait, and how hard to push.
#[derive(Debug, Clone)]
pub struct Options {
    /// The longest wait for any one reply.
    pub wait: Duration,
    /// The heartbeat interval (PONG must come within it).
    pub heartbeat: Duration,
    /// Connections opened at once by `many-connections`.
    pub flood: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            wait: Duration::from_secs(5),
            heartbeat: Duration::from_secs(10),
            flood: 50,
        }
    }
}

type Res = Result<String, (Verdict, String)>;

fn fail<T>(why: impl Into<String>) -> Result<T, (Verdict, String)> {
    Err((Verdict::Fail, why.into()))
}

fn skip<T>(why: impl Into<String>) -> Result<T, (Verdict, String)> {
    Err((Verdict::Skip, why.into()))
}

/// An enrollment attempt: the replies, the ENROLL frame sent, the
/// connection, the BMC certificate's fingerprint.
type Attempt = (Vec<Got>, Vec<u8>, Conn, [u8; 32]);

/// The good enrollment's facts, reused by the checks after it.
#[derive(Debug, Clone)]
struct Enrolled {
    id: Identity,
    /// The ENROLL frame it sent (replayed by `enroll-replay`).
    enroll: Vec<u8>,
}

/// The runner.
pub struct Rig {
    target: Target,
    tls_addr: SocketAddr,
    link: Option<crate::link::Link>,
    trust: Trust,
    opts: Options,
    enrolled: Option<Enrolled>,
    /// The account has been offered a good proof (spent, if the BMC works).
    account_spent: bool,
    /// The BMC stopped serving: since which check, and what was seen.
    down: Option<String>,
    next_seq: u32,
    last_acked: Option<u32>,
}

impl Rig {
    /// A runner for `target` with `trust` and `opts`.
    pub fn new(target: Target, trust: Trust, opts: Options) -> Rig {
        let enrolled = trust.identity.clone().map(|id| Enrolled {
            id,
            enroll: Vec::new(),
        });
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(7);
        Rig {
            tls_addr: target
                .tls
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 5443))),
            link: None,
            target,
            trust,
            opts,
            enrolled,
            account_spent: false,
            down: None,
            next_seq: (seed % 1_000_000).wrapping_mul(1000).wrapping_add(1),
            last_acked: None,
        }
    }

    /// Runs the link checks over `link` (raw frames: `--tap`, `--iface`).
    pub fn with_link(mut self, link: crate::link::Link) -> Rig {
        self.link = Some(link);
        self
    }

    fn link_check(
        &mut self,
        f: impl FnOnce(&mut crate::link::Link, Duration) -> Result<String, String>,
    ) -> Res {
        let wait = self.opts.wait;
        let Some(link) = self.link.as_mut() else {
            return skip(self.target.no_link);
        };
        f(link, wait).map_err(|e| match e.strip_prefix("skip: ") {
            Some(why) => (Verdict::Skip, why.to_string()),
            None => (Verdict::Fail, e),
        })
    }

    /// Runs the checks named in `only` (all when empty), in [`CHECKS`]
    /// order, calling `each` as each finishes.
    pub fn run(&mut self, only: &[String], mut each: impl FnMut(&Outcome)) -> Vec<Outcome> {
        let mut out = Vec::new();
        for info in CHECKS {
            if !only.is_empty() && !only.iter().any(|o| o == info.name) {
                continue;
            }
            let res = match &self.down {
                Some(since) => skip(format!("not run: the BMC stopped serving ({since})")),
                None => self.one(info.name),
            };
            let (verdict, evidence) = match res {
                Ok(e) => (Verdict::Pass, e),
                Err((v, e)) => (v, e),
            };
            let o = Outcome {
                check: info.name,
                rule: info.rule,
                verdict,
                evidence: one_line(&evidence),
            };
            each(&o);
            out.push(o);
        }
        out
    }

    fn one(&mut self, name: &str) -> Res {
        let listen = self.opts.wait.min(Duration::from_secs(3));
        match name {
            "link-arp" => return self.link_check(|l, w| l.arp(w)),
            "link-ndp" => return self.link_check(|l, w| l.ndp(w)),
            "link-acd-dad" => return self.link_check(|l, w| l.defends(w)),
            "link-host-address" => return self.link_check(|l, _| l.host_addresses(listen)),
            _ if self.target.tls.is_none() => {
                return skip("not run: the channel checks need --connect ADDR (kernel sockets to the BMC's ports)")
            }
            _ => {}
        }
        match name {
            "t6-plain-hello" => self.t6_plain_hello(),
            "tls13-only" => self.tls13_only(),
            "tls-client-cert" => self.tls_client_cert(),
            "tls-bmc-fingerprint" => self.tls_bmc_fingerprint(),
            "enroll-bad-proof" => self.enroll_bad(false),
            "enroll-other-bmc" => self.enroll_bad(true),
            "enroll-good" => self.enroll_good(),
            "enroll-replay" => self.enroll_replay(),
            "enroll-retired-account" => self.enroll_retired(),
            "enroll-idempotent" => self.enroll_idempotent(),
            "enrolled-reconnect" => self.enrolled_reconnect(),
            "not-enrolled" => self.not_enrolled(),
            "ping-pong" => self.ping_pong(),
            "event-ack-order" => self.event_ack_order(),
            "event-ack-reconnect" => self.event_ack_reconnect(),
            "bye" => self.bye(),
            "malformed-hello-version" => self.malformed_first(
                conn::hello_version(PROTO_VERSION.wrapping_add(1), true, false),
                true,
            ),
            "malformed-hello-utf8" => self.malformed_first(hello_bad_utf8(), false),
            "malformed-len-over" => {
                let mut f = vec![0x04, 0x01, 0x05];
                f.extend(std::iter::repeat_n(0u8, 1024));
                self.malformed(f, "length 1025")
            }
            "malformed-unknown-type" => self.malformed(vec![0, 1, 0x7f], "type 0x7f"),
            "malformed-truncated" => self.malformed(vec![0, 4, 0x05, 0, 0, 1], "PING, 3-byte body"),
            "malformed-overlong" => {
                self.malformed(vec![0, 6, 0x05, 0, 0, 0, 1, 0], "PING, 5-byte body")
            }
            "malformed-event-utf8" => self.malformed(
                vec![0, 10, 0x07, 0, 0, 0, 9, 1, 2, 0xff, 0xfe, 0],
                "EVENT, id bytes ff fe",
            ),
            "malformed-len-0" => self.malformed(vec![0, 0], "length 0"),
            "slow-client" => self.slow_client(),
            "many-connections" => self.many_connections(),
            other => skip(format!("no such check {other}")),
        }
    }

    fn fresh(&self, who: &str) -> Result<Identity, (Verdict, String)> {
        Identity::fresh(who).map_err(|e| (Verdict::Skip, e))
    }

    fn tls_conn(&self, id: &Identity) -> Result<Conn, (Verdict, String)> {
        Conn::tls(self.tls_addr, id, self.opts.wait).map_err(|e| (Verdict::Fail, e.text))
    }

    fn account(&self) -> Result<(String, Vec<u8>), (Verdict, String)> {
        match &self.trust.account {
            Some(a) => Ok(a.clone()),
            None => skip(
                "no enrollment account given (--account-file, or --account with --secret-file)",
            ),
        }
    }

    // --- T6, TLS -------------------------------------------------------

    fn t6_plain_hello(&mut self) -> Res {
        let Some(addr) = self.target.plain else {
            return skip("no plain port given (--plain ADDR)");
        };
        if self.trust.firmware_tls == Some(false) {
            return skip("the facts file says the firmware has no TLS: T6 does not apply");
        }
        let mut c = match Conn::plain(addr, self.opts.wait) {
            Ok(c) => c,
            Err(e) => {
                return skip(format!(
                    "the plain port {addr} does not take connections ({e}): nothing to reject"
                ))
            }
        };
        c.send(&conn::hello(false, false))
            .map_err(|e| (Verdict::Fail, format!("cannot send HELLO: {e}")))?;
        match c.recv_msg(self.opts.wait) {
            Got::Msg(Reply::Reject {
                code: RejectCode::TlsRequired,
                reason,
            }) => Ok(format!("plain HELLO: REJECT tls-required ({reason:?})")),
            other => fail(format!(
                "plain HELLO: got {other}, expected REJECT tls-required"
            )),
        }
    }

    fn tls13_only(&mut self) -> Res {
        let id = self.fresh("conform-tls12")?;
        let config =
            tls::client_config(Offer::Tls12Only, Some(&id)).map_err(|e| (Verdict::Skip, e))?;
        match Conn::tls_with(self.tls_addr, config, self.opts.wait) {
            Err(e) => Ok(format!("TLS 1.2-only ClientHello refused: {e}")),
            Ok(c) => {
                let v = c.tls_version.clone().unwrap_or_else(|| "?".into());
                c.close();
                fail(format!(
                    "the BMC completed a {v} handshake with a TLS 1.2-only client"
                ))
            }
        }
    }

    fn tls_client_cert(&mut self) -> Res {
        let config = tls::client_config(Offer::Agent, None).map_err(|e| (Verdict::Skip, e))?;
        let mut c = match Conn::tls_with(self.tls_addr, config, self.opts.wait) {
            Err(e) => {
                return Ok(format!(
                    "client without a certificate refused at the handshake: {e}"
                ))
            }
            Ok(c) => c,
        };
        // TLS 1.3: the client finishes first; the BMC's refusal is the
        // alert that follows.
        let _ = c.send(&conn::hello(true, false));
        match c.recv(self.opts.wait) {
            Got::Closed { how, .. } => Ok(format!("client without a certificate refused: {how}")),
            Got::Msg(m) => fail(format!(
                "the BMC completed a TLS session with a client that sent no certificate (answered HELLO with {m})"
            )),
            other => fail(format!(
                "the BMC kept a TLS session without a client certificate open (got {other} within {:?})",
                self.opts.wait
            )),
        }
    }

    fn tls_bmc_fingerprint(&mut self) -> Res {
        let Some(want) = self.trust.bmc_fp else {
            return skip(
                "no BMC fingerprint given (--bmc-fingerprint, or the facts file's fingerprint)",
            );
        };
        let id = self.fresh("conform-fp")?;
        let c = self.tls_conn(&id)?;
        let got = c.bmc_fp;
        c.close();
        match got {
            Some(fp) if fp == want => Ok(format!("BMC certificate {}", hex::encode(fp))),
            Some(fp) => fail(format!(
                "the BMC presented {}, the given fingerprint is {}",
                hex::encode(fp),
                hex::encode(want)
            )),
            None => fail("the BMC presented no certificate"),
        }
    }

    // --- enrollment ----------------------------------------------------

    /// Opens TLS with `id`, sends HELLO(enrolling) and the ENROLL `make`
    /// builds from (bmc_fp, client_fp); returns the replies up to WELCOME,
    /// REJECT, the close or the wait, with the ENROLL frame sent and the
    /// connection (still open after WELCOME).
    fn enroll_with(
        &self,
        id: &Identity,
        make: impl FnOnce(&[u8; 32], &[u8; 32]) -> Vec<u8>,
    ) -> Result<Attempt, (Verdict, String)> {
        let mut c = self.tls_conn(id)?;
        let Some(bmc_fp) = c.bmc_fp else {
            return fail("the BMC presented no certificate");
        };
        let frame = make(&bmc_fp, &id.fingerprint());
        let mut bytes = conn::hello(true, true);
        bytes.extend_from_slice(&frame);
        c.send(&bytes)
            .map_err(|e| (Verdict::Fail, format!("cannot send HELLO + ENROLL: {e}")))?;
        let mut got = Vec::new();
        loop {
            let g = c.recv_msg(self.opts.wait);
            let end = !matches!(g, Got::Msg(Reply::Enrolled(_)));
            got.push(g);
            if end || got.len() > 3 {
                break;
            }
        }
        Ok((got, frame, c, bmc_fp))
    }

    fn enroll_bad(&mut self, other_bmc: bool) -> Res {
        let (account, secret) = self.account()?;
        if self.account_spent {
            return skip("the account was already spent by an earlier check");
        }
        let id = self.fresh("conform-bad-proof")?;
        let (got, ..) = self.enroll_with(&id, |bmc_fp, client_fp| {
            let proof = if other_bmc {
                // The proof a relaying man in the middle would get: bound
                // to the certificate it shows the agent, not the BMC's.
                let mut other = *bmc_fp;
                other.iter_mut().for_each(|b| *b ^= 0x5a);
                enroll::host_proof(&secret, &other, client_fp)
            } else {
                let mut p = enroll::host_proof(&secret, bmc_fp, client_fp);
                p[0] ^= 0x01;
                p
            };
            enroll_frame(&account, proof)
        })?;
        let what = if other_bmc {
            "ENROLL bound to another BMC certificate"
        } else {
            "ENROLL with a wrong proof"
        };
        match got.first() {
            Some(Got::Msg(Reply::Reject {
                code: RejectCode::BadCredential,
                reason,
            })) => Ok(format!("{what}: REJECT bad-credential ({reason:?})")),
            _ => fail(format!(
                "{what}: got {}, expected REJECT bad-credential",
                seq(&got)
            )),
        }
    }

    /// Checks an ENROLLED-then-WELCOME answer; `Ok` names the session.
    fn check_enrolled(&self, got: &[Got], bmc_fp: &[u8; 32], id: &Identity, secret: &[u8]) -> Res {
        let want = enroll::bmc_proof(secret, bmc_fp, &id.fingerprint());
        match got {
            [Got::Msg(Reply::Enrolled(p)), Got::Msg(Reply::Welcome { proto, session, .. }), ..] => {
                if !enroll::proofs_equal(p, &want) {
                    fail("ENROLLED carries a wrong proof (not HMAC(secret, \"bmclink enroll bmc\" || bmc_fp || client_fp)), then WELCOME")
                } else if *proto != PROTO_VERSION {
                    fail(format!("ENROLLED ok, but WELCOME speaks protocol {proto}"))
                } else {
                    Ok(format!(
                        "ENROLLED with the correct BMC proof, then WELCOME session {session}"
                    ))
                }
            }
            [Got::Msg(Reply::Welcome { .. }), ..] => {
                fail("WELCOME without ENROLLED: the agent cannot authenticate the BMC")
            }
            _ => fail(format!("got {}, expected ENROLLED then WELCOME", seq(got))),
        }
    }

    fn enroll_good(&mut self) -> Res {
        let (account, secret) = self.account()?;
        let id = self.fresh("conform-enrolled")?;
        let (got, frame, c, bmc_fp) = self.enroll_with(&id, |bmc_fp, client_fp| {
            enroll_frame(&account, enroll::host_proof(&secret, bmc_fp, client_fp))
        })?;
        c.close();
        self.account_spent = true;
        let welcomed = got
            .iter()
            .any(|g| matches!(g, Got::Msg(Reply::Welcome { .. })));
        if welcomed {
            self.enrolled = Some(Enrolled {
                id: id.clone(),
                enroll: frame,
            });
        }
        self.check_enrolled(&got, &bmc_fp, &id, &secret)
    }

    fn need_enrolled(&mut self) -> Result<Enrolled, (Verdict, String)> {
        if self.enrolled.is_none() && self.trust.account.is_some() && !self.account_spent {
            // --only without enroll-good: enroll first, quietly.
            if let Err((_, why)) = self.enroll_good() {
                if self.enrolled.is_none() {
                    return skip(format!(
                        "needs an enrolled certificate; enrolling one failed: {why}"
                    ));
                }
            }
        }
        match &self.enrolled {
            Some(e) => Ok(e.clone()),
            None => skip("needs an enrolled certificate (enroll-good did not get a WELCOME; or give --account-file)"),
        }
    }

    fn enroll_replay(&mut self) -> Res {
        let e = self.need_enrolled()?;
        if e.enroll.is_empty() {
            return skip("no ENROLL of this run to replay (the identity was given)");
        }
        let id = self.fresh("conform-replay")?;
        let (got, ..) = self.enroll_with(&id, |_, _| e.enroll.clone())?;
        match got.first() {
            Some(Got::Msg(Reply::Reject {
                code: RejectCode::BadCredential,
                reason,
            })) => Ok(format!(
                "replayed ENROLL: REJECT bad-credential ({reason:?})"
            )),
            _ => fail(format!(
                "replayed ENROLL from another certificate: got {}, expected REJECT bad-credential",
                seq(&got)
            )),
        }
    }

    fn enroll_retired(&mut self) -> Res {
        let (account, secret) = self.account()?;
        let _ = self.need_enrolled()?;
        let id = self.fresh("conform-retired")?;
        let (got, ..) = self.enroll_with(&id, |bmc_fp, client_fp| {
            enroll_frame(&account, enroll::host_proof(&secret, bmc_fp, client_fp))
        })?;
        match got.first() {
            Some(Got::Msg(Reply::Reject {
                code: RejectCode::BadCredential,
                reason,
            })) => Ok(format!("good proof on the spent account: REJECT bad-credential ({reason:?})")),
            _ => fail(format!(
                "good proof on the spent account from another certificate: got {}, expected REJECT bad-credential",
                seq(&got)
            )),
        }
    }

    fn enroll_idempotent(&mut self) -> Res {
        let (_, secret) = self.account()?;
        let e = self.need_enrolled()?;
        if e.enroll.is_empty() {
            return skip("no ENROLL of this run to repeat (the identity was given)");
        }
        let (got, _, c, bmc_fp) = self.enroll_with(&e.id, |_, _| e.enroll.clone())?;
        c.close();
        self.check_enrolled(&got, &bmc_fp, &e.id, &secret)
            .map(|s| format!("repeated ENROLL: {s}"))
    }

    // --- sessions ------------------------------------------------------

    /// HELLO without ENROLL from `id`; the reply.
    fn hello_only(&self, id: &Identity) -> Result<(Got, Conn), (Verdict, String)> {
        let mut c = self.tls_conn(id)?;
        c.send(&conn::hello(true, false))
            .map_err(|e| (Verdict::Fail, format!("cannot send HELLO: {e}")))?;
        let g = c.recv_msg(self.opts.wait);
        Ok((g, c))
    }

    /// An established session for the enrolled identity.
    fn session(&mut self) -> Result<Conn, (Verdict, String)> {
        let e = self.need_enrolled()?;
        let (g, c) = self.hello_only(&e.id)?;
        if matches!(g, Got::Msg(Reply::Welcome { .. })) {
            return Ok(c);
        }
        c.close();
        if !e.enroll.is_empty() {
            // The BMC forgot the enrollment (enrolled-reconnect says so):
            // the agent would enroll again, idempotently.
            let (got, _, c, _) = self.enroll_with(&e.id, |_, _| e.enroll.clone())?;
            if got
                .iter()
                .any(|g| matches!(g, Got::Msg(Reply::Welcome { .. })))
            {
                return Ok(c);
            }
        }
        fail(format!(
            "cannot open a session for the enrolled certificate: HELLO got {g}"
        ))
    }

    fn enrolled_reconnect(&mut self) -> Res {
        let e = self.need_enrolled()?;
        let (g, c) = self.hello_only(&e.id)?;
        c.close();
        match g {
            Got::Msg(Reply::Welcome { session, .. }) => {
                Ok(format!("HELLO alone: WELCOME session {session}"))
            }
            other => fail(format!(
                "the enrolled certificate's HELLO got {other}, expected WELCOME"
            )),
        }
    }

    fn not_enrolled(&mut self) -> Res {
        let id = self.fresh("conform-stranger")?;
        let (g, c) = self.hello_only(&id)?;
        c.close();
        match g {
            Got::Msg(Reply::Reject {
                code: RejectCode::NotEnrolled,
                reason,
            }) => Ok(format!(
                "unknown certificate: REJECT not-enrolled ({reason:?})"
            )),
            other => fail(format!(
                "an unknown certificate's HELLO got {other}, expected REJECT not-enrolled"
            )),
        }
    }

    fn ping_pong(&mut self) -> Res {
        let mut c = self.session()?;
        let seq = self.take_seqs(1) ^ 0x5a00_0000;
        let start = Instant::now();
        c.send(&conn::frame(&Message::Ping(seq)))
            .map_err(|e| (Verdict::Fail, format!("cannot send PING: {e}")))?;
        let g = c.recv_msg(self.opts.heartbeat);
        let took = start.elapsed();
        c.close();
        match g {
            Got::Msg(Reply::Pong(s)) if s == seq => Ok(format!(
                "PING {seq}: PONG {s} after {} ms",
                took.as_millis()
            )),
            Got::Msg(Reply::Pong(s)) => fail(format!("PING {seq}: PONG {s} (another seq)")),
            other => fail(format!(
                "PING {seq}: got {other} within the heartbeat interval ({} s)",
                self.opts.heartbeat.as_secs()
            )),
        }
    }

    fn take_seqs(&mut self, n: u32) -> u32 {
        let s = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(n);
        s
    }

    /// Collects `n` ACKs (stops at anything else).
    fn acks(&self, c: &mut Conn, n: usize) -> (Vec<u32>, Option<Got>) {
        let mut acks = Vec::new();
        while acks.len() < n {
            match c.recv_msg(self.opts.wait) {
                Got::Msg(Reply::Ack(s)) => acks.push(s),
                other => return (acks, Some(other)),
            }
        }
        (acks, None)
    }

    fn event_ack_order(&mut self) -> Res {
        let mut c = self.session()?;
        let first = self.take_seqs(4);
        let seqs: Vec<u32> = (0..4).map(|i| first.wrapping_add(i)).collect();
        let bytes: Vec<u8> = seqs.iter().flat_map(|s| conn::event(*s)).collect();
        c.send(&bytes)
            .map_err(|e| (Verdict::Fail, format!("cannot send EVENTs: {e}")))?;
        let (acks, stop) = self.acks(&mut c, seqs.len());
        c.close();
        if acks == seqs {
            self.last_acked = seqs.last().copied();
            return Ok(format!("EVENT {seqs:?}: ACK {acks:?}"));
        }
        let tail = stop.map(|g| format!(", then {g}")).unwrap_or_default();
        fail(format!("EVENT {seqs:?} in one write: ACK {acks:?}{tail}"))
    }

    fn event_ack_reconnect(&mut self) -> Res {
        let last = match self.last_acked {
            Some(s) => s,
            None => {
                // Deliver one first, ACKed on a connection of its own.
                let mut c = self.session()?;
                let s = self.take_seqs(1);
                c.send(&conn::event(s))
                    .map_err(|e| (Verdict::Fail, format!("cannot send EVENT: {e}")))?;
                let (acks, stop) = self.acks(&mut c, 1);
                c.close();
                if acks != [s] {
                    return fail(format!(
                        "EVENT {s}: ACK {acks:?} {}",
                        stop.map(|g| g.to_string()).unwrap_or_default()
                    ));
                }
                s
            }
        };
        let mut c = self.session()?;
        let mut seen = Vec::new();
        let next = self.take_seqs(1);
        for s in [last, next] {
            c.send(&conn::event(s))
                .map_err(|e| (Verdict::Fail, format!("cannot send EVENT: {e}")))?;
            let (acks, stop) = self.acks(&mut c, 1);
            seen.extend(acks.iter().copied());
            if acks != [s] {
                c.close();
                let what = if s == last {
                    format!(
                        "EVENT {s} retransmitted after a reconnect (ACKed on the last connection)"
                    )
                } else {
                    format!("EVENT {s} after the retransmission")
                };
                return fail(format!(
                    "{what}: ACK {acks:?}{}",
                    stop.map(|g| format!(", then {g}")).unwrap_or_default()
                ));
            }
        }
        c.close();
        Ok(format!(
            "after a reconnect: EVENT {last} again, then {next}: ACK {seen:?}"
        ))
    }

    fn bye(&mut self) -> Res {
        let mut c = self.session()?;
        c.send(&conn::frame(&Message::Bye(0)))
            .map_err(|e| (Verdict::Fail, format!("cannot send BYE: {e}")))?;
        let mut said = Vec::new();
        loop {
            match c.recv(self.opts.wait) {
                Got::Msg(Reply::Bye(r)) => said.push(format!("BYE {r}")),
                Got::Closed { how, .. } => {
                    said.push(format!("close ({how})"));
                    return Ok(format!("BYE 0: {}", said.join(", ")));
                }
                Got::Timeout if !said.is_empty() => {
                    return Ok(format!("BYE 0: {} (connection left open)", said.join(", ")))
                }
                other => {
                    c.close();
                    return fail(format!(
                        "BYE 0: got {other} within {:?}, expected BYE or a close",
                        self.opts.wait
                    ));
                }
            }
        }
    }

    // --- malformed input ----------------------------------------------

    /// After `bytes` the BMC must close (or REJECT); is it still serving?
    fn expect_close(
        &mut self,
        c: &mut Conn,
        what: &str,
        hello_reject_ok: bool,
    ) -> Result<String, (Verdict, String)> {
        let g = c.recv_msg(self.opts.wait);
        let first = match g {
            Got::Closed { how, .. } => format!("closed ({how})"),
            Got::Msg(Reply::Reject { code, reason }) => {
                if hello_reject_ok && code != RejectCode::BadVersion {
                    return fail(format!("{what}: REJECT {code}, expected bad-version"));
                }
                format!("REJECT {code} ({reason:?})")
            }
            Got::Timeout => {
                return fail(format!(
                    "{what}: the connection stayed open with no answer for {:?}",
                    self.opts.wait
                ))
            }
            other => {
                return fail(format!(
                    "{what}: answered with {other}, expected a close or REJECT"
                ))
            }
        };
        Ok(first)
    }

    fn still_serving(&mut self, first: String, what: &str) -> Res {
        match self.session() {
            Ok(c) => {
                c.close();
                Ok(format!("{what}: {first}; the next connection got WELCOME"))
            }
            Err((_, why)) => {
                self.down = Some(format!("since {what}: {why}"));
                fail(format!(
                    "{what}: {first}; then the BMC did not serve the next connection: {why}"
                ))
            }
        }
    }

    fn malformed_first(&mut self, bytes: Vec<u8>, version: bool) -> Res {
        let e = self.need_enrolled()?;
        let mut c = self.tls_conn(&e.id)?;
        let what = if version {
            format!(
                "HELLO with protocol version {}",
                PROTO_VERSION.wrapping_add(1)
            )
        } else {
            "HELLO with bad UTF-8 in hostname".to_string()
        };
        c.send(&bytes)
            .map_err(|e| (Verdict::Fail, format!("cannot send: {e}")))?;
        let first = self.expect_close(&mut c, &what, version)?;
        c.close();
        self.still_serving(first, &what)
    }

    fn malformed(&mut self, bytes: Vec<u8>, what: &str) -> Res {
        let mut c = self.session()?;
        c.send(&bytes)
            .map_err(|e| (Verdict::Fail, format!("cannot send: {e}")))?;
        let first = self.expect_close(&mut c, what, false)?;
        c.close();
        self.still_serving(first, what)
    }

    // --- load ------------------------------------------------------------

    fn slow_client(&mut self) -> Res {
        let e = self.need_enrolled()?;
        // A ClientHello, one byte a second, from a client that never
        // finishes; meanwhile a normal session must come up.
        let hello = client_hello_bytes(&e.id).map_err(|e| (Verdict::Skip, e))?;
        let addr = self.tls_addr;
        let mut slow = std::net::TcpStream::connect_timeout(&addr, self.opts.wait)
            .map_err(|e| (Verdict::Fail, format!("cannot connect: {e}")))?;
        let _ = slow.set_nodelay(true);
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicUsize::new(0));
        let budget = (self.opts.wait.as_secs() as usize + 3).min(hello.len());
        let trickle = {
            let (stop, sent) = (Arc::clone(&stop), Arc::clone(&sent));
            std::thread::spawn(move || {
                use std::io::Write;
                for b in hello.iter().take(budget) {
                    if stop.load(Ordering::SeqCst) || slow.write_all(&[*b]).is_err() {
                        break;
                    }
                    sent.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_secs(1));
                }
                let _ = slow.shutdown(std::net::Shutdown::Both);
            })
        };
        // Let the BMC take the first bytes of the slow one.
        while sent.load(Ordering::SeqCst) < 2 && !trickle.is_finished() {
            std::thread::sleep(Duration::from_millis(50));
        }
        let start = Instant::now();
        let res = self.session();
        let took = start.elapsed();
        let during = sent.load(Ordering::SeqCst);
        let finished = trickle.is_finished();
        stop.store(true, Ordering::SeqCst);
        let _ = trickle.join();
        match res {
            Ok(c) if !finished => {
                c.close();
                Ok(format!(
                    "WELCOME after {} ms while another client had sent {during} bytes at 1 byte/s",
                    took.as_millis()
                ))
            }
            Ok(c) => {
                c.close();
                fail(format!(
                    "WELCOME only after {} ms, once the client sending 1 byte/s had given up ({during} bytes)",
                    took.as_millis()
                ))
            }
            Err((_, why)) => fail(format!(
                "while a client sent 1 byte/s ({during} bytes), after {} ms: {why}",
                took.as_millis()
            )),
        }
    }

    fn many_connections(&mut self) -> Res {
        let e = self.need_enrolled()?;
        let n = self.opts.flood;
        let addr = self.tls_addr;
        let wait = self.opts.wait;
        // Every connection stays open until all have their answer, so the
        // BMC holds all of them at once.
        let all = Arc::new(std::sync::Barrier::new(n));
        let threads: Vec<_> = (0..n)
            .map(|_| {
                let (id, all) = (e.id.clone(), Arc::clone(&all));
                std::thread::spawn(move || -> &'static str {
                    let (what, c) = match Conn::tls(addr, &id, wait) {
                        Err(e) if e.timed_out => ("not answered", None),
                        Err(_) => ("refused", None),
                        Ok(mut c) => {
                            let what = match c.send(&conn::hello(true, false)) {
                                Err(_) => "refused",
                                Ok(()) => match c.recv_msg(wait) {
                                    Got::Msg(Reply::Welcome { .. }) => "served",
                                    Got::Msg(_) => "rejected",
                                    Got::Closed { .. } => "refused",
                                    Got::Timeout => "not answered",
                                    Got::Malformed(_) => "malformed",
                                },
                            };
                            (what, Some(c))
                        }
                    };
                    all.wait();
                    if let Some(c) = c {
                        c.close();
                    }
                    what
                })
            })
            .collect();
        let mut tally = std::collections::BTreeMap::<&str, usize>::new();
        for t in threads {
            *tally
                .entry(t.join().unwrap_or("rig thread failed"))
                .or_default() += 1;
        }
        let summary = tally
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect::<Vec<_>>()
            .join(", ");
        if tally.contains_key("malformed") || tally.contains_key("not answered") {
            return fail(format!(
                "{n} connections at once: {summary} (each must be served, rejected or refused within {wait:?})"
            ));
        }
        let what = format!("{n} connections at once: {summary}");
        match self.session() {
            Ok(c) => {
                c.close();
                Ok(format!("{what}; then a session got WELCOME"))
            }
            Err((_, why)) => {
                self.down = Some("after many-connections".into());
                fail(format!(
                    "{what}; then the BMC did not serve the next connection: {why}"
                ))
            }
        }
    }
}

fn enroll_frame(account: &str, proof: [u8; 32]) -> Vec<u8> {
    conn::frame(&Message::Enroll(Enroll { account, proof }))
}

/// HELLO whose hostname is the bytes ff fe (not UTF-8).
fn hello_bad_utf8() -> Vec<u8> {
    let mut body = vec![0x01, PROTO_VERSION, 1, b'x', 2, 0xff, 0xfe, 4, 0x01];
    let len = u16::try_from(body.len()).unwrap_or(0).to_be_bytes();
    body.splice(0..0, len);
    body
}

/// The first flight rustls would send with the agent's offer.
fn client_hello_bytes(id: &Identity) -> Result<Vec<u8>, String> {
    let config = tls::client_config(Offer::Agent, Some(id))?;
    let mut conn =
        rustls::ClientConnection::new(config, tls::server_name()).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out).map_err(|e| e.to_string())?;
    }
    Ok(out)
}

fn seq(got: &[Got]) -> String {
    if got.is_empty() {
        return "nothing".into();
    }
    got.iter()
        .map(|g| g.to_string())
        .collect::<Vec<_>>()
        .join(", then ")
}

fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}
