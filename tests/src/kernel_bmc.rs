//! A BMC server on kernel sockets: the simulated BMC's protocol side
//! ([`Responder`]) behind a std `TcpListener`, for end-to-end tests where
//! the Linux kernel plays the BMC's network stack (a TAP device's kernel
//! side in a network namespace). The plain channel, or TLS 1.3 through the
//! simulated BMC's rustls server ([`crate::bmc_tls`]).
//!
//! Every connection runs on its own thread; the Lifecycle log, the session
//! counter and the PING count are shared in one [`BmcState`], and every
//! timeline line the responder writes is kept (and echoed to stdout when
//! asked) with the real time since the server started.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant as StdInstant;

use smoltcp::time::Instant;

use rustls::ServerConfig;

use crate::bmc::{BmcConfig, BmcState};
use crate::bmc_tls::TlsSession;
use crate::responder::{Next, Responder};
use crate::timeline;

/// What the server has seen, shared with the test.
#[derive(Debug, Default)]
pub struct Seen {
    /// The BMC's state: Lifecycle log, sessions, PINGs.
    pub state: BmcState,
    /// The timeline lines, formatted.
    pub lines: Vec<String>,
}

/// A running server (its threads end with the process).
#[derive(Debug, Clone)]
pub struct KernelBmc {
    seen: Arc<Mutex<Seen>>,
}

impl KernelBmc {
    /// Serves `listener` on a background thread with `cfg`'s firmware and
    /// behaviour; `echo`: print every timeline line to stdout.
    pub fn spawn(listener: TcpListener, cfg: BmcConfig, echo: bool) -> KernelBmc {
        Self::spawn_with(listener, cfg, None, echo)
    }

    /// As [`KernelBmc::spawn`], speaking TLS with `tls` on every connection.
    /// `server` is the SHA-256 of the certificate `tls` presents (what the
    /// enrollment proofs bind on the BMC's side).
    pub fn spawn_tls(
        listener: TcpListener,
        cfg: BmcConfig,
        tls: Arc<ServerConfig>,
        server: [u8; 32],
        echo: bool,
    ) -> KernelBmc {
        Self::spawn_with(listener, cfg, Some((tls, server)), echo)
    }

    fn spawn_with(
        listener: TcpListener,
        cfg: BmcConfig,
        tls: Option<(Arc<ServerConfig>, [u8; 32])>,
        echo: bool,
    ) -> KernelBmc {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let shared = Arc::clone(&seen);
        std::thread::spawn(move || serve(&listener, &cfg, tls.as_ref(), &shared, echo));
        KernelBmc { seen }
    }

    /// Runs `f` on what the server has seen.
    pub fn with<T>(&self, f: impl FnOnce(&Seen) -> T) -> T {
        f(&self.seen.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// PINGs received so far.
    pub fn pings(&self) -> u32 {
        self.with(|s| s.state.pings)
    }

    /// Lifecycle-log entries with `id` so far.
    pub fn count(&self, id: &str) -> usize {
        self.with(|s| s.state.log.count(id))
    }

    /// The timeline so far, one line each.
    pub fn timeline(&self) -> String {
        self.with(|s| s.lines.join("\n"))
    }
}

/// Accepts connections on `listener` forever, one thread each; TLS with
/// `tls` (the config and its certificate's SHA-256), else the plain channel.
pub fn serve(
    listener: &TcpListener,
    cfg: &BmcConfig,
    tls: Option<&(Arc<ServerConfig>, [u8; 32])>,
    seen: &Arc<Mutex<Seen>>,
    echo: bool,
) {
    let start = StdInstant::now();
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let (cfg, seen, tls) = (cfg.clone(), Arc::clone(seen), tls.cloned());
        std::thread::spawn(move || connection(stream, &cfg, tls, &seen, start, echo));
    }
}

fn connection(
    mut stream: TcpStream,
    cfg: &BmcConfig,
    tls: Option<(Arc<ServerConfig>, [u8; 32])>,
    seen: &Mutex<Seen>,
    start: StdInstant,
    echo: bool,
) {
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".into());
    let mut responder = Responder::new(tls.is_some());
    if let Some((_, server)) = &tls {
        responder = responder.with_server(*server);
    }
    let mut session = match tls.map(|(c, _)| TlsSession::new(c, None)).transpose() {
        Ok(s) => s,
        Err(e) => {
            note(seen, start, echo, || {
                timeline::emit("bmc", format!("cannot start TLS for {peer}: {e}"))
            });
            return;
        }
    };
    let mut buf = [0u8; 4096];
    let mut out = Vec::new();
    note(seen, start, echo, || {
        timeline::emit("bmc", format!("accepted {peer}"))
    });
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => {
                note(seen, start, echo, || {
                    timeline::emit("bmc", format!("{peer} closed"))
                });
                return;
            }
            Ok(n) => n,
        };
        out.clear();
        let next = {
            let mut s = seen.lock().unwrap_or_else(PoisonError::into_inner);
            timeline::set_now(since(start));
            let next = match &mut session {
                Some(t) => t.on_bytes(&buf[..n], &mut responder, cfg, &mut s.state, &mut out),
                None => responder.on_bytes(&buf[..n], cfg, &mut s.state, &mut out),
            };
            keep(&mut s, echo);
            next
        };
        if !out.is_empty() && stream.write_all(&out).is_err() {
            return;
        }
        if next == Next::Close {
            let _ = stream.shutdown(std::net::Shutdown::Both);
            return;
        }
    }
}

fn since(start: StdInstant) -> Instant {
    Instant::from_micros(i64::try_from(start.elapsed().as_micros()).unwrap_or(i64::MAX))
}

fn note(seen: &Mutex<Seen>, start: StdInstant, echo: bool, f: impl FnOnce()) {
    let mut s = seen.lock().unwrap_or_else(PoisonError::into_inner);
    timeline::set_now(since(start));
    f();
    keep(&mut s, echo);
}

/// Moves this thread's timeline lines into `seen`.
fn keep(seen: &mut Seen, echo: bool) {
    for line in timeline::take() {
        let text = timeline::format_line(&line);
        if echo {
            println!("{text}");
        }
        seen.lines.push(text);
    }
}
