//! Interop with a peer nobody here wrote: `openssl s_server` on loopback.

extern crate std;

use std::format;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::string::String;
use std::vec::Vec;

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::{sec1_der, Pki};
use crate::tls::{Identity, PinnedTls, TlsBuffers, TlsError};

/// A blocking `TcpStream` as an `embedded_io` transport.
struct Tcp(TcpStream);

impl embedded_io::ErrorType for Tcp {
    type Error = embedded_io::ErrorKind;
}

impl embedded_io::Read for Tcp {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        std::io::Read::read(&mut self.0, buf).map_err(|_| embedded_io::ErrorKind::Other)
    }
}

impl embedded_io::Write for Tcp {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        std::io::Write::write(&mut self.0, buf).map_err(|_| embedded_io::ErrorKind::Other)
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
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
            if i <= chunk.len() {
                body.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                body.push('=');
            }
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out + &format!("-----END {label}-----\n")
}

/// An `openssl s_server` child, killed when dropped.
struct SServer {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Drop for SServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts `openssl s_server -rev` (echoes lines reversed) for `pki`'s BMC
/// certificate, trusting `client_ca` for client certificates.
fn s_server(pki: &Pki, client_ca: &[u8], version: &str, tag: &str) -> SServer {
    let dir = std::env::temp_dir().join(format!("bmclink-ossl-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = match sec1_der(&pki.server_key) {
        rustls::pki_types::PrivateKeyDer::Sec1(k) => k.secret_sec1_der().to_vec(),
        _ => unreachable!(),
    };
    std::fs::write(dir.join("server.pem"), pem("CERTIFICATE", &pki.server_der)).unwrap();
    std::fs::write(dir.join("server.key"), pem("EC PRIVATE KEY", &key)).unwrap();
    std::fs::write(dir.join("ca.pem"), pem("CERTIFICATE", client_ca)).unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new("/usr/bin/openssl")
        .current_dir(&dir)
        .args(["s_server", "-rev", "-naccept", "1", version])
        .args(["-accept", &format!("127.0.0.1:{port}")])
        .args([
            "-cert",
            "server.pem",
            "-key",
            "server.key",
            "-CAfile",
            "ca.pem",
        ])
        .args(["-Verify", "1", "-verify_return_error"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // s_server prints ACCEPT once it listens.
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    loop {
        match lines.next() {
            Some(Ok(line)) if line.starts_with("ACCEPT") => break,
            Some(Ok(_)) => {}
            _ => panic!("openssl s_server did not start"),
        }
    }
    // Keep draining its output so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    SServer { child, port, dir }
}

fn talk(pki: &Pki, server: &SServer, pin: [u8; 32]) -> Result<Vec<u8>, TlsError> {
    let stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let mut buffers = std::boxed::Box::new(TlsBuffers::new());
    let identity =
        Identity::new(pki.client_key.clone(), &pki.client_der).expect("the certificate fits");
    let mut tls = PinnedTls::open(Tcp(stream), &mut buffers, pin, identity, &mut rng)?;
    tls.send(b"bmclink ping\n")?;
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    while !got.ends_with(b"\n") {
        let n = tls.read(&mut buf)?;
        got.extend_from_slice(&buf[..n]);
    }
    Ok(got)
}

#[test]
fn openssl_s_server_tls13_completes_the_mutual_handshake() {
    let pki = Pki::new(40);
    let server = s_server(&pki, &pki.client_der, "-tls1_3", "ok");
    let echo = talk(&pki, &server, pki.server_pin()).unwrap();
    assert_eq!(echo, b"gnip knilcmb\n");
}

#[test]
fn openssl_s_server_tls12_only_fails_without_fallback() {
    let pki = Pki::new(41);
    let server = s_server(&pki, &pki.client_der, "-tls1_2", "tls12");
    let err = talk(&pki, &server, pki.server_pin()).unwrap_err();
    assert_eq!(
        err,
        TlsError::Version {
            what: "protocol_version alert"
        }
    );
}

#[test]
fn openssl_s_server_with_another_certificate_fails_the_pin() {
    let pki = Pki::new(42);
    let server = s_server(&pki, &pki.client_der, "-tls1_3", "pin");
    let pin = Pki::new(43).server_pin();
    assert_eq!(
        talk(&pki, &server, pin).unwrap_err(),
        TlsError::PinMismatch {
            pinned: pin,
            presented: pki.server_pin()
        }
    );
}

#[test]
fn openssl_s_server_refusing_our_certificate_fails_on_first_read() {
    let pki = Pki::new(44);
    let stranger = Pki::new(45).client_der;
    let server = s_server(&pki, &stranger, "-tls1_3", "refuse");
    // The handshake completes on our side; openssl's refusal (an alert
    // after our last flight) surfaces on the first read.
    assert_eq!(
        talk(&pki, &server, pki.server_pin()).unwrap_err(),
        TlsError::AbortedAfterHandshake
    );
}
