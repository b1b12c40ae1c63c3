"""Trust domains (issue 15, item 1): named identities and trust stores per
route and side, on one gateway.

Two independent test PKIs are made at test time (tests/pki/mkpki.sh run
twice): the same certificate names, different keys and CAs. Domain A is the
[tls] section's identity and store (as every existing configuration), domain
B an [identity] and a [trust] section. What is shown:

- a client of one domain is refused (tls_untrusted_chain) on the other
  domain's route, both ways, also right after its chain was a chain-cache hit
  on its own route and after it resumed a session there (TLS 1.2 session id,
  TLS 1.3 ticket): its session is not resumed on the other route;
- with shared ticket key files (session_ticket_key, which outlive reloads),
  a ticket issued while a route verified against store A does not resume
  once a reload moved the route to store B (before trust domains the ticket
  keys were derived from the route name alone, and such a ticket resumed);
- after a reload, live connections are judged per hop by their own store:
  a route moved to another store closes its connections from the old
  domain; on a bridge from A to B a CRL of store A never judges the
  upstream hop (same issuer name and serial as B's certificate);
- a CRL fetched for a store's file must be signed by that domain's CAs;
- serverAuth-only and clientAuth-only certificates as two identities serve a
  wrap and an unwrap route of one process, whose [tls] holds no key at all;
  the key process holds both keys, the gateway's memory neither;
- `check` refuses an identity used against its EKU, naming it and the
  route, and an unknown name; `check`, `check-cert --conf --route` and
  `profiles --conf` say which route side uses which identity and store.
"""
import os
import subprocess
from pathlib import Path

import pytest

import util
from conftest import REPO, Pki, gateway_section, zg_env
from test_keys import key_pid, memory_holds, private_byte_strings

PAYLOAD = b"trust domain check\n"


@pytest.fixture(scope="module")
def pki_b(tmp_path_factory):
    """A second, independent PKI: same layout and names, other keys and CAs."""
    out = str(tmp_path_factory.mktemp("pki-b"))
    subprocess.run(["bash", str(REPO / "tests" / "pki" / "mkpki.sh"), out], check=True)
    return Pki(out)


def two_domains(pki, pki_b, a_port, b_port, backend, tls=None, gw=None):
    """Route a-in verifies with [tls] (PKI A), route b-in with [trust b]
    (PKI B) and presents [identity b-site]; one worker, so one chain cache
    and one session cache per context are shared by everything."""
    t = pki.tls("site-b")
    t.update(tls or {})
    return {
        "gateway": gateway_section("domains", workers=1, **(gw or {})),
        "tls": t,
        "identity b-site": {"certificate": pki_b.cert("site-b"), "key": pki_b.key("site-b"),
                            "chain": pki_b.intermediate()},
        "trust b": {"trust_anchors": pki_b.roots},
        "route a-in": {"mode": "unwrap", "listen": f"127.0.0.1:{a_port}", "connect": backend},
        "route b-in": {"mode": "unwrap", "listen": f"127.0.0.1:{b_port}", "connect": backend,
                       "listen_identity": "b-site", "listen_trust": "b"},
    }


def client_kw(p):
    """s_client options presenting p's clientAuth-only certificate."""
    return dict(pki=p, cert=p.cert("client"), key=p.key("client"), chain=p.intermediate())


def served(port, p, args=()):
    c = util.SClient("127.0.0.1", port, list(args), **client_kw(p))
    c.send(PAYLOAD)
    got = c.read_until(PAYLOAD, timeout=15)
    rc, out, err = c.finish()
    assert got, f"not served on {port}: rc={rc} stderr={err[-1500:]!r}"


def refused(gw, route, port, p, since, args=()):
    rc, out, err = util.s_client_once("127.0.0.1", port, PAYLOAD, args=list(args), **client_kw(p))
    assert PAYLOAD not in out, f"a client of the other domain was served on {route}"
    ev = gw.wait_for_event("refused", since=since, route=route, reason="tls_untrusted_chain")
    assert ev, gw.log()[-3000:]


