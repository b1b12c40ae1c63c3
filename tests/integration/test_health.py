"""Active health checks of pool members (issue 11).

The checker thread probes every member of a route with health_check set
(tcp, tls, dicom, hl7, http) and takes it down after health_fall failures
in a row, up again after health_rise passes: `event=upstream_down
source=check` / `event=upstream_up source=check`. Real peers: DCMTK
`storescp` answering C-ECHO (and SIGSTOPped), `openssl s_server` with a
wrong-identity certificate, python's http.server, a small MLLP listener.
Bad replies (garbage, oversized, trickled, silent) each give a reason code
and never slow the relaying of the route's other member.
"""
import http.server
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

import util

from conftest import make_config

FAST = {"health_interval": "200ms", "health_timeout": "500ms", "health_rise": 2,
        "health_fall": 2}


class _Replier:
    """A TCP listener answering each connection with `reply(data)` once it
    has read `need` bytes (or at once when need=0); modes for bad input."""

    def __init__(self, reply, need=1, trickle=0.0, hold=0.5):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.reply, self.need, self.trickle, self.hold = reply, need, trickle, hold
        self.connections = 0
        threading.Thread(target=self._run, daemon=True).start()

    @property
    def addr(self):
        return f"127.0.0.1:{self.port}"

    def _run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        c.settimeout(5)
        try:
            data = c.recv(65536) if self.need else b""
            out = self.reply(data) if callable(self.reply) else self.reply
            if self.trickle:
                for b in out:
                    c.sendall(bytes([b]))
                    time.sleep(self.trickle)
            elif out:
                c.sendall(out)
            time.sleep(self.hold)  # then close: a silent one outlasts health_timeout
        except OSError:
            pass
        finally:
            c.close()

    def close(self):
        self.sock.close()


def _ack(code):
    def reply(data):
        return (b"\x0bMSH|^~\\&|PACS|HOSP|ZONEGATE|ZONEGATE|20260101000000||ACK^N01|1|P|2.5\r"
                b"MSA|" + code + b"|ZGHC1\r\x1c\r")
    return reply


def _unwrap(port, members, check, **over):
    r = {"mode": "unwrap", "listen": f"127.0.0.1:{port()}", "connect": members,
         "health_check": check}
    r.update(FAST)
    r.update(over)
    return r


def _listen_port(cfg, route):
    return int(cfg[f"route {route}"]["listen"].rsplit(":", 1)[1])


def _touch(pki, listen):
    """One TLS client connection to an unwrap route that sends nothing."""
    ctx = util.tls_context(pki, cert=pki.cert("client"), key=pki.key("client"),
                           chain=pki.chain("client"))
    with util.tls_connect(ctx, "127.0.0.1", listen) as s:
        s.settimeout(2)
        time.sleep(0.1)


