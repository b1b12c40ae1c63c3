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
import subprocess

import pytest

import policy_util
import util
from conftest import gateway_section

PAYLOAD = b"policy test payload 0123456789\n"

# Where TLS itself cannot carry a certificate, the handshake fails before any
# rule sees it; the refusal is still logged, with the one TLS-level reason
# docs/operations.md gives for it.
# wrap: a server with a secp256k1/brainpool key cannot sign with any group our
# ClientHello offers, and a DSA server key matches no suite of any profile:
# the server gives up with a handshake_failure alert (`tls_peer_alert`).
# (A v1 certificate has no SAN, so OpenSSL's host check fails first, but the
# policy names the version, as its rule order says: `cert_not_v3`.)
WRAP_TLS_LEVEL = {
    "bad-secp256k1": "tls_peer_alert",
    "bad-brainpool": "tls_peer_alert",
    "bad-dsa": "tls_peer_alert",
}
# unwrap: a DSA client key has no signature algorithm in any profile, so the
# client sends no certificate at all.
UNWRAP_TLS_LEVEL = {
    "bad-dsa": "tls_no_client_certificate",
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


def config(ppki, routes, leaf="ok-p256", tls=None, gateway=None):
    cfg = {"gateway": gateway_section("policy", **(gateway or {})),
           "tls": ppki.tls(leaf, **(tls or {}))}
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
    want = UNWRAP_TLS_LEVEL.get(name, reason)
    ev = util.wait_until(lambda: gw.events("refused", since=mark), 10, what=f"refusal of {name}")
    assert len(ev) == 1, ev
    assert ev[0]["reason"] == want, f"{name}: {ev[0]} want {want}"
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
        want = WRAP_TLS_LEVEL.get(name, reason)
        ev = util.wait_until(lambda: gw.events("refused", since=mark) or
                             [e for e in gw.events("conn_close", since=mark)
                              if e.get("reason") != "ok"], 10, what=f"refusal of {name}")
        assert ev[0]["reason"] == want, f"{name}: {ev[0]} want {want}"
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


@pytest.mark.skipif(not util.runs("sslscan", "--version"), reason="sslscan does not run")
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


# ---------------------------------------------------------------- start-up and settings

def _unwrap_route(p, echo, **over):
    r = {"mode": "unwrap", "listen": f"127.0.0.1:{p}", "connect": echo}
    r.update(over)
    return r


@pytest.mark.parametrize("over,needle", [
    ({"min_version": "1.3", "tls13_suites": "TLS_AES_256_GCM_SHA384"}, None),
    ({"tls12_ciphers": "AES128-SHA"}, "tls12_ciphers: AES128-SHA is not in profile"),
    ({"tls13_suites": "TLS_AES_128_GCM_SHA256:TLS_NULL"}, "TLS_NULL is not in profile"),
    ({"groups": "secp256k1"}, "groups: secp256k1 is not in profile"),
    ({"sigalgs": "RSA+SHA1"}, "sigalgs: RSA+SHA1 is not in profile"),
])
def test_route_may_narrow_never_widen(ppki, zonegate_check, port, over, needle):
    cp = zonegate_check(config(ppki, {"in": _unwrap_route(port(), "127.0.0.1:9", **over)}))
    out = cp.stdout + cp.stderr
    if needle is None:
        assert cp.returncode == 0, out
    else:
        assert cp.returncode == 3, out
        assert needle in out, out


@pytest.mark.parametrize("leaf,rule", [
    ("bad-rsa1024", "cert_weak_rsa_key"),
    ("bad-sha1", "cert_weak_signature_hash"),
    ("bad-issuer-self-signed", "cert_issuer_self_signed"),
    ("bad-leaf-ca", "cert_leaf_is_ca"),
    ("bad-expired", "cert_expired"),
])
def test_own_certificate_must_pass_the_rules(ppki, zonegate_check, port, leaf, rule):
    """zonegate check (and therefore run) refuses our own certificate by rule."""
    cp = zonegate_check(config(ppki, {"in": _unwrap_route(port(), "127.0.0.1:9")}, leaf=leaf))
    out = cp.stdout + cp.stderr
    assert cp.returncode == 3, out
    assert f"breaks rule {rule}" in out, out


def test_own_certificate_needs_eku_for_its_role(ppki, zonegate_check, port, tmp_path):
    """A wrap route presents our certificate as a TLS client: it needs clientAuth."""
    cp = zonegate_check(config(ppki, {"out": {"mode": "wrap", "listen": f"127.0.0.1:{port()}",
                                              "connect": "127.0.0.1:9",
                                              "server_name": "policy.zonegate.test",
                                              "allow_from": "127.0.0.0/8"}}, leaf="bad-eku"))
    assert cp.returncode == 3
    assert "as client certificate) breaks rule cert_eku_missing" in cp.stdout + cp.stderr


def test_narrowed_route_offers_only_its_subset(ppki, gateway, port, echo_server):
    p = port()
    gw = gateway(config(ppki, {"in": _unwrap_route(p, echo_server().addr, min_version="1.3",
                                                   tls13_suites="TLS_AES_128_GCM_SHA256")}),
                 name="policy-narrow")
    mark = gw.mark()
    c = util.SClient("127.0.0.1", p, ["-tls1_2"], ca=ppki.anchor, cert=ppki.cert("ok-p256"),
                     key=ppki.key("ok-p256"), chain=ppki.intermediates("ok-p256"))
    c.finish()
    ev = util.wait_until(lambda: gw.events("refused", since=mark), 10, what="TLS 1.2 refusal")
    assert ev[0]["reason"] == "tls_version", ev
    mark = gw.mark()
    c = util.SClient("127.0.0.1", p, ["-ciphersuites", "TLS_AES_256_GCM_SHA384"], ca=ppki.anchor,
                     cert=ppki.cert("ok-p256"), key=ppki.key("ok-p256"),
                     chain=ppki.intermediates("ok-p256"))
    c.finish()
    ev = util.wait_until(lambda: gw.events("refused", since=mark), 10, what="suite refusal")
    assert ev[0]["reason"] == "tls_no_shared_cipher", ev
    c = util.SClient("127.0.0.1", p, [], ca=ppki.anchor, cert=ppki.cert("ok-p256"),
                     key=ppki.key("ok-p256"), chain=ppki.intermediates("ok-p256"))
    c.send(PAYLOAD)
    assert c.read_until(PAYLOAD, 15)
    c.finish()
    ev = gw.wait_for_event("conn_close", route="in")[0]
    assert ev["tls"] == "TLSv1.3" and ev["cipher"] == "TLS_AES_128_GCM_SHA256", ev


def test_crl_stale_warn_accepts_with_a_warning(ppki, gateway, port, echo_server):
    p = port()
    gw = gateway(config(ppki, {"in": _unwrap_route(p, echo_server().addr)},
                        tls={"crl_stale": "warn"}), name="policy-stale-warn")
    c = util.SClient("127.0.0.1", p, [], ca=ppki.anchor, cert=ppki.cert("bad-crl-stale"),
                     key=ppki.key("bad-crl-stale"), chain=ppki.intermediates("bad-crl-stale"))
    c.send(PAYLOAD)
    assert c.read_until(PAYLOAD, 15), gw.log()[-2000:]
    c.finish()
    warned = gw.events("crl_stale")
    assert warned and "CN=int-stale" in warned[0]["issuer"], warned
    assert not gw.events("refused")


# ---------------------------------------------------------------- check-cert

def _check_cert(zonegate_bin, *args):
    return subprocess.run([zonegate_bin, "check-cert", *args], capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("name,reason,tls", ENTRIES, ids=IDS)
def test_check_cert_names_the_rule(ppki, zonegate_bin, name, reason, tls):
    import json
    cp = _check_cert(zonegate_bin, "--json", "--ca", ppki.anchor, "--crl", ppki.crls,
                     ppki.chain(name))
    doc = json.loads(cp.stdout)
    failed = [f["reason"] for r in doc["rules"] for f in r.get("findings", []) if not f["warn"]]
    if reason == "ok":
        assert cp.returncode == 0, cp.stdout
        assert doc["result"] == "compliant" and not failed
    else:
        assert cp.returncode == 1, cp.stdout
        assert doc["result"] == "refused"
        assert reason in failed, (name, failed)


def test_check_cert_text_and_usage(ppki, zonegate_bin):
    cp = _check_cert(zonegate_bin, "--role", "server", "--name", "policy.zonegate.test",
                     "--ca", ppki.anchor, ppki.chain("ok-rsa3072-sha384"))
    assert cp.returncode == 0, cp.stdout
    assert re.search(r"^pass\s+server_name", cp.stdout, re.M), cp.stdout
    assert "result: compliant" in cp.stdout
    cp = _check_cert(zonegate_bin, "--role", "server", "--name", "other.test",
                     "--ca", ppki.anchor, ppki.chain("ok-p256"))
    assert cp.returncode == 1
    assert "reason=tls_server_name_mismatch" in cp.stdout
    assert _check_cert(zonegate_bin, ppki.chain("ok-p256")).returncode == 2  # no --ca
    assert _check_cert(zonegate_bin, "--role", "admin", "--ca", ppki.anchor,
                       ppki.chain("ok-p256")).returncode == 2
    assert _check_cert(zonegate_bin, "--ca", ppki.anchor, "/nonexistent.pem").returncode == 4


# ---------------------------------------------------------------- probe

def test_probe_of_our_unwrap_route_is_compliant(ppki, gateway, port, echo_server, zonegate_bin):
    import json
    p = port()
    gateway(config(ppki, {"in": _unwrap_route(p, echo_server().addr)}), name="policy-probe")
    cp = subprocess.run([zonegate_bin, "probe", f"127.0.0.1:{p}", "--ca", ppki.anchor,
                         "--name", "policy.zonegate.test", "--json"],
                        capture_output=True, text=True, timeout=300)
    doc = json.loads(cp.stdout)
    versions = {v["name"]: v["accepted"] for v in doc["versions"]}
    assert versions == {"TLSv1.0": False, "TLSv1.1": False, "TLSv1.2": True, "TLSv1.3": True}, doc
    assert doc["accepted_outside_profile"] == 0, doc
    accepted = [s["name"] for s in doc["suites"] if s["accepted"]]
    assert "TLS_AES_256_GCM_SHA384" in accepted and "ECDHE-ECDSA-AES256-GCM-SHA384" in accepted
    assert doc["client_cert_requested"] and doc["client_cert_required"], doc
    assert doc["suite_order"] == "server", doc
    assert doc["chain"]["result"] == "compliant", doc["chain"]
    assert doc["compliant"] and cp.returncode == 0, cp.stdout


def test_probe_flags_a_weak_server(ppki, port, zonegate_bin):
    p = port()
    s = policy_util.SServer(ppki, "bad-sha1", p, ["-no_tls1_3"])
    try:
        cp = subprocess.run([zonegate_bin, "probe", f"127.0.0.1:{p}", "--ca", ppki.anchor,
                             "--name", "policy.zonegate.test"],
                            capture_output=True, text=True, timeout=300)
    finally:
        s.stop()
    out = cp.stdout
    assert cp.returncode == 1, out
    assert re.search(r"TLSv1\.0\s+ACCEPTED-OUTSIDE-PROFILE", out), out
    assert re.search(r"TLSv1\.3\s+not accepted", out), out
    assert re.search(r"TLSv1\.2\s+ECDHE-ECDSA-AES128-SHA\s+ACCEPTED-OUTSIDE-PROFILE", out), out
    assert "reason=cert_weak_signature_hash" in out, out
    assert "client certificate: requested" in out  # s_server -verify asks, does not insist
    assert "suite order: client's preference" in out  # s_server follows the client
    assert "NOT compliant" in out


def test_probe_unreachable(zonegate_bin, port):
    cp = subprocess.run([zonegate_bin, "probe", f"127.0.0.1:{port()}"], capture_output=True,
                        text=True, timeout=60)
    assert cp.returncode == 4
    assert subprocess.run([zonegate_bin, "probe", "no-port"], capture_output=True,
                          timeout=60).returncode == 2


# ---------------------------------------------------------------- resumption

def _client(ppki, p, cert, key, inter, sess_flag, sess_path):
    c = util.SClient("127.0.0.1", p, [sess_flag, str(sess_path)], ca=ppki.anchor, cert=cert,
                     key=key, chain=inter)
    try:
        c.send(PAYLOAD)
    except BrokenPipeError:
        pass
    got = c.read_until(PAYLOAD, 10)
    c.finish()
    return got


def test_resumption_does_not_outlive_the_certificate(ppki, gateway, port, echo_server, tmp_path):
    """A session cached for a certificate that then expires cannot resume."""
    cert, key, inter = policy_util.short_lived_leaf(ppki, tmp_path, "short", 12)
    p = port()
    gw = gateway(config(ppki, {"in": _unwrap_route(p, echo_server().addr)}, tls={"crl": None}),
                 name="policy-resume-expiry")
    sess = tmp_path / "sess.pem"
    assert _client(ppki, p, cert, key, inter, "-sess_out", sess)
    assert _client(ppki, p, cert, key, inter, "-sess_in", sess)
    closes = gw.wait_for_event("conn_close", count=2, route="in")
    assert [e["resumed"] for e in closes[:2]] == ["0", "1"], closes  # resumption works
    util.wait_until(lambda: subprocess.run(
        ["openssl", "x509", "-checkend", "0", "-noout", "-in", cert]).returncode != 0, 20,
        what="the short-lived certificate to expire")
    mark = gw.mark()
    assert not _client(ppki, p, cert, key, inter, "-sess_in", sess)
    ev = util.wait_until(lambda: gw.events("refused", since=mark), 10, what="refusal")
    assert ev[0]["reason"] == "cert_expired", ev
    assert not [e for e in gw.events("conn_close", since=mark) if e.get("resumed") == "1"]


def test_reload_with_a_crl_ends_resumption_of_revoked(ppki, gateway, port, echo_server, tmp_path):
    """bad-revoked is accepted while no CRL is configured; after a reload
    that adds the CRL its cached session must not resume."""
    p = port()
    routes = {"in": _unwrap_route(p, echo_server().addr)}
    gw = gateway(config(ppki, routes, tls={"crl": None}), name="policy-resume-crl")
    sess = tmp_path / "sess.pem"
    args = (ppki.cert("bad-revoked"), ppki.key("bad-revoked"), ppki.intermediates("bad-revoked"))
    assert _client(ppki, p, *args, "-sess_out", sess)
    gw.reload(config(ppki, routes))
    gw.wait_for_event("reload", result="ok")
    mark = gw.mark()
    assert not _client(ppki, p, *args, "-sess_in", sess)
    ev = util.wait_until(lambda: gw.events("refused", since=mark), 10, what="refusal")
    assert ev[0]["reason"] == "cert_revoked", ev


# ---------------------------------------------------------------- bridge: both hops

@pytest.mark.parametrize("client,server,reason", [
    ("ok-p384", "ok-rsa2048", None),
    ("bad-leaf-ca", "ok-rsa2048", "cert_leaf_is_ca"),
    ("ok-p384", "bad-eku", "cert_eku_missing"),
])
def test_bridge_applies_the_rules_on_both_hops(ppki, gateway, port, client, server, reason):
    """A bridge route checks the client's certificate inbound and the
    upstream's outbound, with the same rules."""
    up = port()
    s = policy_util.SServer(ppki, server, up)
    try:
        p = port()
        gw = gateway(config(ppki, {"br": {"mode": "bridge", "listen": f"127.0.0.1:{p}",
                                          "connect": f"127.0.0.1:{up}",
                                          "server_name": "policy.zonegate.test"}}),
                     name="policy-bridge")
        c = util.SClient("127.0.0.1", p, policy_util.PEER_WEAK, ca=ppki.anchor,
                         cert=ppki.cert(client), key=ppki.key(client),
                         chain=ppki.intermediates(client))
        try:
            c.send(PAYLOAD)
        except BrokenPipeError:
            pass
        if reason is None:
            util.wait_until(lambda: PAYLOAD in s.output(), 15, what="payload across the bridge")
            c.finish()
            assert not gw.events("refused")
            return
        c.finish()
        ev = util.wait_until(lambda: gw.events("refused") or
                             [e for e in gw.events("conn_close") if e.get("reason") != "ok"],
                             10, what="refusal")
        assert ev[0]["reason"] == reason, ev
        assert PAYLOAD not in s.output()
    finally:
        s.stop()


def test_clock_skew_tolerates_a_just_expired_certificate(ppki, gateway, port, echo_server,
                                                         tmp_path):
    cert, key, inter = policy_util.short_lived_leaf(ppki, tmp_path, "skew", -5)
    p = port()
    gw = gateway(config(ppki, {"in": _unwrap_route(p, echo_server().addr)},
                        tls={"crl": None, "clock_skew": "1m"}), name="policy-skew")
    assert _client(ppki, p, cert, key, inter, "-sess_out", tmp_path / "s1.pem"), gw.log()[-1500:]
    assert not gw.events("refused")
    gw.reload(config(ppki, {"in": _unwrap_route(p, echo_server().addr)}, tls={"crl": None}))
    gw.wait_for_event("reload", result="ok")
    mark = gw.mark()
    assert not _client(ppki, p, cert, key, inter, "-sess_out", tmp_path / "s2.pem")
    ev = util.wait_until(lambda: gw.events("refused", since=mark), 10, what="refusal")
    assert ev[0]["reason"] == "cert_expired", ev


def test_probe_with_a_client_certificate(ppki, gateway, port, echo_server, zonegate_bin):
    import json
    p = port()
    gw = gateway(config(ppki, {"in": _unwrap_route(p, echo_server().addr)}), name="policy-probe2")
    cp = subprocess.run([zonegate_bin, "probe", f"127.0.0.1:{p}", "--profile", "bcp195",
                         "--cert", ppki.chain("ok-p256"), "--key", ppki.key("ok-p256"),
                         "--ca", ppki.anchor, "--name", "policy.zonegate.test", "--json"],
                        capture_output=True, text=True, timeout=300)
    doc = json.loads(cp.stdout)
    assert doc["client_cert_requested"] and not doc["client_cert_required"], doc
    # the route runs cryptrec-high: its CCM and CHACHA20 suites lie outside bcp195
    outside = [s["name"] for s in doc["suites"] if s["accepted"] and not s["in_profile"]]
    assert "ECDHE-ECDSA-CHACHA20-POLY1305" in outside, doc
    assert cp.returncode == 1 and not doc["compliant"]
    assert gw.events("conn_close")  # with a certificate the handshakes completed


def test_profiles_cli_matches_the_golden_snapshot(zonegate_bin):
    """`zonegate profiles` prints exactly tests/snapshots/profiles.txt; after an
    intended change: zonegate profiles > tests/snapshots/profiles.txt."""
    golden = (policy_util.REPO / "tests" / "snapshots" / "profiles.txt").read_text()
    cp = subprocess.run([zonegate_bin, "profiles"], capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0
    assert cp.stdout == golden
    one = subprocess.run([zonegate_bin, "profiles", "bcp195"], capture_output=True, text=True,
                         timeout=60)
    assert one.returncode == 0 and one.stdout in golden and one.stdout.startswith("profile bcp195")
    assert subprocess.run([zonegate_bin, "profiles", "tls10"], capture_output=True,
                          timeout=60).returncode == 2


def test_outbound_resumption_does_not_outlive_the_server_certificate(ppki, gateway, port,
                                                                     tmp_path):
    """A wrap route resumes sessions to its upstream, but not once the
    upstream's certificate has expired: the full handshake refuses it."""
    files = policy_util.short_lived_leaf(ppki, tmp_path, "short-srv", 12)
    up = port()
    s = policy_util.SServer(ppki, "short-srv", up, files=files)
    try:
        a = port()
        gw = gateway(config(ppki, {"out": {"mode": "wrap", "listen": f"127.0.0.1:{a}",
                                           "connect": f"127.0.0.1:{up}",
                                           "server_name": "policy.zonegate.test",
                                           "allow_from": "127.0.0.0/8"}}, tls={"crl": None},
                            gateway={"workers": 1}), name="policy-out-resume")

        def through(i):
            sock = util.connect("127.0.0.1", a)
            msg = b"payload %d\n" % i
            sock.sendall(msg)
            util.wait_until(lambda: msg in s.output(), 10, what=f"payload {i}")
            sock.close()

        through(1)
        through(2)
        closes = gw.wait_for_event("conn_close", count=2, route="out")
        assert "1" in [e["resumed"] for e in closes], closes  # outbound resumption works
        util.wait_until(lambda: subprocess.run(
            ["openssl", "x509", "-checkend", "0", "-noout", "-in", files[0]]).returncode != 0, 20,
            what="the upstream certificate to expire")
        mark = gw.mark()
        sock = util.connect("127.0.0.1", a)
        sock.sendall(b"late\n")
        assert util.closed_by_peer(sock, 15)
        sock.close()
        ev = util.wait_until(lambda: gw.events("refused", since=mark) or
                             [e for e in gw.events("conn_close", since=mark)
                              if e.get("reason") != "ok"], 10, what="refusal")
        assert ev[0]["reason"] == "cert_expired", ev
        assert b"late" not in s.output()
    finally:
        s.stop()


def test_inbound_ticket_resumption_stops_once_the_client_certificate_expired(
        ppki, gateway, port, echo_server, tmp_path):
    """An unwrap route with session_tickets = on and session_cache = off:
    the ticket's own lifetime (session_timeout 300s) is far longer than the
    client certificate's, so only the re-check of a resumed session's
    certificate (tls.c recheck_resumed) can stop the resumption once the
    certificate has expired."""
    import socket
    import ssl
    cert, key, inter = policy_util.short_lived_leaf(ppki, tmp_path, "short-cli", 10)
    chain = tmp_path / "short-cli.chain.pem"
    chain.write_text(open(cert).read() + open(inter).read())
    echo = echo_server()
    p = port()
    gw = gateway(config(ppki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{p}",
                                      "connect": echo.addr}},
                        tls={"crl": None, "session_tickets": "on", "session_cache": "off",
                             "session_timeout": "300s"},
                        gateway={"workers": 1}), name="policy-in-resume")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(ppki.anchor)
    ctx.load_cert_chain(str(chain), key)

    def session(sess=None):
        raw = socket.create_connection(("127.0.0.1", p), timeout=10)
        s = ctx.wrap_socket(raw, server_hostname="policy.zonegate.test", session=sess)
        try:
            assert util.echo_roundtrip(s, PAYLOAD) == PAYLOAD
            assert s.session is not None and s.session.has_ticket, "no session ticket issued"
            return s.session, s.session_reused
        finally:
            s.close()

    sess, reused = session()
    assert not reused
    sess, reused = session(sess)
    assert reused, "control: a ticket must resume while the certificate is valid"
    util.wait_until(lambda: subprocess.run(
        ["openssl", "x509", "-checkend", "0", "-noout", "-in", cert]).returncode != 0, 20,
        what="the client certificate to expire")
    mark = gw.mark()
    try:
        _s, reused = session(sess)
    except (OSError, AssertionError):
        reused = None  # refused: the handshake failed
    assert reused is None, f"a ticket resumed after the certificate expired (reused={reused})"
    ev = gw.wait_for_event("refused", since=mark, route="in")
    assert ev[0]["reason"] == "cert_expired", ev
    assert echo.connections == 2