@pytest.mark.parametrize("direction", ["a-to-b", "b-to-a"])
def test_chain_cache_hit_on_own_route_is_no_ticket_to_the_other(pki, pki_b, gateway, port,
                                                               echo_server, direction):
    echo = echo_server()
    a_port, b_port = port(), port()
    gw = gateway(two_domains(pki, pki_b, a_port, b_port, echo.addr,
                             tls={"session_cache": "off"}), name="domains")
    own, own_port, other, other_port, p = (
        ("a-in", a_port, "b-in", b_port, pki) if direction == "a-to-b"
        else ("b-in", b_port, "a-in", a_port, pki_b))
    for _ in range(3):
        served(own_port, p)
    chains = [e["chain"] for e in gw.wait_for_event("conn_close", route=own, count=3)]
    assert chains[0] == "verified" and "cached" in chains[1:], chains
    mark = gw.mark()
    refused(gw, other, other_port, p, mark)
    # the refusal did not disturb the cache of the client's own route
    served(own_port, p)
    assert gw.wait_for_event("conn_close", since=mark, route=own)[-1]["chain"] == "cached"


@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
def test_resumed_session_does_not_cross_domains(pki, pki_b, gateway, port, echo_server, tmp_path,
                                                version):
    """TLS 1.2: session ids from the server cache; TLS 1.3: tickets."""
    echo = echo_server()
    a_port, b_port = port(), port()
    tls = {"session_tickets": "on"} if version == "-tls1_3" else {}
    gw = gateway(two_domains(pki, pki_b, a_port, b_port, echo.addr, tls=tls), name="domains")
    for p, own, own_port, other, other_port in ((pki, "a-in", a_port, "b-in", b_port),
                                                (pki_b, "b-in", b_port, "a-in", a_port)):
        sess = tmp_path / f"{own}.sess"
        mark = gw.mark()
        served(own_port, p, [version, "-sess_out", str(sess)])
        served(own_port, p, [version, "-sess_in", str(sess)])
        closes = gw.wait_for_event("conn_close", since=mark, route=own, count=2)
        assert [e["resumed"] for e in closes] == ["0", "1"], closes
        mark = gw.mark()
        refused(gw, other, other_port, p, mark, [version, "-sess_in", str(sess)])
        assert not [e for e in gw.events("conn_close", since=mark, route=other)
                    if e.get("resumed") == "1"]


def test_shared_ticket_keys_do_not_carry_a_session_to_another_store(pki, pki_b, gateway, port,
                                                                   echo_server, tmp_path):
    """session_ticket_key files survive reloads, so the ticket keys must
    depend on the store, not on the route name alone."""
    echo = echo_server()
    a_port, b_port = port(), port()
    key = tmp_path / "ticket.key"
    key.write_bytes(os.urandom(80))
    key.chmod(0o600)
    tls = {"session_tickets": "on", "session_cache": "off", "session_ticket_key": str(key)}
    cfg = two_domains(pki, pki_b, a_port, b_port, echo.addr, tls=tls)
    gw = gateway(cfg, name="domains")
    sess = tmp_path / "a.sess"
    served(a_port, pki, ["-tls1_3", "-sess_out", str(sess)])
    served(a_port, pki, ["-tls1_3", "-sess_in", str(sess)])
    assert gw.wait_for_event("conn_close", route="a-in", count=2)[1]["resumed"] == "1"

    # the same route, now judged by store B
    cfg["route a-in"].update({"listen_identity": "b-site", "listen_trust": "b"})
    mark = gw.reload(cfg)
    gw.wait_for_event("reload", since=mark, result="ok")
    refused(gw, "a-in", a_port, pki, mark, ["-tls1_3", "-sess_in", str(sess)])
    served(a_port, pki_b)


def single_eku_config(pki, in_port, out_port, backend, tls=None):
    """client -> out (wrap, presents the clientAuth-only certificate) ->
    in (unwrap, presents the serverAuth-only one) -> backend; [tls] names no
    certificate, key or anchors."""
    return {
        "gateway": gateway_section("single-eku"),
        "tls": dict({"profile": "cryptrec-high"}, **(tls or {})),
        "identity srv": {"certificate": pki.cert("server"), "key": pki.key("server"),
                         "chain": pki.intermediate()},
        "identity cli": {"certificate": pki.cert("client"), "key": pki.key("client"),
                         "chain": pki.intermediate()},
        "trust zone": {"trust_anchors": pki.roots},
        "route in": {"mode": "unwrap", "listen": f"127.0.0.1:{in_port}", "connect": backend,
                     "listen_identity": "srv", "listen_trust": "zone"},
        "route out": {"mode": "wrap", "listen": f"127.0.0.1:{out_port}",
                      "connect": f"127.0.0.1:{in_port}", "server_name": "server.zonegate.test",
                      "allow_from": "127.0.0.0/8", "connect_identity": "cli",
                      "connect_trust": "zone"},
    }


