//! The fallback policy (DESIGN §4) as a pure state machine.
//!
//! # Shape
//!
//! Like quinn-proto's `Connection`, [`Policy`] does no I/O and has no clock:
//! the agent feeds it ([`Policy::handle`] with an [`Input`],
//! [`Policy::handle_timeout`] once [`Policy::next_deadline`] has passed) and
//! drains it ([`Policy::poll_action`] for [`Action`]s, [`Policy::poll_audit`]
//! for BL3xxx [`PolicyEvent`](crate::audit::PolicyEvent)s) after every call.
//! Backoff jitter comes from a PRNG seeded in [`Policy::new`].
//!
//! Nothing happens before [`Input::Start`], which carries the host facts, the
//! link record, the cached BMC caps and the link state together.
//!
//! # Rules
//!
//! A *round* tries the usable families; when all failed, the policy backs
//! off (B5: 1 s doubling to 60 s, minus up to a quarter of jitter) and
//! starts another round.
//!
//! - **P1** IPv4 is always started first when enabled.
//! - **P2/P9** no IPv4 on the host USBNIC (an IPv6-only USBNIC counts as
//!   none) and no link record: [`Action::ClaimIpv4`], then on success
//!   [`Action::SaveLinkRecord`], once. The host's own IPv4 without a record:
//!   [`Action::UseHostIpv4`], nothing configured, nothing recorded.
//! - **P3** with a link record: [`Action::UseRecordedIpv4`], never a claim.
//!   The recorded configuration is *incomplete* ([`RecordProblem`]) only
//!   when the host OS's IPv4 configuration of the USBNIC vanishes
//!   (`ipv4_present` true → false; absent from the start is not a problem,
//!   the record is the configuration). Then IPv4 stays disconnected (BL3002
//!   names `bmclink link reset`) until the link record is reset or replaced
//!   ([`Input::LinkRecord`]) or the host configuration comes back. Link
//!   down/up does not clear it. A conflict on the recorded address is not
//!   incomplete configuration: the agent's claim defends it, gives it up,
//!   backs off and re-probes the same address (RFC 5227); the policy counts
//!   `Ipv4ClaimFailed` as a failure of IPv4 in the round (BL3015, once per
//!   outage), an `Ipv4Lost` sends it back through the policy, and when the
//!   claim binds again later IPv4 counts as untried again (a backoff ends at
//!   once; the same holds for IPv6 DAD passing on the claim's own retry).
//!   **IPv6 is still tried** meanwhile (P4's fallback applies), with the
//!   P10 limits; with IPv6 unusable too, the policy stays disconnected.
//! - **P4** sequential mode: IPv6 starts once IPv4 failed in the round
//!   (refused, timed out, claim failed): [`Action::StartIpv6`], then
//!   [`Action::DiscoverBmcIpv6`], then [`Action::Connect`].
//! - **P5** host IPv6 disabled: nothing IPv6 is started or connected (only
//!   the [`Action::Disconnect`] of what ran before it was disabled); IPv4 is
//!   retried with backoff, BL3005 said once per outage.
//! - **P6** `ipv4 = false` / `ipv6 = false` are absolute; both false stays
//!   disconnected (BL3001).
//! - **P7** WELCOME caps (or cached caps) without bit 2: IPv6 is never
//!   started; new caps are saved with [`Action::SaveBmcCaps`]. No IPv6
//!   answer (`BmcIpv6NotFound`) skips IPv6 while IPv4 is usable, until the
//!   link goes down and up; it is not persisted (it may be a booting BMC).
//! - **P8** the agent emits the session-start event; [`Policy::session_family`].
//! - **P10** [`Policy::features`] ([`Features::of_session`]): every
//!   session over IPv6 has monitoring only, audited as BL3012 at each
//!   IPv6 WELCOME; status and the shim's hosts block follow the same value.
//! - **B2** race mode: the round's IPv6 attempt starts `race_delay` after
//!   the round started (or at once when IPv4 failed first); an IPv4
//!   connection wins and drops IPv6; under an IPv6 session IPv4 keeps being
//!   tried (with backoff) and, when it connects, the session moves to it
//!   (BL3008, [`Action::Disconnect`] of IPv6). Sequential mode stays on an
//!   IPv6 session until it ends.
//! - **B5** link down: everything stops ([`Phase::LinkDown`]); link up starts
//!   a round at once with a fresh backoff. Session end (BYE, peer dead, RST,
//!   protocol error): after a good session (WELCOME and at least
//!   `good_session`) a new round at once with a fresh backoff; after a
//!   shorter session that reached WELCOME the family still works (a BMC
//!   reboot is no reason to fall back): backoff, then a new round from the
//!   preferred family; a session without WELCOME counts the family as
//!   failed in the round. An address lost under a
//!   connection goes back through the policy at once (with a record: P3).
//!
//! # Deadlines
//!
//! While not connected there is always a next deadline (a watchdog on the
//! step the agent owes an answer for, the race delay, the backoff), except
//! in the three states that wait for an input: [`Phase::NotStarted`],
//! [`Phase::LinkDown`] and [`Phase::Stay`].

mod action;
mod backoff;
mod config;
mod features;
mod input;
mod machine;
mod results;
mod round;
mod state;
pub mod trust;

pub use action::{Action, Ipv4Unavailable, Ipv6Unavailable, RecordProblem, StayReason};
pub use config::PolicyConfig;
pub use features::Features;
pub use input::{Input, SessionEnd, Startup};
pub use machine::{Policy, ACTION_QUEUE, AUDIT_QUEUE};
pub use state::{Phase, PolicyState, Step};
pub use trust::{
    decide as decide_trust, ClientCert, PinState, Trust, TrustDecision, TrustFacts, TrustSource,
};

#[cfg(test)]
mod tests;
