"""DICOM inspection (issue 14) with real DCMTK tools (Debian package dcmtk).

A modality (storescu/echoscu, calling AE MODALITY1) reaches a PACS
(storescp, AE PACS) through site A (wrap) -> site B (unwrap, inspect =
dicom). B's directory gives participant site-a (127.0.0.0/8, certificate
site-a) the AE title MODALITY1: the calling AE must be one of the
participant's, the called AE one the route serves, the proposed SOP
classes in the route's allowlist. Refusals are A-ASSOCIATE-RJ as DCMTK
reports them; unreadable first PDUs get A-ABORT. DICOM files are made at
test time with dump2dcm.
"""
import json
import re
import shutil
import socket
import struct
import subprocess
import time
from pathlib import Path

import pytest

import util
from conftest import make_config
from test_directory import Operator, directory_doc, participant

VERIFICATION = "1.2.840.10008.1.1"
SC_STORAGE = "1.2.840.10008.5.1.4.1.1.7"
CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
CORPUS = Path(__file__).resolve().parents[1] / "fuzz" / "corpus" / "dicom_ul"

pytestmark = pytest.mark.skipif(shutil.which("storescu") is None, reason="dcmtk not installed")

SC_DUMP = """(0008,0016) UI [{sop}]
(0008,0018) UI [1.2.826.0.1.3680043.9.7433.1.{n}]
(0008,0060) CS [OT]
(0010,0010) PN [Test^Patient]
(0010,0020) LO [ZG0001]
(0020,000d) UI [1.2.826.0.1.3680043.9.7433.2.1]
(0020,000e) UI [1.2.826.0.1.3680043.9.7433.3.1]
(0028,0002) US 1
(0028,0004) CS [MONOCHROME2]
(0028,0010) US 64
(0028,0011) US 64
(0028,0100) US 8
(0028,0101) US 8
(0028,0102) US 7
(0028,0103) US 0
(7fe0,0010) OB {pixels}
"""


def make_dicom(path, n, sop=SC_STORAGE):
    """An image object (Secondary Capture unless `sop` says otherwise) of
    64x64 pixels, explicit VR little endian."""
    pixels = "\\".join(f"{(i * 7 + n) % 256:02x}" for i in range(64 * 64))
    dump = path.with_suffix(".dump")
    dump.write_text(SC_DUMP.format(n=n, pixels=pixels, sop=sop))
    subprocess.run(["dump2dcm", "+l", "65536", "+te", "--write-xfer-little", str(dump), str(path)], check=True,
                   capture_output=True)
    return path


def dataset_bytes(path):
    """The data set after the file meta information (group 0002)."""
    b = Path(path).read_bytes()
    assert b[128:132] == b"DICM"
    assert b[132:136] == b"\x02\x00\x00\x00"  # (0002,0000) group length, explicit VR UL
    glen = struct.unpack("<I", b[140:144])[0]
    return b[144 + glen:]


