//! The link layer: a smoltcp `phy::Device` over [`crate::platform::Frames`]
//! and the link-local address claims.

pub mod claim;
pub mod device;
pub mod discover;
pub mod ipv4ll;
pub mod ipv6ll;
