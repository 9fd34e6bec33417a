#!/usr/bin/env python3
"""An independent BMC peer for bmclink, written from DESIGN.md §5 and §5a only.

It speaks channel protocol v1 (§5) inside TLS 1.3 on the TLS port (and, when
asked, bare on the plain port) and enrolls agents per §5a: HELLO first,
HELLO(enrolling) + ENROLL(account, proof), ENROLLED(BMC proof) then WELCOME,
one-time accounts, and pinned client certificates that reconnect without
ENROLL. Standard library only: `ssl` on the system OpenSSL, plus `ctypes` for
one thing the `ssl` module cannot do (see `accept_any_self_signed`).

    spec_bmc.py --state FILE add-account NAME --secret-file FILE
    spec_bmc.py --state FILE serve [--cert-dir DIR] [--tls-port 5443]
                                   [--plain-port N] [--firmware 3.30.30.30] ...
    spec_bmc.py --state FILE show

Every message received or sent is logged on stderr as one JSON object per
line, prefixed `spec_bmc `: {"conn", "port", "dir": "recv"|"send", "msg", ...
fields}. Other lines (`"note"`) say what the BMC decided and why.

The state file (JSON, written atomically, 0600) holds the one-time accounts
(secret, used, what they bound, bad proofs), the enrolled client certificates
(SHA-256 fingerprint -> account, BMC fingerprint, counts of enrollments and of
sessions welcomed without ENROLL), and the BMC's own fingerprint.

Where DESIGN.md leaves a choice, the reading taken is marked `AMBIGUITY:`.
"""

import argparse
import ctypes
import hashlib
import hmac
import json
import os
import secrets
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time

# §5 message types.
HELLO, WELCOME, REJECT, ENROLL, PING, PONG, EVENT, ACK, BYE, ENROLLED = (
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A)
NAMES = {HELLO: "HELLO", WELCOME: "WELCOME", REJECT: "REJECT", ENROLL: "ENROLL",
         PING: "PING", PONG: "PONG", EVENT: "EVENT", ACK: "ACK", BYE: "BYE",
         ENROLLED: "ENROLLED"}
# REJECT codes.
TLS_REQUIRED, NOT_ENROLLED, BAD_VERSION, BAD_CREDENTIAL = 1, 2, 3, 4
# AMBIGUITY: "Channel protocol v1" is read as proto byte 1 in HELLO and WELCOME.
PROTO = 1
MAX_LEN = 1024
# AMBIGUITY: §5a "the BMC may retire an account after a few bad proofs": 3.
MAX_BAD_PROOFS = 3
HOST_LABEL = b"bmclink enroll host"
BMC_LABEL = b"bmclink enroll bmc"

_log_lock = threading.Lock()


def log(**fields):
    fields.setdefault("t", round(time.time(), 3))
    with _log_lock:
        sys.stderr.write("spec_bmc " + json.dumps(fields, sort_keys=True) + "\n")
        sys.stderr.flush()


class ProtocolError(Exception):
    """§5: an unknown type, a length out of range or a malformed body."""


# ---------------------------------------------------------------- codecs


class Reader:
    def __init__(self, body):
        self.b, self.at = body, 0

    def take(self, n):
        if self.at + n > len(self.b):
            raise ProtocolError("body too short")
        out = self.b[self.at:self.at + n]
        self.at += n
        return out

    def u8(self):
        return self.take(1)[0]

    def u32(self):
        return struct.unpack(">I", self.take(4))[0]

    def str8(self):
        raw = self.take(self.u8())
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError("str8 is not UTF-8")

    def end(self):
        # AMBIGUITY: trailing bytes after a message's last field count as a
        # malformed body (the grammar gives each body exactly).
        if self.at != len(self.b):
            raise ProtocolError("%d trailing bytes" % (len(self.b) - self.at))


def str8(s):
    raw = s.encode("utf-8")[:255]
    return bytes([len(raw)]) + raw


