//! The interop matrix (issue 13): the agent's TLS client (`PinnedTls`, the
//! in-tree embedded-tls) against real TLS servers started here on loopback,
//! each in its default configuration plus a client-certificate request,
//! with P-256 ECDSA certificates:
//!
//! - OpenSSL `s_server` (the system OpenSSL, 3.0 on Debian 12),
//! - a current OpenSSL: a pyOpenSSL server on the `cryptography` wheel from
//!   PyPI (`.ci/run` installs it into `target/interop-venv`; another venv
//!   can be named with `BMCLINK_INTEROP_PYTHON`),
//! - GnuTLS: `gnutls-serv` itself (Debian `gnutls-bin`, echo mode), and the
//!   same libgnutls through ctypes answering the protocol,
//! - rustls with its default provider and groups, in-process.
//!
//! Each must complete mutual TLS 1.3 with the pinned certificate and carry
//! HELLO → WELCOME, PING → PONG (DESIGN §5) — answered by
//! `tests/interop/bmc_server.py`'s responder, or the simulated BMC's for
//! rustls — and, in its TLS 1.2-only configuration, fail with a version
//! error that the agent audits as BL4003, with no byte of the channel
//! protocol sent. Each run prints its row: server, library version, the
//! groups its EncryptedExtensions offered (decrypted from the wire with the
//! server's key log), result.
//!
//! A missing tool fails the test under `BMCLINK_REQUIRE_ROOT=1` or `CI`,
//! and is a printed skip otherwise.

use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes128Gcm, Nonce};
use bmclink_core::audit::TlsEvent;
use bmclink_core::proto::{Hello, Message, MAX_FRAME_LEN, PROTO_VERSION};
use bmclink_core::tls::{Identity, PinnedTls, TlsBuffers, TlsError};
use bmclink_core::Family;
use bmclink_tests::bmc_tls::TlsIdentity;
use hkdf::Hkdf;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use sha2::Sha256;

/// Whether a missing tool must fail the test.
fn required() -> bool {
    std::env::var_os("BMCLINK_REQUIRE_ROOT").is_some_and(|v| v == "1")
        || std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false")
}

/// Skips (prints why) or, when tools are required, fails.
fn missing(what: &str) {
    assert!(
        !required(),
        "interop: {what} is missing (required under CI)"
    );
    println!("SKIP interop: {what} is missing (install it, see .ci/run)");
}

