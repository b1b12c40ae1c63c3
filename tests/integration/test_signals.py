"""SIGHUP reload (all or nothing, live connections untouched) and SIGTERM
drain (live connections finish, new ones are refused, exit 0; a second
SIGTERM stops at once)."""
import re
import signal
import socket
import time

import pytest

import util
from conftest import make_config

PAYLOAD = b"still relaying\n"


def _routes(echo, *ports):
    return {f"in{i + 1}": {"mode": "unwrap", "listen": f"127.0.0.1:{p}", "connect": echo.addr}
            for i, p in enumerate(ports)}


@pytest.fixture
def ctx(pki):
    return util.tls_context(pki, pki.chain("client"), pki.key("client"))


def _connection_refused(host, port, ctx=None):
    """True if a new connection to host:port is not served (refused at TCP
    level, or accepted and closed without relaying)."""
    try:
        s = socket.create_connection((host, port), timeout=5)
    except OSError:
        return True
    try:
        if ctx is not None:
            try:
                s = ctx.wrap_socket(s, server_hostname="localhost")
                s.sendall(PAYLOAD)
            except OSError:
                return True
        return util.closed_by_peer(s, 10)
    finally:
        s.close()


def test_sighup_good_file_adds_route_live_connection_survives(pki, gateway, port, echo_server,
                                                              ctx):
    echo = echo_server()
    p1, p2 = port(), port()
    gw = gateway(make_config(pki, _routes(echo, p1), name="site-b"), name="site-b")
    gw.wait_for_log(r"event=ready .*generation=1\b")
    live = util.tls_connect(ctx, "127.0.0.1", p1)
    assert util.echo_roundtrip(live, PAYLOAD) == PAYLOAD
    assert _connection_refused("127.0.0.1", p2)

    mark = gw.reload(make_config(pki, _routes(echo, p1, p2), name="site-b"))
    gw.wait_for_log(r"event=reload result=ok generation=2\b", since=mark)
    # the new route serves
    with util.tls_connect(ctx, "127.0.0.1", p2) as s:
        assert util.echo_roundtrip(s, PAYLOAD) == PAYLOAD
    # the old route still serves new clients
    with util.tls_connect(ctx, "127.0.0.1", p1) as s:
        assert util.echo_roundtrip(s, PAYLOAD) == PAYLOAD
    # the live connection was not touched
    for i in range(5):
        msg = b"after reload %d\n" % i
        assert util.echo_roundtrip(live, msg) == msg
    live.close()
    ev = gw.wait_for_event("conn_close", count=2, route="in1")
    assert all(e["reason"] != "shutdown" for e in ev)
    assert not gw.events("refused")


def test_sighup_broken_file_refused_old_config_keeps_serving(pki, gateway, port, echo_server,
                                                             ctx):
    echo = echo_server()
    p1, p2 = port(), port()
    gw = gateway(make_config(pki, _routes(echo, p1), name="site-b"), name="site-b")
    live = util.tls_connect(ctx, "127.0.0.1", p1)
    assert util.echo_roundtrip(live, PAYLOAD) == PAYLOAD

    cfg = make_config(pki, _routes(echo, p1, p2), name="site-b")
    cfg["route in2"]["frobnicate"] = "yes"            # unknown key
    cfg["gateway"]["handshake_timeout"] = "ten seconds"  # bad duration
    mark = gw.reload(cfg)
    m = gw.wait_for_log(r"event=reload result=refused reason=config_error errors=(\d+)",
                        since=mark)
    assert int(m.group(1)) >= 2, "not every error in the new file was reported"
    errs = gw.events("config_error", since=mark)
    assert len(errs) >= 2, errs
    conf = re.escape(str(gw.conf_path))
    text = gw.log()[mark:]
    assert re.search(conf + r":\d+: .*frobnicate", text), text
    assert re.search(conf + r":\d+: .*handshake_timeout", text), text
    assert not gw.events("reload", since=mark, result="ok")
    # the old configuration keeps serving; the broken file's route never appears
    assert gw.running()
    with util.tls_connect(ctx, "127.0.0.1", p1) as s:
        assert util.echo_roundtrip(s, PAYLOAD) == PAYLOAD
    assert _connection_refused("127.0.0.1", p2)
    assert util.echo_roundtrip(live, b"after refused reload\n") == b"after refused reload\n"
    live.close()

    # and a good file afterwards still reloads
    mark = gw.reload(make_config(pki, _routes(echo, p1, p2), name="site-b"))
    gw.wait_for_log(r"event=reload result=ok generation=2\b", since=mark)
    with util.tls_connect(ctx, "127.0.0.1", p2) as s:
        assert util.echo_roundtrip(s, PAYLOAD) == PAYLOAD