class Pacs:
    """storescp as AE PACS, writing what it receives bit for bit (+B)."""

    def __init__(self, workdir, port):
        self.dir = workdir / "pacs"
        self.dir.mkdir()
        self.port = port
        self.proc = subprocess.Popen(["storescp", "-aet", "PACS", "+B", "-od", str(self.dir), str(port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        util.wait_port("127.0.0.1", port)

    def files(self):
        return sorted(self.dir.iterdir())

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def run(*argv, timeout=60):
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def chain(request, tmp_path, zonegate_bin, pki, gateway, port):
    """(a_port, b_port, pacs, gw_a, gw_b, store_port): wrap A -> unwrap B (inspect = dicom) -> storescp."""
    op = Operator(zonegate_bin, tmp_path)
    op.publish(directory_doc(1, [
        participant("site-a", ["site-a.zonegate.test"], ["127.0.0.0/8"], dicom_ae_titles=["MODALITY1"]),
        participant("site-c", ["client.zonegate.test"], ["192.0.2.0/24"], dicom_ae_titles=["OTHERSITE"]),
    ]))
    pacs = Pacs(tmp_path, port())
    a_port, b_port, store_port = port(), port(), port()
    b_cfg = make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{b_port}",
                                     "connect": f"127.0.0.1:{pacs.port}", "inspect": "dicom",
                                     "dicom_called_ae": "PACS, PACS2",
                                     "dicom_abstract_syntaxes": f"{VERIFICATION}, {SC_STORAGE}"},
                              # storage only: DCMTK's own TLS reaches it directly
                              "store": {"mode": "unwrap", "listen": f"127.0.0.1:{store_port}",
                                        "connect": f"127.0.0.1:{pacs.port}", "inspect": "dicom",
                                        "dicom_called_ae": "PACS", "dicom_abstract_syntaxes": SC_STORAGE}},
                        name="site-b", leaf="site-b")
    b_cfg["directory"] = {"file": str(op.json), "public_key": op.pub}
    # B keeps an ATNA trail (local file only) so records can be read back
    b_cfg["audit"] = {"file": str(tmp_path / "audit-b.log")}
    a_cfg = make_config(pki, {"out": {"mode": "wrap", "listen": f"127.0.0.1:{a_port}",
                                      "connect": f"127.0.0.1:{b_port}",
                                      "server_name": "site-b.zonegate.test",
                                      "allow_from": "127.0.0.0/8", "inspect": "dicom",
                                      "dicom_called_ae": "PACS, PACS2", "dicom_max_pdu": "64K"}},
                        name="site-a", leaf="site-a")
    gw_b = gateway(b_cfg, name="site-b")
    gw_a = gateway(a_cfg, name="site-a")
    yield a_port, b_port, pacs, gw_a, gw_b, store_port
    pacs.stop()


def wait_log(gw, pattern, timeout=10):
    util.wait_until(lambda: pattern in gw.log(), timeout=timeout, what=pattern)
    return [ln for ln in gw.log().splitlines() if pattern in ln]


def test_storescu_through_wrap_and_unwrap_stores_byte_identical(chain, tmp_path):
    a_port, _, pacs, gw_a, gw_b = chain[:5]
    files = [make_dicom(tmp_path / f"sc{i}.dcm", i) for i in range(3)]
    cp = run("storescu", "-R", "-aet", "MODALITY1", "-aec", "PACS", "127.0.0.1", a_port, *files)
    assert cp.returncode == 0, cp.stderr
    util.wait_until(lambda: len(pacs.files()) == 3, what="three stored files")
    got = sorted(dataset_bytes(f) for f in pacs.files())
    assert got == sorted(dataset_bytes(f) for f in files)
    line = wait_log(gw_b, "event=conn_close")[-1]
    assert "calling_ae=MODALITY1" in line and "called_ae=PACS" in line
    # the ATNA network-entry records name the AE titles too
    trail = tmp_path / "audit-b.log"
    util.wait_until(lambda: trail.exists() and "calling_ae=MODALITY1" in trail.read_text(errors="replace"),
                    what="AE titles in the audit trail")


def test_echoscu_passes(chain):
    a_port = chain[0]
    cp = run("echoscu", "-aet", "MODALITY1", "-aec", "PACS2", "127.0.0.1", a_port)
    assert cp.returncode == 0, cp.stderr


def test_calling_ae_of_another_participant_is_rejected(chain, tmp_path):
    a_port, _, pacs, _, gw_b = chain[:5]
    cp = run("echoscu", "-aet", "OTHERSITE", "-aec", "PACS", "127.0.0.1", a_port)
    assert cp.returncode != 0
    assert "Calling AE Title Not Recognized" in cp.stdout + cp.stderr
    line = wait_log(gw_b, "reason=dicom_calling_ae_not_allowed")[-1]
    assert "OTHERSITE" in line and "site-a" in line
    # audited as a node-authentication failure (110113/110126) naming the rule
    trail = tmp_path / "audit-b.log"
    util.wait_until(lambda: trail.exists() and "dicom_calling_ae_not_allowed" in trail.read_text(errors="replace")
                    and "110126" in trail.read_text(errors="replace"), what="refusal in the audit trail")


