"""The participant directory: operator CLI, and the address-identity binding
enforced by a running gateway.

CLI tests run anywhere. Binding tests run the gateway in a network namespace
and connect from several source addresses of a second namespace
(netns_util.py); they need root and iproute2 and are skipped otherwise.

The core calls the checks from conn.c (admission before any TLS byte,
identity binding after each handshake, re-check of live connections on a
new directory) and loads the directory into the snapshot (snapshot.c).
"""
import base64
import datetime as dt
import hashlib
import json
import os
import re
import socket
import ssl
import threading
import subprocess

import pytest

import netns_util
import util
from conftest import Gateways, gateway_section

A_V4, B_V4, UNKNOWN_V4, C_V4 = "198.51.100.10", "198.51.100.20", "198.51.100.30", "198.51.100.40"
A_V6 = "2001:db8:5a::10"
GW_PORT = 2762


def utc(delta_s=0):
    t = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) + dt.timedelta(seconds=delta_s)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def participant(pid, dns, prefixes, **extra):
    p = {"id": pid, "name": f"{pid} hospital", "identities": {"dns": dns}, "prefixes": prefixes}
    p.update(extra)
    return p


def standard_participants():
    return [
        participant("site-a", ["site-a.zonegate.test"], [A_V4 + "/32", A_V6 + "/128"]),
        participant("site-b", ["site-b.zonegate.test"], [B_V4 + "/32"]),
        participant("site-c", ["client.zonegate.test"], [C_V4 + "/32"]),
    ]


def directory_doc(serial, participants, issued=-3600, expires=86400):
    return {"format": 1, "issuer": "net-operator.test", "serial": serial,
            "issued_at": utc(issued), "expires": utc(expires), "participants": participants}


class Operator:
    """The network operator: a key pair and a published directory."""

    def __init__(self, zg, workdir):
        self.zg = zg
        self.dir = workdir
        self.prefix = str(workdir / "operator")
        self.json = workdir / "directory.json"
        self.sig = workdir / "directory.json.sig"
        self.run("keygen", "-o", self.prefix)
        self.pub = self.prefix + ".pub"
        self.key = self.prefix + ".key"

    def run(self, *args, check=True):
        cp = subprocess.run([self.zg, "directory", *args], capture_output=True, text=True)
        if check:
            assert cp.returncode == 0, f"directory {args[0]}: {cp.returncode}\n{cp.stdout}{cp.stderr}"
        return cp

    def publish(self, doc, tamper=None):
        """Write and sign `doc`; `tamper(text) -> text` edits it after signing."""
        text = json.dumps(doc, indent=1)
        tmp = self.json.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.json)
        self.run("sign", "-k", self.key, str(self.json))
        if tamper:
            self.json.write_text(tamper(text))


@pytest.fixture
def operator(zonegate_bin, tmp_path):
    return Operator(zonegate_bin, tmp_path)


# ---------------------------------------------------------------- CLI


def test_keygen_writes_private_key_0600_and_never_overwrites(operator):
    assert os.stat(operator.key).st_mode & 0o777 == 0o600
    assert "BEGIN PUBLIC KEY" in open(operator.pub).read()
    cp = operator.run("keygen", "-o", operator.prefix, check=False)
    assert cp.returncode == 4 and "not overwriting" in cp.stderr


def test_sign_verify_show_lookup(operator):
    operator.publish(directory_doc(3, standard_participants()))
    cp = operator.run("verify", "-p", operator.pub, str(operator.json))
    assert re.search(r"directory OK: serial 3, issuer \"net-operator.test\", 3 participants, 4 prefixes",
                     cp.stdout), cp.stdout
    cp = operator.run("show", "-p", operator.pub, str(operator.json))
    assert "participant site-a" in cp.stdout and "prefix          2001:db8:5a::10/128" in cp.stdout
    cp = operator.run("lookup", "-d", str(operator.json), "-p", operator.pub, A_V4)
    assert f"{A_V4} participant=site-a" in cp.stdout
    # an IPv4 client on a dual-stack socket arrives as ::ffff:a.b.c.d
    cp = operator.run("lookup", "-d", str(operator.json), "::ffff:" + B_V4)
    assert "participant=site-b" in cp.stdout
    cp = operator.run("lookup", "-d", str(operator.json), UNKNOWN_V4, check=False)
    assert cp.returncode == 1 and "participant=none" in cp.stdout


