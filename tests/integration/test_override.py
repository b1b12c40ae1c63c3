"""The emergency override (issue 13, docs/policy.md): for each relaxable
check, a peer it refuses is refused before, admitted during (flagged in its
log line and its audit records), refused again after `override stop` and
after the override expired by itself; checks that are not relaxable stay
refused during an override; starting and stopping are audited as 110113 /
110127 and 110138; a reload keeps a running override.
"""
import os
import ssl
import subprocess
import tempfile
import time

import pytest

import policy_util
import util
from conftest import gateway_section, zg_env

PAYLOAD = b"C-ECHO under break-glass\n"


@pytest.fixture(scope="module")
def ppki(tmp_path_factory):
    return policy_util.make_pki(tmp_path_factory.mktemp("override-pki"))


class Site:
    def __init__(self, ppki, gateway, port, echo_server, tmp_path, override=None):
        self.ppki = ppki
        self.port = port()
        self.sockdir = tempfile.mkdtemp(prefix="zg-ovr-")
        self.sock = os.path.join(self.sockdir, "control.sock")
        self.audit = tmp_path / "audit.log"
        (tmp_path / "spool").mkdir(exist_ok=True)
        self.cfg = {
            "gateway": gateway_section("site-b"),
            "tls": ppki.tls("ok-p256"),
            "route in": {"mode": "unwrap", "listen": f"127.0.0.1:{self.port}",
                         "connect": echo_server().addr},
            "audit": {"file": str(self.audit), "spool_dir": str(tmp_path / "spool")},
            "control": {"socket": self.sock},
            "override": override or {},
        }
        self.gw = gateway(self.cfg, name="site-b")
        self.gw.wait_for_log(r"event=ctl_listening")

    def works(self, leaf, with_cert=True):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.load_verify_locations(self.ppki.anchor)
        if with_cert:
            ctx.load_cert_chain(self.ppki.chain(leaf), self.ppki.key(leaf))
        try:
            with util.tls_connect(ctx, "127.0.0.1", self.port) as s:
                return util.echo_roundtrip(s, PAYLOAD, timeout=5) == PAYLOAD
        except (ssl.SSLError, OSError, AssertionError):
            return False

    def ctl(self, *args):
        return subprocess.run([self.gw.binary, "ctl", "-s", self.sock, *args], capture_output=True,
                              text=True, timeout=60, env=zg_env())

    def audit_text(self):
        return self.audit.read_text() if self.audit.exists() else ""

    def close(self):
        for f in os.listdir(self.sockdir):
            os.unlink(os.path.join(self.sockdir, f))
        os.rmdir(self.sockdir)


@pytest.fixture
def site(ppki, gateway, port, echo_server, tmp_path):
    s = Site(ppki, gateway, port, echo_server, tmp_path, {"cert_expired_max": "336h"})
    yield s
    s.close()


def _start(site, checks, dur="60s", reason="CA down, ticket 4711"):
    r = site.ctl("override", "start", "--route", "in", "--relax", checks, "--for", dur,
                 "--reason", reason)
    assert r.returncode == 0, r.stderr
    return r


@pytest.mark.parametrize("leaf,check", [("bad-crl-stale", "crl_stale"),
                                        ("bad-expired", "cert_expired")])
def test_relaxed_check_before_during_after_stop_and_expiry(site, leaf, check):
    gw = site.gw
    assert not site.works(leaf)
    gw.wait_for_reason(check)
    assert site.works("ok-p256")

    _start(site, check)
    gw.wait_for_event("override_started", route="in", checks=check, user="root")
    st = site.ctl("status")
    assert f"EMERGENCY OVERRIDE on route in: relaxing {check}" in st.stdout, st.stdout
    assert "CA down, ticket 4711" in st.stdout
    mark = gw.mark()
    assert site.works(leaf), gw.log()[-3000:]
    ev = gw.wait_for_event("conn_close", since=mark)[0]
    assert ev["override"] == check, ev
    # a peer that needs no override is not flagged
    mark = gw.mark()
    assert site.works("ok-p256")
    assert "override" not in gw.wait_for_event("conn_close", since=mark)[0]
    util.wait_until(lambda: "admitted by emergency override (relaxed: " + check in site.audit_text(),
                    15, 0.1, "the flagged attach/detach records")
    assert 'csd-code="110127"' in site.audit_text()

    r = site.ctl("override", "stop", "--route", "in")
    assert r.returncode == 0 and "1 emergency override stopped" in r.stdout, r.stderr
    gw.wait_for_event("override_stopped", route="in", by="uid=0")
    assert not site.works(leaf)
    util.wait_until(lambda: 'csd-code="110138"' in site.audit_text(), 15, 0.1, "the 110138 record")
    r = site.ctl("override", "stop")
    assert r.returncode == 1 and "no emergency override in force" in r.stderr

    # time-boxed: it ends by itself
    _start(site, check, dur="3s")
    assert site.works(leaf)
    gw.wait_for_event("override_stopped", route="in", by="expiry", timeout=15)
    assert not site.works(leaf)
    assert "EMERGENCY" not in site.ctl("status").stdout