def test_sighup_removing_route_keeps_its_live_connection(pki, gateway, port, echo_server, ctx):
    echo = echo_server()
    p1, p2 = port(), port()
    gw = gateway(make_config(pki, _routes(echo, p1, p2), name="site-b"), name="site-b")
    live = util.tls_connect(ctx, "127.0.0.1", p2)
    assert util.echo_roundtrip(live, PAYLOAD) == PAYLOAD
    mark = gw.reload(make_config(pki, _routes(echo, p1), name="site-b"))
    gw.wait_for_log(r"event=reload result=ok generation=2\b", since=mark)
    util.wait_until(lambda: _connection_refused("127.0.0.1", p2), 10,
                    what="the removed route to stop accepting")
    for i in range(3):
        msg = b"route gone, connection lives %d\n" % i
        assert util.echo_roundtrip(live, msg) == msg
    live.close()
    gw.wait_for_event("conn_close", route="in2", since=mark)


def test_sigterm_drains_live_connection_then_exits_0(pki, gateway, port, echo_server, ctx):
    echo = echo_server()
    p = port()
    gw = gateway(make_config(pki, _routes(echo, p), name="site-b",
                             gateway={"drain_timeout": "30s"}), name="site-b")
    live = util.tls_connect(ctx, "127.0.0.1", p)
    assert util.echo_roundtrip(live, PAYLOAD) == PAYLOAD
    gw.signal(signal.SIGTERM)
    gw.wait_for_event("draining")
    # new connections are refused while draining (the workers close their
    # listeners just after the main thread logs event=draining, so allow
    # that short window)
    util.wait_until(lambda: _connection_refused("127.0.0.1", p, ctx), 5,
                    what="new connections to be refused while draining")
    served = echo.connections
    assert _connection_refused("127.0.0.1", p, ctx)
    assert echo.connections == served
    # the live one keeps working
    for i in range(3):
        msg = b"draining %d\n" % i
        assert util.echo_roundtrip(live, msg) == msg
    assert gw.running()
    t0 = time.monotonic()
    live.unwrap()  # close_notify: an orderly close (a bare FIN is client_truncated)
    live.close()
    assert gw.wait(15) == 0
    assert time.monotonic() - t0 < 10, "gateway did not exit soon after its last connection"
    gw.wait_for_event("stopped")
    ev = gw.events("conn_close", route="in1")
    assert ev and all(e["reason"] == "client_closed" for e in ev), ev


def test_second_sigterm_stops_at_once(pki, gateway, port, echo_server, ctx):
    echo = echo_server()
    p = port()
    gw = gateway(make_config(pki, _routes(echo, p), name="site-b",
                             gateway={"drain_timeout": "60s"}), name="site-b")
    live = util.tls_connect(ctx, "127.0.0.1", p)
    assert util.echo_roundtrip(live, PAYLOAD) == PAYLOAD
    gw.signal(signal.SIGTERM)
    gw.wait_for_event("draining")
    t0 = time.monotonic()
    gw.signal(signal.SIGTERM)
    rc = gw.wait(10)
    assert time.monotonic() - t0 < 5, "second SIGTERM did not stop the gateway at once"
    assert rc == 0, f"gateway exited {rc} on the second SIGTERM (docs/cli.md: 0)"
    assert util.closed_by_peer(live, 5)
    live.close()
    # the live connection is closed, and recorded, as cut by the stop
    ev = gw.events("conn_close", route="in1")
    assert [e["reason"] for e in ev] == ["shutdown"], ev


def test_drain_deadline_closes_stragglers(pki, gateway, port, echo_server, ctx):
    echo = echo_server()
    p = port()
    gw = gateway(make_config(pki, _routes(echo, p), name="site-b",
                             gateway={"drain_timeout": "1s"}), name="site-b")
    live = util.tls_connect(ctx, "127.0.0.1", p)
    assert util.echo_roundtrip(live, PAYLOAD) == PAYLOAD
    t0 = time.monotonic()
    gw.signal(signal.SIGTERM)
    assert gw.wait(15) == 0
    took = time.monotonic() - t0
    assert 0.7 <= took <= 6, f"drain with a 1s deadline took {took:.2f}s"
    ev = gw.wait_for_event("conn_close", route="in1")[0]
    assert ev["reason"] == "drain_deadline", ev
    live.close()


def test_sigint_drains_like_sigterm(pki, gateway, port, echo_server):
    echo = echo_server()
    p = port()
    gw = gateway(make_config(pki, _routes(echo, p), name="site-b"), name="site-b")
    gw.signal(signal.SIGINT)
    assert gw.wait(15) == 0
    assert gw.events("draining") and gw.events("stopped")


