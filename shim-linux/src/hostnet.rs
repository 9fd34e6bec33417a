//! [`HostNet`] for Linux: what the host OS itself has on the USBNIC.
//!
//! Addresses come from `getifaddrs(3)`; whether IPv6 is enabled from
//! `/proc/sys/net/ipv6/conf/{all,IF}/disable_ipv6` (no `/proc/sys/net/ipv6`
//! at all means the kernel has no IPv6); link state from the interface flags.
//!
//! Reading them costs two netlink dumps and three `/proc` lookups, and the
//! core would do it every second; with a [`HostWatch`] (rtnetlink's link
//! and address notifications) the core reads them when the kernel announces
//! a change and once a minute besides
//! ([`HostNet::facts_changed`]), so an idle agent sleeps until its
//! heartbeat.

use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bmclink_core::platform::{HostFacts, HostNet};
use nix::errno::Errno;
use nix::net::if_::InterfaceFlags;
use nix::sys::socket::{
    bind, recv, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType,
};

use crate::frames::{check_ifname, ifreq};

/// The host's view of one interface.
#[derive(Debug, Clone)]
pub struct LinuxHostNet {
    iface: String,
    proc_root: PathBuf,
    watch: Option<Arc<HostWatch>>,
}

/// rtnetlink's multicast groups for links (carrier, flags) and IPv4/IPv6
/// addresses, and IPv6's per-interface state.
const GROUPS: u32 = (libc::RTMGRP_LINK
    | libc::RTMGRP_IPV4_IFADDR
    | libc::RTMGRP_IPV6_IFADDR
    | libc::RTMGRP_IPV6_IFINFO) as u32;

/// The most notifications one [`HostWatch::drain`] reads: a storm of them
/// (a host making hundreds of veths) leaves the rest readable, so the next
/// wait returns at once, rather than holding the agent.
const DRAIN_BUDGET: usize = 64;

/// A subscription to the kernel's link and address notifications in the
/// agent's network namespace: the frames backend's `wait` also returns when
/// one comes ([`crate::frames::wait_on`]), and [`LinuxHostNet`] reads its
/// flag. Only a notification about one of the watched interfaces (the
/// USBNIC, and the device the frames go through) counts: a host's other
/// interfaces change all the time (a router advertisement refreshes an
/// address's lifetime, a container adds a veth), and each counted change
/// costs the agent a full read of the facts.
#[derive(Debug)]
pub struct HostWatch {
    fd: OwnedFd,
    names: Vec<String>,
    changed: AtomicBool,
}

impl HostWatch {
    /// Subscribes (a non-blocking `NETLINK_ROUTE` socket bound to the
    /// groups; unprivileged, and allowed by the unit's
    /// `RestrictAddressFamilies`) to the changes of the interfaces `names`.
    pub fn open(names: &[&str]) -> io::Result<HostWatch> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            SockProtocol::NetlinkRoute,
        )?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, GROUPS))?;
        Ok(HostWatch {
            fd,
            names: names.iter().map(|n| (*n).to_owned()).collect(),
            changed: AtomicBool::new(true),
        })
    }

    /// Reads the notifications that are there (at most [`DRAIN_BUDGET`])
    /// and remembers whether one was about a watched interface. A lost
    /// notification (ENOBUFS: the socket's queue overflowed) or an error
    /// counts as a change.
    pub fn drain(&self) {
        let mut buf = [0u8; 8192];
        let mut indices: Option<Vec<u32>> = None;
        let changed = || self.changed.store(true, Ordering::Relaxed);
        for _ in 0..DRAIN_BUDGET {
            match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
                Err(Errno::EAGAIN) | Ok(0) => return,
                Err(Errno::EINTR) => continue,
                Ok(n) => {
                    // The indices now: an interface can come, go or be
                    // made again under the same name.
                    let wanted = indices.get_or_insert_with(|| {
                        self.names.iter().filter_map(|n| self.index_of(n)).collect()
                    });
                    if touches(buf.get(..n).unwrap_or_default(), wanted) {
                        changed();
                    }
                }
                Err(Errno::ENOBUFS) => changed(),
                Err(_) => return changed(),
            }
        }
        // More are queued: the next wait returns at once for them.
    }

    /// The index of interface `name` in the socket's own namespace (an
    /// ioctl on the netlink socket falls through to the device layer of its
    /// namespace, where `if_nametoindex` would ask the caller's thread's),
    /// or `None` when there is no such interface now.
    fn index_of(&self, name: &str) -> Option<u32> {
        check_ifname(name).ok()?;
        let mut req = ifreq(name);
        // SAFETY: req is a valid ifreq with a NUL-terminated name (checked
        // shorter than IFNAMSIZ), and the fd is an open socket.
        unsafe { ioctl_get_index(self.fd.as_raw_fd(), &mut req) }.ok()?;
        // SAFETY: SIOCGIFINDEX fills the ifindex member of the union.
        u32::try_from(unsafe { req.ifr_ifru.ifru_ifindex }).ok()
    }

    /// Whether a [`HostWatch::drain`] read a change since the last call
    /// (true on the first). No system call: the core asks on every round of
    /// its timers, and the backend's wait, which runs between any two
    /// steps of the agent, has drained the socket already.
    pub fn take_changed(&self) -> bool {
        self.changed.swap(false, Ordering::Relaxed)
    }

    /// The socket, for `poll(2)`.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

