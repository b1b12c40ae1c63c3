"""Traffic classes (issue 12) with real traffic through the two-site chain:

    curl / storescu / ping-pong -> A (wrap, shaped) -> B (unwrap) -> http.server / storescp / echo

A holds the classes: `updates` (the OS-update storm: several curl downloads
of a large file from python's http.server) and `clinical` (a download, a
DICOM C-STORE by DCMTK storescu of a file made by img2dcm, and a small
ping-pong). Rates are modest (a few Mbit/s) so the 2-core test machine is
never the bottleneck, and asserted on the bytes the clients received over
a measured interval with a generous tolerance: these tests prove what the
shaper does, they do not benchmark it.
"""
import os
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import threading
import time

import pytest

import audit_util
import util
from conftest import make_config

MBIT = 1_000_000
TOL = 0.25  # rates within +-25 %

pytestmark = pytest.mark.skipif(shutil.which("storescu") is None or shutil.which("img2dcm") is None,
                                reason="DCMTK (storescu, storescp, img2dcm) is in scripts/deps.sh")


# ---------------------------------------------------------------- the chain


@pytest.fixture
def docroot(tmp_path):
    d = tmp_path / "www"
    d.mkdir()
    with open(d / "update.bin", "wb") as f:  # the update mirror's big file
        f.write(os.urandom(1 << 20) * 48)
    (d / "small.bin").write_bytes(os.urandom(64 << 10))
    return d


def a_config(pki, b_ports, a_ports, classes, link=None, audit=None, routes=None):
    """Gateway A: one wrap route per service of B, in the classes given."""
    rclass = {"updates": "updates", "clinical": "clinical", "ping": "clinical",
              "dicom": "clinical", "plain": None}
    rclass.update(routes or {})
    target = {"updates": "web", "clinical": "web", "ping": "echo", "dicom": "dicom", "plain": "web"}
    rs = {}
    for name, cls in rclass.items():
        rs[name] = {"mode": "wrap", "listen": f"127.0.0.1:{a_ports[name]}",
                    "connect": f"127.0.0.1:{b_ports[target[name]]}",
                    "server_name": "site-b.zonegate.test", "allow_from": "127.0.0.0/8",
                    "class": cls}
    cfg = make_config(pki, rs, name="site-a", leaf="site-a", gateway={"idle_timeout": "120s"})
    if link:
        cfg["link"] = link
    for name, keys in classes.items():
        cfg[f"class {name}"] = keys
    if audit:
        cfg["audit"] = audit
    return cfg


