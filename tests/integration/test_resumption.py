"""Session resumption on both hops of wrap -> unwrap.

Site A (wrap) keeps its newest client session per worker and route, so its
next connection to site B resumes: both close lines say resumed=1 and
chain=resumed. A reload of A starts with no session (the tag of the new
configuration differs), so the first connection after it is verified in
full again.
"""
import socket

import util


def _through(a_port, data):
    with socket.create_connection(("127.0.0.1", a_port), timeout=10) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    assert got == data


def _echo_counting_tickets(pki, p, args, msg):
    """One openssl s_client connection to port @p with @args that echoes
    @msg; returns how many TLS 1.3 tickets it was sent."""
    c = util.SClient("127.0.0.1", p, args, pki=pki,
                     cert=pki.cert("client"), key=pki.key("client"), chain=pki.intermediate())
    c.send(msg)
    got = c.read_until(msg, timeout=15)
    rc, out, err = c.finish()
    assert got, err[-1500:]
    text = out if isinstance(out, str) else out.decode(errors="replace")
    return text.count("New Session Ticket arrived")


def test_wrap_resumes_to_unwrap_and_reload_forgets(site_pair, echo_server):
    echo = echo_server()
    a, b, a_port = site_pair(echo.addr, a_gw={"workers": 1}, b_gw={"workers": 1})
    for i in range(4):
        _through(a_port, b"resume me %d\n" % i)
    a_closes = a.wait_for_event("conn_close", route="out", count=4)
    b_closes = b.wait_for_event("conn_close", route="in", count=4)
    assert a_closes[0]["resumed"] == "0" and a_closes[0]["chain"] == "verified"
    assert [e["resumed"] for e in a_closes[1:]] == ["1", "1", "1"], a_closes
    assert all(e["chain"] == "resumed" for e in b_closes[1:]), b_closes
    assert all(e["subject"].startswith("CN=site-b") for e in a_closes)

    mark = a.reload()
    a.wait_for_event("reload", since=mark, result="ok")
    _through(a_port, b"after reload\n")
    ev = a.wait_for_event("conn_close", since=mark, route="out")[0]
    assert ev["resumed"] == "0", "a session outlived the configuration that verified it"
    assert ev["chain"] == "verified"


import pytest  # noqa: E402

from conftest import make_config  # noqa: E402


@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
def test_server_tickets_when_enabled(pki, gateway, port, echo_server, tmp_path, version):
    """session_tickets = on: an openssl client resumes with its ticket; the
    ticket is sealed with the route's rotating key ring."""
    echo = echo_server()
    p = port()
    cfg = make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{p}",
                                   "connect": echo.addr}},
                      name="site-b", tls={"session_tickets": "on", "session_cache": "off"})
    gw = gateway(cfg, name="site-b")
    sess = tmp_path / "sess.pem"
    for flag in ("-sess_out", "-sess_in"):
        c = util.SClient("127.0.0.1", p, [version, flag, str(sess)], pki=pki,
                         cert=pki.cert("client"), key=pki.key("client"), chain=pki.intermediate())
        c.send(b"ticket\n")
        got = c.read_until(b"ticket\n", timeout=15)
        rc, out, err = c.finish()
        assert got, err[-1500:]
    closes = gw.wait_for_event("conn_close", route="in", count=2)
    assert [e["resumed"] for e in closes] == ["0", "1"], closes
    assert closes[1]["chain"] == "resumed"


def test_tls13_ticket_resumption_gets_a_new_ticket(pki, gateway, port, echo_server, tmp_path):
    """session_tickets = on, TLS 1.3: a resumed connection is sent a new
    ticket, so a client that uses each ticket once (RFC 8446 C.4) resumes
    every time; OpenSSL sent none unless the ticket callback asked it to
    renew, and such a client did a full handshake every other time."""
    echo = echo_server()
    p = port()
    cfg = make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{p}",
                                   "connect": echo.addr}},
                      name="site-b", tls={"session_tickets": "on", "session_cache": "off"})
    gw = gateway(cfg, name="site-b")
    tickets = []
    for i in range(3):
        args = ["-tls1_3", "-sess_out", str(tmp_path / f"s{i}.pem")]
        if i:
            args += ["-sess_in", str(tmp_path / f"s{i - 1}.pem")]
        tickets.append(_echo_counting_tickets(pki, p, args, b"renew\n"))
    closes = gw.wait_for_event("conn_close", route="in", count=3)
    assert [e["resumed"] for e in closes] == ["0", "1", "1"], closes
    # a full handshake gets OpenSSL's tickets; each resumption one new one
    assert tickets[0] >= 1 and tickets[1:] == [1, 1], tickets


def test_cache_issues_one_ticket_per_handshake(pki, gateway, port, echo_server, tmp_path):
    """Server cache on, tickets off (the defaults), TLS 1.3: one stateful
    ticket per handshake, not OpenSSL's two (each is a session the cache
    holds, issue 17), and the client still resumes with it."""
    echo = echo_server()
    p = port()
    cfg = make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{p}",
                                   "connect": echo.addr}}, name="site-b")
    gw = gateway(cfg, name="site-b")
    sess = tmp_path / "sess.pem"
    tickets = [_echo_counting_tickets(pki, p, ["-tls1_3", flag, str(sess)], b"one ticket\n")
               for flag in ("-sess_out", "-sess_in")]
    closes = gw.wait_for_event("conn_close", route="in", count=2)
    assert [e["resumed"] for e in closes] == ["0", "1"], closes
    assert tickets == [1, 1], tickets
