#!/usr/bin/env python3
"""A BMC for the interop matrix (tests/tests/interop.rs): a real TLS server
library in its default configuration, asking for a client certificate,
answering the bmclink channel protocol (DESIGN section 5) over it.

    bmc_server.py MODE --port P --cert CERT.pem --key KEY.pem [--tls12] [--keylog FILE]

MODE is one of
  pyopenssl   the OpenSSL that pyOpenSSL's `cryptography` wheel bundles
  gnutls      the system libgnutls (what gnutls-serv uses), through ctypes,
              with its default priorities
  s_server    `openssl s_server -quiet` (the system OpenSSL); this script
              relays between its stdin/stdout and the protocol responder

The client certificate is requested and required but not checked against a
CA: the agent's is self-signed and pinned by fingerprint on the BMC side,
which is not what this matrix tests. With --tls12 the server speaks TLS 1.2
only. It prints `READY <library version>` once it accepts, one line per
protocol message it handles (`HELLO proto=1 tls=1 host=...`, `PING 7`,
`BYE`), and serves one connection.
"""

import argparse
import ctypes
import socket
import struct
import subprocess
import sys
import time

HELLO, WELCOME, PING, PONG, BYE = 0x01, 0x02, 0x05, 0x06, 0x09
FIRMWARE = bytes([7, 10, 30, 0])


def say(line):
    print(line, flush=True)


class Responder:
    """The BMC side of the channel protocol: frames `len:u16 type:u8 body`."""

    def __init__(self):
        self.buf = b""
        self.done = False

    def feed(self, data):
        """Takes received plaintext, returns the reply bytes."""
        self.buf += data
        out = b""
        while len(self.buf) >= 2:
            (n,) = struct.unpack(">H", self.buf[:2])
            if len(self.buf) < 2 + n:
                break
            frame, self.buf = self.buf[2 : 2 + n], self.buf[2 + n :]
            kind, body = frame[0], frame[1:]
            if kind == HELLO:
                proto = body[0]
                vlen = body[1]
                hlen = body[2 + vlen]
                host = body[3 + vlen : 3 + vlen + hlen].decode(errors="replace")
                flags = body[3 + vlen + hlen + 1]
                say(f"HELLO proto={proto} tls={flags & 1} host={host}")
                welcome = struct.pack(">BB4sBI", WELCOME, 1, FIRMWARE, 0, 1)
                out += struct.pack(">H", len(welcome)) + welcome
            elif kind == PING:
                (seq,) = struct.unpack(">I", body[:4])
                say(f"PING {seq}")
                pong = struct.pack(">BI", PONG, seq)
                out += struct.pack(">H", len(pong)) + pong
            elif kind == BYE:
                say("BYE")
                self.done = True
            else:
                say(f"FRAME {kind}")
        return out


