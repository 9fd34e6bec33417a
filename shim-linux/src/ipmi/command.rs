//! `bmclink bootstrap show|disable`: the bootstrap channel by hand, for an
//! administrator checking what the BMC publishes and for the VM test.

use std::io::Write;
use std::time::Duration;

use bmclink_core::ipmi::BootstrapAnswer;

use super::{disable_bootstrap, read_bootstrap, BootstrapReport, Disabled, IpmiDevice};
use crate::cli::{BootstrapCommand, Exit, Failure, IpmiArgs};

fn failure(e: impl std::fmt::Display) -> Failure {
    Failure::new(Exit::Runtime, e.to_string())
}

fn out_err(e: std::io::Error) -> Failure {
    Failure::new(Exit::Runtime, format!("cannot write the output: {e}"))
}

fn open(args: &IpmiArgs) -> Result<(IpmiDevice, Duration), Failure> {
    let dev = IpmiDevice::open(args.device.as_deref()).map_err(failure)?;
    let timeout = args
        .timeout_ms
        .map_or(super::DEFAULT_TIMEOUT, Duration::from_millis);
    Ok((dev, timeout))
}

/// Runs `bmclink bootstrap ...`.
pub fn execute(cmd: &BootstrapCommand, out: &mut dyn Write) -> Result<(), Failure> {
    match cmd {
        BootstrapCommand::Show { json, ipmi } => {
            let (mut dev, timeout) = open(ipmi)?;
            let report = read_bootstrap(&mut dev, timeout).map_err(failure)?;
            let text = if *json {
                format!("{}\n", show_json(&report))
            } else {
                show_text(&report)
            };
            out.write_all(text.as_bytes()).map_err(out_err)
        }
        BootstrapCommand::Disable { ipmi } => {
            let (mut dev, timeout) = open(ipmi)?;
            let line = match disable_bootstrap(&mut dev, timeout).map_err(failure)? {
                Disabled::Now => "bootstrapping disabled on the BMC",
                Disabled::Already => "bootstrapping was already disabled on the BMC (0x80)",
                Disabled::NotImplemented => {
                    "the BMC does not implement DSP0270 (0xC1): nothing to disable"
                }
            };
            writeln!(out, "{line}").map_err(out_err)
        }
    }
}

fn firmware(r: &BootstrapReport) -> String {
    let [a, b, c, d] = r.facts().firmware;
    format!("{a}.{b}.{c}.{d}")
}

fn ipmi_version(v: u8) -> String {
    format!("{}.{}", v & 0x0F, v >> 4)
}

fn answer_name(a: &BootstrapAnswer) -> &'static str {
    match a {
        BootstrapAnswer::Account(_) => "account",
        BootstrapAnswer::Disabled => "disabled",
        BootstrapAnswer::NotImplemented => "not-implemented",
    }
}

fn show_text(r: &BootstrapReport) -> String {
    let d = &r.device;
    let mut s = format!(
        "device:    {}\nfirmware:  {} (device 0x{:02X} rev {}, IPMI {}, manufacturer {}, product 0x{:04X}{})\n",
        r.path.display(),
        firmware(r),
        d.device_id,
        d.device_revision,
        ipmi_version(d.ipmi_version),
        d.manufacturer,
        d.product,
        if d.updating { ", updating" } else { "" }
    );
    s.push_str(match &r.answer {
        BootstrapAnswer::Account(_) => "bootstrap: account (DSP0270: TLS-capable firmware)\n",
        BootstrapAnswer::Disabled => {
            "bootstrap: disabled (0x80: DSP0270 firmware, bootstrapping turned off)\n"
        }
        BootstrapAnswer::NotImplemented => {
            "bootstrap: not implemented (0xC1: legacy firmware, plain channel allowed until pinned)\n"
        }
    });
    if let BootstrapAnswer::Account(a) = &r.answer {
        s.push_str(&format!(
            "user:      {}\npassword:  {}\n",
            a.user(),
            a.password()
        ));
    }
    s
}

fn show_json(r: &BootstrapReport) -> serde_json::Value {
    let d = &r.device;
    let account = match &r.answer {
        BootstrapAnswer::Account(a) => {
            serde_json::json!({ "user": a.user(), "password": a.password() })
        }
        _ => serde_json::Value::Null,
    };
    serde_json::json!({
        "device": r.path.display().to_string(),
        "firmware": firmware(r),
        "device_id": d.device_id,
        "device_revision": d.device_revision,
        "ipmi_version": ipmi_version(d.ipmi_version),
        "manufacturer": d.manufacturer,
        "product": d.product,
        "updating": d.updating,
        "bootstrap": answer_name(&r.answer),
        "tls": r.facts().tls,
        "account": account,
    })
}
