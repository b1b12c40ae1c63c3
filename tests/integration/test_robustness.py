"""Robustness of the data path against peers that misbehave on the wire
(issue 10): real `zonegate` processes driven by raw sockets whose TLS layer
the test controls byte by byte (ssl.MemoryBIO), so a test can stop in the
middle of a TLS record, close without close_notify, and so on."""
import json
import os
import re
import signal
import subprocess
import socket
import ssl
import threading
import time

import util
from conftest import make_config

PAYLOAD = b"ping through zonegate\n"

# A TLS application-data record header announcing 16 KiB + 256 bytes (the
# largest record TLS allows, RFC 8446 5.2), and 200 bytes of its body.
PARTIAL_RECORD = b"\x17\x03\x03" + (16 * 1024 + 256).to_bytes(2, "big") + os.urandom(200)


def _cpu_seconds(pid):
    """User + system CPU time of process @pid, all threads."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_used(pid, seconds=2.0):
    """CPU seconds process @pid consumed during the next @seconds."""
    c0 = _cpu_seconds(pid)
    time.sleep(seconds)
    return _cpu_seconds(pid) - c0


class RawTls:
    """A TLS endpoint over a plain socket, run through memory BIOs: the test
    sends TLS records with `send`, and raw bytes past the TLS layer with
    `raw`, so it can leave a record half-sent or skip close_notify."""

    def __init__(self, sock, ctx, server_side=False, server_hostname=None):
        self.sock = sock
        self.inb, self.outb = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inb, self.outb, server_side=server_side,
                                server_hostname=server_hostname)
        self.sock.settimeout(10)
        self._pump(self.obj.do_handshake)

    def _flush(self):
        data = self.outb.read()
        if data:
            self.sock.sendall(data)

    def _feed(self):
        data = self.sock.recv(65536)
        if not data:
            self.inb.write_eof()
        else:
            self.inb.write(data)

    def _pump(self, op):
        while True:
            try:
                r = op()
                self._flush()
                return r
            except ssl.SSLWantReadError:
                self._flush()
                self._feed()

    def send(self, data):
        self._pump(lambda: self.obj.write(data))

    def recv_exactly(self, n):
        buf = bytearray()
        while len(buf) < n:
            buf += self._pump(lambda: self.obj.read(n - len(buf)))
        return bytes(buf)

    def raw(self, data):
        self.sock.sendall(data)

    def close_notify(self):
        """Send our close_notify (without waiting for the peer's)."""
        try:
            self.obj.unwrap()
        except ssl.SSLWantReadError:
            pass
        self._flush()

    def close(self):
        self.sock.close()


def _unwrap_gw(pki, gateway, p, backend, nofile=None, **gw):
    opts = {"workers": 1, "handshake_timeout": "2s", "idle_timeout": "4s", **gw}
    return gateway(make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{p}",
                                            "connect": backend}},
                               name="site-b", gateway=opts), name="site-b", nofile=nofile)


def _client_ctx(pki):
    return util.tls_context(pki, pki.chain("client"), pki.key("client"))


def _served(ctx, p):
    """A new mTLS client gets its echo through the gateway (5 s bound)."""
    try:
        with util.tls_connect(ctx, "127.0.0.1", p, timeout=5) as s:
            return util.echo_roundtrip(s, PAYLOAD, timeout=5) == PAYLOAD
    except (OSError, ssl.SSLError, AssertionError):
        return False


def _assert_worker_alive(gw, pki, p, idle_route):
    """After a peer left half a TLS record on the only worker: the gateway
    stays idle, serves new clients, enforces the handshake and idle
    deadlines and stops on one SIGTERM."""
    used = _cpu_used(gw.proc.pid, 2.0)
    # An idle gateway uses a few milliseconds; a spinning worker all of 2 s.
    assert used < 0.4, f"the gateway used {used:.2f} s of CPU in 2 s after a partial record"
    assert _served(_client_ctx(pki), p), "a new client was not served by the worker"
    # The handshake deadline still fires: a client that connects and says nothing.
    mark = gw.mark()
    silent = util.connect("127.0.0.1", p)
    gw.wait_for_reason("handshake_timeout", timeout=8, since=mark)
    silent.close()
    # The idle deadline fires for the peer that stopped in mid-record.
    gw.wait_for_reason("idle_timeout", timeout=10, route=idle_route)
    t0 = time.monotonic()
    gw.proc.send_signal(signal.SIGTERM)
    rc = gw.wait(10)
    assert rc == 0, f"gateway exited {rc} on SIGTERM"
    assert time.monotonic() - t0 < 10