fn on_path(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn pem(label: &str, der: &[u8]) -> String {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut body = String::new();
    for chunk in der.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            body.push(if i <= chunk.len() {
                B64[(n >> (18 - 6 * i) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out + &format!("-----END {label}-----\n")
}

/// The BMC's and the host's identities, and the BMC's as PEM files.
struct Pki {
    bmc: TlsIdentity,
    host: TlsIdentity,
    dir: PathBuf,
}

impl Pki {
    fn new(tag: &str) -> Pki {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            - 3600;
        let bmc = TlsIdentity::generate(0x1e7, "bmc.interop", now, true);
        let host = TlsIdentity::generate(0x1e8, "host.interop", now, false);
        let dir =
            std::env::temp_dir().join(format!("bmclink-interop-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = bmclink_tests::bench_tls::sec1_der(&bmc.key);
        std::fs::write(dir.join("bmc.pem"), pem("CERTIFICATE", &bmc.der)).unwrap();
        std::fs::write(dir.join("bmc.key"), pem("EC PRIVATE KEY", &key)).unwrap();
        Pki { bmc, host, dir }
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An embedded-io transport over a TCP stream that keeps a copy of every
/// byte the server sent (to read its EncryptedExtensions afterwards).
struct Tap {
    stream: TcpStream,
    from_server: Arc<Mutex<Vec<u8>>>,
}

impl embedded_io::ErrorType for Tap {
    type Error = embedded_io::ErrorKind;
}

impl embedded_io::Read for Tap {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let n = self
            .stream
            .read(buf)
            .map_err(|_| embedded_io::ErrorKind::Other)?;
        self.from_server
            .lock()
            .unwrap()
            .extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

impl embedded_io::Write for Tap {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.stream
            .write(buf)
            .map_err(|_| embedded_io::ErrorKind::Other)
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// What the client saw of one connection.
struct Outcome {
    result: Result<Vec<Message<'static>>, TlsError>,
    from_server: Vec<u8>,
}

fn frame(msg: &Message<'_>) -> Vec<u8> {
    let mut buf = [0u8; MAX_FRAME_LEN];
    let n = msg.emit(&mut buf).expect("emits");
    buf[..n].to_vec()
}

/// Reads one frame; owned copies of the messages the test looks at.
fn read_message<T: embedded_io::Read + embedded_io::Write>(
    tls: &mut PinnedTls<'_, T>,
) -> Result<Message<'static>, TlsError> {
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        if got.len() >= 2 {
            let need = 2 + usize::from(u16::from_be_bytes([got[0], got[1]]));
            if got.len() >= need {
                let packet = bmclink_core::proto::Packet::new_checked(&got[..need])
                    .map_err(|_| TlsError::Protocol { what: "bad frame" })?;
                return match Message::parse(&packet) {
                    Ok(Message::Welcome(w)) => Ok(Message::Welcome(w)),
                    Ok(Message::Pong(seq)) => Ok(Message::Pong(seq)),
                    _ => Err(TlsError::Protocol {
                        what: "unexpected frame",
                    }),
                };
            }
        }
        let n = tls.read(&mut buf)?;
        got.extend_from_slice(&buf[..n]);
    }
}

/// Connects, opens TLS pinning the BMC, then HELLO → WELCOME, PING 7 →
/// PONG 7 and BYE.
fn connect(pki: &Pki, port: u16) -> Outcome {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("the server listens");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let from_server = Arc::new(Mutex::new(Vec::new()));
    let tap = Tap {
        stream,
        from_server: from_server.clone(),
    };
    let mut rng = ChaCha20Rng::seed_from_u64(0x1e9);
    let mut buffers = Box::new(TlsBuffers::new());
    let identity =
        Identity::new(pki.host.key.clone(), &pki.host.der).expect("the certificate fits");
    let result = (|| {
        let mut tls =
            PinnedTls::open(tap, &mut buffers, pki.bmc.fingerprint(), identity, &mut rng)?;
        let hello = Message::Hello(Hello {
            proto: PROTO_VERSION,
            agent_version: "bmclink interop",
            hostname: "host.interop",
            family: Family::V4,
            tls: true,
            enrolling: false,
        });
        tls.send(&frame(&hello))?;
        let welcome = read_message(&mut tls)?;
        tls.send(&frame(&Message::Ping(7)))?;
        let pong = read_message(&mut tls)?;
        tls.send(&frame(&Message::Bye(0)))?;
        let _ = tls.close();
        Ok(vec![welcome, pong])
    })();
    let from_server = from_server.lock().unwrap().clone();
    Outcome {
        result,
        from_server,
    }
}

/// HKDF-Expand-Label (RFC 8446 §7.1).
fn expand_label(secret: &[u8], label: &str, len: usize) -> Vec<u8> {
    let full = [b"tls13 ", label.as_bytes()].concat();
    let mut info = (len as u16).to_be_bytes().to_vec();
    info.push(full.len() as u8);
    info.extend_from_slice(&full);
    info.push(0);
    let mut out = vec![0u8; len];
    Hkdf::<Sha256>::from_prk(secret)
        .unwrap()
        .expand(&info, &mut out)
        .unwrap();
    out
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// The supported_groups the server's EncryptedExtensions offered, read by
/// decrypting its first protected record with its handshake traffic secret.
fn offered_groups(from_server: &[u8], server_hs_secret: &[u8]) -> Option<Vec<u16>> {
    let key = expand_label(server_hs_secret, "key", 16);
    let iv = expand_label(server_hs_secret, "iv", 12);
    let mut rest = from_server;
    while rest.len() >= 5 {
        let len = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
        let (record, tail) = rest.split_at((5 + len).min(rest.len()));
        rest = tail;
        if record[0] != 23 {
            continue;
        }
        let (header, body) = record.split_at(5);
        let (data, tag) = body.split_at(body.len().checked_sub(16)?);
        let mut data = data.to_vec();
        Aes128Gcm::new_from_slice(&key)
            .unwrap()
            .decrypt_in_place_detached(Nonce::from_slice(&iv), header, &mut data, tag.into())
            .ok()?;
        // EncryptedExtensions: 08 len:u24 extensions_len:u16 extensions.
        if data.first() != Some(&8) {
            return None;
        }
        let mut p = 6;
        let end = 6 + usize::from(u16::from_be_bytes([data[4], data[5]]));
        while p + 4 <= end {
            let kind = u16::from_be_bytes([data[p], data[p + 1]]);
            let elen = usize::from(u16::from_be_bytes([data[p + 2], data[p + 3]]));
            if kind == 0x000a {
                let list = &data[p + 6..p + 4 + elen];
                return Some(
                    list.chunks(2)
                        .map(|c| u16::from_be_bytes([c[0], c[1]]))
                        .collect(),
                );
            }
            p += 4 + elen;
        }
        return Some(Vec::new());
    }
    None
}

fn group_name(g: u16) -> String {
    match g {
        0x0017 => "secp256r1".into(),
        0x0018 => "secp384r1".into(),
        0x0019 => "secp521r1".into(),
        0x001d => "x25519".into(),
        0x001e => "x448".into(),
        0x0029 => "curveSM2".into(),
        0x0100..=0x0104 => format!(
            "ffdhe{}",
            [2048, 3072, 4096, 6144, 8192][usize::from(g - 0x100)]
        ),
        0x11eb => "SecP256r1MLKEM768".into(),
        0x11ec => "X25519MLKEM768".into(),
        0x11ed => "SecP384r1MLKEM1024".into(),
        0x11ee => "curveSM2MLKEM768".into(),
        0x0200..=0x0202 => format!("MLKEM{}", [512, 768, 1024][usize::from(g - 0x200)]),
        other => format!("{other:#06x}"),
    }
}

/// The groups column: from the key log's SERVER_HANDSHAKE_TRAFFIC_SECRET.
fn groups_column(from_server: &[u8], keylog: &str) -> String {
    let secret = keylog
        .lines()
        .find_map(|l| l.strip_prefix("SERVER_HANDSHAKE_TRAFFIC_SECRET "))
        .and_then(|rest| rest.split(' ').nth(1))
        .map(hex);
    match secret.and_then(|s| offered_groups(from_server, &s)) {
        Some(groups) if groups.is_empty() => "(no supported_groups in EE)".into(),
        Some(groups) => groups
            .into_iter()
            .map(group_name)
            .collect::<Vec<_>>()
            .join(", "),
        None => "(not read)".into(),
    }
}

/// A `bmc_server.py` child; its stdout lines are collected.
struct Script {
    child: Child,
    version: String,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Script {
    fn start(
        python: &Path,
        mode: &str,
        pki: &Pki,
        port: u16,
        tls12: bool,
        keylog: &Path,
    ) -> Script {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/bmc_server.py");
        let mut cmd = Command::new(python);
        cmd.arg(script)
            .arg(mode)
            .args(["--port", &port.to_string()]);
        cmd.arg("--cert").arg(pki.dir.join("bmc.pem"));
        cmd.arg("--key").arg(pki.dir.join("bmc.key"));
        cmd.arg("--keylog").arg(keylog);
        cmd.env("SSLKEYLOGFILE", keylog);
        if tls12 {
            cmd.arg("--tls12");
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python starts");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        out.read_line(&mut first).unwrap();
        let version = first
            .trim()
            .strip_prefix("READY ")
            .unwrap_or_else(|| panic!("{mode}: server did not start: {first:?}"))
            .to_string();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || collect(out, sink));
        Script {
            child,
            version,
            lines,
        }
    }

    /// Waits for the server to finish (it serves one connection).
    fn finish(mut self) -> Vec<String> {
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::thread::sleep(Duration::from_millis(50));
        self.lines.lock().unwrap().clone()
    }
}

fn collect(out: BufReader<ChildStdout>, sink: Arc<Mutex<Vec<String>>>) {
    for line in out.lines().map_while(Result::ok) {
        sink.lock().unwrap().push(line);
    }
}

/// The checks every row makes, given one TLS 1.3 run and one TLS 1.2 run.
fn check_row(
    server: &str,
    version: &str,
    groups: &str,
    ok: &Outcome,
    seen: &[String],
    tls12: &Outcome,
    seen12: &[String],
) {
    let result = match &ok.result {
        Ok(msgs) => {
            let welcome_ok = matches!(
                msgs.first(),
                Some(Message::Welcome(w)) if w.proto == PROTO_VERSION && w.firmware == [7, 10, 30, 0]
            );
            assert!(welcome_ok, "{server}: WELCOME: {msgs:?}");
            assert!(
                matches!(msgs.get(1), Some(Message::Pong(7))),
                "{server}: {msgs:?}"
            );
            "mutual TLS 1.3, HELLO/WELCOME/PING/PONG"
        }
        Err(e) => panic!("{server} ({version}): {e} — server said {seen:?}"),
    };
    assert!(
        seen.iter().any(|l| l.starts_with("HELLO proto=1 tls=1"))
            && seen.iter().any(|l| l == "PING 7"),
        "{server}: the server saw {seen:?}"
    );
    let err = tls12
        .result
        .as_ref()
        .err()
        .unwrap_or_else(|| panic!("{server}: TLS 1.2 only succeeded"));
    // A TLS 1.2-only server answers our TLS 1.3-only ClientHello with
    // protocol_version (it read supported_versions) or handshake_failure
    // (it found none of its TLS 1.2 cipher suites, RFC 5246 §7.4.1.3).
    assert!(
        matches!(
            err,
            TlsError::Version { .. } | TlsError::Alert { description: 40 }
        ),
        "{server} TLS 1.2: {err:?}"
    );
    assert_eq!(TlsEvent::handshake_failed(*err).id().0, 4003, "{server}");
    assert!(
        !seen12
            .iter()
            .any(|l| l.starts_with("HELLO") || l.starts_with("PING")),
        "{server}: no channel protocol over TLS 1.2 or in plain: {seen12:?}"
    );
    println!("| {server} | {version} | {groups} | {result}; TLS 1.2 only: {err} (BL4003) |");
}

/// Runs one `bmc_server.py` mode as a row.
fn script_row(server: &str, mode: &str, python: &Path, tag: &str) {
    let pki = Pki::new(tag);
    let keylog = pki.dir.join("keylog");
    let port = free_port();
    let script = Script::start(python, mode, &pki, port, false, &keylog);
    let version = script.version.clone();
    let ok = connect(&pki, port);
    let seen = script.finish();
    let log = std::fs::read_to_string(&keylog).unwrap_or_default();
    let groups = groups_column(&ok.from_server, &log);
    let port12 = free_port();
    let script12 = Script::start(python, mode, &pki, port12, true, &pki.dir.join("keylog12"));
    let tls12 = connect(&pki, port12);
    let seen12 = script12.finish();
    check_row(server, &version, &groups, &ok, &seen, &tls12, &seen12);
}

/// The python with pyOpenSSL: `BMCLINK_INTEROP_PYTHON`, else the venv
/// `.ci/run` makes.
fn pyopenssl_python() -> Option<PathBuf> {
    let python = std::env::var_os("BMCLINK_INTEROP_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/interop-venv/bin/python")
        });
    Command::new(&python)
        .args(["-c", "import OpenSSL.SSL"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
        .then_some(python)
}

#[test]
fn openssl_s_server_default_configuration() {
    if !on_path("openssl") || !on_path("python3") {
        return missing("openssl (or python3)");
    }
    script_row(
        "OpenSSL s_server",
        "s_server",
        Path::new("python3"),
        "s_server",
    );
}

#[test]
fn current_openssl_through_pyopenssl() {
    let Some(python) = pyopenssl_python() else {
        return missing("a python with pyOpenSSL (target/interop-venv or BMCLINK_INTEROP_PYTHON)");
    };
    script_row(
        "pyOpenSSL (cryptography wheel)",
        "pyopenssl",
        &python,
        "pyopenssl",
    );
}

#[test]
fn gnutls_library_default_priorities() {
    let has_lib = Command::new("python3")
        .args(["-c", "import ctypes; ctypes.CDLL('libgnutls.so.30')"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_lib {
        return missing("libgnutls.so.30 (Debian gnutls-bin)");
    }
    script_row(
        "GnuTLS (libgnutls, default priorities)",
        "gnutls",
        Path::new("python3"),
        "gnutls",
    );
}

/// `gnutls-serv` itself has no way to script replies (it echoes text
/// lines, or serves HTTP): its row checks the mutual TLS 1.3 handshake
/// with its defaults and that application data crosses it both ways (a
/// line echoed back, `--crlf` so it changes no byte); the protocol
/// exchange over GnuTLS is the libgnutls row's, same library.
#[test]
fn gnutls_serv_default_configuration_echo() {
    if !on_path("gnutls-serv") {
        return missing("gnutls-serv (Debian gnutls-bin)");
    }
    let pki = Pki::new("gnutls-serv");
    let keylog = pki.dir.join("keylog");
    let run = |tls12: bool| {
        let port = free_port();
        let mut cmd = Command::new("gnutls-serv");
        cmd.args(["--echo", "--crlf", "--require-client-cert"]);
        cmd.args(["-p", &port.to_string()]);
        cmd.arg("--x509certfile").arg(pki.dir.join("bmc.pem"));
        cmd.arg("--x509keyfile").arg(pki.dir.join("bmc.key"));
        if tls12 {
            cmd.arg("--priority=NORMAL:-VERS-ALL:+VERS-TLS1.2");
        }
        let mut child = cmd
            .env("SSLKEYLOGFILE", &keylog)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("gnutls-serv starts");
        // Its "listening" line is block-buffered into the pipe: poll the
        // port instead (gnutls-serv serves one connection after another, so
        // the probe costs nothing).
        let mut up = false;
        for _ in 0..200 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                up = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        assert!(up, "gnutls-serv did not start");
        let outcome = echo(&pki, port);
        let _ = child.kill();
        let _ = child.wait();
        outcome
    };
    let ok = run(false);
    let version = Command::new("gnutls-serv")
        .arg("--version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_default();
    let log = std::fs::read_to_string(&keylog).unwrap_or_default();
    let groups = groups_column(&ok.0, &log);
    let echoed = ok.1.unwrap_or_else(|e| panic!("gnutls-serv: {e}"));
    let tls12 = run(true).1.expect_err("gnutls-serv TLS 1.2 only succeeded");
    assert!(
        matches!(
            tls12,
            TlsError::Version { .. } | TlsError::Alert { description: 40 }
        ),
        "gnutls-serv TLS 1.2: {tls12:?}"
    );
    assert_eq!(TlsEvent::handshake_failed(tls12).id().0, 4003);
    println!(
        "| gnutls-serv --echo | {version} | {groups} | mutual TLS 1.3, a {echoed}-byte line echoed; TLS 1.2 only: {tls12} (BL4003) |"
    );
}

/// Opens TLS to an echo server, sends a line, checks it comes back
/// unchanged; the server's bytes and the count.
fn echo(pki: &Pki, port: u16) -> (Vec<u8>, Result<usize, TlsError>) {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("gnutls-serv listens");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let from_server = Arc::new(Mutex::new(Vec::new()));
    let tap = Tap {
        stream,
        from_server: from_server.clone(),
    };
    let mut rng = ChaCha20Rng::seed_from_u64(0x1ea);
    let mut buffers = Box::new(TlsBuffers::new());
    let identity =
        Identity::new(pki.host.key.clone(), &pki.host.der).expect("the certificate fits");
    let result = (|| {
        let mut tls =
            PinnedTls::open(tap, &mut buffers, pki.bmc.fingerprint(), identity, &mut rng)?;
        // gnutls-serv echoes text lines (a channel frame starts with a NUL
        // byte, which it drops), so the data crossing it is a line.
        let sent = b"bmclink interop ping\n".to_vec();
        tls.send(&sent)?;
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        while got.len() < sent.len() {
            let n = tls.read(&mut buf)?;
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, sent, "gnutls-serv echoes the frames");
        let _ = tls.close();
        Ok(sent.len())
    })();
    let bytes = from_server.lock().unwrap().clone();
    (bytes, result)
}

/// rustls' defaults, in-process: `ServerConfig::builder()` (the default
/// provider of this build, ring, with its default groups), the simulated
/// BMC's responder answering, our client certificate required.
#[test]
fn rustls_default_provider_and_groups() {
    use bmclink_tests::bmc::{BmcConfig, BmcState};
    use bmclink_tests::bmc_tls::SelfSignedClientVerifier;
    use bmclink_tests::responder::Responder;

    #[derive(Debug, Default)]
    struct Secrets(Mutex<String>);
    impl rustls::KeyLog for Secrets {
        fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
            let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
            let line = format!("{label} {} {}\n", hex(client_random), hex(secret));
            self.0.lock().unwrap().push_str(&line);
        }
    }

    let pki = Pki::new("rustls");
    let serve = |tls12: bool, secrets: Arc<Secrets>| {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions: &[&rustls::SupportedProtocolVersion] = if tls12 {
            &[&rustls::version::TLS12]
        } else {
            rustls::DEFAULT_VERSIONS
        };
        let mut config = rustls::ServerConfig::builder_with_protocol_versions(versions)
            .with_client_cert_verifier(Arc::new(SelfSignedClientVerifier::new(provider)))
            .with_single_cert(pki.bmc.chain(), pki.bmc.private_key())
            .expect("server config");
        config.key_log = secrets;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let client_fp = pki.host.fingerprint();
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let conn = rustls::ServerConnection::new(Arc::new(config)).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, stream);
            let mut responder = Responder::new(true);
            responder.client_fingerprint = Some(client_fp);
            let cfg = BmcConfig {
                firmware: [7, 10, 30, 0],
                ..BmcConfig::default()
            };
            let mut state = BmcState::default();
            state.enrolled.push(client_fp);
            let mut buf = [0u8; 1024];
            loop {
                let n = match tls.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let mut out = Vec::new();
                let next = responder.on_bytes(&buf[..n], &cfg, &mut state, &mut out);
                if !out.is_empty() && tls.write_all(&out).is_err() {
                    break;
                }
                if next == bmclink_tests::responder::Next::Close {
                    break;
                }
            }
            state.pings
        });
        (port, server)
    };
    let secrets = Arc::new(Secrets::default());
    let (port, server) = serve(false, secrets.clone());
    let ok = connect(&pki, port);
    let pings = server.join().unwrap();
    let groups = groups_column(&ok.from_server, &secrets.0.lock().unwrap());
    let seen: Vec<String> = if pings > 0 {
        vec!["HELLO proto=1 tls=1".into(), "PING 7".into()]
    } else {
        Vec::new()
    };
    let (port12, server12) = serve(true, Arc::new(Secrets::default()));
    let tls12 = connect(&pki, port12);
    let pings12 = server12.join().unwrap();
    let seen12: Vec<String> = if pings12 > 0 {
        vec!["PING".into()]
    } else {
        Vec::new()
    };
    let version = "rustls 0.23 (ring provider, default groups)";
    check_row("rustls", version, &groups, &ok, &seen, &tls12, &seen12);
}
