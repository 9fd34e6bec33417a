//! Malformed and random frames: dropped, counted, never a panic.

use super::*;

#[test]
fn malformed_arp_is_dropped_counted_and_never_a_conflict() {
    let mut claim = Ipv4Claim::new(MAC, PREFERRED, 5);
    let mut now = Instant::from_secs(0);
    claim.start(now);
    to_first_probe(&mut claim, &mut now);
    let good = arp_frame(ArpOperation::Reply, OTHER, PREFERRED, PREFERRED);
    let mut hlen8 = good;
    hlen8[14 + 4] = 8;
    let mut plen16 = [0u8; 80];
    plen16[..42].copy_from_slice(&good);
    plen16[14 + 5] = 16;
    let mut htype = good;
    htype[14 + 1] = 6;
    let bad: [&[u8]; 5] = [&good[..41], &good[..15], &hlen8, &plen16, &htype];
    for f in bad {
        assert_eq!(claim.handle_frame(now, f), Verdict::Malformed);
    }
    assert_eq!(claim.counters().malformed, 5);
    assert_eq!(claim.poll_event(), None);
    assert_eq!(claim.candidate(), Some(PREFERRED));
    // Non-ARP and runts are not inspected at all.
    let mut ipv4 = good;
    ipv4[13] = 0x00;
    ipv4[12] = 0x08;
    assert_eq!(claim.handle_frame(now, &ipv4), Verdict::Pass);
    assert_eq!(claim.handle_frame(now, &[]), Verdict::Pass);
    assert_eq!(claim.counters().malformed, 5);
}

#[test]
fn random_garbage_never_panics() {
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed);
    let mut claim = Ipv4Claim::new(MAC, PREFERRED, 1);
    let mut now = Instant::from_secs(0);
    claim.start(now);
    let template = arp_frame(ArpOperation::Reply, OTHER, PREFERRED, PREFERRED);
    for i in 0..20_000u32 {
        let mut frame = [0u8; 96];
        let len = (rng.next_u32() % 97) as usize;
        if i % 2 == 0 {
            // A real ARP frame with a few random bytes changed.
            frame[..42].copy_from_slice(&template);
            for _ in 0..(rng.next_u32() % 4) {
                let at = (rng.next_u32() % 42) as usize;
                frame[at] = rng.next_u32() as u8;
            }
        } else {
            rng.fill_bytes(&mut frame);
            frame[12] = 0x08;
            frame[13] = 0x06;
        }
        now += Duration::from_millis(u64::from(rng.next_u32() % 3000));
        let _ = claim.handle_frame(now, &frame[..len]);
        let mut out = [0u8; 64];
        let cap = (rng.next_u32() % 65) as usize;
        let _ = claim.poll_transmit(now, &mut out[..cap]);
        let _ = claim.poll_event();
        if i % 5000 == 0 {
            claim.start(now);
        }
    }
    assert!(claim.counters().malformed > 0);
}
