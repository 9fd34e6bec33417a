//! `kernel_bmc`: the simulated BMC's protocol on kernel sockets, for manual
//! end-to-end runs in a network namespace, e.g.
//! `ip netns exec bmc0 kernel_bmc --port 5080 --firmware 3.20.20.20`.
//! Listens on `[::]:PORT` (IPv4 and IPv6), prints the timeline to stdout.

use std::net::TcpListener;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use bmclink_tests::kernel_bmc::{serve, Seen};
use bmclink_tests::BmcConfig;

const USAGE: &str = "usage: kernel_bmc [--port N] [--firmware A.B.C.D] [--no-ipv6-usbnic]";

fn main() -> ExitCode {
    let mut port = 5080u16;
    let mut cfg = BmcConfig {
        firmware: [3, 20, 20, 20],
        tls: false,
        ..BmcConfig::default()
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let ok = match a.as_str() {
            "--port" => args.next().and_then(|v| v.parse().ok()).map(|p| port = p),
            "--firmware" => args
                .next()
                .and_then(|v| firmware(&v))
                .map(|f| cfg.firmware = f),
            "--no-ipv6-usbnic" => {
                cfg.ipv6_usbnic = false;
                Some(())
            }
            _ => None,
        };
        if ok.is_none() {
            eprintln!("kernel_bmc: bad argument `{a}`; {USAGE}");
            return ExitCode::from(2);
        }
    }
    let listener = match TcpListener::bind(("::", port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("kernel_bmc: cannot listen on [::]:{port}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("kernel_bmc: listening on [::]:{port} (IPv4 and IPv6), plain channel");
    serve(
        &listener,
        &cfg,
        None,
        &Arc::new(Mutex::new(Seen::default())),
        true,
    );
    ExitCode::SUCCESS
}

fn firmware(text: &str) -> Option<[u8; 4]> {
    let mut out = [0u8; 4];
    let mut parts = text.split('.');
    for b in &mut out {
        *b = parts.next()?.parse().ok()?;
    }
    parts.next().is_none().then_some(out)
}
