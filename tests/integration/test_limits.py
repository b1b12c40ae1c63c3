"""Limits, timeouts and failures around the relay: slow-loris clients, an
upstream that is down, allow_from, max_connections (route and gateway),
idle timeout."""
import os
import socket
import ssl
import threading
import time

import pytest

import util
from conftest import make_config

PAYLOAD = b"ping through zonegate\n"


def _unwrap_cfg(pki, listen_port, backend, gw=None, **route):
    return make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{listen_port}",
                                    "connect": backend, **route}},
                       name="site-b", gateway=gw)


def _client_hello():
    """The bytes of a real TLS ClientHello (so trickling clients look like
    a slow TLS peer, not garbage)."""
    ctx = ssl.create_default_context()
    inb, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inb, outb, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outb.read()


def test_slow_loris_lose_slot_at_handshake_timeout(pki, gateway, port, echo_server):
    echo = echo_server()
    p = port()
    hs_timeout = 2.0
    gw = gateway(_unwrap_cfg(pki, p, echo.addr, handshake_timeout="2s"), name="site-b")
    hello = _client_hello()
    n_silent, n_trickle = 10, 10
    socks = []
    opened = []
    closed_at = {}
    for _ in range(n_silent + n_trickle):
        socks.append(util.connect("127.0.0.1", p))
        opened.append(time.monotonic())
    stop = threading.Event()

    def trickle():
        # a byte a second from each trickler, until the gateway drops it
        i = 0
        while not stop.is_set() and i < len(hello):
            for k in range(n_silent, n_silent + n_trickle):
                if k in closed_at:
                    continue
                try:
                    socks[k].send(hello[i:i + 1])
                except OSError:
                    pass
            i += 1
            stop.wait(1.0)

    def watch(k):
        if util.closed_by_peer(socks[k], hs_timeout + 10):
            closed_at[k] = time.monotonic()

    watchers = [threading.Thread(target=watch, args=(k,)) for k in range(len(socks))]
    tt = threading.Thread(target=trickle)
    tt.start()
    for w in watchers:
        w.start()
    try:
        # Meanwhile a good client is served promptly.
        ctx = util.tls_context(pki, pki.chain("client"), pki.key("client"))
        t0 = time.monotonic()
        with util.tls_connect(ctx, "127.0.0.1", p) as s:
            assert util.echo_roundtrip(s, PAYLOAD) == PAYLOAD
        good_done = time.monotonic()
        assert not closed_at, "loris clients were dropped before the good client was served"
        assert good_done - t0 < hs_timeout, "good client waited behind the loris clients"
        for w in watchers:
            w.join(hs_timeout + 15)
    finally:
        stop.set()
        tt.join()
        for s in socks:
            s.close()
    assert len(closed_at) == len(socks), \
        f"only {len(closed_at)} of {len(socks)} slow clients were dropped"
    for k, t in closed_at.items():
        held = t - opened[k]
        assert hs_timeout - 0.3 <= held <= hs_timeout + 3.0, \
            f"slow client {k} dropped after {held:.2f}s (handshake_timeout {hs_timeout}s)"
    gw.wait_for_refusals("handshake_timeout", len(socks), route="in")
    assert echo.connections == 1


def test_upstream_down_refused_cleanly_then_recovers(pki, gateway, port):
    p, dead = port(), port()
    gw = gateway(_unwrap_cfg(pki, p, f"127.0.0.1:{dead}"), name="site-b")
    ctx = util.tls_context(pki, pki.chain("client"), pki.key("client"))
    for _ in range(3):
        try:
            s = util.tls_connect(ctx, "127.0.0.1", p)
        except (ssl.SSLError, OSError):
            continue  # refusing before the handshake completes is fine too
        try:
            s.sendall(PAYLOAD)
            assert util.closed_by_peer(s, 15)
        except (ssl.SSLError, OSError):
            pass
        s.close()
    gw.wait_for_reason("upstream_connect_failed", count=3, route="in")
    assert gw.running()
    # the service comes up: the next connection works
    echo = util.EchoServer("127.0.0.1", dead).start()
    try:
        with util.tls_connect(ctx, "127.0.0.1", p) as s:
            assert util.echo_roundtrip(s, PAYLOAD) == PAYLOAD
    finally:
        echo.stop()


def test_wrap_upstream_down(site_pair, echo_server, pki, gateway, port):
    """A wraps towards a B that is not running."""
    p, dead = port(), port()
    a = gateway(make_config(pki, {"out": {"mode": "wrap", "listen": f"127.0.0.1:{p}",
                                          "connect": f"127.0.0.1:{dead}",
                                          "server_name": "site-b.zonegate.test",
                                          "allow_from": "127.0.0.0/8"}},
                            name="site-a", leaf="site-a"), name="site-a")
    s = util.connect("127.0.0.1", p)
    s.sendall(PAYLOAD)
    assert util.closed_by_peer(s, 15)
    s.close()
    a.wait_for_reason("upstream_connect_failed", route="out")
    assert a.running()