def parse(mtype, body):
    """The fields of a message the BMC may receive (a->b or a<->b)."""
    r = Reader(body)
    if mtype == HELLO:
        f = {"proto": r.u8(), "agent_version": r.str8(), "hostname": r.str8(),
             "family": r.u8(), "flags": r.u8()}
        if f["family"] not in (4, 6):
            raise ProtocolError("HELLO family %d is not 4 or 6" % f["family"])
        f["tls"] = bool(f["flags"] & 1)
        f["enrolling"] = bool(f["flags"] & 2)
    elif mtype == ENROLL:
        f = {"account": r.str8(), "proof": r.take(32).hex()}
    elif mtype in (PING, PONG):
        f = {"seq": r.u32()}
    elif mtype == EVENT:
        f = {"seq": r.u32(), "severity": r.u8(), "id": r.str8(), "text": r.str8()}
    elif mtype == BYE:
        f = {"reason": r.u8()}
    elif mtype in NAMES:
        # WELCOME, REJECT, ACK, ENROLLED are b->a only.
        raise ProtocolError("%s is a BMC-to-agent message" % NAMES[mtype])
    else:
        raise ProtocolError("unknown message type 0x%02x" % mtype)
    r.end()
    return f


class Channel:
    """Frames over one connection (a TLS socket or a bare TCP socket).

    One thread per connection does all reads and writes (an OpenSSL SSL
    object must not be read and written from two threads at once).
    """

    def __init__(self, sock, conn, port):
        self.sock, self.conn, self.port = sock, conn, port
        self.buf = b""

    def recv(self, timeout):
        """(type, fields) of the next frame; None at end of stream; raises
        socket.timeout when no whole frame came within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 2:
                (n,) = struct.unpack(">H", self.buf[:2])
                if not 1 <= n <= MAX_LEN:
                    raise ProtocolError("frame length %d out of 1..%d" % (n, MAX_LEN))
                if len(self.buf) >= 2 + n:
                    frame, self.buf = self.buf[2:2 + n], self.buf[2 + n:]
                    break
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no frame within %.1f s" % timeout)
            self.sock.settimeout(left)
            chunk = self.sock.recv(4096)
            if not chunk:
                if self.buf:
                    raise ProtocolError("connection closed inside a frame")
                return None
            self.buf += chunk
        mtype, body = frame[0], frame[1:]
        fields = parse(mtype, body)
        log(conn=self.conn, port=self.port, dir="recv", msg=NAMES[mtype], **fields)
        return mtype, fields

    def send(self, mtype, body, **fields):
        frame = struct.pack(">HB", 1 + len(body), mtype) + body
        assert 1 + len(body) <= MAX_LEN
        self.sock.sendall(frame)
        log(conn=self.conn, port=self.port, dir="send", msg=NAMES[mtype], **fields)

    def note(self, text, **fields):
        log(conn=self.conn, port=self.port, note=text, **fields)

    def reject(self, code, reason):
        self.send(REJECT, bytes([code]) + str8(reason), code=code, reason=reason)


# ---------------------------------------------------------------- state


class State:
    """The JSON state file, rewritten atomically (0600) after every change."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        if os.path.exists(path):
            with open(path) as f:
                self.d = json.load(f)
        else:
            self.d = {}
        self.d.setdefault("accounts", {})
        self.d.setdefault("clients", {})

    def save(self):
        tmp = self.path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(self.d, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, self.path)


# ---------------------------------------------------------------- TLS


def ensure_cert(cert_dir):
    """The BMC's self-signed P-256 certificate (made with `openssl req`)."""
    os.makedirs(cert_dir, mode=0o700, exist_ok=True)
    crt, key = os.path.join(cert_dir, "bmc.crt"), os.path.join(cert_dir, "bmc.key")
    if not (os.path.exists(crt) and os.path.exists(key)):
        old = os.umask(0o077)
        try:
            subprocess.run(
                ["openssl", "req", "-x509", "-newkey", "ec",
                 "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", key, "-out", crt, "-days", "3650",
                 "-subj", "/CN=idrac", "-sha256"],
                check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        finally:
            os.umask(old)
        os.chmod(key, 0o600)
    with open(crt) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    return crt, key, der


_VERIFY_CB_TYPE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p)
_keep = []


