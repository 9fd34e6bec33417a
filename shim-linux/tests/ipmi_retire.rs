//! The IPMI bootstrap's account through a whole enrollment: the shim's
//! [`IpmiBootstrap`] over the simulated IPMI BMC of
//! `bmclink_tests::ipmi_bmc` (its DSP0270 state, answered in process instead
//! of through QEMU and the kernel's KCS driver), feeding the agent in the
//! simulated world whose channel BMC accepts the account the IPMI BMC hands
//! out. DSP0270 and DESIGN §5a: after the BMC's proven ENROLLED the agent
//! disables bootstrapping with `[0x52, 0x00]`, exactly once; a failed
//! enrollment leaves bootstrapping as it was.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bmclink_core::audit::{AuditEvent, TlsEvent};
use bmclink_core::ipmi::Command;
use bmclink_core::policy::TrustSource;
use bmclink_core::Config;
use bmclink_linux::ipmi::device::IpmiDeviceError;
use bmclink_linux::ipmi::{IpmiBootstrap, IpmiTransport};
use bmclink_tests::bmc::EnrollFault;
use bmclink_tests::clock::VirtualClock;
use bmclink_tests::ipmi_bmc::{Fault, IpmiBmcState};
use bmclink_tests::{run_agent, BmcConfig, World};
use smoltcp::time::Instant;

const USER: &str = "bmclink-boot-01";
const PASSWORD: &str = "Zq8#x2LmP0v9wYt4";

/// What the simulated IPMI BMC received: virtual time, NetFn, command, data.
type Log = Arc<Mutex<Vec<(Instant, u8, u8, Vec<u8>)>>>;

/// The simulated IPMI BMC as the transport of the shim's bootstrap.
struct Sim {
    state: Arc<Mutex<IpmiBmcState>>,
    clock: VirtualClock,
    log: Log,
    path: PathBuf,
}

impl IpmiTransport for Sim {
    fn request(
        &mut self,
        command: Command,
        data: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, IpmiDeviceError> {
        self.log.lock().unwrap().push((
            self.clock.now(),
            command.netfn,
            command.cmd,
            data.to_vec(),
        ));
        self.state
            .lock()
            .unwrap()
            .answer(command.netfn, command.cmd, data)
            .ok_or(IpmiDeviceError::Timeout { command, timeout })
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

struct Rig {
    world: World,
    ipmi: Arc<Mutex<IpmiBmcState>>,
    log: Log,
}

/// A TLS BMC whose channel accepts `(USER, secret)`, and an IPMI BMC that
/// hands out `(USER, PASSWORD)`; `faults` script its DSP0270 answers.
fn rig(secret: &str, enroll_fault: Option<EnrollFault>, faults: Vec<Fault>) -> Rig {
    let world = World::new(
        BmcConfig {
            account: USER.into(),
            credential: secret.into(),
            // DSP0270 carries no certificate fingerprint: the proofs decide.
            publish_fingerprint: false,
            enroll_fault,
            ..BmcConfig::default()
        },
        7,
    );
    let mut state = IpmiBmcState::new(3, 30, [30, 30, 0, 0], &[(USER, PASSWORD)]);
    state.faults = faults.into();
    let ipmi = Arc::new(Mutex::new(state));
    let log: Log = Arc::default();
    let (s, clock, l) = (Arc::clone(&ipmi), world.clock.clone(), Arc::clone(&log));
    let open = move || {
        Ok(Box::new(Sim {
            state: Arc::clone(&s),
            clock: clock.clone(),
            log: Arc::clone(&l),
            path: PathBuf::from("/dev/ipmi0 (simulated)"),
        }) as Box<dyn IpmiTransport>)
    };
    let mut world = world;
    world.bootstrap = Some(Box::new(IpmiBootstrap::over(
        Box::new(open),
        Duration::from_secs(1),
    )));
    Rig { world, ipmi, log }
}

impl Rig {
    fn run(&mut self, secs: i64) {
        run_agent(&mut self.world, Config::default(), Instant::from_secs(secs))
            .expect("agent starts");
    }

    /// The DSP0270 requests' data with their virtual times.
    fn bootstrap_requests(&self) -> Vec<(Instant, Vec<u8>)> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, n, c, _)| (*n, *c) == (0x2C, 0x02))
            .map(|(t, _, _, d)| (*t, d.clone()))
            .collect()
    }

    fn disables(&self) -> Vec<Instant> {
        self.bootstrap_requests()
            .into_iter()
            .filter(|(_, d)| d == &[0x52, 0x00])
            .map(|(t, _)| t)
            .collect()
    }

    fn audit_at(&self, id: &str) -> Option<Instant> {
        self.world
            .audit
            .iter()
            .find(|(_, e)| e.id().to_string() == id)
            .map(|(t, _)| *t)
    }

    fn ids(&self) -> Vec<String> {
        self.world.audit_ids()
    }
}

