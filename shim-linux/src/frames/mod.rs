//! `Frames` backends: a TAP device and an AF_PACKET socket on the USBNIC, a
//! pcap decorator, and what they share: the `poll(2)` wait with a stop pipe
//! for SIGTERM/SIGINT, interface flags, and the agent's own MAC address.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use bmclink_core::platform::Wake;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use smoltcp::time::Instant;

use crate::clock::LinuxClock;
use crate::hostnet::HostWatch;

pub mod packet;
pub mod tap;

pub use packet::PacketFrames;
pub use tap::TapFrames;

/// A backend could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum FramesError {
    /// The interface name is empty, too long (15 bytes at most) or has a NUL.
    #[error("interface name {0:?} is not valid: it must be 1 to 15 bytes without NUL or '/'")]
    Name(String),
    /// The interface does not exist.
    #[error("interface {0:?} does not exist (is the BMC's USB NIC connected? `ip link` lists interfaces)")]
    NoSuchInterface(String),
    /// A system call failed.
    #[error("{what} for interface {iface:?} failed: {source}{hint}")]
    Sys {
        /// What was being done.
        what: &'static str,
        /// The interface.
        iface: String,
        /// The OS error.
        source: io::Error,
        /// A fix, when the error has a usual one.
        hint: &'static str,
    },
}

impl FramesError {
    pub(crate) fn sys(what: &'static str, iface: &str, err: impl Into<io::Error>) -> Self {
        let source = err.into();
        let hint = match source.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => {
                " (needs root or CAP_NET_ADMIN and CAP_NET_RAW)"
            }
            Some(libc::ENOENT) if what.contains("tun") => {
                " (is the tun module loaded? `modprobe tun`)"
            }
            Some(libc::EBUSY) => " (another process holds this TAP device)",
            _ => "",
        };
        FramesError::Sys {
            what,
            iface: iface.to_owned(),
            source,
            hint,
        }
    }
}

/// Checks an interface name the way the kernel does (IFNAMSIZ - 1 bytes).
pub(crate) fn check_ifname(name: &str) -> Result<(), FramesError> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains(['\0', '/']) {
        return Err(FramesError::Name(name.to_owned()));
    }
    Ok(())
}

/// A fresh locally administered unicast MAC (bit 1 of the first octet set,
/// bit 0 clear), used as the agent's own address so it never collides with
/// the kernel's MAC on the same interface.
pub fn local_mac(rng: &mut impl rand_core::RngCore) -> [u8; 6] {
    let mut mac = [0u8; 6];
    rng.fill_bytes(&mut mac);
    mac[0] = (mac[0] | 0x02) & !0x01;
    mac
}

/// Parses `aa:bb:cc:dd:ee:ff`; multicast addresses are refused.
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for byte in mac.iter_mut() {
        let part = parts.next()?;
        if part.len() != 2 {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    if parts.next().is_some() || mac[0] & 0x01 != 0 || mac == [0; 6] {
        return None;
    }
    Some(mac)
}

/// Formats a MAC as `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: [u8; 6]) -> String {
    let [a, b, c, d, e, f] = mac;
    format!("{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}")
}

/// The most frames one `recv` call reads and throws away (another host's
/// unicast, our own frames looped back, oversize frames) before it returns
/// `None`. Without a bound a flood of such frames keeps one call reading for
/// as long as it lasts, and the core's receive budget
/// (`bmclink_core::drive::RX_BUDGET`) never gets a say. The frames
/// left in the socket keep `poll(2)` readable, so the next wait returns at
/// once and nothing is lost that the kernel did not drop already.
pub const SKIP_BUDGET: usize = 64;

static STOP_PIPE_WRITE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_stop_signal(_sig: libc::c_int) {
    let fd = STOP_PIPE_WRITE.load(Ordering::Relaxed);
    if fd >= 0 {
        // write(2) is async-signal-safe; a full pipe already holds a wake-up.
        let byte = 1u8;
        // SAFETY: fd is the pipe's write end, kept open for the process's life.
        let _ = unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
    }
}

/// The read end of a self-pipe that becomes readable on a stop request
/// (SIGTERM/SIGINT, or [`StopTrigger::stop`] in tests). Each request makes
/// one [`Wake::Stop`]: a second SIGTERM during shutdown is a second `Stop`.
#[derive(Debug)]
pub struct StopSignal {
    read: OwnedFd,
}

/// Asks the [`StopSignal`] it was made with to stop (tests, embedding).
#[derive(Debug)]
pub struct StopTrigger {
    write: File,
}

fn nonblocking_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC)?;
    Ok((r, w))
}