def accept_any_self_signed(ctx):
    """Requests a client certificate and accepts a self-signed one.

    §5a: the agent's certificate is self-signed and unknown at enrollment;
    trust in it comes from the enrollment proof (bound to its fingerprint),
    not from a CA. The `ssl` module has no verify callback, and any
    CERT_REQUIRED context fails a self-signed certificate, so this installs
    one on the context's SSL_CTX through the system libssl (the same library
    `_ssl` is linked to). It forgives only the chain errors of a self-signed
    leaf (no issuer, untrusted); an expired or not-yet-valid certificate, a
    bad signature and a missing certificate still fail the handshake, and
    TLS itself checks the client's CertificateVerify.
    """
    libssl = ctypes.CDLL("libssl.so.3")
    libcrypto = ctypes.CDLL("libcrypto.so.3")
    # The SSL_CTX below belongs to the OpenSSL `_ssl` was built with: refuse
    # to touch it through another one.
    libcrypto.OpenSSL_version_num.restype = ctypes.c_ulong
    if libcrypto.OpenSSL_version_num() != ssl.OPENSSL_VERSION_NUMBER:
        raise SystemExit("spec_bmc: the ssl module's OpenSSL (%s) is not the system libssl.so.3"
                         % ssl.OPENSSL_VERSION)
    libcrypto.X509_STORE_CTX_get_error.argtypes = [ctypes.c_void_p]
    libcrypto.X509_STORE_CTX_get_error_depth.argtypes = [ctypes.c_void_p]
    libssl.SSL_CTX_get_verify_mode.argtypes = [ctypes.c_void_p]
    libssl.SSL_CTX_set_verify.argtypes = [ctypes.c_void_p, ctypes.c_int, _VERIFY_CB_TYPE]
    # X509_V_ERR_*: 18 depth-zero self-signed, 19 self-signed in chain,
    # 20 unable to get issuer locally, 21 unable to verify leaf signature,
    # 27 certificate not trusted.
    forgiven = {18, 19, 20, 21, 27}

    def cb(ok, store):
        if ok:
            return 1
        err = libcrypto.X509_STORE_CTX_get_error(store)
        depth = libcrypto.X509_STORE_CTX_get_error_depth(store)
        if depth == 0 and err in forgiven:
            return 1
        log(note="client certificate refused", x509_error=err, depth=depth)
        return 0

    ccb = _VERIFY_CB_TYPE(cb)
    _keep.append(ccb)
    ctx.verify_mode = ssl.CERT_REQUIRED
    # PySSLContext: PyObject_HEAD (refcount, type) then SSL_CTX *ctx.
    ptr = ctypes.c_void_p.from_address(id(ctx) + 2 * ctypes.sizeof(ctypes.c_void_p)).value
    # SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, as CERT_REQUIRED set it:
    # a check that the pointer really is this context's SSL_CTX.
    if not ptr or libssl.SSL_CTX_get_verify_mode(ptr) != 3:
        raise SystemExit("spec_bmc: cannot reach the SSL_CTX behind ssl.SSLContext")
    libssl.SSL_CTX_set_verify(ptr, 3, ccb)


def tls_context(crt, key, tickets):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # T1/T4: TLS 1.3 only.
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(crt, key)
    ctx.num_tickets = tickets
    accept_any_self_signed(ctx)
    return ctx


# ---------------------------------------------------------------- the BMC


