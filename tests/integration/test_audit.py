"""The ATNA audit trail against a real collector: rsyslog with rsyslog-gnutls
receiving RFC 5425 (octet-counted syslog over mutual TLS) on 127.0.0.1.

- every stored record is an RFC 5424 message with PRI 85 and MSGID
  IHE+RFC-3881 whose body parses as a DICOM PS3.15 A.5 AuditMessage with the
  expected codes, identical to the local file's copy;
- the collector killed (SIGKILL and SIGTERM) and restarted in the middle of a
  load: every record arrives, in order, exactly once unless the collector
  reset a connection (then that batch may repeat: at-least-once);
- zonegate killed with SIGKILL in the middle of a load: the spool is replayed
  by the next start and nothing written to it is lost;
- a damaged spool record is reported and skipped, the records after it kept;
- a flipped byte in the local file is found by `zonegate audit verify`.
"""
import collections
import signal
import socket
import subprocess
import time

import pytest

import audit_util as au
import util


DCM = "DCM"
EXPECTED_TYPES = {
    "110100": {"110120", "110121"},
    "110108": {"110124", "110125"},
    "110113": {"110126", "110127", "110128", "110129", "110133", "110134", "110138"},
}


@pytest.fixture(scope="session")
def _rsyslog_probe(tmp_path_factory, pki):
    from conftest import alloc_port
    return au.rsyslog_probe(tmp_path_factory.mktemp("rsyslog-probe"), pki, alloc_port())


@pytest.fixture
def rsyslog(_rsyslog_probe):
    """Skips the test when rsyslog with rsyslog-gnutls does not run here
    (a failure under CI=true, see conftest.py)."""
    ok, why = _rsyslog_probe
    if not ok:
        pytest.skip(why)


@pytest.fixture
def collector(rsyslog, tmp_path, pki, port):
    c = au.Rsyslog(tmp_path / "rsyslog", pki, port())
    c.start()
    yield c
    c.kill()


def check_coded(el, name):
    assert el is not None, f"missing {name}"
    assert el.get("csd-code"), f"{name} without csd-code"
    assert el.get("codeSystemName"), f"{name} without codeSystemName"
    assert el.get("originalText"), f"{name} without originalText"


def check_message(root, syslog_ts):
    """Structural checks of one AuditMessage (DICOM PS3.15 A.5.1)."""
    assert root.tag == "AuditMessage"
    tags = [c.tag for c in root]
    assert tags[0] == "EventIdentification"
    n_ap = tags.count("ActiveParticipant")
    assert n_ap >= 1
    assert tags[1:1 + n_ap] == ["ActiveParticipant"] * n_ap
    assert tags[1 + n_ap] == "AuditSourceIdentification"
    assert all(t == "ParticipantObjectIdentification" for t in tags[2 + n_ap:])

    ev = root[0]
    assert ev.get("EventActionCode") in {"C", "R", "U", "D", "E"}
    assert ev.get("EventOutcomeIndicator") in {"0", "4", "8", "12"}
    assert ev.get("EventDateTime") == syslog_ts  # the event's own time, kept through the spool
    eid = ev.find("EventID")
    check_coded(eid, "EventID")
    assert eid.get("codeSystemName") == DCM
    etype = ev.find("EventTypeCode")
    check_coded(etype, "EventTypeCode")
    assert etype.get("csd-code") in EXPECTED_TYPES[eid.get("csd-code")]

    for ap in root.findall("ActiveParticipant"):
        assert ap.get("UserID")
        assert ap.get("UserIsRequestor") in {"true", "false"}
        if ap.get("NetworkAccessPointID"):
            assert ap.get("NetworkAccessPointTypeCode") == "2"
        check_coded(ap.find("RoleIDCode"), "RoleIDCode")
    src = root.find("AuditSourceIdentification")
    assert src.get("AuditSourceID") == "site-a"
    check_coded(src.find("AuditSourceTypeCode"), "AuditSourceTypeCode")
    for po in root.findall("ParticipantObjectIdentification"):
        assert po.get("ParticipantObjectID")
        check_coded(po.find("ParticipantObjectIDTypeCode"), "ParticipantObjectIDTypeCode")
    return eid.get("csd-code"), etype.get("csd-code")