#[test]
fn after_enrolled_the_agent_disables_bootstrapping_once_and_audits_it() {
    let mut r = rig(PASSWORD, None, vec![]);
    r.run(40);
    let enrolled = r
        .audit_at("BL4006")
        .unwrap_or_else(|| panic!("{:?}", r.ids()));
    // The account was fetched with bootstrapping kept enabled...
    let b = r.bootstrap_requests();
    assert_eq!(
        b.first().map(|(_, d)| d.as_slice()),
        Some(&[0x52, 0xA5][..])
    );
    // ...and disabled exactly once, at the ENROLLED (virtual time does not
    // move inside one poll of the agent) and not a moment before.
    assert_eq!(r.disables(), vec![enrolled], "{b:?}");
    assert!(b.iter().all(|(t, d)| d != &[0x52, 0x00] || *t >= enrolled));
    assert!(!r.ipmi.lock().unwrap().enabled, "the BMC still bootstraps");
    // The outcome is audited after the enrollment.
    let ids = r.ids();
    let at = |id: &str| ids.iter().position(|i| i == id);
    assert!(
        at("BL4017").is_some() && at("BL4017") > at("BL4006"),
        "{ids:?}"
    );
    assert!(!ids.iter().any(|i| i == "BL4018"), "{ids:?}");
    // The session went on with the pinned certificate; nothing asked the
    // IPMI BMC again after the disable.
    assert!(ids.iter().any(|i| i == "BL2001"), "{ids:?}");
    assert_eq!(b.last().map(|(_, d)| d.as_slice()), Some(&[0x52, 0x00][..]));
    // The status says what the session's trust rested on: the account.
    let up = r
        .world
        .statuses
        .iter()
        .find(|s| s.is_up())
        .expect("a session");
    assert_eq!(up.trust, Some(TrustSource::EnrollmentAccount));
}

#[test]
fn a_refused_secret_is_dropped_without_disabling_bootstrapping() {
    // The channel BMC expects another secret: REJECT bad-credential.
    let mut r = rig("another-secret-1", None, vec![]);
    r.run(40);
    let ids = r.ids();
    assert!(ids.iter().any(|i| i == "BL4007"), "{ids:?}");
    assert!(!ids.iter().any(|i| i == "BL4006"), "{ids:?}");
    assert_eq!(r.disables(), vec![], "{:?}", r.bootstrap_requests());
    assert!(r.ipmi.lock().unwrap().enabled);
    assert!(
        !ids.iter().any(|i| i == "BL4017" || i == "BL4018"),
        "{ids:?}"
    );
}

#[test]
fn an_unproven_or_interrupted_enrollment_does_not_disable_bootstrapping() {
    for fault in [EnrollFault::ForgeEnrolled, EnrollFault::DropBeforeBind] {
        let mut r = rig(PASSWORD, Some(fault), vec![]);
        // Every attempt fails the same way.
        r.world.bmc.state.faults_left = u32::MAX;
        r.run(40);
        let ids = r.ids();
        assert!(!ids.iter().any(|i| i == "BL4006"), "{fault:?}: {ids:?}");
        assert!(
            ids.iter().any(|i| i == "BL4012" || i == "BL4013"),
            "{fault:?}: {ids:?}"
        );
        assert_eq!(r.disables(), vec![], "{fault:?}");
        assert!(r.ipmi.lock().unwrap().enabled, "{fault:?}");
    }
}

#[test]
fn an_interrupted_attempt_keeps_bootstrapping_until_the_retry_enrolls() {
    let mut r = rig(PASSWORD, Some(EnrollFault::DropBeforeBind), vec![]);
    r.world.bmc.state.faults_left = 1;
    r.run(60);
    let interrupted = r
        .audit_at("BL4013")
        .unwrap_or_else(|| panic!("{:?}", r.ids()));
    let enrolled = r
        .audit_at("BL4006")
        .unwrap_or_else(|| panic!("{:?}", r.ids()));
    assert!(interrupted < enrolled);
    // One account fetch served both attempts; one disable, at the ENROLLED.
    let b = r.bootstrap_requests();
    assert_eq!(
        b.iter().filter(|(_, d)| d == &[0x52, 0xA5]).count(),
        1,
        "{b:?}"
    );
    assert_eq!(r.disables(), vec![enrolled], "{b:?}");
}

#[test]
fn a_bmc_that_does_not_disable_is_audited_as_a_warning() {
    // The account request is answered; the disable request gets 0xC1.
    let mut r = rig(PASSWORD, None, vec![Fault::None, Fault::NotImplemented]);
    r.run(40);
    let ids = r.ids();
    assert!(ids.iter().any(|i| i == "BL4006"), "{ids:?}");
    assert_eq!(r.disables().len(), 1);
    assert!(ids.iter().any(|i| i == "BL4018"), "{ids:?}");
    assert!(!ids.iter().any(|i| i == "BL4017"), "{ids:?}");
    let warning = r.world.audit.iter().any(|(_, e)| {
        matches!(e, AuditEvent::Tls(TlsEvent::BootstrapNotDisabled {}))
            && e.to_string().contains("disable host bootstrapping")
    });
    assert!(warning);
}
