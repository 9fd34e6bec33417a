//! On-target figures for `cargo xtask qemu --bench` (feature `bench`).
//!
//! QEMU runs with `-icount shift=0`: every instruction advances virtual
//! time by 1 ns, so the SysTick clock counts instructions (40 per tick at
//! 25 MHz) and time asleep in WFI is subtracted ([`clock::busy_ticks`]):
//! the figures are instructions executed by the Cortex-M4 model, stable
//! on a loaded host, not cycles (QEMU is not cycle-accurate).
//!
//! - `p256_*`: each P-256 operation of a handshake, timed at boot through
//!   the core's backend of this image (RustCrypto `p256` 0.13, or the
//!   `p256-cm4` assembly with the feature); the `p256-cm4` image also
//!   checks on the target that the assembly agrees with RustCrypto.
//! - `handshake`: busy instructions from the SYN to the TLS port to the
//!   session's start (BL2001): TCP, the mutual TLS 1.3 handshake
//!   (ECDHE, both certificates, both CertificateVerify), HELLO, ENROLL,
//!   ENROLLED and WELCOME.
//! - `heartbeat`: busy instructions from the wake-up that sends a PING to
//!   the sleep after its PONG was read: one encrypted round trip.
//! - `stack`: the deepest stack word written, by painting (see `main.rs`).
//!
//! Without the feature every hook is empty and nothing is linked.

#[cfg(feature = "bench")]
mod on {
    use core::cell::RefCell;

    use critical_section::Mutex;
    use defmt::{error, info};

    use crate::board::clock;
    use crate::board::sniff::Dir;

    /// The channel's TLS port (the agent's default).
    const TLS_PORT: u16 = 5443;

    #[derive(Default)]
    struct State {
        syn_at: Option<u64>,
        handshake: Option<u64>,
        session_at: Option<u64>,
        last_wake: u64,
        ping_at: Option<u64>,
        pong_seen: bool,
        heartbeat: Option<u64>,
    }

    static STATE: Mutex<RefCell<State>> = Mutex::new(RefCell::new(State {
        syn_at: None,
        handshake: None,
        session_at: None,
        last_wake: 0,
        ping_at: None,
        pong_seen: false,
        heartbeat: None,
    }));

    fn with<T>(f: impl FnOnce(&mut State) -> T) -> T {
        critical_section::with(|cs| f(&mut STATE.borrow_ref_mut(cs)))
    }

    pub fn on_audit(id: u16) {
        // Where the stack grows: the peak so far at every audit event.
        info!(
            "bench stack-so-far {=usize} bytes at BL{=u16}",
            crate::stack::peak(),
            id
        );
        if id == 2001 {
            let now = clock::busy_ticks();
            with(|s| {
                if let (Some(syn), None) = (s.syn_at, s.handshake) {
                    s.handshake = Some(now.saturating_sub(syn));
                }
                s.session_at.get_or_insert(now);
            });
        }
    }

    pub fn on_tcp(dir: Dir, syn: bool, src: u16, dst: u16, payload: usize) {
        with(|s| {
            if dir == Dir::Tx && syn && dst == TLS_PORT && s.handshake.is_none() {
                s.syn_at = Some(clock::busy_ticks());
            }
            if s.session_at.is_none() || s.heartbeat.is_some() || payload == 0 {
                return;
            }
            match dir {
                // The first record after the session is up is a PING.
                Dir::Tx if dst == TLS_PORT && s.ping_at.is_none() => {
                    s.ping_at = Some(s.last_wake);
                }
                Dir::Rx if src == TLS_PORT && s.ping_at.is_some() => s.pong_seen = true,
                _ => {}
            }
        });
    }

    pub fn on_sleep() {
        let now = clock::busy_ticks();
        with(|s| {
            if let (Some(ping), true, None) = (s.ping_at, s.pong_seen, s.heartbeat) {
                s.heartbeat = Some(now.saturating_sub(ping));
            }
        });
    }

    pub fn on_wake() {
        let now = clock::busy_ticks();
        with(|s| s.last_wake = now);
    }

    /// Prints the figures the run collected, one `bench NAME VALUE` line
    /// each (read by `cargo xtask qemu --bench`).
    pub fn report(stack_bytes: usize) {
        let (handshake, heartbeat) = with(|s| (s.handshake, s.heartbeat));
        if let Some(t) = handshake {
            info!(
                "bench handshake {=u64} instructions",
                clock::ticks_to_instructions(t)
            );
        }
        if let Some(t) = heartbeat {
            info!(
                "bench heartbeat {=u64} instructions",
                clock::ticks_to_instructions(t)
            );
        }
        info!("bench stack {=usize} bytes", stack_bytes);
    }

    /// Times one call in instructions.
    fn time<T>(f: impl FnOnce() -> T) -> (T, u64) {
        let start = clock::ticks();
        let out = f();
        let spent = clock::ticks().saturating_sub(start);
        (out, clock::ticks_to_instructions(spent))
    }