def test_single_eku_identities_on_wrap_and_unwrap_of_one_process(pki, gateway, port, echo_server):
    echo = echo_server()
    in_port, out_port = port(), port()
    gw = gateway(single_eku_config(pki, in_port, out_port, echo.addr), name="single-eku")
    for _ in range(2):
        with util.connect("127.0.0.1", out_port) as s:
            assert util.echo_roundtrip(s, PAYLOAD) == PAYLOAD
    inbound = gw.wait_for_event("conn_close", route="in", count=2)
    outbound = gw.wait_for_event("conn_close", route="out", count=2)
    assert all(e["subject"].startswith("CN=client") for e in inbound), inbound
    assert all(e["subject"].startswith("CN=server") for e in outbound), outbound

    # both keys are in the key process, neither in the gateway
    gw.wait_for_event("key_process_started")
    assert gw.events("key_process_started")[0]["keys"] == "2"
    needles, owner = [], []
    for leaf in ("server", "client"):
        for n in private_byte_strings(pki.key(leaf)):
            needles.append(n)
            owner.append(leaf)
    in_keys = {owner[i] for i in memory_holds(key_pid(gw), needles)}
    assert in_keys == {"server", "client"}, in_keys
    found = memory_holds(gw.proc.pid, needles)
    assert not found, f"private key bytes of {sorted({owner[i] for i in found})} in the gateway"


def test_check_refuses_an_identity_against_its_eku(pki, port, zonegate_check):
    """The serverAuth-only identity presented as client, the clientAuth-only
    one as server: both refused, each naming the identity and route side."""
    cfg = single_eku_config(pki, port(), port(), "127.0.0.1:9")
    cfg["route in"]["listen_identity"] = "cli"
    cfg["route out"]["connect_identity"] = "srv"
    cp = zonegate_check(cfg)
    assert cp.returncode == 3, cp.stdout + cp.stderr
    assert ("as server certificate) breaks rule cert_eku_missing at depth 0: extendedKeyUsage "
            "lacks serverAuth ([identity cli], listen side of route in)") in cp.stderr, cp.stderr
    assert ("as client certificate) breaks rule cert_eku_missing at depth 0: extendedKeyUsage "
            "lacks clientAuth ([identity srv], connect side of route out)") in cp.stderr, cp.stderr


def test_check_refuses_unknown_names_and_warns_about_unused(pki, pki_b, port, zonegate_check):
    cfg = two_domains(pki, pki_b, port(), port(), "127.0.0.1:9")
    cfg["route b-in"]["listen_trust"] = "national"
    cfg["route b-in"]["listen_identity"] = "b-stie"
    cp = zonegate_check(cfg)
    assert cp.returncode == 3
    assert "listen_trust: [route b-in]: no [trust national] in this file\n" in cp.stderr
    assert ("listen_identity: [route b-in]: no [identity b-stie] in this file; "
            "did you mean 'b-site'?") in cp.stderr

    cfg = two_domains(pki, pki_b, port(), port(), "127.0.0.1:9")
    cfg["identity spare"] = {"certificate": pki.cert("server"), "key": pki.key("server")}
    cfg["trust spare"] = {"trust_anchors": pki.roots}
    cp = zonegate_check(cfg)
    assert cp.returncode == 0, cp.stderr
    assert 'event=conf_unused section="[identity spare]"' in cp.stderr
    assert 'event=conf_unused section="[trust spare]"' in cp.stderr


def test_check_check_cert_and_profiles_show_what_each_route_uses(pki, pki_b, port, zonegate_bin,
                                                                zonegate_check, tmp_path):
    cfg = two_domains(pki, pki_b, port(), port(), "127.0.0.1:9")
    cp = zonegate_check(cfg)
    assert cp.returncode == 0, cp.stderr
    assert (f"# route a-in listen: profile cryptrec-high, identity tls ({pki.cert('site-b')}, "
            f"as server), trust tls ({pki.roots})") in cp.stdout, cp.stdout
    assert (f"# route b-in listen: profile cryptrec-high, identity b-site "
            f"({pki_b.cert('site-b')}, as server), trust b ({pki_b.roots})") in cp.stdout

    def run(*args):
        return subprocess.run([zonegate_bin, *args], capture_output=True, text=True,
                              env=zg_env(), timeout=60, stdin=subprocess.DEVNULL)

    # B's client is a good client of b-in and an untrusted one of a-in
    good = run("check-cert", "--conf", cp.path, "--route", "b-in", pki_b.chain("client"))
    assert good.returncode == 0, good.stdout + good.stderr
    assert "route b-in listen side: trust b" in good.stdout
    bad = run("check-cert", "--conf", cp.path, "--route", "a-in", pki_b.chain("client"))
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "route a-in listen side: trust tls" in bad.stdout
    plain = run("check-cert", "--conf", cp.path, "--route", "a-in", "--side", "connect",
                pki.chain("client"))
    assert plain.returncode == 2 and "speaks plain TCP on its connect side" in plain.stderr

    prof = run("profiles", "--conf", cp.path)
    assert prof.returncode == 0, prof.stderr
    assert "# route b-in listen: profile cryptrec-high, identity b-site" in prof.stdout
    assert Path(cp.path).exists()