def test_partial_record_from_client_does_not_stall_worker(pki, gateway, port, echo_server):
    """unwrap: an authenticated client sends a record header announcing
    16 KiB and only 200 bytes of the record, then stays silent. The worker
    must wait for the socket, not spin on read()=EAGAIN because OpenSSL
    holds an incomplete record (issue 10 item 1)."""
    echo = echo_server()
    p = port()
    gw = _unwrap_gw(pki, gateway, p, echo.addr)
    t = RawTls(util.connect("127.0.0.1", p), _client_ctx(pki), server_hostname="localhost")
    try:
        t.send(PAYLOAD)
        assert t.recv_exactly(len(PAYLOAD)) == PAYLOAD  # relaying
        t.raw(PARTIAL_RECORD)
        time.sleep(0.3)
        _assert_worker_alive(gw, pki, p, "in")
    finally:
        t.close()


class _PartialRecordServer:
    """A TLS server (site-b's certificate) that answers the first TLS record
    it gets with PAYLOAD, then sends half a record and goes silent."""

    def __init__(self, pki):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(pki.chain("site-b"), pki.key("site-b"))
        self.ctx.load_verify_locations(pki.roots)
        self.ctx.verify_mode = ssl.CERT_REQUIRED
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.conns = []
        self.errors = []
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            try:
                t = RawTls(c, self.ctx, server_side=True)
                self.conns.append(t)
                got = t.recv_exactly(len(PAYLOAD))
                t.send(got)
                t.raw(PARTIAL_RECORD)
            except (OSError, ssl.SSLError) as e:
                self.errors.append(e)

    def close(self):
        self.sock.close()
        for t in self.conns:
            t.close()


def test_partial_record_from_upstream_does_not_stall_worker(pki, gateway, port, echo_server):
    """wrap: the upstream sends half a TLS record after a reply; the worker
    must stay responsive (issue 10 item 1, the other direction)."""
    up = _PartialRecordServer(pki)
    echo = echo_server()
    try:
        p, q = port(), port()
        routes = {"out": {"mode": "wrap", "listen": f"127.0.0.1:{p}", "connect": up.addr,
                          "server_name": "site-b.zonegate.test", "allow_from": "127.0.0.0/8"},
                  "in": {"mode": "unwrap", "listen": f"127.0.0.1:{q}", "connect": echo.addr}}
        gw = gateway(make_config(pki, routes, name="site-a", leaf="site-a",
                                 gateway={"workers": 1, "handshake_timeout": "2s",
                                          "idle_timeout": "4s"}), name="site-a")
        s = util.connect("127.0.0.1", p)
        try:
            assert util.echo_roundtrip(s, PAYLOAD) == PAYLOAD
            time.sleep(0.3)  # the half record is out
            assert not up.errors, up.errors
            _assert_worker_alive(gw, pki, q, "out")
        finally:
            s.close()
    finally:
        up.close()


# ------------------------------------------------------------ clean closes

CT_DUMP = """\
(0008,0016) UI =CTImageStorage
(0008,0018) UI [1.2.826.0.1.3680043.2.1125.1.1]
(0008,0060) CS [CT]
(0010,0010) PN [Test^Patient]
(0010,0020) LO [ZG0001]
(0020,000d) UI [1.2.826.0.1.3680043.2.1125.1]
(0020,000e) UI [1.2.826.0.1.3680043.2.1125.1.2]
(0028,0002) US 1
(0028,0004) CS [MONOCHROME2]
(0028,0010) US 2
(0028,0011) US 2
(0028,0100) US 16
(0028,0101) US 16
(0028,0102) US 15
(0028,0103) US 0
(7fe0,0010) OW 0000\\0001\\0002\\0003
"""


