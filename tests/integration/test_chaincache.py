"""The verified-chain cache never outlives the rules it was verified under.

A returning client's chain is served from the worker's cache (`chain=cached`
in its close line); once a reload publishes a CRL revoking that certificate,
the same chain is refused with `cert_revoked` although it was cached a moment
before, and a different, valid client is still served.
"""
import shutil

import util
from conftest import make_config

PAYLOAD = b"cached chain check\n"


def _echo_once(pki, p, leaf):
    c = util.SClient("127.0.0.1", p, pki=pki, cert=pki.cert(leaf), key=pki.key(leaf),
                     chain=pki.intermediate())
    c.send(PAYLOAD)
    got = c.read_until(PAYLOAD, timeout=15)
    rc, out, err = c.finish()
    assert got, f"{leaf}: no echo; s_client rc={rc} stderr={err[-1500:]!r}"


def test_cached_chain_refused_after_revocation(pki, gateway, port, echo_server, tmp_path):
    echo = echo_server()
    p = port()
    crl = tmp_path / "crl.pem"
    shutil.copy(pki.path("crl-empty.pem"), crl)
    cfg = make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{p}",
                                   "connect": echo.addr}},
                      name="site-b", gateway={"workers": 1}, tls={"crl": str(crl)})
    gw = gateway(cfg, name="site-b")

    # first time verified in full, then from the cache
    for _ in range(3):
        _echo_once(pki, p, "revoked")
    closes = gw.wait_for_event("conn_close", route="in", count=3)
    chains = [e["chain"] for e in closes]
    assert chains[0] == "verified", chains
    assert "cached" in chains[1:], chains

    # publish a CRL that revokes it; the reload builds new contexts
    shutil.copy(pki.path("crl-revoked.pem"), crl)
    mark = gw.reload()
    gw.wait_for_event("reload", since=mark, result="ok")

    rc, out, err = util.s_client_once("127.0.0.1", p, PAYLOAD, pki=pki, cert=pki.cert("revoked"),
                                      key=pki.key("revoked"), chain=pki.intermediate())
    ev = gw.wait_for_event("refused", since=mark, route="in", reason="cert_revoked")
    assert ev, "a cached chain outlived the CRL that revoked it"
    assert PAYLOAD not in out

    # others are still served, and their chains verified afresh
    _echo_once(pki, p, "client")
    last = gw.wait_for_event("conn_close", since=mark, route="in")[-1]
    assert last["chain"] == "verified"


def test_live_connection_closed_when_reload_revokes_it(pki, gateway, port, echo_server, tmp_path):
    """A CRL published while a client is connected closes that connection
    after the grace period (and only that one)."""
    echo = echo_server()
    p = port()
    crl = tmp_path / "crl.pem"
    shutil.copy(pki.path("crl-empty.pem"), crl)
    cfg = make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{p}",
                                   "connect": echo.addr}},
                      name="site-b", tls={"crl": str(crl)})
    cfg["directory"] = {"grace_period": "1s"}
    gw = gateway(cfg, name="site-b")
    bad = util.SClient("127.0.0.1", p, pki=pki, cert=pki.cert("revoked"), key=pki.key("revoked"),
                       chain=pki.intermediate())
    good = util.SClient("127.0.0.1", p, pki=pki, cert=pki.cert("client"), key=pki.key("client"),
                        chain=pki.intermediate())
    try:
        for c in (bad, good):
            c.send(PAYLOAD)
            assert c.read_until(PAYLOAD, timeout=15)
        shutil.copy(pki.path("crl-revoked.pem"), crl)
        mark = gw.reload()
        gw.wait_for_event("reload", since=mark, result="ok")
        rev = gw.wait_for_event("revoked", since=mark, route="in", reason="cert_revoked")
        assert len(rev) == 1 and "revoked by a CRL" in rev[0]["detail"]
        closed = gw.wait_for_event("conn_close", since=mark, route="in", reason="cert_revoked")
        assert "CN=revoked" in closed[0]["subject"]
        # the valid client is untouched and still relays
        good.send(PAYLOAD)
        assert good.read_until(PAYLOAD * 2, timeout=15)
    finally:
        bad.finish()
        good.finish()
