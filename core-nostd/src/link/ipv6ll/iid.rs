//! Interface identifiers for the IPv6 link-local address: RFC 7217 stable
//! identifiers (the default) and RFC 4291 modified EUI-64 (an option).

use hmac::{Hmac, Mac};
use sha2::Sha256;
use smoltcp::wire::{EthernetAddress, Ipv6Address};

/// The link-local prefix fe80::/64 as the 8 bytes RFC 7217's `Prefix` names.
const LINK_LOCAL_PREFIX: [u8; 8] = [0xfe, 0x80, 0, 0, 0, 0, 0, 0];

/// RFC 7217 §5: `RID = F(Prefix, Net_Iface, Network_ID, DAD_Counter,
/// secret_key)`, with F = HMAC-SHA256 keyed by `secret` over the
/// concatenation `Prefix | Net_Iface | Network_ID | DAD_Counter`, truncated to
/// the first 64 bits.
///
/// `Prefix` is fe80::/64 (this is only used for the link-local address).
/// `iface` names the interface stably (bmclink uses the USBNIC's MAC),
/// `network_id` may be empty (the USBNIC is a point-to-point link with no
/// name of its own). `secret` should be at least 128 bits, per install.
///
/// A result that RFC 5453 reserves (all zeros, the subnet anycast range, the
/// proxy-mobile range) is never returned: as RFC 7217 §5 says, the
/// computation is repeated with the DAD counter incremented.
pub fn stable_iid(secret: &[u8], iface: &[u8], network_id: &[u8], dad_counter: u8) -> [u8; 8] {
    let mut counter = dad_counter;
    // Each try is reserved with probability below 2^-40; 256 tries cannot all be.
    for _ in 0..=u8::MAX {
        let iid = prf(secret, iface, network_id, counter);
        if !is_reserved_iid(&iid) {
            return iid;
        }
        counter = counter.wrapping_add(1);
    }
    // Unreachable in practice; still a valid, non-reserved identifier.
    [0x02, 0, 0, 0, 0, 0, 0, 0x01]
}

fn prf(secret: &[u8], iface: &[u8], network_id: &[u8], dad_counter: u8) -> [u8; 8] {
    // HMAC takes keys of any length, so this never fails; an all-zero result
    // is reserved and makes the caller move on to the next counter.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return [0; 8];
    };
    mac.update(&LINK_LOCAL_PREFIX);
    mac.update(iface);
    mac.update(network_id);
    mac.update(&[dad_counter]);
    let digest = mac.finalize().into_bytes();
    let mut iid = [0u8; 8];
    for (out, byte) in iid.iter_mut().zip(digest.iter()) {
        *out = *byte;
    }
    iid
}

/// RFC 4291 Appendix A modified EUI-64: the MAC with ff:fe inserted in the
/// middle and the universal/local bit inverted.
pub fn eui64_iid(mac: [u8; 6]) -> [u8; 8] {
    [
        mac[0] ^ 0x02,
        mac[1],
        mac[2],
        0xff,
        0xfe,
        mac[3],
        mac[4],
        mac[5],
    ]
}

/// RFC 5453 reserved interface identifiers: all zeros (subnet-router
/// anycast), fdff:ffff:ffff:ff80–fdff:ffff:ffff:ffff (reserved subnet
/// anycast) and 0200:5eff:fe00:0000–0200:5eff:feff:ffff (proxy mobile IPv6
/// and other IANA uses).
pub fn is_reserved_iid(iid: &[u8; 8]) -> bool {
    let v = u64::from_be_bytes(*iid);
    v == 0
        || (0xfdff_ffff_ffff_ff80..=0xfdff_ffff_ffff_ffff).contains(&v)
        || (0x0200_5eff_fe00_0000..=0x0200_5eff_feff_ffff).contains(&v)
}

/// fe80::/64 with `iid` as its last 64 bits.
pub fn link_local(iid: [u8; 8]) -> Ipv6Address {
    let mut octets = [0u8; 16];
    octets[..8].copy_from_slice(&LINK_LOCAL_PREFIX);
    octets[8..].copy_from_slice(&iid);
    Ipv6Address::from(octets)
}

/// The solicited-node multicast group of `addr` (RFC 4291 §2.7.1):
/// ff02::1:ffXX:XXXX with the address's low 24 bits.
pub fn solicited_node(addr: Ipv6Address) -> Ipv6Address {
    let o = addr.octets();
    Ipv6Address::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    )
}

