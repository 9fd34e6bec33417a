//! The channel and trust decision (DESIGN §5a, T3, T5, B1) as a pure
//! function, beside the fallback [`Policy`](super::Policy): made before every
//! connection attempt from what the host knows locally, it says which port to
//! connect to and how the BMC is authenticated, or why no attempt is made.
//!
//! # Rules
//!
//! Trust sources, strongest first: the pin (set after a checked enrollment),
//! the administrator's fingerprint (`install --bmc-fingerprint`), the
//! bootstrap channel's fingerprint.
//!
//! - A pin that cannot be read is still a pin: refused, never plain (B1).
//! - A pin: TLS to that certificate, HELLO without `enrolling`.
//! - TLS is the default. The plain channel needs positive host-local evidence
//!   that the firmware has no TLS (bootstrap facts `tls = false`, or
//!   `legacy_plain = true` in the configuration) and no pin and no
//!   administrator fingerprint. Bootstrap facts that cannot be read are no
//!   evidence (the platform gives `None`), so they lead to TLS.
//! - No pin, a one-time account: enroll (HELLO with `enrolling`, ENROLL with
//!   the proof). With a fingerprint from the administrator or the bootstrap
//!   channel the TLS handshake must present exactly it (so ENROLL is never
//!   sent to another certificate); the two must agree when both are given.
//! - No pin, no account, a fingerprint: TLS to it, HELLO without
//!   `enrolling` (the BMC may know this client certificate already), and
//!   the audit says an account is missing.
//! - No pin, no account, no fingerprint: TLS only to learn the certificate
//!   the BMC presents ([`Trust::Probe`]); no session runs, the audit names
//!   the fingerprint and the two fixes.
//! - Every TLS choice needs a client certificate that has not expired (T3);
//!   one expiring within 30 days is connected with a warning (B4).

use crate::audit::{AuditEvent, StoreEvent, TlsEvent};
use crate::platform::{BmcFacts, Record};

/// The stored pin, as loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PinState {
    /// No pin: never enrolled (or reinstalled since).
    None,
    /// SHA-256 of the BMC certificate bound at enrollment.
    Pinned([u8; 32]),
    /// A pin exists but cannot be read (corrupt record, store failure).
    Unreadable,
}

/// The client certificate, as the agent has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ClientCert {
    /// Usable (or the platform does not know the time).
    Valid,
    /// Usable, but expires in this many days (B4).
    Expiring {
        /// Days left.
        days_left: u64,
    },
    /// Expired at this Unix time (T3).
    Expired {
        /// The certificate's notAfter.
        not_after: u64,
    },
    /// None could be loaded or made (already audited by whoever tried).
    Unavailable,
}

/// Everything the decision is made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TrustFacts {
    /// The stored pin.
    pub pin: PinState,
    /// What the bootstrap channel says, `None` when it does not answer or
    /// what it said cannot be read.
    pub bootstrap: Option<BmcFacts>,
    /// The administrator's fingerprint.
    pub admin_fingerprint: Option<[u8; 32]>,
    /// A one-time enrollment account is at hand.
    pub account: bool,
    /// The client certificate.
    pub client: ClientCert,
    /// The configuration says the firmware has no TLS (`legacy_plain`).
    pub legacy_plain: bool,
}

/// How a connection authenticates. Travels with the connection attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Trust {
    /// The legacy plain channel (T5).
    Plain,
    /// TLS to the pinned certificate, HELLO without `enrolling`.
    Pinned {
        /// SHA-256 of the BMC certificate.
        pin: [u8; 32],
    },
    /// TLS to a fingerprint given by the administrator or the bootstrap
    /// channel, without an account: HELLO without `enrolling`.
    Expected {
        /// SHA-256 the BMC certificate must have.
        fingerprint: [u8; 32],
    },
    /// TLS and enrollment with the one-time account (DESIGN §5a).
    Enroll {
        /// When known, the certificate the BMC must present before ENROLL
        /// is sent.
        expected: Option<[u8; 32]>,
    },
    /// No trust source and no account: a TLS handshake only to learn and
    /// audit the BMC's certificate; no message is sent, no session runs.
    Probe,
}

