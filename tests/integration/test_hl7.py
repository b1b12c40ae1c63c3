"""HL7 v2 over MLLP inspection (issue 14) with mllp_send (Debian package
python3-hl7).

A lab system (sending facility SITEA) sends through site A (wrap, inspect =
hl7-mllp, ADT and ORU only) -> site B (unwrap, inspect = hl7-mllp) to an
MLLP receiver in this file, which answers AA and records what arrives. B's
directory gives participant site-a the facility SITEA: a message naming
another facility is answered AR by the gateway and not forwarded, and the
next valid message on the same connection passes. Broken framing closes the
connection with a reason.
"""
import re
import shutil
import socket
import subprocess
import threading

import pytest

import util
from conftest import make_config
from test_directory import Operator, directory_doc, participant

pytestmark = pytest.mark.skipif(shutil.which("mllp_send") is None,
                                reason="python3-hl7 (mllp_send) not installed")

SB, EB_CR = b"\x0b", b"\x1c\x0d"


def message(facility, control_id, mtype="ADT^A01^ADT_A01", sep=b"|^~\\&"):
    fs = sep[:1]
    enc = sep[1:]
    fields = [b"MSH", enc, b"LABSYS", facility.encode(), b"ADT", b"HOSPB", b"20261206021500", b"",
              mtype.encode().replace(b"^", enc[:1]), control_id.encode(), b"P", b"2.5"]
    return fs.join(fields) + b"\rPID" + fs + b"1" + fs * 2 + b"12345\r"


def frame(msg):
    return SB + msg + EB_CR


