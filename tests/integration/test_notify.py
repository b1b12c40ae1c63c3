"""systemd notification (issue 13): READY=1 once the listeners are bound,
RELOADING=1 + MONOTONIC_USEC then READY=1 around a reload, STOPPING=1 at the
drain, STATUS= lines, and WATCHDOG=1 only while every worker loop turns (a
worker hung through the test-only fault hook stops the pings). The test is
the NOTIFY_SOCKET end: a datagram socket it binds itself, as systemd would.
"""
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

import util
from conftest import REPO, make_config


class NotifyListener:
    """An AF_UNIX datagram socket collecting every message sent to it."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setblocking(False)
        self.msgs = []  # (monotonic time, text)

    def poll(self):
        while True:
            try:
                data = self.sock.recv(4096)
            except BlockingIOError:
                return self.msgs
            self.msgs.append((time.monotonic(), data.decode()))

    def fields(self):
        """Every message as a dict of its KEY=VALUE lines."""
        return [dict(ln.split("=", 1) for ln in m.splitlines() if "=" in ln)
                for _, m in self.poll()]

    def wait_for(self, key, value=None, count=1, timeout=15.0):
        def seen():
            hits = [f for f in self.fields() if key in f and (value is None or f[key] == value)]
            return hits if len(hits) >= count else None
        return util.wait_until(seen, timeout, 0.05, f"{count}x {key}={value} on NOTIFY_SOCKET")

    def close(self):
        self.sock.close()


def _hooks_built(binary):
    out = subprocess.run([binary, "version"], capture_output=True, text=True, check=True).stdout
    return "test hooks: on" in out


@pytest.fixture
def notify(tmp_path, monkeypatch):
    lst = NotifyListener(tmp_path / "notify.sock")
    monkeypatch.setenv("NOTIFY_SOCKET", lst.path)
    yield lst
    lst.close()


def _config(pki, echo, p):
    return make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{p}",
                                    "connect": echo.addr}}, name="site-b")


def test_ready_reloading_stopping_in_order(pki, gateway, port, echo_server, notify):
    echo = echo_server()
    p = port()
    gw = gateway(_config(pki, echo, p), name="site-b", wait_ready=False)
    ready = notify.wait_for("READY", "1")
    # READY=1 means the listener is bound: a client connects at once
    util.connect("127.0.0.1", p).close()
    assert "STATUS" in ready[0] and "generation 1" in ready[0]["STATUS"]

    gw.reload()
    notify.wait_for("READY", "1", count=2)
    gw.stop()
    notify.wait_for("STOPPING", "1")
    order = [k for f in notify.fields() for k in ("READY", "RELOADING", "STOPPING") if k in f]
    assert order == ["READY", "RELOADING", "READY", "STOPPING"], order
    reloading = next(f for f in notify.fields() if "RELOADING" in f)
    usec = int(reloading["MONOTONIC_USEC"])
    now = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert 0 < now - usec < 60_000_000, (usec, now)
    second = [f for f in notify.fields() if f.get("READY") == "1"][1]
    assert "generation 2" in second["STATUS"]


def test_refused_reload_still_ends_reloading(pki, gateway, port, echo_server, notify):
    """systemd stays in "reloading" until READY=1: a refused file must send it too."""
    echo = echo_server()
    gw = gateway(_config(pki, echo, port()), name="site-b")
    notify.wait_for("READY", "1")
    mark = gw.reload("[gateway]\nname = broken\nworkers = nope\n")
    gw.wait_for_log(r"event=reload result=refused", since=mark)
    hits = notify.wait_for("READY", "1", count=2)
    assert "generation 1" in hits[1]["STATUS"]


def test_watchdog_pings_and_a_hung_worker_stops_them(pki, gateway, port, echo_server, notify,
                                                     monkeypatch, tmp_path, zonegate_bin):
    assert _hooks_built(zonegate_bin), (
        f"{zonegate_bin} was built without -Dtest_hooks=true (scripts/test.sh sets it for "
        "build-asan); this test needs the hang hook")
    hang = tmp_path / "hang"
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")  # ping every second
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))  # not ours: no pings
    echo = echo_server()
    gw = gateway(_config(pki, echo, port()), name="other-pid")
    notify.wait_for("READY", "1")
    time.sleep(2.5)
    assert not [f for f in notify.fields() if "WATCHDOG" in f], "WATCHDOG_PID names another process"
    gw.stop()

    monkeypatch.delenv("WATCHDOG_PID")
    monkeypatch.setenv("ZG_TEST_HANG_FILE", str(hang))
    gw = gateway(_config(pki, echo, port()), name="site-b")
    notify.wait_for("WATCHDOG", "1", count=2, timeout=10)
    hang.write_text("1")  # worker 1's loop stops turning
    gw.wait_for_log(r"event=watchdog_withheld worker=1\b", timeout=10)
    n = len([f for f in notify.fields() if "WATCHDOG" in f])
    time.sleep(3)
    assert len([f for f in notify.fields() if "WATCHDOG" in f]) == n, "pinged with a hung worker"
    hang.unlink()
    gw.wait_for_log(r"event=watchdog_resumed", timeout=10)
    notify.wait_for("WATCHDOG", "1", count=n + 1, timeout=10)
