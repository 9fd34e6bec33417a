//! SIGTERM and SIGINT end `Frames::wait` with `Wake::Stop`, once per signal.
//! A test binary of its own: the handlers are process-wide.

use std::os::fd::AsFd;

use bmclink_core::platform::{Clock, Frames, Nic, Wake};
use bmclink_linux::clock::LinuxClock;
use bmclink_linux::frames::{StopSignal, Wakers};
use smoltcp::time::Instant;

/// A device that never has a frame: only the stop pipe or the deadline
/// can end its wait.
struct Silent {
    clock: LinuxClock,
    stop: Wakers,
    idle: std::os::fd::OwnedFd,
}

impl Nic for Silent {
    fn mac(&self) -> [u8; 6] {
        [2, 0, 0, 0, 0, 1]
    }
    fn link_up(&self) -> bool {
        true
    }
}

impl Frames for Silent {
    fn recv(&mut self, _: &mut [u8]) -> Option<usize> {
        None
    }
    fn send(&mut self, _: &[u8]) {}
    fn wait(&mut self, deadline: Option<Instant>) -> Wake {
        bmclink_linux::frames::wait_on(self.idle.as_fd(), &self.stop, &self.clock, deadline)
    }
}

#[test]
fn sigterm_and_sigint_each_end_one_wait_with_stop() {
    let stop = StopSignal::install().expect("install handlers");
    assert!(
        StopSignal::install().is_err(),
        "handlers install once per process"
    );
    let (idle, _keep) = nix::unistd::pipe().expect("pipe");
    let clock = LinuxClock::start();
    let stop = Wakers {
        stop: Some(stop),
        host: None,
    };
    let mut dev = Silent { clock, stop, idle };
    let now = Some(clock.now());
    assert_eq!(dev.wait(now), Wake::Ready);
    nix::sys::signal::raise(nix::sys::signal::Signal::SIGTERM).expect("raise");
    // No deadline: only the signal can end this wait.
    assert_eq!(dev.wait(None), Wake::Stop);
    assert_eq!(dev.wait(now), Wake::Ready);
    nix::sys::signal::raise(nix::sys::signal::Signal::SIGINT).expect("raise");
    assert_eq!(dev.wait(None), Wake::Stop);
}