def test_wrap_refuses_source_outside_allow_from(site_pair, echo_server):
    echo = echo_server()
    a, b, a_port = site_pair(echo.addr, a_route={"allow_from": "127.0.0.2/32"})
    s = util.connect("127.0.0.1", a_port)
    s.sendall(PAYLOAD)
    assert util.closed_by_peer(s, 10), "a source outside allow_from was relayed"
    s.close()
    ev = a.wait_for_event("refused", route="out", reason="source_not_allowed")
    assert ev[0]["peer"].startswith("127.0.0.1:")
    # B logs every connection it saw at info level (conn_close or refused);
    # conn_open is a debug line and was never there to check
    assert not b.events("conn_close") and not b.events("refused"), "refused source reached site B"
    assert echo.connections == 0
    # the allowed source is relayed
    s = util.connect("127.0.0.1", a_port, source="127.0.0.2")
    assert util.echo_roundtrip(s, PAYLOAD) == PAYLOAD
    s.close()
    assert echo.connections == 1


def test_route_max_connections(site_pair, echo_server):
    echo = echo_server()
    a, b, a_port = site_pair(echo.addr, a_route={"max_connections": 2})
    live = [util.connect("127.0.0.1", a_port) for _ in range(2)]
    for s in live:
        assert util.echo_roundtrip(s, PAYLOAD) == PAYLOAD
    extra = util.connect("127.0.0.1", a_port)
    try:
        extra.sendall(PAYLOAD)
    except OSError:
        pass
    assert util.closed_by_peer(extra, 10), "third connection served despite max_connections=2"
    extra.close()
    a.wait_for_event("refused", route="out", reason="route_max_connections")
    # the live ones are unaffected; freeing a slot admits a new client
    for s in live:
        assert util.echo_roundtrip(s, PAYLOAD) == PAYLOAD
    mark = a.mark()
    live.pop().close()
    a.wait_for_event("conn_close", since=mark, route="out")
    s = util.connect("127.0.0.1", a_port)
    assert util.echo_roundtrip(s, PAYLOAD) == PAYLOAD
    s.close()
    for s in live:
        s.close()
    assert echo.connections == 3


def test_gateway_max_connections(pki, gateway, port, echo_server):
    echo = echo_server()
    p1, p2 = port(), port()
    routes = {r: {"mode": "unwrap", "listen": f"127.0.0.1:{pp}", "connect": echo.addr}
              for r, pp in (("in1", p1), ("in2", p2))}
    gw = gateway(make_config(pki, routes, name="site-b", gateway={"max_connections": 2}),
                 name="site-b")
    ctx = util.tls_context(pki, pki.chain("client"), pki.key("client"))
    live = [util.tls_connect(ctx, "127.0.0.1", p1), util.tls_connect(ctx, "127.0.0.1", p2)]
    for s in live:
        assert util.echo_roundtrip(s, PAYLOAD) == PAYLOAD
    raw = util.connect("127.0.0.1", p2)
    assert util.closed_by_peer(raw, 10)
    raw.close()
    gw.wait_for_event("refused", reason="global_max_connections")
    for s in live:
        s.close()


def test_idle_timeout_closes_both_sides(site_pair, echo_server):
    echo = echo_server()
    a, b, a_port = site_pair(echo.addr, a_route={"idle_timeout": "1s"})
    s = util.connect("127.0.0.1", a_port)
    assert util.echo_roundtrip(s, PAYLOAD) == PAYLOAD
    t0 = time.monotonic()
    assert util.closed_by_peer(s, 10)
    held = time.monotonic() - t0
    s.close()
    assert 0.7 <= held <= 4.0, f"idle connection closed after {held:.2f}s (idle_timeout 1s)"
    ev = a.wait_for_event("conn_close", route="out")[0]
    assert ev["reason"] == "idle_timeout"
    util.wait_until(lambda: echo.active == 0, 10, what="service side to be closed too")


def test_upstream_connect_timeout(pki, gateway, port):
    """An upstream that never answers the SYN (its accept queue is full) is
    given up on at connect_timeout."""
    stuffed = socket.socket()
    stuffed.bind(("127.0.0.1", 0))
    stuffed.listen(0)
    addr = stuffed.getsockname()
    fillers = []
    try:
        # fill the accept queue (never accepted) until a connect stalls: from
        # then on the listener drops SYNs
        for _ in range(16):
            try:
                fillers.append(socket.create_connection(addr, timeout=0.5))
            except (socket.timeout, TimeoutError):
                break
        else:
            pytest.fail("could not fill the accept queue of a listen(0) socket")
        p = port()
        gw = gateway(_unwrap_cfg(pki, p, f"127.0.0.1:{addr[1]}", connect_timeout="1s"),
                     name="site-b")
        ctx = util.tls_context(pki, pki.chain("client"), pki.key("client"))
        t0 = time.monotonic()
        try:
            s = util.tls_connect(ctx, "127.0.0.1", p)
            s.sendall(PAYLOAD)
            assert util.closed_by_peer(s, 10)
            s.close()
        except (ssl.SSLError, OSError):
            pass
        gw.wait_for_reason("upstream_connect_timeout", route="in", timeout=10)
        took = time.monotonic() - t0
        assert 0.8 <= took <= 5, f"gave up after {took:.2f}s with connect_timeout=1s"
    finally:
        for f in fillers:
            f.close()
        stuffed.close()


