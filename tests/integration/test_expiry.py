"""Expiry warnings (issue 13): a trust anchor that expires in 5 days gives
one warning log line and one audit record (110113 / 110129) for the 7-day
threshold (the 30-day one is not repeated), none again after a reload, its
date in the metrics, and `zonegate check` prints the days left.
"""
import re
import subprocess
import time
import urllib.request

import util
from conftest import make_config


def short_root(tmp_path, days=5):
    key, cert = tmp_path / "short.key", tmp_path / "short.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", str(days), "-subj",
                    "/CN=short-lived root", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert.read_text()


def test_expiry_warned_once_per_threshold(pki, gateway, port, echo_server, tmp_path,
                                          zonegate_bin):
    anchors = tmp_path / "anchors.pem"
    anchors.write_text(open(pki.roots).read() + short_root(tmp_path))
    echo = echo_server()
    admin = port()
    cfg = make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{port()}",
                                   "connect": echo.addr}}, name="site-b",
                      tls={"trust_anchors": str(anchors)})
    cfg["audit"] = {"file": str(tmp_path / "audit.log"), "spool_dir": str(tmp_path / "spool")}
    cfg["admin"] = {"listen": f"127.0.0.1:{admin}"}
    (tmp_path / "spool").mkdir()
    gw = gateway(cfg, name="site-b")
    ev = gw.wait_for_event("expiry_warning", kind="trust_anchor")
    # notAfter is 5 days from the certificate's creation, a moment ago
    assert ev[0]["days_left"] in ("4", "5") and ev[0]["threshold_days"] == "7", ev
    assert "short-lived root" in ev[0]["name"]
    audit = util.wait_until(lambda: (lambda t: t if "Security Configuration" in t else None)(
        (tmp_path / "audit.log").read_text()), 15, 0.1, "the expiry_warning audit record")
    assert 'csd-code="110129"' in audit and "short-lived root" in audit

    mark = gw.reload()
    gw.wait_for_log(r"event=reload result=ok", since=mark)
    time.sleep(1.5)
    assert len(gw.events("expiry_warning", kind="trust_anchor")) == 1, gw.events("expiry_warning")

    with urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=10) as r:
        text = r.read().decode()
    assert 'zonegate_expiry_timestamp_seconds{kind="trust_anchor",name="/CN=short-lived root"}' in text

    r = subprocess.run([zonegate_bin, "check", "-c", str(gw.conf_path)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    line = next(ln for ln in r.stdout.splitlines() if "short-lived root" in ln)
    assert re.fullmatch(r"# expiry: trust_anchor /CN=short-lived root: "
                        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ, in [45] days "
                        r"\(past the 7d warning\)", line), line
    assert any(ln.startswith("# expiry: certificate ") for ln in r.stdout.splitlines())


def test_configured_threshold_warns_once(pki, gateway, port, echo_server, tmp_path,
                                         zonegate_bin):
    """[admin] expiry_warn = 400d 90d: a trust anchor made now for 300 days
    crosses 400d (not 90d): one warning line and one audit record for it,
    none again after a reload, and `check` names the threshold passed."""
    anchors = tmp_path / "anchors.pem"
    anchors.write_text(open(pki.roots).read() + short_root(tmp_path, days=300))
    echo = echo_server()
    cfg = make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{port()}",
                                   "connect": echo.addr}}, name="site-b",
                      tls={"trust_anchors": str(anchors)})
    cfg["audit"] = {"file": str(tmp_path / "audit.log"), "spool_dir": str(tmp_path / "spool")}
    cfg["admin"] = {"expiry_warn": "90d 400d"}
    (tmp_path / "spool").mkdir()
    gw = gateway(cfg, name="site-b")
    ev = gw.wait_for_event("expiry_warning", kind="trust_anchor", name="/CN=short-lived root")
    assert ev[0]["days_left"] in ("299", "300") and ev[0]["threshold_days"] == "400", ev
    audit = util.wait_until(lambda: (lambda t: t if "short-lived root" in t else None)(
        (tmp_path / "audit.log").read_text()), 15, 0.1, "the expiry_warning audit record")
    assert 'csd-code="110129"' in audit and "threshold 400 days" in audit

    mark = gw.reload()
    gw.wait_for_log(r"event=reload result=ok", since=mark)
    time.sleep(1.5)
    assert len(gw.events("expiry_warning", name="/CN=short-lived root")) == 1, \
        gw.events("expiry_warning")
    assert (tmp_path / "audit.log").read_text().count("short-lived root") == 1

    r = subprocess.run([zonegate_bin, "check", "-c", str(gw.conf_path)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "expiry_warn = 400d 90d" in r.stdout
    line = next(ln for ln in r.stdout.splitlines() if "short-lived root" in ln)
    assert re.fullmatch(r"# expiry: trust_anchor /CN=short-lived root: "
                        r"\S+, in (299|300) days \(past the 400d warning\)", line), line