@pytest.mark.parametrize("case,code", [
    ("tampered", "directory_bad_signature"),
    ("other_key", "directory_bad_signature"),
    ("unsigned", "directory_unsigned"),
    ("expired", "directory_expired"),
    ("future", "directory_not_yet_valid"),
    ("rollback", "directory_rollback"),
])
def test_verify_refuses(operator, tmp_path, zonegate_bin, case, code):
    doc = directory_doc(5, standard_participants())
    args = []
    if case == "tampered":
        operator.publish(doc, tamper=lambda t: t.replace(A_V4, UNKNOWN_V4))
    elif case == "other_key":
        (tmp_path / "other").mkdir()
        other = Operator(zonegate_bin, tmp_path / "other")
        operator.publish(doc)
        other.run("sign", "-k", other.key, "-o", str(operator.sig), str(operator.json))
    elif case == "unsigned":
        operator.publish(doc)
        os.unlink(operator.sig)
    elif case == "expired":
        operator.publish(directory_doc(5, standard_participants(), issued=-7200, expires=-60))
    elif case == "future":
        operator.publish(directory_doc(5, standard_participants(), issued=7200))
    elif case == "rollback":
        newer = tmp_path / "newer.json"
        newer.write_text(json.dumps(directory_doc(6, standard_participants())))
        operator.publish(doc)
        args = ["--previous", str(newer)]
    cp = operator.run("verify", "-p", operator.pub, *args, str(operator.json), check=False)
    assert cp.returncode == 1, cp.stdout + cp.stderr
    assert f"refused: {code}:" in cp.stdout


def test_sign_refuses_malformed_directory(operator):
    operator.json.write_text(json.dumps(directory_doc(1, [
        participant("a", ["x.test"], ["10.0.0.0/8"]),
        participant("b", ["y.test"], ["10.0.0.0/8"])])))
    cp = operator.run("sign", "-k", operator.key, str(operator.json), check=False)
    assert cp.returncode == 1
    assert 'directory_malformed: prefix 10.0.0.0/8 is claimed by participants "a" and "b"' in cp.stderr
    assert not operator.sig.exists()


def test_signature_is_plain_ed25519_openssl_agrees(operator, tmp_path):
    operator.publish(directory_doc(1, standard_participants()))
    raw = tmp_path / "sig.bin"
    raw.write_bytes(base64.b64decode(operator.sig.read_text()))
    cp = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", operator.pub, "-rawin",
                         "-in", str(operator.json), "-sigfile", str(raw)], capture_output=True, text=True)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    # and a raw signature made by openssl is accepted as the signature file
    subprocess.run(["openssl", "pkeyutl", "-sign", "-inkey", operator.key, "-rawin",
                    "-in", str(operator.json), "-out", str(operator.sig)], check=True)
    operator.run("verify", "-p", operator.pub, str(operator.json))


def test_entry_prints_own_participant_object(operator, pki, tmp_path, zonegate_bin):
    conf = tmp_path / "gw.conf"
    conf.write_text(f"""[gateway]
name = site-a
[tls]
certificate = {pki.cert('site-a')}
key = {pki.key('site-a')}
trust_anchors = {pki.roots}
[route in]
mode = unwrap
listen = 127.0.0.1:{GW_PORT}
connect = 127.0.0.1:104
""")
    os.chmod(conf, 0o600)
    cp = operator.run("entry", "-c", str(conf), "--prefix", A_V4, "--prefix", "2001:db8:5a::/48", "--pin")
    obj = json.loads(cp.stdout)
    assert obj["id"] == "site-a"
    assert obj["identities"]["dns"] == ["site-a.zonegate.test", "localhost"]
    assert obj["prefixes"] == [A_V4 + "/32", "2001:db8:5a::/48"]
    der = subprocess.run(["openssl", "x509", "-in", pki.cert("site-a"), "-pubkey", "-noout"],
                         capture_output=True, check=True).stdout
    spki = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=der,
                          capture_output=True, check=True).stdout
    assert obj["identities"]["spki_sha256"] == [base64.b64encode(hashlib.sha256(spki).digest()).decode()]
    # without --prefix the TLS listen address is proposed, with a note
    cp = operator.run("entry", "-c", str(conf))
    assert json.loads(cp.stdout)["prefixes"] == ["127.0.0.1/32"]
    assert "note: prefixes taken from the TLS listen addresses" in cp.stderr