def test_called_ae_not_served_is_rejected(chain):
    a_port, _, _, gw_a, _ = chain[:5]
    cp = run("echoscu", "-aet", "MODALITY1", "-aec", "ARCHIVE", "127.0.0.1", a_port)
    assert cp.returncode != 0
    assert "Called AE Title Not Recognized" in cp.stdout + cp.stderr
    # refused already at A (wrap), before any TLS to B
    wait_log(gw_a, "reason=dicom_called_ae_not_served")


def test_disallowed_sop_class_is_refused(chain, tmp_path):
    a_port, _, pacs, _, gw_b = chain[:5]
    ct = make_dicom(tmp_path / "ct.dcm", 9, sop=CT_STORAGE)  # a class outside B's allowlist
    cp = run("storescu", "-R", "-aet", "MODALITY1", "-aec", "PACS", "127.0.0.1", a_port, ct)
    assert cp.returncode != 0
    assert "Association Rejected" in cp.stdout + cp.stderr
    wait_log(gw_b, "reason=dicom_abstract_syntax_not_allowed")
    assert pacs.files() == []


def test_storescu_proposing_every_storage_class_stores_the_allowed_one(chain, tmp_path):
    """storescu without -R proposes its whole list of storage classes (one
    context each); B allows Secondary Capture only, so it removes the others
    from the request storescp gets and answers them as rejected (result 3)
    in the A-ASSOCIATE-AC: the association and the store go through."""
    a_port, _, pacs, _, gw_b = chain[:5]
    f = make_dicom(tmp_path / "many.dcm", 11)
    cp = run("storescu", "-aet", "MODALITY1", "-aec", "PACS", "127.0.0.1", a_port, f)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    util.wait_until(lambda: len(pacs.files()) == 1, what="stored file")
    assert dataset_bytes(pacs.files()[0]) == dataset_bytes(f)
    # one line counts and names the refused classes, Secondary Capture not
    refused = wait_log(gw_b, "event=message_refused")
    assert len(refused) == 1, refused
    assert "reason=dicom_abstract_syntax_not_allowed" in refused[0] and "calling_ae=MODALITY1" in refused[0]
    assert re.search(r"detail=\"(\d+) of \1 contexts refused", refused[0]) is None  # not all of them
    assert re.search(r"detail=\"\d+ of \d+ contexts refused, abstract syntaxes: 1\.2\.840", refused[0])
    assert f" {SC_STORAGE} " not in refused[0].replace('"', " ")
    assert "reason=client_closed" in wait_log(gw_b, "event=conn_close")[-1]
    trail = tmp_path / "audit-b.log"
    util.wait_until(lambda: trail.exists() and "contexts refused, abstract syntaxes" in trail.read_text(errors="replace"),
                    what="the refused classes in the audit trail")


def _store_all_rq():
    """storescu's recorded request (every storage class, ids 1, 3, ...), readdressed MODALITY1 -> PACS."""
    rq = (CORPUS / "dcmtk_store_all").read_bytes()
    plen = struct.unpack(">I", rq[2:6])[0]
    return rq[:10] + b"PACS".ljust(16) + b"MODALITY1".ljust(16) + rq[42:6 + plen]


def _contexts(pdu, item_type):
    """{id: (abstract syntax or result, ...)} of an RQ's (0x20) or AC's (0x21) presentation context items."""
    out, at = {}, 6 + 68
    while at < len(pdu):
        t, length = pdu[at], struct.unpack(">H", pdu[at + 2:at + 4])[0]
        if t == item_type:
            v = pdu[at + 4:at + 4 + length]
            out[v[0]] = v[2] if item_type == 0x21 else v[8:8 + struct.unpack(">H", v[6:8])[0]].rstrip(b"\0")
            if item_type == 0x21:
                assert v[4] == 0x40 and 4 + 4 + struct.unpack(">H", v[6:8])[0] == length
        at += 4 + length
    assert at == len(pdu)
    return out


