"""Certificate policy on the wire: every certificate of the policy PKI
(tests/pki/mkpki-policy.sh) is presented to the gateway in both directions,
and the gateway must accept the compliant ones and refuse each violation with
the reason code of the rule it breaks.

- unwrap: `openssl s_client` presents the certificate as a client certificate
- wrap:   `openssl s_server` presents it as the upstream's server certificate
- sslscan against an unwrap route: offered versions and suites are exactly the
  profile's.
"""
import re
import shutil
import subprocess

import pytest

import policy_util
import util
from conftest import gateway_section

PAYLOAD = b"policy test payload 0123456789\n"

# Where TLS itself cannot carry a certificate, the handshake fails before any
# rule sees it; the refusal is still logged, with the TLS-level reason.
# wrap: a server with a secp256k1/brainpool key cannot sign with any group our
# ClientHello offers, and a DSA server key matches no suite of any profile.
WRAP_TLS_LEVEL = {
    "bad-secp256k1": {"tls_no_shared_cipher", "tls_handshake_failed", "tls_peer_alert"},
    "bad-brainpool": {"tls_no_shared_cipher", "tls_handshake_failed", "tls_peer_alert"},
    "bad-dsa": {"tls_no_shared_cipher", "tls_handshake_failed", "tls_peer_alert"},
    # a v1 certificate has no extensions, hence no SAN: OpenSSL's host check
    # fails it before the rules run
    "bad-v1": {"cert_not_v3", "tls_server_name_mismatch"},
}
# unwrap: a DSA client key has no signature algorithm in any profile, so the
# client sends no certificate at all.
UNWRAP_TLS_LEVEL = {
    "bad-dsa": {"tls_no_client_certificate", "tls_handshake_failed", "tls_peer_alert"},
}


@pytest.fixture(scope="session")
def ppki(tmp_path_factory):
    return policy_util.make_pki(tmp_path_factory.mktemp("policy-pki"))


def entries():
    """Manifest rows as the script declares them (`leaf NAME KEY ISSUER EXT
    REASON TLS ...`), read without running it, for parametrize."""
    rows = re.findall(r"^leaf (\S+) \S+ \S+ \S+ (\S+) (\S+)", policy_util.SCRIPT.read_text(), re.M)
    assert rows, "no leaf rows in mkpki-policy.sh"
    return rows


ENTRIES = entries()
IDS = [e[0] for e in ENTRIES]


def config(ppki, routes, leaf="ok-p256", tls=None):
    cfg = {"gateway": gateway_section("policy"), "tls": ppki.tls(leaf, **(tls or {}))}
    for name, r in routes.items():
        cfg[f"route {name}"] = r
    return cfg


@pytest.fixture(scope="module")
def unwrap_gw(ppki, tmp_path_factory, zonegate_bin):
    """One gateway for the whole module: unwrap route `in` before an echo server."""
    from conftest import Gateway, alloc_port
    echo = util.EchoServer().start()
    p = alloc_port()
    work = tmp_path_factory.mktemp("policy-unwrap")
    gw = Gateway(zonegate_bin, work, "policy-unwrap",
                 config(ppki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{p}",
                                      "connect": echo.addr}}))
    gw.start()
    yield gw, p, echo
    gw.stop()
    echo.stop()


@pytest.mark.parametrize("name,reason,tls", ENTRIES, ids=IDS)
def test_unwrap_client_certificate(unwrap_gw, ppki, name, reason, tls):
    gw, p, echo = unwrap_gw
    mark = gw.mark()
    before = echo.connections
    c = util.SClient("127.0.0.1", p, policy_util.PEER_WEAK + policy_util.tls_args(tls),
                     ca=ppki.anchor, cert=ppki.cert(name), key=ppki.key(name),
                     chain=ppki.intermediates(name))
    try:
        c.send(PAYLOAD)
    except BrokenPipeError:
        pass
    if reason == "ok":
        got = c.read_until(PAYLOAD, timeout=15)
        rc, out, err = c.finish()
        assert got, f"{name} refused: {gw.events('refused', since=mark)} {err[-800:]!r}"
        assert not gw.events("refused", since=mark)
        return
    rc, out, err = c.finish()
    want = UNWRAP_TLS_LEVEL.get(name, {reason})
    ev = util.wait_until(lambda: gw.events("refused", since=mark), 10, what=f"refusal of {name}")
    assert len(ev) == 1, ev
    assert ev[0]["reason"] in want, f"{name}: {ev[0]} want {want}"
    assert PAYLOAD not in out
    assert echo.connections == before, f"{name} reached the service"