# ---------------------------------------------------------------- binding


@pytest.fixture
def netns():
    ok, why = netns_util.available()
    if not ok:
        pytest.skip(why)
    pair = netns_util.NetnsPair([A_V4, B_V4, UNKNOWN_V4, C_V4, A_V6])
    pair.create()
    yield pair
    pair.destroy()


class Site:
    """A gateway running inside the netns pair's gateway namespace, serving
    route `in` (unwrap, peers site-a and site-b) to an echo backend."""

    def __init__(self, request, tmp_path, zonegate_bin, pki, ns, operator, grace="2s",
                 reload_interval="0"):
        self.ns = ns
        self.pki = pki
        self.backend = netns_util.EchoBackend(ns.gw_listen("127.0.0.1"))
        wrapper = ns.wrapper(tmp_path / "zonegate-in-netns", zonegate_bin)
        self.config = {
            "gateway": gateway_section("gw"),
            "tls": pki.tls("server"),
            "directory": {"file": str(operator.json), "public_key": operator.pub,
                          "grace_period": grace, "reload_interval": reload_interval},
            "route in": {"mode": "unwrap", "listen": f"*:{GW_PORT}",
                         "connect": f"127.0.0.1:{self.backend.port}", "peers": "site-a, site-b"},
        }
        self.gw = Gateways(wrapper, tmp_path, request.node)(self.config, "gw")

    def tls(self, src, leaf, dst=netns_util.GW_V4):
        """A TLS connection from `src` presenting `leaf`; handshake done."""
        ctx = util.tls_context(self.pki, cert=self.pki.cert(leaf), key=self.pki.key(leaf),
                               chain=self.pki.chain(leaf))
        raw = self.ns.client_connect(src, dst, GW_PORT)
        try:
            return ctx.wrap_socket(raw, server_hostname="server.zonegate.test")
        except Exception:
            raw.close()
            raise

    def works(self, src, leaf, dst=netns_util.GW_V4):
        """True if data makes it through and back; False if refused at any step."""
        try:
            s = self.tls(src, leaf, dst)
        except (ssl.SSLError, OSError):
            return False
        try:
            return util.echo_roundtrip(s, b"C-ECHO\n", timeout=5) == b"C-ECHO\n"
        except (AssertionError, ssl.SSLError, OSError):
            return False
        finally:
            s.close()

    def stop(self):
        self.backend.stop()


@pytest.fixture
def site(request, tmp_path, zonegate_bin, pki, netns, operator):
    operator.publish(directory_doc(10, standard_participants()))
    s = Site(request, tmp_path, zonegate_bin, pki, netns, operator)
    yield s
    s.stop()


def test_bound_address_and_certificate_pass(site):
    """Positive control: passes with or without the wiring."""
    assert site.works(A_V4, "site-a")
    assert site.works(B_V4, "site-b")
    assert site.works(A_V6, "site-a", dst=netns_util.GW_V6)


def test_valid_certificate_from_another_participants_address_is_refused(site):
    assert not site.works(B_V4, "site-a")
    ev = site.gw.wait_for_reason("directory_identity_mismatch")[0]
    assert ev["peer"].startswith(B_V4 + ":")
    assert "site-b" in ev.get("detail", "") and "site-a" in ev.get("detail", "")