nix::ioctl_readwrite_bad!(ioctl_get_index, libc::SIOCGIFINDEX, libc::ifreq);

/// The size of `struct nlmsghdr`; the interface index of `ifinfomsg`,
/// `ifaddrmsg` and `prefixmsg` follows it after 4 bytes.
const NLMSG_HDRLEN: usize = 16;

/// Whether one datagram of rtnetlink notifications is about an interface
/// whose index is in `wanted`: a link or address message for it, a link
/// deleted (its index may be gone already), or a netlink error or overrun.
/// Bytes that do not parse end the datagram; they count as a change, since
/// what they said is unknown.
pub(crate) fn touches(mut msgs: &[u8], wanted: &[u32]) -> bool {
    const RTM_NEWPREFIX: u16 = 52;
    let u32_at = |b: &[u8], at: usize| {
        b.get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_ne_bytes)
    };
    while !msgs.is_empty() {
        let Some(len) = u32_at(msgs, 0).map(|l| l as usize) else {
            return true;
        };
        let Some(kind) = msgs
            .get(4..6)
            .and_then(|b| b.try_into().ok())
            .map(u16::from_ne_bytes)
        else {
            return true;
        };
        let Some(msg) = msgs.get(..len).filter(|_| len >= NLMSG_HDRLEN) else {
            return true;
        };
        match kind {
            libc::RTM_DELLINK => return true,
            libc::RTM_NEWLINK | libc::RTM_NEWADDR | libc::RTM_DELADDR | RTM_NEWPREFIX => {
                match u32_at(msg, NLMSG_HDRLEN + 4) {
                    Some(index) if !wanted.contains(&index) => {}
                    _ => return true,
                }
            }
            k if k == libc::NLMSG_ERROR as u16 || k == libc::NLMSG_OVERRUN as u16 => return true,
            _ => {}
        }
        // NLMSG_ALIGN: messages are padded to 4 bytes.
        msgs = msgs.get(len.next_multiple_of(4)..).unwrap_or_default();
    }
    false
}

impl LinuxHostNet {
    /// Facts about interface `iface`, reading `/proc`.
    pub fn new(iface: impl Into<String>) -> Self {
        Self::with_proc_root(iface, "/proc")
    }

    /// Facts about `iface`, reading `proc_root` in place of `/proc` (tests).
    pub fn with_proc_root(iface: impl Into<String>, proc_root: impl Into<PathBuf>) -> Self {
        LinuxHostNet {
            iface: iface.into(),
            proc_root: proc_root.into(),
            watch: None,
        }
    }

