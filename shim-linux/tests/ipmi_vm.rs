//! Bootstrap over IPMI against the Linux kernel's IPMI driver: a VM (QEMU,
//! TCG, Debian's kernel) loads `ipmi_msghandler`, `ipmi_si` and
//! `ipmi_devintf`, finds QEMU's `isa-ipmi-kcs` interface, and runs
//! `bmclink bootstrap ...` against `/dev/ipmi0`. QEMU's `ipmi-bmc-extern`
//! forwards every KCS request to the simulated BMC of
//! `bmclink_tests::ipmi_bmc` on a loopback socket, which answers from its
//! DSP0270 state and a script of faults, one per bootstrap request.
//!
//! The second test enrolls end to end with the account the BMC hands out
//! over IPMI: the VM also has an e1000 NIC on a TAP device in a network
//! namespace whose kernel side is the BMC (`bmclink_tests::kernel_bmc` on
//! TLS 1.3, accepting that account), and `bmclink run` inside the VM
//! (AF_PACKET on `eth0`, `bootstrap = "ipmi"`) reads the account through the
//! kernel's KCS driver, enrolls, and disables bootstrapping on the BMC.
//!
//! Needs root (the kernel image is readable by root only on Debian), QEMU,
//! `linux-image-amd64` and `busybox-static`; skips with the reason when they
//! are missing, fails under `BMCLINK_REQUIRE_ROOT=1`.

mod common;

use std::collections::VecDeque;
use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use bmclink_tests::bmc_tls::{server_config, TlsIdentity};
use bmclink_tests::ipmi_bmc::{ExternBmc, Fault, IpmiBmcState};
use bmclink_tests::kernel_bmc::KernelBmc;
use bmclink_tests::qemu_vm::{boot, boot_in, Initramfs, VmHost};
use bmclink_tests::BmcConfig;
use common::Netns;

const USER: &str = "bmclink-boot-01";
const PASSWORD: &str = "Zq8#x2LmP0v9wYt4";
const USER2: &str = "bmclink-boot-02";

/// The host's VM prerequisites, or `None` after printing why the test skips.
fn vm_host(test: &str) -> Option<VmHost> {
    let required = std::env::var("BMCLINK_REQUIRE_ROOT").is_ok_and(|v| v == "1");
    let reason = if !nix::unistd::geteuid().is_root() {
        Err("it needs root (Debian's kernel image is readable by root only)".to_owned())
    } else {
        VmHost::find()
    };
    match reason {
        Ok(host) => Some(host),
        Err(r) if required => panic!("{test}: BMCLINK_REQUIRE_ROOT=1 but {r}"),
        Err(r) => {
            eprintln!("skipping {test}: {r} (BMCLINK_REQUIRE_ROOT=1 makes this a failure)");
            None
        }
    }
}

/// One `@@begin NAME` .. `@@end NAME rc=N` block of the console.
struct Step {
    output: String,
    rc: i32,
}

fn step(console: &str, name: &str) -> Step {
    let begin = format!("@@begin {name}\n");
    let start = console
        .find(&begin)
        .unwrap_or_else(|| panic!("step {name} did not run; console:\n{console}"))
        + begin.len();
    let rest = &console[start..];
    let end_marker = format!("@@end {name} rc=");
    let end = rest
        .find(&end_marker)
        .unwrap_or_else(|| panic!("step {name} did not end; console:\n{console}"));
    let rc = rest[end + end_marker.len()..]
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("step {name}: no exit code"));
    Step {
        output: rest[..end].to_owned(),
        rc,
    }
}

fn json(s: &Step, name: &str) -> serde_json::Value {
    let line = s
        .output
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("step {name}: no JSON in {:?}", s.output));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("step {name}: {e}: {line}"))
}

