//! The agent's control loop body: it turns what the link, the host and the
//! TCP sockets report into policy inputs, and the policy's actions into work
//! on the link, the store and the sockets. [`Control::tick`] runs once per
//! wake-up, both between sessions and inside one, so the claims keep
//! defending and the policy keeps deciding while a session is up.

use smoltcp::iface::Interface;
use smoltcp::socket::tcp;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{IpAddress, IpCidr, IpEndpoint, Ipv6Address};

use super::identity::{self, ClientIdentity, IdentityError};
use super::link::{Ipv4Mode, Link, LinkReport};
use super::net::{earliest, Net};
use super::per_family::PerFamily;
use super::status::Status;
use crate::audit::{AuditEvent, SessionEvent, StoreEvent, TlsEvent};
use crate::cert::Expiry;
use crate::config::Config;
use crate::link::discover::{Discovery, DiscoveryEvent};
use crate::link::ipv4ll::{Ipv4ClaimEvent, Ipv4ClaimState};
use crate::link::ipv6ll::{IidMode, Ipv6ClaimEvent};
use crate::platform::{HostFacts, Record};
use crate::policy::trust::{self, ClientCert, Trust, TrustFacts};
use crate::policy::{Action, Input, Policy, PolicyConfig, Startup};
use crate::records::{BmcCapsRecord, LinkRecord};
use crate::time::SaturatingAdd;
use crate::types::Family;
use crate::Platform;

/// How often the host's facts about the USBNIC are read again on a platform
/// that cannot say when they change
/// ([`HostNet::facts_changed`](crate::platform::HostNet::facts_changed) `None`).
pub const FACTS_INTERVAL: Duration = Duration::from_secs(1);
/// How often they are read again on a platform that says when they change:
/// for a change it was not told of (on Linux, `disable_ipv6` set on an
/// interface without IPv6 addresses announces nothing).
pub const FACTS_RECHECK: Duration = Duration::from_secs(60);
/// Inputs buffered between the link/sockets and the policy in one tick.
const INPUTS: usize = 16;

/// Audit events said once per outage rather than on every retry: the IDs
/// said since the last WELCOME.
type Said = heapless::Vec<u16, 8>;

/// Everything the agent decides with, apart from the network itself.
pub struct Control {
    pub(crate) policy: Policy,
    /// Per family: the deadline of a TCP connection attempt.
    pub(crate) attempts: PerFamily<Option<Instant>>,
    /// Per family: TCP is up and the policy knows it.
    pub(crate) connected: PerFamily<bool>,
    /// Per family: the policy asked to drop it while a session runs on it.
    pub(crate) disconnect: PerFamily<bool>,
    /// P3 blocked IPv4 while a session ran on it: release the claim when
    /// that session has ended ([`Action::ReleaseIpv4`]), and its last
    /// frames (BYE, the RST) have left: see [`Control::release_due`].
    pub(crate) release_v4: bool,
    /// Per family: the BMC port of the connection being made (or running),
    /// kept from the connect for the audit log (a closed socket has no
    /// remote endpoint any more).
    pub(crate) ports: PerFamily<u16>,
    /// The status pushed to the platform.
    pub(crate) status: Status,
    /// Per family: how the connection being made (or running) on it
    /// authenticates, decided when it was started.
    pub(crate) trust: PerFamily<Option<Trust>>,
    /// The client identity, loaded for TLS connections.
    pub(crate) identity: Option<ClientIdentity>,
    said: Said,
    bmc_ipv6: Option<Ipv6Address>,
    facts: HostFacts,
    facts_at: Instant,
    link_up: bool,
    inputs: heapless::Deque<Input, INPUTS>,
    mac: [u8; 6],
    /// The per-install RFC 7217 secret: read at start, made on first use
    /// when there is none.
    stable_secret: Option<[u8; 32]>,
}

