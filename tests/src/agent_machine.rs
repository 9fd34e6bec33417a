//! The agent as a state machine, with no simulated world: a bare host
//! ([`crate::bare_host`]) gives it a clock, records and facts; the tests hand
//! it frames (`handle_frame`), move time (`handle_timeout` at
//! `poll_timeout`) and read what it sends (`poll_transmit`). What a frame
//! must look like comes from RFC 5227 (probes, defence), RFC 3927 and
//! RFC 826, not from the agent's code.

use bmclink_core::agent::{Agent, AgentBuffers, Exit, Poll, LINGER};
use bmclink_core::drive::{self, RX_BUDGET};
use bmclink_core::platform::MAX_FRAME_LEN;
use bmclink_core::Config;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, Ipv4Address,
};

use crate::bare_host::{Host, MAC};

const OTHER: [u8; 6] = [0x02, 0, 0, 0, 0, 0x99];

/// Runs `test` on an agent with the default configuration over `host`.
fn with_agent(mut host: Host, test: impl FnOnce(&mut Agent<'_>, &mut Host)) {
    let mut bufs = Box::new(AgentBuffers::new());
    let mut agent = Agent::new(Config::default(), &mut bufs, &mut host).expect("a unicast MAC");
    test(&mut agent, &mut host);
}

/// Everything the agent has to send now.
fn sent(agent: &mut Agent<'_>, host: &mut Host) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0; MAX_FRAME_LEN];
    while let Some(n) = agent.poll_transmit(host, &mut buf) {
        out.push(buf[..n].to_vec());
        assert!(out.len() < 1000, "poll_transmit never runs dry");
    }
    out
}

/// Moves the clock to each of the agent's deadlines until `until`, doing
/// what is due at each; returns what it sent on the way.
fn run_until(agent: &mut Agent<'_>, host: &mut Host, until: Instant) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    converse(agent, host, until, |_, f| {
        out.push(f.to_vec());
        vec![]
    });
    out
}

fn arp(frame: &[u8]) -> Option<(EthernetRepr, ArpRepr)> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    let eth_repr = EthernetRepr::parse(&eth).ok()?;
    if eth_repr.ethertype != EthernetProtocol::Arp {
        return None;
    }
    let arp = ArpRepr::parse(&ArpPacket::new_checked(eth.payload()).ok()?).ok()?;
    Some((eth_repr, arp))
}

fn arp_request(sender: Ipv4Address, target: Ipv4Address) -> Vec<u8> {
    let arp = ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Request,
        source_hardware_addr: EthernetAddress(OTHER),
        source_protocol_addr: sender,
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: target,
    };
    let eth = EthernetRepr {
        src_addr: EthernetAddress(OTHER),
        dst_addr: EthernetAddress::BROADCAST,
        ethertype: EthernetProtocol::Arp,
    };
    let mut buf = vec![0u8; eth.buffer_len() + arp.buffer_len()];
    let mut frame = EthernetFrame::new_unchecked(&mut buf[..]);
    eth.emit(&mut frame);
    arp.emit(&mut ArpPacket::new_unchecked(frame.payload_mut()));
    buf
}

/// The claimed address, once the claim is bound.
fn bound(agent: &mut Agent<'_>, host: &mut Host) -> Ipv4Address {
    let later = host.now + Duration::from_secs(15);
    run_until(agent, host, later);
    agent.status().host_ipv4.expect("IPv4 bound within 15 s")
}

