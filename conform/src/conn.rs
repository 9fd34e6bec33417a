//! One connection to the BMC under test: kernel TCP, bare (the plain port)
//! or inside rustls (the TLS port), with the replies parsed by the core's
//! own codec ([`bmclink_core::proto`]) into owned values.
//!
//! [`Replies`] is the sans-I/O part (bytes in, replies out) and what the
//! `conform_replies` fuzz target drives: nothing a BMC sends can make the
//! rig panic.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bmclink_core::proto::{
    Caps, Event, FrameReader, Hello, Message, RejectCode, MAX_FRAME_LEN, PROTO_VERSION,
};
use bmclink_core::Family;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

use crate::tls::{self, Identity, Offer};

/// A message from the BMC, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// WELCOME.
    Welcome {
        /// Protocol version.
        proto: u8,
        /// Firmware version.
        firmware: [u8; 4],
        /// Capabilities.
        caps: Caps,
        /// Session id.
        session: u32,
    },
    /// REJECT.
    Reject {
        /// Code.
        code: RejectCode,
        /// Reason text.
        reason: String,
    },
    /// ENROLLED with the BMC's proof.
    Enrolled([u8; 32]),
    /// PING from the BMC.
    Ping(u32),
    /// PONG.
    Pong(u32),
    /// ACK.
    Ack(u32),
    /// BYE.
    Bye(u8),
    /// A message only the agent sends (HELLO, ENROLL, EVENT): named.
    AgentOnly(&'static str),
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reply::Welcome { session, caps, .. } => {
                write!(f, "WELCOME session {session} caps {:#05b}", caps.bits())
            }
            Reply::Reject { code, reason } => write!(f, "REJECT {code} ({reason:?})"),
            Reply::Enrolled(_) => f.write_str("ENROLLED"),
            Reply::Ping(s) => write!(f, "PING {s}"),
            Reply::Pong(s) => write!(f, "PONG {s}"),
            Reply::Ack(s) => write!(f, "ACK {s}"),
            Reply::Bye(r) => write!(f, "BYE {r}"),
            Reply::AgentOnly(t) => write!(f, "{t} (an agent-only message)"),
        }
    }
}

/// What waiting for the BMC produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Got {
    /// A well-formed message.
    Msg(Reply),
    /// The BMC sent bytes the codec refuses (the text says how).
    Malformed(String),
    /// The connection ended: orderly (`clean`, EOF or close_notify) or not
    /// (reset, TLS alert); the text says which.
    Closed {
        /// EOF or close_notify rather than an error.
        clean: bool,
        /// What happened.
        how: String,
    },
    /// Nothing within the wait.
    Timeout,
}

impl std::fmt::Display for Got {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Got::Msg(r) => r.fmt(f),
            Got::Malformed(e) => write!(f, "a malformed frame ({e})"),
            Got::Closed { how, .. } => write!(f, "connection closed ({how})"),
            Got::Timeout => f.write_str("nothing"),
        }
    }
}

/// Reply parsing, sans-I/O: bytes in, [`Got`]s out.
pub struct Replies {
    reader: Box<FrameReader<{ 4 * MAX_FRAME_LEN }>>,
    pending: Vec<u8>,
    broken: bool,
}

impl Default for Replies {
    fn default() -> Self {
        Replies {
            reader: Box::new(FrameReader::new()),
            pending: Vec::new(),
            broken: false,
        }
    }
}

impl Replies {
    /// Takes `bytes` (kept until parsed).
    pub fn feed(&mut self, bytes: &[u8]) {
        if !self.broken {
            self.pending.extend_from_slice(bytes);
        }
    }

    /// The next complete reply, if any. After a framing error the stream
    /// is broken: that error is returned once, then `None` forever.
    pub fn next_reply(&mut self) -> Option<Got> {
        if self.broken {
            return None;
        }
        let n = self.reader.push(&self.pending);
        self.pending.drain(..n.min(self.pending.len()));
        match self.reader.next_message()? {
            Ok(m) => Some(Got::Msg(owned(&m))),
            Err(e) => {
                if self.reader.error().is_some() {
                    self.broken = true;
                    self.pending.clear();
                }
                Some(Got::Malformed(e.to_string()))
            }
        }
    }