impl Control {
    /// Reads the records and facts and starts the policy.
    pub fn start<P: Platform>(cfg: &Config, p: &mut P) -> Self {
        let now = p.now();
        let mut pcfg = PolicyConfig::from(cfg);
        let link_record = match load::<P, { LinkRecord::LEN }>(p, Record::Link) {
            Ok(Some(bytes)) => match LinkRecord::decode(&bytes) {
                Ok(r) => Some(r),
                Err(_) => {
                    // Never a silent reset: a corrupt link record keeps IPv4
                    // off (P3: stay disconnected on IPv4) until `link reset`.
                    corrupt(p, Record::Link);
                    pcfg.ipv4 = false;
                    None
                }
            },
            Ok(None) => None,
            Err(()) => {
                pcfg.ipv4 = false;
                None
            }
        };
        // Never a silent reset either: a secret of the wrong length (or one
        // that cannot be read) keeps IPv6 off, since a new secret would move
        // the host's stable address (RFC 7217 §5), until it is removed.
        let stable_secret = match pcfg.ipv6.then(|| load_secret(p)) {
            Some(Ok(s)) => s,
            Some(Err(())) => {
                pcfg.ipv6 = false;
                None
            }
            None => None,
        };
        let caps = match load::<P, { BmcCapsRecord::LEN }>(p, Record::BmcCaps) {
            Ok(Some(bytes)) => BmcCapsRecord::decode(&bytes).ok().or_else(|| {
                // A cache, not configuration: dropped after saying so.
                corrupt(p, Record::BmcCaps);
                None
            }),
            _ => None,
        };
        let facts = p.facts();
        let link_up = p.link_up();
        let seed = p.next_u64();
        let mut policy = Policy::new(pcfg, now, seed);
        policy.handle(
            now,
            Input::Start(Startup {
                facts,
                link_record,
                caps,
                link_up,
            }),
        );
        Control {
            policy,
            attempts: PerFamily::both(None),
            connected: PerFamily::both(false),
            disconnect: PerFamily::both(false),
            ports: PerFamily::both(0),
            release_v4: false,
            status: Status::default(),
            trust: PerFamily::both(None),
            identity: None,
            said: Said::new(),
            bmc_ipv6: cfg.bmc_ipv6,
            facts,
            facts_at: now.saturating_add(FACTS_INTERVAL),
            link_up,
            inputs: heapless::Deque::new(),
            mac: p.mac(),
            stable_secret,
        }
    }

    /// The earliest instant the control loop needs to run again.
    pub fn poll_at(&self) -> Option<Instant> {
        let mut at = earliest(self.policy.next_deadline(), Some(self.facts_at));
        for a in self.attempts.iter() {
            at = earliest(at, *a);
        }
        at
    }

    fn input(&mut self, i: Input) {
        if self.inputs.push_back(i).is_err() {
            warn!("policy input queue full; dropping {:?}", i);
        }
    }

    /// One round: the link's carrier and the host's facts, the claims'
    /// timers and reports, the TCP attempts, then the policy and its
    /// actions.
    pub fn tick<P: Platform>(&mut self, cfg: &Config, net: &mut Net<'_, '_, P, Link>) {
        let now = net.now();
        // Before the carrier: a platform that is told of changes may take
        // the carrier's announcement here, and the carrier read after it
        // is then the new one.
        let changed = net.p.facts_changed();
        let up = net.p.link_up();
        if up != self.link_up {
            self.link_up = up;
            if up {
                info!("link up");
                self.input(Input::LinkUp);
            } else {
                info!("link down");
                net.link.stop();
                drop_addresses(net.iface);
                self.status.host_ipv4 = None;
                self.status.host_ipv6 = None;
                for f in [Family::V4, Family::V6] {
                    net.forget(f);
                    self.attempts[f] = None;
                    self.connected[f] = false;
                }
                self.input(Input::LinkDown);
            }
        }
        if changed == Some(true) || now >= self.facts_at {
            let every = match changed {
                None => FACTS_INTERVAL,
                Some(_) => FACTS_RECHECK,
            };
            self.facts_at = now.saturating_add(every);
            let facts = net.p.facts();
            if facts != self.facts {
                self.facts = facts;
                self.input(Input::HostFacts(facts));
            }
        }
        net.link.handle_timeout(now);
        while let Some(report) = net.link.poll_report() {
            self.on_link_report(now, report, net);
        }
        for f in [Family::V4, Family::V6] {
            let Some(deadline) = self.attempts[f] else {
                continue;
            };
            let state = net.tcp(f).state();
            if state == tcp::State::Established {
                info!("TCP connected over {}", f);
                self.attempts[f] = None;
                self.connected[f] = true;
                self.input(Input::TcpConnected { family: f });
            } else if state == tcp::State::Closed {
                self.attempts[f] = None;
                self.refused(now, f, net.p);
                self.trust[f] = None;
                self.input(Input::TcpRefused { family: f });
            } else if now >= deadline {
                net.abort(f);
                self.attempts[f] = None;
                self.trust[f] = None;
                self.input(Input::TcpTimedOut { family: f });
            }
        }
        self.run_policy(cfg, net);
    }

