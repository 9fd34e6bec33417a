//! The bodies of the fuzz targets in `fuzz/`, here so that `cargo test`
//! replays every corpus on the stable toolchain (tests/tests/corpora.rs) and
//! a crash found once stays fixed.

use bmclink_core::proto::{FrameReader, Message, Packet, MAX_FRAME_LEN};

mod cert;
mod ipmi;
mod tls_seeds;
mod tls_server;
mod tls_session;

pub use cert::{cert, cert_seeds, CERT_GENERATE};
pub use ipmi::{ipmi, ipmi_seeds};
pub use tls_seeds::{handshake_message, tls_after_hello_input, tls_server_seeds};
pub use tls_server::{
    tls_pki, tls_server, tls_server_run, FuzzPki, TLS_AFTER_HELLO, TLS_FINISHED, TLS_MAX_INPUT,
    TLS_RAW, TLS_VERBATIM,
};
pub use tls_session::{
    tls_session, tls_session_run, tls_session_seeds, SessionRun, SESSION_CLIENT_READ,
    SESSION_CLIENT_SEND, SESSION_INJECT, SESSION_MAX_INPUT, SESSION_SERVER_DATA,
};

/// `proto`: the first byte picks a split point; the rest is a byte stream fed
/// to a [`FrameReader`] in two parts, and also parsed as one frame. Anything
/// that parses must re-emit to exactly the bytes it came from.
pub fn proto(data: &[u8]) {
    let Some((&split, stream)) = data.split_first() else {
        return;
    };
    if let Ok(packet) = Packet::new_checked(stream) {
        if let Ok(msg) = Message::parse(&packet) {
            assert_reemits(&msg, &stream[..packet.frame_len()]);
        }
    }
    let mut reader: FrameReader<{ 2 * MAX_FRAME_LEN }> = FrameReader::new();
    let cut = usize::from(split).min(stream.len());
    let mut parts = [&stream[..cut], &stream[cut..]];
    for part in parts.iter_mut() {
        while !part.is_empty() {
            let n = reader.push(part);
            *part = &part[n..];
            loop {
                match reader.next_message() {
                    Some(Ok(msg)) => {
                        let mut buf = [0u8; MAX_FRAME_LEN];
                        let len = msg.emit(&mut buf).expect("a parsed message re-emits");
                        let again = Message::parse_frame(&buf[..len]).expect("re-emitted parses");
                        assert_eq!(again, msg);
                    }
                    Some(Err(_)) => return,
                    None => break,
                }
            }
            if n == 0 {
                return;
            }
        }
    }
}

fn assert_reemits(msg: &Message<'_>, frame: &[u8]) {
    let mut buf = [0u8; MAX_FRAME_LEN];
    let len = msg.emit(&mut buf).expect("a parsed message re-emits");
    assert_eq!(&buf[..len], frame, "re-emitted bytes differ for {msg:?}");
}

/// Reads fuzz input as a stream of small choices; an exhausted input reads
/// as zeros, so every prefix of an input is a valid shorter run.
struct Choices<'a>(&'a [u8]);

