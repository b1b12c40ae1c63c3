"""The audit trail under pressure must not turn against availability
(issue 10, items 2 and 3).

- A flood of connections refused before TLS (from an address outside the
  route's allow_from), with a small spool and the collector down, must not
  fill the audit queue or spool: the refusals are aggregated into one record
  per (source, reason, interval) carrying a count, and a legitimate,
  authenticated client is served during and after the flood, under both
  full policies.
- No record is lost silently (item 3).
"""
import base64
import socket
import threading
import time

import pytest

import audit_util as au
import util
from conftest import make_config

FLOOD_SOURCE = "127.0.0.2"  # outside allow_from = 127.0.0.1/32


def pressure_config(pki, tmp_path, listen_port, echo_addr, dead_port, **audit):
    cfg = make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{listen_port}",
                                   "connect": echo_addr, "allow_from": "127.0.0.1/32"}},
                      name="site-a", leaf="site-a")
    cfg["audit"] = {"syslog_target": f"127.0.0.1:{dead_port}",  # nobody listens: collector down
                    "syslog_server_name": "localhost",
                    "file": str(tmp_path / "audit.log"),
                    "spool_dir": str(tmp_path / "spool"),
                    "spool_max_bytes": "1M",
                    "retry_max": "500ms"}
    cfg["audit"].update(audit)
    return cfg


def legit_connection(pki, port, payload=b"ping\n"):
    ctx = util.tls_context(pki, cert=pki.cert("client"), key=pki.key("client"),
                           chain=pki.chain("client"))
    with util.tls_connect(ctx, "127.0.0.1", port) as s:
        s.sendall(payload)
        assert util.recv_exactly(s, len(payload)) == payload


def flood(port, stop, counter):
    """Connect from FLOOD_SOURCE and close at once, as fast as we can. The
    close is a reset, so that tens of thousands of connects leave no
    TIME_WAIT behind to exhaust the machine's ephemeral ports."""
    while not stop:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5,
                                         source_address=(FLOOD_SOURCE, 0))
            util.rst_close(s)
            counter.append(1)
        except OSError:
            time.sleep(0.001)


def details(xml):
    import xml.etree.ElementTree as ET
    root = ET.fromstring(xml.encode())
    out = {}
    for d in root.iter("ParticipantObjectDetail"):
        out[d.get("type")] = base64.b64decode(d.get("value")).decode()
    return root, out


def refusal_records(path, ip):
    recs = []
    for _seq, xml in au.file_records(path):
        root, d = details(xml)
        ev = root.find("EventIdentification/EventTypeCode")
        if ev is None or ev.get("csd-code") != "110126":
            continue
        peers = [p.get("NetworkAccessPointID") for p in root.findall("ActiveParticipant")]
        # a record without a source stands for refusals folded together
        if ip in peers or not any(peers):
            recs.append(d)
    return recs


@pytest.mark.parametrize("policy", ["refuse-new-connections", "drop-oldest"])
def test_refused_flood_does_not_starve_legit_clients(tmp_path, pki, port, gateway, echo_server,
                                                     policy):
    echo = echo_server()
    lp = port()
    cfg = pressure_config(pki, tmp_path, lp, echo.addr, port(), full_policy=policy,
                          queue_length="64")
    gw = gateway(cfg, name="site-a")
    stop, counter = [], []
    threads = [threading.Thread(target=flood, args=(lp, stop, counter)) for _ in range(3)]
    for t in threads:
        t.start()
    served = failed = 0
    try:
        # well beyond the ~650 refusal records a 1 MiB spool held before
        deadline = time.monotonic() + 60
        while len(counter) < 3000 and time.monotonic() < deadline:
            try:
                legit_connection(pki, lp)
                served += 1
            except (OSError, AssertionError):
                failed += 1
            time.sleep(0.05)
    finally:
        stop.append(1)
        for t in threads:
            t.join(30)
    assert len(counter) >= 3000, f"the flood reached only {len(counter)} connects"
    # after the flood too
    for _ in range(5):
        legit_connection(pki, lp)
    log = gw.log()
    assert "audit_spool_full" not in log, log[-3000:]
    assert failed == 0, f"{failed} legitimate connections failed during the flood ({served} served)"
    gw.stop()
    # every refusal is accounted for, in few records
    recs = refusal_records(tmp_path / "audit.log", FLOOD_SOURCE)
    refused = gw.refusal_count("source_not_allowed")
    total = sum(int(d.get("count", "1")) for d in recs)
    assert total == refused, f"records count {total} refusals, the log {refused}"
    assert len(recs) <= 4, f"{len(recs)} refusal records for one source and reason"
    assert all(d["reason"] == "source_not_allowed" for d in recs)