class Bmc:
    def __init__(self, args, state, bmc_der):
        self.args = args
        self.state = state
        self.bmc_der = bmc_der
        self.bmc_fp = hashlib.sha256(bmc_der).digest()
        self.fw = bytes(int(x) for x in args.firmware.split("."))
        if len(self.fw) != 4:
            raise SystemExit("spec_bmc: --firmware needs four numbers")
        self.caps = 1 | (2 if args.tls_required else 0) | (4 if args.ipv6_usbnic else 0)
        self.conns = 0
        self.conn_lock = threading.Lock()
        self.live = set()
        self.stopping = threading.Event()
        with state.lock:
            state.d["bmc_fp"] = self.bmc_fp.hex()
            state.save()

    def next_conn(self):
        with self.conn_lock:
            self.conns += 1
            return self.conns

    def welcome(self, ch):
        session = secrets.randbits(32)
        body = bytes([PROTO]) + self.fw + bytes([self.caps]) + struct.pack(">I", session)
        ch.send(WELCOME, body, proto=PROTO, fw=".".join(map(str, self.fw)),
                caps=self.caps, session=session)

    # §5a enrollment. Returns True when the session may go on to WELCOME.
    def enroll(self, ch, client_fp, account, proof):
        host_msg = HOST_LABEL + self.bmc_fp + client_fp
        bmc_msg = BMC_LABEL + self.bmc_fp + client_fp
        with self.state.lock:
            acct = self.state.d["accounts"].get(account)
            if acct is None:
                ch.note("unknown account", account=account)
                ch.reject(BAD_CREDENTIAL, "unknown account")
                return False
            # AMBIGUITY: the HMAC key is the secret's UTF-8 bytes as the
            # administrator holds it (no NUL padding, no newline).
            key = acct["secret"].encode("utf-8")
            good = hmac.compare_digest(hmac.new(key, host_msg, hashlib.sha256).digest(), proof)
            bound = acct.get("bound")
            if acct["used"]:
                same = bound is not None and bound["client_fp"] == client_fp.hex() \
                    and bound["bmc_fp"] == self.bmc_fp.hex()
                if good and same:
                    # §5a: ENROLL is idempotent for the certificate it bound.
                    ch.note("ENROLL again for the certificate this account bound",
                            account=account)
                    self.state.d["clients"][client_fp.hex()]["enrollments"] += 1
                    self.state.save()
                else:
                    ch.note("account already used", account=account, proof_ok=good)
                    acct["reuse_attempts"] = acct.get("reuse_attempts", 0) + 1
                    self.state.save()
                    ch.reject(BAD_CREDENTIAL, "account already used")
                    return False
            elif not good:
                acct["bad_proofs"] = acct.get("bad_proofs", 0) + 1
                if acct["bad_proofs"] >= MAX_BAD_PROOFS:
                    acct["used"] = True
                    acct["retired_for"] = "bad proofs"
                ch.note("bad proof", account=account, bad_proofs=acct["bad_proofs"])
                self.state.save()
                ch.reject(BAD_CREDENTIAL, "bad proof")
                return False
            else:
                acct["used"] = True
                acct["bound"] = {"client_fp": client_fp.hex(), "bmc_fp": self.bmc_fp.hex(),
                                 "at": int(time.time())}
                self.state.d["clients"][client_fp.hex()] = {
                    "account": account, "bmc_fp": self.bmc_fp.hex(),
                    "enrollments": 1, "pinned_sessions": 0, "sessions": 0}
                self.state.save()
                ch.note("enrolled: client certificate bound, account retired",
                        account=account, client_fp=client_fp.hex())
            answer = hmac.new(key, bmc_msg, hashlib.sha256).digest()
        if self.args.drop_before_enrolled:
            # The case §5a's idempotent ENROLL is for: bound here, lost
            # before the agent could check ENROLLED.
            self.args.drop_before_enrolled -= 1
            ch.note("fault: dropping the connection after binding, before ENROLLED")
            return False
        ch.send(ENROLLED, answer, proof=answer.hex())
        return True

    def serve_conn(self, raw, peer, port):
        conn = self.next_conn()
        log(conn=conn, port=port, note="accepted", peer="%s:%s" % peer[:2])
        ch = None
        sock = raw
        try:
            raw.settimeout(self.args.handshake_timeout)
            client_fp = None
            if port == "tls":
                try:
                    sock = self.ctx.wrap_socket(raw, server_side=True)
                except (ssl.SSLError, OSError) as e:
                    log(conn=conn, port=port, note="TLS handshake failed", error=str(e))
                    return
                der = sock.getpeercert(binary_form=True)
                client_fp = hashlib.sha256(der).digest()
                log(conn=conn, port=port, note="TLS handshake done", version=sock.version(),
                    cipher=sock.cipher()[0], client_fp=client_fp.hex(),
                    bmc_fp=self.bmc_fp.hex())
            ch = Channel(sock, conn, port)
            with self.conn_lock:
                self.live.add(ch)
            self.session(ch, client_fp)
        except ProtocolError as e:
            log(conn=conn, port=port, note="protocol error; closing", error=str(e))
        except socket.timeout:
            log(conn=conn, port=port, note="timeout; closing")
        except (OSError, ssl.SSLError) as e:
            log(conn=conn, port=port, note="connection error", error=str(e))
        finally:
            if ch is not None:
                with self.conn_lock:
                    self.live.discard(ch)
            try:
                sock.close()
            except OSError:
                pass
            log(conn=conn, port=port, note="closed")

    def session(self, ch, client_fp):
        # §5: the agent's first frame on every connection is HELLO.
        got = ch.recv(self.args.handshake_timeout)
        if got is None:
            ch.note("closed before HELLO")
            return
        mtype, hello = got
        if mtype != HELLO:
            raise ProtocolError("first frame is %s, not HELLO" % NAMES[mtype])
        if hello["proto"] != PROTO:
            ch.reject(BAD_VERSION, "protocol version %d; this BMC speaks %d"
                      % (hello["proto"], PROTO))
            return
        # AMBIGUITY: HELLO's tls flag that disagrees with the port is only
        # noted; §5 gives no REJECT for it.
        if hello["tls"] != (ch.port == "tls"):
            ch.note("HELLO tls flag disagrees with the port", tls=hello["tls"])
        if ch.port == "plain":
            # AMBIGUITY: on the plain port the enrolling flag is checked
            # before tls-required (§5 names no order).
            if hello["enrolling"]:
                ch.reject(BAD_CREDENTIAL, "ENROLL is TLS-only")
                return
            if self.args.tls_required:
                # T6: a non-TLS agent on TLS-capable firmware; logged here.
                ch.note("T6: plain HELLO on TLS-required firmware")
                ch.reject(TLS_REQUIRED, "this BMC requires TLS on port %d" % self.args.tls_port)
                return
            self.welcome(ch)
        elif hello["enrolling"]:
            # A HELLO with the flag is answered only after reading the ENROLL.
            # §5: ENROLL follows HELLO at once, without waiting for an answer.
            got = ch.recv(self.args.handshake_timeout)
            if got is None:
                ch.note("closed before ENROLL")
                return
            mtype, enroll = got
            if mtype != ENROLL:
                raise ProtocolError("HELLO(enrolling) followed by %s, not ENROLL"
                                    % NAMES[mtype])
            if not self.enroll(ch, client_fp, enroll["account"], bytes.fromhex(enroll["proof"])):
                return
            if self.args.drop_after_enrolled:
                self.args.drop_after_enrolled -= 1
                ch.note("fault: dropping the connection after ENROLLED")
                return
            self.count(client_fp, pinned=False)
            self.welcome(ch)
        else:
            with self.state.lock:
                known = client_fp.hex() in self.state.d["clients"]
            if not known:
                ch.reject(NOT_ENROLLED, "client certificate not enrolled")
                return
            ch.note("pinned client certificate: WELCOME without ENROLL",
                    client_fp=client_fp.hex())
            self.count(client_fp, pinned=True)
            self.welcome(ch)
        self.established(ch)

    def count(self, client_fp, pinned):
        if client_fp is None:
            return
        with self.state.lock:
            c = self.state.d["clients"][client_fp.hex()]
            c["sessions"] += 1
            if pinned:
                c["pinned_sessions"] += 1
            self.state.save()

    def established(self, ch):
        """Heartbeats, events, BYE after WELCOME."""
        # AMBIGUITY: "peer dead after 3 missed" heartbeats is read from the
        # BMC's side as 3 heartbeat intervals without any frame from the agent.
        dead_after = self.args.heartbeat_secs * self.args.heartbeat_misses
        last_heard = time.monotonic()
        ping = self.args.ping_secs
        next_ping = time.monotonic() + ping if ping > 0 else None
        seq = 0
        acked = set()
        while True:
            now = time.monotonic()
            if self.stopping.is_set():
                # AMBIGUITY: §5 defines no BYE reason codes; 0 is sent.
                ch.send(BYE, b"\x00", reason=0)
                return
            if now - last_heard >= dead_after:
                ch.note("agent dead: no frame for %d s" % dead_after)
                return
            if next_ping is not None and now >= next_ping:
                # PING is a<->b: the BMC probes too, and expects PONG.
                seq += 1
                ch.send(PING, struct.pack(">I", seq), seq=seq)
                next_ping = now + ping
            wait = 0.5
            if next_ping is not None:
                wait = min(wait, max(0.01, next_ping - now))
            try:
                got = ch.recv(wait)
            except socket.timeout:
                continue
            if got is None:
                ch.note("closed by the agent")
                return
            last_heard = time.monotonic()
            mtype, f = got
            if mtype == PING:
                ch.send(PONG, struct.pack(">I", f["seq"]), seq=f["seq"])
            elif mtype == PONG:
                pass
            elif mtype == EVENT:
                # At-least-once delivery: a retransmitted EVENT is ACKed again.
                if f["seq"] in acked:
                    ch.note("duplicate EVENT", seq=f["seq"])
                acked.add(f["seq"])
                ch.send(ACK, struct.pack(">I", f["seq"]), seq=f["seq"])
            elif mtype == BYE:
                ch.note("BYE from the agent", reason=f["reason"])
                return
            else:
                # HELLO again, or ENROLL after WELCOME.
                raise ProtocolError("%s after WELCOME" % NAMES[mtype])

    def listen(self, port, kind):
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.bind((self.args.bind, port))
        s.listen(8)
        log(note="listening", port=kind, tcp_port=port)

        def loop():
            while True:
                raw, peer = s.accept()
                threading.Thread(target=self.serve_conn, args=(raw, peer, kind),
                                 daemon=True).start()
        threading.Thread(target=loop, daemon=True).start()

    def bye_all(self):
        """Every established session says BYE (from its own thread)."""
        self.stopping.set()
        give_up = time.monotonic() + 3
        while time.monotonic() < give_up:
            with self.conn_lock:
                if not self.live:
                    return
            time.sleep(0.05)