impl StopSignal {
    /// Installs SIGTERM and SIGINT handlers that write to a self-pipe. Call
    /// once per process; a second call fails with `AlreadyExists`.
    pub fn install() -> io::Result<StopSignal> {
        use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
        let (read, write) = nonblocking_pipe()?;
        let raw = write.as_raw_fd();
        if STOP_PIPE_WRITE
            .compare_exchange(-1, raw, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "the stop signal handlers are already installed",
            ));
        }
        // The write end lives as long as the process: the handler uses it.
        std::mem::forget(write);
        let action = SigAction::new(
            SigHandler::Handler(on_stop_signal),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        for sig in [Signal::SIGTERM, Signal::SIGINT] {
            // SAFETY: the handler only calls write(2) on a pipe.
            unsafe { sigaction(sig, &action) }?;
        }
        Ok(StopSignal { read })
    }

    /// A stop pipe without signal handlers, with the trigger that fires it.
    pub fn pair() -> io::Result<(StopSignal, StopTrigger)> {
        let (read, write) = nonblocking_pipe()?;
        Ok((
            StopSignal { read },
            StopTrigger {
                write: File::from(write),
            },
        ))
    }

    /// Consumes one pending stop request; `true` when there was one.
    fn take(&self) -> bool {
        let mut byte = [0u8; 1];
        matches!(nix::unistd::read(&self.read, &mut byte), Ok(1))
    }
}

impl StopTrigger {
    /// Requests one stop.
    pub fn stop(&mut self) -> io::Result<()> {
        self.write.write_all(&[1])
    }
}

/// What ends a backend's wait besides its device: a stop request, and the
/// host's link and address notifications (which the wait reads into the
/// watch for [`crate::hostnet::LinuxHostNet`]).
#[derive(Debug, Default)]
pub struct Wakers {
    /// Ends the wait with [`Wake::Stop`].
    pub stop: Option<StopSignal>,
    /// Ends the wait with [`Wake::Ready`].
    pub host: Option<Arc<HostWatch>>,
}

/// The `poll(2)` timeout for `deadline`, rounded up to whole milliseconds so
/// a sub-millisecond remainder does not spin.
pub(crate) fn poll_timeout(clock: &LinuxClock, deadline: Option<Instant>) -> PollTimeout {
    match deadline {
        None => PollTimeout::NONE,
        Some(d) => {
            let micros = clock.until(d).as_micros();
            let millis = micros.div_ceil(1000);
            PollTimeout::try_from(millis).unwrap_or(PollTimeout::MAX)
        }
    }
}