const SCRIPT: &str = r#"
i=0
while [ ! -e /dev/ipmi0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
test -e /dev/ipmi0 || echo "@@no-ipmi-device"
run() { name=$1; shift; echo "@@begin $name"; /bin/bmclink "$@" 2>&1; echo "@@end $name rc=$?"; }
run account bootstrap show --json
run disable bootstrap disable
run disabled bootstrap show --json
run short bootstrap show --json
run group bootstrap show --json
run timeout bootstrap show --timeout-ms 1500
run legacy bootstrap show --json
run legacy-disable bootstrap disable
run text bootstrap show
run no-device bootstrap show --device /dev/ipmi7
echo "@@begin devices"; cat /proc/devices; echo "@@end devices rc=0"
"#;

#[test]
fn bootstrap_over_the_kernels_kcs_driver_reads_disables_and_fails_cleanly() {
    let Some(host) = vm_host("bootstrap_over_the_kernels_kcs_driver") else {
        return;
    };
    let mut state = IpmiBmcState::new(
        3,
        30,
        [30, 30, 0, 0],
        &[(USER, PASSWORD), (USER2, "second-secret-16")],
    );
    // One entry per DSP0270 request, in the script's order.
    state.faults = VecDeque::from(vec![
        Fault::None,                                           // account
        Fault::None,                                           // disable
        Fault::None,                                           // disabled: 0x80 from the state
        Fault::Raw(vec![0x00, 0x52, 0x41, 0x42]),              // short
        Fault::Raw([&[0x00, 0x51][..], &[0x41; 32]].concat()), // wrong group
        Fault::Silent,                                         // timeout
        Fault::NotImplemented,                                 // legacy
        Fault::NotImplemented,                                 // legacy-disable
        Fault::NotImplemented,                                 // text (legacy firmware, as text)
    ]);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let bmc = ExternBmc::spawn(listener, state);

    let dir = tempfile::tempdir().unwrap();
    let initrd = dir.path().join("initrd.cpio");
    let archive = Initramfs {
        modules: &["ipmi_msghandler", "ipmi_si", "ipmi_devintf"],
        program: Path::new(env!("CARGO_BIN_EXE_bmclink")),
        script: SCRIPT,
    }
    .build(&host)
    .unwrap();
    std::fs::write(&initrd, &archive).unwrap();
    let extra: Vec<String> = [
        "-chardev",
        &format!("socket,id=ipmi0,host=127.0.0.1,port={port},reconnect=1"),
        "-device",
        "ipmi-bmc-extern,id=bmc0,chardev=ipmi0",
        "-device",
        "isa-ipmi-kcs,bmc=bmc0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let run = boot(&host, &initrd, &extra, Duration::from_secs(240)).unwrap();
    let console = run.console.replace('\r', "");
    let seen = bmc.state();
    if std::env::var_os("BMCLINK_VM_CONSOLE").is_some() {
        println!("{console}");
    }
    println!(
        "VM: initramfs {} KiB, QEMU ran {:.1} s (TCG, 1 vCPU), first bootstrap request after {:.1} s, exited by itself: {}",
        archive.len() / 1024,
        run.elapsed.as_secs_f64(),
        seen.first_bootstrap.map_or(f64::NAN, |d| d.as_secs_f64()),
        run.exited
    );
    let mut probe: Vec<String> = Vec::new();
    for (n, c, _) in seen.requests.iter().take_while(|(n, _, _)| *n != 0x2C) {
        let name = format!("{n:02X}/{c:02X}");
        if !probe.contains(&name) {
            probe.push(name);
        }
    }
    println!("the kernel's probe sent (NetFn/cmd): {}", probe.join(" "));
    assert!(run.exited, "the VM did not power off; console:\n{console}");
    assert!(!console.contains("@@insmod-failed"), "{console}");
    assert!(
        !console.contains("@@no-ipmi-device"),
        "ipmi_si found no interface:\n{console}"
    );
    assert!(console.contains("@@done"), "{console}");

    // The kernel's probe asked for the device ID before anything of ours.
    assert_eq!(
        seen.requests.first().map(|(n, c, _)| (*n, *c)),
        Some((0x06, 0x01)),
        "{:?}",
        seen.requests
    );

    // The account, byte for byte, and the firmware from Get Device ID.
    let s = step(&console, "account");
    assert_eq!(s.rc, 0, "{}", s.output);
    let j = json(&s, "account");
    assert_eq!(j["bootstrap"], "account");
    assert_eq!(j["account"]["user"], USER);
    assert_eq!(j["account"]["password"], PASSWORD);
    assert_eq!(j["firmware"], "3.30.30.30");
    assert_eq!(j["manufacturer"], 674);
    assert_eq!(j["tls"], true);
    assert_eq!(j["device"], "/dev/ipmi0");

    // The disable request, then 0x80 from the BMC's state.
    let s = step(&console, "disable");
    assert_eq!(
        (s.rc, s.output.trim()),
        (0, "bootstrapping disabled on the BMC")
    );
    assert!(!seen.enabled, "the BMC still has bootstrapping enabled");
    let s = step(&console, "disabled");
    assert_eq!(s.rc, 0, "{}", s.output);
    let j = json(&s, "disabled");
    assert_eq!(
        (j["bootstrap"].as_str(), j["tls"].as_bool()),
        (Some("disabled"), Some(true))
    );
    assert!(j["account"].is_null());

    // Garbage: a short answer, a foreign group extension.
    let s = step(&console, "short");
    assert_eq!(s.rc, 1, "{}", s.output);
    assert!(
        s.output.contains("Get Bootstrap Account Credentials")
            && s.output.contains("response of 4 bytes, need 34"),
        "{}",
        s.output
    );
    let s = step(&console, "group");
    assert_eq!(s.rc, 1, "{}", s.output);
    assert!(s.output.contains("group extension 0x51"), "{}", s.output);

    // A silent BMC: our deadline, not a hang.
    let s = step(&console, "timeout");
    assert_eq!(s.rc, 1, "{}", s.output);
    assert!(
        s.output.contains("Get Bootstrap Account Credentials")
            && s.output.contains("no response from the BMC within 1500 ms"),
        "{}",
        s.output
    );

    // Legacy firmware: 0xC1 is an answer (no TLS), not an error.
    let s = step(&console, "legacy");
    assert_eq!(s.rc, 0, "{}", s.output);
    let j = json(&s, "legacy");
    assert_eq!(
        (j["bootstrap"].as_str(), j["tls"].as_bool()),
        (Some("not-implemented"), Some(false))
    );
    let s = step(&console, "legacy-disable");
    assert_eq!(s.rc, 0, "{}", s.output);
    assert!(
        s.output.contains("does not implement DSP0270 (0xC1)"),
        "{}",
        s.output
    );
    let s = step(&console, "text");
    assert!(s.output.contains("firmware:  3.30.30.30"), "{}", s.output);
    assert!(s.output.contains("legacy firmware"), "{}", s.output);

    let s = step(&console, "no-device");
    assert_eq!(s.rc, 1, "{}", s.output);
    assert!(
        s.output
            .contains("the IPMI device /dev/ipmi7 does not exist"),
        "{}",
        s.output
    );

    // The unit's DeviceAllow=char-ipmidev names the driver's major.
    let s = step(&console, "devices");
    assert!(
        s.output.lines().any(|l| l.trim().ends_with(" ipmidev")),
        "{}",
        s.output
    );

    // What the BMC received, in order: DSP0270's request bytes.
    let b = seen.bootstrap_requests();
    assert_eq!(b[0], [0x52, 0xA5]);
    assert_eq!(b[1], [0x52, 0x00]);
    assert!(
        b[2..]
            .iter()
            .all(|r| r == &[0x52, 0xA5] || r == &[0x52, 0x00]),
        "{b:?}"
    );
    assert_eq!(b.len(), 9, "{b:?}");
    assert_eq!(seen.bad_frames, 0);
    assert_eq!(seen.issued, 2);
}

/// The VM's side of the end-to-end run: `install` with no bootstrap
/// setting and no bootstrap file (the IPMI device makes IPMI the trust
/// source), then the agent on `eth0` until it has
/// disabled bootstrapping (BL4017) or 60 s passed, a few heartbeats more,
/// then its status, audit log and stderr.
const E2E_SCRIPT: &str = r#"
i=0
while [ ! -e /dev/ipmi0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
test -e /dev/ipmi0 || echo "@@no-ipmi-device"
mkdir -p /etc /state
echo "127.0.0.1 localhost" > /etc/hosts
cat > /etc/bmclink.toml <<'CFG'
state_dir = "/state"
hosts_file = "/etc/hosts"
interface = "eth0"
heartbeat_secs = 1
connect_timeout_secs = 3
backoff_min_secs = 1
backoff_max_secs = 2
hostname = "vm-host"
CFG
echo "@@begin install"; /bin/bmclink --config /etc/bmclink.toml install 2>&1; echo "@@end install rc=$?"
echo "@@begin state-after-install"; ls /state; echo "@@end state-after-install rc=0"
ip link set eth0 up
/bin/bmclink -v --config /etc/bmclink.toml run --iface eth0 --audit-log /state/audit.jsonl > /tmp/agent.log 2>&1 &
agent=$!
i=0
while ! grep -q BL4017 /state/audit.jsonl 2>/dev/null && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
sleep 3
echo "@@begin status"; cat /state/status.json; echo; echo "@@end status rc=0"
kill $agent; wait $agent
echo "@@begin audit"; cat /state/audit.jsonl; echo "@@end audit rc=0"
echo "@@begin agent"; cat /tmp/agent.log; echo "@@end agent rc=0"
"#;

/// The TAP device in the namespace, the VM's NIC.
const TAP: &str = "blvm0";
/// The VM NIC's MAC.
const VM_MAC: &str = "02:62:6c:00:00:09";
/// The IPMI simulator's port inside the namespace (QEMU connects there).
const IPMI_PORT: u16 = 9623;

#[test]
fn the_agent_in_the_vm_enrolls_with_the_ipmi_account_then_disables_bootstrapping() {
    let test = "the_agent_in_the_vm_enrolls_with_the_ipmi_account";
    let Some(host) = vm_host(test) else {
        return;
    };
    if !common::may_run(test) {
        return;
    }
    // The BMC's network side: 169.254.1.1/16 and fe80::1 on the TAP, TLS 1.3
    // on 5443, accepting the account the IPMI side hands out.
    let ns = Netns::new("ipmivm");
    ns.ip(&["link", "set", "lo", "up"]);
    ns.ip(&["tuntap", "add", "dev", TAP, "mode", "tap"]);
    ns.ip(&["link", "set", TAP, "addrgenmode", "none"]);
    ns.ip(&["addr", "add", "169.254.1.1/16", "dev", TAP]);
    ns.ip(&["-6", "addr", "add", "fe80::1/64", "dev", TAP, "nodad"]);
    ns.ip(&["link", "set", TAP, "up"]);
    let identity = TlsIdentity::generate(0x6970_6d69, "idrac", 1_767_225_600, true);
    let tls = server_config(&identity, false).expect("rustls server config");
    let bmc = KernelBmc::spawn_tls(
        ns.listen(5443),
        BmcConfig {
            firmware: [3, 30, 30, 30],
            tls: true,
            account: USER.into(),
            credential: PASSWORD.into(),
            ..BmcConfig::default()
        },
        tls,
        identity.fingerprint(),
        false,
    );
    // The BMC's IPMI side, in the namespace too (QEMU runs there).
    let ipmi = ExternBmc::spawn(
        ns.listen(IPMI_PORT),
        IpmiBmcState::new(3, 30, [30, 30, 0, 0], &[(USER, PASSWORD)]),
    );

    let dir = tempfile::tempdir().unwrap();
    let initrd = dir.path().join("initrd.cpio");
    let archive = Initramfs {
        modules: &["ipmi_msghandler", "ipmi_si", "ipmi_devintf", "e1000"],
        program: Path::new(env!("CARGO_BIN_EXE_bmclink")),
        script: E2E_SCRIPT,
    }
    .build(&host)
    .unwrap();
    std::fs::write(&initrd, &archive).unwrap();
    let extra: Vec<String> = [
        "-chardev",
        &format!("socket,id=ipmi0,host=127.0.0.1,port={IPMI_PORT},reconnect=1"),
        "-device",
        "ipmi-bmc-extern,id=bmc0,chardev=ipmi0",
        "-device",
        "isa-ipmi-kcs,bmc=bmc0",
        "-nic",
        &format!("tap,ifname={TAP},script=no,downscript=no,model=e1000,mac={VM_MAC}"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let run = boot_in(
        Some(&ns.name),
        &host,
        &initrd,
        &extra,
        Duration::from_secs(240),
    )
    .unwrap();
    let console = run.console.replace('\r', "");
    let seen = ipmi.state();
    let story = || {
        format!(
            "console:\n{console}\n--- BMC timeline ---\n{}",
            bmc.timeline()
        )
    };
    if std::env::var_os("BMCLINK_VM_CONSOLE").is_some() {
        println!("{}", story());
    }
    println!(
        "VM e2e: QEMU ran {:.1} s (TCG, 1 vCPU), first bootstrap request after {:.1} s, exited by itself: {}",
        run.elapsed.as_secs_f64(),
        seen.first_bootstrap.map_or(f64::NAN, |d| d.as_secs_f64()),
        run.exited
    );
    assert!(run.exited, "the VM did not power off; {}", story());
    assert!(!console.contains("@@insmod-failed"), "{}", story());
    assert!(!console.contains("@@no-ipmi-device"), "{}", story());

    // `install` on a host with an IPMI device, given no bootstrap setting
    // and no bootstrap file, names IPMI as the trust source and writes no
    // facts or account file.
    let install = step(&console, "install");
    assert_eq!(install.rc, 0, "{}", install.output);
    assert!(
        install
            .output
            .contains("bootstrap (trust source): IPMI (DSP0270"),
        "{}",
        install.output
    );
    let state = step(&console, "state-after-install").output;
    assert!(
        !state.contains("bootstrap") && !state.contains(".credential"),
        "install wrote a bootstrap file: {state}"
    );

    // The agent enrolled with the IPMI account, then disabled bootstrapping.
    let audit = step(&console, "audit").output;
    let ids: Vec<String> = audit
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["id"].as_str().map(str::to_owned))
        .collect();
    let at = |id: &str| ids.iter().position(|i| i == id);
    assert!(at("BL4006").is_some(), "{ids:?}\n{}", story());
    assert!(at("BL4017") > at("BL4006"), "{ids:?}\n{}", story());
    assert!(at("BL2001").is_some(), "{ids:?}");
    assert_eq!(bmc.count("BMC0020"), 1, "{}", story());
    assert_eq!(bmc.count("BMC0022"), 0, "{}", story());
    // Through the kernel's driver: one account request, one disable.
    assert_eq!(
        seen.bootstrap_requests(),
        vec![vec![0x52, 0xA5], vec![0x52, 0x00]],
        "{}",
        story()
    );
    assert!(!seen.enabled, "the BMC still bootstraps");
    assert_eq!(seen.bad_frames, 0);
    // The status file names the trust source and the channel.
    // (pretty-printed: the whole step is the JSON).
    let text = step(&console, "status").output;
    let status: serde_json::Value =
        serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("status: {e}: {text}"));
    assert_eq!(status["trust"], "enrollment-account", "{status}");
    assert!(
        status["bootstrap"]
            .as_str()
            .is_some_and(|b| b.starts_with("IPMI")),
        "{status}"
    );
    assert!(bmc.pings() >= 1, "{}", story());
}
