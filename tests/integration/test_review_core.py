"""Hostile review of the gateway core (conn.c, relay.c, worker.c, tls.c,
ticket.c, chaincache.c): each test pins one suspected weakness. A test
marked xfail(strict=True) shows a real bug (its reason says which); once the
bug is fixed the test passes, strict xfail turns that into a failure, and
the marker must go."""
import os
import socket
import ssl
import time

import pytest

import util
from conftest import make_config

PAYLOAD = b"ping through zonegate\n"


def _cpu_seconds(pid):
    """User + system CPU time of process @pid, all threads."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_share(pid, seconds=2.0):
    c0, t0 = _cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return (_cpu_seconds(pid) - c0) / (time.monotonic() - t0)


class _Blackhole:
    """A listen(0) socket whose accept queue is full: SYNs to it are
    dropped, so a connect() to it stays in progress."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        self.addr = self.sock.getsockname()
        self.fillers = []
        for _ in range(16):
            try:
                self.fillers.append(socket.create_connection(self.addr, timeout=0.5))
            except (socket.timeout, TimeoutError):
                return
        pytest.fail("could not fill the accept queue of a listen(0) socket")

    def close(self):
        for f in self.fillers:
            f.close()
        self.sock.close()


# ------------------------------------------------------------ epoll interest


def test_client_reset_during_upstream_handshake_does_not_spin(pki, gateway, port):
    """wrap: the client resets while the gateway waits for the upstream's
    ServerHello. The client side has nothing to wait for, yet its socket is
    in the epoll set; a reset must close the connection (or at least not
    keep a core busy) instead of waking the worker in a loop."""
    silent = util.PausedServer().start()  # accepts, never answers TLS
    try:
        p = port()
        gw = gateway(make_config(pki, {"out": {"mode": "wrap", "listen": f"127.0.0.1:{p}",
                                               "connect": silent.addr,
                                               "server_name": "site-b.zonegate.test",
                                               "allow_from": "127.0.0.0/8",
                                               "handshake_timeout": "8s"}},
                                 name="site-a", leaf="site-a", gateway={"workers": 1}),
                     name="site-a")
        s = util.connect("127.0.0.1", p)
        util.wait_until(lambda: silent.connections == 1, 5, what="the upstream connection")
        time.sleep(0.2)  # the ClientHello is out: HANDSHAKE_OUT
        util.rst_close(s)
        cpu = _cpu_share(gw.proc.pid)
        assert cpu < 0.1, f"gateway used {cpu:.0%} of a core after a client reset (spinning)"
    finally:
        silent.stop()


def test_client_reset_while_connecting_does_not_spin(pki, gateway, port):
    """unwrap: the client finished its handshake and resets while the gateway
    is still connecting to an upstream that drops SYNs."""
    hole = _Blackhole()
    try:
        p = port()
        gw = gateway(make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{p}",
                                              "connect": f"127.0.0.1:{hole.addr[1]}",
                                              "connect_timeout": "8s"}},
                                 name="site-b", gateway={"workers": 1}), name="site-b")
        ctx = util.tls_context(pki, pki.chain("client"), pki.key("client"))
        s = util.tls_connect(ctx, "127.0.0.1", p)
        time.sleep(0.3)  # the gateway finished its side and is CONNECTING
        util.rst_close(s)
        cpu = _cpu_share(gw.proc.pid)
        assert cpu < 0.1, f"gateway used {cpu:.0%} of a core after a client reset (spinning)"
    finally:
        hole.close()


def _rx_queue(local_port, remote_port):
    """Bytes waiting in the receive queue of the 127.0.0.1 TCP socket
    local_port <- remote_port (the gateway's end), from /proc/net/tcp."""
    want_l, want_r = "0100007F:%04X" % local_port, "0100007F:%04X" % remote_port
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1] == want_l and fields[2] == want_r:
                return int(fields[4].split(":")[1], 16)
    raise AssertionError(f"no socket {want_l} <- {want_r}")