@pytest.mark.parametrize("name,reason,tls", ENTRIES, ids=IDS)
def test_wrap_server_certificate(ppki, gateway, port, name, reason, tls):
    up = port()
    s = policy_util.SServer(ppki, name, up, policy_util.tls_args(tls))
    try:
        a = port()
        gw = gateway(config(ppki, {"out": {"mode": "wrap", "listen": f"127.0.0.1:{a}",
                                           "connect": f"127.0.0.1:{up}",
                                           "server_name": "policy.zonegate.test",
                                           "allow_from": "127.0.0.0/8"}}), name="policy-wrap")
        mark = gw.mark()
        sock = util.connect("127.0.0.1", a)
        sock.sendall(PAYLOAD)
        if reason == "ok":
            util.wait_until(lambda: PAYLOAD in s.output(), 15,
                            what=f"payload through wrap to a server presenting {name}")
            sock.close()
            assert not gw.events("refused", since=mark)
            return
        assert util.closed_by_peer(sock, 15), f"wrap kept a connection to {name}"
        sock.close()
        want = WRAP_TLS_LEVEL.get(name, {reason})
        ev = util.wait_until(lambda: gw.events("refused", since=mark) or
                             [e for e in gw.events("conn_close", since=mark)
                              if e.get("reason") != "ok"], 10, what=f"refusal of {name}")
        assert ev[0]["reason"] in want, f"{name}: {ev[0]} want {want}"
        assert PAYLOAD not in s.output()
    finally:
        s.stop()


# ---------------------------------------------------------------- scanning

def _zonegate_profile_suites(zonegate_bin, profile):
    out = subprocess.run([zonegate_bin, "profiles", profile], capture_output=True, text=True,
                         check=True).stdout
    suites = {"TLSv1.3": [], "TLSv1.2": []}
    for line in out.splitlines():
        m = re.match(r"\s+(TLSv1\.[23])\s+(\S+)", line)
        if m:
            suites[m.group(1)].append(m.group(2))
    return suites


@pytest.mark.skipif(shutil.which("sslscan") is None, reason="sslscan not installed")
@pytest.mark.parametrize("leaf,auth", [("ok-p256", "ECDSA"), ("ok-rsa2048", "RSA")])
def test_sslscan_offers_exactly_the_profile(ppki, gateway, port, echo_server, tmp_path,
                                          zonegate_bin, leaf, auth):
    """An unwrap route presenting an ECDSA or RSA certificate offers TLS 1.2
    and 1.3 only, and exactly the profile's suites for that key, in the
    profile's order."""
    # sslscan completes TLS 1.2 handshakes to see a suite accepted, so it needs
    # a client certificate the route accepts; it sends the leaf alone, so the
    # gateway gets the intermediate with its anchors to build the chain
    anchors = tmp_path / "anchors.pem"
    anchors.write_text(open(ppki.anchor).read() + open(ppki.root / "int.pem").read())
    p = port()
    gateway(config(ppki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{p}",
                                 "connect": echo_server().addr}}, leaf=leaf,
                   tls={"trust_anchors": str(anchors)}), name="policy-scan")
    r = subprocess.run(["sslscan", "--no-colour", "--no-heartbleed", "--no-renegotiation",
                        "--no-compression", "--no-fallback", "--no-groups", "--no-check-certificate",
                        f"--certs={ppki.chain('ok-p256')}", f"--pk={ppki.key('ok-p256')}",
                        f"127.0.0.1:{p}"], capture_output=True, text=True, timeout=300)
    out = r.stdout
    print(out)  # shown with -rP; the scan is the evidence
    versions = dict(re.findall(r"^(SSLv2|SSLv3|TLSv1\.[0-3])\s+(enabled|disabled)", out, re.M))
    assert versions.get("TLSv1.3") == "enabled", out
    assert versions.get("TLSv1.2") == "enabled", out
    for v in ("SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1"):
        assert versions.get(v, "disabled") == "disabled", f"{v} offered:\n{out}"
    offered = {"TLSv1.3": [], "TLSv1.2": []}
    for ver, suite in re.findall(r"^(?:Preferred|Accepted)\s+(TLSv1\.[23])\s+\d+ bits\s+(\S+)",
                                 out, re.M):
        offered[ver].append(suite)
    want = _zonegate_profile_suites(zonegate_bin, "cryptrec-high")
    # sslscan lists suites in the server's preference order (server order is on)
    assert offered["TLSv1.3"] == want["TLSv1.3"], out
    want12 = [s for s in want["TLSv1.2"] if ("-ECDSA-" in s) == (auth == "ECDSA")]
    assert offered["TLSv1.2"] == want12, out