    /// Feeds queued inputs and timeouts to the policy and carries out its
    /// actions until it is quiet (bounded: actions may produce inputs).
    pub fn run_policy<P: Platform>(&mut self, cfg: &Config, net: &mut Net<'_, '_, P, Link>) {
        for _ in 0..8 {
            let now = net.now();
            while let Some(i) = self.inputs.pop_front() {
                self.policy.handle(now, i);
            }
            if self.policy.next_deadline().is_some_and(|d| d <= now) {
                self.policy.handle_timeout(now);
            }
            let mut acted = false;
            while let Some(action) = self.policy.poll_action() {
                acted = true;
                self.execute(cfg, now, action, net);
            }
            while let Some(e) = self.policy.poll_audit() {
                net.p.record(now, &AuditEvent::Policy(e));
            }
            if !acted && self.inputs.is_empty() {
                break;
            }
        }
    }

    /// Tells the policy something from outside the tick (a session's end).
    pub fn report(&mut self, i: Input) {
        self.input(i);
    }

    fn on_link_report<P: Platform>(
        &mut self,
        now: Instant,
        report: LinkReport,
        net: &mut Net<'_, '_, P, Link>,
    ) {
        match report {
            LinkReport::V4(event, _) => {
                net.p.record(now, &AuditEvent::Link(event.audit()));
                match event {
                    Ipv4ClaimEvent::Bound { addr } => {
                        add_address(net.iface, IpCidr::new(IpAddress::Ipv4(addr), 16));
                        self.status.host_ipv4 = Some(addr);
                        self.input(Input::Ipv4Claimed { addr });
                    }
                    // A conflict or a loss leaves the claim running: it moves
                    // on by itself (a recorded address is probed again, P3).
                    Ipv4ClaimEvent::Lost { addr, .. } => {
                        remove_address(net.iface, IpAddress::Ipv4(addr));
                        self.status.host_ipv4 = None;
                        self.input(Input::Ipv4Lost);
                    }
                    Ipv4ClaimEvent::RateLimited { .. } => {
                        // MAX_CONFLICTS reached: this claim is failed for the
                        // round (P4 moves on to IPv6); the claim itself keeps
                        // its rate limit and goes on in the background.
                        self.input(Input::Ipv4ClaimFailed);
                    }
                    _ => {}
                }
            }
            LinkReport::V6(event) => {
                if let Some(a) = event.audit() {
                    net.p.record(now, &AuditEvent::Link(a));
                }
                match event {
                    Ipv6ClaimEvent::Optimistic { addr } => {
                        add_address(net.iface, IpCidr::new(IpAddress::Ipv6(addr), 64));
                    }
                    Ipv6ClaimEvent::Bound { addr } => {
                        add_address(net.iface, IpCidr::new(IpAddress::Ipv6(addr), 64));
                        self.status.host_ipv6 = Some(addr);
                        self.input(Input::Ipv6Claimed);
                    }
                    Ipv6ClaimEvent::Duplicate { addr, .. } => {
                        remove_address(net.iface, IpAddress::Ipv6(addr));
                    }
                    Ipv6ClaimEvent::Lost { addr, .. } => {
                        remove_address(net.iface, IpAddress::Ipv6(addr));
                        self.status.host_ipv6 = None;
                        self.input(Input::Ipv6Lost);
                    }
                    Ipv6ClaimEvent::Failed { .. } => {
                        // The claim stays: it starts over by itself after
                        // DAD_RETRY_INTERVAL, and `StartIpv6` waits for it.
                        self.input(Input::Ipv6DadFailed);
                    }
                }
            }
            LinkReport::Discovery(DiscoveryEvent::Learned(addr)) => {
                info!("BMC IPv6 address is {}", addr);
                self.bmc_ipv6 = Some(addr);
                self.status.bmc_ipv6 = Some(addr);
                self.input(Input::BmcIpv6Learned);
            }
            LinkReport::Discovery(DiscoveryEvent::NotFound) => {
                info!("no IPv6 answer from the BMC");
                self.input(Input::BmcIpv6NotFound);
            }
        }
    }

