//! A BMC to try `bmclink-conform` on: the kernel BMC (kernel TCP + the
//! simulated BMC's rustls server and responder) on loopback, TLS-required
//! firmware 3.30.30.30, correct or broken by one mutation. Writes the
//! facts file and the one-time account file the rig takes into DIR.
//!
//! ```text
//! cargo run -p bmclink-conform --example kernel_bmc -- [--dir DIR] [--tls-port N] [--plain-port N] [--mutation NAME]
//! ```

use std::net::TcpListener;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use bmclink_tests::bmc_tls::TlsIdentity;
use bmclink_tests::kernel_bmc::{mutant_server_config, KernelBmc, Mutation};
use bmclink_tests::BmcConfig;

fn main() -> ExitCode {
    let mut dir = PathBuf::from("conform-bmc");
    let (mut tls_port, mut plain_port) = (5443u16, 5080u16);
    let mut mutation = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next();
        let ok = match (a.as_str(), v) {
            ("--dir", Some(v)) => {
                dir = v.into();
                true
            }
            ("--tls-port", Some(v)) => v.parse().map(|p| tls_port = p).is_ok(),
            ("--plain-port", Some(v)) => v.parse().map(|p| plain_port = p).is_ok(),
            ("--mutation", Some(v)) => {
                let want = v.replace('-', "").to_lowercase();
                mutation = Mutation::ALL
                    .iter()
                    .copied()
                    .find(|m| format!("{m:?}").to_lowercase() == want);
                mutation.is_some()
            }
            _ => false,
        };
        if !ok {
            let names: Vec<String> = Mutation::ALL.iter().map(|m| format!("{m:?}")).collect();
            eprintln!(
                "usage: kernel_bmc [--dir DIR] [--tls-port N] [--plain-port N] [--mutation NAME]\nmutations: {}",
                names.join(" ")
            );
            return ExitCode::from(2);
        }
    }
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let seed = u64::from(std::process::id()) ^ unix;
    let id = TlsIdentity::generate(seed, "idrac", unix.saturating_sub(3600), true);
    let secret: String = {
        use rand_core::RngCore;
        let mut b = [0u8; 16];
        rand_core::OsRng.fill_bytes(&mut b);
        hex::encode(b)
    };
    let cfg = BmcConfig {
        firmware: [3, 30, 30, 30],
        tls: true,
        credential: secret.clone(),
        ..BmcConfig::default()
    };
    let bind = |port| TcpListener::bind(("127.0.0.1", port));
    let (tls_l, plain_l) = match (bind(tls_port), bind(plain_port)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("kernel_bmc: cannot listen on 127.0.0.1:{tls_port}/{plain_port}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let write = |name: &str, text: String| {
        std::fs::create_dir_all(&dir)?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(dir.join(name))?;
        std::io::Write::write_all(&mut f, text.as_bytes())
    };
    let facts = format!(
        "fingerprint = \"{}\"\nfirmware = \"3.30.30.30\"\ntls = true\nipv6_usbnic = true\n",
        hex::encode(id.fingerprint())
    );
    if let Err(e) = write("facts.toml", facts)
        .and_then(|()| write("account", format!("{}\n{secret}\n", cfg.account)))
    {
        eprintln!("kernel_bmc: cannot write into {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    let server = match mutant_server_config(&id, mutation) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kernel_bmc: TLS configuration: {e}");
            return ExitCode::FAILURE;
        }
    };
    let _tls = KernelBmc::spawn_mutant(
        tls_l,
        cfg.clone(),
        Some((server, id.fingerprint())),
        mutation,
        false,
    );
    let _plain = KernelBmc::spawn_mutant(plain_l, cfg, None, mutation, false);
    println!(
        "kernel_bmc: TLS on 127.0.0.1:{tls_port}, plain on 127.0.0.1:{plain_port}{}; try\n  \
         bmclink-conform --connect 127.0.0.1:{tls_port} --plain 127.0.0.1:{plain_port} \
         --facts {d}/facts.toml --account-file {d}/account",
        mutation
            .map(|m| format!(", mutation {m:?}"))
            .unwrap_or_default(),
        d = dir.display()
    );
    loop {
        std::thread::park();
    }
}