# ------------------------------------------------------------ item 3: no silent loss

LOSS_CODE = "110133"  # Audit Recording Stopped, outcome 8, ParticipantObjectDetail lost=N


def record_kinds(path):
    """[(EventTypeCode, outcome, details)] of the local file."""
    out = []
    for _seq, xml in au.file_records(path):
        root, d = details(xml)
        ev = root.find("EventIdentification")
        out.append((ev.find("EventTypeCode").get("csd-code"), ev.get("EventOutcomeIndicator"), d))
    return out


def test_stop_with_many_live_connections_loses_no_detach(tmp_path, pki, port, gateway,
                                                         echo_server):
    """2,000 live connections and queue_length = 256: the stop closes them all
    at once. Every Detach record is in the file (and the spool), or a loss
    record states exactly how many are missing - never a silent gap."""
    n = 2000
    echo = echo_server()
    lp = port()
    cfg = pressure_config(pki, tmp_path, lp, echo.addr, port(), queue_length="256",
                          spool_max_bytes="64M")
    cfg["gateway"]["drain_timeout"] = "1s"
    gw = gateway(cfg, name="site-a")
    ctx = util.tls_context(pki, cert=pki.cert("client"), key=pki.key("client"),
                           chain=pki.chain("client"))
    socks = []
    try:
        for _ in range(n):
            s = util.tls_connect(ctx, "127.0.0.1", lp)
            s.sendall(b"ping\n")
            assert util.recv_exactly(s, 5) == b"ping\n"
            socks.append(s)
        util.wait_until(lambda: sum(1 for k, _o, _d in record_kinds(tmp_path / "audit.log")
                                    if k == "110124") >= n, timeout=60, what=f"{n} attach records")
        gw.stop()
    finally:
        for s in socks:
            s.close()
    kinds = record_kinds(tmp_path / "audit.log")
    detaches = sum(1 for k, _o, _d in kinds if k == "110125")
    lost = sum(int(d["lost"]) for k, _o, d in kinds if k == LOSS_CODE and "lost" in d)
    assert detaches + lost == n, f"{detaches} detach records, {lost} stated lost, of {n}"
    # the stop grows the queue rather than drop: nothing is lost at all
    assert detaches == n, gw.log()[-2000:]
    spooled = [seq for _seg, _off, seq, _len in au.spool_frames(tmp_path / "spool")]
    seqs = [s for s, _x in au.file_records(tmp_path / "audit.log")]
    assert spooled == seqs  # the collector is down: the spool holds all of it


# ------------------------------------------------------------ item 4: delivery never stalls intake