def test_right_address_with_another_participants_certificate_is_refused(site):
    assert not site.works(A_V4, "site-b")
    site.gw.wait_for_reason("directory_identity_mismatch")
    # a certificate that belongs to no participant at all
    assert not site.works(A_V4, "wrongname")
    site.gw.wait_for_reason("directory_identity_mismatch", count=2)


def test_unknown_address_is_closed_before_any_tls_byte(site):
    s = site.ns.client_connect(UNKNOWN_V4, netns_util.GW_V4, GW_PORT)
    try:
        # offer nothing: a gateway that waits for a ClientHello is wrong too
        assert util.closed_by_peer(s, timeout=5), "gateway kept an unknown address open"
    finally:
        s.close()
    ev = site.gw.wait_for_event("refused", reason="directory_unknown_address")[0]
    assert ev["peer"].startswith(UNKNOWN_V4 + ":")
    assert not site.works(UNKNOWN_V4, "site-a")


def test_participant_not_in_route_peers_is_refused(site):
    assert not site.works(C_V4, "client")
    site.gw.wait_for_reason("directory_peer_not_allowed")


def test_reload_closes_live_connection_of_removed_address_after_grace(site, operator):
    live = site.tls(A_V4, "site-a")
    other = site.tls(B_V4, "site-b")
    try:
        assert util.echo_roundtrip(live, b"before\n") == b"before\n"
        parts = standard_participants()
        parts[0]["prefixes"] = [A_V6 + "/128"]  # site-a loses its IPv4 address
        operator.publish(directory_doc(11, parts))
        mark = site.gw.reload()
        site.gw.wait_for_event("reload", since=mark, result="ok")
        # within the grace period the connection still carries data
        assert util.echo_roundtrip(live, b"grace\n", timeout=1) == b"grace\n"
        assert util.closed_by_peer(live, timeout=8), "live connection not closed after the grace"
        ev = site.gw.wait_for_event("conn_close", since=mark, reason="directory_unknown_address")[0]
        assert ev["peer"].startswith(A_V4 + ":")
        # the connection the new directory still allows lives on
        assert util.echo_roundtrip(other, b"still\n") == b"still\n"
        assert not site.works(A_V4, "site-a")
        assert site.works(A_V6, "site-a", dst=netns_util.GW_V6)
    finally:
        live.close()
        other.close()


@pytest.mark.parametrize("bad,code", [
    ("tampered", "directory_bad_signature"),
    ("expired", "directory_expired"),
    ("rollback", "directory_rollback"),
    ("unsigned", "directory_unsigned"),
    ("future", "directory_not_yet_valid"),
    ("malformed", "directory_malformed"),
    ("unreadable", "directory_unreadable"),
])
def test_bad_directory_on_reload_keeps_last_good(site, operator, bad, code):
    parts = standard_participants()
    parts[0]["prefixes"] = [UNKNOWN_V4 + "/32"]  # what an attacker would like in force
    if bad == "tampered":
        operator.publish(directory_doc(11, standard_participants()),
                         tamper=lambda t: t.replace(A_V4, UNKNOWN_V4))
    elif bad == "expired":
        operator.publish(directory_doc(11, parts, issued=-7200, expires=-60))
    elif bad == "rollback":
        operator.publish(directory_doc(9, parts))
    elif bad == "unsigned":
        operator.publish(directory_doc(11, parts))
        os.unlink(operator.sig)
    elif bad == "future":
        operator.publish(directory_doc(11, parts, issued=7200))
    elif bad == "malformed":
        # well signed (openssl, as `directory sign` refuses it) but two
        # participants claim one prefix
        doc = directory_doc(11, parts)
        doc["participants"][1]["prefixes"].append(UNKNOWN_V4 + "/32")
        operator.json.write_text(json.dumps(doc))
        subprocess.run(["openssl", "pkeyutl", "-sign", "-inkey", operator.key, "-rawin",
                        "-in", str(operator.json), "-out", str(operator.sig)], check=True)
    elif bad == "unreadable":
        operator.publish(directory_doc(11, parts))
        os.unlink(operator.sig)
        os.mkdir(operator.sig)  # not a regular file
    mark = site.gw.reload()
    site.gw.wait_for_event("reload", since=mark, result="refused")
    errs = [e.get("msg", "") for e in site.gw.events("config_error", since=mark)]
    # the message's cause starts with the code (docs/operations.md)
    assert any(re.search(r"\b" + code + r": ", m) for m in errs), errs
    # the last good directory (serial 10) is still in force
    assert site.works(A_V4, "site-a")
    assert not site.works(UNKNOWN_V4, "site-a")


