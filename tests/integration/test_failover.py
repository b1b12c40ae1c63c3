"""Upstream pools and passive failover (issue 11).

A route's `connect` names a pool; a connection whose upstream fails before
any byte of the client's payload went through moves on to the next member
(the client never sees the failure), the failing member is held down and
its state change is a log line (event=upstream_down / upstream_up). Once a
payload byte reached an upstream it is never replayed elsewhere.

Real peers: `openssl s_server` as TLS upstreams (a wrong-identity
certificate, a stopped process), DCMTK `storescp` + `echoscu` for a DICOM
association through a pool whose primary is down, and small Python servers
for resets before and after the first byte.
"""
import os
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

import netns_util
import util

from conftest import Gateways, make_config

SERVER_NAME = "server.zonegate.test"


def _s_server(pki, port, leaf):
    """openssl s_server -rev on 127.0.0.1:port presenting `leaf`, requiring
    a client certificate from our roots."""
    p = subprocess.Popen(
        ["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-rev", "-quiet",
         "-cert", pki.cert(leaf), "-key", pki.key(leaf), "-cert_chain", pki.intermediate(),
         "-CAfile", pki.roots, "-Verify", "4"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    util.wait_port("127.0.0.1", port)
    return p


def _stop(p):
    if p.poll() is None:
        try:
            p.send_signal(signal.SIGCONT)
        except ProcessLookupError:
            pass
        p.kill()
        p.wait(10)


def _wrap_route(port, listen, members, **over):
    r = {"mode": "wrap", "listen": f"127.0.0.1:{listen}", "connect": members,
         "server_name": SERVER_NAME, "allow_from": "127.0.0.0/8", "hold_down": "1s"}
    r.update(over)
    return r


def _rev_roundtrip(listen, line=b"hello pool\n", timeout=15):
    with socket.create_connection(("127.0.0.1", listen), timeout=timeout) as s:
        s.sendall(line)
        got = b""
        while b"\n" not in got:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
    return got


def _tls_echo(pki, listen, payload):
    """One TLS client connection to an unwrap route: send, read the echo."""
    ctx = util.tls_context(pki, cert=pki.cert("client"), key=pki.key("client"),
                           chain=pki.chain("client"))
    with util.tls_connect(ctx, "127.0.0.1", listen) as s:
        return util.echo_roundtrip(s, payload)


def test_wrong_identity_primary_fails_over_to_backup(pki, gateway, port):
    """The primary presents a certificate for another name: the handshake is
    refused by policy, the member marked down with that reason, and the same
    client is served by the backup without noticing."""
    bad_p, good_p, listen = port(), port(), port()
    bad = _s_server(pki, bad_p, "wrongname")
    good = _s_server(pki, good_p, "server")
    try:
        cfg = make_config(pki, {"out": _wrap_route(port, listen,
                                                   f"127.0.0.1:{bad_p}, 127.0.0.1:{good_p} backup")})
        gw = gateway(cfg)
        assert _rev_roundtrip(listen) == b"loop olleh\n"
        down = gw.wait_for_event("upstream_down", route="out")[0]
        assert down["endpoint"] == f"127.0.0.1:{bad_p}", down
        assert down["reason"] == "tls_server_name_mismatch", down
        assert down["source"] == "passive"
        ev = gw.wait_for_event("conn_close", route="out")[0]
        assert ev["upstream"] == f"127.0.0.1:{good_p}", ev
        # held down: the next client goes straight to the backup, and no
        # second upstream_down is logged while it is held
        assert _rev_roundtrip(listen) == b"loop olleh\n"
        gw.wait_for_event("conn_close", route="out", count=2)
        assert len(gw.events("upstream_down", route="out")) == 1
        assert not gw.events("refused", route="out")
    finally:
        _stop(bad)
        _stop(good)


def test_per_member_sni_for_remote_sites(pki, gateway, port):
    """A wrap route failing over between two remote sites checks each site
    against its own sni= name (no route server_name at all)."""
    a_p, dr_p, listen = port(), port(), port()
    dr = _s_server(pki, dr_p, "site-b")
    try:
        r = _wrap_route(port, listen, f"127.0.0.1:{a_p} sni={SERVER_NAME}, "
                                      f"127.0.0.1:{dr_p} backup sni=site-b.zonegate.test")
        del r["server_name"]
        gw = gateway(make_config(pki, {"out": r}))
        # site A refuses (nothing listens): the DR site, under its own name
        assert _rev_roundtrip(listen) == b"loop olleh\n"
        ev = gw.wait_for_event("conn_close", route="out")[0]
        assert ev["upstream"] == f"127.0.0.1:{dr_p}", ev
        assert "site-b" in ev["subject"], ev
        down = gw.wait_for_event("upstream_down", route="out")[0]
        assert down["reason"] == "upstream_connect_failed", down
    finally:
        _stop(dr)


def test_stopped_primary_times_out_to_backup(pki, gateway, port):
    """A stopped primary accepts (the kernel does) but never answers: the
    TLS handshake times out and the client moves on to the backup."""
    stop_p, good_p, listen = port(), port(), port()
    stopped = _s_server(pki, stop_p, "server")
    good = _s_server(pki, good_p, "server")
    try:
        stopped.send_signal(signal.SIGSTOP)
        cfg = make_config(pki, {"out": _wrap_route(port, listen,
                                                   f"127.0.0.1:{stop_p}, 127.0.0.1:{good_p}",
                                                   handshake_timeout="1s")})
        gw = gateway(cfg)
        t0 = time.monotonic()
        assert _rev_roundtrip(listen) == b"loop olleh\n"
        assert time.monotonic() - t0 < 4
        down = gw.wait_for_event("upstream_down", route="out")[0]
        assert down["reason"] == "handshake_timeout", down
    finally:
        _stop(stopped)
        _stop(good)


def test_refused_primary_recovers(pki, gateway, port, echo_server):
    """A refusing primary: the backup serves; once the primary listens again
    and its hold-down passed, the next connection goes back to it and the
    recovery is logged (event=upstream_up)."""
    prim_p, listen = port(), port()
    backup = echo_server()
    cfg = make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{listen}",
                                   "connect": f"127.0.0.1:{prim_p}, {backup.addr} backup",
                                   "hold_down": "500ms"}})
    gw = gateway(cfg)
    assert _tls_echo(pki, listen, b"first\n") == b"first\n"
    assert gw.wait_for_event("upstream_down", route="in")[0]["endpoint"] == f"127.0.0.1:{prim_p}"
    assert gw.wait_for_event("conn_close", route="in")[0]["upstream"] == backup.addr
    primary = echo_server(port=prim_p)
    time.sleep(0.6)  # the hold-down (500ms) passes
    assert _tls_echo(pki, listen, b"second\n") == b"second\n"
    up = gw.wait_for_event("upstream_up", route="in")[0]
    assert up["endpoint"] == f"127.0.0.1:{prim_p}", up
    ev = gw.wait_for_event("conn_close", route="in", count=2)[1]
    assert ev["upstream"] == f"127.0.0.1:{prim_p}", ev
    assert primary.connections == 1