class _ByeServer:
    """Accepts one connection, sends b"bye\\n", shuts its write side and then
    never reads: a service that half-closes first and stalls."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.conns = []
        import threading
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        try:
            while True:
                c, _ = self.sock.accept()
                c.sendall(b"bye\n")
                c.shutdown(socket.SHUT_WR)
                self.conns.append(c)
        except OSError:
            pass

    def close(self):
        for c in self.conns:
            c.close()
        self.sock.close()


def test_hangup_on_backpressured_side_does_not_spin(pki, gateway, port):
    """unwrap: the service says bye, half-closes and stops reading; the client
    reads the bye, floods until backpressure, then sends its FIN. Both
    directions of the client socket are now shut, epoll reports EPOLLHUP on
    it, and nothing the gateway can do changes that until the service reads."""
    bye = _ByeServer()
    try:
        p = port()
        gw = gateway(make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{p}",
                                              "connect": bye.addr, "idle_timeout": "60s"}},
                                 name="site-b", gateway={"workers": 1}), name="site-b")
        ctx = util.tls_context(pki, pki.chain("client"), pki.key("client"))
        s = util.tls_connect(ctx, "127.0.0.1", p)
        got = b""
        while True:
            d = s.recv(100)
            if not d:
                break
            got += d
        assert got == b"bye\n"
        # Feed 32 KiB at a time until the gateway stops reading the client
        # (bytes wait in its receive queue): its relay buffer is full. The
        # receive queue still has room, so the FIN will get in.
        gw_end = (p, s.getsockname()[1])
        sent = 0
        while _rx_queue(*gw_end) == 0:
            assert sent < 64 << 20, "the gateway never stopped reading: no backpressure"
            s.sendall(b"x" * 32768)
            sent += 32768
            time.sleep(0.03)
        s.shutdown(socket.SHUT_WR)
        time.sleep(0.3)
        cpu = _cpu_share(gw.proc.pid)
        assert cpu < 0.1, f"gateway used {cpu:.0%} of a core on a hung-up client (spinning)"
        s.close()
    finally:
        bye.close()


# ------------------------------------------------- reload vs. handshakes in flight


class _HeldHandshake:
    """A TLS 1.3 client driven through memory BIOs over @raw: the client's
    last flight (Certificate, CertificateVerify, Finished) is computed but
    held back until `release()`, so the gateway's verification of the client
    certificate happens exactly when the test wants it."""

    def __init__(self, ctx, raw):
        self.raw = raw
        self.inb, self.outb = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inb, self.outb, server_hostname="server.zonegate.test")
        raw.settimeout(5)
        self._step()  # ClientHello
        while True:
            data = raw.recv(65536)
            assert data, "gateway closed during the handshake"
            self.inb.write(data)
            if self._step():
                break
        self.held = self.outb.read()

    def _step(self):
        try:
            self.obj.do_handshake()
            return True
        except ssl.SSLWantReadError:
            self.raw.sendall(self.outb.read())
            return False

    def release(self):
        self.raw.sendall(self.held)

    def roundtrip(self, payload, timeout=3.0):
        """Echo @payload through the connection; the bytes back, or b"" if
        the gateway closed it."""
        self.obj.write(payload)
        self.raw.sendall(self.outb.read())
        self.raw.settimeout(timeout)
        got = b""
        while len(got) < len(payload):
            try:
                got += self.obj.read(65536)
                continue
            except ssl.SSLWantReadError:
                pass
            except (ssl.SSLError, ssl.SSLZeroReturnError):
                return got
            data = self.raw.recv(65536)
            if not data:
                return got
            self.inb.write(data)
        return got


@pytest.fixture
def dir_site(request, tmp_path, zonegate_bin, pki):
    import netns_util
    import test_directory as td
    ok, why = netns_util.available()
    if not ok:
        pytest.skip(why)
    ns = netns_util.NetnsPair([td.A_V4, td.B_V4, td.UNKNOWN_V4, td.C_V4, td.A_V6])
    ns.create()
    op = td.Operator(zonegate_bin, tmp_path)
    op.publish(td.directory_doc(10, td.standard_participants()))
    site = td.Site(request, tmp_path, zonegate_bin, pki, ns, op)
    yield td, site, op
    site.stop()
    ns.destroy()


def test_reload_during_handshake_rechecks_certificate_binding(dir_site, pki):
    """site-a starts a handshake; before its certificate reaches the gateway,
    a new directory stops binding that certificate to site-a (address still
    site-a's). The connection must not end up relaying past the grace period."""
    td, site, op = dir_site
    raw = site.ns.client_connect(td.A_V4, td.netns_util.GW_V4, td.GW_PORT)
    ctx = util.tls_context(pki, cert=pki.cert("site-a"), key=pki.key("site-a"),
                           chain=pki.chain("site-a"))
    try:
        hs = _HeldHandshake(ctx, raw)
        parts = td.standard_participants()
        parts[0]["identities"] = {"dns": ["elsewhere.zonegate.test"]}  # cert no longer site-a's
        op.publish(td.directory_doc(11, parts))
        mark = site.gw.reload()
        site.gw.wait_for_event("reload", since=mark, result="ok")
        # control: a new connection with that certificate is refused
        assert not site.works(td.A_V4, "site-a")
        hs.release()
        time.sleep(4.0)  # grace_period is 2s
        got = hs.roundtrip(b"C-ECHO\n")
        assert got != b"C-ECHO\n", ("a certificate the directory in force no longer binds "
                                    "still relays data after the grace period")
        # and it was cut for that reason: the control's refusal, then the held one's
        site.gw.wait_for_reason("directory_identity_mismatch", since=mark, count=2,
                                events=("refused", "conn_close"))
    finally:
        raw.close()


def test_reload_with_crl_during_handshake_closes_revoked(pki, gateway, port, echo_server,
                                                          tmp_path):
    import shutil
    echo = echo_server()
    p = port()
    crl = tmp_path / "crl.pem"
    shutil.copy(pki.path("crl-empty.pem"), crl)
    cfg = make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{p}",
                                   "connect": echo.addr}},
                      name="site-b", tls={"crl": str(crl)})
    cfg["directory"] = {"grace_period": "1s"}
    gw = gateway(cfg, name="site-b")
    ctx = util.tls_context(pki, cert=pki.cert("revoked"), key=pki.key("revoked"),
                           chain=pki.chain("revoked"))
    raw = util.connect("127.0.0.1", p)
    try:
        hs = _HeldHandshake(ctx, raw)
        shutil.copy(pki.path("crl-revoked.pem"), crl)
        mark = gw.reload()
        gw.wait_for_event("reload", since=mark, result="ok")
        # control: a new handshake with the certificate is refused now
        util.s_client_once("127.0.0.1", p, PAYLOAD, pki=pki, cert=pki.cert("revoked"),
                           key=pki.key("revoked"), chain=pki.intermediate())
        gw.wait_for_event("refused", since=mark, route="in", reason="cert_revoked")
        hs.release()
        time.sleep(3.0)  # grace_period is 1s
        got = hs.roundtrip(PAYLOAD)
        assert got != PAYLOAD, "a certificate revoked by the CRL in force still relays data"
        # cut for that reason: the control's refusal, then the held connection's
        gw.wait_for_reason("cert_revoked", since=mark, count=2, route="in")
    finally:
        raw.close()


