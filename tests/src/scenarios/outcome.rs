//! What a scenario run left behind, and the views of it the checks use:
//! the agent's frames from the wire capture, sessions, features, audit IDs.

use bmclink_core::audit::{AuditEvent, SessionEvent};
use bmclink_core::policy::Features;
use bmclink_core::{Config, Family};
use smoltcp::time::Instant;
use smoltcp::wire::{ArpOperation, ArpPacket, ArpRepr, Ipv4Address, Ipv4Packet, TcpPacket};

use super::{ETHERTYPE_ARP, ETHERTYPE_IPV6};
use crate::timeline::{self, Line};
use crate::wire::Captured;
use crate::world::{World, AGENT_MAC};

/// What a run left behind.
pub struct Outcome {
    /// The world after the run.
    pub world: World,
    /// The timeline of the run.
    pub lines: Vec<Line>,
    /// An earlier run that prepared this one (P7: the first start).
    pub first: Option<Box<Outcome>>,
}

impl Outcome {
    /// The audit IDs in order.
    pub fn ids(&self) -> Vec<String> {
        self.world.audit_ids()
    }

    /// Whether audit event `id` was recorded.
    pub fn has(&self, id: &str) -> bool {
        self.ids().iter().any(|i| i == id)
    }

    /// When audit event `id` was first recorded.
    pub fn first_at(&self, id: &str) -> Option<Instant> {
        self.world
            .audit
            .iter()
            .find(|(_, e)| e.id().to_string() == id)
            .map(|(at, _)| *at)
    }

    /// When audit event `id` was recorded, every time.
    pub fn times(&self, id: &str) -> Vec<Instant> {
        self.world
            .audit
            .iter()
            .filter(|(_, e)| e.id().to_string() == id)
            .map(|(at, _)| *at)
            .collect()
    }

    /// Every session start: when and over which family.
    pub fn sessions(&self) -> Vec<(Instant, Family)> {
        self.world
            .audit
            .iter()
            .filter_map(|(at, e)| match e {
                AuditEvent::Session(SessionEvent::Started { family, .. }) => Some((*at, *family)),
                _ => None,
            })
            .collect()
    }

    /// The families of the sessions, in order.
    pub fn families(&self) -> Vec<Family> {
        self.sessions().into_iter().map(|(_, f)| f).collect()
    }

    /// The features of the last status pushed while a session was up.
    pub fn session_features(&self) -> Option<Features> {
        self.world
            .statuses
            .iter()
            .rev()
            .find(|s| s.is_up())
            .map(|s| s.features())
    }

    /// The frames the agent put on the wire.
    pub fn agent_frames(&self) -> Vec<Captured> {
        self.world
            .segment
            .captured()
            .into_iter()
            .filter(|c| c.src_mac() == Some(AGENT_MAC))
            .collect()
    }

    /// How many IPv6 frames the agent sent.
    pub fn agent_ipv6_frames(&self) -> usize {
        self.agent_frames()
            .iter()
            .filter(|c| c.ethertype() == Some(ETHERTYPE_IPV6))
            .count()
    }

    /// The agent's ARP frames: (when, operation, sender IP, target IP).
    pub fn agent_arp(&self) -> Vec<(Instant, ArpOperation, Ipv4Address, Ipv4Address)> {
        self.agent_frames()
            .iter()
            .filter(|c| c.ethertype() == Some(ETHERTYPE_ARP))
            .filter_map(|c| {
                let p = ArpPacket::new_checked(c.frame.get(14..)?).ok()?;
                match ArpRepr::parse(&p).ok()? {
                    ArpRepr::EthernetIpv4 {
                        operation,
                        source_protocol_addr,
                        target_protocol_addr,
                        ..
                    } => Some((c.at, operation, source_protocol_addr, target_protocol_addr)),
                    _ => None,
                }
            })
            .collect()
    }

    /// The agent's ARP probes (sender 0.0.0.0): (when, address probed).
    pub fn agent_probes(&self) -> Vec<(Instant, Ipv4Address)> {
        self.agent_arp()
            .into_iter()
            .filter(|(_, op, s, _)| *op == ArpOperation::Request && s.is_unspecified())
            .map(|(at, _, _, t)| (at, t))
            .collect()
    }

    /// The agent's ARP announcements (sender = target): (when, address).
    pub fn agent_announces(&self) -> Vec<(Instant, Ipv4Address)> {
        self.agent_arp()
            .into_iter()
            .filter(|(_, op, s, t)| *op == ArpOperation::Request && s == t)
            .map(|(at, _, s, _)| (at, s))
            .collect()
    }

    /// The source addresses of the agent's IPv4 TCP SYNs: (when, source).
    pub fn agent_ipv4_syns(&self) -> Vec<(Instant, Ipv4Address)> {
        self.agent_frames()
            .iter()
            .filter(|c| c.ethertype() == Some(0x0800))
            .filter_map(|c| {
                let ip = Ipv4Packet::new_checked(c.frame.get(14..)?).ok()?;
                let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
                (tcp.syn() && !tcp.ack()).then_some((c.at, ip.src_addr()))
            })
            .collect()
    }

    /// The agent's IPv4 connection attempts as seen on the wire: its ARP
    /// requests for the BMC's address (a BMC without IPv4 never answers, so
    /// no SYN follows) and its IPv4 SYNs, in order.
    pub fn agent_ipv4_attempts(&self) -> Vec<Instant> {
        let bmc = Config::default().bmc_ipv4;
        let mut at: Vec<Instant> = self
            .agent_arp()
            .into_iter()
            .filter(|(_, op, s, t)| {
                *op == ArpOperation::Request && !s.is_unspecified() && *t == bmc
            })
            .map(|(at, ..)| at)
            .chain(self.agent_ipv4_syns().into_iter().map(|(at, _)| at))
            .collect();
        at.sort();
        at
    }

    /// The timeline as text.
    pub fn timeline_text(&self) -> String {
        self.lines
            .iter()
            .map(timeline::format_line)
            .collect::<Vec<_>>()
            .join("\n")
    }
}