def test_upstream_reset_mid_stream_closes_both_sides(site_pair):
    rs = util.ResetServer(after=10).start()
    try:
        a, b, a_port = site_pair(rs.addr)
        s = util.connect("127.0.0.1", a_port)
        s.sendall(b"x" * 100)
        assert util.closed_by_peer(s, 10), "client not closed after the service reset"
        s.close()
        eb = b.wait_for_event("conn_close", route="in")[0]
        # B saw its service reset the connection, and passes the abort on:
        # it ends the link without close_notify, which A names (see
        # docs/operations.md, upstream_truncated)
        assert eb["reason"] == "upstream_io_error", eb
        ea = a.wait_for_event("conn_close", route="out")[0]
        assert ea["reason"] == "upstream_truncated", ea
        assert a.running() and b.running()
    finally:
        rs.stop()


def test_client_reset_mid_stream_closes_upstream(site_pair, echo_server):
    echo = echo_server()
    a, b, a_port = site_pair(echo.addr)
    s = util.connect("127.0.0.1", a_port)
    assert util.echo_roundtrip(s, PAYLOAD) == PAYLOAD
    util.rst_close(s)
    ea = a.wait_for_event("conn_close", route="out")[0]
    assert ea["reason"] == "client_io_error", ea  # an RST, not an orderly close
    eb = b.wait_for_event("conn_close", route="in")[0]
    assert eb["reason"] == "client_truncated", eb  # A passed the abort on: no close_notify
    util.wait_until(lambda: echo.active == 0, 10, what="the service connection to be closed")


def test_wrap_upstream_that_never_answers_tls(pki, gateway, port):
    """The remote accepts TCP but never speaks TLS: A gives up at
    handshake_timeout and closes its client."""
    silent = util.PausedServer().start()  # accepts, never reads or writes
    try:
        p = port()
        a = gateway(make_config(pki, {"out": {"mode": "wrap", "listen": f"127.0.0.1:{p}",
                                              "connect": silent.addr,
                                              "server_name": "site-b.zonegate.test",
                                              "allow_from": "127.0.0.0/8",
                                              "handshake_timeout": "1s"}},
                                name="site-a", leaf="site-a"), name="site-a")
        s = util.connect("127.0.0.1", p)
        s.sendall(PAYLOAD)
        t0 = time.monotonic()
        assert util.closed_by_peer(s, 10)
        took = time.monotonic() - t0
        s.close()
        assert took <= 4, f"client held {took:.2f}s with handshake_timeout=1s"
        a.wait_for_reason("handshake_timeout", route="out")
        assert silent.connections == 1
    finally:
        silent.stop()


def _cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_descriptor_exhaustion_pauses_then_recovers(pki, gateway, port, echo_server):
    """With only 64 descriptors, a flood of idle clients exhausts them: the
    gateway must neither crash nor spin on accept(EMFILE), and must serve
    again once the flood is gone."""
    echo = echo_server()
    p = port()
    gw = gateway(_unwrap_cfg(pki, p, echo.addr, gw={"workers": 1}, handshake_timeout="30s"),
                 name="site-b", nofile=64)
    flood = []
    for _ in range(120):
        flood.append(util.connect("127.0.0.1", p))  # kernel backlog accepts the rest
    pid = gw.proc.pid
    util.wait_until(lambda: len(os.listdir(f"/proc/{pid}/fd")) >= 60, 10,
                    what="the gateway to run out of descriptors")
    c0, t0 = _cpu_seconds(pid), time.monotonic()
    # nothing to poll for: we measure what the gateway does while stuck
    time.sleep(2.0)
    cpu = (_cpu_seconds(pid) - c0) / (time.monotonic() - t0)
    assert cpu < 0.3, f"gateway used {cpu:.0%} of a core while out of descriptors (spinning?)"
    assert gw.running()
    for s in flood:
        s.close()
    ctx = util.tls_context(pki, pki.chain("client"), pki.key("client"))

    def served():
        try:
            with util.tls_connect(ctx, "127.0.0.1", p, timeout=5) as s:
                return util.echo_roundtrip(s, PAYLOAD, timeout=5) == PAYLOAD
        except (OSError, ssl.SSLError, AssertionError):
            return False

    util.wait_until(served, 30, 0.2, "the gateway to serve again after the flood")