impl core::fmt::Display for Trust {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let short = crate::cert::ShortFingerprint::of;
        match self {
            Trust::Plain => f.write_str("plain channel"),
            Trust::Pinned { pin } => write!(f, "TLS to the pinned {}", short(pin)),
            Trust::Expected { fingerprint } => {
                write!(f, "TLS to the given {}, no account", short(fingerprint))
            }
            Trust::Enroll { expected: Some(fp) } => write!(f, "TLS to {}, enrolling", short(fp)),
            Trust::Enroll { expected: None } => f.write_str("TLS, enrolling (proofs only)"),
            Trust::Probe => f.write_str("TLS probe: no trust source, no account"),
        }
    }
}

impl Trust {
    /// Whether this trust runs over the TLS port.
    pub fn tls(self) -> bool {
        !matches!(self, Trust::Plain)
    }

    /// Which trust source this connection rests on (`admin`: the
    /// administrator's fingerprint, to tell it from the bootstrap
    /// channel's); `None` for a probe, which trusts nothing.
    pub fn source(self, admin: Option<[u8; 32]>) -> Option<TrustSource> {
        Some(match self {
            Trust::Plain => TrustSource::Plain,
            Trust::Pinned { .. } => TrustSource::Pin,
            Trust::Expected { fingerprint } if admin == Some(fingerprint) => {
                TrustSource::AdminFingerprint
            }
            Trust::Expected { .. } => TrustSource::BootstrapFingerprint,
            Trust::Enroll { .. } => TrustSource::EnrollmentAccount,
            Trust::Probe => return None,
        })
    }
}

/// What the BMC's authenticity rests on (`bmclink status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TrustSource {
    /// The certificate pinned at enrollment.
    Pin,
    /// The administrator's fingerprint (`install --bmc-fingerprint`).
    AdminFingerprint,
    /// The fingerprint the bootstrap channel published.
    BootstrapFingerprint,
    /// The one-time enrollment account (and the BMC's proof of it) from the
    /// bootstrap channel: a file or IPMI, as the platform knows.
    EnrollmentAccount,
    /// None: the legacy plain channel (firmware without TLS).
    Plain,
}

impl TrustSource {
    /// A stable name (status JSON).
    pub fn name(self) -> &'static str {
        match self {
            TrustSource::Pin => "pin",
            TrustSource::AdminFingerprint => "admin-fingerprint",
            TrustSource::BootstrapFingerprint => "bootstrap-fingerprint",
            TrustSource::EnrollmentAccount => "enrollment-account",
            TrustSource::Plain => "plain",
        }
    }
}

/// The decision: a connection with its trust, or none; and what to audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustDecision {
    /// `None`: no connection attempt now.
    pub trust: Option<Trust>,
    /// Audit events, in order (at most two).
    pub events: heapless::Vec<AuditEvent, 2>,
}

impl TrustDecision {
    fn refuse(event: AuditEvent) -> Self {
        let mut events = heapless::Vec::new();
        let _ = events.push(event);
        TrustDecision {
            trust: None,
            events,
        }
    }

    fn connect(trust: Trust) -> Self {
        TrustDecision {
            trust: Some(trust),
            events: heapless::Vec::new(),
        }
    }

    fn say(mut self, event: AuditEvent) -> Self {
        // Two slots and at most two events per decision.
        let _ = self.events.push(event);
        self
    }
}