    /// Times the four P-256 operations of a handshake through the core's
    /// backend of this image ([`bmclink_core::tls::DEFAULT_BACKEND`]: the
    /// RustCrypto `p256` crate, or `p256-cm4` with the feature), the same
    /// calls the handshake makes. With `p256-cm4` it also checks, on the
    /// target, that the assembly agrees with RustCrypto (the same shared
    /// secret, each side's signature verified by the other); `false` when
    /// an operation failed or the backends disagree.
    #[inline(never)]
    pub fn p256_ops(rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng)) -> bool {
        use bmclink_core::tls::{P256Backend, DEFAULT_BACKEND, MAX_SIGNATURE_LEN};
        use p256::SecretKey;

        let backend = DEFAULT_BACKEND;
        let message = [0x5au8; 130];
        let secret: [u8; 32] = SecretKey::random(&mut *rng).to_bytes().into();
        let peer_secret: [u8; 32] = SecretKey::random(&mut *rng).to_bytes().into();
        // An ephemeral key share: the public point of a random scalar.
        let (public, keygen) = time(|| backend.public_key(&secret));
        let Some(public) = public else {
            error!("bench: {} made no public key", backend.name());
            return false;
        };
        let Some(peer) = backend.public_key(&peer_secret) else {
            return false;
        };
        let (shared, ecdh) = time(|| backend.ecdh(&secret, &peer));
        let mut der = [0u8; MAX_SIGNATURE_LEN];
        let (len, sign) = time(|| backend.sign(&secret, &public, &message, &mut der));
        let signature = der.get(..len.unwrap_or(0)).unwrap_or(&[]);
        let (ok, verify) = time(|| backend.verify(&public, &message, signature));
        let name = backend.name();
        info!("bench p256 backend {=str}", name);
        info!("bench p256 keygen {=u64} instructions", keygen);
        info!("bench p256 ecdh {=u64} instructions", ecdh);
        info!("bench p256 sign {=u64} instructions", sign);
        info!("bench p256 verify {=u64} instructions (ok {})", verify, ok);
        let mut good = ok && shared.is_some() && len.is_some();
        if name != bmclink_core::tls::RUST_CRYPTO.name() {
            good &= agrees_with_rust_crypto(
                backend,
                &secret,
                &public,
                &peer_secret,
                &peer,
                &message,
                signature,
                shared,
            );
        }
        good
    }

    /// `backend` and RustCrypto compute the same public key and shared
    /// secret, and each verifies the other's signature (and refuses a
    /// flipped one).
    #[allow(clippy::too_many_arguments)]
    fn agrees_with_rust_crypto(
        backend: &dyn bmclink_core::tls::P256Backend,
        secret: &[u8; 32],
        public: &[u8; 65],
        peer_secret: &[u8; 32],
        peer: &[u8; 65],
        message: &[u8; 130],
        signature: &[u8],
        shared: Option<[u8; 32]>,
    ) -> bool {
        use bmclink_core::tls::{P256Backend, MAX_SIGNATURE_LEN, RUST_CRYPTO};
        let rc = &RUST_CRYPTO;
        let mut der = [0u8; MAX_SIGNATURE_LEN];
        let rc_len = rc.sign(secret, public, message, &mut der).unwrap_or(0);
        let rc_signature = der.get(..rc_len).unwrap_or(&[]);
        let mut flipped = *message;
        flipped[7] ^= 1;
        let checks = [
            ("public key", rc.public_key(secret).as_ref() == Some(public)),
            (
                "peer public key",
                rc.public_key(peer_secret).as_ref() == Some(peer),
            ),
            (
                "shared secret",
                shared.is_some() && rc.ecdh(secret, peer) == shared,
            ),
            (
                "shared secret, other side",
                rc.ecdh(peer_secret, public) == backend.ecdh(peer_secret, public),
            ),
            (
                "its signature verified by RustCrypto",
                rc.verify(public, message, signature),
            ),
            (
                "RustCrypto's signature verified by it",
                backend.verify(public, message, rc_signature),
            ),
            (
                "a flipped message refused",
                !backend.verify(public, &flipped, rc_signature),
            ),
        ];
        let mut all = true;
        for (what, ok) in checks {
            if !ok {
                error!(
                    "bench: {} disagrees with RustCrypto: {=str}",
                    backend.name(),
                    what
                );
                all = false;
            }
        }
        info!("bench p256 agrees-with-rustcrypto {=bool}", all);
        all
    }
}

#[cfg(feature = "bench")]
pub use on::*;

#[cfg(not(feature = "bench"))]
mod off {
    use crate::board::sniff::Dir;

    pub fn on_audit(_id: u16) {}
    pub fn on_tcp(_dir: Dir, _syn: bool, _src: u16, _dst: u16, _payload: usize) {}
    pub fn on_sleep() {}
    pub fn on_wake() {}
    pub fn report(stack_bytes: usize) {
        defmt::info!("stack peak {=usize} bytes", stack_bytes);
    }
}

#[cfg(not(feature = "bench"))]
pub use off::*;