@pytest.mark.skipif(not shutil.which("storescp"), reason="needs DCMTK (scripts/deps.sh)")
def test_dicom_echo_check_follows_a_stopped_primary(pki, gateway, port, tmp_path):
    """storescp answers the C-ECHO probe; stopped (SIGSTOP: accepts, never
    answers) it fails health_fall checks and goes down, and new connections
    go to the backup; resumed, it comes back up after health_rise passes."""
    a_p, b_p = port(), port()
    scps = [subprocess.Popen(["storescp", "-od", str(tmp_path), str(p)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for p in (a_p, b_p)]
    try:
        for p in (a_p, b_p):
            util.wait_port("127.0.0.1", p)
        cfg = make_config(pki, {"in": _unwrap(port, f"127.0.0.1:{a_p}, 127.0.0.1:{b_p} backup",
                                              "dicom", health_called_ae="STORESCP")})
        gw = gateway(cfg)
        time.sleep(1.0)  # several good checks: nothing is reported
        assert not gw.events("upstream_down")
        scps[0].send_signal(signal.SIGSTOP)
        down = gw.wait_for_event("upstream_down", route="in", timeout=10)[0]
        assert down["endpoint"] == f"127.0.0.1:{a_p}" and down["source"] == "check", down
        assert down["reason"] == "health_check_timeout", down
        _touch(pki, _listen_port(cfg, "in"))
        assert gw.wait_for_event("conn_close", route="in")[0]["upstream"] == f"127.0.0.1:{b_p}"
        scps[0].send_signal(signal.SIGCONT)
        up = gw.wait_for_event("upstream_up", route="in", timeout=10)[0]
        assert up["endpoint"] == f"127.0.0.1:{a_p}" and up["source"] == "check", up
        assert len(gw.events("upstream_down")) == 1
    finally:
        for s in scps:
            s.send_signal(signal.SIGCONT)
            s.kill()
            s.wait(10)


def test_dicom_check_rejected_association(pki, gateway, port):
    """An A-ASSOCIATE-RJ (called AE not recognized) is a refusal."""
    rj = _Replier(bytes([0x03, 0, 0, 0, 0, 4, 0, 1, 1, 7]))
    try:
        cfg = make_config(pki, {"in": _unwrap(port, rj.addr, "dicom")})
        gw = gateway(cfg)
        down = gw.wait_for_event("upstream_down", route="in", timeout=10)[0]
        assert down["reason"] == "health_check_rejected", down
        assert "A-ASSOCIATE-RJ" in down["detail"], down
    finally:
        rj.close()


def test_hl7_check_ack_codes(pki, gateway, port):
    """MSA-1 AA passes; AE is a refusal that takes the member down."""
    good, bad = _Replier(_ack(b"AA")), _Replier(_ack(b"AE"))
    try:
        cfg = make_config(pki, {"in": _unwrap(port, f"{good.addr}, {bad.addr}", "hl7")})
        gw = gateway(cfg)
        down = gw.wait_for_event("upstream_down", route="in", timeout=10)[0]
        assert down["endpoint"] == bad.addr and down["reason"] == "health_check_rejected", down
        assert "ACK code AE" in down["detail"]
        time.sleep(1.0)
        assert all(e["endpoint"] == bad.addr for e in gw.events("upstream_down"))
        assert good.connections >= 3
    finally:
        good.close()
        bad.close()


def test_hl7_check_sends_the_configured_message(pki, gateway, port, tmp_path):
    seen = []

    def reply(data):
        seen.append(data)
        return _ack(b"CA")(data)

    srv = _Replier(reply)
    msg = tmp_path / "check.hl7"
    msg.write_text("MSH|^~\\&|ZG|ZG|IE|IE|20260101000000||QRY^A19|42|P|2.3\nQRD|x\n")
    try:
        cfg = make_config(pki, {"in": _unwrap(port, srv.addr, "hl7",
                                              health_hl7_message=str(msg))})
        gateway(cfg)
        util.wait_until(lambda: len(seen) >= 2, timeout=10, what="two hl7 checks")
        assert seen[0] == (b"\x0bMSH|^~\\&|ZG|ZG|IE|IE|20260101000000||QRY^A19|42|P|2.3\r"
                           b"QRD|x\r\x1c\r")
    finally:
        srv.close()


class _Status(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


def test_http_check_expected_status(pki, gateway, port):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Status)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    addr = f"127.0.0.1:{srv.server_address[1]}"
    try:
        cfg = make_config(pki, {"ok": _unwrap(port, addr, "http", health_http_path="/health"),
                                "nf": _unwrap(port, addr, "http", health_http_path="/nope")})
        gw = gateway(cfg)
        down = gw.wait_for_event("upstream_down", route="nf", timeout=10)[0]
        assert down["reason"] == "health_check_rejected", down
        assert "HTTP status 404, expected 200" in down["detail"]
        time.sleep(0.8)
        assert not gw.events("upstream_down", route="ok")
    finally:
        srv.shutdown()
        srv.server_close()


def test_tls_check_wrong_identity(pki, gateway, port):
    """health_check = tls: the handshake under the route's policy; a member
    presenting a certificate for another name goes down with that code."""
    p = port()
    s = subprocess.Popen(["openssl", "s_server", "-accept", f"127.0.0.1:{p}", "-quiet",
                          "-cert", pki.cert("wrongname"), "-key", pki.key("wrongname"),
                          "-cert_chain", pki.intermediate(), "-CAfile", pki.roots,
                          "-Verify", "4"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        util.wait_port("127.0.0.1", p)
        r = {"mode": "wrap", "listen": f"127.0.0.1:{port()}", "connect": f"127.0.0.1:{p}",
             "server_name": "server.zonegate.test", "allow_from": "127.0.0.0/8",
             "health_check": "tls"}
        r.update(FAST)
        gw = gateway(make_config(pki, {"out": r}))
        down = gw.wait_for_event("upstream_down", route="out", timeout=10)[0]
        assert down["reason"] == "tls_server_name_mismatch", down
        assert down["source"] == "check"
    finally:
        s.kill()
        s.wait(10)


@pytest.mark.parametrize("name,reply,trickle,reason", [
    ("garbage", b"\xde\xad\xbe\xef" * 64, 0, "health_check_bad_reply"),
    ("oversized", b"\x0bMSH|" + b"x" * 70000, 0, "health_check_bad_reply"),
    ("slow", _ack(b"AA")(b""), 0.05, "health_check_timeout"),
    ("silent", b"", 0, "health_check_timeout"),
])  # the trickle takes ~4 s for the ~80-byte ACK, the silent one holds 5 s
def test_bad_replies_never_stall_relaying(pki, gateway, port, name, reply, trickle, reason):
    """Garbage, an oversized frame, a reply trickled slower than
    health_timeout and silence each fail the check with a reason code;
    meanwhile the route's other member relays without delay."""
    bad = _Replier(reply, trickle=trickle, hold=5.0 if name == "silent" else 0.5)
    # the good member passes the hl7 check and echoes what a client sends
    echo = _Replier(lambda d: _ack(b"AA")(d) if d.startswith(b"\x0b") else d)
    try:
        cfg = make_config(pki, {"in": _unwrap(port, f"{echo.addr}, {bad.addr}", "hl7")},
                          gateway={"workers": 1})
        gw = gateway(cfg)
        ctx = util.tls_context(pki, cert=pki.cert("client"), key=pki.key("client"),
                               chain=pki.chain("client"))
        worst = 0.0
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            t0 = time.monotonic()
            with util.tls_connect(ctx, "127.0.0.1", _listen_port(cfg, "in")) as s:
                assert util.echo_roundtrip(s, b"ping\n") == b"ping\n"
            worst = max(worst, time.monotonic() - t0)
        down = gw.wait_for_event("upstream_down", route="in", timeout=10)[0]
        assert down["endpoint"] == bad.addr and down["reason"] == reason, down
        assert len(gw.events("upstream_down")) == 1
        assert worst < 2.0, f"a relayed round trip took {worst:.2f}s while checks ran"
        assert not gw.sanitizer_reports()
    finally:
        bad.close()
        echo.close()