#[test]
fn the_first_frames_are_rfc5227_probes_from_the_unspecified_address() {
    with_agent(Host::new(), |agent, host| {
        let out = run_until(agent, host, Instant::from_secs(3));
        let probes: Vec<_> = out.iter().filter_map(|f| arp(f)).collect();
        assert!(
            !probes.is_empty(),
            "no ARP within 3 s: {} frames",
            out.len()
        );
        let (eth, first) = probes[0];
        assert_eq!(eth.src_addr, EthernetAddress(MAC));
        let ArpRepr::EthernetIpv4 {
            operation,
            source_hardware_addr,
            source_protocol_addr,
            target_hardware_addr,
            target_protocol_addr,
        } = first
        else {
            panic!("not Ethernet/IPv4 ARP");
        };
        // RFC 5227 §2.1.1: a request, sender IP all zeroes, target hardware
        // address ignored (zero), target IP the candidate, in 169.254/16
        // outside the reserved first and last 256 (RFC 3927 §2.1).
        assert_eq!(operation, ArpOperation::Request);
        assert_eq!(source_hardware_addr, EthernetAddress(MAC));
        assert_eq!(source_protocol_addr, Ipv4Address::UNSPECIFIED);
        assert_eq!(target_hardware_addr, EthernetAddress([0; 6]));
        let o = target_protocol_addr.octets();
        assert_eq!((o[0], o[1]), (169, 254));
        assert!((1..=254).contains(&o[2]), "{target_protocol_addr}");
    });
}

#[test]
fn an_arp_request_for_the_bound_address_is_answered_before_the_next_frame() {
    with_agent(Host::new(), |agent, host| {
        let ours = bound(agent, host);
        let asker = Ipv4Address::new(169, 254, 9, 9);
        agent.handle_frame(host, &arp_request(asker, ours));
        let out = sent(agent, host);
        let reply = out
            .iter()
            .filter_map(|f| arp(f))
            .find(|(_, a)| {
                matches!(
                    a,
                    ArpRepr::EthernetIpv4 {
                        operation: ArpOperation::Reply,
                        ..
                    }
                )
            })
            .expect("an ARP reply in the same poll_transmit run");
        // RFC 826: the reply goes to the asker, with our address and MAC.
        assert_eq!(reply.0.dst_addr, EthernetAddress(OTHER));
        let ArpRepr::EthernetIpv4 {
            source_hardware_addr,
            source_protocol_addr,
            target_protocol_addr,
            ..
        } = reply.1
        else {
            panic!("not Ethernet/IPv4 ARP");
        };
        assert_eq!(source_hardware_addr, EthernetAddress(MAC));
        assert_eq!(source_protocol_addr, ours);
        assert_eq!(target_protocol_addr, asker);
    });
}

/// `HostNet::facts_changed`: a platform that cannot tell is read every
/// second; one that is told of changes is read when it says so and once a
/// minute besides (what the policy makes of the facts is the P rows'
/// business: `policy_rows`).
#[test]
fn host_facts_are_polled_every_second_unless_the_platform_announces_changes() {
    let minute = |host: Host| {
        let mut reads = 0;
        with_agent(host, |agent, host| {
            let start = host.facts_read;
            run_until(agent, host, host.now + Duration::from_secs(60));
            reads = host.facts_read - start;
        });
        reads
    };
    let polled = minute(Host::new());
    assert!((59..=61).contains(&polled), "{polled} reads in a minute");
    let told = || {
        let mut host = Host::new();
        host.notify = Some(false);
        host
    };
    let quiet = minute(told());
    assert!(quiet <= 2, "{quiet} reads in a quiet minute");

    with_agent(told(), |agent, host| {
        run_until(agent, host, host.now + Duration::from_secs(10));
        let before = host.facts_read;
        agent.handle_timeout(host);
        assert_eq!(host.facts_read, before, "not read without a change");
        host.notify = Some(true);
        agent.handle_timeout(host);
        assert_eq!(host.facts_read, before + 1, "read at once when told");
    });
}

#[test]
fn a_frame_makes_the_agent_due_at_once() {
    with_agent(Host::new(), |agent, host| {
        let ours = bound(agent, host);
        assert!(agent.poll_timeout(host).is_some_and(|t| t > host.now));
        agent.handle_frame(host, &arp_request(Ipv4Address::new(169, 254, 9, 9), ours));
        assert_eq!(agent.poll_timeout(host), Some(host.now));
    });
}