    /// Feeds `bytes`, collecting every reply now complete.
    pub fn feed_all(&mut self, bytes: &[u8], out: &mut Vec<Got>) {
        self.feed(bytes);
        while let Some(g) = self.next_reply() {
            out.push(g);
        }
    }
}

fn owned(m: &Message<'_>) -> Reply {
    match m {
        Message::Welcome(w) => Reply::Welcome {
            proto: w.proto,
            firmware: w.firmware,
            caps: w.caps,
            session: w.session,
        },
        Message::Reject(r) => Reply::Reject {
            code: r.code,
            reason: r.reason.to_string(),
        },
        Message::Enrolled(e) => Reply::Enrolled(e.proof),
        Message::Ping(s) => Reply::Ping(*s),
        Message::Pong(s) => Reply::Pong(*s),
        Message::Ack(s) => Reply::Ack(*s),
        Message::Bye(r) => Reply::Bye(*r),
        Message::Hello(_) => Reply::AgentOnly("HELLO"),
        Message::Enroll(_) => Reply::AgentOnly("ENROLL"),
        Message::Event(_) => Reply::AgentOnly("EVENT"),
    }
}

/// Encodes `m` as one frame.
pub fn frame(m: &Message<'_>) -> Vec<u8> {
    let mut buf = [0u8; MAX_FRAME_LEN];
    let n = m.emit(&mut buf).unwrap_or(0);
    buf.get(..n).unwrap_or_default().to_vec()
}

/// HELLO as the agent sends it (`enrolling`: an ENROLL follows).
pub fn hello(tls: bool, enrolling: bool) -> Vec<u8> {
    hello_version(PROTO_VERSION, tls, enrolling)
}

/// HELLO carrying protocol version `proto`.
pub fn hello_version(proto: u8, tls: bool, enrolling: bool) -> Vec<u8> {
    frame(&Message::Hello(Hello {
        proto,
        agent_version: concat!("bmclink-conform ", env!("CARGO_PKG_VERSION")),
        hostname: "conform",
        family: Family::V4,
        tls,
        enrolling,
    }))
}

/// EVENT `seq`.
pub fn event(seq: u32) -> Vec<u8> {
    frame(&Message::Event(Event {
        seq,
        severity: 2,
        id: "CONF001",
        text: "bmclink conform test event",
    }))
}

/// Why a TLS connection did not come up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnError {
    /// No answer within the wait (rather than a refusal).
    pub timed_out: bool,
    /// What happened.
    pub text: String,
}

impl std::fmt::Display for ConnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

fn refused(text: impl Into<String>) -> ConnError {
    ConnError {
        timed_out: false,
        text: text.into(),
    }
}

fn timed_out(text: impl Into<String>) -> ConnError {
    ConnError {
        timed_out: true,
        text: text.into(),
    }
}

enum Transport {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

/// An open connection to the BMC.
pub struct Conn {
    t: Transport,
    replies: Replies,
    /// SHA-256 of the certificate the BMC presented (TLS only).
    pub bmc_fp: Option<[u8; 32]>,
    /// The negotiated TLS version, e.g. "TLSv1_3" (TLS only).
    pub tls_version: Option<String>,
}

fn tcp(addr: SocketAddr, wait: Duration) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, wait)?;
    s.set_nodelay(true)?;
    s.set_write_timeout(Some(wait))?;
    Ok(s)
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

impl Conn {
    /// A bare TCP connection (the plain port).
    pub fn plain(addr: SocketAddr, wait: Duration) -> io::Result<Conn> {
        Ok(Conn {
            t: Transport::Plain(tcp(addr, wait)?),
            replies: Replies::default(),
            bmc_fp: None,
            tls_version: None,
        })
    }

