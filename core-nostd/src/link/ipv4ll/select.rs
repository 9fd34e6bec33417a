//! RFC 3927 §2.1 address selection: a pseudo-random address in
//! 169.254.1.0 – 169.254.254.255, from a generator seeded with the MAC.

use smoltcp::wire::Ipv4Address;

use crate::link::claim::Prng;

/// First address RFC 3927 allows a host to pick.
pub const FIRST: Ipv4Address = Ipv4Address::new(169, 254, 1, 0);
/// Last address RFC 3927 allows a host to pick.
pub const LAST: Ipv4Address = Ipv4Address::new(169, 254, 254, 255);
/// How many addresses lie in `FIRST..=LAST` (254 × 256).
const RANGE: u64 = 254 * 256;

/// Whether `addr` is one RFC 3927 lets a host pick for itself
/// (169.254.0.0/24 and 169.254.255.0/24 are reserved).
pub fn is_selectable(addr: Ipv4Address) -> bool {
    (FIRST..=LAST).contains(&addr)
}

/// Picks the next candidate: uniform over the RFC 3927 range, never `avoid`
/// (the address just lost) — RFC 5227 asks for a *different* address.
pub(crate) fn pick(rng: &mut Prng, avoid: Ipv4Address) -> Ipv4Address {
    let base = u32::from(FIRST);
    // below(RANGE) < 65024, so the sum stays inside the range and cannot overflow.
    let offset = rng.below(RANGE) as u32;
    let addr = Ipv4Address::from(base.wrapping_add(offset));
    if addr != avoid {
        return addr;
    }
    // Only `avoid` itself is excluded: step to its neighbour in the range.
    let next = offset
        .wrapping_add(1)
        .checked_rem(RANGE as u32)
        .unwrap_or(0);
    Ipv4Address::from(base.wrapping_add(next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_stay_in_range_and_avoid_the_lost_address() {
        let mut rng = Prng::new(42, [2, 0, 0, 0, 0, 1]);
        let mut last = Ipv4Address::new(169, 254, 1, 2);
        for _ in 0..5000 {
            let a = pick(&mut rng, last);
            assert!(is_selectable(a), "{a} outside the RFC 3927 range");
            assert_ne!(a, last);
            last = a;
        }
    }

    #[test]
    fn the_avoided_address_is_never_returned_even_when_drawn() {
        // Every draw of a fresh generator with this seed, forced to avoid it.
        for seed in 0..200u64 {
            let first = pick(&mut Prng::new(seed, [0; 6]), Ipv4Address::UNSPECIFIED);
            let again = pick(&mut Prng::new(seed, [0; 6]), first);
            assert_ne!(again, first);
            assert!(is_selectable(again));
        }
        assert!(is_selectable(LAST) && is_selectable(FIRST));
        assert!(!is_selectable(Ipv4Address::new(169, 254, 0, 255)));
        assert!(!is_selectable(Ipv4Address::new(169, 254, 255, 0)));
    }
}