#[test]
fn a_probe_for_the_bound_address_is_defended_in_the_same_poll_transmit_run() {
    with_agent(Host::new(), |agent, host| {
        let ours = bound(agent, host);
        // Someone else probes for our address (RFC 5227 §2.1.1: sender IP
        // zero). §2.4 (b)/(c): the owner defends with an announcement, or at
        // least answers; either way an ARP frame about our address leaves.
        agent.handle_frame(host, &arp_request(Ipv4Address::UNSPECIFIED, ours));
        agent.handle_timeout(host);
        let out = sent(agent, host);
        let about_us = out.iter().filter_map(|f| arp(f)).any(|(eth, a)| {
            eth.src_addr == EthernetAddress(MAC)
                && matches!(a, ArpRepr::EthernetIpv4 { source_protocol_addr, .. } if source_protocol_addr == ours)
        });
        assert!(
            about_us,
            "no ARP about {ours} after a probe for it: {out:?}"
        );
        assert_eq!(
            agent.status().host_ipv4,
            Some(ours),
            "a probe is no conflict"
        );
    });
}

#[test]
fn while_the_link_is_down_frames_are_dropped_and_nothing_is_sent() {
    with_agent(Host::new(), |agent, host| {
        let ours = bound(agent, host);
        host.up = false;
        agent.handle_timeout(host);
        agent.handle_frame(host, &arp_request(Ipv4Address::new(169, 254, 9, 9), ours));
        assert!(sent(agent, host).is_empty());
        let later = host.now + Duration::from_secs(30);
        let out = run_until(agent, host, later);
        assert!(
            out.is_empty(),
            "{} frames sent with the link down",
            out.len()
        );
        assert_eq!(
            agent.status().host_ipv4,
            None,
            "the address goes with the link"
        );
    });
}

#[test]
fn every_frame_it_sends_is_ethernet_from_its_own_mac() {
    with_agent(Host::new(), |agent, host| {
        let out = run_until(agent, host, Instant::from_secs(120));
        assert!(out.len() > 5, "only {} frames in two minutes", out.len());
        for f in &out {
            assert!((14..=MAX_FRAME_LEN).contains(&f.len()), "{} bytes", f.len());
            assert_eq!(f[6..12], MAC, "source MAC");
        }
    });
}

#[test]
fn a_stop_ends_within_the_linger_and_then_nothing_is_due() {
    with_agent(Host::new(), |agent, host| {
        bound(agent, host);
        let asked = host.now;
        agent.stop(host);
        run_until(agent, host, asked + LINGER + Duration::from_millis(1));
        assert!(agent.is_stopped());
        assert_eq!(agent.poll_timeout(host), None);
        // A stopped agent takes no frames and sends none.
        agent.handle_frame(
            host,
            &arp_request(Ipv4Address::UNSPECIFIED, Ipv4Address::new(169, 254, 1, 1)),
        );
        let after = sent(agent, host);
        assert!(after.is_empty(), "{after:02x?}");
    });
}

#[test]
fn one_step_takes_at_most_the_budget_from_an_endless_flood() {
    with_agent(Host::new(), |agent, host| {
        // Broadcasts of an unknown ethertype, for ever.
        let mut junk = vec![0xffu8; 60];
        junk[6..12].copy_from_slice(&OTHER);
        host.endless = Some(junk);
        let mut buf = [0; MAX_FRAME_LEN];
        for step in 1..=3 {
            // Returns at all, after exactly the budget, and asks to go on now.
            assert_eq!(
                drive::step(agent, host, &mut buf),
                Poll::Wait(Some(host.now))
            );
            assert_eq!(host.taken, step * RX_BUDGET);
        }
    });
}