    fn execute<P: Platform>(
        &mut self,
        cfg: &Config,
        now: Instant,
        action: Action,
        net: &mut Net<'_, '_, P, Link>,
    ) {
        debug!("policy: {:?}", action);
        match action {
            Action::ClaimIpv4 { preferred } => {
                // A rate-limited claim is not restarted: a new one would
                // forget the conflicts and bypass RATE_LIMIT_INTERVAL.
                let limited = matches!(&net.link.v4,
                    Some((c, Ipv4Mode::Fresh)) if c.state() == Ipv4ClaimState::RateLimited);
                if !limited {
                    let seed = net.p.next_u64();
                    net.link
                        .claim_ipv4(self.mac, preferred, Ipv4Mode::Fresh, seed, now);
                }
            }
            Action::UseRecordedIpv4 { addr } => {
                // A claim of this address that is still probing or waiting
                // out its rate limit is left alone: a new one would forget
                // the conflicts (RFC 5227) and answers when it binds.
                let running = matches!(&net.link.v4,
                    Some((c, Ipv4Mode::Recorded(a))) if *a == addr && c.state() != Ipv4ClaimState::Idle);
                if net.link.ipv4() == Some(addr) {
                    self.input(Input::Ipv4Claimed { addr });
                } else if !running {
                    let seed = net.p.next_u64();
                    net.link
                        .claim_ipv4(self.mac, addr, Ipv4Mode::Recorded(addr), seed, now);
                }
            }
            Action::ReleaseIpv4 => {
                if self.status.family == Some(Family::V4) {
                    // The session's BYE still needs the address: released
                    // when the session has ended.
                    self.release_v4 = true;
                } else {
                    self.release_ipv4(net);
                }
            }
            Action::UseHostIpv4 => {
                // The host OS has its own IPv4 on the USBNIC; the agent's own
                // stack still needs an address of its own, claimed with ACD
                // so the two never collide, and nothing is recorded.
                match net.link.ipv4() {
                    Some(addr) => self.input(Input::Ipv4Claimed { addr }),
                    None => {
                        let seed = net.p.next_u64();
                        let preferred = cfg.preferred_host_ipv4();
                        net.link
                            .claim_ipv4(self.mac, preferred, Ipv4Mode::Fresh, seed, now);
                    }
                }
            }
            Action::SaveLinkRecord { addr } => {
                // From now on the claimed address is the recorded one (P3):
                // losing it must not move the link to another address.
                if let Some((claim, mode)) = net.link.v4.as_mut() {
                    if claim.bound() == Some(addr) {
                        *mode = Ipv4Mode::Recorded(addr);
                        claim.keep_address();
                    }
                }
                let record = LinkRecord { ipv4: addr };
                if net.p.save(Record::Link, &record.encode()).is_err() {
                    net.p.record(
                        now,
                        &AuditEvent::Store(StoreEvent::Failed {
                            record: Record::Link,
                        }),
                    );
                }
            }
            Action::StartIpv6 => match net.link.ipv6() {
                Some(_) => self.input(Input::Ipv6Claimed),
                None if net.link.v6.is_some() => {}
                None => {
                    let secret = match self.stable_secret {
                        Some(s) => s,
                        None => {
                            let s = new_stable_secret(net.p);
                            self.stable_secret = Some(s);
                            s
                        }
                    };
                    let seed = net.p.next_u64();
                    net.link
                        .claim_ipv6(self.mac, IidMode::Stable { secret }, seed, now);
                }
            },
            Action::DiscoverBmcIpv6 => match (self.bmc_ipv6, net.link.ipv6()) {
                (Some(addr), _) => {
                    self.status.bmc_ipv6 = Some(addr);
                    self.input(Input::BmcIpv6Learned);
                }
                (None, Some(src)) => {
                    net.link.discovery = Some(Discovery::new(self.mac, src, now));
                }
                (None, None) => self.input(Input::BmcIpv6NotFound),
            },
            Action::Connect { family } => {
                self.connected[family] = false;
                self.trust[family] = None;
                let Some(trust) = self.prepare_channel(cfg, now, net.p) else {
                    self.input(Input::TcpRefused { family });
                    return;
                };
                let port = if trust.tls() {
                    cfg.tls_port
                } else {
                    cfg.plain_port
                };
                let remote = match family {
                    Family::V4 => Some(IpAddress::Ipv4(cfg.bmc_ipv4)),
                    Family::V6 => self.bmc_ipv6.map(IpAddress::Ipv6),
                };
                let ok = match remote {
                    Some(addr) => {
                        info!("TCP connecting to {}", IpEndpoint::new(addr, port));
                        net.connect(family, IpEndpoint::new(addr, port)).is_ok()
                    }
                    None => false,
                };
                self.ports[family] = port;
                if ok {
                    self.attempts[family] = Some(now.saturating_add(cfg.connect_timeout));
                    self.trust[family] = Some(trust);
                } else {
                    self.input(Input::TcpRefused { family });
                }
            }
            Action::Disconnect { family } => {
                if self.status.family == Some(family) {
                    self.disconnect[family] = true;
                } else {
                    net.abort(family);
                    self.attempts[family] = None;
                    self.connected[family] = false;
                    self.trust[family] = None;
                }
            }
            Action::SaveBmcCaps { record } => {
                if net.p.save(Record::BmcCaps, &record.encode()).is_err() {
                    net.p.record(
                        now,
                        &AuditEvent::Store(StoreEvent::Failed {
                            record: Record::BmcCaps,
                        }),
                    );
                }
            }
            Action::StayDisconnected { reason } => {
                info!(
                    "staying disconnected: IPv4 {}, IPv6 {}",
                    reason.ipv4, reason.ipv6
                );
            }
        }
    }
}