/// The Ethernet multicast MAC for an IPv6 multicast group (RFC 2464 §7):
/// 33:33 and the group's low 32 bits. For a solicited-node group that is
/// 33:33:ff:XX:XX:XX, which the device must accept.
pub fn multicast_mac(group: Ipv6Address) -> EthernetAddress {
    let o = group.octets();
    EthernetAddress([0x33, 0x33, o[12], o[13], o[14], o[15]])
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const IFACE: &[u8] = &[0x02, 0x00, 0x00, 0x00, 0x00, 0x10];

    #[test]
    fn stable_iid_is_stable_across_calls() {
        let a = stable_iid(SECRET, IFACE, b"", 0);
        // A "restart" recomputes from a fresh copy of the stored secret.
        let reloaded: [u8; 32] = SECRET.try_into().unwrap();
        let b = stable_iid(&reloaded, IFACE, b"", 0);
        assert_eq!(a, b);
        assert!(!is_reserved_iid(&a));
    }

    #[test]
    fn stable_iid_differs_per_interface_secret_network_and_counter() {
        let base = stable_iid(SECRET, IFACE, b"", 0);
        assert_ne!(base, stable_iid(SECRET, &[0x02, 0, 0, 0, 0, 0x11], b"", 0));
        assert_ne!(
            base,
            stable_iid(b"another secret, also 32 bytes!!", IFACE, b"", 0)
        );
        assert_ne!(base, stable_iid(SECRET, IFACE, b"usbnic", 0));
        let ids: [[u8; 8]; 4] = core::array::from_fn(|c| stable_iid(SECRET, IFACE, b"", c as u8));
        for i in 0..4 {
            for j in (i + 1)..4 {
                assert_ne!(ids[i], ids[j], "counters {i} and {j}");
            }
        }
    }

    #[test]
    fn stable_iid_matches_an_independent_hmac_sha256() {
        // HMAC-SHA256(key, fe80:: prefix | iface | network id | counter)[..8],
        // computed from the definition: H((K ^ opad) | H((K ^ ipad) | m)).
        use sha2::Digest;
        let mut key = [0u8; 64];
        key[..32].copy_from_slice(SECRET);
        let mut msg = [0u8; 8 + 6 + 1];
        msg[..8].copy_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0]);
        msg[8..14].copy_from_slice(IFACE);
        msg[14] = 2;
        let inner = Sha256::new()
            .chain_update(key.map(|k| k ^ 0x36))
            .chain_update(msg)
            .finalize();
        let outer = Sha256::new()
            .chain_update(key.map(|k| k ^ 0x5c))
            .chain_update(inner)
            .finalize();
        assert_eq!(stable_iid(SECRET, IFACE, b"", 2)[..], outer[..8]);
    }

    #[test]
    fn reserved_identifiers_are_recognised() {
        assert!(is_reserved_iid(&[0; 8]));
        assert!(is_reserved_iid(&[
            0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x80
        ]));
        assert!(is_reserved_iid(&[
            0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff
        ]));
        assert!(is_reserved_iid(&[
            0x02, 0x00, 0x5e, 0xff, 0xfe, 0x00, 0x52, 0x13
        ]));
        assert!(!is_reserved_iid(&[
            0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f
        ]));
        assert!(!is_reserved_iid(&[0, 0, 0, 0, 0, 0, 0, 1]));
    }

    #[test]
    fn eui64_flips_the_universal_local_bit_and_inserts_fffe() {
        assert_eq!(
            eui64_iid([0x00, 0x1b, 0x21, 0x3c, 0x4d, 0x5e]),
            [0x02, 0x1b, 0x21, 0xff, 0xfe, 0x3c, 0x4d, 0x5e]
        );
        assert_eq!(
            eui64_iid([0x02, 0x00, 0x00, 0x00, 0x00, 0x10]),
            [0x00, 0x00, 0x00, 0xff, 0xfe, 0x00, 0x00, 0x10]
        );
        let addr = link_local(eui64_iid([0x00, 0x1b, 0x21, 0x3c, 0x4d, 0x5e]));
        assert_eq!(
            addr,
            "fe80::21b:21ff:fe3c:4d5e".parse::<Ipv6Address>().unwrap()
        );
    }

    #[test]
    fn solicited_node_group_and_its_mac() {
        let addr: Ipv6Address = "fe80::21b:21ff:fe3c:4d5e".parse().unwrap();
        let group = solicited_node(addr);
        assert_eq!(group, "ff02::1:ff3c:4d5e".parse::<Ipv6Address>().unwrap());
        assert_eq!(
            multicast_mac(group),
            EthernetAddress([0x33, 0x33, 0xff, 0x3c, 0x4d, 0x5e])
        );
    }
}