def test_gateway_refuses_to_start_with_a_tampered_directory(tmp_path, zonegate_bin, pki, operator):
    operator.publish(directory_doc(1, standard_participants()),
                     tamper=lambda t: t.replace(A_V4, UNKNOWN_V4))
    conf = tmp_path / "gw.conf"
    conf.write_text(f"""[tls]
certificate = {pki.cert('server')}
key = {pki.key('server')}
chain = {pki.intermediate()}
trust_anchors = {pki.roots}
[directory]
file = {operator.json}
public_key = {operator.pub}
[route in]
mode = unwrap
listen = 127.0.0.1:{util.free_port()}
connect = 127.0.0.1:104
peers = site-a
""")
    os.chmod(conf, 0o600)
    cp = subprocess.run([zonegate_bin, "check", "-c", str(conf)], capture_output=True, text=True)
    assert cp.returncode == 3, cp.stdout + cp.stderr
    assert "directory_bad_signature" in cp.stdout + cp.stderr


def test_published_directory_is_picked_up_by_the_file_watch(request, tmp_path, zonegate_bin, pki,
                                                            netns, operator):
    operator.publish(directory_doc(10, standard_participants()))
    site = Site(request, tmp_path, zonegate_bin, pki, netns, operator, reload_interval="200ms")
    try:
        assert not site.works(UNKNOWN_V4, "site-a")
        parts = standard_participants()
        parts[0]["prefixes"].append(UNKNOWN_V4 + "/32")  # site-a gains an address
        mark = site.gw.mark()
        operator.publish(directory_doc(11, parts))
        site.gw.wait_for_event("directory_changed", since=mark)
        site.gw.wait_for_event("reload", since=mark, result="ok")
        assert site.works(UNKNOWN_V4, "site-a")
        # a tampered file seen by the watch is refused like any reload
        mark = site.gw.mark()
        operator.publish(directory_doc(12, standard_participants()),
                         tamper=lambda t: t.replace(B_V4, UNKNOWN_V4))
        site.gw.wait_for_event("reload", since=mark, result="refused")
        assert site.works(UNKNOWN_V4, "site-a")
    finally:
        site.stop()


class TlsEchoUpstream:
    """A TLS echo server on `addr` in the client namespace presenting `leaf`:
    the remote participant a wrap route connects to."""

    def __init__(self, ns, pki, addr, leaf):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(pki.chain(leaf), pki.key(leaf))
        fam = socket.AF_INET6 if ":" in addr else socket.AF_INET

        def make():
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((addr, 0))
            s.listen(16)
            return s

        self.sock = netns_util.run_in_netns(ns.cl, make)
        self.port = self.sock.getsockname()[1]
        self.addr = addr
        self._stop = False
        self._t = threading.Thread(target=self._serve, daemon=True)
        self._t.start()

    def _serve(self):
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._one, args=(c,), daemon=True).start()

    def _one(self, c):
        try:
            c.settimeout(10)
            t = self.ctx.wrap_socket(c, server_side=True)
            while True:
                d = t.recv(65536)
                if not d:
                    break
                t.sendall(d)
        except (OSError, ssl.SSLError):
            pass
        finally:
            c.close()

    def stop(self):
        self._stop = True
        self._t.join(2)
        self.sock.close()


