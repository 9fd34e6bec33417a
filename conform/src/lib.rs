//! `bmclink-conform`: a rig that plays the host against a BMC under test
//! and runs named checks, each tied to a rule of DESIGN.md (§4 T1/T4/T6,
//! §5 framing, message order, heartbeats and events, §5a enrollment), and
//! reports rule by rule where the BMC departs from the specification.
//!
//! It is a binary of its own rather than a `bmclink` subcommand because it
//! links rustls, to offer a TLS 1.2-only ClientHello and to connect without
//! a client certificate: things the agent must never be able to do.
//!
//! Frames are built and the BMC's replies parsed with the core's own codec
//! ([`bmclink_core::proto`]); [`conn::Replies`] is fuzzed
//! (`fuzz/fuzz_targets/conform_replies.rs`, [`fuzzing::replies`]).

pub mod checks;
pub mod conn;
pub mod link;
pub mod report;
pub mod tls;

pub use checks::{Options, Outcome, Rig, Target, Trust, Verdict, CHECKS};

/// Fuzzing entry points.
pub mod fuzzing {
    use crate::conn::{Got, Replies};

    /// Feeds `data` to the reply parser, split at points the data chooses
    /// (its first byte), and checks what must hold: after a framing error
    /// nothing more comes out.
    pub fn replies(data: &[u8]) {
        let (split, rest) = match data.split_first() {
            Some((s, r)) => (usize::from(*s).max(1), r),
            None => return,
        };
        let mut r = Replies::default();
        let mut out = Vec::new();
        for chunk in rest.chunks(split) {
            r.feed_all(chunk, &mut out);
        }
        if let Some(i) = out
            .iter()
            .position(|g| matches!(g, Got::Malformed(e) if e.starts_with("frame length")))
        {
            assert_eq!(i + 1, out.len(), "replies after a framing error");
        }
        for g in &out {
            let _ = g.to_string();
        }
    }
}