def cmd_serve(args):
    state = State(args.state)
    crt, key, der = ensure_cert(args.cert_dir or os.path.join(
        os.path.dirname(os.path.abspath(args.state)), "spec_bmc_cert"))
    bmc = Bmc(args, state, der)
    bmc.ctx = tls_context(crt, key, args.tickets)
    log(note="BMC certificate", bmc_fp=bmc.bmc_fp.hex(), cert=crt)
    bmc.listen(args.tls_port, "tls")
    if args.plain_port:
        bmc.listen(args.plain_port, "plain")
    done = threading.Event()

    def on_term(signum, frame):
        done.set()
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    while not done.wait(0.5):
        pass
    bmc.bye_all()
    log(note="stopped")


def cmd_add_account(args):
    state = State(args.state)
    if args.secret:
        secret = args.secret
    else:
        # §5a: the BMC generates the secret, at least 96 bits: 128 here.
        secret = secrets.token_hex(16)
    with state.lock:
        state.d["accounts"][args.name] = {"secret": secret, "used": False, "bound": None,
                                          "bad_proofs": 0}
        state.save()
    if args.secret_file:
        fd = os.open(args.secret_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW,
                     0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secret + "\n")
    else:
        print(secret)


def cmd_show(args):
    json.dump(State(args.state).d, sys.stdout, indent=1, sort_keys=True)
    print()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--state", required=True, help="the BMC's JSON state file")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="run the BMC")
    s.add_argument("--cert-dir", help="bmc.crt / bmc.key (made when missing)")
    s.add_argument("--bind", default="::")
    s.add_argument("--tls-port", type=int, default=5443)
    s.add_argument("--plain-port", type=int, default=0, help="0: no plain port")
    s.add_argument("--firmware", default="3.30.30.30")
    s.add_argument("--no-tls-required", dest="tls_required", action="store_false")
    s.add_argument("--no-ipv6-usbnic", dest="ipv6_usbnic", action="store_false")
    s.add_argument("--heartbeat-secs", type=int, default=10)
    s.add_argument("--heartbeat-misses", type=int, default=3)
    s.add_argument("--ping-secs", type=float, default=0,
                   help="the BMC's own PINGs (0: only answer the agent's)")
    s.add_argument("--handshake-timeout", type=float, default=10)
    s.add_argument("--tickets", type=int, default=2,
                   help="TLS 1.3 NewSessionTickets sent after the handshake")
    s.add_argument("--drop-before-enrolled", type=int, default=0,
                   help="fault: close that many enrollments after binding, before ENROLLED")
    s.add_argument("--drop-after-enrolled", type=int, default=0,
                   help="fault: close that many enrollments right after ENROLLED")
    a = sub.add_parser("add-account", help="a one-time enrollment account")
    a.add_argument("name")
    a.add_argument("--secret-file", help="write the secret here (0600) instead of stdout")
    a.add_argument("--secret", help="use this secret instead of a random one")
    sub.add_parser("show", help="print the state")
    args = p.parse_args()
    {"serve": cmd_serve, "add-account": cmd_add_account, "show": cmd_show}[args.cmd](args)


if __name__ == "__main__":
    main()
