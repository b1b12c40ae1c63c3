"""The admin listener (issue 13): Prometheus text exposition at /metrics,
/health and /ready, checked by `promtool check metrics` and scraped by a real
Prometheus server the test starts on loopback, whose HTTP API must give
back what the gateway counted.
"""
import json
import os
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

import util
from conftest import make_config, zg_env

PAYLOAD = b"counted\n"


def http_get(port, path, timeout=10):
    """(status, body) of GET http://127.0.0.1:port/path."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def metric(text, name, **labels):
    """The value of sample `name{labels}` in an exposition, or None."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        if head.split("{")[0] != name:
            continue
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            return float(value)
    return None


@pytest.fixture
def admin_gw(pki, gateway, port, echo_server):
    echo = echo_server()
    p, admin = port(), port()
    cfg = make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{p}",
                                   "connect": echo.addr}}, name="site-b")
    cfg["admin"] = {"listen": f"127.0.0.1:{admin}"}
    gw = gateway(cfg, name="site-b")
    gw.wait_for_log(r"event=admin_listening")
    return gw, p, admin


def test_exposition_counts_and_passes_promtool(admin_gw, pki):
    gw, p, admin = admin_gw
    ctx = util.tls_context(pki, pki.chain("client"), pki.key("client"))
    for _ in range(3):
        with util.tls_connect(ctx, "127.0.0.1", p) as s:
            assert util.echo_roundtrip(s, PAYLOAD) == PAYLOAD
    with util.connect("127.0.0.1", p) as s:  # no TLS: refused
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        util.closed_by_peer(s, 10)
    gw.wait_for_event("conn_close", count=3)
    gw.wait_for_event("refused")
    status, text = http_get(admin, "/metrics")
    assert status == 200
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr + text
    assert metric(text, "zonegate_route_connections_accepted_total", route="in") == 4
    # python's ssl closes without close_notify: a truncation, by the client
    assert (metric(text, "zonegate_connections_ended_total", route="in",
                   reason="client_closed") or 0) + (
        metric(text, "zonegate_connections_ended_total", route="in",
               reason="client_truncated") or 0) == 3, text
    assert metric(text, "zonegate_connections_ended_total", route="in", reason="tls_not_tls") == 1
    assert metric(text, "zonegate_handshake_in_duration_seconds_count") == 3
    assert metric(text, "zonegate_handshake_in_duration_seconds_bucket", le="+Inf") == 3
    assert metric(text, "zonegate_upstream_connect_duration_seconds_count") == 3
    assert metric(text, "zonegate_connections_active") == 0
    assert metric(text, "zonegate_config_generation") == 1
    assert metric(text, "zonegate_build_info", version="0.1.0") == 1
    # our certificate's notAfter, from the file itself
    nb = subprocess.run(["openssl", "x509", "-noout", "-enddate", "-in", pki.cert("site-b")],
                        capture_output=True, text=True, check=True).stdout.strip().split("=", 1)[1]
    want = time.mktime(time.strptime(nb, "%b %d %H:%M:%S %Y %Z")) - time.timezone
    got = metric(text, "zonegate_expiry_timestamp_seconds", kind="certificate")
    assert got is not None and abs(got - want) < 2, (got, want)
    assert metric(text, "zonegate_expiry_timestamp_seconds", kind="trust_anchor") is not None


def test_health_ready_and_other_paths(admin_gw):
    gw, p, admin = admin_gw
    assert http_get(admin, "/health") == (200, "ok\n")
    assert http_get(admin, "/ready") == (200, "ready\n")
    assert http_get(admin, "/nope")[0] == 404
    req = urllib.request.Request(f"http://127.0.0.1:{admin}/metrics", method="POST", data=b"x")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 405


def test_admin_listener_is_loopback_only(pki, gateway, port, echo_server):
    echo = echo_server()
    cfg = make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{port()}",
                                   "connect": echo.addr}}, name="site-b")
    cfg["admin"] = {"listen": f"0.0.0.0:{port()}"}
    gw = gateway(cfg, name="site-b", wait_ready=False)
    assert gw.wait(20) == 4
    assert "must be a loopback address" in gw.log()


