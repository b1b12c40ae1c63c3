"""Orthanc (Debian package orthanc) as a second PACS behind an unwrap route
with inspect = dicom (issue 14).

Two Orthanc servers run as subprocesses of the test, each with its own
configuration, storage directory in tmp, DICOM port and HTTP port (REST on
loopback: RemoteAccessAllowed false). Orthanc 1.10 cannot bind its DICOM
port to one address, so the PACS stores only from the AE titles it knows,
at 127.0.0.1 (DicomAlwaysAllowStore false, DicomCheckModalityHost true).

    storescu (MODALITY1) ─┐
    Orthanc A (ORTHANCA) ─┴▶ site A (wrap) ─TLS─▶ site B (unwrap, inspect = dicom) ─▶ Orthanc B (ORTHANCB)

B's directory gives participant site-a the AE titles MODALITY1 and
ORTHANCA. The route allows Verification and Secondary Capture Storage
only (dicom_abstract_syntaxes). Orthanc's C-STORE SCU proposes storage
classes beyond the instance's (1.2.840.10008.5.1.4.1.1.9.1.3 first): B
removes those from the request and answers them as rejected in the
A-ASSOCIATE-AC (docs/protocols.md), and the store goes through. What arrives
is read back through Orthanc B's REST API and
compared with what was sent, data set byte for byte; a calling AE title
that is not site-a's gets A-ASSOCIATE-RJ and nothing is stored.
"""
import json
import shutil
import subprocess
import urllib.error
import urllib.request

import pytest

import util
from conftest import make_config
from test_dicom import SC_STORAGE, VERIFICATION, dataset_bytes, make_dicom, run, wait_log
from test_directory import Operator, directory_doc, participant

pytestmark = pytest.mark.skipif(shutil.which("Orthanc") is None, reason="orthanc not installed")


class Orthanc:
    """One Orthanc server: DICOM on @dicom_port as @aet, REST on @http_port."""

    def __init__(self, workdir, name, aet, dicom_port, http_port, modalities, known_only=False):
        self.dir = workdir / name
        (self.dir / "db").mkdir(parents=True)
        self.http = f"http://127.0.0.1:{http_port}"
        self.port_dicom = dicom_port
        conf = {
            "Name": name, "StorageDirectory": str(self.dir / "db"), "IndexDirectory": str(self.dir / "db"),
            "DicomAet": aet, "DicomPort": dicom_port, "DicomCheckCalledAet": True,
            "HttpPort": http_port, "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
            "HttpServerEnabled": True, "OrthancExplorerEnabled": False, "WebDavEnabled": False,
            "DicomModalities": modalities, "DicomAlwaysAllowStore": not known_only,
            "DicomCheckModalityHost": True, "Plugins": [], "SaveJobs": False,
            "DicomAssociationCloseDelay": 0, "StorageCompression": False,
        }
        (self.dir / "orthanc.json").write_text(json.dumps(conf, indent=1))
        self.log = open(self.dir / "orthanc.log", "wb")
        self.proc = subprocess.Popen(["Orthanc", str(self.dir / "orthanc.json")], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        util.wait_until(self._up, timeout=60, what=f"Orthanc {name} REST API")
        util.wait_port("127.0.0.1", dicom_port, timeout=30)

    def _up(self):
        assert self.proc.poll() is None, (self.dir / "orthanc.log").read_text(errors="replace")
        try:
            self.get("/system")
            return True
        except (urllib.error.URLError, ConnectionError):
            return False

    def get(self, path, raw=False):
        with urllib.request.urlopen(self.http + path, timeout=30) as r:
            body = r.read()
        return body if raw else json.loads(body)

    def post(self, path, body):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        req = urllib.request.Request(self.http + path, data=data, method="POST")
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.loads(r.read())

    def instances(self):
        return self.get("/instances")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture
def chain(tmp_path, zonegate_bin, pki, gateway, port):
    """(a_port, orthanc_a, orthanc_b, gw_b)."""
    op = Operator(zonegate_bin, tmp_path)
    op.publish(directory_doc(1, [
        participant("site-a", ["site-a.zonegate.test"], ["127.0.0.0/8"],
                    dicom_ae_titles=["MODALITY1", "ORTHANCA"]),
        participant("site-c", ["client.zonegate.test"], ["192.0.2.0/24"], dicom_ae_titles=["OTHERSITE"]),
    ]))
    a_port, b_port = port(), port()
    # B's gateway connects from 127.0.0.1 with the client's calling AE:
    # those are the only stores Orthanc B takes
    orthanc_b = Orthanc(tmp_path, "orthanc-b", "ORTHANCB", port(), port(), known_only=True, modalities={
        "modality1": ["MODALITY1", "127.0.0.1", 104], "orthanca": ["ORTHANCA", "127.0.0.1", 104],
        "othersite": ["OTHERSITE", "127.0.0.1", 104]})
    orthanc_a = None
    try:
        b_cfg = make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{b_port}",
                                         "connect": f"127.0.0.1:{orthanc_b.port_dicom}",
                                         "inspect": "dicom", "dicom_called_ae": "ORTHANCB",
                                         "dicom_abstract_syntaxes": f"{VERIFICATION}, {SC_STORAGE}"}},
                            name="site-b", leaf="site-b")
        b_cfg["directory"] = {"file": str(op.json), "public_key": op.pub}
        a_cfg = make_config(pki, {"out": {"mode": "wrap", "listen": f"127.0.0.1:{a_port}",
                                          "connect": f"127.0.0.1:{b_port}",
                                          "server_name": "site-b.zonegate.test",
                                          "allow_from": "127.0.0.0/8", "inspect": "dicom",
                                          "dicom_called_ae": "ORTHANCB"}},
                            name="site-a", leaf="site-a")
        gw_b = gateway(b_cfg, name="site-b")
        gateway(a_cfg, name="site-a")
        # Orthanc A reaches "pacs" (ORTHANCB) through site A's wrap route
        orthanc_a = Orthanc(tmp_path, "orthanc-a", "ORTHANCA", port(), port(), modalities={
            "pacs": ["ORTHANCB", "127.0.0.1", a_port]})
        yield a_port, orthanc_a, orthanc_b, gw_b
    finally:
        if orthanc_a:
            orthanc_a.stop()
        orthanc_b.stop()