#[test]
fn run_async_runs_on_any_executor_and_stops_when_asked() {
    use core::future::Future;
    use core::pin::pin;
    use core::task::{Context, Poll as TaskPoll, Waker};

    let mut host = Host::new();
    host.stop_at = Instant::from_secs(20);
    with_agent(host, |agent, host| {
        let exit = {
            let mut frame = [0; MAX_FRAME_LEN];
            let mut fut = pin!(drive::run_async(agent, host, &mut frame));
            let mut cx = Context::from_waker(Waker::noop());
            let mut polls = 0;
            loop {
                polls += 1;
                assert!(polls < 100_000, "run_async never finished");
                if let TaskPoll::Ready(exit) = fut.as_mut().poll(&mut cx) {
                    break exit;
                }
            }
        };
        assert_eq!(exit, Exit::Stopped);
        assert!(agent.is_stopped());
        // It did the work of those 20 s: probes, then the claim bound.
        assert!(host.sent.iter().any(|f| arp(f).is_some()));
        assert!(agent.status().host_ipv4.is_some());
        assert!(host.now >= Instant::from_secs(20));
    });
}

/// [`run_until`] with a peer: every frame the agent sends is shown to
/// `peer`, and what it answers is handed back to the agent at once.
fn converse(
    agent: &mut Agent<'_>,
    host: &mut Host,
    until: Instant,
    mut peer: impl FnMut(Instant, &[u8]) -> Vec<Vec<u8>>,
) {
    loop {
        agent.handle_timeout(host);
        let mut out = sent(agent, host);
        while !out.is_empty() {
            let answers: Vec<_> = out.iter().flat_map(|f| peer(host.now, f)).collect();
            out.clear();
            for a in answers {
                agent.handle_frame(host, &a);
                out.extend(sent(agent, host));
            }
            agent.handle_timeout(host);
            out.extend(sent(agent, host));
        }
        match agent.poll_timeout(host) {
            Some(at) if at <= until => host.now = host.now.max(at),
            _ => break,
        }
    }
    host.now = host.now.max(until);
}

/// The TCP segment in an Ethernet frame: (IPv4 header, TCP header).
fn tcp(frame: &[u8]) -> Option<(smoltcp::wire::Ipv4Repr, smoltcp::wire::TcpRepr<'_>)> {
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{IpProtocol, Ipv4Packet, Ipv4Repr, TcpPacket, TcpRepr};
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EthernetProtocol::Ipv4 {
        return None;
    }
    let payload = &frame[14..];
    let ip = Ipv4Packet::new_checked(payload).ok()?;
    let ip_repr = Ipv4Repr::parse(&ip, &ChecksumCapabilities::default()).ok()?;
    if ip_repr.next_header != IpProtocol::Tcp {
        return None;
    }
    let hl = usize::from(ip.header_len());
    let seg = TcpPacket::new_checked(&payload[hl..hl + ip_repr.payload_len]).ok()?;
    let repr = TcpRepr::parse(
        &seg,
        &ip_repr.src_addr.into(),
        &ip_repr.dst_addr.into(),
        &ChecksumCapabilities::default(),
    )
    .ok()?;
    Some((ip_repr, repr))
}