def test_fetched_crl_is_judged_by_its_own_domain_only(pki, pki_b, gateway, port, echo_server,
                                                      tmp_path):
    """[crl] into a file of store b: a CRL signed by domain A's intermediate
    (same subject name as B's, other key) keeps the file; one signed by B's
    own intermediate replaces it and revokes B's client on b-in."""
    from test_crl_fetch import Server, crl, load_cert, load_key
    a_int = (load_cert(pki.intermediate()), load_key(pki.path("int-ec.key")))
    b_int = (load_cert(pki_b.intermediate()), load_key(pki_b.path("int-ec.key")))
    assert a_int[0].subject == b_int[0].subject
    b_client = load_cert(pki_b.cert("client")).serial_number
    www, state = tmp_path / "www", tmp_path / "crl"
    www.mkdir()
    state.mkdir()
    b_crl = state / "b-int.crl.pem"
    b_crl.write_bytes(crl(*b_int, 1))
    published = www / "int.crl"
    published.write_bytes(crl(*b_int, 1))
    srv = Server(www)
    echo = echo_server()
    a_port, b_port = port(), port()
    cfg = two_domains(pki, pki_b, a_port, b_port, echo.addr)
    cfg["trust b"]["crl"] = f"{pki_b.path('root-ec.crl.pem')}, {b_crl}"
    cfg["crl b-int"] = {"url": f"http://127.0.0.1:{srv.port}/int.crl", "file": str(b_crl),
                        "interval": "1s", "timeout": "2s"}
    try:
        gw = gateway(cfg, name="domains")
        gw.wait_for_log(r"event=crl_fetch name=b-int result=unchanged", timeout=10)
        served(b_port, pki_b)

        mark = gw.mark()
        in_force = b_crl.read_bytes()
        published.write_bytes(crl(*a_int, 5, [b_client]))
        gw.wait_for_log(r"event=crl_fetch name=b-int result=failed .*not signed by a CA we trust",
                        since=mark, timeout=15)
        assert b_crl.read_bytes() == in_force, "another domain's CA replaced the CRL"

        mark = gw.mark()
        published.write_bytes(crl(*b_int, 6, [b_client]))
        gw.wait_for_log(r"event=crl_fetch name=b-int result=replaced", since=mark, timeout=15)
        gw.wait_for_log(r"event=reload result=ok", since=mark, timeout=10)
        rc, out, err = util.s_client_once("127.0.0.1", b_port, PAYLOAD, **client_kw(pki_b))
        assert PAYLOAD not in out
        gw.wait_for_event("refused", since=mark, route="b-in", reason="cert_revoked")
        served(a_port, pki)
    finally:
        srv.stop()


def test_directory_entry_of_a_named_identity(pki, pki_b, port, zonegate_bin, zonegate_check):
    """`directory entry --identity NAME` describes that identity's
    certificate: the same names as [tls]'s here, another key (pin)."""
    import json
    cp = zonegate_check(two_domains(pki, pki_b, port(), port(), "127.0.0.1:9"))
    assert cp.returncode == 0, cp.stderr

    def entry(*extra):
        r = subprocess.run([zonegate_bin, "directory", "entry", "-c", cp.path, "--pin",
                            "--prefix", "127.0.0.1/32", *extra], capture_output=True, text=True,
                           env=zg_env(), timeout=60, stdin=subprocess.DEVNULL)
        return r.returncode, r.stdout, r.stderr

    rc, out, err = entry()
    assert rc == 0, err
    a = json.loads(out)["identities"]
    rc, out, err = entry("--identity", "b-site")
    assert rc == 0, err
    b = json.loads(out)["identities"]
    assert a["dns"] == b["dns"] and a["spki_sha256"] != b["spki_sha256"], (a, b)
    rc, out, err = entry("--identity", "nowhere")
    assert rc != 0 and "no [identity nowhere]" in err