def _dicom_file(tmp_path):
    """A small CT image made with DCMTK's dump2dcm."""
    dump, dcm = tmp_path / "ct.dump", tmp_path / "ct.dcm"
    dump.write_text(CT_DUMP)
    cp = subprocess.run(["dump2dcm", "--write-xfer-little", str(dump), str(dcm)],
                        capture_output=True, text=True, timeout=30)
    assert cp.returncode == 0, cp.stderr
    return str(dcm)


class _Storescp:
    """DCMTK `storescp +tls` with site-b's certificate, requiring a client
    certificate from the test PKI."""

    def __init__(self, pki, tmp_path, port):
        self.port = port
        self.dir = tmp_path / "storescp"
        self.dir.mkdir()
        self.log = open(tmp_path / "storescp.log", "wb")
        self.proc = subprocess.Popen(
            ["storescp", "-aet", "STORESCP", "-od", str(self.dir),
             "+tls", pki.key("site-b"), pki.chain("site-b"), "+cf", pki.roots,
             "--require-peer-cert", str(port)],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        util.wait_port("127.0.0.1", port)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.log.close()


def test_dcmtk_storescp_tls_release_is_a_clean_close(pki, gateway, port, tmp_path):
    """wrap in front of DCMTK's `storescp +tls`: storescp ends each released
    association with close_notify and closes without reading ours, so the
    gateway's close_notify is answered by a RST. Every association was
    clean and must be logged as a clean close, not upstream_io_error
    (issue 10 item 6)."""
    dcm = _dicom_file(tmp_path)
    scp = _Storescp(pki, tmp_path, port())
    try:
        p = port()
        gw = gateway(make_config(pki, {"pacs": {"mode": "wrap", "listen": f"127.0.0.1:{p}",
                                                "connect": f"127.0.0.1:{scp.port}",
                                                "server_name": "site-b.zonegate.test",
                                                "allow_from": "127.0.0.0/8"}},
                                 name="site-a", leaf="site-a"), name="site-a")
        n = 20
        for i in range(n):
            cp = subprocess.run(["storescu", "-aec", "STORESCP", "127.0.0.1", str(p), dcm],
                                capture_output=True, text=True, timeout=60)
            assert cp.returncode == 0, f"association {i}: {cp.stdout}{cp.stderr}"
        closes = gw.wait_for_event("conn_close", count=n, timeout=20, route="pacs")
        reasons = [c["reason"] for c in closes]
        bad = [r for r in reasons if r not in ("client_closed", "upstream_closed")]
        assert not bad, f"clean DICOM releases logged as failures: {reasons}"
    finally:
        scp.stop()


def test_tls13_refusal_of_our_certificate_is_a_peer_alert(pki, gateway, port, echo_server):
    """wrap -> unwrap over TLS 1.3, and B does not trust A's CA: B judges
    A's certificate after A finished its handshake. A must log B's alert
    (tls_peer_alert), not upstream_io_error, which operators read as a
    broken network (docs/operations.md, issue 10 item 6)."""
    echo = echo_server()
    a_port, b_port = port(), port()
    gateway(make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{b_port}",
                                     "connect": echo.addr}},
                        name="site-b", leaf="site-b",
                        tls={"trust_anchors": pki.path("other-root.pem")}), name="site-b")
    a = gateway(make_config(pki, {"out": {"mode": "wrap", "listen": f"127.0.0.1:{a_port}",
                                          "connect": f"127.0.0.1:{b_port}",
                                          "server_name": "site-b.zonegate.test",
                                          "allow_from": "127.0.0.0/8"}},
                            name="site-a", leaf="site-a"), name="site-a")
    for _ in range(5):
        s = util.connect("127.0.0.1", a_port)
        try:
            s.sendall(PAYLOAD)
            assert util.closed_by_peer(s, 10)
        except ConnectionResetError:
            pass
        finally:
            s.close()
    closes = a.wait_for_event("conn_close", count=5, route="out")
    assert [c["reason"] for c in closes] == ["tls_peer_alert"] * 5, closes


