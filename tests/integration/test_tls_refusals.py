"""TLS acceptance and refusal on an unwrap route, driven by `openssl s_client`,
and the server checks a wrap route makes on its upstream.

Each refusal must be logged as one `event=refused` line carrying the stable
reason code, and the plain service behind the route must never see the
refused client.
"""
import subprocess

import pytest

import util
from conftest import make_config

PAYLOAD = b"hello through zonegate 0123456789\n"


@pytest.fixture
def unwrap(pki, gateway, port, echo_server):
    """site-b gateway: unwrap route `in` in front of an echo server."""
    echo = echo_server()
    p = port()
    gw = gateway(make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{p}",
                                          "connect": echo.addr}}, name="site-b"),
                 name="site-b")
    return gw, p, echo


def refused(gw, reason, timeout=10):
    return gw.wait_for_event("refused", timeout=timeout, route="in", reason=reason)


@pytest.mark.parametrize("alg", ["ec", "rsa"])
def test_good_client_certificate_echoes(unwrap, pki, alg):
    gw, p, echo = unwrap
    c = util.SClient("127.0.0.1", p, pki=pki, cert=pki.cert("client", alg),
                     key=pki.key("client", alg), chain=pki.intermediate(alg))
    c.send(PAYLOAD)
    got = c.read_until(PAYLOAD, timeout=15)
    rc, out, err = c.finish()
    assert got, f"no echo through unwrap; s_client rc={rc} stderr={err[-2000:]!r}"
    ev = gw.wait_for_event("conn_close", route="in")[0]
    assert ev["tls"] == "TLSv1.3"
    assert ev["cipher"] == "TLS_AES_256_GCM_SHA384"  # cryptrec-high order
    assert "CN=client.zonegate.test" in ev["subject"]
    assert "DNS:client.zonegate.test" in ev["san"]
    assert "URI:urn:zonegate:client" in ev["san"]
    assert int(ev["bytes_in"]) == len(PAYLOAD)
    assert int(ev["bytes_out"]) == len(PAYLOAD)
    assert ev["upstream"] == echo.addr
    assert echo.connections == 1
    assert not gw.events("refused")


def test_good_client_tls12_aead(unwrap, pki):
    gw, p, echo = unwrap
    c = util.SClient("127.0.0.1", p, ["-tls1_2"], pki=pki, cert=pki.cert("client"),
                     key=pki.key("client"), chain=pki.intermediate())
    c.send(PAYLOAD)
    got = c.read_until(PAYLOAD, timeout=15)
    rc, out, err = c.finish()
    assert got, f"no echo over TLS 1.2; stderr={err[-2000:]!r}"
    ev = gw.wait_for_event("conn_close", route="in")[0]
    assert ev["tls"] == "TLSv1.2"
    assert ev["cipher"] == "ECDHE-ECDSA-AES256-GCM-SHA384"


def _assert_refused(gw, echo, out, reason):
    ev = refused(gw, reason)
    assert len(ev) == 1, ev
    assert ev[0]["peer"].startswith("127.0.0.1:")
    assert PAYLOAD not in out, "refused client got data back"
    assert echo.connections == 0, "refused client reached the service"
    # a refusal is one `refused` line and nothing else: no conn_close
    # (there was no `reason=ok` close to look for: that code is never logged)
    assert not gw.events("conn_close"), gw.events("conn_close")


def test_no_client_certificate_refused(unwrap, pki):
    gw, p, echo = unwrap
    rc, out, err = util.s_client_once("127.0.0.1", p, PAYLOAD, pki=pki)
    _assert_refused(gw, echo, out, "tls_no_client_certificate")


def test_client_certificate_from_other_ca_refused(unwrap, pki):
    gw, p, echo = unwrap
    rc, out, err = util.s_client_once("127.0.0.1", p, PAYLOAD, pki=pki,
                                      cert=pki.cert("other-client"), key=pki.key("other-client"),
                                      chain=pki.path("other-int.pem"))
    _assert_refused(gw, echo, out, "tls_untrusted_chain")