@pytest.mark.parametrize("server_at,leaf,peers,expect", [
    (A_V4, "site-a", "site-a", "ok"),
    (A_V4, "site-a", "site-b", "directory_peer_not_allowed"),
    (B_V4, "site-a", "*", "directory_identity_mismatch"),   # site-a's certificate at site-b's address
    (UNKNOWN_V4, "site-a", "*", "directory_unknown_address"),
])
def test_wrap_route_binds_upstream_address_and_server_certificate(
        request, tmp_path, zonegate_bin, pki, netns, operator, server_at, leaf, peers, expect):
    operator.publish(directory_doc(10, standard_participants()))
    up = TlsEchoUpstream(netns, pki, server_at, leaf)
    wrapper = netns.wrapper(tmp_path / "zonegate-in-netns", zonegate_bin)
    config = {
        "gateway": gateway_section("gw"),
        "tls": pki.tls("site-b"),
        "directory": {"file": str(operator.json), "public_key": operator.pub, "reload_interval": "0"},
        "route out": {"mode": "wrap", "listen": "127.0.0.1:11112", "connect": f"{server_at}:{up.port}",
                      "server_name": "site-a.zonegate.test", "allow_from": "127.0.0.0/8",
                      "peers": peers},
    }
    gw = Gateways(wrapper, tmp_path, request.node)(config, "gw")
    try:
        def client():
            s = socket.create_connection(("127.0.0.1", 11112), timeout=10)
            return s
        s = netns_util.run_in_netns(netns.gw, client)
        try:
            if expect == "ok":
                assert util.echo_roundtrip(s, b"A-ASSOCIATE\n") == b"A-ASSOCIATE\n"
            else:
                assert util.closed_by_peer(s, timeout=10)
                ev = gw.wait_for_reason(expect)[0]
                assert ev["route"] == "out"
        finally:
            s.close()
    finally:
        up.stop()


def test_reload_narrowing_route_peers_closes_live_connection_after_grace(site, operator):
    live = site.tls(B_V4, "site-b")
    try:
        assert util.echo_roundtrip(live, b"before\n") == b"before\n"
        cfg = dict(site.config)
        cfg["route in"] = dict(cfg["route in"], peers="site-a")
        mark = site.gw.reload(cfg)  # same directory file, narrower route
        site.gw.wait_for_event("reload", since=mark, result="ok")
        assert util.closed_by_peer(live, timeout=8)
        site.gw.wait_for_event("conn_close", since=mark, reason="directory_peer_not_allowed")
        assert not site.works(B_V4, "site-b")
        assert site.works(A_V4, "site-a")
    finally:
        live.close()


def test_expired_directory_in_force_refuses_new_connections(request, tmp_path, zonegate_bin, pki,
                                                            netns, operator):
    operator.publish(directory_doc(10, standard_participants(), issued=-60, expires=4))
    site = Site(request, tmp_path, zonegate_bin, pki, netns, operator)
    try:
        assert site.works(A_V4, "site-a")
        util.wait_until(lambda: not site.works(A_V4, "site-a"), 15, 0.5,
                        "the expired directory to refuse connections")
        ev = site.gw.wait_for_event("refused", reason="directory_stale")[0]
        assert "expired" in ev.get("detail", "")
    finally:
        site.stop()


def test_participant_max_connections(request, tmp_path, zonegate_bin, pki, netns, operator):
    parts = standard_participants()
    parts[0]["max_connections"] = 2
    operator.publish(directory_doc(10, parts))
    site = Site(request, tmp_path, zonegate_bin, pki, netns, operator)
    held = []
    try:
        held = [site.tls(A_V4, "site-a") for _ in range(2)]
        for s in held:
            assert util.echo_roundtrip(s, b"x\n") == b"x\n"
        assert not site.works(A_V4, "site-a")
        site.gw.wait_for_reason("directory_participant_limit")
        assert site.works(B_V4, "site-b")  # other participants are not affected
        held.pop().close()
        util.wait_until(lambda: site.works(A_V4, "site-a"), 10, 0.2, "a freed slot")
    finally:
        for s in held:
            s.close()
        site.stop()