# ------------------------------------------------------------ handshake memory

# The largest Certificate message a peer may send: (verify_depth + 2)
# certificates of at most 8 KiB DER each (src/tls.h, docs/policy.md); with
# the default verify_depth 4, 48 KiB.
CERT_LIST_MAX = (4 + 2) * 8192
SLOW = 200


def _tls_record(content_type, payload, version=b"\x03\x03"):
    return bytes([content_type]) + version + len(payload).to_bytes(2, "big") + payload


def _handshake_header(msg_type, length):
    return bytes([msg_type]) + length.to_bytes(3, "big")


def _records(data):
    """(content type, payload) of each whole TLS record in @data, and the rest."""
    out = []
    while len(data) >= 5 and len(data) >= 5 + int.from_bytes(data[3:5], "big"):
        n = int.from_bytes(data[3:5], "big")
        out.append((data[0], data[5:5 + n]))
        data = data[5 + n:]
    return out, data


def _tls12_client_ctx(pki):
    ctx = _client_ctx(pki)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def _slow_certificate_client(pki, p):
    """A TLS 1.2 client that runs the handshake up to its Certificate
    message, then sends only the header of one announcing 100,000 bytes and
    1,000 bytes of it: a slow peer making the gateway hold the buffer."""
    sock = util.connect("127.0.0.1", p)
    inb, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = _tls12_client_ctx(pki).wrap_bio(inb, outb, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    sock.sendall(outb.read())
    while not outb.pending:  # our second flight is ready once ServerHelloDone arrived
        data = sock.recv(65536)
        assert data, "the gateway closed before ServerHelloDone"
        inb.write(data)
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
    outb.read()  # the real flight is not sent
    sock.sendall(_tls_record(22, _handshake_header(11, 100000) + bytes(1000)))
    return sock


def _slow_hello_client(p):
    """A client whose first record announces a ClientHello of 131,000 bytes
    (OpenSSL accepts up to 131,396) and carries 1,000 of them."""
    sock = util.connect("127.0.0.1", p)
    sock.sendall(_tls_record(22, _handshake_header(1, 131000) + bytes(1000), b"\x03\x01"))
    return sock


def _closed(sock, timeout):
    """True if the peer closes @sock (EOF or reset, after an alert or not)
    within @timeout seconds."""
    deadline = time.monotonic() + timeout
    try:
        while True:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            if not sock.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except (socket.timeout, TimeoutError):
        return False


def _memory_per_slow_handshake(gw, open_one):
    """Open SLOW slow handshakes with @open_one; returns (RSS growth per
    connection in KiB, how many the gateway closed within 10 s)."""
    time.sleep(0.5)
    rss0 = util.rss_kib(gw.proc.pid)
    socks = [open_one() for _ in range(SLOW)]
    try:
        time.sleep(1.0)
        per = (util.rss_kib(gw.proc.pid) - rss0) / SLOW
        deadline = time.monotonic() + 10
        closed = sum(1 for s in socks if _closed(s, deadline - time.monotonic()))
    finally:
        for s in socks:
            s.close()
    return per, closed


def _no_quarantine(monkeypatch):
    # ASan's quarantine keeps freed memory resident: off, so RSS means what
    # the gateway holds (no effect on a build without ASan).
    monkeypatch.setenv("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1:quarantine_size_mb=0:"
                       "thread_local_quarantine_size_kb=0")


def test_slow_oversized_client_certificate_is_refused(pki, gateway, port, echo_server,
                                                      monkeypatch):
    """TLS 1.2 clients that announce a 100,000-byte Certificate message and
    stall: OpenSSL's default cap (100 KiB) let each hold ~125 KiB until the
    handshake deadline. The cap derived from the certificate size rule
    refuses them at the header (issue 10 item 8)."""
    _no_quarantine(monkeypatch)
    echo = echo_server()
    p = port()
    gw = _unwrap_gw(pki, gateway, p, echo.addr, handshake_timeout="30s")
    assert _served(_client_ctx(pki), p)
    per, closed = _memory_per_slow_handshake(gw, lambda: _slow_certificate_client(pki, p))
    print(f"RSS per slow 100,000-byte Certificate handshake: {per:.1f} KiB")
    assert closed == SLOW, f"only {closed} of {SLOW} oversized Certificate messages refused"
    assert per < CERT_LIST_MAX / 1024, f"{per:.1f} KiB per slow handshake"
    gw.wait_for_refusals("tls_message_too_large", SLOW)
    assert gw.refusal_count("tls_message_too_large") == SLOW
    assert _served(_client_ctx(pki), p)


def test_slow_oversized_client_hello_is_refused(pki, gateway, port, echo_server, monkeypatch):
    """Clients that announce a 131,000-byte ClientHello and stall: each held
    ~155 KiB. A ClientHello never needs more than 16 KiB (a ticket carrying
    one certificate, key shares): refused at its header (issue 10 item 8)."""
    _no_quarantine(monkeypatch)
    echo = echo_server()
    p = port()
    gw = _unwrap_gw(pki, gateway, p, echo.addr, handshake_timeout="30s")
    assert _served(_client_ctx(pki), p)
    per, closed = _memory_per_slow_handshake(gw, lambda: _slow_hello_client(p))
    print(f"RSS per slow 131,000-byte ClientHello handshake: {per:.1f} KiB")
    assert closed == SLOW, f"only {closed} of {SLOW} oversized ClientHellos refused"
    assert per < CERT_LIST_MAX / 1024, f"{per:.1f} KiB per slow handshake"
    gw.wait_for_refusals("tls_message_too_large", SLOW)
    assert gw.refusal_count("tls_message_too_large") == SLOW
    assert _served(_client_ctx(pki), p)


class _OversizedCertificateServer:
    """A TLS 1.2 server that answers a ClientHello with its real ServerHello
    and then the header of a Certificate message announcing 100,000 bytes."""

    def __init__(self, pki):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        self.ctx.load_cert_chain(pki.chain("site-b"), pki.key("site-b"))
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.conns = []
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            try:
                self._answer(c)
            except (OSError, ssl.SSLError, AssertionError):
                pass

    def _answer(self, c):
        inb, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = self.ctx.wrap_bio(inb, outb, server_side=True)
        c.settimeout(10)
        while not outb.pending:
            data = c.recv(65536)
            assert data
            inb.write(data)
            try:
                obj.do_handshake()
            except ssl.SSLWantReadError:
                pass
        recs, _ = _records(outb.read())
        flight = b"".join(payload for ctype, payload in recs if ctype == 22)
        hello = flight[:4 + int.from_bytes(flight[1:4], "big")]
        assert hello[0] == 2, "not a ServerHello"
        c.sendall(_tls_record(22, hello) +
                  _tls_record(22, _handshake_header(11, 100000) + bytes(1000)))

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


def test_upstream_oversized_certificate_is_refused(pki, gateway, port):
    """wrap: the upstream's Certificate message announces 100,000 bytes; the
    cap applies to outbound contexts too (issue 10 item 8)."""
    up = _OversizedCertificateServer(pki)
    try:
        p = port()
        gw = gateway(make_config(pki, {"out": {"mode": "wrap", "listen": f"127.0.0.1:{p}",
                                               "connect": up.addr,
                                               "server_name": "site-b.zonegate.test",
                                               "allow_from": "127.0.0.0/8",
                                               "handshake_timeout": "20s"}},
                                 name="site-a", leaf="site-a"), name="site-a")
        s = util.connect("127.0.0.1", p)
        try:
            s.sendall(PAYLOAD)
            assert _closed(s, 10), "the gateway kept waiting for the certificate"
        finally:
            s.close()
        gw.wait_for_reason("tls_message_too_large", route="out")
    finally:
        up.close()


# ------------------------------------------------------------ descriptors


def test_out_of_descriptors_is_local_exhaustion(pki, gateway, port, echo_server):
    """RLIMIT_NOFILE 256 and 400 concurrent mTLS clients: the gateway runs
    out of descriptors. That is local resource exhaustion: it must be named
    so (local_fd_exhausted), never blamed on the upstream
    (upstream_connect_failed) nor trigger a DNS re-resolution, and no client
    may complete its handshake only to be dropped for want of an upstream
    socket (issue 10 item 13)."""
    echo = echo_server()
    p = port()
    gw = _unwrap_gw(pki, gateway, p, echo.addr, nofile=256, handshake_timeout="10s",
                    idle_timeout="60s")
    mark = gw.mark()
    ctx = _client_ctx(pki)
    n = 400
    lock = threading.Lock()
    outcome = {"served": 0, "dropped_after_handshake": 0, "refused": 0}
    done = threading.Barrier(n + 1)
    held = []

    def client():
        try:
            s = util.tls_connect(ctx, "127.0.0.1", p, timeout=8)
        except (OSError, ssl.SSLError):
            kind = "refused"
        else:
            try:
                ok = util.echo_roundtrip(s, PAYLOAD, timeout=8) == PAYLOAD
            except (OSError, ssl.SSLError, AssertionError):
                ok = False
            kind = "served" if ok else "dropped_after_handshake"
            with lock:
                held.append(s)
        with lock:
            outcome[kind] += 1
        done.wait(60)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    done.wait(60)
    for s in held:
        s.close()
    for t in threads:
        t.join(10)
    print(f"outcome of {n} clients under RLIMIT_NOFILE 256: {outcome}")
    assert outcome["dropped_after_handshake"] == 0, outcome
    assert outcome["served"] >= 50 and outcome["refused"] > 0, outcome
    assert not gw.reasons("upstream_connect_failed", since=mark)
    assert gw.reasons("local_fd_exhausted", since=mark)
    assert not gw.events("resolve", since=mark), "the upstream was re-resolved"
    assert _served(ctx, p), "the gateway does not serve again once descriptors are free"


# ------------------------------------------------------------ truncation


def test_fin_without_close_notify_is_a_truncation(pki, gateway, port, echo_server):
    """An authenticated client that ends its TLS stream with a bare TCP FIN
    (no close_notify) truncated it: the relay still passes the end of
    stream on (DICOM and HL7 frame their own messages), but the close is
    logged as a truncation, not as an orderly client_closed; a client that
    sends close_notify first is client_closed (issue 10 item 14)."""
    echo = echo_server()
    p = port()
    gw = _unwrap_gw(pki, gateway, p, echo.addr, idle_timeout="30s")
    for clean in (True, False):
        mark = gw.mark()
        t = RawTls(util.connect("127.0.0.1", p), _client_ctx(pki), server_hostname="localhost")
        try:
            t.send(PAYLOAD)
            assert t.recv_exactly(len(PAYLOAD)) == PAYLOAD
            if clean:
                t.close_notify()
            t.sock.shutdown(socket.SHUT_WR)
            assert _closed(t.sock, 10), "the gateway did not pass the end of stream on"
        finally:
            t.close()
        ev = gw.wait_for_event("conn_close", since=mark, route="in")[0]
        assert ev["reason"] == ("client_closed" if clean else "client_truncated"), ev


# ------------------------------------------------------------ probe


def test_probe_sees_the_certificate_request_of_a_legacy_dicom_server(pki, port, tmp_path,
                                                                     zonegate_bin):
    """DCMTK `storescp +tls +pa` (DICOM's legacy AES profile: TLS 1.2,
    TLS_RSA_WITH_AES_128_CBC_SHA only) requires a client certificate. No
    suite of the profile is shared, so the profile handshake fails before
    the server's CertificateRequest; `zonegate probe` said "client
    certificate: not requested". It must find out with a wider offer, and
    never claim "not requested" without a handshake that got that far
    (issue 10 item 14)."""
    q = port()
    log = open(tmp_path / "storescp.log", "wb")
    scp = subprocess.Popen(["storescp", "-aet", "STORESCP", "-od", str(tmp_path),
                            "+tls", pki.key("site-b", "rsa"), pki.chain("site-b", "rsa"),
                            "+cf", pki.roots, "+pa", "--require-peer-cert", str(q)],
                           stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        util.wait_port("127.0.0.1", q)
        cp = subprocess.run([zonegate_bin, "probe", f"127.0.0.1:{q}", "--ca", pki.roots,
                             "--name", "site-b.zonegate.test"],
                            capture_output=True, text=True, timeout=120)
        assert "client certificate: required" in cp.stdout, cp.stdout + cp.stderr
        cp = subprocess.run([zonegate_bin, "probe", f"127.0.0.1:{q}", "--ca", pki.roots,
                             "--name", "site-b.zonegate.test", "--json"],
                            capture_output=True, text=True, timeout=120)
        j = json.loads(cp.stdout)
        assert j["client_cert_requested"] and j["client_cert_required"], j
    finally:
        scp.terminate()
        scp.wait(10)
        log.close()


# ------------------------------------------------------------ DHE groups


def _ffdhe_prime(group):
    """The prime of RFC 7919 group @group, as OpenSSL knows it (hex)."""
    gen = subprocess.run(["openssl", "genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt",
                          f"group:{group}"], capture_output=True, check=True, timeout=30)
    asn = subprocess.run(["openssl", "asn1parse"], input=gen.stdout, capture_output=True,
                         check=True, timeout=30).stdout.decode()
    return asn.split("INTEGER", 1)[1].split(":", 1)[1].split()[0].lower()


def _server_dh_prime(host, port, pki):
    """The DH prime in the ServerKeyExchange of a TLS 1.2 DHE handshake
    with `openssl s_client -msg` (hex)."""
    cp = subprocess.run(["openssl", "s_client", "-connect", f"{host}:{port}", "-tls1_2",
                         "-cipher", "DHE-RSA-AES128-GCM-SHA256", "-msg", "-CAfile", pki.roots,
                         "-cert", pki.cert("client", "rsa"), "-key", pki.key("client", "rsa"),
                         "-cert_chain", pki.intermediate("rsa")],
                        input=b"", capture_output=True, timeout=30)
    out = cp.stdout.decode(errors="replace")
    assert "ServerKeyExchange" in out, out[-2000:]
    block = out.split("ServerKeyExchange", 1)[1].split("\n", 1)[1]
    hexdump = []
    for line in block.splitlines():
        if not line.startswith(" "):
            break
        hexdump.append(line.strip())
    body = bytes.fromhex(" ".join(hexdump))
    assert body[0] == 12, "not a ServerKeyExchange"
    plen = int.from_bytes(body[4:6], "big")
    return body[6:6 + plen].hex()


def test_dhe_uses_the_rfc7919_group_the_docs_name(pki, gateway, port, echo_server, zonegate_bin):
    """docs/policy.md and `zonegate profiles` say TLS 1.2 DHE uses RFC 7919
    ffdhe groups; OpenSSL 3.0's dh_auto picks RFC 3526 MODP primes. The
    prime a real TLS 1.2 DHE handshake carries must be the ffdhe one that
    `zonegate profiles` names (issue 10 item 14)."""
    echo = echo_server()
    p = port()
    gateway(make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{p}",
                                     "connect": echo.addr}},
                        name="site-b", leaf="site-b", alg="rsa"), name="site-b")
    wire = _server_dh_prime("127.0.0.1", p, pki)
    rfc7919 = {g: _ffdhe_prime(g) for g in ("ffdhe2048", "ffdhe3072", "ffdhe4096")}
    assert wire in rfc7919.values(), \
        f"the {len(wire) * 4}-bit DHE prime on the wire is no RFC 7919 group"
    prof = subprocess.run([zonegate_bin, "profiles", "cryptrec-high"], capture_output=True,
                          text=True, timeout=30).stdout
    line = [ln for ln in prof.splitlines() if ln.strip().startswith("dhe_groups")]
    assert line, prof
    named = re.findall(r"\bffdhe\d+\b", line[0])
    assert named and rfc7919.get(named[0]) == wire, \
        f"`zonegate profiles` says {line[0]!r}; the wire carries another group"