def test_a_associate_ac_answers_every_proposed_context(chain):
    """Byte level: the AC storescp sends back through B answers every id of
    the request, in id order; the allowed ones as storescp decided, every
    other one 3 (abstract syntax not supported, provider rejection)."""
    a_port = chain[0]
    rq = _store_all_rq()
    proposed = _contexts(rq, 0x20)
    assert len(proposed) > 100
    s = util.connect("127.0.0.1", a_port)
    try:
        s.sendall(rq)
        head = util.recv_exactly(s, 6, timeout=15)
        assert head[0] == 2, "A-ASSOCIATE-AC expected"
        ac = head + util.recv_exactly(s, struct.unpack(">I", head[2:6])[0], timeout=15)
    finally:
        s.close()
    answered = _contexts(ac, 0x21)
    assert list(answered) == sorted(proposed)
    for pc_id, uid in proposed.items():
        if uid.decode() in (VERIFICATION, SC_STORAGE):
            assert answered[pc_id] == 0, uid  # storescp accepts what it was asked for
        else:
            assert answered[pc_id] == 3, uid


def test_echoscu_on_a_storage_only_route_is_rejected(chain, pki):
    """No proposed context allowed: the whole association is refused, as before."""
    store_port, gw_b = chain[5], chain[4]
    tls = ["+tls", pki.key("site-a"), pki.chain("site-a"), "+cf", pki.roots]
    cp = run("echoscu", *tls, "-aet", "MODALITY1", "-aec", "PACS", "127.0.0.1", store_port)
    assert cp.returncode != 0
    assert "Association Rejected" in cp.stdout + cp.stderr
    line = wait_log(gw_b, "reason=dicom_abstract_syntax_not_allowed")[-1]
    assert "route=store" in line and VERIFICATION in line


def test_dcmtk_tls_client_on_the_unwrap_route(chain, pki, tmp_path):
    """storescu's own TLS (+tls) with site-a's certificate straight to B."""
    _, b_port, pacs, _, gw_b = chain[:5]
    f = make_dicom(tmp_path / "tls.dcm", 5)
    common = ["+tls", pki.key("site-a"), pki.chain("site-a"), "+cf", pki.roots, "-R", "-aec", "PACS"]
    cp = run("storescu", *common, "-aet", "MODALITY1", "127.0.0.1", b_port, f)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    util.wait_until(lambda: len(pacs.files()) == 1, what="stored file")
    assert dataset_bytes(pacs.files()[0]) == dataset_bytes(f)
    cp = run("storescu", *common, "-aet", "OTHERSITE", "127.0.0.1", b_port, f)
    assert "Calling AE Title Not Recognized" in cp.stdout + cp.stderr


def raw(a_port, data, shut=False):
    """Send `data` to the wrap route; everything it answers until it closes."""
    s = util.connect("127.0.0.1", a_port)
    try:
        s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
        return util.recv_all(s, timeout=15)
    finally:
        s.close()


ABORT = bytes([7, 0, 0, 0, 0, 4, 0, 0, 2])


@pytest.mark.parametrize("data,reason,abort_reason", [
    (b"GET / HTTP/1.1\r\n\r\n", "dicom_unexpected_pdu", 1),  # garbage: unrecognized PDU
    (bytes([4, 0, 0, 0, 0, 8]) + b"\0" * 8, "dicom_unexpected_pdu", 2),  # P-DATA first
    (bytes([1, 0, 0xff, 0xff, 0xff, 0xff]), "dicom_pdu_too_large", 6),  # 4 GiB association request
    (bytes([1, 0, 0, 0, 0, 10]) + b"\0" * 10, "dicom_malformed", 6),  # shorter than its fields
])
def test_unreadable_first_pdu_gets_a_abort(chain, data, reason, abort_reason):
    a_port, _, _, gw_a, _ = chain[:5]
    got = raw(a_port, data)
    assert got == ABORT + bytes([abort_reason])
    wait_log(gw_a, f"reason={reason}")