def test_upstream_failure_detail_names_the_error(pki, gateway, port):
    """An upstream whose connect fails asynchronously (SYN answered by a
    RST) is refused with the socket error as detail, not errno 0."""
    hole = _Blackhole()
    p = port()
    gw = gateway(make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{p}",
                                          "connect": f"127.0.0.1:{hole.addr[1]}",
                                          "connect_timeout": "8s"}},
                             name="site-b"), name="site-b")
    ctx = util.tls_context(pki, pki.chain("client"), pki.key("client"))
    s = util.tls_connect(ctx, "127.0.0.1", p)
    try:
        time.sleep(0.3)
        hole.close()  # the next SYN retransmission meets a closed port: RST
        ev = gw.wait_for_event("refused", route="in", reason="upstream_connect_failed",
                               timeout=10)[0]
        assert ev.get("detail") not in ("Success", None), ev
    finally:
        s.close()


# ------------------------------------------------------------ session tickets


def _ticket_session(ctx, p):
    """Connect, echo once (so the client processes the NewSessionTicket),
    return the session."""
    s = util.tls_connect(ctx, "127.0.0.1", p)
    try:
        assert util.echo_roundtrip(s, PAYLOAD) == PAYLOAD
        sess = s.session
        assert sess is not None and sess.has_ticket, "no session ticket issued"
        return sess
    finally:
        s.close()