class SilentCollector:
    """Accepts TCP connections and never answers: no TLS ServerHello, no
    FIN. A collector wedged like this held the audit thread for io_timeout
    per attempt, during which nothing was written to the spool."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.held = []
        self.stop = []
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                c, _a = self.sock.accept()
                self.held.append(c)
            except OSError:
                pass

    def close(self):
        self.stop.append(1)
        self.t.join(5)
        for c in self.held:
            c.close()
        self.sock.close()


def test_wedged_collector_does_not_stall_intake(tmp_path, pki, port, gateway, echo_server):
    """A collector that accepts TCP and never answers TLS, io_timeout = 5s,
    queue_length = 64: legitimate clients keep being served (their records
    keep reaching the spool and the file) while delivery waits."""
    col = SilentCollector()
    try:
        echo = echo_server()
        lp = port()
        cfg = pressure_config(pki, tmp_path, lp, echo.addr, col.port, queue_length="64",
                              io_timeout="5s", spool_max_bytes="64M")
        gw = gateway(cfg, name="site-a")
        util.wait_until(lambda: col.held, timeout=10, what="a delivery attempt")
        ctx = util.tls_context(pki, cert=pki.cert("client"), key=pki.key("client"),
                               chain=pki.chain("client"))
        live, failed = [], 0
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            # connections that stay open: their attach records need the queue
            try:
                s = util.tls_connect(ctx, "127.0.0.1", lp)
                s.sendall(b"ping\n")
                assert util.recv_exactly(s, 5) == b"ping\n"
                live.append(s)
            except (OSError, AssertionError):
                failed += 1
        attaches = sum(1 for k, _o, _d in record_kinds(tmp_path / "audit.log") if k == "110124")
        for s in live:
            s.close()
        assert failed == 0, f"{failed} refused, {len(live)} served: {gw.log()[-1500:]}"
        assert "audit_spool_full" not in gw.log()
        # intake went on while the collector held the delivery
        assert attaches >= len(live) - 64, f"{attaches} attach records of {len(live)}"
        gw.stop()
    finally:
        col.close()


# ------------------------------------------------------------ item 14: small ones


def test_no_audit_section_warns_audit_disabled(pki, port, gateway, echo_server):
    """docs/audit.md: with neither syslog_target nor file, auditing is off
    and a warning is logged - it was not."""
    echo = echo_server()
    cfg = make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{port()}",
                                   "connect": echo.addr}}, name="site-a", leaf="site-a")
    gw = gateway(cfg, name="site-a")
    line = gw.wait_for_log(r"event=audit_disabled\b").string
    assert "level=warn" in line


def test_refused_flood_log_is_folded(tmp_path, pki, port, gateway, echo_server):
    """A flood wrote one `event=refused` line per connect (1.2 M in a minute
    by hand), enough for journald's rate limit to drop clinical lines with
    it. The first 20 of one route, source and reason are logged as they
    come, the rest counted in `event=refused_repeated` lines whose counts
    add up; another source's refusal and the clinical close lines are
    logged as before."""
    echo = echo_server()
    lp = port()
    gw = gateway(pressure_config(pki, tmp_path, lp, echo.addr, port()), name="site-a")
    stop, counter = [], []
    t = threading.Thread(target=flood, args=(lp, stop, counter))
    t.start()
    try:
        util.wait_until(lambda: len(counter) >= 1000, 60, what="1000 flood connects")
    finally:
        stop.append(1)
        t.join(30)
    other = socket.create_connection(("127.0.0.1", lp), timeout=5, source_address=("127.0.0.3", 0))
    util.rst_close(other)
    legit_connection(pki, lp)
    gw.stop()
    flood_lines = [d for d in gw.events("refused", reason="source_not_allowed")
                   if d["peer"].startswith(FLOOD_SOURCE + ":")]
    other_lines = [d for d in gw.events("refused", reason="source_not_allowed")
                   if d["peer"].startswith("127.0.0.3:")]
    repeated = gw.events("refused_repeated", reason="source_not_allowed", peer=FLOOD_SOURCE)
    workers = 2
    assert len(flood_lines) <= 20 * workers, f"{len(flood_lines)} lines for one flooding source"
    assert repeated, gw.log()[-2000:]
    folded = sum(int(d["count"]) for d in repeated)
    recorded = sum(int(d.get("count", "1")) for d in refusal_records(tmp_path / "audit.log",
                                                                       FLOOD_SOURCE))
    assert len(flood_lines) + folded == recorded, \
        f"{len(flood_lines)} lines + {folded} folded != {recorded} refusals in the audit trail"
    assert recorded >= len(counter) * 0.9, f"{recorded} of {len(counter)} connects refused"
    assert len(other_lines) == 1
    assert gw.events("conn_close", route="in"), "the clinical connection's line is missing"
