//! The agent: drives smoltcp, the claims, the policy and the session over a
//! [`crate::platform::Platform`].