class _Resetter:
    """Accepts, optionally reads `read_first` bytes, then resets (RST)."""

    def __init__(self, read_first=0):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.read_first = read_first
        self.accepted = 0
        self.got = b""
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            if self.read_first:
                c.settimeout(10)
                try:
                    self.got += c.recv(self.read_first)
                except OSError:
                    pass
            util.rst_close(c)

    def close(self):
        self.sock.close()


def test_reset_before_first_byte_moves_on(pki, gateway, port, echo_server):
    """An upstream that accepts and resets before any byte went either way
    is a failed attempt like a refused connect: the client never sees it."""
    rst = _Resetter()
    backup = echo_server()
    listen = port()
    try:
        cfg = make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{listen}",
                                       "connect": f"127.0.0.1:{rst.port}, {backup.addr}"}})
        gw = gateway(cfg)
        ctx = util.tls_context(pki, cert=pki.cert("client"), key=pki.key("client"),
                               chain=pki.chain("client"))
        with util.tls_connect(ctx, "127.0.0.1", listen) as s:
            # the client speaks only once the reset has had time to arrive
            gw.wait_for_event("upstream_down", route="in")
            assert util.echo_roundtrip(s, b"after the reset\n") == b"after the reset\n"
        down = gw.events("upstream_down", route="in")[0]
        assert down["reason"] == "upstream_io_error", down
        assert rst.accepted == 1
        ev = gw.wait_for_event("conn_close", route="in")[0]
        assert ev["upstream"] == backup.addr, ev
    finally:
        rst.close()


def test_no_replay_after_payload(pki, gateway, port, echo_server):
    """Once the client's payload reached an upstream, a failure there is
    never replayed on another member (no message delivered twice): the
    client is closed with upstream_lost_after_payload."""
    rst = _Resetter(read_first=5)
    backup = echo_server()
    listen = port()
    try:
        cfg = make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{listen}",
                                       "connect": f"127.0.0.1:{rst.port}, {backup.addr}"}})
        gw = gateway(cfg)
        rc, out, _ = util.s_client_once("127.0.0.1", listen, b"C-STORE\n", pki=pki,
                                        cert=pki.cert("client"), key=pki.key("client"),
                                        chain=pki.intermediate())
        ev = gw.wait_for_event("conn_close", route="in")[0]
        assert ev["reason"] == "upstream_lost_after_payload", ev
        assert rst.got.startswith(b"C-STO")
        assert backup.connections == 0
        assert b"C-STORE" not in out
    finally:
        rst.close()