class Receiver:
    """An MLLP server: answers every frame with an AA ACK, keeps the frames."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.frames = []
        self.stopping = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._conn, args=(c,), daemon=True).start()

    def _conn(self, c):
        buf = b""
        with c:
            while True:
                try:
                    d = c.recv(65536)
                except OSError:
                    return
                if not d:
                    return
                buf += d
                while EB_CR in buf:
                    f, buf = buf.split(EB_CR, 1)
                    msg = f[1:]
                    self.frames.append(msg)
                    ctl = msg.split(b"\r")[0].split(msg[3:4])[9]
                    c.sendall(frame(b"MSH|^~\\&|ADT|HOSPB|LABSYS|SITEA|20261206||ACK^A01^ACK|A" + ctl +
                                    b"|P|2.5\rMSA|AA|" + ctl + b"\r"))

    def stop(self):
        self.stopping = True
        self.sock.close()


@pytest.fixture
def chain(tmp_path, zonegate_bin, pki, gateway, port):
    op = Operator(zonegate_bin, tmp_path)
    op.publish(directory_doc(1, [
        participant("site-a", ["site-a.zonegate.test"], ["127.0.0.0/8"], hl7_facilities=["SITEA"]),
        participant("site-c", ["client.zonegate.test"], ["192.0.2.0/24"], hl7_facilities=["SITEZ"]),
    ]))
    rx = Receiver()
    a_port, b_port = port(), port()
    b_cfg = make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{b_port}",
                                     "connect": f"127.0.0.1:{rx.port}", "inspect": "hl7-mllp"}},
                        name="site-b", leaf="site-b")
    b_cfg["directory"] = {"file": str(op.json), "public_key": op.pub}
    a_cfg = make_config(pki, {"out": {"mode": "wrap", "listen": f"127.0.0.1:{a_port}",
                                      "connect": f"127.0.0.1:{b_port}",
                                      "server_name": "site-b.zonegate.test",
                                      "allow_from": "127.0.0.0/8", "inspect": "hl7-mllp",
                                      "hl7_message_types": "ADT^*, ORU", "hl7_max_message": "4K"}},
                        name="site-a", leaf="site-a")
    gw_b = gateway(b_cfg, name="site-b")
    gw_a = gateway(a_cfg, name="site-a")
    yield a_port, rx, gw_a, gw_b
    rx.stop()


def mllp_send(a_port, tmp_path, *msgs):
    f = tmp_path / "msgs.hl7"
    f.write_bytes(b"".join(frame(m) for m in msgs))
    cp = subprocess.run(["mllp_send", "--port", str(a_port), "--file", str(f), "127.0.0.1"],
                        capture_output=True, timeout=60)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    return cp.stdout.decode(errors="replace")


def test_foreign_facility_gets_ar_and_the_next_message_passes(chain, tmp_path):
    a_port, rx, gw_a, gw_b = chain
    out = mllp_send(a_port, tmp_path, message("SITEZ", "MSG1"), message("SITEA", "MSG2"))
    acks = re.findall(r"MSA\|(A[ARE])\|(\w+)", out)
    assert acks == [("AR", "MSG1"), ("AA", "MSG2")], out
    assert "not one of participant site-a" in out
    assert [m.split(b"|")[9] for m in rx.frames] == [b"MSG2"]
    # mllp_send strips the last segment's CR; otherwise the message is intact
    assert rx.frames[0] == message("SITEA", "MSG2").rstrip(b"\r")
    gw_b.wait_for_log(r"event=message_refused .*hl7_facility=SITEZ .*reason=hl7_facility_not_allowed")
    m = gw_b.wait_for_log(r"event=conn_close .*hl7_facility=SITEA hl7_type=ADT\^A01")
    assert m


def test_message_type_outside_the_allowlist_gets_ar(chain, tmp_path):
    a_port, rx, gw_a, _ = chain
    out = mllp_send(a_port, tmp_path, message("SITEA", "Q1", mtype="QRY^A19"),
                    message("SITEA", "R1", mtype="ORU^R01"))
    assert re.findall(r"MSA\|(A[ARE])\|(\w+)", out) == [("AR", "Q1"), ("AA", "R1")], out
    assert [m.split(b"|")[9] for m in rx.frames] == [b"R1"]
    gw_a.wait_for_log(r"event=message_refused .*reason=hl7_message_type_not_allowed")


def test_other_separators_are_read_from_msh(chain, tmp_path):
    a_port, rx, _, gw_b = chain
    s = util.connect("127.0.0.1", a_port)
    try:
        s.sendall(frame(message("SITEZ", "S1", sep=b"#$%/*")))
        ack = util.recv_exactly(s, 10, timeout=15)
        ack += s.recv(4096)
        assert b"MSA#AR#S1#" in ack and ack.startswith(b"\x0bMSH#$%/*#")
        s.sendall(frame(message("SITEA", "S2", sep=b"#$%/*")))
        ack = util.recv_exactly(s, 10, timeout=15) + s.recv(4096)
        assert b"MSA|AA|S2" in ack
    finally:
        s.close()
    assert rx.frames == [message("SITEA", "S2", sep=b"#$%/*")]  # byte for byte


@pytest.mark.parametrize("data,reason", [
    (b"GET / HTTP/1.1\r\n\r\n", "hl7_malformed"),
    (frame(message("SITEA", "T0") + b"OBX|" + b"X" * 5000 + b"\r"), "hl7_message_too_large"),
    (SB + b"MSH|^~\\&|" + b"X" * 3000 + b"\r" + EB_CR, "hl7_malformed"),
    (SB + b"PID|1\r" + EB_CR, "hl7_malformed"),
    (frame(message("SITEA", "T1"))[:-1] + b"X", "hl7_malformed"),
], ids=["outside-frame", "over-4K", "msh-over-2K", "no-msh", "no-cr-after-1c"])
def test_broken_framing_closes_with_a_reason(chain, data, reason):
    a_port, rx, gw_a, _ = chain
    s = util.connect("127.0.0.1", a_port)
    try:
        s.sendall(data)
        try:
            util.recv_all(s, timeout=15)
        except ConnectionResetError:
            pass
    finally:
        s.close()
    gw_a.wait_for_log(rf"event=conn_close .*reason={reason}")