    /// Tells the core when the facts may have changed, from `watch`
    /// (which the frames backend's `wait` drains); `None`: it cannot tell.
    pub fn watching(mut self, watch: Option<Arc<HostWatch>>) -> Self {
        self.watch = watch;
        self
    }

    /// Whether the host's IPv6 stack is enabled on the interface.
    pub fn ipv6_enabled(&self) -> bool {
        ipv6_enabled(&self.proc_root, &self.iface)
    }

    /// Whether the interface is up with carrier (`IFF_UP` and `IFF_RUNNING`).
    pub fn link_up(&self) -> bool {
        let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
            return false;
        };
        addrs.filter(|a| a.interface_name == self.iface).any(|a| {
            a.flags
                .contains(InterfaceFlags::IFF_UP | InterfaceFlags::IFF_RUNNING)
        })
    }
}

fn disabled_flag(path: &Path) -> Option<bool> {
    let text = fs::read_to_string(path).ok()?;
    Some(text.trim() != "0")
}

/// `disable_ipv6` is 0 for both `all` and the interface (a missing per-
/// interface file, e.g. before the device appears, defers to `all`).
pub(crate) fn ipv6_enabled(proc_root: &Path, iface: &str) -> bool {
    let conf = proc_root.join("sys/net/ipv6/conf");
    if !proc_root.join("sys/net/ipv6").is_dir() {
        return false;
    }
    match disabled_flag(&conf.join("all/disable_ipv6")) {
        Some(false) => {}
        Some(true) | None => return false,
    }
    !disabled_flag(&conf.join(iface).join("disable_ipv6")).unwrap_or(false)
}