@pytest.mark.skipif(not shutil.which("storescp") or not shutil.which("echoscu"),
                    reason="needs DCMTK (scripts/deps.sh installs dcmtk)")
def test_dicom_echo_through_pool_with_dead_primary(pki, gateway, port, tmp_path):
    """DCMTK end to end: echoscu -> wrap route whose primary refuses ->
    backup (this gateway's own unwrap route) -> storescp. The association
    succeeds and the primary is reported down."""
    scp_p, in_p, out_p, dead = port(), port(), port(), port()
    scp = subprocess.Popen(["storescp", "-od", str(tmp_path), str(scp_p)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        util.wait_port("127.0.0.1", scp_p)
        cfg = make_config(pki, {
            "out": {"mode": "wrap", "listen": f"127.0.0.1:{out_p}",
                    "connect": f"127.0.0.1:{dead}, 127.0.0.1:{in_p} backup",
                    "server_name": "site-a.zonegate.test", "allow_from": "127.0.0.0/8"},
            "in": {"mode": "unwrap", "listen": f"127.0.0.1:{in_p}",
                   "connect": f"127.0.0.1:{scp_p}"}}, name="site-a", leaf="site-a")
        gw = gateway(cfg, name="site-a")
        r = subprocess.run(["echoscu", "-aet", "MODALITY", "-aec", "STORESCP", "127.0.0.1",
                            str(out_p)], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        down = gw.wait_for_event("upstream_down", route="out")[0]
        assert down["endpoint"] == f"127.0.0.1:{dead}"
        assert gw.wait_for_event("conn_close", route="out")[0]["upstream"] == f"127.0.0.1:{in_p}"
    finally:
        scp.kill()
        scp.wait(10)


def test_check_prints_the_pool(pki, zonegate_check, port):
    cfg = make_config(pki, {"out": _wrap_route(
        port, port(), f"127.0.0.1:{port()} weight=3, localhost:{port()} backup sni=site-b.zonegate.test",
        balance="round-robin")})
    r = zonegate_check(cfg)
    assert r.returncode == 0, r.stderr
    assert "balance = round-robin" in r.stdout
    assert "# route out: pool of 2, balance round-robin, health_check none" in r.stdout
    assert f"server_name {SERVER_NAME} resolves to 127.0.0.1:" in r.stdout
    assert "backup weight 1 server_name site-b.zonegate.test resolves to" in r.stdout


def test_check_refuses_an_unresolvable_member(pki, zonegate_check, port):
    cfg = make_config(pki, {"out": _wrap_route(
        port, port(), f"127.0.0.1:{port()}, no-such-host.invalid:104 backup")})
    r = zonegate_check(cfg)
    assert r.returncode == 3
    assert ": connect: route out: no-such-host.invalid:104:" in r.stderr, r.stderr
    assert "does not resolve now" in r.stderr


@pytest.fixture
def netns():
    ok, why = netns_util.available()
    if not ok or not shutil.which("nft"):
        pytest.skip(why if not ok else "needs nft (scripts/deps.sh installs nftables)")
    pair = netns_util.NetnsPair([REMOTE_V4])
    pair.create()
    yield pair
    pair.destroy()


REMOTE_V4 = "198.51.100.2"


def test_blackholed_primary_times_out_to_backup(request, tmp_path, zonegate_bin, pki, netns):
    """The primary silently drops packets (an nftables drop rule in the
    namespace the test made): the connect times out after connect_timeout,
    the member is held down, the client is served by the backup, and the
    next client goes straight to the backup."""
    primary = netns_util.EchoBackend(
        netns_util.run_in_netns(netns.cl, lambda: _listener(REMOTE_V4)))
    backup = netns_util.EchoBackend(netns.gw_listen("127.0.0.1"))
    listen = util.free_port()
    cfg = make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{listen}",
                                   "connect": f"{REMOTE_V4}:{primary.port}, "
                                              f"127.0.0.1:{backup.port} backup",
                                   "connect_timeout": "1s"}})
    wrapper = netns.wrapper(tmp_path / "zonegate-in-netns", zonegate_bin)
    gw = Gateways(wrapper, tmp_path, request.node)(cfg, "gw")
    ctx = util.tls_context(pki, cert=pki.cert("client"), key=pki.key("client"),
                           chain=pki.chain("client"))

    def roundtrip(payload):
        raw = netns_util.run_in_netns(
            netns.gw, lambda: socket.create_connection(("127.0.0.1", listen), timeout=10))
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            return util.echo_roundtrip(s, payload)

    try:
        assert roundtrip(b"before\n") == b"before\n"
        assert gw.wait_for_event("conn_close", route="in")[0]["upstream"].startswith(REMOTE_V4)
        subprocess.run(netns.exec_prefix(netns.cl) + [
            "nft", f"add table inet zgbh; add chain inet zgbh in {{ type filter hook input "
                   f"priority 0; }}; add rule inet zgbh in tcp dport {primary.port} drop"],
            check=True)
        t0 = time.monotonic()
        assert roundtrip(b"during\n") == b"during\n"
        assert 0.9 < time.monotonic() - t0 < 5
        down = gw.wait_for_event("upstream_down", route="in")[0]
        assert down["reason"] == "upstream_connect_timeout", down
        t0 = time.monotonic()
        assert roundtrip(b"held\n") == b"held\n"
        assert time.monotonic() - t0 < 0.9  # straight to the backup
        closes = gw.wait_for_event("conn_close", route="in", count=3)
        assert closes[2]["upstream"] == f"127.0.0.1:{backup.port}", closes[2]
    finally:
        primary.stop()
        backup.stop()


