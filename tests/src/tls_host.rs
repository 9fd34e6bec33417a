//! A second host on the simulated segment that talks to the simulated BMC
//! with its own smoltcp stack and a rustls 0.23 client: the BMC's TLS side
//! tested by a peer nobody here wrote, in virtual time.
//!
//! The client pins the BMC certificate by SHA-256 ([`PinCheck`]) and
//! presents a P-256 self-signed client certificate, like the agent.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use bmclink_core::cert;
use bmclink_core::proto::{FrameReader, Message, MAX_FRAME_LEN};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, SignatureScheme};
use smoltcp::iface::{Config as IfaceConfig, Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr, Ipv4Address};

use crate::bmc_tls::{ring_provider, TlsIdentity};
use crate::port_device::PortDevice;
use crate::wire::Port;
use crate::world::World;

/// A server certificate verifier that accepts exactly the pinned
/// certificate and checks its TLS 1.3 CertificateVerify; it remembers what
/// the server presented.
#[derive(Debug)]
pub struct PinCheck {
    pin: [u8; 32],
    provider: Arc<CryptoProvider>,
    /// SHA-256 of the certificate the server presented.
    pub presented: Mutex<Option<[u8; 32]>>,
}

impl ServerCertVerifier for PinCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let fp = cert::fingerprint(end_entity.as_ref());
        *self.presented.lock().expect("not poisoned") = Some(fp);
        if fp == self.pin {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A TLS 1.3-only client configuration pinning `pin` and presenting
/// `identity`; the [`PinCheck`] tells what the server presented.
pub fn client_config(identity: &TlsIdentity, pin: [u8; 32]) -> (Arc<ClientConfig>, Arc<PinCheck>) {
    let provider = ring_provider(false);
    let check = Arc::new(PinCheck {
        pin,
        provider: provider.clone(),
        presented: Mutex::new(None),
    });
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3 is in the ring provider")
        .dangerous()
        .with_custom_certificate_verifier(check.clone())
        .with_client_auth_cert(identity.chain(), identity.private_key())
        .expect("a P-256 identity loads");
    (Arc::new(config), check)
}

/// Presents a fixed certificate chain and signs with a fixed key, whether
/// or not they belong together (a client that does not hold the key of the
/// certificate it shows, or shows a malformed one).
#[derive(Debug)]
struct FixedClientCert(Arc<rustls::sign::CertifiedKey>);

impl rustls::client::ResolvesClientCert for FixedClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// Like [`client_config`], but presenting `cert_der` (any bytes) while
/// signing with `signer`'s key.
pub fn client_config_mismatched(
    cert_der: &[u8],
    signer: &TlsIdentity,
    pin: [u8; 32],
) -> Arc<ClientConfig> {
    let provider = ring_provider(false);
    let check = Arc::new(PinCheck {
        pin,
        provider: provider.clone(),
        presented: Mutex::new(None),
    });
    let key = provider
        .key_provider
        .load_private_key(signer.private_key())
        .expect("a P-256 key loads");
    let certified =
        rustls::sign::CertifiedKey::new(vec![CertificateDer::from(cert_der.to_vec())], key);
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3 is in the ring provider")
        .dangerous()
        .with_custom_certificate_verifier(check)
        .with_client_cert_resolver(Arc::new(FixedClientCert(Arc::new(certified))));
    Arc::new(config)
}

/// A host with one TCP connection, bare or inside rustls.
pub struct TlsHost {
    port: Port,
    iface: Interface,
    sockets: SocketSet<'static>,
    handle: SocketHandle,
    tls: Option<rustls::ClientConnection>,
    /// Plaintext received so far (frames are parsed out of it by
    /// [`TlsHost::messages`]).
    pub received: Vec<u8>,
    /// Why the TLS connection failed, if it did.
    pub tls_error: Option<rustls::Error>,
    next_local_port: u16,
}

/// How long [`TlsHost`] waits for anything, in virtual time.
pub const PATIENCE: Duration = Duration::from_secs(30);

impl TlsHost {
    /// A host at `ip` with `mac` on a new port of `world`'s segment.
    pub fn new(world: &World, mac: [u8; 6], ip: Ipv4Address) -> Self {
        let port = world.extra_port();
        let mut iface = {
            let mut dev = PortDevice::new(&port);
            let mut icfg = IfaceConfig::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
            icfg.random_seed = 0x7e57;
            Interface::new(icfg, &mut dev, world.clock.now())
        };
        iface.update_ip_addrs(|addrs| {
            let _ = addrs.push(IpCidr::new(IpAddress::Ipv4(ip), 16));
        });
        let mut sockets = SocketSet::new(Vec::new());
        let handle = sockets.add(tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; 32 * 1024]),
            tcp::SocketBuffer::new(vec![0; 32 * 1024]),
        ));
        TlsHost {
            port,
            iface,
            sockets,
            handle,
            tls: None,
            received: Vec::new(),
            tls_error: None,
            next_local_port: 49152,
        }
    }

    fn socket(&mut self) -> &mut tcp::Socket<'static> {
        self.sockets.get_mut::<tcp::Socket>(self.handle)
    }

    /// Opens a TCP connection to `remote` (inside TLS with `tls`) and runs
    /// until it is established (and the TLS handshake done) or has failed.
    pub fn connect(
        &mut self,
        world: &mut World,
        remote: (IpAddress, u16),
        tls: Option<Arc<ClientConfig>>,
    ) {
        self.received.clear();
        self.tls_error = None;
        self.tls = tls.map(|config| {
            rustls::ClientConnection::new(
                config,
                ServerName::IpAddress(std::net::IpAddr::from(remote.0).into()),
            )
            .expect("a TLS 1.3 client config")
        });
        let local = self.next_local_port;
        self.next_local_port += 1;
        let handle = self.handle;
        // Reset the previous connection, and let the RST go out before
        // the socket is reused.
        self.socket().abort();
        self.poll(world.clock.now());
        let socket = self.sockets.get_mut::<tcp::Socket>(handle);
        let cx = self.iface.context();
        socket
            .connect(cx, remote, local)
            .expect("a fresh socket connects");
        self.run(world, |h| {
            let s = h.sockets.get::<tcp::Socket>(h.handle).state();
            let tcp_done = s != tcp::State::SynSent && s != tcp::State::SynReceived;
            let tls_done = h
                .tls
                .as_ref()
                .is_none_or(|t| !t.is_handshaking() || h.tls_error.is_some());
            (tcp_done && tls_done) || s == tcp::State::Closed
        });
    }

    /// The TCP state of the connection.
    pub fn state(&self) -> tcp::State {
        self.sockets.get::<tcp::Socket>(self.handle).state()
    }

    /// Whether the TLS handshake completed without error.
    pub fn tls_established(&self) -> bool {
        self.tls
            .as_ref()
            .is_some_and(|t| !t.is_handshaking() && self.tls_error.is_none())
    }

    /// The negotiated TLS version.
    pub fn tls_version(&self) -> Option<rustls::ProtocolVersion> {
        self.tls.as_ref().and_then(|t| t.protocol_version())
    }

    /// Sends one channel message.
    pub fn send(&mut self, world: &mut World, msg: &Message<'_>) {
        let mut buf = [0u8; MAX_FRAME_LEN];
        let n = msg.emit(&mut buf).expect("a message the test built fits");
        match self.tls.as_mut() {
            Some(tls) => tls.writer().write_all(&buf[..n]).expect("rustls buffers"),
            None => {
                let _ = self.socket().send_slice(&buf[..n]);
            }
        }
        self.run(world, |_| true);
    }

    /// Runs until a whole message arrived, the connection ended or
    /// [`PATIENCE`] passed; returns the messages received so far in this
    /// connection, as owned debug-comparable values.
    pub fn exchange(&mut self, world: &mut World, msg: &Message<'_>) -> Vec<Received> {
        let before = self.messages().len();
        self.send(world, msg);
        self.run(world, |h| {
            h.messages().len() > before || h.state() == tcp::State::Closed || h.tls_error.is_some()
        });
        self.messages()
    }

    /// Waits until the connection is closed (or [`PATIENCE`] passed).
    pub fn wait_closed(&mut self, world: &mut World) {
        self.run(world, |h| {
            matches!(
                h.state(),
                tcp::State::Closed | tcp::State::CloseWait | tcp::State::TimeWait
            )
        });
    }

    /// The channel messages in what was received.
    pub fn messages(&self) -> Vec<Received> {
        let mut reader = FrameReader::<{ 4 * MAX_FRAME_LEN }>::new();
        let mut out = Vec::new();
        let mut bytes = &self.received[..];
        while !bytes.is_empty() {
            let n = reader.push(bytes);
            bytes = &bytes[n..];
            while let Some(m) = reader.next_message() {
                out.push(match m {
                    Ok(Message::Welcome(w)) => Received::Welcome(w.session),
                    Ok(Message::Reject(r)) => Received::Reject(r.code.to_string()),
                    Ok(Message::Enrolled(e)) => Received::Enrolled(e.proof),
                    Ok(other) => Received::Other(format!("{other:?}")),
                    Err(e) => Received::Malformed(e.to_string()),
                });
            }
            if n == 0 {
                break;
            }
        }
        out
    }

    /// Polls this host, the BMC and the segment in virtual time until
    /// `done` or [`PATIENCE`] passed.
    pub fn run(&mut self, world: &mut World, done: impl Fn(&TlsHost) -> bool) {
        let deadline = world.clock.now() + PATIENCE;
        let mut spins = 0u32;
        loop {
            let now = world.clock.now();
            self.poll(now);
            world.bmc.poll(now);
            self.poll(now);
            if done(self) || now >= deadline {
                return;
            }
            let next = [
                Some(deadline),
                world.segment.next_delivery(),
                world.bmc.poll_at(now),
                self.iface.poll_at(now, &self.sockets),
            ]
            .into_iter()
            .flatten()
            .min();
            match next {
                Some(t) if t > now => world.clock.advance_to(t),
                _ => {
                    // A timer due now that no poll clears (smoltcp asks
                    // again at once while it waits for ARP): let time move.
                    spins += 1;
                    if spins > 10 {
                        world.clock.advance(Duration::from_millis(1));
                        spins = 0;
                    }
                }
            }
        }
    }

    fn poll(&mut self, now: Instant) {
        for _ in 0..16 {
            let mut dev = PortDevice::new(&self.port);
            self.iface.poll(now, &mut dev, &mut self.sockets);
            if !self.pump() {
                break;
            }
        }
    }

    /// Moves bytes between the socket and rustls; true if any moved.
    fn pump(&mut self) -> bool {
        let mut moved = false;
        let socket = self.sockets.get_mut::<tcp::Socket>(self.handle);
        let mut input = Vec::new();
        while socket.can_recv() {
            let mut buf = [0u8; 4096];
            match socket.recv_slice(&mut buf) {
                Ok(n) if n > 0 => input.extend_from_slice(&buf[..n]),
                _ => break,
            }
        }
        moved |= !input.is_empty();
        let Some(tls) = self.tls.as_mut() else {
            self.received.extend_from_slice(&input);
            return moved;
        };
        let mut slice = &input[..];
        while !slice.is_empty() && self.tls_error.is_none() {
            match tls.read_tls(&mut slice) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            if let Err(e) = tls.process_new_packets() {
                self.tls_error = Some(e);
            }
        }
        let mut buf = [0u8; 4096];
        while let Ok(n) = tls.reader().read(&mut buf) {
            if n == 0 {
                break;
            }
            self.received.extend_from_slice(&buf[..n]);
        }
        if !socket.may_send() {
            return moved;
        }
        let mut out = Vec::new();
        while tls.wants_write() {
            if tls.write_tls(&mut out).is_err() {
                break;
            }
        }
        if !out.is_empty() {
            moved = true;
            let _ = socket.send_slice(&out);
        }
        moved
    }
}