def test_a_real_prometheus_scrapes_it(admin_gw, pki, tmp_path, port):
    gw, p, admin = admin_gw
    ctx = util.tls_context(pki, pki.chain("client"), pki.key("client"))
    for _ in range(2):
        with util.tls_connect(ctx, "127.0.0.1", p) as s:
            assert util.echo_roundtrip(s, PAYLOAD) == PAYLOAD
    gw.wait_for_event("conn_close", count=2)
    prom_port = port()
    conf = tmp_path / "prometheus.yml"
    conf.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n  - job_name: zonegate\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{admin}']\n")
    log = open(tmp_path / "prometheus.log", "wb")
    prom = subprocess.Popen(["prometheus", f"--config.file={conf}",
                             f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{prom_port}"],
                            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    try:
        q = urllib.parse.quote('sum(zonegate_connections_ended_total{route="in"})')

        def value():
            try:
                status, body = http_get(prom_port, f"/api/v1/query?query={q}", timeout=5)
            except OSError:
                return None
            if status != 200:
                return None
            res = json.loads(body)["data"]["result"]
            return res[0]["value"][1] if res else None

        assert util.wait_until(value, 60, 0.5, "Prometheus to have scraped zonegate") == "2"
        # a traffic-class counter: both round trips ran in the implicit default class
        q = urllib.parse.quote(
            'zonegate_class_bytes_total{class="default",direction="to_upstream"}')
        assert util.wait_until(value, 30, 0.5, "the class counter in Prometheus") == \
            str(2 * len(PAYLOAD))
        status, body = http_get(prom_port, "/api/v1/targets")
        target = json.loads(body)["data"]["activeTargets"][0]
        assert target["health"] == "up", target
    finally:
        prom.terminate()
        try:
            prom.wait(20)
        except subprocess.TimeoutExpired:
            prom.kill()
            prom.wait()
        log.close()


def test_class_counters_and_override_state(pki, gateway, port, echo_server, tmp_path):
    """Per-class counters (connections, refusals, bytes per direction) and the
    override gauge per route, as the workers and the control thread keep them."""
    echo = echo_server()
    p, admin = port(), port()
    sock = tmp_path / "control.sock"
    cfg = make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{p}",
                                   "connect": echo.addr, "class": "clinical"}}, name="site-b")
    cfg["class clinical"] = {"rate": "50Mbit/s", "max_connections": "1"}
    cfg["admin"] = {"listen": f"127.0.0.1:{admin}"}
    cfg["control"] = {"socket": str(sock)}
    gw = gateway(cfg, name="site-b")
    gw.wait_for_log(r"event=admin_listening")
    ctx = util.tls_context(pki, pki.chain("client"), pki.key("client"))
    with util.tls_connect(ctx, "127.0.0.1", p) as held:
        assert util.echo_roundtrip(held, PAYLOAD) == PAYLOAD
        try:  # over the class's limit: refused during or right after the handshake
            with util.tls_connect(ctx, "127.0.0.1", p) as over:
                assert util.closed_by_peer(over, 10)
        except (ssl.SSLError, OSError):
            pass
        gw.wait_for_reason("class_max_connections")
        text = http_get(admin, "/metrics")[1]
        assert metric(text, "zonegate_class_connections_active", **{"class": "clinical"}) == 1
    util.wait_until(lambda: metric(http_get(admin, "/metrics")[1], "zonegate_connections_active")
                    == 0, 10, 0.1, "the held connection to end")
    status, text = http_get(admin, "/metrics")
    assert status == 200
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr + text
    cl = {"class": "clinical"}
    assert metric(text, "zonegate_class_connections_total", **cl) == 1, text
    assert metric(text, "zonegate_class_refused_total", **cl) == 1, text
    assert metric(text, "zonegate_class_connections_active", **cl) == 0
    assert metric(text, "zonegate_class_bytes_total", direction="to_upstream", **cl) == len(PAYLOAD)
    assert metric(text, "zonegate_class_bytes_total", direction="to_client", **cl) == len(PAYLOAD)
    assert metric(text, "zonegate_class_rate_bytes_per_second", **cl) == 50e6 / 8
    assert metric(text, "zonegate_class_throttled_seconds_total", direction="to_client",
                  **cl) is not None
    assert metric(text, "zonegate_override_active", route="in", relaxed="") == 0
    assert metric(text, "zonegate_override_seconds_left", route="in") == 0

    def ctl(*args):
        return subprocess.run([gw.binary, "ctl", "-s", str(sock), *args], capture_output=True,
                              text=True, timeout=60, env=zg_env())
    r = ctl("override", "start", "--route", "in", "--relax", "crl_stale,cert_expired", "--for",
            "10m", "--reason", "metrics test")
    assert r.returncode == 0, r.stderr
    text = http_get(admin, "/metrics")[1]
    assert metric(text, "zonegate_override_active", route="in",
                  relaxed="crl_stale,cert_expired") == 1, text
    assert 590 <= metric(text, "zonegate_override_seconds_left", route="in") <= 600
    assert ctl("override", "stop").returncode == 0
    text = http_get(admin, "/metrics")[1]
    assert metric(text, "zonegate_override_active", route="in", relaxed="") == 0, text
    assert metric(text, "zonegate_override_seconds_left", route="in") == 0


def curl(admin, *args):
    """curl https://site-b.zonegate.test:admin/metrics (resolved to loopback)."""
    return subprocess.run(["curl", "-sS", "--max-time", "10", "--resolve",
                           f"site-b.zonegate.test:{admin}:127.0.0.1", *args,
                           f"https://site-b.zonegate.test:{admin}/metrics"],
                          capture_output=True, text=True, timeout=30)