def test_sighup_new_certificate_for_new_connections_only(pki, gateway, port, echo_server, ctx):
    """A reload that swaps the server certificate (P-256 -> RSA) applies to
    new handshakes; the live connection keeps its session and keeps relaying."""
    echo = echo_server()
    p = port()
    gw = gateway(make_config(pki, _routes(echo, p), name="site-b", alg="ec"), name="site-b")
    live = util.tls_connect(ctx, "127.0.0.1", p)
    assert "OU=ec" in _subject(live)
    mark = gw.reload(make_config(pki, _routes(echo, p), name="site-b", alg="rsa"))
    gw.wait_for_log(r"event=reload result=ok generation=2\b", since=mark)
    with util.tls_connect(ctx, "127.0.0.1", p) as s:
        assert "OU=rsa" in _subject(s)
        assert util.echo_roundtrip(s, PAYLOAD) == PAYLOAD
    assert util.echo_roundtrip(live, PAYLOAD) == PAYLOAD
    live.close()


def _subject(s):
    cert = s.getpeercert()
    return ",".join(f"{k}={v}" for rdn in cert["subject"] for k, v in rdn).replace(
        "organizationalUnitName", "OU")


def test_sighup_narrowed_allow_from_applies_to_new_connections(site_pair, echo_server):
    echo = echo_server()
    a, b, a_port = site_pair(echo.addr)
    live = util.connect("127.0.0.1", a_port)
    assert util.echo_roundtrip(live, PAYLOAD) == PAYLOAD
    text = a.conf_path.read_text().replace("allow_from = 127.0.0.0/8, ::1/128",
                                           "allow_from = 127.0.0.2/32")
    assert "127.0.0.2/32" in text
    mark = a.reload(text)
    a.wait_for_log(r"event=reload result=ok generation=2\b", since=mark)
    s = util.connect("127.0.0.1", a_port)
    assert util.closed_by_peer(s, 10), "a source removed from allow_from was still relayed"
    s.close()
    a.wait_for_event("refused", since=mark, reason="source_not_allowed")
    # the connection that was admitted under the old rules keeps relaying
    assert util.echo_roundtrip(live, PAYLOAD) == PAYLOAD
    live.close()


def test_reload_storm_under_traffic(site_pair, echo_server):
    """Twenty reloads of both gateways while data streams and new
    connections come and go: nothing is dropped, nothing corrupts (ASan
    watches the snapshot reference counting)."""
    import hashlib
    import os
    import threading
    echo = echo_server()
    a, b, a_port = site_pair(echo.addr)
    block = os.urandom(1 << 16)
    s = util.connect("127.0.0.1", a_port, timeout=60)
    errors = []
    stop = threading.Event()
    blocks = [0]

    def writer():
        # stream until every reload is done, so they all overlap the traffic
        try:
            while not stop.is_set():
                s.sendall(block)
                blocks[0] += 1
            s.shutdown(socket.SHUT_WR)
        except OSError as e:
            errors.append(e)

    t = threading.Thread(target=writer)
    t.start()
    got = hashlib.sha256()
    n = [0]

    def reader():
        s.settimeout(60)
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                return
            got.update(chunk)
            n[0] += len(chunk)

    r = threading.Thread(target=reader)
    r.start()
    try:
        for i in range(20):
            for gw in (a, b):
                mark = gw.reload()
                gw.wait_for_log(rf"event=reload result=ok generation={i + 2}\b", since=mark)
            with util.connect("127.0.0.1", a_port) as c:
                msg = b"during reload %d\n" % i
                assert util.echo_roundtrip(c, msg) == msg
    finally:
        stop.set()
        t.join(120)
        r.join(120)
        s.close()
    assert not errors, errors
    assert blocks[0] > 20, "the stream ended before the reloads"
    want = hashlib.sha256()
    for _ in range(blocks[0]):
        want.update(block)
    assert n[0] == blocks[0] * len(block) and got.hexdigest() == want.hexdigest()


def test_sighup_with_missing_file_keeps_serving(pki, gateway, port, echo_server, ctx):
    echo = echo_server()
    p = port()
    gw = gateway(make_config(pki, _routes(echo, p), name="site-b"), name="site-b")
    good = gw.conf_path.read_text()
    gw.conf_path.unlink()
    mark = gw.reload()
    gw.wait_for_log(r"event=reload result=refused", since=mark)
    assert str(gw.conf_path) in gw.log()[mark:]
    with util.tls_connect(ctx, "127.0.0.1", p) as s:
        assert util.echo_roundtrip(s, PAYLOAD) == PAYLOAD
    gw.write_config(good)
    mark = gw.reload()
    gw.wait_for_log(r"event=reload result=ok generation=2\b", since=mark)