def test_authentication_is_never_relaxed(site):
    gw = site.gw
    _start(site, "crl_stale,cert_expired")
    # revoked, no certificate, a certificate breaking a policy rule: refused as before
    for leaf, reason, with_cert in [("bad-revoked", "cert_revoked", True),
                                    ("ok-p256", "tls_no_client_certificate", False),
                                    ("bad-leaf-ca", "cert_leaf_is_ca", True),
                                    ("bad-eku", "cert_eku_missing", True)]:
        mark = gw.mark()
        assert not site.works(leaf, with_cert), leaf
        gw.wait_for_reason(reason, since=mark)
    # and an override cannot even be asked for them
    for bad in ("cert_revoked", "tls_untrusted_chain", "tls_no_client_certificate",
                "directory_identity_mismatch", "tls_version", "crl_stale,cert_revoked"):
        r = site.ctl("override", "start", "--route", "in", "--relax", bad, "--for", "60s",
                     "--reason", "x")
        assert r.returncode == 1 and "cannot be relaxed" in r.stderr, (bad, r.stderr)
        assert "never authentication" in r.stderr


def test_limits_of_an_override(ppki, gateway, port, echo_server, tmp_path):
    site = Site(ppki, gateway, port, echo_server, tmp_path,
                {"max_duration": "10m", "cert_expired_max": "120h"})
    try:
        r = site.ctl("override", "start", "--route", "in", "--relax", "crl_stale", "--for", "11m",
                     "--reason", "too long")
        assert r.returncode == 1 and "max_duration" in r.stderr
        r = site.ctl("override", "start", "--route", "in", "--relax", "crl_stale", "--for", "5m")
        assert r.returncode == 1 and "--reason" in r.stderr
        r = site.ctl("override", "start", "--route", "nope", "--relax", "crl_stale", "--for", "5m",
                     "--reason", "x")
        assert r.returncode == 1 and "no route 'nope'" in r.stderr
        # bad-expired ended 10 days ago: past a 5-day cert_expired_max, still refused
        _start(site, "cert_expired")
        assert not site.works("bad-expired")
        site.gw.wait_for_reason("cert_expired")
    finally:
        site.close()


def test_a_reload_keeps_a_running_override(site):
    _start(site, "crl_stale", dur="120s")
    assert site.works("bad-crl-stale")
    mark = site.gw.reload()
    site.gw.wait_for_log(r"event=reload result=ok", since=mark)
    assert site.works("bad-crl-stale")
    r = site.ctl("--json", "status")
    import json
    ovr = json.loads(r.stdout)["overrides"]
    assert len(ovr) == 1 and ovr[0]["route"] == "in" and 0 < ovr[0]["seconds_left"] <= 120


# ------------------------------------------------ directory checks (network namespaces)

import netns_util  # noqa: E402
from conftest import Gateways  # noqa: E402
from test_directory import (A_V4, B_V4, GW_PORT, Site as DirSite,  # noqa: E402,F401
                            directory_doc, netns, operator, standard_participants)


class DirOverrideSite(DirSite):
    """test_directory's site (route `in` inside the netns pair, peers site-a
    and site-b) with a control socket."""

    def __init__(self, request, tmp_path, zonegate_bin, pki, ns, operator):  # noqa: F811
        self.sockdir = tempfile.mkdtemp(prefix="zg-ovr-")
        self.sock = os.path.join(self.sockdir, "control.sock")
        self.zonegate_bin = zonegate_bin
        self.ns = ns
        self.pki = pki
        self.backend = netns_util.EchoBackend(ns.gw_listen("127.0.0.1"))
        wrapper = ns.wrapper(tmp_path / "zonegate-in-netns", zonegate_bin)
        self.config = {
            "gateway": gateway_section("gw"),
            "tls": pki.tls("server"),
            "directory": {"file": str(operator.json), "public_key": operator.pub,
                          "grace_period": "2s", "reload_interval": "0"},
            "route in": {"mode": "unwrap", "listen": f"*:{GW_PORT}",
                         "connect": f"127.0.0.1:{self.backend.port}", "peers": "site-a, site-b"},
            "control": {"socket": self.sock},
        }
        self.gw = Gateways(wrapper, tmp_path, request.node)(self.config, "gw")

    def ctl(self, *args):
        return subprocess.run([self.zonegate_bin, "ctl", "-s", self.sock, *args],
                              capture_output=True, text=True, timeout=60, env=zg_env())

    def start_override(self, check, dur="60s"):
        r = self.ctl("override", "start", "--route", "in", "--relax", check, "--for", dur,
                     "--reason", "directory operator unreachable")
        assert r.returncode == 0, r.stderr

    def stop(self):
        super().stop()
        for f in os.listdir(self.sockdir):
            os.unlink(os.path.join(self.sockdir, f))
        os.rmdir(self.sockdir)


def _flagged(site, check, since):
    ev = site.gw.wait_for_event("conn_close", since=since)
    assert ev[0].get("override") == check, ev