/// Blocks on `device` (readable) and the [`Wakers`] until one is ready or
/// the deadline passes. Errors (EINTR included) are spurious returns.
/// Notifications are read here, and only here (the flag stays in `host` for
/// [`crate::hostnet::LinuxHostNet`]), so a watch does not keep the next wait
/// from sleeping, unless more came than one drain reads. Every backend's
/// `wait` is this; a simulator or another backend may use it too.
pub fn wait_on(
    device: BorrowedFd<'_>,
    wakers: &Wakers,
    clock: &LinuxClock,
    deadline: Option<Instant>,
) -> Wake {
    let (stop, host) = (wakers.stop.as_ref(), wakers.host.as_deref());
    let timeout = poll_timeout(clock, deadline);
    // The device, then the stop pipe and the watch when there are.
    let mut fds: [PollFd<'_>; 3] = std::array::from_fn(|_| PollFd::new(device, PollFlags::POLLIN));
    let mut used = 1;
    let (mut stop_at, mut host_at) = (None, None);
    for (fd, at) in [
        (stop.map(|s| s.read.as_fd()), &mut stop_at),
        (host.map(HostWatch::as_fd), &mut host_at),
    ] {
        if let (Some(fd), Some(slot)) = (fd, fds.get_mut(used)) {
            *slot = PollFd::new(fd, PollFlags::POLLIN);
            *at = Some(used);
            used += 1;
        }
    }
    if nix::poll::poll(fds.get_mut(..used).unwrap_or_default(), timeout).is_err() {
        return Wake::Ready;
    }
    let ready = |i: Option<usize>| {
        i.and_then(|i| fds.get(i))
            .and_then(|f| f.revents())
            .is_some_and(|r| !r.is_empty())
    };
    if let Some(h) = host.filter(|_| ready(host_at)) {
        h.drain();
    }
    if let Some(s) = stop.filter(|_| ready(stop_at)) {
        if s.take() {
            return Wake::Stop;
        }
    }
    Wake::Ready
}

nix::ioctl_readwrite_bad!(ioctl_get_flags, libc::SIOCGIFFLAGS, libc::ifreq);
nix::ioctl_write_ptr_bad!(ioctl_set_flags, libc::SIOCSIFFLAGS, libc::ifreq);

/// An `ifreq` naming `name` (checked by [`check_ifname`] first).
pub(crate) fn ifreq(name: &str) -> libc::ifreq {
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    req
}

/// A socket for interface ioctls. AF_UNIX is enough (the kernel routes
/// SIOC[GS]IFFLAGS to the device layer) and the systemd unit allows it.
pub(crate) fn control_socket() -> io::Result<OwnedFd> {
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
    Ok(socket(
        AddressFamily::Unix,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?)
}

/// The interface flags (`IFF_*`).
pub(crate) fn interface_flags(ctl: BorrowedFd<'_>, name: &str) -> io::Result<libc::c_int> {
    let mut req = ifreq(name);
    // SAFETY: req is a valid ifreq with a NUL-terminated name.
    unsafe { ioctl_get_flags(ctl.as_raw_fd(), &mut req) }?;
    // SAFETY: SIOCGIFFLAGS fills the flags member of the union.
    Ok(libc::c_int::from(unsafe { req.ifr_ifru.ifru_flags }))
}

/// Sets IFF_UP on the interface (no-op when it is already up).
pub(crate) fn set_interface_up(ctl: BorrowedFd<'_>, name: &str) -> io::Result<()> {
    let flags = interface_flags(ctl, name)?;
    if flags & libc::IFF_UP != 0 {
        return Ok(());
    }
    let mut req = ifreq(name);
    req.ifr_ifru.ifru_flags = (flags | libc::IFF_UP) as libc::c_short;
    // SAFETY: req is a valid ifreq with the flags member set.
    unsafe { ioctl_set_flags(ctl.as_raw_fd(), &req) }?;
    Ok(())
}

/// Up and running (carrier), from the interface flags; `false` on error.
pub(crate) fn interface_running(ctl: BorrowedFd<'_>, name: &str) -> bool {
    interface_flags(ctl, name)
        .map(|f| f & libc::IFF_UP != 0 && f & libc::IFF_RUNNING != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bmclink_core::platform::Clock;

    #[test]
    fn local_mac_is_locally_administered_unicast() {
        let mut rng = rand_core::OsRng;
        for _ in 0..64 {
            let mac = local_mac(&mut rng);
            assert_eq!(mac[0] & 0x03, 0x02, "{}", format_mac(mac));
        }
    }

    #[test]
    fn mac_text_round_trips_and_multicast_is_refused() {
        let mac = [0x02, 0xab, 0, 1, 2, 0xff];
        assert_eq!(parse_mac(&format_mac(mac)), Some(mac));
        assert_eq!(parse_mac("01:00:5e:00:00:01"), None);
        assert_eq!(parse_mac("02:00:00:00:00"), None);
        assert_eq!(parse_mac("02:00:00:00:00:00:00"), None);
        assert_eq!(parse_mac("02:00:00:00:00:zz"), None);
        assert_eq!(parse_mac("00:00:00:00:00:00"), None);
    }

    #[test]
    fn interface_names_are_checked_like_the_kernel_does() {
        assert!(check_ifname("idrac").is_ok());
        assert!(check_ifname("").is_err());
        assert!(check_ifname("a23456789012345").is_ok());
        assert!(check_ifname("a234567890123456").is_err());
        assert!(check_ifname("a/b").is_err());
    }

    #[test]
    fn poll_timeout_rounds_up_and_none_waits_forever() {
        let c = LinuxClock::start();
        assert_eq!(poll_timeout(&c, None), PollTimeout::NONE);
        assert_eq!(
            poll_timeout(&c, Some(Instant::from_micros(0))),
            PollTimeout::ZERO
        );
        let t = poll_timeout(&c, Some(c.now() + smoltcp::time::Duration::from_micros(10)));
        // 10 µs ahead rounds up to 1 ms, never down to a busy 0.
        assert!(t == PollTimeout::from(1u8) || t == PollTimeout::ZERO);
    }

    #[test]
    fn stop_trigger_wakes_the_wait_once_per_request() {
        let (stop, mut trigger) = StopSignal::pair().unwrap();
        let stop = Wakers {
            stop: Some(stop),
            host: None,
        };
        let (dev, _dev_w) = nonblocking_pipe().unwrap();
        let clock = LinuxClock::start();
        let soon = Some(clock.now());
        assert_eq!(wait_on(dev.as_fd(), &stop, &clock, soon), Wake::Ready);
        trigger.stop().unwrap();
        assert_eq!(wait_on(dev.as_fd(), &stop, &clock, None), Wake::Stop);
        assert_eq!(wait_on(dev.as_fd(), &stop, &clock, soon), Wake::Ready);
    }

    #[test]
    fn a_readable_device_ends_the_wait_before_the_deadline() {
        let (dev, dev_w) = nonblocking_pipe().unwrap();
        File::from(dev_w).write_all(b"x").unwrap();
        let clock = LinuxClock::start();
        // No deadline: only readiness can end this wait.
        assert_eq!(
            wait_on(dev.as_fd(), &Wakers::default(), &clock, None),
            Wake::Ready
        );
    }
}
