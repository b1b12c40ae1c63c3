"""The operator interface around a running gateway: CLI exit codes, the
startup log lines the contract defines, and per-connection log fields."""
import re
import subprocess
import time

import util
from conftest import make_config, sanitizer_lines, zg_env


def _run(zonegate_bin, *args):
    cp = subprocess.run([zonegate_bin, *args], capture_output=True, text=True, timeout=30,
                        env=zg_env(), stdin=subprocess.DEVNULL)
    assert not sanitizer_lines(cp.stdout + cp.stderr), cp.stderr
    return cp


def test_version_and_help(zonegate_bin):
    cp = _run(zonegate_bin, "version")
    assert cp.returncode == 0 and re.match(r"zonegate \d+\.\d+\.\d+", cp.stdout), cp
    for sub in ("run", "check"):
        cp = _run(zonegate_bin, sub, "--help")
        assert cp.returncode == 0, cp
        assert "-c" in cp.stdout + cp.stderr
    assert _run(zonegate_bin, "run").returncode == 2
    assert _run(zonegate_bin, "frobnicate").returncode == 2


def test_missing_config_file_exit_3(zonegate_bin, tmp_path):
    cp = _run(zonegate_bin, "run", "-c", str(tmp_path / "absent.conf"))
    assert cp.returncode == 3, cp
    assert str(tmp_path / "absent.conf") in cp.stderr


def test_startup_logs_listening_per_route_and_ready(pki, gateway, port, echo_server):
    echo = echo_server()
    p1, p2 = port(), port("::1")
    gw = gateway(make_config(pki, {
        "in": {"mode": "unwrap", "listen": f"127.0.0.1:{p1}", "connect": echo.addr},
        "in6": {"mode": "unwrap", "listen": f"[::1]:{p2}", "connect": echo.addr},
    }, name="site-b", gateway={"workers": 2, "log_level": "debug"}), name="site-b")
    ready = gw.events("ready")
    assert len(ready) == 1
    assert ready[0]["routes"] == "2" and ready[0]["workers"] == "2"
    assert ready[0]["generation"] == "1"
    listening = gw.events("listening")
    addrs = {(e["route"], e["addr"]) for e in listening}
    assert ("in", f"127.0.0.1:{p1}") in addrs, listening
    assert ("in6", f"[::1]:{p2}") in addrs, listening
    # one SO_REUSEPORT listener per route per worker
    assert sorted(e["worker"] for e in listening if e["route"] == "in") == ["0", "1"], listening


def test_conn_open_and_close_lines(pki, gateway, port, echo_server):
    echo = echo_server()
    p = port()
    gw = gateway(make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{p}",
                                          "connect": echo.addr}}, name="site-b",
                             gateway={"log_level": "debug"}), name="site-b")
    ctx = util.tls_context(pki, pki.chain("client", "rsa"), pki.key("client", "rsa"))
    t0 = time.monotonic()
    with util.tls_connect(ctx, "127.0.0.1", p) as s:
        local = s.getsockname()
        assert util.echo_roundtrip(s, b"x" * 1000) == b"x" * 1000
        s.unwrap()  # close_notify: an orderly close (a bare FIN is client_truncated)
    op = gw.wait_for_event("conn_open", route="in")[0]
    cl = gw.wait_for_event("conn_close", route="in")[0]
    took_ms = (time.monotonic() - t0) * 1000
    assert op["peer"] == f"127.0.0.1:{local[1]}"
    assert cl["id"] == op["id"] and cl["peer"] == op["peer"]
    for k in ("upstream", "tls", "cipher", "resumed", "subject", "san", "bytes_in", "bytes_out",
              "duration_ms", "reason"):
        assert k in cl, f"conn_close lacks {k}: {cl}"
    assert cl["reason"] == "client_closed", cl
    assert cl["bytes_in"] == "1000" and cl["bytes_out"] == "1000"
    # the connection lived inside the client's own measurement (an unsigned
    # field cannot be negative: the upper bound is the check)
    assert int(cl["duration_ms"]) <= took_ms, (cl, took_ms)
    assert re.match(r"^\d+\.\d+$", cl["id"]), cl["id"]
    line = [ln for ln in gw.log().splitlines() if "event=conn_close" in ln][0]
    assert re.match(r"^ts=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z level=info event=conn_close ", line), line


def test_connections_spread_over_workers(pki, gateway, port, echo_server):
    """One SO_REUSEPORT listener per worker: the kernel spreads connections,
    and connection ids (WORKER.N) show both workers serving."""
    echo = echo_server()
    p = port()
    gw = gateway(make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{p}",
                                          "connect": echo.addr}}, name="site-b",
                             gateway={"workers": 2}), name="site-b")
    ctx = util.tls_context(pki, pki.chain("client"), pki.key("client"))
    for i in range(40):
        with util.tls_connect(ctx, "127.0.0.1", p) as s:
            assert util.echo_roundtrip(s, b"%d\n" % i) == b"%d\n" % i
    ev = gw.wait_for_event("conn_close", count=40, route="in")
    workers = {e["id"].split(".")[0] for e in ev}
    assert workers == {"0", "1"}, workers


def test_workers_option_and_auto(pki, gateway, port, echo_server):
    import os
    echo = echo_server()
    cfg = make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{port()}",
                                   "connect": echo.addr}}, name="site-b",
                      gateway={"workers": "auto"})
    gw = gateway(cfg, name="auto")
    # one per core: online CPUs, or the CPUs this process may run on
    assert gw.events("ready")[0]["workers"] in (str(os.cpu_count()),
                                                str(len(os.sched_getaffinity(0))))
    cfg["route in"]["listen"] = f"127.0.0.1:{port()}"
    gw1 = gateway(cfg, name="one", args=("--workers", "1"))
    assert gw1.events("ready")[0]["workers"] == "1"
