"""Upstream host names.

`connect = localhost:PORT` is resolved by the main thread at load (never
by a worker); when every address of the name refuses, the client is
refused with upstream_connect_failed and the main thread resolves the name
again.
"""
import socket

import util

from conftest import make_config


def test_host_name_upstream(pki, gateway, port, echo_server):
    echo = echo_server()  # 127.0.0.1 only
    echo_port = int(echo.addr.rsplit(":", 1)[1])
    p = port()
    cfg = make_config(pki, {"out": {"mode": "wrap", "listen": f"127.0.0.1:{p}",
                                    "connect": f"localhost:{echo_port}",
                                    "server_name": "site-a.zonegate.test",
                                    "allow_from": "127.0.0.0/8"}},
                      name="site-a", leaf="site-a")
    # a wrap route needs TLS upstream: put an unwrap route in front of the echo
    b_port = port()
    cfg["route out"]["connect"] = f"localhost:{b_port}"
    cfg["route in"] = {"mode": "unwrap", "listen": f"127.0.0.1:{b_port}", "connect": echo.addr}
    gw = gateway(cfg, name="site-a")
    with socket.create_connection(("127.0.0.1", p), timeout=10) as s:
        s.sendall(b"via localhost\n")
        s.shutdown(socket.SHUT_WR)
        got = b""
        while chunk := s.recv(4096):
            got += chunk
    assert got == b"via localhost\n"
    ev = gw.wait_for_event("conn_close", route="out")[0]
    assert ev["upstream"] == f"127.0.0.1:{b_port}", ev


def test_upstream_down_on_every_address_is_refused(pki, gateway, port):
    p, dead = port(), port()
    cfg = make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{p}",
                                   "connect": f"localhost:{dead}"}}, name="site-b")
    gw = gateway(cfg, name="site-b")
    util.s_client_once("127.0.0.1", p, b"x\n", pki=pki, cert=pki.cert("client"),
                       key=pki.key("client"), chain=pki.intermediate())
    ev = gw.wait_for_event("refused", route="in", reason="upstream_connect_failed")
    assert ev
    # the main thread was asked to resolve the name again, and did (the
    # addresses did not change, so no new snapshot was published)
    gw.wait_for_event("resolve", result="unchanged")


def test_upstream_name_without_address_is_refused_upstream_unresolved(pki, gateway, port):
    """A `connect` host name with no address (RFC 6761 .invalid) does not
    stop the start; each client is refused with upstream_unresolved and the
    main thread is asked to resolve again."""
    p = port()
    cfg = make_config(pki, {"out": {"mode": "wrap", "listen": f"127.0.0.1:{p}",
                                    "connect": "zonegate-upstream.invalid:2762",
                                    "server_name": "site-b.zonegate.test",
                                    "allow_from": "127.0.0.0/8"}}, name="site-a", leaf="site-a")
    gw = gateway(cfg, name="site-a")
    gw.wait_for_event("resolve_failed", route="out", host="zonegate-upstream.invalid")
    mark = gw.mark()
    with socket.create_connection(("127.0.0.1", p), timeout=10) as s:
        s.sendall(b"nowhere\n")
        assert util.closed_by_peer(s, 10)
    ev = gw.wait_for_reason("upstream_unresolved", since=mark, route="out")
    assert ev[0]["event"] == "refused", ev