def _resumes(ctx, p, sess):
    raw = socket.create_connection(("127.0.0.1", p), timeout=10)
    s = ctx.wrap_socket(raw, server_hostname="localhost", session=sess)
    try:
        assert util.echo_roundtrip(s, PAYLOAD) == PAYLOAD
        return s.session_reused
    finally:
        s.close()


@pytest.mark.parametrize("cache", [
    "on",
    "off",
])
def test_ticket_does_not_outlive_two_periods(pki, gateway, port, echo_server, cache):
    """session_tickets = on, session_timeout = 2s: a ticket left unused for
    three periods, with no handshake in between, must not resume
    (docs/configuration.md: a ticket never outlives two periods)."""
    echo = echo_server()
    p = port()
    gw = gateway(make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{p}",
                                          "connect": echo.addr}},
                             name="site-b", gateway={"workers": 1},
                             tls={"session_tickets": "on", "session_cache": cache,
                                  "session_timeout": "2s"}), name="site-b")
    ctx = util.tls_context(pki, pki.chain("client"), pki.key("client"))
    sess = _ticket_session(ctx, p)
    assert _resumes(ctx, p, sess), "control: a fresh ticket must resume"
    sess = _ticket_session(ctx, p)
    time.sleep(6.5)
    assert not _resumes(ctx, p, sess), "a ticket resumed after three session_timeout periods"
    assert gw.running()


# ------------------------------------------------------- verified-chain cache


def test_chain_cached_for_one_route_does_not_skip_another_routes_name_check(
        pki, gateway, port, echo_server):
    """Regression guard: the cache key is the chain, the tag names the route.
    Two wrap routes of one worker reach the same server; `good` expects its
    name and caches its chain, `bad` expects another name. A cache hit on
    `bad` would skip the host-name check done inside X509_verify_cert."""
    echo = echo_server()
    b_port, good_port, bad_port = port(), port(), port()
    gateway(make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{b_port}",
                                     "connect": echo.addr}}, name="site-b"), name="site-b")
    common = {"mode": "wrap", "connect": f"127.0.0.1:{b_port}", "allow_from": "127.0.0.0/8"}
    a = gateway(make_config(pki, {
        "good": {**common, "listen": f"127.0.0.1:{good_port}",
                 "server_name": "site-b.zonegate.test"},
        "bad": {**common, "listen": f"127.0.0.1:{bad_port}",
                "server_name": "pacs.elsewhere.test"},
    }, name="site-a", leaf="site-a", gateway={"workers": 1}, tls={"session_cache": "off"}),
        name="site-a")
    for _ in range(3):
        s = util.connect("127.0.0.1", good_port)
        assert util.echo_roundtrip(s, PAYLOAD) == PAYLOAD
        s.close()
    closes = a.wait_for_event("conn_close", route="good", count=3)
    assert "cached" in [e["chain"] for e in closes], "control: the chain never came from the cache"
    s = util.connect("127.0.0.1", bad_port)
    try:
        s.sendall(PAYLOAD)
        assert util.closed_by_peer(s, 10)
    finally:
        s.close()
    a.wait_for_event("refused", route="bad", reason="tls_server_name_mismatch")


# ------------------------------------------------ reload: routes that go away