def test_admin_listener_mutual_tls(pki, gateway, port, echo_server, tmp_path):
    """[admin] tls = on: the admin listener serves with the [tls] identity and
    wants a client certificate judged as a route's clients are: curl with
    one scrapes, curl without one, with an untrusted one, or plain HTTP is
    refused with a reason code in the log."""
    echo = echo_server()
    admin = port()
    cfg = make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{port()}",
                                   "connect": echo.addr}}, name="site-b")
    cfg["admin"] = {"listen": f"127.0.0.1:{admin}", "tls": "on"}
    gw = gateway(cfg, name="site-b")
    gw.wait_for_log(r"event=admin_listening")
    r = curl(admin, "--cacert", pki.roots, "--cert", pki.chain("client"), "--key",
             pki.key("client"))
    assert r.returncode == 0, r.stderr
    assert "zonegate_build_info{" in r.stdout

    r = curl(admin, "--cacert", pki.roots)  # no client certificate
    assert r.returncode != 0 and "zonegate_build_info" not in r.stdout
    ev = gw.wait_for_event("admin_refused")
    assert ev[-1]["reason"] == "tls_no_client_certificate", ev

    key, crt = tmp_path / "self.key", tmp_path / "self.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "30", "-subj",
                    "/CN=not ours", "-keyout", str(key), "-out", str(crt)],
                   check=True, capture_output=True)
    r = curl(admin, "--cacert", pki.roots, "--cert", str(crt), "--key", str(key))
    assert r.returncode != 0 and "zonegate_build_info" not in r.stdout
    ev = gw.wait_for_event("admin_refused", count=2)
    assert ev[-1]["reason"] == "tls_untrusted_chain", ev

    with pytest.raises(OSError):  # plain HTTP to the TLS listener
        http_get(admin, "/metrics", timeout=5)
    gw.wait_for_event("admin_refused", count=3)
    # the data path still serves
    ctx = util.tls_context(pki, pki.chain("client"), pki.key("client"))
    with util.tls_connect(ctx, "127.0.0.1", gw_port(cfg)) as s:
        assert util.echo_roundtrip(s, PAYLOAD) == PAYLOAD


def gw_port(cfg):
    return int(cfg["route in"]["listen"].rsplit(":", 1)[1])


def test_admin_tls_needs_a_listener(pki, tmp_path, zonegate_bin):
    cfg = make_config(pki, {"in": {"mode": "unwrap", "listen": "127.0.0.1:1",
                                   "connect": "127.0.0.1:2"}}, name="site-b")
    cfg["admin"] = {"tls": "on"}
    path = tmp_path / "z.conf"
    path.write_text("".join(f"[{s}]\n" + "".join(f"{k} = {v}\n" for k, v in kv.items()) + "\n"
                            for s, kv in cfg.items()))
    os.chmod(path, 0o600)
    r = subprocess.run([zonegate_bin, "check", "-c", str(path)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 3, r.stdout + r.stderr
    assert f"{path}:" in r.stderr and "tls: needs listen in [admin]" in r.stderr, r.stderr


def test_admin_listener_has_its_own_trust_store(pki, gateway, port, echo_server):
    """[admin] trust = scrapers: only certificates of that store's CA may
    scrape; a client the routes accept (another CA of [tls]) may not."""
    echo = echo_server()
    admin = port()
    cfg = make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{port()}",
                                   "connect": echo.addr}}, name="site-b")
    cfg["trust scrapers"] = {"trust_anchors": pki.path("root-rsa.pem")}
    cfg["admin"] = {"listen": f"127.0.0.1:{admin}", "tls": "on", "trust": "scrapers"}
    gw = gateway(cfg, name="site-b")
    gw.wait_for_log(r"event=admin_listening")
    r = curl(admin, "--cacert", pki.roots, "--cert", pki.chain("client", "rsa"), "--key",
             pki.key("client", "rsa"))
    assert r.returncode == 0, r.stderr
    assert "zonegate_build_info{" in r.stdout
    r = curl(admin, "--cacert", pki.roots, "--cert", pki.chain("client"), "--key",
             pki.key("client"))
    assert r.returncode != 0 and "zonegate_build_info" not in r.stdout
    ev = gw.wait_for_event("admin_refused")
    assert ev[-1]["reason"] == "tls_untrusted_chain", ev
    # the route still takes the EC client: its store is [tls]'s
    ctx = util.tls_context(pki, pki.chain("client"), pki.key("client"))
    with util.tls_connect(ctx, "127.0.0.1", gw_port(cfg)) as s:
        assert util.echo_roundtrip(s, PAYLOAD) == PAYLOAD