def _listener(host):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, 0))
    s.listen(64)
    return s


def test_round_robin_spreads_by_weight(pki, gateway, port, echo_server):
    """balance = round-robin: primaries in turn by weight; the backup idle."""
    a, b, c = echo_server(), echo_server(), echo_server()
    listen = port()
    cfg = make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{listen}",
                                   "connect": f"{a.addr} weight=2, {b.addr}, {c.addr} backup",
                                   "balance": "round-robin"}}, gateway={"workers": 1})
    gateway(cfg)
    for i in range(9):
        assert _tls_echo(pki, listen, b"rr\n") == b"rr\n"
    assert (a.connections, b.connections, c.connections) == (6, 3, 0)


def test_endpoint_state_survives_reload(pki, gateway, port, echo_server):
    """Endpoint health lives in the gateway, keyed by route and endpoint:
    after a reload the held-down primary stays held (no new upstream_down,
    the next client goes straight to the backup)."""
    dead, listen = port(), port()
    backup = echo_server()
    cfg = make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{listen}",
                                   "connect": f"127.0.0.1:{dead}, {backup.addr}",
                                   "hold_down": "1m"}})
    gw = gateway(cfg)
    assert _tls_echo(pki, listen, b"one\n") == b"one\n"
    gw.wait_for_event("upstream_down", route="in")
    primary = echo_server(port=dead)  # it would answer now, but is held down
    cfg["route in"]["idle_timeout"] = "30s"
    gw.reload(cfg)
    gw.wait_for_event("reload", result="ok")
    assert _tls_echo(pki, listen, b"two\n") == b"two\n"
    ev = gw.wait_for_event("conn_close", route="in", count=2)[1]
    assert ev["upstream"] == backup.addr, ev
    assert primary.connections == 0
    assert len(gw.events("upstream_down")) == 1


def test_endpoint_counters_in_metrics(pki, gateway, port, echo_server):
    """The per-endpoint health is summed at scrape time by the admin
    listener's /metrics: state, connections, failures by kind."""
    from test_metrics import http_get, metric

    dead, listen, admin = port(), port(), port()
    backup = echo_server()
    cfg = make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{listen}",
                                   "connect": f"127.0.0.1:{dead}, {backup.addr} backup"}})
    cfg["admin"] = {"listen": f"127.0.0.1:{admin}"}
    gw = gateway(cfg)
    gw.wait_for_log(r"event=admin_listening")
    assert _tls_echo(pki, listen, b"count me\n") == b"count me\n"
    gw.wait_for_event("conn_close", route="in")
    status, text = http_get(admin, "/metrics")
    assert status == 200
    d, b = f"127.0.0.1:{dead}", backup.addr
    assert metric(text, "zonegate_upstream_up", route="in", endpoint=d) == 0
    assert metric(text, "zonegate_upstream_up", route="in", endpoint=b) == 1
    assert metric(text, "zonegate_upstream_failures_total", endpoint=d, kind="refused") == 1
    assert metric(text, "zonegate_upstream_failures_total", endpoint=b, kind="refused") == 0
    assert metric(text, "zonegate_upstream_connections_total", endpoint=b) == 1
    assert metric(text, "zonegate_upstream_connections_active", endpoint=b) == 0
    assert metric(text, "zonegate_upstream_last_change_timestamp_seconds", endpoint=d) > 0
    if shutil.which("promtool"):
        r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                           text=True)
        assert r.returncode == 0, r.stdout + r.stderr