impl Control {
    /// Stops the IPv4 claim and drops its address (P3 blocked IPv4).
    /// Whether a deferred IPv4 release waits only for the ended session's
    /// last frames to be sent: the agent then ends its step, so that its
    /// caller takes those frames (they need the address) before the next
    /// step releases it.
    pub(crate) fn release_due(&self) -> bool {
        self.release_v4 && self.status.family != Some(Family::V4)
    }

    pub(crate) fn release_ipv4<P: Platform>(&mut self, net: &mut Net<'_, '_, P, Link>) {
        self.release_v4 = false;
        if let Some(addr) = net.link.ipv4() {
            remove_address(net.iface, IpAddress::Ipv4(addr));
        }
        net.link.v4 = None;
        self.status.host_ipv4 = None;
    }

    /// A session came up: events said once per outage may be said again.
    pub(crate) fn session_started(&mut self) {
        self.said.clear();
    }

    /// Records `event` unless it was said since the last WELCOME.
    fn say_once<P: Platform>(&mut self, now: Instant, p: &mut P, event: &AuditEvent) {
        let id = event.id().0;
        if self.said.contains(&id) {
            return;
        }
        // Full: say it again rather than never.
        let _ = self.said.push(id);
        p.record(now, event);
    }

    /// The BMC's TLS port refused us (said once per outage). B1: a pinned
    /// BMC whose bootstrap says it has no TLS any more is a downgrade,
    /// refused; otherwise TLS is expected and the refused port is named.
    fn refused<P: Platform>(&mut self, now: Instant, family: Family, p: &mut P) {
        let Some(trust) = self.trust[family] else {
            return;
        };
        if matches!(trust, Trust::Pinned { .. }) && p.bmc_facts().is_some_and(|f| !f.tls) {
            self.say_once(now, p, &AuditEvent::Tls(TlsEvent::DowngradeRefused {}));
        } else if trust.tls() {
            let port = self.ports[family];
            let event = AuditEvent::Session(SessionEvent::TlsPortRefused { family, port });
            self.say_once(now, p, &event);
        }
    }

    /// Gathers what the trust decision needs (DESIGN §5a), makes it
    /// ([`trust::decide`]) and audits it; `None` when no connection may be
    /// attempted now.
    fn prepare_channel<P: Platform>(
        &mut self,
        cfg: &Config,
        now: Instant,
        p: &mut P,
    ) -> Option<Trust> {
        let pin = identity::load_pin(p);
        let admin_fingerprint = identity::load_admin_fingerprint(p).ok()?;
        let bootstrap = p.bmc_facts();
        let mut name = [0u8; crate::platform::ACCOUNT_NAME_MAX];
        let mut secret = [0u8; crate::platform::ACCOUNT_SECRET_MAX];
        let account = p.enrollment_account(&mut name, &mut secret).is_some();
        secret.fill(0);
        let client = self.client_cert(cfg, now, p);
        let facts = TrustFacts {
            pin,
            bootstrap,
            admin_fingerprint,
            account,
            client,
            legacy_plain: cfg.legacy_plain,
        };
        let decision = trust::decide(&facts);
        for event in &decision.events {
            match event {
                // B4: every connection.
                AuditEvent::Tls(TlsEvent::ClientCertExpiring { .. }) => p.record(now, event),
                _ => self.say_once(now, p, event),
            }
        }
        if let ClientCert::Expired { .. } = client {
            self.identity = None;
        }
        self.status.trust = decision.trust.and_then(|t| t.source(admin_fingerprint));
        match &decision.trust {
            Some(t) => info!("next connection: {}", t),
            None => info!("no connection: nothing may be trusted now"),
        }
        decision.trust
    }