class Chain:
    def __init__(self, pki, gateway, port, tmp_path, http, echo, classes, link=None, audit=None,
                 routes=None):
        self.tmp = tmp_path
        self.storescp_dir = tmp_path / "pacs"
        self.storescp_dir.mkdir()
        b_ports = {k: port() for k in ("web", "echo", "dicom")}
        self.storescp_port = port()
        self.storescp = subprocess.Popen(
            ["storescp", "-od", str(self.storescp_dir), "-aet", "PACS", str(self.storescp_port)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        util.wait_port("127.0.0.1", self.storescp_port)
        backends = {"web": f"127.0.0.1:{http.port}", "echo": echo.addr,
                    "dicom": f"127.0.0.1:{self.storescp_port}"}
        b_routes = {k: {"mode": "unwrap", "listen": f"127.0.0.1:{p}", "connect": backends[k]}
                    for k, p in b_ports.items()}
        self.b = gateway(make_config(pki, b_routes, name="site-b", leaf="site-b",
                                     gateway={"idle_timeout": "120s"}), name="site-b")
        self.ports = {k: port() for k in ("updates", "clinical", "ping", "dicom", "plain")}
        self.args = (pki, b_ports, self.ports)
        self.a = gateway(a_config(*self.args, classes, link, audit, routes), name="site-a")

    def config(self, classes, link=None, audit=None, routes=None):
        return a_config(*self.args, classes, link, audit, routes)

    def url(self, route, name="update.bin"):
        return f"http://127.0.0.1:{self.ports[route]}/{name}"

    def stop(self):
        self.storescp.terminate()
        self.storescp.wait(10)


@pytest.fixture
def chain(pki, gateway, port, tmp_path, http_server, echo_server, docroot):
    made = []

    def make(classes, link=None, audit=None, routes=None):
        c = Chain(pki, gateway, port, tmp_path, http_server(docroot), echo_server(), classes, link,
                  audit, routes)
        made.append(c)
        return c

    yield make
    for c in made:
        c.stop()


class Downloads:
    """n curl clients fetching the big file through one route."""

    def __init__(self, url, n, tmp_path, tag):
        self.files = [tmp_path / f"{tag}{i}.out" for i in range(n)]
        self.procs = [subprocess.Popen(["curl", "-sS", "--max-time", "300", "-o", str(f), url],
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.PIPE)
                      for f in self.files]

    def bytes(self):
        return sum(f.stat().st_size if f.exists() else 0 for f in self.files)

    def running(self):
        return all(p.poll() is None for p in self.procs)

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            p.wait(10)


def measure(groups, seconds):
    """Mbit/s each group of downloads received over `seconds`."""
    b0 = [g.bytes() for g in groups]
    t0 = time.monotonic()
    time.sleep(seconds)
    b1 = [g.bytes() for g in groups]
    dt = time.monotonic() - t0
    return [(y - x) * 8 / dt / MBIT for x, y in zip(b0, b1)]


def near(got, want, tol=TOL):
    return want * (1 - tol) <= got <= want * (1 + tol)


def ping_rtts(port, n=40, size=64):
    """Round trips of `size` bytes through the echo route, in milliseconds."""
    s = util.connect("127.0.0.1", port)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    rtts = []
    try:
        for i in range(n):
            msg = bytes([65 + i % 26]) * size
            t = time.monotonic()
            s.sendall(msg)
            assert util.recv_exactly(s, size) == msg
            rtts.append((time.monotonic() - t) * 1000)
    finally:
        s.close()
    return rtts


def make_dicom(tmp_path, side=512):
    """A real DICOM file: a random 24-bit BMP image converted by img2dcm."""
    row = side * 3
    pixels = os.urandom(row * side)  # row length is a multiple of 4: no padding
    bmp = tmp_path / "scan.bmp"
    bmp.write_bytes(b"BM" + struct.pack("<IHHI", 54 + len(pixels), 0, 0, 54)
                    + struct.pack("<IiiHHIIiiII", 40, side, side, 1, 24, 0, len(pixels), 2835, 2835,
                                  0, 0)
                    + pixels)
    dcm = tmp_path / "scan.dcm"
    cp = subprocess.run(["img2dcm", "-i", "BMP", str(bmp), str(dcm)], capture_output=True, text=True)
    assert cp.returncode == 0, cp.stderr
    return dcm


def storescu(port, dcm, timeout=60):
    t = time.monotonic()
    cp = subprocess.run(["storescu", "-aec", "PACS", "-to", "30", "127.0.0.1", str(port), str(dcm)],
                        capture_output=True, text=True, timeout=timeout)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    return time.monotonic() - t


LINK = {"to_client": "16Mbit/s", "to_upstream": "16Mbit/s"}
CLASSES = {
    "clinical": {"rate": "4Mbit/s", "ceil": "16Mbit/s", "priority": 0},
    "updates": {"rate": "4Mbit/s", "ceil": "12Mbit/s", "priority": 7},
}


# ---------------------------------------------------------------- tests


def test_storm_borrows_when_clinical_idle_and_yields_when_busy(chain, tmp_path):
    """Updates alone borrow up to their ceil; clinical traffic meanwhile gets
    through at once (ping-pong, a DICOM store); a clinical download takes the
    spare capacity by priority and updates fall back to their guarantee."""
    c = chain(CLASSES, LINK)
    storm = Downloads(c.url("updates"), 4, tmp_path, "upd")
    try:
        time.sleep(2)  # past the start-up burst
        (upd,) = measure([storm], 5)
        assert near(upd, 12.0), f"updates alone: {upd:.2f} Mbit/s, want their ceil 12"
        # clinical request/response during the storm: not behind the update bytes
        rtts = ping_rtts(c.ports["ping"])
        p50 = statistics.median(rtts)
        assert p50 < 50, f"clinical ping-pong p50 {p50:.1f} ms during the storm"
        took = storescu(c.ports["dicom"], make_dicom(tmp_path))
        assert took < 15, f"DICOM store took {took:.1f}s during the storm"
        assert len(list(c.storescp_dir.iterdir())) == 1
        clin = Downloads(c.url("clinical"), 1, tmp_path, "clin")
        try:
            time.sleep(2)
            cl, up = measure([clin, storm], 6)
            print(f"updates alone {upd:.2f}, ping p50 {p50:.1f} ms, store {took:.2f}s, "
                  f"clinical {cl:.2f} + updates {up:.2f} Mbit/s")
            assert near(cl, 12.0), f"clinical {cl:.2f} Mbit/s with the storm, want 4 + 8 borrowed"
            assert near(up, 4.0, 0.35), f"updates {up:.2f} Mbit/s beside clinical, want 4"
            assert near(cl + up, 16.0), f"total {cl + up:.2f} Mbit/s, link is 16"
        finally:
            clin.stop()
        assert storm.running(), "a throttled download was dropped"
        # read before stopping: stopping the clients closes their connections
        stats = c.a.events("conn_close", route="updates")
        assert not stats, f"update connections closed while shaped: {stats}"
    finally:
        storm.stop()


def test_window_switches_rate_and_reload_keeps_connections(chain, tmp_path):
    """A short time window raises the update rate, then the class's own rate
    is back; a reload changes the rate of the running downloads without
    closing them."""
    start = time.time() + 6
    end = start + 9
    fmt = lambda t: time.strftime("%H:%M:%S", time.localtime(t))  # noqa: E731
    classes = {"updates": {"rate": "4Mbit/s", "priority": 7,
                           "windows": f"{fmt(start)}-{fmt(end)} rate=12Mbit/s"},
               "clinical": {"rate": "4Mbit/s"}}
    c = chain(classes)
    storm = Downloads(c.url("updates"), 3, tmp_path, "upd")
    try:
        util.wait_until(lambda: time.time() > start + 1.5, 20, 0.1, "the window")
        (inside,) = measure([storm], 5)
        c.a.wait_for_event("class_window", **{"class": "updates", "rate": "12Mbit/s"})
        util.wait_until(lambda: time.time() > end + 1.5, 20, 0.1, "the window's end")
        (after,) = measure([storm], 5)
        assert near(inside, 12.0), f"inside the window {inside:.2f} Mbit/s, want 12"
        assert near(after, 4.0), f"after the window {after:.2f} Mbit/s, want 4"
        classes["updates"] = {"rate": "8Mbit/s", "priority": 7}
        mark = c.a.reload(c.config(classes))
        c.a.wait_for_log(r"event=reload result=ok", since=mark)
        time.sleep(1)
        (reloaded,) = measure([storm], 5)
        print(f"inside the window {inside:.2f}, after {after:.2f}, reloaded {reloaded:.2f} Mbit/s")
        assert near(reloaded, 8.0), f"after reload {reloaded:.2f} Mbit/s, want 8"
        assert storm.running(), "a reload dropped a shaped download"
    finally:
        storm.stop()
    assert not c.a.events("conn_close", route="updates", since=0, reason="shutdown")


def test_max_connections_refused_with_reason_logged_and_audited(chain, tmp_path):
    """Over a class's max_connections a connection is refused with
    class_max_connections: one log line each, and audited."""
    classes = dict(CLASSES, clinical={"rate": "4Mbit/s", "max_connections": 2})
    audit = {"file": str(tmp_path / "audit.log"), "spool_dir": str(tmp_path / "spool")}
    c = chain(classes, audit=audit)
    held = [util.connect("127.0.0.1", c.ports["ping"]) for _ in range(2)]
    for s in held:
        assert util.echo_roundtrip(s) == b"ping\n"
    refused = []
    for _ in range(3):
        s = util.connect("127.0.0.1", c.ports["ping"])
        assert util.closed_by_peer(s), "a connection over the class limit was served"
        refused.append(s)
    # the other route of the class is limited too: it is the class's limit
    s = util.connect("127.0.0.1", c.ports["dicom"])
    assert util.closed_by_peer(s)
    c.a.wait_for_reason("class_max_connections", count=4)
    lines = c.a.reasons("class_max_connections")
    assert len(lines) == 4, lines  # one line per refusal, nothing per packet
    assert all("class clinical" in ln.get("detail", "") for ln in lines), lines
    # an unclassed route is not affected
    p = util.connect("127.0.0.1", c.ports["plain"])
    p.close()
    for s in held + refused + [s]:
        s.close()
    c.a.stop()
    # the audit trail has every refusal: the first of each route and source
    # as its own record, repeats folded into one counted record (docs/audit.md)
    recs = [x for _seq, x in audit_util.file_records(tmp_path / "audit.log")
            if "class_max_connections" in x]
    counted = [re.search(r"(\d+) refusals from this source", x) for x in recs]
    assert sum(int(m.group(1)) if m else 1 for m in counted) == 4, recs


def test_zero_window_client_holds_bounded_memory(chain, tmp_path, monkeypatch):
    """A client that asks for the big file and reads nothing holds at most
    its bounded buffers; the class's other downloads and clinical traffic
    go on."""
    monkeypatch.setenv("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1:quarantine_size_mb=0:"
                       "thread_local_quarantine_size_kb=0")
    c = chain(CLASSES, LINK)
    rss0 = util.rss_kib(c.a.proc.pid)
    stuck = []
    for _ in range(4):
        s = util.connect("127.0.0.1", c.ports["updates"])
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(b"GET /update.bin HTTP/1.0\r\nHost: x\r\n\r\n")
        stuck.append(s)
    storm = Downloads(c.url("updates"), 2, tmp_path, "upd")
    try:
        time.sleep(8)
        growth = util.rss_kib(c.a.proc.pid) - rss0
        assert growth < 16 * 1024, f"gateway A grew {growth} KiB with zero-window clients"
        assert storm.bytes() > 1 << 20, "the class's other downloads stalled"
        assert statistics.median(ping_rtts(c.ports["ping"], n=20)) < 50
    finally:
        storm.stop()
        for s in stuck:
            s.close()


def tcpdump_tos(port, run):
    """The TOS octets of packets from or to `port` on loopback while run() runs."""
    cap = subprocess.Popen(["tcpdump", "-i", "lo", "-n", "-v", "-l", "-c", "400",
                            f"tcp port {port}"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1)  # tcpdump is listening
    try:
        run()
        time.sleep(0.5)
    finally:
        cap.send_signal(signal.SIGINT)
        out, _ = cap.communicate(timeout=10)
    return set(re.findall(r"tos (0x[0-9a-f]+)", out))


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump is in scripts/deps.sh")
def test_dscp_marks_both_sockets(chain, tmp_path):
    classes = dict(CLASSES, updates={"rate": "4Mbit/s", "priority": 7})  # dscp by priority: CS1
    c = chain(classes, LINK)
    b_web = int(c.config(classes)["route updates"]["connect"].rsplit(":", 1)[1])

    def fetch(route):
        def run():
            cp = subprocess.run(["curl", "-sS", "-o", "/dev/null", c.url(route, "small.bin")],
                                capture_output=True, timeout=60)
            assert cp.returncode == 0
        return run

    # updates: CS1 (0x20) from A to the client and from A to the upstream
    assert "0x20" in tcpdump_tos(c.ports["updates"], fetch("updates"))
    assert "0x20" in tcpdump_tos(b_web, fetch("updates"))
    # clinical: AF41 (0x88) on both
    assert "0x88" in tcpdump_tos(c.ports["clinical"], fetch("clinical"))
    assert "0x88" in tcpdump_tos(b_web, fetch("clinical"))
    # the default class is not marked
    assert tcpdump_tos(c.ports["plain"], fetch("plain")) == {"0x0"}


def test_check_refuses_bad_classes(zonegate_check, pki):
    cfg = make_config(pki, {"r": {"mode": "wrap", "listen": "127.0.0.1:1", "connect": "x.test:2",
                                  "server_name": "x.test", "allow_from": "10.0.0.0/8",
                                  "class": "bulk"}})
    cfg["link"] = {"to_client": "10Mbit/s"}
    cfg["class bulk"] = {"rate": "200Gbit/s"}
    cfg["class clinical"] = {"rate": "12Mbit/s", "windows": "08:00-25:00 rate=1Mbit/s"}
    cp = zonegate_check(cfg)
    assert cp.returncode != 0
    assert re.search(r":\d+: rate: rate above 100Gbit/s", cp.stderr), cp.stderr
    assert re.search(r":\d+: windows: impossible time of day", cp.stderr), cp.stderr
    assert re.search(r":\d+: to_client: the classes guarantee 12Mbit/s", cp.stderr), cp.stderr