def test_directory_stale_relaxed_but_binding_is_not(request, tmp_path, zonegate_bin, pki, netns,
                                                     operator):  # noqa: F811
    operator.publish(directory_doc(10, standard_participants(), issued=-60, expires=4))
    site = DirOverrideSite(request, tmp_path, zonegate_bin, pki, netns, operator)
    try:
        util.wait_until(lambda: not site.works(A_V4, "site-a"), 15, 0.5, "the directory to expire")
        site.gw.wait_for_reason("directory_stale")
        site.start_override("directory_stale")
        mark = site.gw.mark()
        assert site.works(A_V4, "site-a")
        _flagged(site, "directory_stale", mark)
        # the binding still holds: site-b's certificate from site-a's address
        mark = site.gw.mark()
        assert not site.works(A_V4, "site-b")
        site.gw.wait_for_reason("directory_identity_mismatch", since=mark)
        assert site.ctl("override", "stop").returncode == 0
        assert not site.works(A_V4, "site-a")
        site.start_override("directory_stale", dur="3s")
        assert site.works(A_V4, "site-a")
        site.gw.wait_for_event("override_stopped", by="expiry", timeout=15)
        assert not site.works(A_V4, "site-a")
    finally:
        site.stop()


def test_participant_limit_relaxed(request, tmp_path, zonegate_bin, pki, netns,
                                   operator):  # noqa: F811
    parts = standard_participants()
    parts[0]["max_connections"] = 1
    operator.publish(directory_doc(10, parts))
    site = DirOverrideSite(request, tmp_path, zonegate_bin, pki, netns, operator)
    held = []
    try:
        held.append(site.tls(A_V4, "site-a"))
        assert util.echo_roundtrip(held[0], b"x\n") == b"x\n"
        assert not site.works(A_V4, "site-a")
        site.gw.wait_for_reason("directory_participant_limit")
        site.start_override("directory_participant_limit")
        mark = site.gw.mark()
        assert site.works(A_V4, "site-a")
        _flagged(site, "directory_participant_limit", mark)
        assert site.ctl("override", "stop", "--route", "in").returncode == 0
        assert not site.works(A_V4, "site-a")
        site.start_override("directory_participant_limit", dur="3s")
        assert site.works(A_V4, "site-a")
        site.gw.wait_for_event("override_stopped", by="expiry", timeout=15)
        assert not site.works(A_V4, "site-a")
        held.pop().close()
        util.wait_until(lambda: site.works(A_V4, "site-a"), 10, 0.2, "the freed slot")
    finally:
        for s in held:
            s.close()
        site.stop()


# ------------------------------------------------ the records reach a real collector

from test_audit import _rsyslog_probe, collector, gw_config, rsyslog  # noqa: E402,F401


def _type_codes(records):
    out = []
    for _, _, xml, root in records:
        t = root.find("EventIdentification/EventTypeCode")
        out.append((t.get("csd-code") if t is not None else None, xml))
    return out


def test_override_records_reach_rsyslog(tmp_path, pki, port, collector, gateway,  # noqa: F811
                                        echo_server):
    echo = echo_server()
    lp = port()
    cfg = gw_config(pki, tmp_path, collector.port, lp, echo.addr)
    sockdir = tempfile.mkdtemp(prefix="zg-ovr-")
    sock = os.path.join(sockdir, "control.sock")
    cfg["control"] = {"socket": sock}
    cfg["override"] = {"cert_expired_max": "336h"}  # the test leaf expired 10 days ago
    gw = gateway(cfg, name="site-a")
    ctx = util.tls_context(pki, cert=pki.cert("expired"), key=pki.key("expired"),
                           chain=pki.chain("expired"))

    def works():
        try:
            with util.tls_connect(ctx, "127.0.0.1", lp) as s:
                return util.echo_roundtrip(s, PAYLOAD, timeout=5) == PAYLOAD
        except (ssl.SSLError, OSError, AssertionError):
            return False

    def ctl(*args):
        return subprocess.run([gw.binary, "ctl", "-s", sock, *args], capture_output=True,
                              text=True, timeout=60, env=zg_env())
    try:
        assert not works()
        r = ctl("override", "start", "--route", "in", "--relax", "cert_expired", "--for", "60s",
                "--reason", "partner renewal late, ticket 99")
        assert r.returncode == 0, r.stderr
        assert works()
        assert ctl("override", "stop").returncode == 0
        assert not works()

        def seen():
            codes = _type_codes(collector.records())
            return codes if {"110127", "110138"} <= {c for c, _ in codes} else None
        codes = util.wait_until(seen, 30, 0.2, "110127 and 110138 at the collector")
        start = next(x for c, x in codes if c == "110127")
        assert "cert_expired" in start or "Y2VydF9leHBpcmVk" in start  # plain or base64 detail
        flagged = [x for c, x in codes if c in ("110124", "110125")]
        assert len(flagged) == 2, codes  # attach + detach of the one admitted connection
    finally:
        for f in os.listdir(sockdir):
            os.unlink(os.path.join(sockdir, f))
        os.rmdir(sockdir)