/// A RST+ACK from the BMC's side answering `syn` (RFC 9293 §3.10.7.1: a
/// closed port answers a SYN with <SEQ=0><ACK=SEG.SEQ+1><CTL=RST,ACK>).
fn refuse(syn_ip: smoltcp::wire::Ipv4Repr, syn: &smoltcp::wire::TcpRepr<'_>) -> Vec<u8> {
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{
        IpProtocol, Ipv4Packet, Ipv4Repr, TcpControl, TcpPacket, TcpRepr, TcpSeqNumber,
    };
    let tcp = TcpRepr {
        src_port: syn.dst_port,
        dst_port: syn.src_port,
        control: TcpControl::Rst,
        seq_number: TcpSeqNumber(0),
        ack_number: Some(syn.seq_number + 1),
        window_len: 0,
        window_scale: None,
        max_seg_size: None,
        sack_permitted: false,
        sack_ranges: [None; 3],
        timestamp: None,
        payload: &[],
    };
    let ip = Ipv4Repr {
        src_addr: syn_ip.dst_addr,
        dst_addr: syn_ip.src_addr,
        next_header: IpProtocol::Tcp,
        payload_len: tcp.buffer_len(),
        hop_limit: 64,
    };
    let eth = EthernetRepr {
        src_addr: EthernetAddress(OTHER),
        dst_addr: EthernetAddress(MAC),
        ethertype: EthernetProtocol::Ipv4,
    };
    let mut buf = vec![0u8; eth.buffer_len() + ip.buffer_len() + tcp.buffer_len()];
    let mut frame = EthernetFrame::new_unchecked(&mut buf[..]);
    eth.emit(&mut frame);
    let caps = ChecksumCapabilities::default();
    let mut ip_packet = Ipv4Packet::new_unchecked(frame.payload_mut());
    ip.emit(&mut ip_packet, &caps);
    tcp.emit(
        &mut TcpPacket::new_unchecked(ip_packet.payload_mut()),
        &ip.src_addr.into(),
        &ip.dst_addr.into(),
        &caps,
    );
    buf
}

/// An ARP reply from [`OTHER`] saying it holds `ip`, to the asker.
fn arp_reply(ip: Ipv4Address, to_ip: Ipv4Address) -> Vec<u8> {
    let mut f = arp_request(ip, to_ip);
    let mut frame = EthernetFrame::new_unchecked(&mut f[..]);
    frame.set_dst_addr(EthernetAddress(MAC));
    let mut arp = ArpPacket::new_unchecked(frame.payload_mut());
    arp.set_operation(ArpOperation::Reply);
    arp.set_target_hardware_addr(&MAC);
    f
}

#[test]
fn a_bmc_that_refuses_its_tls_port_is_audited_once_and_retried_with_backoff_never_plain() {
    with_agent(Host::new(), |agent, host| {
        let ours = bound(agent, host);
        let cfg = Config::default();
        let mut syns: Vec<(Instant, u16)> = Vec::new();
        let until = host.now + Duration::from_secs(30);
        converse(agent, host, until, |now, f| {
            if let Some((
                _,
                ArpRepr::EthernetIpv4 {
                    operation: ArpOperation::Request,
                    target_protocol_addr,
                    source_protocol_addr,
                    ..
                },
            )) = arp(f)
            {
                if target_protocol_addr == cfg.bmc_ipv4 && source_protocol_addr == ours {
                    return vec![arp_reply(cfg.bmc_ipv4, ours)];
                }
            }
            match tcp(f) {
                Some((ip, seg)) if seg.control == smoltcp::wire::TcpControl::Syn => {
                    assert_eq!((ip.src_addr, ip.dst_addr), (ours, cfg.bmc_ipv4));
                    syns.push((now, seg.dst_port));
                    vec![refuse(ip, &seg)]
                }
                _ => vec![],
            }
        });
        assert!(syns.len() >= 3, "SYNs: {syns:?}");
        // TLS is the default (DESIGN §5a): every attempt is to the TLS port,
        // none falls back to the plain one (B1: no plain fallback by itself).
        assert!(
            syns.iter().all(|&(_, port)| port == cfg.tls_port),
            "{syns:?}"
        );
        // Each retry waits at least the minimum backoff.
        for w in syns.windows(2) {
            assert!(
                w[1].0 - w[0].0 >= cfg.backoff_min,
                "retried too soon: {syns:?}"
            );
        }
        // BL2007, once for the outage, however many refusals.
        assert_eq!(
            host.audits.iter().filter(|&&id| id == 2007).count(),
            1,
            "{:?}",
            host.audits
        );
        assert!(
            agent.status().family.is_none(),
            "no session with a refusing BMC"
        );
    });
}