/// Decides the next connection's channel and trust.
pub fn decide(f: &TrustFacts) -> TrustDecision {
    let trust = match f.pin {
        PinState::Unreadable => {
            return TrustDecision::refuse(AuditEvent::Store(StoreEvent::Corrupt {
                record: Record::BmcPin,
            }))
        }
        PinState::Pinned(pin) => Trust::Pinned { pin },
        PinState::None => {
            let bootstrap_fp = f.bootstrap.and_then(|b| b.fingerprint);
            let expected = match (f.admin_fingerprint, bootstrap_fp) {
                (Some(a), Some(b)) if a != b => {
                    return TrustDecision::refuse(AuditEvent::Tls(
                        TlsEvent::TrustSourcesDisagree {},
                    ))
                }
                (Some(a), _) => Some(a),
                (None, b) => b,
            };
            let no_tls = match f.bootstrap {
                // Host-local evidence beats configuration: a bootstrap
                // channel that says TLS means TLS.
                Some(b) => !b.tls,
                None => f.legacy_plain,
            };
            if expected.is_none() && no_tls {
                return TrustDecision::connect(Trust::Plain)
                    .say(AuditEvent::Tls(TlsEvent::PlainChannel {}));
            }
            match (f.account, expected) {
                (true, expected) => Trust::Enroll { expected },
                (false, Some(fingerprint)) => Trust::Expected { fingerprint },
                (false, None) => Trust::Probe,
            }
        }
    };
    let decision = match f.client {
        ClientCert::Expired { not_after } => {
            return TrustDecision::refuse(AuditEvent::Tls(TlsEvent::ClientCertExpired {
                not_after,
            }))
        }
        ClientCert::Unavailable => {
            return TrustDecision {
                trust: None,
                events: heapless::Vec::new(),
            }
        }
        ClientCert::Expiring { days_left } => TrustDecision::connect(trust)
            .say(AuditEvent::Tls(TlsEvent::ClientCertExpiring { days_left })),
        ClientCert::Valid => TrustDecision::connect(trust),
    };
    if matches!(trust, Trust::Expected { .. } | Trust::Probe) {
        return decision.say(AuditEvent::Tls(TlsEvent::NoAccount {}));
    }
    decision
}

#[cfg(test)]
mod tests {
    use super::*;

    const FP: [u8; 32] = [0xab; 32];
    const OTHER: [u8; 32] = [0xcd; 32];

    fn facts() -> TrustFacts {
        TrustFacts {
            pin: PinState::None,
            bootstrap: None,
            admin_fingerprint: None,
            account: false,
            client: ClientCert::Valid,
            legacy_plain: false,
        }
    }

    fn bootstrap(tls: bool, fingerprint: Option<[u8; 32]>) -> Option<BmcFacts> {
        Some(BmcFacts {
            fingerprint,
            firmware: [3, 30, 30, 30],
            tls,
            ipv6_usbnic: true,
        })
    }

    fn ids(d: &TrustDecision) -> heapless::Vec<u16, 2> {
        d.events.iter().map(|e| e.id().0).collect()
    }

    #[test]
    fn nothing_known_tries_tls_and_says_what_is_missing() {
        let d = decide(&facts());
        assert_eq!(d.trust, Some(Trust::Probe));
        assert_eq!(ids(&d).as_slice(), &[4011]);
    }

    #[test]
    fn plain_needs_host_local_evidence_of_no_tls() {
        let d = decide(&TrustFacts {
            bootstrap: bootstrap(false, None),
            ..facts()
        });
        assert_eq!(d.trust, Some(Trust::Plain));
        assert_eq!(ids(&d).as_slice(), &[4001]);
        let d = decide(&TrustFacts {
            legacy_plain: true,
            ..facts()
        });
        assert_eq!(d.trust, Some(Trust::Plain));
        // An account does not make old firmware speak TLS.
        let d = decide(&TrustFacts {
            legacy_plain: true,
            account: true,
            ..facts()
        });
        assert_eq!(d.trust, Some(Trust::Plain));
    }

    #[test]
    fn a_pin_is_never_plain() {
        for legacy_plain in [false, true] {
            for b in [None, bootstrap(false, None), bootstrap(true, Some(OTHER))] {
                let d = decide(&TrustFacts {
                    pin: PinState::Pinned(FP),
                    bootstrap: b,
                    legacy_plain,
                    account: true,
                    ..facts()
                });
                assert_eq!(d.trust, Some(Trust::Pinned { pin: FP }), "{b:?}");
            }
        }
    }

    #[test]
    fn an_unreadable_pin_refuses_every_channel() {
        let d = decide(&TrustFacts {
            pin: PinState::Unreadable,
            legacy_plain: true,
            bootstrap: bootstrap(false, None),
            ..facts()
        });
        assert_eq!(d.trust, None);
        assert_eq!(ids(&d).as_slice(), &[5002]);
    }

    #[test]
    fn bootstrap_tls_beats_legacy_plain() {
        let d = decide(&TrustFacts {
            legacy_plain: true,
            bootstrap: bootstrap(true, None),
            account: true,
            ..facts()
        });
        assert_eq!(d.trust, Some(Trust::Enroll { expected: None }));
    }

