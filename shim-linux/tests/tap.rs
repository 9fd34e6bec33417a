//! Root-only tests against the Linux kernel: a TAP device (and a veth pair
//! for the AF_PACKET backend) inside a network namespace this test creates,
//! with the kernel's own ARP answering on the other side.
//!
//! Not root: prints why and passes, unless `BMCLINK_REQUIRE_ROOT=1` (CI),
//! which makes it fail. The namespace is deleted by a guard even on failure.

mod common;

use common::{may_run, Netns};

use bmclink_core::platform::{Clock, Frames, Nic, Wake};
use bmclink_linux::clock::LinuxClock;
use bmclink_linux::frames::{PacketFrames, TapFrames};
use smoltcp::time::Duration;

const AGENT_MAC: [u8; 6] = [0x02, 0x62, 0x6c, 0, 0, 0x02];
const AGENT_IP: [u8; 4] = [169, 254, 77, 2];
const KERNEL_IP: [u8; 4] = [169, 254, 77, 1];

fn arp_request() -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&AGENT_MAC);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&AGENT_MAC);
    f.extend_from_slice(&AGENT_IP);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&KERNEL_IP);
    f.resize(60, 0);
    f
}

/// Sends the request and waits (up to 5 s of real time) for the kernel's
/// reply; returns the reply's sender MAC. Fails if our own request is read back.
fn exchange(frames: &mut dyn Frames, clock: &LinuxClock) -> [u8; 6] {
    frames.send(&arp_request());
    let give_up = clock.now() + Duration::from_secs(5);
    let mut buf = [0u8; 1514];
    while clock.now() < give_up {
        assert_eq!(frames.wait(Some(give_up)), Wake::Ready);
        while let Some(n) = frames.recv(&mut buf) {
            let f = &buf[..n];
            assert_ne!(&f[6..12], &AGENT_MAC, "our own frame was read back");
            if n >= 42 && f[12..14] == [0x08, 0x06] && f[20..22] == [0, 2] && f[28..32] == KERNEL_IP
            {
                assert_eq!(&f[0..6], &AGENT_MAC, "reply not addressed to the agent");
                assert_eq!(&f[32..38], &AGENT_MAC);
                assert_eq!(&f[38..42], &AGENT_IP);
                return f[22..28].try_into().unwrap();
            }
        }
    }
    panic!("no ARP reply from the kernel within 5 s");
}

#[test]
fn tap_backend_receives_the_kernels_arp_reply() {
    if !may_run("tap_backend_receives_the_kernels_arp_reply") {
        return;
    }
    let ns = Netns::new("tap");
    let name = format!("blt{}", std::process::id() % 100_000);
    std::thread::scope(|s| {
        s.spawn(|| {
            ns.enter();
            let clock = LinuxClock::start();
            let mut tap = TapFrames::open(&name, AGENT_MAC, clock).expect("open TAP");
            ns.ip(&["addr", "add", "169.254.77.1/16", "dev", &name]);
            assert!(tap.link_up(), "TAP link is up with the fd attached");
            assert_eq!(tap.mac(), AGENT_MAC);
            let kernel_mac = exchange(&mut tap, &clock);
            assert_ne!(
                kernel_mac, AGENT_MAC,
                "the agent's MAC is not the TAP's kernel-side MAC"
            );
            // Nothing more to read: the wait ends at its deadline with Ready.
            while tap.recv(&mut [0u8; 1514]).is_some() {}
            let soon = clock.now() + Duration::from_millis(20);
            assert_eq!(tap.wait(Some(soon)), Wake::Ready);
        })
        .join()
        .expect("TAP test thread");
    });
}

#[test]
fn packet_backend_receives_the_kernels_arp_reply_to_its_own_mac() {
    if !may_run("packet_backend_receives_the_kernels_arp_reply_to_its_own_mac") {
        return;
    }
    let ns = Netns::new("pkt");
    ns.ip(&[
        "link", "add", "blp0", "type", "veth", "peer", "name", "blp1",
    ]);
    ns.ip(&["addr", "add", "169.254.77.1/16", "dev", "blp1"]);
    ns.ip(&["link", "set", "blp0", "up"]);
    ns.ip(&["link", "set", "blp1", "up"]);
    std::thread::scope(|s| {
        s.spawn(|| {
            ns.enter();
            let clock = LinuxClock::start();
            let mut pkt = PacketFrames::open("blp0", AGENT_MAC, clock).expect("open AF_PACKET");
            // veth carrier comes up asynchronously once both ends are up.
            let until = clock.now() + Duration::from_secs(5);
            while !pkt.link_up() && clock.now() < until {
                pkt.wait(Some(clock.now() + Duration::from_millis(10)));
            }
            assert!(pkt.link_up(), "veth link up");
            exchange(&mut pkt, &clock);
        })
        .join()
        .expect("AF_PACKET test thread");
    });
}