def listen(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(1)
    return s


def serve_pyopenssl(args):
    from OpenSSL import SSL

    ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
    ctx.use_certificate_file(args.cert)
    ctx.use_privatekey_file(args.key)
    ctx.set_verify(
        SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, lambda *_: True
    )
    if args.tls12:
        ctx.set_max_proto_version(SSL.TLS1_2_VERSION)
    if args.keylog:
        log = open(args.keylog, "ab", buffering=0)
        ctx.set_keylog_callback(lambda _conn, line: log.write(line + b"\n"))
    lsock = listen(args.port)
    say("READY " + SSL.OpenSSL_version(SSL.OPENSSL_VERSION).decode())
    sock, _ = lsock.accept()
    conn = SSL.Connection(ctx, sock)
    conn.set_accept_state()
    try:
        conn.do_handshake()
        say("HANDSHAKE " + conn.get_protocol_version_name())
        r = Responder()
        while not r.done:
            data = conn.recv(4096)
            if not data:
                break
            reply = r.feed(data)
            if reply:
                conn.sendall(reply)
    except SSL.ZeroReturnError:
        pass
    except SSL.Error as e:
        say(f"ERROR {e}")


def serve_gnutls(args):
    g = ctypes.CDLL("libgnutls.so.30")
    g.gnutls_check_version.restype = ctypes.c_char_p
    g.gnutls_record_recv.restype = ctypes.c_ssize_t
    g.gnutls_record_send.restype = ctypes.c_ssize_t
    g.gnutls_strerror.restype = ctypes.c_char_p
    g.gnutls_protocol_get_name.restype = ctypes.c_char_p

    def check(ret, what):
        if ret < 0:
            raise RuntimeError(f"{what}: {g.gnutls_strerror(ret).decode()}")
        return ret

    check(g.gnutls_global_init(), "global_init")
    cred = ctypes.c_void_p()
    check(g.gnutls_certificate_allocate_credentials(ctypes.byref(cred)), "credentials")
    check(
        g.gnutls_certificate_set_x509_key_file(
            cred, args.cert.encode(), args.key.encode(), 1  # GNUTLS_X509_FMT_PEM
        ),
        "key file",
    )
    lsock = listen(args.port)
    say("READY GnuTLS " + g.gnutls_check_version(None).decode())
    sock, _ = lsock.accept()
    session = ctypes.c_void_p()
    check(g.gnutls_init(ctypes.byref(session), 1), "init")  # GNUTLS_SERVER
    if args.tls12:
        err = ctypes.c_char_p()
        check(
            g.gnutls_priority_set_direct(
                session, b"NORMAL:-VERS-ALL:+VERS-TLS1.2", ctypes.byref(err)
            ),
            "priority",
        )
    else:
        check(g.gnutls_set_default_priority(session), "default priority")
    check(g.gnutls_credentials_set(session, 1, cred), "credentials_set")  # CRD_CERTIFICATE
    g.gnutls_certificate_server_set_request(session, 2)  # GNUTLS_CERT_REQUIRE
    g.gnutls_transport_set_int2(session, sock.fileno(), sock.fileno())
    while True:
        ret = g.gnutls_handshake(session)
        if ret >= 0:
            break
        if g.gnutls_error_is_fatal(ret):
            # As gnutls-serv does: tell the client why.
            g.gnutls_alert_send_appropriate(session, ret)
            say(f"ERROR {g.gnutls_strerror(ret).decode()}")
            return
    version = g.gnutls_protocol_get_name(g.gnutls_protocol_get_version(session))
    say("HANDSHAKE " + version.decode())
    r = Responder()
    buf = ctypes.create_string_buffer(4096)
    while not r.done:
        n = g.gnutls_record_recv(session, buf, 4096)
        if n == -28 or n == -52:  # GNUTLS_E_AGAIN, GNUTLS_E_INTERRUPTED
            continue
        if n <= 0:
            if n < 0:
                say(f"ERROR {g.gnutls_strerror(n).decode()}")
            break
        reply = r.feed(buf.raw[:n])
        if reply:
            check(g.gnutls_record_send(session, reply, len(reply)), "send")
    g.gnutls_bye(session, 1)  # GNUTLS_SHUT_WR


def serve_s_server(args):
    cmd = ["openssl", "s_server", "-quiet", "-accept", f"127.0.0.1:{args.port}"]
    cmd += ["-cert", args.cert, "-key", args.key, "-Verify", "1", "-naccept", "2"]
    if args.tls12:
        cmd += ["-tls1_2"]
    if args.keylog:
        cmd += ["-keylogfile", args.keylog]
    version = subprocess.run(
        ["openssl", "version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    proc = subprocess.Popen(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    # -quiet prints nothing, not even ACCEPT: the first of the two accepted
    # connections is this probe, which s_server drops.
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", args.port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    say("READY " + version)
    r = Responder()
    while not r.done:
        data = proc.stdout.read1(4096)
        if not data:
            break
        reply = r.feed(data)
        if reply:
            proc.stdin.write(reply)
            proc.stdin.flush()
    proc.kill()
    proc.wait()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["pyopenssl", "gnutls", "s_server"])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--tls12", action="store_true")
    p.add_argument("--keylog")
    args = p.parse_args()
    {"pyopenssl": serve_pyopenssl, "gnutls": serve_gnutls, "s_server": serve_s_server}[
        args.mode
    ](args)


if __name__ == "__main__":
    sys.exit(main())