def test_storescu_stores_into_orthanc_byte_identical(chain, tmp_path):
    a_port, _, orthanc_b, gw_b = chain
    f = make_dicom(tmp_path / "sc.dcm", 21)
    cp = run("storescu", "-R", "-aet", "MODALITY1", "-aec", "ORTHANCB", "127.0.0.1", a_port, f)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    util.wait_until(lambda: len(orthanc_b.instances()) == 1, what="the instance in Orthanc B")
    stored = orthanc_b.get(f"/instances/{orthanc_b.instances()[0]}/file", raw=True)
    got = tmp_path / "from-orthanc.dcm"
    got.write_bytes(stored)
    assert dataset_bytes(got) == dataset_bytes(f)
    line = wait_log(gw_b, "event=conn_close")[-1]
    assert "calling_ae=MODALITY1" in line and "called_ae=ORTHANCB" in line


def test_orthanc_c_store_from_another_orthanc_passes(chain, tmp_path):
    """Orthanc A's own SCU (REST /modalities/pacs/store) through the gateways."""
    _, orthanc_a, orthanc_b, gw_b = chain
    f = make_dicom(tmp_path / "sc.dcm", 22)
    iid = orthanc_a.post("/instances", f.read_bytes())["ID"]
    answer = orthanc_a.post("/modalities/pacs/store", {"Resources": [iid], "Synchronous": True})
    assert answer.get("FailedInstancesCount", 0) == 0, answer
    assert orthanc_b.instances() == [iid]  # Orthanc's ids are hashes of the UIDs: the same instance
    stored = tmp_path / "from-orthanc-b.dcm"
    stored.write_bytes(orthanc_b.get(f"/instances/{iid}/file", raw=True))
    assert dataset_bytes(stored) == dataset_bytes(f)
    line = wait_log(gw_b, "calling_ae=ORTHANCA")[-1]
    assert "called_ae=ORTHANCB" in line
    # the classes beyond the route's allowlist were refused one by one, on one line
    refused = wait_log(gw_b, "event=message_refused")
    assert len(refused) == 1 and "reason=dicom_abstract_syntax_not_allowed" in refused[0]
    assert "1.2.840.10008.5.1.4.1.1.9.1.3" in refused[0] and SC_STORAGE + " " not in refused[0]


def test_wrong_calling_ae_is_refused_with_a_associate_rj(chain, tmp_path):
    a_port, orthanc_a, orthanc_b, gw_b = chain
    f = make_dicom(tmp_path / "sc.dcm", 23)
    # storescu with another participant's AE title
    cp = run("storescu", "-R", "-aet", "OTHERSITE", "-aec", "ORTHANCB", "127.0.0.1", a_port, f)
    assert cp.returncode != 0
    assert "Calling AE Title Not Recognized" in cp.stdout + cp.stderr
    # Orthanc A calling as that AE title too: its job fails, nothing is stored
    iid = orthanc_a.post("/instances", f.read_bytes())["ID"]
    with pytest.raises(urllib.error.HTTPError) as e:
        orthanc_a.post("/modalities/pacs/store",
                       {"Resources": [iid], "Synchronous": True, "LocalAet": "OTHERSITE"})
    assert e.value.code >= 400
    assert "Association Rejected" in e.value.read().decode(errors="replace")
    util.wait_until(lambda: gw_b.log().count("reason=dicom_calling_ae_not_allowed") == 2,
                    what="both refusals at B")
    lines = wait_log(gw_b, "reason=dicom_calling_ae_not_allowed")
    assert all("OTHERSITE" in ln for ln in lines)
    assert orthanc_b.instances() == []