def details(root):
    import base64
    out = {}
    for d in root.iter("ParticipantObjectDetail"):
        out[d.get("type")] = base64.b64decode(d.get("value")).decode()
    return out


# zonegate's log line for each batch the collector did not confirm
INTERRUPTED = ("collector reset the connection before confirming", "resending them",
               "did not close within")
BATCH = 64  # records per connection (SEND_RECS in src/audit/audit.c)


def assert_delivery_guarantee(seqs, last, log, kills=0, crashes=0):
    """docs/audit.md: nothing lost, first arrivals in order, and exactly once
    except that a batch the collector did not confirm (it was killed before
    confirming) is resent whole, and a zonegate crash may resend the batch
    it was confirming: each may repeat one batch. The bound counts what the
    test did (collector kills, zonegate crashes), not zonegate's own account
    of it, so a sender that resent more than it should cannot excuse itself
    by logging more interruptions."""
    interrupted = sum(log.count(p) for p in INTERRUPTED)
    dup = sorted(s for s, n in collections.Counter(seqs).items() if n > 1)
    assert len(dup) <= BATCH * (kills + crashes), (
        f"{len(dup)} records repeated ({dup[:10]}...) after {kills} collector kills and "
        f"{crashes} crashes ({interrupted} interruptions logged):\n{log}")
    try:
        assert_exactly_once_in_order(list(dict.fromkeys(seqs)), last)
    except AssertionError as e:
        raise AssertionError(f"{e}\n--- zonegate log:\n{log}") from None
    return dup, interrupted


def assert_exactly_once_in_order(seqs, last):
    dup = [s for s, n in collections.Counter(seqs).items() if n > 1]
    assert not dup, f"duplicated sequence numbers: {dup[:20]}"
    assert seqs == sorted(seqs), "records arrived out of order"
    missing = sorted(set(range(1, last + 1)) - set(seqs))
    assert not missing, f"{len(missing)} records lost, first {missing[:20]}"


def test_messages_and_codes(tmp_path, pki, collector, zonegate_bin):
    conf = au.audit_config(pki, tmp_path, collector.port)
    au.audit_test(zonegate_bin, conf, "--trail", "--count", 2, "--all-kinds")
    recs = collector.records()
    # started + app start + 9 other kinds + 2 x (attach, detach) + app stop + stopped
    assert len(recs) == 2 + 9 + 4 + 2
    kinds = [check_message(root, ts) for _s, ts, _x, root in recs]
    assert kinds[0] == ("110113", "110134") and kinds[1] == ("110100", "110120")
    assert kinds[-2] == ("110100", "110121") and kinds[-1] == ("110113", "110133")
    assert {t for _e, t in kinds} == set().union(*EXPECTED_TYPES.values())

    by_type = {t: root for (_e, t), (_s, _ts, _x, root) in zip(kinds, recs)}
    auth = by_type["110126"]
    assert auth[0].get("EventOutcomeIndicator") == "4"
    assert auth[0].find("EventOutcomeDescription").text.startswith("tls_untrusted_chain")
    assert details(auth)["reason"] == "tls_untrusted_chain"
    peer = auth.findall("ActiveParticipant")[0]
    assert peer.get("UserID") == "CN=modality-1,O=Hospital A,C=JP"
    assert peer.get("NetworkAccessPointID") == "127.0.0.1"
    detach = by_type["110125"]
    d = details(detach)
    assert d["route"] == "audit-test" and d["reason"] == "client_closed"
    assert {"bytes_in", "bytes_out", "duration_ms"} <= set(d)

    # the local file holds the same records, byte for byte, and its chain verifies
    local = au.file_records(tmp_path / "audit.log")
    assert [(s, x) for s, _ts, x, _r in recs] == local
    v = subprocess.run([zonegate_bin, "audit", "verify", str(tmp_path / "audit.log")],
                       capture_output=True, text=True)
    assert v.returncode == 0, v.stdout + v.stderr
    assert f"{len(local)} records, chain intact" in v.stdout
    assert au.verify_chain(tmp_path / "audit.log") == len(local)


