//! The handshake against `openssl s_server` on loopback TCP: bmclink's
//! client, a rustls client and `openssl s_time` against the same server.

use std::fmt::Write as _;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bmclink_core::tls::{PinnedTls, TlsBuffers};
use bmclink_tests::bench_tls::{rustls_client, sec1_der, Pki, Stream};

use super::{median, ms, seeded, Row, HANDSHAKES};

/// Runs `f` once per handshake against a TLS server on `port`, `n` times;
/// the median wall time per handshake (client and server together).
fn timed_connects(n: usize, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let mut v = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        if !f() {
            return None;
        }
        v.push(t.elapsed());
    }
    Some(median(v))
}

/// Writes `der` as PEM with `label`.
fn pem(label: &str, der: &[u8]) -> String {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut text = String::new();
    for chunk in der.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                text.push(B64[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                text.push('=');
            }
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in text.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or(""));
        out.push('\n');
    }
    let _ = writeln!(out, "-----END {label}-----");
    out
}

/// A free loopback port.
fn free_port() -> Option<u16> {
    TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()
        .map(|a| a.port())
}

/// Kills and reaps a child we started.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The handshake against `openssl s_server -tls1_3` on loopback: bmclink's
/// client, a rustls client and `openssl s_time`, all against the same server.
pub fn openssl_rows(pki: &Pki) -> Vec<Row> {
    let title = "full mutual TLS 1.3 handshake vs openssl s_server, loopback TCP (client + server)";
    let missing = |why: String| vec![Row::new(title, why, String::new(), String::new(), "")];
    if Command::new("openssl").arg("version").output().is_err() {
        return missing("not measured: no openssl".into());
    }
    let dir = std::env::temp_dir().join(format!("bmclink-bench-{}", std::process::id()));
    if std::fs::create_dir_all(&dir).is_err() {
        return missing("not measured: no temp dir".into());
    }
    let files = [
        ("server.pem", pem("CERTIFICATE", &pki.server_der)),
        (
            "server.key",
            pem("EC PRIVATE KEY", &sec1_der(&pki.server_key)),
        ),
        ("client.pem", pem("CERTIFICATE", &pki.client_der)),
        (
            "client.key",
            pem("EC PRIVATE KEY", &sec1_der(&pki.client_key)),
        ),
    ];
    for (name, text) in &files {
        if std::fs::write(dir.join(name), text).is_err() {
            return missing("not measured: cannot write PEM files".into());
        }
    }
    let Some(port) = free_port() else {
        return missing("not measured: no free port".into());
    };
    let p = |f: &str| dir.join(f).display().to_string();
    let server = Command::new("openssl")
        .args(["s_server", "-tls1_3", "-naccept", "1000000", "-quiet"])
        .args(["-accept", &port.to_string()])
        .args(["-cert", &p("server.pem"), "-key", &p("server.key")])
        .args(["-Verify", "1", "-CAfile", &p("client.pem")])
        .args([
            "-groups",
            "P-256",
            "-ciphersuites",
            "TLS_AES_128_GCM_SHA256",
        ])
        .args(["-no_ticket", "-www"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(server) = server else {
        return missing("not measured: cannot start openssl s_server".into());
    };
    let _server = Reaped(server);
    // Wait for the listener.
    let up = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(20));
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    if !up {
        return missing("not measured: openssl s_server did not listen".into());
    }
    let n = HANDSHAKES / 2;
    let mut rng = seeded(3);
    let mut buffers = Box::new(TlsBuffers::new());
    let bmc = timed_connects(n, || {
        let Ok(tcp) = TcpStream::connect(("127.0.0.1", port)) else {
            return false;
        };
        let _ = tcp.set_nodelay(true);
        let tls = PinnedTls::open(
            Stream(tcp),
            &mut buffers,
            pki.server_pin(),
            pki.identity(),
            &mut rng,
        );
        tls.is_ok()
    });
    let client = rustls_client(pki);
    let rus = timed_connects(n, || {
        let Ok(mut tcp) = TcpStream::connect(("127.0.0.1", port)) else {
            return false;
        };
        let _ = tcp.set_nodelay(true);
        let Ok(name) = rustls::pki_types::ServerName::try_from("bmc") else {
            return false;
        };
        let Ok(mut conn) = rustls::ClientConnection::new(client.clone(), name) else {
            return false;
        };
        while conn.is_handshaking() {
            if conn.complete_io(&mut tcp).is_err() {
                return false;
            }
        }
        true
    });
    let s_time = Command::new("openssl")
        .args([
            "s_time",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-new",
            "-time",
            "4",
        ])
        .args(["-cert", &p("client.pem"), "-key", &p("client.key")])
        .stdin(Stdio::null())
        .output();
    let _ = std::fs::remove_dir_all(&dir);
    let s_time = s_time
        .ok()
        .and_then(|o| parse_s_time(&String::from_utf8_lossy(&o.stdout)));
    let mut rows = Vec::new();
    match (bmc, rus) {
        (Some(b), Some(r)) => rows.push(Row::new(
            title,
            format!("{:.2} ms", ms(b)),
            format!("{:.2} ms (rustls+ring client)", ms(r)),
            format!("{:.1}x", b.as_secs_f64() / r.as_secs_f64()),
            "<= 2x",
        )),
        _ => rows.extend(missing(
            "not measured: a client failed against s_server".into(),
        )),
    }
    if let (Some(b), Some(per)) = (bmc, s_time) {
        rows.push(Row::new(
            "same, vs `openssl s_time -new` (OpenSSL client, incl. its TCP connect)",
            format!("{:.2} ms", ms(b)),
            format!("{:.2} ms (openssl s_time)", ms(per)),
            format!("{:.1}x", b.as_secs_f64() / per.as_secs_f64()),
            "",
        ));
    } else {
        rows.push(Row::new(
            "same, vs `openssl s_time -new`",
            "not measured: s_time gave no result".into(),
            String::new(),
            String::new(),
            "",
        ));
    }
    rows
}

/// Time per connection from `s_time`'s "N connections in T real seconds".
fn parse_s_time(out: &str) -> Option<Duration> {
    let line = out
        .lines()
        .find(|l| l.contains("connections in") && l.contains("real seconds"))?;
    let mut words = line.split_whitespace();
    let n: f64 = words.next()?.parse().ok()?;
    let secs: f64 = line
        .split("connections in ")
        .nth(1)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    (n > 0.0).then(|| Duration::from_secs_f64(secs / n))
}