    /// A TLS connection with the agent's offer and `identity`, handshake done.
    pub fn tls(addr: SocketAddr, identity: &Identity, wait: Duration) -> Result<Conn, ConnError> {
        let config = tls::client_config(Offer::Agent, Some(identity)).map_err(refused)?;
        Self::tls_with(addr, config, wait)
    }

    /// A TLS connection with `config`, handshake done (from the client's
    /// side: in TLS 1.3 the BMC may still refuse the client's certificate
    /// after this returns, with an alert the next read sees).
    pub fn tls_with(
        addr: SocketAddr,
        config: Arc<ClientConfig>,
        wait: Duration,
    ) -> Result<Conn, ConnError> {
        let mut sock = tcp(addr, wait).map_err(|e| {
            let text = format!("cannot connect to {addr}: {e}");
            if is_timeout(&e) {
                timed_out(text)
            } else {
                refused(text)
            }
        })?;
        let mut conn = ClientConnection::new(config, tls::server_name())
            .map_err(|e| refused(format!("TLS client: {e}")))?;
        let deadline = Instant::now() + wait;
        while conn.is_handshaking() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(timed_out(format!("TLS handshake not done within {wait:?}")));
            }
            let _ = sock.set_read_timeout(Some(left));
            match conn.complete_io(&mut sock) {
                Ok((0, 0)) if conn.is_handshaking() => {
                    return Err(refused("TLS handshake: the BMC closed the connection"))
                }
                Ok(_) => {}
                Err(e) if is_timeout(&e) => {
                    return Err(timed_out(format!("TLS handshake not done within {wait:?}")))
                }
                Err(e) => return Err(refused(format!("TLS handshake failed: {e}"))),
            }
        }
        let bmc_fp = conn
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| bmclink_core::cert::fingerprint(c.as_ref()));
        let tls_version = conn.protocol_version().map(|v| format!("{v:?}"));
        Ok(Conn {
            t: Transport::Tls(Box::new(StreamOwned::new(conn, sock))),
            replies: Replies::default(),
            bmc_fp,
            tls_version,
        })
    }

    /// Sends raw bytes (one write; inside one TLS record on the TLS port).
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut self.t {
            Transport::Plain(s) => s.write_all(bytes),
            Transport::Tls(s) => {
                s.write_all(bytes)?;
                s.flush()
            }
        }
    }

    fn sock(&self) -> &TcpStream {
        match &self.t {
            Transport::Plain(s) => s,
            Transport::Tls(s) => &s.sock,
        }
    }

    /// Waits up to `wait` for the next reply (or the end of the connection).
    pub fn recv(&mut self, wait: Duration) -> Got {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(g) = self.replies.next_reply() {
                return g;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Got::Timeout;
            }
            let _ = self.sock().set_read_timeout(Some(left));
            let mut buf = [0u8; 2048];
            let r = match &mut self.t {
                Transport::Plain(s) => s.read(&mut buf),
                Transport::Tls(s) => s.read(&mut buf),
            };
            match r {
                Ok(0) => {
                    return Got::Closed {
                        clean: true,
                        how: "EOF".into(),
                    }
                }
                Ok(n) => self.replies.feed(buf.get(..n).unwrap_or_default()),
                Err(e) if is_timeout(&e) => return Got::Timeout,
                Err(e) => {
                    return Got::Closed {
                        clean: false,
                        how: e.to_string(),
                    }
                }
            }
        }
    }

    /// Waits for the next message, skipping PINGs from the BMC (answered
    /// with PONG, as the agent would).
    pub fn recv_msg(&mut self, wait: Duration) -> Got {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv(left) {
                Got::Msg(Reply::Ping(seq)) => {
                    let _ = self.send(&frame(&Message::Pong(seq)));
                }
                other => return other,
            }
        }
    }

    /// Ends the connection (close_notify on TLS, then FIN).
    pub fn close(mut self) {
        if let Transport::Tls(s) = &mut self.t {
            s.conn.send_close_notify();
            let _ = s.conn.complete_io(&mut s.sock);
        }
        let _ = self.sock().shutdown(std::net::Shutdown::Both);
    }
}
