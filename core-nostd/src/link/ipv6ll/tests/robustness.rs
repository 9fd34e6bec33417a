//! Malformed and random frames: dropped, counted, never a panic.

use super::*;

#[test]
fn bad_ndp_and_truncated_ipv6_are_dropped_counted_and_never_duplicates() {
    let mut c = claim(9, false);
    let mut now = Instant::from_secs(0);
    c.start(now);
    to_tentative(&mut c, &mut now);
    let t = stable(0);
    let good = na(OTHER, t);
    let mut bad: Vec<Vec<u8>> = Vec::new();
    // Truncated IPv6: header cut, and payload length beyond the frame.
    bad.push(good[..14 + 30].to_vec());
    bad.push(good[..good.len() - 4].to_vec());
    // Hop limit not 255.
    let mut hop = good.clone();
    hop[14 + 7] = 64;
    bad.push(hop);
    // Bad checksum.
    let mut sum = good.clone();
    sum[54 + 2] ^= 0xff;
    bad.push(sum);
    // Option length 0, and a link-layer option of 16 bytes (checksums fixed).
    for len in [0u8, 2] {
        let mut f = good.clone();
        f[54 + 24 + 1] = len;
        fix_checksum(&mut f);
        bad.push(f);
    }
    // A DAD NS (from ::) carrying a source link-layer address option.
    let mut with_sllao = ndp_frame(
        OTHER,
        Ipv6Address::UNSPECIFIED,
        solicited_node(t),
        NdiscRepr::NeighborSolicit {
            target_addr: t,
            lladdr: Some(RawHardwareAddress::from_bytes(OTHER.as_bytes())),
        },
        255,
    );
    fix_checksum(&mut with_sllao);
    bad.push(with_sllao);
    // ICMPv6 code not 0.
    let mut code = good.clone();
    code[54 + 1] = 1;
    fix_checksum(&mut code);
    bad.push(code);
    // A DAD NS (from ::) to all-nodes instead of a solicited-node group.
    bad.push(ndp_frame(
        OTHER,
        Ipv6Address::UNSPECIFIED,
        ALL_NODES,
        NdiscRepr::NeighborSolicit {
            target_addr: t,
            lladdr: None,
        },
        255,
    ));
    // An NA with the Solicited flag to a multicast destination.
    bad.push(ndp_frame(
        OTHER,
        link_local([0, 0, 0, 0, 0, 0, 0, 0x99]),
        ALL_NODES,
        NdiscRepr::NeighborAdvert {
            flags: NdiscNeighborFlags::SOLICITED,
            target_addr: t,
            lladdr: None,
        },
        255,
    ));
    for f in &bad {
        assert_eq!(c.handle_frame(now, f), Verdict::Malformed, "{f:02x?}");
    }
    assert_eq!(c.counters().malformed, bad.len() as u32);
    assert_eq!(c.poll_event(), None);
    assert_eq!(c.tentative(), Some(t));
    // The good one is a duplicate.
    c.handle_frame(now, &good);
    assert!(matches!(
        c.poll_event(),
        Some(Ipv6ClaimEvent::Duplicate { .. })
    ));
}

/// Recomputes the ICMPv6 checksum of a frame whose IPv6 header is intact
/// (mutated frames whose header no longer parses are left alone).
fn fix_checksum(frame: &mut [u8]) {
    let Ok(ip) = Ipv6Packet::new_checked(&frame[14..]) else {
        return;
    };
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    let end = 54 + ip.payload_len() as usize;
    if end < 58 {
        return;
    }
    Icmpv6Packet::new_unchecked(&mut frame[54..end]).fill_checksum(&src, &dst);
}

#[test]
fn random_garbage_never_panics() {
    let mut rng = ChaCha8Rng::seed_from_u64(0x6eed);
    let mut c = claim(1, true);
    let mut now = Instant::from_secs(0);
    c.start(now);
    let templates = [na(OTHER, stable(0)), dad_ns(OTHER, stable(0))];
    for i in 0..20_000u32 {
        let mut frame = [0u8; 128];
        let t = &templates[(i % 2) as usize];
        let len = (rng.next_u32() % 129) as usize;
        if i % 3 == 0 {
            rng.fill_bytes(&mut frame);
            frame[12] = 0x86;
            frame[13] = 0xdd;
            frame[14] = 0x60;
            frame[14 + 6] = 58; // ICMPv6
            frame[54] = 135 + (rng.next_u32() % 2) as u8;
        } else {
            frame[..t.len()].copy_from_slice(t);
            for _ in 0..(1 + rng.next_u32() % 3) {
                let at = (rng.next_u32() as usize) % t.len();
                frame[at] = rng.next_u32() as u8;
            }
            if i % 2 == 0 {
                fix_checksum(&mut frame[..t.len()]);
            }
        }
        now += Duration::from_millis(u64::from(rng.next_u32() % 1500));
        let _ = c.handle_frame(now, &frame[..len]);
        let mut out = [0u8; 128];
        let cap = (rng.next_u32() % 129) as usize;
        let _ = c.poll_transmit(now, &mut out[..cap]);
        let _ = c.poll_event();
        if c.state() == Ipv6ClaimState::Failed || i % 4000 == 0 {
            c.start(now);
        }
    }
    assert!(c.counters().malformed > 0);
}