def test_collector_restarts_exactly_once_in_order(tmp_path, pki, collector, zonegate_bin):
    conf = au.audit_config(pki, tmp_path, collector.port, retry_max="300ms")
    load = subprocess.Popen([zonegate_bin, "audit", "test", "-c", str(conf), "--trail", "--count", "2500",
                             "--interval-ms", "1", "--wait-ms", "60000"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGKILL):
            # wait for progress, then take the collector away mid-load
            seen = len(collector.seqs())
            util.wait_until(lambda: len(collector.seqs()) > seen + 200 or load.poll() is not None,
                            timeout=60, what="records flowing")
            collector.kill(sig)
            time.sleep(0.7)
            collector.start()
        out, err = load.communicate(timeout=120)
    finally:
        if load.poll() is None:
            load.kill()
    assert load.returncode == 0, out + err
    assert "event=audit_collector_down" in err
    seqs = collector.seqs()
    last = max(s for s, _x in au.file_records(tmp_path / "audit.log"))
    assert last == 5000 + 4
    assert_delivery_guarantee(seqs, last, err, kills=collector.kills)
    assert au.verify_chain(tmp_path / "audit.log") == last


def test_collector_hang_no_duplicates(tmp_path, pki, collector, zonegate_bin):
    """A collector that stops reading (SIGSTOP) for a while, then resumes:
    zonegate keeps waiting for its close (ack_timeout, 60 s) while it goes on
    spooling, so nothing is sent twice."""
    conf = au.audit_config(pki, tmp_path, collector.port)
    load = subprocess.Popen([zonegate_bin, "audit", "test", "-c", str(conf), "--trail", "--count", "1500",
                             "--interval-ms", "1", "--wait-ms", "60000"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        util.wait_until(lambda: len(collector.seqs()) > 200, timeout=30, what="records flowing")
        collector.proc.send_signal(signal.SIGSTOP)
        time.sleep(3)
        collector.proc.send_signal(signal.SIGCONT)
        out, err = load.communicate(timeout=120)
    finally:
        if load.poll() is None:
            load.kill()
    assert load.returncode == 0, out + err
    last = max(s for s, _x in au.file_records(tmp_path / "audit.log"))
    assert last == 3000 + 4
    assert not any(p in err for p in INTERRUPTED), err
    assert_exactly_once_in_order(collector.seqs(), last)


def test_kill9_zonegate_spool_replayed(tmp_path, pki, collector, zonegate_bin):
    conf = au.audit_config(pki, tmp_path, collector.port)
    errlog = open(tmp_path / "load.stderr", "w")
    load = subprocess.Popen([zonegate_bin, "audit", "test", "-c", str(conf), "--trail", "--count", "5000",
                             "--interval-ms", "1"],
                            stdout=subprocess.DEVNULL, stderr=errlog)
    # kill it while the collector is away, so the spool holds a backlog
    util.wait_until(lambda: len(collector.seqs()) > 300, timeout=30, what="records flowing")
    collector.kill()
    au.wait_file_seq(tmp_path / "audit.log", max(collector.seqs()) + 500)
    load.send_signal(signal.SIGKILL)
    load.wait(timeout=10)
    errlog.close()
    before = collector.seqs()
    written = [s for s, _x in au.file_records(tmp_path / "audit.log")]
    assert written == list(range(1, len(written) + 1))
    assert len(written) > len(before) + 300
    pending = au.spool_frames(tmp_path / "spool")
    assert pending, "nothing left in the spool"

    collector.start()
    p = au.audit_test(zonegate_bin, conf, "--trail", "--count", 0, "--wait-ms", 30000)
    assert "event=audit_spool_replay" in p.stderr
    seqs = collector.seqs()
    last = len(written) + 4  # the restart's started/app start/app stop/stopped
    # Guarantee: nothing written to the spool is lost. A batch that was on
    # the wire when zonegate died may be sent again (same sequenceId).
    log = (tmp_path / "load.stderr").read_text() + p.stderr
    assert_delivery_guarantee(seqs, last, log, kills=collector.kills, crashes=1)
    # replayed records keep their original time and bytes
    local = dict(au.file_records(tmp_path / "audit.log"))
    for seq, ts, xml, root in collector.records():
        assert xml == local[seq]
        assert root[0].get("EventDateTime") == ts


def test_damaged_spool_record_skipped(tmp_path, pki, port, zonegate_bin):
    c = au.Rsyslog(tmp_path / "rsyslog", pki, port())  # not started: records stay spooled
    conf = au.audit_config(pki, tmp_path, c.port)
    p = au.audit_test(zonegate_bin, conf, "--trail", "--count", 10, "--wait-ms", 300, check=False)
    assert p.returncode == 1, p.stdout + p.stderr
    frames = au.spool_frames(tmp_path / "spool")
    assert [f[2] for f in frames] == list(range(1, 25))
    seg, off, bad_seq, length = frames[9]
    data = bytearray(seg.read_bytes())
    data[off + length // 2] ^= 0x20  # one flipped bit inside record 10
    seg.write_bytes(bytes(data))

    c.start()
    try:
        p = au.audit_test(zonegate_bin, conf, "--trail", "--count", 0, "--wait-ms", 20000)
        assert "event=audit_spool_corrupt" in p.stderr
        assert f"offset={off}" in p.stderr
        seqs = c.seqs()
        assert bad_seq not in seqs
        assert seqs == [s for s in range(1, 29) if s != bad_seq]
    finally:
        c.kill()


def test_verify_finds_flipped_byte(tmp_path, pki, zonegate_bin):
    conf = au.audit_config(pki, tmp_path, 0, syslog=False)
    au.audit_test(zonegate_bin, conf, "--trail", "--count", 20)
    path = tmp_path / "audit.log"
    ok = subprocess.run([zonegate_bin, "audit", "verify", str(path)], capture_output=True,
                        text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "44 records, chain intact" in ok.stdout
    assert au.verify_chain(path) == 44  # and by the documented format alone

    lines = path.read_bytes().split(b"\n")
    line = bytearray(lines[16])
    i = line.index(b"audit-test")
    line[i] ^= 0x01  # 'a' -> '`'
    lines[16] = bytes(line)
    path.write_bytes(b"\n".join(lines))
    bad = subprocess.run([zonegate_bin, "audit", "verify", str(path)], capture_output=True,
                         text=True)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "first broken record at line 17 (seq 17)" in bad.stdout
    assert "16 records before it verify" in bad.stdout
    with pytest.raises(AssertionError, match="^line 17: chain broken"):
        au.verify_chain(path)


def test_untrusted_collector_refused(rsyslog, tmp_path, pki, port, zonegate_bin):
    """The collector must prove its identity: a wrong server name is refused
    and records stay in the spool."""
    c = au.Rsyslog(tmp_path / "rsyslog", pki, port()).start()
    try:
        conf = au.audit_config(pki, tmp_path, c.port, syslog_server_name="wrong.zonegate.test")
        p = au.audit_test(zonegate_bin, conf, "--trail", "--count", 1, "--wait-ms", 1000, check=False)
        assert p.returncode == 1
        assert "collector certificate" in p.stderr or "handshake" in p.stderr, p.stderr
        assert c.seqs() == []
        assert au.spool_frames(tmp_path / "spool")
    finally:
        c.kill()


def test_collector_rejecting_our_certificate_is_named(tmp_path, pki, port, zonegate_bin):
    """rsyslog-gnutls that does not permit our certificate's name (issue 10,
    item 14): the failure was logged as "collector closed after reading 0 of
    4 records", as if the collector had merely gone away. It must say that
    the collector rejected our certificate, naming the TLS alert it sent."""
    c = au.Rsyslog(tmp_path / "rsyslog", pki, port(),
                   permitted=("someone-else.zonegate.test",)).start()
    try:
        conf = au.audit_config(pki, tmp_path, c.port)
        p = au.audit_test(zonegate_bin, conf, "--count", 1, "--wait-ms", 1500, check=False)
        assert p.returncode == 1
        down = [ln for ln in p.stderr.splitlines() if "event=audit_collector_down" in ln]
        assert down, p.stderr
        assert "rejected our certificate" in down[0], down[0]
        assert "0 of" not in down[0], down[0]
        assert c.seqs() == []
    finally:
        c.kill()


def test_collector_alert_is_named(tmp_path, pki, port, zonegate_bin):
    """A collector that refuses our certificate with a TLS alert (OpenSSL
    s_server requiring a client certificate from another CA; under TLS 1.3
    the alert comes after our Finished, so only a read sees it): the alert
    is named."""
    p = port()
    srv = subprocess.Popen(["openssl", "s_server", "-quiet", "-accept", str(p),
                            "-cert", pki.path("server-ec.chain.pem"),
                            "-key", pki.path("server-ec.key"), "-Verify", "1", "-verify_return_error",
                            "-CAfile", pki.path("server-ec.chain.pem")],
                           stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        util.wait_port("127.0.0.1", p)
        conf = au.audit_config(pki, tmp_path, p)
        r = au.audit_test(zonegate_bin, conf, "--count", 1, "--wait-ms", 1500, check=False)
        assert r.returncode == 1
        down = [ln for ln in r.stderr.splitlines() if "event=audit_collector_down" in ln]
        assert down, r.stderr
        assert "rejected our certificate" in down[0] and "TLS alert" in down[0], down[0]
    finally:
        srv.kill()
        srv.wait()


# ------------------------------------------------------------ through zonegate run


def gw_config(pki, tmp_path, rs_port, listen_port, echo_addr):
    from conftest import make_config
    cfg = make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{listen_port}",
                                   "connect": echo_addr}}, name="site-a", leaf="site-a")
    # the syslog client certificate, key and CA come from [tls]
    cfg["audit"] = {"syslog_target": f"127.0.0.1:{rs_port}",
                    "syslog_server_name": "localhost",
                    "file": str(tmp_path / "audit.log"),
                    "spool_dir": str(tmp_path / "spool"),
                    "retry_max": "500ms"}
    return cfg


def one_connection(pki, port, payload=b"ping\n"):
    ctx = util.tls_context(pki, cert=pki.cert("client"), key=pki.key("client"),
                           chain=pki.chain("client"))
    with util.tls_connect(ctx, "127.0.0.1", port) as s:
        s.sendall(payload)
        assert util.recv_exactly(s, len(payload)) == payload


def refused_connection(pki, port):
    ctx = util.tls_context(pki)  # no client certificate
    try:
        with util.tls_connect(ctx, "127.0.0.1", port) as s:
            s.sendall(b"x")
            s.recv(1)
    except OSError:
        pass


def test_gateway_connections_and_refusals_audited(tmp_path, pki, port, collector, gateway,
                                                  echo_server, zonegate_bin):
    echo = echo_server()
    lp = port()
    gw = gateway(gw_config(pki, tmp_path, collector.port, lp, echo.addr), name="site-a")
    for _ in range(10):
        one_connection(pki, lp)
    refused_connection(pki, lp)
    gw.wait_for_event("refused", route="in")
    gw.wait_for_event("conn_close", route="in", count=10)
    gw.stop()

    recs = collector.records()
    kinds = [check_message(root, ts) for _s, ts, _x, root in recs]
    types = [t for _e, t in kinds]
    assert types[:2] == ["110134", "110120"] and types[-2:] == ["110121", "110133"]
    assert types.count("110124") == 10 and types.count("110125") == 10
    assert types.count("110126") == 1
    assert_exactly_once_in_order([r[0] for r in recs], max(r[0] for r in recs))

    detach = next(root for (_e, t), (_s, _ts, _x, root) in zip(kinds, recs) if t == "110125")
    peer = detach.findall("ActiveParticipant")[0]
    assert "CN=client.zonegate.test" in peer.get("UserID")
    assert "URI:urn:zonegate:client" in peer.get("UserName")
    assert peer.get("NetworkAccessPointID") == "127.0.0.1"
    d = details(detach)
    assert d["route"] == "in" and int(d["bytes_in"]) == 5 and int(d["bytes_out"]) == 5
    auth = next(root for (_e, t), (_s, _ts, _x, root) in zip(kinds, recs) if t == "110126")
    assert auth[0].get("EventOutcomeIndicator") == "4"
    assert details(auth)["reason"] == "tls_no_client_certificate"

    v = subprocess.run([zonegate_bin, "audit", "verify", str(tmp_path / "audit.log")],
                       capture_output=True, text=True)
    assert v.returncode == 0, v.stdout + v.stderr
    assert au.verify_chain(tmp_path / "audit.log") == len(recs)


def test_full_spool_refuses_new_connections_audit_spool_full(tmp_path, pki, port, gateway,
                                                              echo_server):
    """No collector, the smallest spool (256K) and full_policy =
    refuse-new-connections: once the records of served connections fill the
    spool, new clients are refused with audit_spool_full and never reach
    the service (docs/audit.md, "When the spool is full")."""
    echo = echo_server()
    lp, dead = port(), port()
    cfg = gw_config(pki, tmp_path, dead, lp, echo.addr)
    cfg["audit"].update({"spool_max_bytes": "256K", "full_policy": "refuse-new-connections"})
    gw = gateway(cfg, name="site-a")
    for _ in range(2000):  # a connection writes two records (attach, detach)
        try:
            one_connection(pki, lp)
        except (OSError, AssertionError):
            pass  # refused
        if gw.reasons("audit_spool_full"):
            break
    ev = gw.wait_for_reason("audit_spool_full", route="in")
    assert ev[0]["event"] == "refused", ev
    gw.wait_for_event("audit_spool_full")
    # a connection admitted just before the spool filled may still be on its
    # way to the service: count once the service's count stops moving
    def settled():
        now = echo.connections
        time.sleep(0.3)
        return echo.connections == now

    util.wait_until(settled, 10, what="the service's connection count to settle")
    served = echo.connections
    with pytest.raises((OSError, AssertionError)):
        one_connection(pki, lp)
    assert echo.connections == served, "a client reached the service with the spool full"
    assert len(gw.reasons("audit_spool_full")) >= 2


def test_gateway_kill9_mid_load_replays_spool(tmp_path, pki, port, collector, gateway,
                                              echo_server):
    echo = echo_server()
    lp = port()
    cfg = gw_config(pki, tmp_path, collector.port, lp, echo.addr)
    gw = gateway(cfg, name="site-a")
    for _ in range(20):
        one_connection(pki, lp)
    collector.kill()  # the collector goes away; records pile up in the spool
    stop = []

    def load():
        while not stop:
            try:
                one_connection(pki, lp)
            except (OSError, AssertionError):  # the gateway was killed under it
                return
    import threading
    t = threading.Thread(target=load)
    t.start()
    au.wait_file_seq(tmp_path / "audit.log", 150)
    gw.proc.kill()  # SIGKILL in the middle of the load
    gw.proc.wait()
    gw.proc = None  # an intended crash: not a failure for the conftest hook
    stop.append(1)
    t.join(30)
    written = [s for s, _x in au.file_records(tmp_path / "audit.log")]
    assert written == list(range(1, len(written) + 1))

    collector.start()
    gw2 = gateway(cfg, name="site-a-2")
    gw2.wait_for_log(r"event=audit_spool_replay")
    gw2.stop()
    seqs = collector.seqs()
    last = max(s for s, _x in au.file_records(tmp_path / "audit.log"))
    assert_delivery_guarantee(seqs, last, gw.log() + gw2.log(), kills=collector.kills, crashes=1)
    assert last >= len(written) + 4


def test_udp_transport_when_asked(rsyslog, tmp_path, pki, port, zonegate_bin):
    """RFC 5426: one message per datagram, same format; no confirmation."""
    c = au.Rsyslog(tmp_path / "rsyslog", pki, port(), udp=True).start()
    try:
        conf = au.audit_config(pki, tmp_path, c.port, syslog_transport="udp")
        au.audit_test(zonegate_bin, conf, "--trail", "--count", 5)
        util.wait_until(lambda: len(c.seqs()) == 14, timeout=10, what="14 datagrams")
        recs = c.records()
        for _s, ts, _x, root in recs:
            check_message(root, ts)
        assert [r[0] for r in recs] == list(range(1, 15))
    finally:
        c.kill()


def test_gateway_collector_restart_mid_connection_load(tmp_path, pki, port, collector, gateway,
                                                       echo_server):
    """The issue's scenario with real connections: the collector is killed
    (SIGKILL, then SIGTERM) and restarted while clients connect; every record
    arrives, in order, exactly once except for resets (see
    assert_delivery_guarantee)."""
    import threading
    echo = echo_server()
    lp = port()
    gw = gateway(gw_config(pki, tmp_path, collector.port, lp, echo.addr), name="site-a")
    stop, done = [], []

    def load():
        while not stop:
            one_connection(pki, lp)
            done.append(1)
    t = threading.Thread(target=load)
    t.start()
    try:
        for sig in (signal.SIGKILL, signal.SIGTERM):
            n = len(done)
            util.wait_until(lambda: len(done) > n + 30, timeout=30, what="connections")
            collector.kill(sig)
            n = len(done)
            util.wait_until(lambda: len(done) > n + 30, timeout=30, what="connections")
            collector.start()
    finally:
        stop.append(1)
        t.join(30)
    gw.stop()  # waits for the spool to drain as far as io_timeout allows
    log = gw.log()
    last = max(s for s, _x in au.file_records(tmp_path / "audit.log"))
    if set(collector.seqs()) != set(range(1, last + 1)):
        # anything not confirmed at stop stays spooled: a restart sends it
        gw2 = gateway(gw_config(pki, tmp_path, collector.port, lp, echo.addr), name="site-a-2")
        gw2.stop()
        log += gw2.log()
        last = max(s for s, _x in au.file_records(tmp_path / "audit.log"))
    seqs = collector.seqs()
    assert_delivery_guarantee(seqs, last, log, kills=collector.kills)
    assert len(done) * 2 + 4 <= last


class CloseNotifyCollector:
    """A minimal RFC 5425 receiver that, as section 4.4 asks, answers the
    sender's close_notify with its own - and then keeps the TCP connection
    open for a while, as a receiver may. Records its sequenceIds."""

    def __init__(self, pki, port, hold=20.0):
        import ssl
        import socket
        import threading
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(pki.path("server-ec.chain.pem"), pki.path("server-ec.key"))
        self.ctx.verify_mode = ssl.CERT_REQUIRED
        self.ctx.load_verify_locations(pki.roots)
        self.sock = socket.create_server(("127.0.0.1", port))
        self.port = port
        self.hold = hold
        self.seqs, self.held = [], []
        self.stop = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        import re
        import ssl
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                raw, _ = self.sock.accept()
            except OSError:
                continue
            try:
                conn = self.ctx.wrap_socket(raw, server_side=True)
                data = b""
                while True:
                    chunk = conn.recv(65536)
                    if not chunk:  # the sender's close_notify
                        break
                    data += chunk
                while data:  # octet counting: LEN SP MSG
                    n, rest = data.split(b" ", 1)
                    msg, data = rest[:int(n)], rest[int(n):]
                    self.seqs.append(int(re.search(rb'sequenceId="(\d+)"', msg).group(1)))
                self.held.append(conn.unwrap())  # our close_notify; TCP stays open
            except (OSError, ssl.SSLError, ValueError):
                raw.close()

    def close(self):
        self.stop = True
        self.thread.join(5)
        self.sock.close()
        for s in self.held:
            s.close()


def test_collector_replying_close_notify_confirms(tmp_path, pki, port, zonegate_bin):
    """A receiver that answers close_notify but does not close TCP at once
    confirms the batch by that answer: no waiting for ack_timeout, no
    repeats."""
    c = CloseNotifyCollector(pki, port())
    try:
        conf = au.audit_config(pki, tmp_path, c.port)
        t0 = time.monotonic()
        p = au.audit_test(zonegate_bin, conf, "--trail", "--count", 100, "--wait-ms", 10000)
        assert time.monotonic() - t0 < 10, p.stderr
        assert c.seqs == list(range(1, 205)), c.seqs[:20]
    finally:
        c.close()


def test_audit_test_on_live_config_leaves_the_trail_intact(tmp_path, pki, port, collector,
                                                            gateway, echo_server, zonegate_bin):
    """`zonegate audit test -c` on the configuration of a running gateway
    (issue 10, item 5): it used to write into the live spool and file, so
    `audit verify` found a hash mismatch and sequence numbers repeated. Now
    its records go to the collector only, marked as test records; a second
    writer of the trail itself (--trail) is refused with a clear message;
    the gateway's trail verifies and reaches the collector whole."""
    echo = echo_server()
    lp = port()
    gw = gateway(gw_config(pki, tmp_path, collector.port, lp, echo.addr), name="site-a")
    for _ in range(3):
        one_connection(pki, lp)
    gw.wait_for_event("conn_close", route="in", count=3)

    p = au.audit_test(zonegate_bin, gw.conf_path, "--count", 5, check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    second = au.audit_test(zonegate_bin, gw.conf_path, "--trail", "--count", 1, check=False)
    assert second.returncode != 0
    assert "in use by another" in second.stderr, second.stderr

    for _ in range(3):
        one_connection(pki, lp)
    gw.wait_for_event("conn_close", route="in", count=6)
    gw.stop()
    log = gw.log()
    assert "audit_spool_corrupt" not in log

    v = subprocess.run([zonegate_bin, "audit", "verify", str(tmp_path / "audit.log")],
                       capture_output=True, text=True)
    assert v.returncode == 0, v.stdout + v.stderr
    seqs = [s for s, _x in au.file_records(tmp_path / "audit.log")]
    assert seqs == list(range(1, len(seqs) + 1))
    assert not any("audit test" in x for _s, x in au.file_records(tmp_path / "audit.log"))

    recs = collector.records()
    # a test record says so in its EventOutcomeDescription and, where it has a
    # ParticipantObject, in a `test` detail
    test_recs = [r for r in recs if "zonegate audit test" in r[2]]
    live = [r for r in recs if "zonegate audit test" not in r[2]]
    assert len(test_recs) == 14, f"{len(test_recs)} test records at the collector"
    assert sum(details(r[3]).get("test") == "true" for r in test_recs) == 12
    assert_exactly_once_in_order([r[0] for r in live], seqs[-1])