    #[test]
    fn an_administrator_fingerprint_means_tls_even_with_legacy_plain() {
        let d = decide(&TrustFacts {
            legacy_plain: true,
            admin_fingerprint: Some(FP),
            ..facts()
        });
        assert_eq!(d.trust, Some(Trust::Expected { fingerprint: FP }));
        assert_eq!(ids(&d).as_slice(), &[4011]);
    }

    #[test]
    fn an_account_enrolls_against_the_strongest_fingerprint() {
        let base = TrustFacts {
            account: true,
            ..facts()
        };
        assert_eq!(decide(&base).trust, Some(Trust::Enroll { expected: None }));
        assert!(decide(&base).events.is_empty());
        let d = decide(&TrustFacts {
            bootstrap: bootstrap(true, Some(FP)),
            ..base
        });
        assert_eq!(d.trust, Some(Trust::Enroll { expected: Some(FP) }));
        let d = decide(&TrustFacts {
            admin_fingerprint: Some(FP),
            bootstrap: bootstrap(true, None),
            ..base
        });
        assert_eq!(d.trust, Some(Trust::Enroll { expected: Some(FP) }));
        // tls = true without a fingerprint: enrollment's proofs still
        // authenticate, never plain.
        let d = decide(&TrustFacts {
            bootstrap: bootstrap(true, None),
            ..base
        });
        assert_eq!(d.trust, Some(Trust::Enroll { expected: None }));
    }

    #[test]
    fn disagreeing_fingerprints_refuse() {
        let d = decide(&TrustFacts {
            account: true,
            admin_fingerprint: Some(FP),
            bootstrap: bootstrap(true, Some(OTHER)),
            ..facts()
        });
        assert_eq!(d.trust, None);
        assert_eq!(ids(&d).as_slice(), &[4014]);
    }

    #[test]
    fn an_expired_client_certificate_refuses_tls_only() {
        let expired = ClientCert::Expired { not_after: 9 };
        for f in [
            TrustFacts {
                pin: PinState::Pinned(FP),
                ..facts()
            },
            TrustFacts {
                account: true,
                ..facts()
            },
            facts(),
        ] {
            let d = decide(&TrustFacts {
                client: expired,
                ..f
            });
            assert_eq!(d.trust, None);
            assert_eq!(ids(&d).as_slice(), &[4004]);
        }
        let d = decide(&TrustFacts {
            client: expired,
            legacy_plain: true,
            ..facts()
        });
        assert_eq!(d.trust, Some(Trust::Plain));
        let d = decide(&TrustFacts {
            client: ClientCert::Unavailable,
            account: true,
            ..facts()
        });
        assert_eq!(d.trust, None);
    }

    #[test]
    fn an_expiring_certificate_connects_with_a_warning() {
        let d = decide(&TrustFacts {
            pin: PinState::Pinned(FP),
            client: ClientCert::Expiring { days_left: 3 },
            ..facts()
        });
        assert_eq!(d.trust, Some(Trust::Pinned { pin: FP }));
        assert_eq!(ids(&d).as_slice(), &[4005]);
    }

    #[test]
    fn the_trust_source_tells_the_admin_fingerprint_from_the_bootstrap_one() {
        let (admin, published) = ([0xAA; 32], [0xBB; 32]);
        let expected = |fingerprint| Trust::Expected { fingerprint };
        assert_eq!(
            expected(admin).source(Some(admin)),
            Some(TrustSource::AdminFingerprint)
        );
        assert_eq!(
            expected(published).source(Some(admin)),
            Some(TrustSource::BootstrapFingerprint)
        );
        assert_eq!(
            expected(published).source(None),
            Some(TrustSource::BootstrapFingerprint)
        );
        assert_eq!(
            Trust::Pinned { pin: admin }.source(Some(admin)),
            Some(TrustSource::Pin)
        );
        assert_eq!(
            Trust::Enroll { expected: None }.source(None),
            Some(TrustSource::EnrollmentAccount)
        );
        assert_eq!(Trust::Plain.source(None), Some(TrustSource::Plain));
        assert_eq!(Trust::Probe.source(Some(admin)), None);
    }
}