def test_tls11_refused(unwrap, pki):
    gw, p, echo = unwrap
    rc, out, err = util.s_client_once("127.0.0.1", p, PAYLOAD, pki=pki,
                                      cert=pki.cert("client"), key=pki.key("client"),
                                      chain=pki.intermediate(),
                                      args=["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"])
    assert rc != 0
    _assert_refused(gw, echo, out, "tls_version")


def test_cbc_suite_refused(unwrap, pki):
    gw, p, echo = unwrap
    rc, out, err = util.s_client_once("127.0.0.1", p, PAYLOAD, pki=pki,
                                      cert=pki.cert("client", "rsa"), key=pki.key("client", "rsa"),
                                      chain=pki.intermediate("rsa"),
                                      args=["-cipher", "AES128-SHA", "-no_tls1_3"])
    assert rc != 0
    _assert_refused(gw, echo, out, "tls_no_shared_cipher")


def test_plain_tcp_to_unwrap_refused(unwrap):
    gw, p, echo = unwrap
    s = util.connect("127.0.0.1", p)
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    assert util.closed_by_peer(s, 10)
    s.close()
    ev = gw.wait_for_event("refused", route="in")
    assert ev[0]["reason"] == "tls_not_tls", ev  # docs/operations.md: a plain-TCP client
    assert echo.connections == 0


def test_refusals_do_not_disturb_service(unwrap, pki):
    """After a burst of refused handshakes a good client is still served."""
    gw, p, echo = unwrap
    for _ in range(5):
        util.s_client_once("127.0.0.1", p, PAYLOAD, pki=pki)
    gw.wait_for_event("refused", count=5, route="in", reason="tls_no_client_certificate")
    ctx = util.tls_context(pki, pki.chain("client"), pki.key("client"))
    with util.tls_connect(ctx, "127.0.0.1", p) as s:
        assert util.echo_roundtrip(s, PAYLOAD) == PAYLOAD


# ---------------------------------------------------------------- wrap side


@pytest.mark.parametrize("b_leaf,reason", [
    ("wrongname", "tls_server_name_mismatch"),
    ("cnonly", "tls_server_name_mismatch"),  # CN matches, SAN does not: no CN fallback
    ("other-server", "tls_untrusted_chain"),
])
def test_wrap_checks_upstream_certificate(pki, gateway, port, echo_server, b_leaf, reason):
    """A wraps towards B; B presents a certificate A must not accept."""
    echo = echo_server()
    b_port, a_port = port(), port()
    b_tls = {"certificate": pki.cert(b_leaf), "key": pki.key(b_leaf),
             "chain": pki.path("other-int.pem") if b_leaf.startswith("other") else pki.intermediate(),
             "trust_anchors": pki.roots}
    gateway(make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{b_port}",
                                     "connect": echo.addr}}, name="site-b", tls=b_tls),
            name="site-b")
    a = gateway(make_config(pki, {"out": {"mode": "wrap", "listen": f"127.0.0.1:{a_port}",
                                          "connect": f"127.0.0.1:{b_port}",
                                          "server_name": "site-b.zonegate.test",
                                          "allow_from": "127.0.0.0/8"}},
                            name="site-a", leaf="site-a"), name="site-a")
    s = util.connect("127.0.0.1", a_port)
    s.sendall(PAYLOAD)
    assert util.closed_by_peer(s, 15), "wrap relayed to an upstream it must not trust"
    s.close()
    assert a.wait_for_reason(reason, route="out")
    assert echo.connections == 0