def test_crl_reload_reaches_connections_of_a_removed_route(pki, gateway, port, echo_server,
                                                           tmp_path):
    import shutil
    echo = echo_server()
    p_old, p_new = port(), port()
    crl = tmp_path / "crl.pem"
    shutil.copy(pki.path("crl-empty.pem"), crl)

    def cfg(name, p):
        c = make_config(pki, {name: {"mode": "unwrap", "listen": f"127.0.0.1:{p}",
                                     "connect": echo.addr}},
                        name="site-b", tls={"crl": str(crl)})
        c["directory"] = {"grace_period": "1s"}
        return c

    gw = gateway(cfg("old", p_old), name="site-b")
    bad = util.SClient("127.0.0.1", p_old, pki=pki, cert=pki.cert("revoked"),
                       key=pki.key("revoked"), chain=pki.intermediate())
    try:
        bad.send(PAYLOAD)
        assert bad.read_until(PAYLOAD, timeout=15)
        shutil.copy(pki.path("crl-revoked.pem"), crl)
        mark = gw.reload(cfg("new", p_new))  # the route is renamed, the CRL revokes
        gw.wait_for_event("reload", since=mark, result="ok")
        gw.wait_for_event("conn_close", since=mark, route="old", reason="cert_revoked",
                          timeout=10)
        try:
            bad.send(PAYLOAD)
            got = bad.read_until(PAYLOAD * 2, timeout=3)
        except BrokenPipeError:  # closed: what must happen
            got = False
        assert not got, "a peer revoked by the CRL in force still relays on a removed route"
    finally:
        bad.finish()


# ------------------------------------------------------------ counter balance


def test_every_close_path_gives_its_slot_back(pki, gateway, port, echo_server):
    """Regression guard for the admission counters: with max_connections = 2
    on the route and the gateway, connections that end on every kind of path
    (silent close and RST before the handshake, no client certificate,
    upstream refused, RST and clean close while relaying) must each give
    their slot back: two fresh connections are admitted afterwards."""
    echo = echo_server()
    p, p_dead, dead = port(), port(), port()
    gw = gateway(make_config(pki, {
        "in": {"mode": "unwrap", "listen": f"127.0.0.1:{p}", "connect": echo.addr,
               "max_connections": 2},
        "dead": {"mode": "unwrap", "listen": f"127.0.0.1:{p_dead}",
                 "connect": f"127.0.0.1:{dead}", "max_connections": 2},
    }, name="site-b", gateway={"max_connections": 2}), name="site-b")
    ctx = util.tls_context(pki, pki.chain("client"), pki.key("client"))
    nocert = util.tls_context(pki)
    ended = [0]

    def settle():
        """Wait until the gateway logged the end of every connection so far."""
        ended[0] += 1
        util.wait_until(lambda: gw.refusal_count() + len(gw.events("conn_close"))
                        >= ended[0], 10, what=f"{ended[0]} close or refusal lines")

    for _ in range(3):
        util.connect("127.0.0.1", p).close()
        settle()
        util.rst_close(util.connect("127.0.0.1", p))
        settle()
        try:
            s = util.tls_connect(nocert, "127.0.0.1", p)
            s.sendall(PAYLOAD)
            s.recv(10)
            s.close()
        except (ssl.SSLError, OSError):
            pass
        settle()
        try:
            s = util.tls_connect(ctx, "127.0.0.1", p_dead)
            s.recv(10)
            s.close()
        except (ssl.SSLError, OSError):
            pass
        settle()
        s = util.tls_connect(ctx, "127.0.0.1", p)
        assert util.echo_roundtrip(s, PAYLOAD) == PAYLOAD
        util.rst_close(s)
        settle()
        s = util.tls_connect(ctx, "127.0.0.1", p)
        assert util.echo_roundtrip(s, PAYLOAD) == PAYLOAD
        s.close()
        settle()
    assert not gw.events("refused", reason="route_max_connections")
    assert not gw.events("refused", reason="global_max_connections")
    a = util.tls_connect(ctx, "127.0.0.1", p)
    b = util.tls_connect(ctx, "127.0.0.1", p)
    try:
        assert util.echo_roundtrip(a, PAYLOAD) == PAYLOAD
        assert util.echo_roundtrip(b, PAYLOAD) == PAYLOAD
    finally:
        a.close()
        b.close()


