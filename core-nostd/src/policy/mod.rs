//! The fallback policy (DESIGN §4) as a pure state machine.