impl Choices<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    fn below(&mut self, n: u8) -> u8 {
        self.byte() % n.max(1)
    }
    fn chance(&mut self) -> bool {
        self.byte() & 1 == 1
    }
    fn take(&mut self, n: usize) -> &[u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Most frames the `frames` target injects in one run.
pub const FRAMES_MAX: usize = 32;

/// `frames`: raw Ethernet frames into the agent itself, driven as a state
/// machine over a bare host ([`crate::bare_host`]: no world, no BMC), so a
/// run is a few calls: `handle_frame`, `handle_timeout` at each
/// `poll_timeout`, `poll_transmit` until it has nothing. The input is a
/// sequence of `delay:u8 len:u16be frame[len]`: each frame comes `delay` ×
/// 50 ms after the previous one, while the claims probe, announce, defend
/// and the agent tries to reach a BMC that is not there. The agent must not
/// panic, must never be due "now" for ever, must send only Ethernet frames
/// from its own MAC of at most `MAX_FRAME_LEN` bytes, and must stop when
/// asked within its linger.
pub fn frames(data: &[u8]) {
    use bmclink_core::agent::{Agent, AgentBuffers, LINGER};
    use bmclink_core::platform::MAX_FRAME_LEN;
    use smoltcp::time::{Duration, Instant};

    use crate::bare_host::{Host, MAC};

    fn transmit(agent: &mut Agent<'_>, host: &mut Host, buf: &mut [u8; MAX_FRAME_LEN]) {
        let mut n_out = 0;
        while let Some(n) = agent.poll_transmit(host, buf) {
            n_out += 1;
            assert!(n_out < 1000, "poll_transmit never runs dry");
            assert!((14..=MAX_FRAME_LEN).contains(&n), "a {n}-byte frame");
            assert_eq!(buf[6..12], MAC, "a frame from another source MAC");
        }
    }
    fn advance(
        agent: &mut Agent<'_>,
        host: &mut Host,
        until: Instant,
        buf: &mut [u8; MAX_FRAME_LEN],
    ) {
        let mut same = 0;
        loop {
            agent.handle_timeout(host);
            transmit(agent, host, buf);
            match agent.poll_timeout(host) {
                Some(at) if at <= until => {
                    same = if at <= host.now { same + 1 } else { 0 };
                    assert!(same < 1000, "due now for ever at {}", host.now);
                    host.now = host.now.max(at);
                }
                _ => break,
            }
        }
        host.now = host.now.max(until);
    }

    let mut host = Host::new();
    let mut bufs = Box::new(AgentBuffers::new());
    let mut agent = Agent::new(bmclink_core::Config::default(), &mut bufs, &mut host)
        .expect("the bare host's MAC is unicast");
    let mut buf = [0u8; MAX_FRAME_LEN];
    let mut input = Choices(data);
    for _ in 0..FRAMES_MAX {
        if input.is_empty() {
            break;
        }
        let until = host.now + Duration::from_millis(50 * u64::from(input.byte()));
        advance(&mut agent, &mut host, until, &mut buf);
        let len = usize::from(u16::from_be_bytes([input.byte(), input.byte()]));
        let frame = input.take(len.min(MAX_FRAME_LEN));
        agent.handle_frame(&mut host, frame);
        transmit(&mut agent, &mut host, &mut buf);
    }
    let until = host.now + Duration::from_secs(3);
    advance(&mut agent, &mut host, until, &mut buf);
    agent.stop(&mut host);
    let until = host.now + LINGER + Duration::from_millis(1);
    advance(&mut agent, &mut host, until, &mut buf);
    assert!(agent.is_stopped(), "not stopped a linger after the request");
}

/// `policy`: a random sequence of inputs and virtual-time steps into
/// [`bmclink_core::policy::Policy`], half of them answering what it asked
/// for. After every call the invariants of DESIGN §4 must hold (the same as
/// the core's property test): at most 8 actions a call, no queue overflow,
/// a future deadline whenever it is working, no IPv4 action with IPv4 off,
/// no IPv6 action where IPv6 is not allowed, features matching the session.
pub fn policy(data: &[u8]) {
    use bmclink_core::platform::HostFacts;
    use bmclink_core::policy::{
        Action, Features, Input, Phase, Policy, PolicyConfig, SessionEnd, Startup,
    };
    use bmclink_core::records::{BmcCapsRecord, LinkRecord};
    use bmclink_core::Family;
    use smoltcp::time::{Duration, Instant};
    use smoltcp::wire::Ipv4Address;

    const FW: [u8; 4] = [3, 30, 30, 30];
    let mut c = Choices(data);
    let family = |c: &mut Choices| if c.chance() { Family::V4 } else { Family::V6 };
    let facts = |c: &mut Choices| {
        let b = c.byte();
        HostFacts {
            ipv4_present: b & 1 != 0,
            ipv6_present: b & 2 != 0,
            ipv6_enabled: b & 4 == 0,
        }
    };
    let addr = |c: &mut Choices| Ipv4Address::new(169, 254, 1, 2 + c.below(3));
    let record = |c: &mut Choices| c.chance().then(|| LinkRecord { ipv4: addr(c) });
    let caps = |c: &mut Choices| {
        c.chance().then(|| BmcCapsRecord {
            firmware: FW,
            caps: c.below(8),
        })
    };
    let config = |c: &mut Choices| {
        let b = c.byte();
        PolicyConfig {
            ipv4: b & 1 == 0,
            ipv6: b & 2 == 0,
            race: b & 4 != 0,
            ..PolicyConfig::default()
        }
    };
    let cfg = config(&mut c);
    let mut now = Instant::from_secs(i64::from(c.byte()));
    let mut p = Policy::new(cfg, now, u64::from(c.byte()));
    let (mut ipv4_on, mut v6_on, mut host) = (cfg.ipv4, cfg.ipv6, HostFacts::default());
    let mut caps_without_v6 = false;
    let mut pending: Vec<Action> = Vec::new();
    let mut first = true;
    while first || !c.is_empty() {
        match c.below(4) {
            0 => {}
            1 => now += Duration::from_millis(u64::from(c.byte()) * 4),
            2 => now += Duration::from_secs(u64::from(c.byte())),
            _ => {
                if let Some(t) = p.next_deadline() {
                    now = now.max(t);
                }
            }
        }
        let input = if first {
            first = false;
            let (facts, link_record, caps, link_up) =
                (facts(&mut c), record(&mut c), caps(&mut c), c.chance());
            Some(Input::Start(Startup {
                facts,
                link_record,
                caps,
                link_up,
            }))
        } else {
            match c.below(24) {
                0 => None,
                1..=4 if !pending.is_empty() => {
                    let a = pending.remove(usize::from(c.byte()) % pending.len());
                    let ok = c.chance();
                    match a {
                        Action::ClaimIpv4 { preferred: addr }
                        | Action::UseRecordedIpv4 { addr }
                            if ok =>
                        {
                            Some(Input::Ipv4Claimed { addr })
                        }
                        Action::UseHostIpv4 if ok => {
                            Some(Input::Ipv4Claimed { addr: addr(&mut c) })
                        }
                        Action::ClaimIpv4 { .. }
                        | Action::UseRecordedIpv4 { .. }
                        | Action::UseHostIpv4 => Some(Input::Ipv4ClaimFailed),
                        Action::StartIpv6 if ok => Some(Input::Ipv6Claimed),
                        Action::StartIpv6 => Some(Input::Ipv6DadFailed),
                        Action::DiscoverBmcIpv6 if ok => Some(Input::BmcIpv6Learned),
                        Action::DiscoverBmcIpv6 => Some(Input::BmcIpv6NotFound),
                        Action::Connect { family } if ok => Some(Input::TcpConnected { family }),
                        Action::Connect { family } => Some(Input::TcpTimedOut { family }),
                        _ => None,
                    }
                }
                1 => Some(Input::Start(Startup {
                    facts: facts(&mut c),
                    link_record: record(&mut c),
                    caps: caps(&mut c),
                    link_up: c.chance(),
                })),
                2 => Some(Input::Config(config(&mut c))),
                3 => Some(Input::HostFacts(facts(&mut c))),
                4 => Some(Input::LinkRecord(record(&mut c))),
                5 => Some(Input::BmcCaps(caps(&mut c))),
                6 => Some(Input::LinkUp),
                7 => Some(Input::LinkDown),
                8 => Some(Input::Ipv4Claimed { addr: addr(&mut c) }),
                9 => Some(Input::Ipv4ClaimFailed),
                10 => Some(Input::Ipv4Lost),
                11 => Some(Input::Ipv6Claimed),
                12 => Some(Input::Ipv6DadFailed),
                13 => Some(Input::Ipv6Lost),
                14 => Some(Input::BmcIpv6Learned),
                15 => Some(Input::BmcIpv6NotFound),
                16 => Some(Input::TcpConnected {
                    family: family(&mut c),
                }),
                17 => Some(Input::TcpRefused {
                    family: family(&mut c),
                }),
                18 => Some(Input::TcpTimedOut {
                    family: family(&mut c),
                }),
                19..=20 => Some(Input::Welcome {
                    authenticated: true,
                    family: family(&mut c),
                    firmware: FW,
                    caps: c.below(8),
                }),
                _ => {
                    let cause = [
                        SessionEnd::Bye,
                        SessionEnd::PeerDead,
                        SessionEnd::ProtocolError,
                        SessionEnd::Reset,
                        SessionEnd::Rejected,
                    ][usize::from(c.below(5))];
                    Some(Input::SessionEnded {
                        family: family(&mut c),
                        cause,
                    })
                }
            }
        };
        // What the policy was told, known independently of it.
        match input {
            Some(Input::Start(s)) => {
                host = s.facts;
                caps_without_v6 = s.caps.is_some_and(|c| c.caps & 0b100 == 0);
            }
            Some(Input::Config(cfg)) => (ipv4_on, v6_on) = (cfg.ipv4, cfg.ipv6),
            Some(Input::HostFacts(f)) => host = f,
            Some(Input::BmcCaps(caps)) => {
                caps_without_v6 = caps.is_some_and(|c| c.caps & 0b100 == 0)
            }
            _ => {}
        }
        match input {
            Some(i) => p.handle(now, i),
            None => p.handle_timeout(now),
        }
        let mut n = 0;
        while let Some(a) = p.poll_action() {
            let v6_ok = v6_on && host.ipv6_enabled && !caps_without_v6;
            match a {
                Action::ClaimIpv4 { .. }
                | Action::UseRecordedIpv4 { .. }
                | Action::UseHostIpv4
                | Action::Connect { family: Family::V4 } => {
                    assert!(ipv4_on, "IPv4 action {a:?} with IPv4 off")
                }
                Action::StartIpv6
                | Action::DiscoverBmcIpv6
                | Action::Connect { family: Family::V6 } => {
                    assert!(v6_ok, "IPv6 action {a:?} not allowed")
                }
                Action::SaveBmcCaps { record } => caps_without_v6 = record.caps & 0b100 == 0,
                _ => {}
            }
            pending.push(a);
            n += 1;
        }
        assert!(n <= 8, "{n} actions from one call");
        while let Some(e) = p.poll_audit() {
            assert!((3000..4000).contains(&e.id().0), "{}", e.id().0);
        }
        let st = p.state();
        assert_eq!((st.actions_dropped, st.audit_dropped), (0, 0));
        let waiting = matches!(
            st.phase,
            Phase::NotStarted | Phase::LinkDown | Phase::Stay(_)
        );
        if st.connected.is_none() && !waiting {
            let d = p.next_deadline();
            assert!(
                d.is_some_and(|d| d > now),
                "no future deadline: {d:?} at {now}"
            );
        }
        if waiting {
            assert_eq!(st.connected, None);
        }
        if st.session.is_none() {
            assert_eq!(p.features(), Features::NONE);
        }
        pending.truncate(16);
    }
}