def test_handshake_finished_after_crl_reload_gets_no_grace(pki, gateway, port, echo_server,
                                                            tmp_path):
    import shutil
    echo = echo_server()
    p = port()
    crl = tmp_path / "crl.pem"
    shutil.copy(pki.path("crl-empty.pem"), crl)
    cfg = make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{p}",
                                   "connect": echo.addr}},
                      name="site-b", tls={"crl": str(crl)})
    cfg["directory"] = {"grace_period": "30s"}
    gw = gateway(cfg, name="site-b")
    ctx = util.tls_context(pki, cert=pki.cert("revoked"), key=pki.key("revoked"),
                           chain=pki.chain("revoked"))
    raw = util.connect("127.0.0.1", p)
    try:
        hs = _HeldHandshake(ctx, raw)
        shutil.copy(pki.path("crl-revoked.pem"), crl)
        mark = gw.reload()
        gw.wait_for_event("reload", since=mark, result="ok")
        hs.release()
        try:
            got = hs.roundtrip(PAYLOAD)
        except (ConnectionResetError, BrokenPipeError):  # refused: what must happen
            got = b""
        assert got != PAYLOAD, ("a certificate revoked before its handshake finished relays "
                                "for the grace period")
        ev = gw.wait_for_event("refused", since=mark, route="in", reason="cert_revoked")
        assert ev, "the late handshake was not refused as a new connection would be"
    finally:
        raw.close()


# --------------------------------------------- deferred steps, close and free