def test_session_resumption(unwrap, pki, tmp_path):
    """session_cache is on by default: a client that offers its previous
    session resumes it (no full handshake), and the log says resumed=1."""
    gw, p, echo = unwrap
    sess = str(tmp_path / "sess.pem")
    args = dict(pki=pki, cert=pki.cert("client"), key=pki.key("client"),
                chain=pki.intermediate())
    c = util.SClient("127.0.0.1", p, ["-sess_out", sess], **args)
    c.send(PAYLOAD)
    assert c.read_until(PAYLOAD, timeout=15)
    c.finish()
    c = util.SClient("127.0.0.1", p, ["-sess_in", sess], **args)
    c.send(PAYLOAD)
    assert c.read_until(PAYLOAD, timeout=15)
    rc, out, err = c.finish()
    assert b"Reused, TLSv1.3" in out, out[-3000:]
    ev = gw.wait_for_event("conn_close", count=2, route="in")
    assert [e["resumed"] for e in ev] == ["0", "1"], ev
    # a resumed session still names the client certificate it was made with
    assert "CN=client.zonegate.test" in ev[1]["subject"]


def test_wrap_server_name_as_uri_san(pki, gateway, port, echo_server):
    """server_name may name a URI SAN instead of a DNS name."""
    echo = echo_server()
    b_port, a_port = port(), port()
    gateway(make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{b_port}",
                                     "connect": echo.addr}}, name="site-b", leaf="uri"),
            name="site-b")
    a = gateway(make_config(pki, {"out": {"mode": "wrap", "listen": f"127.0.0.1:{a_port}",
                                          "connect": f"127.0.0.1:{b_port}",
                                          "server_name": "urn:zonegate:site-b",
                                          "allow_from": "127.0.0.0/8"}},
                            name="site-a", leaf="site-a"), name="site-a")
    s = util.connect("127.0.0.1", a_port)
    assert util.echo_roundtrip(s, PAYLOAD) == PAYLOAD
    s.close()
    ev = a.wait_for_event("conn_close", route="out")[0]
    assert "URI:urn:zonegate:site-b" in ev["san"], ev


def test_client_renegotiation_refused(unwrap, pki):
    """TLS 1.2 client-initiated renegotiation (s_client's `R` command) is
    refused; the gateway keeps serving."""
    gw, p, echo = unwrap
    c = util.SClient("127.0.0.1", p, ["-tls1_2"], pki=pki, cert=pki.cert("client"),
                     key=pki.key("client"), chain=pki.intermediate())
    c.send(PAYLOAD)
    assert c.read_until(PAYLOAD, timeout=15)
    c.send(b"R\n")
    # the refused renegotiation is fatal for s_client: it exits by itself
    try:
        c.proc.wait(15)
    except subprocess.TimeoutExpired:
        c.kill()
        pytest.fail("s_client still connected 15 s after asking to renegotiate")
    rc, out, err = c.finish()
    assert b"RENEGOTIATING" in err
    assert b"no renegotiation" in err, err[-2000:]
    gw.wait_for_event("conn_close", route="in")
    ctx = util.tls_context(pki, pki.chain("client"), pki.key("client"))
    with util.tls_connect(ctx, "127.0.0.1", p) as s:
        assert util.echo_roundtrip(s, PAYLOAD) == PAYLOAD


def test_no_zero_rtt(unwrap, pki, tmp_path):
    """A resumed TLS 1.3 session is not offered early data (0-RTT)."""
    gw, p, echo = unwrap
    sess = str(tmp_path / "sess.pem")
    early = tmp_path / "early.txt"
    early.write_bytes(b"EARLY\n")
    args = dict(pki=pki, cert=pki.cert("client"), key=pki.key("client"),
                chain=pki.intermediate())
    c = util.SClient("127.0.0.1", p, ["-sess_out", sess], **args)
    c.send(PAYLOAD)
    assert c.read_until(PAYLOAD, timeout=15)
    c.finish()
    c = util.SClient("127.0.0.1", p, ["-sess_in", sess, "-early_data", str(early)], **args)
    c.send(PAYLOAD)
    assert c.read_until(PAYLOAD, timeout=15)
    rc, out, err = c.finish()
    assert b"Reused, TLSv1.3" in out
    assert b"Max Early Data: 0" in out
    assert b"Early data was accepted" not in out