def test_reload_adds_a_domain_and_its_key(pki, pki_b, gateway, port, echo_server):
    """A reload that brings a new [identity] starts a key process holding
    its key too; the new route serves with it, the old one goes on."""
    echo = echo_server()
    a_port, b_port = port(), port()
    full = two_domains(pki, pki_b, a_port, b_port, echo.addr)
    first = {k: v for k, v in full.items() if k not in ("identity b-site", "trust b", "route b-in")}
    gw = gateway(first, name="domains")
    assert gw.wait_for_event("key_process_started")[0]["keys"] == "1"
    served(a_port, pki)
    mark = gw.reload(full)
    gw.wait_for_event("reload", since=mark, result="ok")
    assert gw.wait_for_event("key_process_started", since=mark)[0]["keys"] == "2"
    served(b_port, pki_b)
    served(a_port, pki)
    refused(gw, "b-in", b_port, pki, mark)


def test_live_connection_closed_when_its_route_moves_to_another_store(pki, pki_b, gateway, port,
                                                                      echo_server):
    """A reload that moves a route to another trust store judges its live
    connections by the new store: a domain-A client connected on a-in is
    closed after the grace period, a domain-B client on b-in goes on."""
    echo = echo_server()
    a_port, b_port = port(), port()
    cfg = two_domains(pki, pki_b, a_port, b_port, echo.addr)
    cfg["directory"] = {"grace_period": "1s"}
    gw = gateway(cfg, name="domains")
    on_a = util.SClient("127.0.0.1", a_port, **client_kw(pki))
    on_b = util.SClient("127.0.0.1", b_port, **client_kw(pki_b))
    try:
        for c in (on_a, on_b):
            c.send(PAYLOAD)
            assert c.read_until(PAYLOAD, timeout=15)
        cfg["route a-in"].update({"listen_identity": "b-site", "listen_trust": "b"})
        mark = gw.reload(cfg)
        gw.wait_for_event("reload", since=mark, result="ok")
        rev = gw.wait_for_event("revoked", since=mark, route="a-in", reason="tls_untrusted_chain")
        assert len(rev) == 1 and rev[0]["detail"].startswith("trust tls -> b: "), rev
        gw.wait_for_event("conn_close", since=mark, route="a-in", reason="tls_untrusted_chain")
        assert not gw.events("revoked", since=mark, route="b-in")
        on_b.send(PAYLOAD)
        assert on_b.read_until(PAYLOAD * 2, timeout=15)
    finally:
        on_a.finish()
        on_b.finish()


def test_bridge_hops_are_judged_by_their_own_stores_crls(pki, pki_b, gateway, port, echo_server,
                                                         tmp_path):
    """A bridge from domain A (listen) to domain B (connect): a reload gives
    store A a CRL, signed by A's intermediate, listing the serial of B's
    upstream certificate under the same issuer name. The upstream hop is B's
    to judge: the live connection stays (it was closed as cert_revoked while
    live connections were judged by one store's CRLs on every hop)."""
    from test_crl_fetch import crl, load_cert, load_key
    echo = echo_server()
    a_port, b_port, x_port = port(), port(), port()
    cfg = two_domains(pki, pki_b, a_port, b_port, echo.addr)
    cfg["directory"] = {"grace_period": "1s"}
    cfg["identity b-client"] = {"certificate": pki_b.cert("client"), "key": pki_b.key("client"),
                                "chain": pki_b.intermediate()}
    cfg["route x"] = {"mode": "bridge", "listen": f"127.0.0.1:{x_port}",
                      "connect": f"127.0.0.1:{b_port}", "server_name": "site-b.zonegate.test",
                      "connect_identity": "b-client", "connect_trust": "b"}
    gw = gateway(cfg, name="domains")
    on_x = util.SClient("127.0.0.1", x_port, **client_kw(pki))
    try:
        on_x.send(PAYLOAD)
        assert on_x.read_until(PAYLOAD, timeout=15)
        a_crl = tmp_path / "a-int.crl.pem"
        a_crl.write_bytes(crl(load_cert(pki.intermediate()), load_key(pki.path("int-ec.key")), 1,
                              [load_cert(pki_b.cert("site-b")).serial_number]))
        cfg["tls"]["crl"] = f"{pki.path('root-ec.crl.pem')}, {a_crl}"
        mark = gw.reload(cfg)
        gw.wait_for_event("reload", since=mark, result="ok")
        served(x_port, pki)  # after the reload: the upstream is still B's to judge
        on_x.send(PAYLOAD)
        assert on_x.read_until(PAYLOAD * 2, timeout=15)
        assert not gw.events("revoked", since=mark), gw.events("revoked", since=mark)
    finally:
        on_x.finish()