impl HostNet for LinuxHostNet {
    fn facts(&mut self) -> HostFacts {
        let mut facts = HostFacts {
            ipv6_enabled: self.ipv6_enabled(),
            ..HostFacts::default()
        };
        if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
            for a in addrs.filter(|a| a.interface_name == self.iface) {
                let Some(addr) = a.address else { continue };
                if addr.as_sockaddr_in().is_some() {
                    facts.ipv4_present = true;
                }
                if addr.as_sockaddr_in6().is_some() {
                    facts.ipv6_present = true;
                }
            }
        }
        facts
    }

    fn facts_changed(&mut self) -> Option<bool> {
        self.watch.as_ref().map(|w| w.take_changed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One rtnetlink message: a header of `kind`, then 4 bytes, then the
    /// interface index, then padding to `body` bytes.
    fn msg(kind: u16, index: u32, body: usize) -> Vec<u8> {
        let len = NLMSG_HDRLEN + body;
        let mut m = vec![0u8; len.next_multiple_of(4)];
        m[..4].copy_from_slice(&(len as u32).to_ne_bytes());
        m[4..6].copy_from_slice(&kind.to_ne_bytes());
        m[NLMSG_HDRLEN + 4..NLMSG_HDRLEN + 8].copy_from_slice(&index.to_ne_bytes());
        m
    }

    #[test]
    fn only_notifications_about_a_watched_interface_count() {
        let ours = [7];
        for kind in [libc::RTM_NEWLINK, libc::RTM_NEWADDR, libc::RTM_DELADDR, 52] {
            assert!(touches(&msg(kind, 7, 16), &ours), "kind {kind} for ours");
            assert!(
                !touches(&msg(kind, 9, 16), &ours),
                "kind {kind} for another"
            );
        }
        // A route or neighbour message (other groups) says nothing.
        assert!(!touches(&msg(libc::RTM_NEWROUTE, 7, 16), &ours));
        // A deleted link may have been ours under an index now gone.
        assert!(touches(&msg(libc::RTM_DELLINK, 9, 16), &ours));
        // Several in one datagram, padding included: the second is ours.
        let mut two = msg(libc::RTM_NEWADDR, 9, 9);
        two.extend(msg(libc::RTM_NEWADDR, 7, 9));
        assert!(touches(&two, &ours));
        assert!(!touches(&two, &[3]));
        // No watched interface exists yet: only link deletions count.
        assert!(!touches(&msg(libc::RTM_NEWLINK, 7, 16), &[]));
    }

    /// Random datagrams (and random mutations of well-formed ones) never
    /// panic, and watching more interfaces never hears less.
    #[test]
    fn random_datagrams_never_panic_and_more_watched_hears_more() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..20_000 {
            let mut d = if round % 2 == 0 {
                let mut d = msg(libc::RTM_NEWADDR, (next() % 4) as u32, 8);
                d.extend(msg(libc::RTM_NEWLINK, (next() % 4) as u32, 16));
                d
            } else {
                vec![0u8; (next() % 96) as usize]
            };
            for _ in 0..(next() % 4) {
                if !d.is_empty() {
                    let at = (next() as usize) % d.len();
                    d[at] = next() as u8;
                }
            }
            let (a, b) = ((next() % 4) as u32, (next() % 4) as u32);
            if touches(&d, &[a]) {
                assert!(touches(&d, &[a, b]), "{d:?}");
            }
            if touches(&d, &[]) {
                assert!(touches(&d, &[a]), "{d:?}");
            }
        }
    }

    #[test]
    fn a_datagram_that_does_not_parse_counts_as_a_change() {
        let ours = [7];
        let good = msg(libc::RTM_NEWADDR, 9, 16);
        assert!(!touches(&[], &ours));
        for cut in 1..good.len() {
            // A cut message: what it said is unknown.
            assert!(touches(&good[..cut], &ours), "cut at {cut}");
        }
        let mut short = good.clone();
        short[..4].copy_from_slice(&3u32.to_ne_bytes());
        assert!(touches(&short, &ours), "a length below the header's");
        let mut long = good;
        long[..4].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert!(touches(&long, &ours), "a length past the datagram");
        assert!(touches(&msg(libc::NLMSG_OVERRUN as u16, 9, 16), &ours));
    }

    fn proc_tree(all: Option<&str>, iface: Option<&str>) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let conf = t.path().join("sys/net/ipv6/conf");
        fs::create_dir_all(conf.join("all")).unwrap();
        if let Some(v) = all {
            fs::write(conf.join("all/disable_ipv6"), v).unwrap();
        }
        if let Some(v) = iface {
            fs::create_dir_all(conf.join("idrac")).unwrap();
            fs::write(conf.join("idrac/disable_ipv6"), v).unwrap();
        }
        t
    }

    #[test]
    fn ipv6_is_enabled_only_when_all_and_the_interface_say_zero() {
        let t = proc_tree(Some("0\n"), Some("0\n"));
        assert!(ipv6_enabled(t.path(), "idrac"));
        let t = proc_tree(Some("0\n"), Some("1\n"));
        assert!(!ipv6_enabled(t.path(), "idrac"));
        let t = proc_tree(Some("1\n"), Some("0\n"));
        assert!(!ipv6_enabled(t.path(), "idrac"));
        let t = proc_tree(Some("0\n"), None);
        assert!(ipv6_enabled(t.path(), "idrac"));
    }

    #[test]
    fn a_kernel_without_proc_sys_net_ipv6_has_ipv6_disabled() {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir_all(t.path().join("sys/net")).unwrap();
        assert!(!ipv6_enabled(t.path(), "idrac"));
        let t = proc_tree(None, Some("0"));
        assert!(!ipv6_enabled(t.path(), "idrac"));
    }

    #[test]
    fn loopback_facts_show_its_ipv4_address_and_a_missing_interface_shows_none() {
        let t = proc_tree(Some("0"), None);
        let mut lo = LinuxHostNet::with_proc_root("lo", t.path());
        assert!(lo.facts().ipv4_present, "127.0.0.1 on lo");
        assert!(lo.link_up());
        let mut none = LinuxHostNet::with_proc_root("nosuchif0", t.path());
        let f = none.facts();
        assert!(!f.ipv4_present && !f.ipv6_present);
        assert!(!none.link_up());
    }
}