def test_resets_during_bulk_transfers_under_the_step_budget(site_pair, echo_server):
    """Regression guard for the deferred-step list and the deferred free: many
    bulk transfers (each step hits ZG_RELAY_STEP_BUDGET and is deferred)
    while clients reset or close at random moments, on one worker per site.
    Under the ASan build a use after free or a double free fails the test
    (conftest checks the logs); afterwards the slots are all free again."""
    import random
    import threading
    echo = echo_server()
    a, b, a_port = site_pair(echo.addr, a_gw={"workers": 1}, b_gw={"workers": 1})
    chunk = os.urandom(1 << 16)
    rng = random.Random(7)
    errors = []

    def client(i, life_s, rst):
        try:
            s = util.connect("127.0.0.1", a_port)
            stop = threading.Event()

            def reader():
                try:
                    while not stop.is_set() and s.recv(1 << 16):
                        pass
                except OSError:
                    pass

            t = threading.Thread(target=reader, daemon=True)
            t.start()
            s.settimeout(5)
            end = time.monotonic() + life_s
            try:
                while time.monotonic() < end:
                    s.sendall(chunk)
            except OSError:
                pass
            stop.set()
            if rst:
                util.rst_close(s)
            else:
                s.close()
            t.join(5)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"client {i}: {e!r}")

    threads = [threading.Thread(target=client, args=(i, rng.uniform(0.05, 0.6), i % 2 == 0))
               for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    util.wait_until(lambda: len(a.events("conn_close")) + a.refusal_count() >= 24, 20,
                    what="site A to log the end of all 24 connections")
    assert a.running() and b.running()
    s = util.connect("127.0.0.1", a_port)
    assert util.echo_roundtrip(s, PAYLOAD) == PAYLOAD
    s.close()


# ------------------------------------------------------------ re-resolution


def test_failures_on_one_route_do_not_flush_another_routes_chain_cache(pki, gateway, port,
                                                                        echo_server):
    echo = echo_server()
    p, p_dead, dead = port(), port(), port()
    gw = gateway(make_config(pki, {
        "good": {"mode": "unwrap", "listen": f"127.0.0.1:{p}", "connect": echo.addr},
        "dead": {"mode": "unwrap", "listen": f"127.0.0.1:{p_dead}",
                 "connect": f"127.0.0.1:{dead}"},
    }, name="site-b", gateway={"workers": 1}, tls={"session_cache": "off"}), name="site-b")
    ctx = util.tls_context(pki, pki.chain("client"), pki.key("client"))
    for _ in range(2):  # control: without failures the second one is a cache hit
        s = util.tls_connect(ctx, "127.0.0.1", p)
        assert util.echo_roundtrip(s, PAYLOAD) == PAYLOAD
        s.close()
    first = [e["chain"] for e in gw.wait_for_event("conn_close", route="good", count=2)]
    assert first == ["verified", "cached"], first
    for i in range(5):
        try:
            s = util.tls_connect(ctx, "127.0.0.1", p_dead)
            s.recv(10)
            s.close()
        except (ssl.SSLError, OSError):
            pass
        gw.wait_for_event("refused", route="dead", reason="upstream_connect_failed", count=i + 1)
        time.sleep(1.2)  # let the main thread's re-resolution (1/s at most) happen
        s = util.tls_connect(ctx, "127.0.0.1", p)
        assert util.echo_roundtrip(s, PAYLOAD) == PAYLOAD
        s.close()
    chains = [e["chain"] for e in gw.wait_for_event("conn_close", route="good", count=7)][2:]
    resolves = len(gw.events("resolve", result="ok"))
    assert "cached" in chains, (f"route good never hit the chain cache: {chains}; "
                                f"{resolves} re-resolutions published new generations")


def test_reload_rechecks_the_upstream_of_a_bridge_route(request, tmp_path, zonegate_bin, pki):
    import netns_util
    import test_directory as td
    from conftest import Gateways, gateway_section
    ok, why = netns_util.available()
    if not ok:
        pytest.skip(why)
    ns = netns_util.NetnsPair([td.A_V4, td.B_V4, td.UNKNOWN_V4, td.C_V4, td.A_V6])
    ns.create()
    up = None
    try:
        op = td.Operator(zonegate_bin, tmp_path)
        op.publish(td.directory_doc(10, td.standard_participants()))
        up = td.TlsEchoUpstream(ns, pki, td.B_V4, "site-b")
        wrapper = ns.wrapper(tmp_path / "zonegate-in-netns", zonegate_bin)
        config = {
            "gateway": gateway_section("gw"),
            "tls": pki.tls("site-b"),
            "directory": {"file": str(op.json), "public_key": op.pub, "grace_period": "1s",
                          "reload_interval": "0"},
            "route br": {"mode": "bridge", "listen": f"*:{td.GW_PORT}",
                         "connect": f"{td.B_V4}:{up.port}", "server_name": "site-b.zonegate.test",
                         "peers": "site-a"},
        }
        gw = Gateways(wrapper, tmp_path, request.node)(config, "gw")
        ctx = util.tls_context(pki, cert=pki.cert("site-a"), key=pki.key("site-a"),
                               chain=pki.chain("site-a"))
        raw = ns.client_connect(td.A_V4, netns_util.GW_V4, td.GW_PORT)
        s = ctx.wrap_socket(raw, server_hostname="site-b.zonegate.test")
        try:
            assert util.echo_roundtrip(s, b"A-ASSOCIATE\n") == b"A-ASSOCIATE\n"
            parts = td.standard_participants()
            parts[1]["prefixes"] = ["198.51.100.99/32"]  # site-b moved: B_V4 is nobody's now
            op.publish(td.directory_doc(11, parts))
            mark = gw.reload()
            gw.wait_for_event("reload", since=mark, result="ok")
            # control: a new bridge connection is refused on its upstream hop now
            raw2 = ns.client_connect(td.A_V4, netns_util.GW_V4, td.GW_PORT)
            try:
                s2 = ctx.wrap_socket(raw2, server_hostname="site-b.zonegate.test")
                assert util.closed_by_peer(s2, timeout=10)
            except (ssl.SSLError, OSError):
                pass
            finally:
                raw2.close()
            gw.wait_for_event("refused", since=mark, route="br", reason="directory_unknown_address")
            time.sleep(3.0)  # grace_period is 1s
            try:
                got = util.echo_roundtrip(s, b"C-ECHO\n", timeout=3)
            except (AssertionError, ssl.SSLError, OSError):
                got = b""
            assert got != b"C-ECHO\n", ("the bridge still relays to an upstream address the "
                                        "directory in force binds to no participant")
            # the live connection was closed for that reason (after the control's refusal)
            gw.wait_for_reason("directory_unknown_address", since=mark, count=2, route="br")
        finally:
            s.close()
    finally:
        if up:
            up.stop()
        ns.destroy()