def test_truncated_request_is_closed_with_a_reason(chain):
    a_port, _, _, gw_a, _ = chain[:5]
    rq = (CORPUS / "dcmtk_echo").read_bytes()
    assert raw(a_port, rq[:50], shut=True) == b""
    line = wait_log(gw_a, "before a complete A-ASSOCIATE-RQ")[-1]
    assert "reason=client_closed" in line


@pytest.mark.parametrize("pdu,reason", [
    (bytes([9, 0, 0, 0, 0, 4, 0, 0, 0, 0]), "dicom_unexpected_pdu"),  # no such PDU type
    (bytes([1, 0, 0, 0, 0, 68]) + b"\0" * 68, "dicom_unexpected_pdu"),  # a second A-ASSOCIATE-RQ
    (bytes([4, 0, 0xff, 0xff, 0xff, 0xff]), "dicom_pdu_too_large"),  # P-DATA-TF over dicom_max_pdu
])
def test_bad_pdu_after_the_association_closes_with_a_reason(chain, pdu, reason):
    """echoscu's recorded request, readdressed MODALITY1 -> PACS, is accepted
    end to end; the PDU after it breaks the framing A follows."""
    a_port, _, _, gw_a, _ = chain[:5]
    rq = (CORPUS / "dcmtk_echo").read_bytes()
    plen = struct.unpack(">I", rq[2:6])[0]
    rq = rq[:10] + b"PACS".ljust(16) + b"MODALITY1".ljust(16) + rq[42:6 + plen]
    s = util.connect("127.0.0.1", a_port)
    try:
        s.sendall(rq)
        head = util.recv_exactly(s, 6, timeout=15)
        assert head[0] == 2, "A-ASSOCIATE-AC expected"
        util.recv_exactly(s, struct.unpack(">I", head[2:6])[0], timeout=15)
        s.sendall(pdu)
        util.recv_all(s, timeout=15)
    finally:
        s.close()
    line = wait_log(gw_a, f"reason={reason}")[-1]
    assert "event=conn_close" in line


def _echo_rq():
    """echoscu's recorded A-ASSOCIATE-RQ, readdressed MODALITY1 -> PACS."""
    rq = (CORPUS / "dcmtk_echo").read_bytes()
    plen = struct.unpack(">I", rq[2:6])[0]
    return bytearray(rq[:10] + b"PACS".ljust(16) + b"MODALITY1".ljust(16) + rq[42:6 + plen])


def _with_version(rq, v):
    rq[6:8] = struct.pack(">H", v)
    return bytes(rq)


def _with_context(rq, uid):
    i = rq.index(b"1.2.840.10008.3.1.1.1")
    rq[i:i + len(uid)] = uid
    return bytes(rq)


@pytest.mark.parametrize("mutate,reason", [
    (lambda rq: _with_version(rq, 2), "dicom_protocol_version"),  # version 1 bit not set
    (lambda rq: _with_context(rq, b"1.2.840.10008.3.1.1.9"), "dicom_application_context"),
])
def test_unsupported_version_or_context_gets_a_associate_rj(chain, mutate, reason):
    """An association request a DICOM node would not accept for its version
    or application context is answered with A-ASSOCIATE-RJ (PDU type 3),
    never forwarded, and the refusal names the check."""
    a_port, _, _, gw_a, _ = chain[:5]
    got = raw(a_port, mutate(_echo_rq()))
    assert got[:1] == b"\x03", got
    wait_log(gw_a, f"reason={reason}")


def test_directory_show_lists_ae_titles_and_facilities(zonegate_bin, tmp_path):
    op = Operator(zonegate_bin, tmp_path)
    op.publish(directory_doc(1, [participant("site-a", ["site-a.zonegate.test"], ["10.0.0.0/8"],
                                             dicom_ae_titles=["CT 1", "MODALITY1"],
                                             hl7_facilities=["SITEA"])]))
    out = op.run("show", str(op.json)).stdout
    assert 'dicom_ae_title  "CT 1"' in out and 'dicom_ae_title  "MODALITY1"' in out
    assert 'hl7_facility    "SITEA"' in out
