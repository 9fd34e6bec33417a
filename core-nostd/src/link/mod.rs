//! The link layer: the one-frame smoltcp device the agent hands smoltcp,
//! the hook that sees every frame first, and the link-local address claims.

pub mod claim;
pub mod device;
pub mod discover;
pub mod ipv4ll;
pub mod ipv6ll;
