//! The TAP backend: `/dev/net/tun` with `IFF_TAP | IFF_NO_PI`, created or
//! attached by name. The kernel sits on the other side of the device, so a
//! test can play the BMC with the kernel's own ARP, NDP and TCP.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;

use bmclink_core::platform::{Frames, Nic, Wake, MAX_FRAME_LEN};
use smoltcp::time::Instant;

use super::{
    check_ifname, control_socket, ifreq, interface_running, set_interface_up, wait_on, FramesError,
    Wakers, SKIP_BUDGET,
};
use crate::clock::LinuxClock;

// TUNSETIFF is _IOW('T', 202, int) but takes a `struct ifreq *`.
nix::ioctl_write_ptr_bad!(
    ioctl_tunsetiff,
    nix::request_code_write!(b'T', 202, std::mem::size_of::<libc::c_int>()),
    libc::ifreq
);

/// Frames through a TAP device.
#[derive(Debug)]
pub struct TapFrames {
    name: String,
    tun: File,
    ctl: OwnedFd,
    mac: [u8; 6],
    clock: LinuxClock,
    wakers: Wakers,
    /// Where a read lands: a TAP read returns one whole frame and cuts a
    /// frame longer than its buffer, so it reads into a full-size buffer and
    /// drops what does not fit the caller's. Kept, so no read clears 64 KiB.
    frame: Box<[u8]>,
}

impl TapFrames {
    /// Opens the TAP device `name`, creating it when it does not exist (it
    /// then disappears when this value is dropped) or attaching to a
    /// persistent one, and sets its link up. `mac` is the agent's own
    /// address, not the kernel-side MAC of the TAP.
    pub fn open(name: &str, mac: [u8; 6], clock: LinuxClock) -> Result<Self, FramesError> {
        check_ifname(name)?;
        let tun = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open("/dev/net/tun")
            .map_err(|e| FramesError::sys("opening /dev/net/tun", name, e))?;
        let mut req = ifreq(name);
        req.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
        // SAFETY: req is a valid ifreq with a NUL-terminated name and flags.
        unsafe { ioctl_tunsetiff(tun.as_raw_fd(), &req) }
            .map_err(|e| FramesError::sys("attaching the tun device (TUNSETIFF)", name, e))?;
        let ctl = control_socket().map_err(|e| FramesError::sys("opening a socket", name, e))?;
        set_interface_up(ctl.as_fd(), name)
            .map_err(|e| FramesError::sys("setting the link up", name, e))?;
        Ok(TapFrames {
            name: name.to_owned(),
            tun,
            ctl,
            mac,
            clock,
            wakers: Wakers::default(),
            frame: vec![0u8; 65536].into_boxed_slice(),
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

impl Nic for TapFrames {
    fn mac(&self) -> [u8; 6] {
        self.mac
    }
    fn link_up(&self) -> bool {
        interface_running(self.ctl.as_fd(), &self.name)
    }
}

impl Frames for TapFrames {
    fn recv(&mut self, buf: &mut [u8]) -> Option<usize> {
        for _ in 0..SKIP_BUDGET {
            match self.tun.read(&mut self.frame) {
                Ok(0) => return None,
                Ok(n) if n > buf.len() => continue,
                Ok(n) => {
                    buf.get_mut(..n)?.copy_from_slice(self.frame.get(..n)?);
                    return Some(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return None,
            }
        }
        None
    }

    fn send(&mut self, frame: &[u8]) {
        if frame.len() > MAX_FRAME_LEN || frame.len() < 14 {
            return;
        }
        // Best effort: a full queue or a downed link drops the frame, as a wire would.
        let _ = self.tun.write(frame);
    }

    fn wait(&mut self, deadline: Option<Instant>) -> Wake {
        wait_on(self.tun.as_fd(), &self.wakers, &self.clock, deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_name_is_refused_before_any_system_call() {
        let err = TapFrames::open(
            "much-too-long-name",
            [2, 0, 0, 0, 0, 1],
            LinuxClock::start(),
        )
        .unwrap_err();
        assert!(matches!(err, FramesError::Name(ref n) if n == "much-too-long-name"));
        assert!(err.to_string().contains("1 to 15 bytes"));
    }

    #[test]
    fn tunsetiff_request_code_matches_the_kernel_header() {
        // linux/if_tun.h: #define TUNSETIFF _IOW('T', 202, int) == 0x400454ca
        let code = nix::request_code_write!(b'T', 202, std::mem::size_of::<libc::c_int>());
        assert_eq!(code as u64, 0x4004_54ca);
    }
}
