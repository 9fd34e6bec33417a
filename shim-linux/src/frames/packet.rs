//! The AF_PACKET backend: a raw socket bound to the USBNIC.
//!
//! The kernel keeps its own addresses and MAC on the interface; the agent
//! uses its own locally administered MAC, so the socket joins
//! `PACKET_MR_PROMISC` to receive unicast frames to that MAC (and every
//! multicast group, solicited-node ones included). Frames the agent itself
//! sent come back as `PACKET_OUTGOING` and are dropped, so our ARP probes are
//! never read back as conflicts; the kernel's own outgoing frames are kept:
//! from the agent's point of view the kernel is another host on the wire.

use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use bmclink_core::platform::{Frames, Nic, Wake, MAX_FRAME_LEN};
use smoltcp::time::Instant;

use super::{check_ifname, wait_on, FramesError, Wakers, SKIP_BUDGET};
use crate::clock::LinuxClock;

/// Frames through an AF_PACKET socket on one interface.
#[derive(Debug)]
pub struct PacketFrames {
    name: String,
    sock: OwnedFd,
    mac: [u8; 6],
    clock: LinuxClock,
    wakers: Wakers,
}

fn last_error() -> io::Error {
    io::Error::last_os_error()
}

impl PacketFrames {
    /// Opens a raw socket on interface `name`, bound to it, in promiscuous
    /// membership. `mac` is the agent's own address.
    pub fn open(name: &str, mac: [u8; 6], clock: LinuxClock) -> Result<Self, FramesError> {
        check_ifname(name)?;
        let ifindex = nix::net::if_::if_nametoindex(name)
            .map_err(|_| FramesError::NoSuchInterface(name.to_owned()))?;
        let proto = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: plain socket(2) call; the result is checked.
        let fd = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                libc::c_int::from(proto),
            )
        };
        if fd < 0 {
            return Err(FramesError::sys(
                "opening a raw packet socket",
                name,
                last_error(),
            ));
        }
        // SAFETY: fd is a fresh socket we own.
        let sock = unsafe { OwnedFd::from_raw_fd(fd) };
        let ifindex = libc::c_int::try_from(ifindex)
            .map_err(|_| FramesError::NoSuchInterface(name.to_owned()))?;

        // SAFETY: sockaddr_ll is plain old data.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as libc::c_ushort;
        addr.sll_protocol = proto;
        addr.sll_ifindex = ifindex;
        // SAFETY: addr is a valid sockaddr_ll of the given size.
        let rc = unsafe {
            libc::bind(
                sock.as_raw_fd(),
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(FramesError::sys(
                "binding the packet socket",
                name,
                last_error(),
            ));
        }

        // SAFETY: packet_mreq is plain old data.
        let mut mreq: libc::packet_mreq = unsafe { std::mem::zeroed() };
        mreq.mr_ifindex = ifindex;
        mreq.mr_type = libc::PACKET_MR_PROMISC as libc::c_ushort;
        // SAFETY: mreq is a valid packet_mreq of the given size.
        let rc = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_ADD_MEMBERSHIP,
                (&mreq as *const libc::packet_mreq).cast(),
                std::mem::size_of::<libc::packet_mreq>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(FramesError::sys(
                "joining promiscuous membership (PACKET_ADD_MEMBERSHIP)",
                name,
                last_error(),
            ));
        }
        Ok(PacketFrames {
            name: name.to_owned(),
            sock,
            mac,
            clock,
            wakers: Wakers::default(),
        })
    }

    /// Makes [`Frames::wait`] end on `wakers` too.
    pub fn waking_on(mut self, wakers: Wakers) -> Self {
        self.wakers = wakers;
        self
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Whether a received frame is for the agent: not one it sent itself, and
/// addressed to its MAC, to broadcast or to a multicast group.
pub(crate) fn accept_frame(frame: &[u8], pkttype: u8, own_mac: [u8; 6]) -> bool {
    let (Some(dst), Some(src)) = (frame.get(0..6), frame.get(6..12)) else {
        return false;
    };
    if pkttype == libc::PACKET_OUTGOING && src == own_mac {
        return false;
    }
    let multicast = dst.first().is_some_and(|b| b & 0x01 != 0);
    multicast || dst == own_mac
}

impl Nic for PacketFrames {
    fn mac(&self) -> [u8; 6] {
        self.mac
    }
    fn link_up(&self) -> bool {
        super::interface_running(self.sock.as_fd(), &self.name)
    }
}

impl Frames for PacketFrames {
    fn recv(&mut self, buf: &mut [u8]) -> Option<usize> {
        for _ in 0..SKIP_BUDGET {
            // SAFETY: sockaddr_ll is plain old data.
            let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut from_len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            // Straight into the caller's buffer: MSG_TRUNC makes a packet
            // socket return the frame's real length, so a frame longer than
            // `buf` is seen and dropped rather than passed on cut short, with
            // no 64 KiB bounce buffer to clear and copy for every frame.
            // SAFETY: buf and from are valid for the lengths given.
            let n = unsafe {
                libc::recvfrom(
                    self.sock.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_TRUNC,
                    (&mut from as *mut libc::sockaddr_ll).cast(),
                    &mut from_len,
                )
            };
            let Ok(n) = usize::try_from(n) else {
                if last_error().kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return None;
            };
            let Some(got) = buf.get(..n) else {
                continue;
            };
            if accept_frame(got, from.sll_pkttype, self.mac) {
                return Some(n);
            }
        }
        None
    }

    fn send(&mut self, frame: &[u8]) {
        if frame.len() > MAX_FRAME_LEN || frame.len() < 14 {
            return;
        }
        // SAFETY: frame is valid for its length; the socket is bound.
        let _ = unsafe {
            libc::send(
                self.sock.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                libc::MSG_DONTWAIT,
            )
        };
    }

    fn wait(&mut self, deadline: Option<Instant>) -> Wake {
        wait_on(self.sock.as_fd(), &self.wakers, &self.clock, deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: [u8; 6] = [0x02, 0, 0, 0, 0, 0x10];
    const KERNEL: [u8; 6] = [0x52, 0x54, 0, 0, 0, 0x01];

    fn frame(dst: [u8; 6], src: [u8; 6]) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&dst);
        f.extend_from_slice(&src);
        f.extend_from_slice(&[0x08, 0x06]);
        f.resize(60, 0);
        f
    }

    #[test]
    fn our_own_outgoing_frames_are_dropped() {
        let f = frame([0xff; 6], OWN);
        assert!(!accept_frame(&f, libc::PACKET_OUTGOING, OWN));
        assert!(accept_frame(&f, libc::PACKET_BROADCAST, OWN));
    }

    #[test]
    fn the_kernels_outgoing_broadcasts_are_kept() {
        let f = frame([0xff; 6], KERNEL);
        assert!(accept_frame(&f, libc::PACKET_OUTGOING, OWN));
    }

    #[test]
    fn unicast_to_another_mac_is_dropped_and_to_ours_kept() {
        assert!(!accept_frame(
            &frame(KERNEL, [0x02, 9, 9, 9, 9, 9]),
            libc::PACKET_HOST,
            OWN
        ));
        assert!(accept_frame(
            &frame(OWN, KERNEL),
            libc::PACKET_OTHERHOST,
            OWN
        ));
        // Solicited-node multicast (33:33:ff:..) is kept.
        assert!(accept_frame(
            &frame([0x33, 0x33, 0xff, 0, 0, 0x10], KERNEL),
            libc::PACKET_MULTICAST,
            OWN
        ));
    }

    #[test]
    fn a_runt_frame_is_dropped() {
        assert!(!accept_frame(&[0xff; 8], libc::PACKET_HOST, OWN));
    }

    #[test]
    fn a_missing_interface_is_named_in_the_error() {
        let err = PacketFrames::open("nosuchif0", OWN, LinuxClock::start()).unwrap_err();
        assert!(
            err.to_string().contains("\"nosuchif0\" does not exist"),
            "{err}"
        );
    }
}