/// The host's bare TCP connection as an `embedded_io` stream that runs the
/// simulation while it waits: what the core's `PinnedTls::open` runs over.
/// A read returns `Ok(0)` when the connection ended or [`PATIENCE`] passed
/// with nothing to read.
pub struct RawStream<'a> {
    /// The host (connected with `tls: None`).
    pub host: &'a mut TlsHost,
    /// The world it lives in.
    pub world: &'a mut World,
}

impl embedded_io::ErrorType for RawStream<'_> {
    type Error = embedded_io::ErrorKind;
}

impl embedded_io::Read for RawStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        if self.host.received.is_empty() {
            self.host.run(self.world, |h| {
                !h.received.is_empty() || !h.sockets.get::<tcp::Socket>(h.handle).may_recv()
            });
        }
        let n = buf.len().min(self.host.received.len());
        buf[..n].copy_from_slice(&self.host.received[..n]);
        self.host.received.drain(..n);
        Ok(n)
    }
}

impl embedded_io::Write for RawStream<'_> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        let mut sent = 0;
        while sent < buf.len() {
            let n = self
                .host
                .socket()
                .send_slice(&buf[sent..])
                .map_err(|_| embedded_io::ErrorKind::BrokenPipe)?;
            sent += n;
            if n == 0 {
                self.host.run(self.world, |h| {
                    h.sockets.get::<tcp::Socket>(h.handle).can_send()
                });
                if !self.host.socket().can_send() {
                    return Err(embedded_io::ErrorKind::BrokenPipe);
                }
            }
        }
        self.host.run(self.world, |_| true);
        Ok(sent)
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// A channel message received by [`TlsHost`], owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// WELCOME with its session number.
    Welcome(u32),
    /// REJECT with its code's name (`tls-required`, `not-enrolled`, ...).
    Reject(String),
    /// ENROLLED with its proof.
    Enrolled([u8; 32]),
    /// Any other message, debug-formatted.
    Other(String),
    /// Bytes that do not parse as a frame.
    Malformed(String),
}
