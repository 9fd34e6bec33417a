//! What the IPv4 claim does after it gave an address up (P2, P3).

/// What a claim tries after it gave an address up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Retry {
    /// An RFC 3927 pick of another address (a fresh claim, P2).
    Another,
    /// The same address again, after the RFC 5227 delays (the recorded
    /// address, P3: configured once, never replaced).
    Same,
}

impl core::fmt::Display for Retry {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Retry::Another => "trying another IPv4 link-local address",
            Retry::Same => {
                "probing the same address again (it is the recorded address, which bmclink never replaces)"
            }
        })
    }
}