    /// Loads (or makes) the client identity and says where it stands.
    fn client_cert<P: Platform>(&mut self, cfg: &Config, now: Instant, p: &mut P) -> ClientCert {
        // Reloaded every time: `cert renew` or `install` may have replaced it.
        self.identity = match ClientIdentity::load(p) {
            Ok(Some(id)) => Some(id),
            Ok(None) => {
                let unix = p.unix_time().unwrap_or(0);
                match ClientIdentity::generate(p, cfg.hostname, unix) {
                    Ok(id) => Some(id),
                    Err(e) => {
                        error!("cannot make a client identity: {:?}", e);
                        None
                    }
                }
            }
            Err(e) => {
                let record = match e {
                    IdentityError::Corrupt(r) => r,
                    _ => Record::IdentityKey,
                };
                self.say_once(now, p, &AuditEvent::Store(StoreEvent::Corrupt { record }));
                None
            }
        };
        let Some(id) = self.identity.as_ref() else {
            return ClientCert::Unavailable;
        };
        match p.unix_time().map(|unix| id.expiry(unix)) {
            Some(Expiry::Expired { not_after }) => ClientCert::Expired { not_after },
            Some(Expiry::Expiring { days_left }) => ClientCert::Expiring { days_left },
            Some(Expiry::Valid | Expiry::NotYetValid) | None => ClientCert::Valid,
        }
    }
}

/// Loads a record of exactly `N` bytes; a store failure is audited and
/// reported as `Err`.
fn load<P: Platform, const N: usize>(p: &mut P, record: Record) -> Result<Option<[u8; N]>, ()> {
    let mut buf = [0u8; N];
    match p.load(record, &mut buf) {
        Ok(Some(n)) if n == N => Ok(Some(buf)),
        Ok(Some(_))
        | Err(crate::platform::StoreError::TooLarge(_))
        | Err(crate::platform::StoreError::Corrupt(_)) => {
            corrupt(p, record);
            Err(())
        }
        Ok(None) => Ok(None),
        Err(crate::platform::StoreError::Io(_)) => {
            let now = p.now();
            p.record(now, &AuditEvent::Store(StoreEvent::Failed { record }));
            Err(())
        }
    }
}

fn corrupt<P: Platform>(p: &mut P, record: Record) {
    let now = p.now();
    p.record(now, &AuditEvent::Store(StoreEvent::Corrupt { record }));
}

/// Reads the per-install RFC 7217 secret: `Ok(None)` when there is none yet;
/// `Err` (audited: BL5003 for a record that is not 256 bits, BL5001 when it
/// cannot be read) when one exists but cannot be used.
fn load_secret<P: Platform>(p: &mut P) -> Result<Option<[u8; 32]>, ()> {
    let mut secret = [0u8; 32];
    let record = Record::StableSecret;
    let event = match p.load(record, &mut secret) {
        Ok(Some(32)) => return Ok(Some(secret)),
        Ok(None) => return Ok(None),
        Ok(Some(_))
        | Err(crate::platform::StoreError::TooLarge(_))
        | Err(crate::platform::StoreError::Corrupt(_)) => StoreEvent::SecretUnusable { record },
        Err(crate::platform::StoreError::Io(_)) => StoreEvent::Failed { record },
    };
    let now = p.now();
    p.record(now, &AuditEvent::Store(event));
    Err(())
}

/// Makes and saves the per-install RFC 7217 secret (first use only: a
/// stored one is read at start). A failed save is audited (BL5001); the
/// secret is used for this run all the same.
fn new_stable_secret<P: Platform>(p: &mut P) -> [u8; 32] {
    let mut secret = [0u8; 32];
    p.fill_bytes(&mut secret);
    if p.save(Record::StableSecret, &secret).is_err() {
        let now = p.now();
        p.record(
            now,
            &AuditEvent::Store(StoreEvent::Failed {
                record: Record::StableSecret,
            }),
        );
    }
    secret
}

fn add_address(iface: &mut Interface, cidr: IpCidr) {
    iface.update_ip_addrs(|addrs| {
        if !addrs.contains(&cidr) && addrs.push(cidr).is_err() {
            error!("no room for {} on the interface", cidr);
        }
    });
}

fn remove_address(iface: &mut Interface, addr: IpAddress) {
    iface.update_ip_addrs(|addrs| addrs.retain(|c| c.address() != addr));
}

fn drop_addresses(iface: &mut Interface) {
    iface.update_ip_addrs(|addrs| addrs.clear());
}
