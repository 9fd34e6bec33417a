//! Channel throughput over kernel loopback TCP: bmclink's TLS client and a
//! rustls client, each streaming to the same rustls sink.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Instant;

use bmclink_core::tls::{PinnedTls, TlsBuffers};
use bmclink_tests::bench_tls::{rustls_client, Pki, Stream};

use super::{seeded, BULK, CHUNK};

/// A sink server on loopback TCP; returns its port and a handle yielding
/// whether it served.
fn sink_server(config: Arc<rustls::ServerConfig>) -> Option<(u16, std::thread::JoinHandle<usize>)> {
    let listener = TcpListener::bind("127.0.0.1:0").ok()?;
    let port = listener.local_addr().ok()?.port();
    let handle = std::thread::spawn(move || {
        let Ok((mut tcp, _)) = listener.accept() else {
            return 0;
        };
        let Ok(mut conn) = rustls::ServerConnection::new(config) else {
            return 0;
        };
        let mut total = 0;
        let mut plain = vec![0u8; 64 * 1024];
        loop {
            match conn.complete_io(&mut tcp) {
                Ok((0, 0)) | Err(_) => break,
                Ok(_) => {}
            }
            loop {
                match conn.reader().read(&mut plain) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => total += n,
                }
            }
            if total >= BULK {
                // Acknowledge the end so the client can stop the clock.
                let _ = conn.writer().write_all(b"k");
                let _ = conn.complete_io(&mut tcp);
                break;
            }
        }
        total
    });
    Some((port, handle))
}

/// MB/s of a rustls client streaming [`BULK`] bytes to a rustls sink over
/// kernel loopback TCP (handshake excluded).
pub fn throughput_rustls(pki: &Pki, server: &Arc<rustls::ServerConfig>) -> f64 {
    let Some((port, handle)) = sink_server(server.clone()) else {
        return f64::NAN;
    };
    let Ok(tcp) = TcpStream::connect(("127.0.0.1", port)) else {
        return f64::NAN;
    };
    let Ok(name) = rustls::pki_types::ServerName::try_from("bmc") else {
        return f64::NAN;
    };
    let Ok(conn) = rustls::ClientConnection::new(rustls_client(pki), name) else {
        return f64::NAN;
    };
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let chunk = [0x5au8; CHUNK];
    let _ = tls.write_all(&[]);
    while tls.conn.is_handshaking() {
        if tls.conn.complete_io(&mut tls.sock).is_err() {
            return f64::NAN;
        }
    }
    let t = Instant::now();
    for _ in 0..BULK / CHUNK {
        if tls.write_all(&chunk).is_err() {
            return f64::NAN;
        }
    }
    let mut ack = [0u8; 1];
    let _ = tls.read_exact(&mut ack);
    let secs = t.elapsed().as_secs_f64();
    let served = handle.join().unwrap_or(0);
    mb_per_s(served, secs)
}

/// MB/s of bmclink's TLS client streaming [`BULK`] bytes to the same rustls
/// sink over kernel loopback TCP (handshake excluded).
pub fn throughput_bmclink_tcp(pki: &Pki, server: &Arc<rustls::ServerConfig>) -> f64 {
    let Some((port, handle)) = sink_server(server.clone()) else {
        return f64::NAN;
    };
    let Ok(tcp) = TcpStream::connect(("127.0.0.1", port)) else {
        return f64::NAN;
    };
    let mut buffers = Box::new(TlsBuffers::new());
    let mut rng = seeded(4);
    let Ok(mut tls) = PinnedTls::open(
        Stream(tcp),
        &mut buffers,
        pki.server_pin(),
        pki.identity(),
        &mut rng,
    ) else {
        return f64::NAN;
    };
    let chunk = [0x5au8; CHUNK];
    let t = Instant::now();
    for _ in 0..BULK / CHUNK {
        // One record per channel frame, as the agent sends them.
        if tls.send(&chunk).is_err() {
            return f64::NAN;
        }
    }
    let mut ack = [0u8; 1];
    let _ = tls.read(&mut ack);
    let secs = t.elapsed().as_secs_f64();
    let served = handle.join().unwrap_or(0);
    mb_per_s(served, secs)
}

fn mb_per_s(bytes: usize, secs: f64) -> f64 {
    if bytes < BULK {
        return f64::NAN;
    }
    bytes as f64 / secs / 1e6
}
