"""Who is who in a connection's audit records (issue 10 item 7).

DICOM PS3.15 A.5 network-entry and node-authentication records name the
connection's source (RoleIDCode 110153, UserIsRequestor true) and its
destination (110152), each by its own certificate subject and SANs when it
authenticated with one, else by address, and each with its own address as
NetworkAccessPointID. A gateway sits between the two: it is the application
(110150) that relays. Per mode:

- wrap:   source = the local client (by address); destination = the remote
          gateway (its server certificate and its address);
- unwrap: source = the remote peer (its client certificate and address);
          destination = the local service (by address);
- bridge: source = the client's certificate, destination = the upstream's.

Real processes: client -> A (wrap) -> M (bridge) -> B (unwrap) -> echo, each
gateway keeping a local audit file, whose records are parsed field by field.
"""
import os
import subprocess
import xml.etree.ElementTree as ET

import audit_util as au
import util
from conftest import make_config

SOURCE, DEST, APP = "110153", "110152", "110150"


def audited(cfg, tmp_path, name):
    cfg["audit"] = {"file": str(tmp_path / f"{name}-audit.log")}
    return cfg


def records(tmp_path, name, type_code):
    """The AuditMessages of gateway @name whose EventTypeCode is @type_code."""
    out = []
    for _seq, xml in au.file_records(tmp_path / f"{name}-audit.log"):
        root = ET.fromstring(xml)
        if root.find("EventIdentification/EventTypeCode").get("csd-code") == type_code:
            out.append(root)
    return out


def parties(root):
    """{role code: ActiveParticipant attributes}, each role at most once."""
    out = {}
    for ap in root.findall("ActiveParticipant"):
        role = ap.find("RoleIDCode").get("csd-code")
        assert role not in out, f"two participants with role {role}: {ET.tostring(root)}"
        out[role] = dict(ap.attrib)
    return out


def details(root):
    import base64
    return {d.get("type"): base64.b64decode(d.get("value")).decode()
            for d in root.iter("ParticipantObjectDetail")}


def check_by_address(p, host, port, requestor):
    assert p["UserID"] == f"{host}:{port}", p
    assert "UserName" not in p, p  # no certificate on that hop
    assert p["UserIsRequestor"] == requestor, p
    assert p["NetworkAccessPointID"] == host and p["NetworkAccessPointTypeCode"] == "2", p


def check_by_cert(p, cn, san, host, requestor):
    assert cn in p["UserID"], p
    assert san in p.get("UserName", ""), p
    assert p["UserIsRequestor"] == requestor, p
    assert p["NetworkAccessPointID"] == host and p["NetworkAccessPointTypeCode"] == "2", p


def check_gateway(p, name, route):
    assert p["UserID"] == name and p["AlternativeUserID"] == route, p
    assert p["UserIsRequestor"] == "false", p


def test_each_mode_names_source_and_destination(pki, gateway, port, echo_server, tmp_path):
    echo = echo_server()
    b_port, m_port, a_port = port(), port(), port()
    b = gateway(audited(make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{b_port}",
                                                 "connect": echo.addr}}, name="site-b"),
                        tmp_path, "site-b"), name="site-b")
    m = gateway(audited(make_config(pki, {"hop": {"mode": "bridge", "listen": f"127.0.0.1:{m_port}",
                                                  "connect": f"127.0.0.1:{b_port}",
                                                  "server_name": "site-b.zonegate.test"}},
                                    name="hub", leaf="site-b", alg="rsa"), tmp_path, "hub"),
                name="hub")
    a = gateway(audited(make_config(pki, {"out": {"mode": "wrap", "listen": f"127.0.0.1:{a_port}",
                                                  "connect": f"127.0.0.1:{m_port}",
                                                  "server_name": "site-b.zonegate.test",
                                                  "allow_from": "127.0.0.0/8"}},
                                    name="site-a", leaf="site-a"), tmp_path, "site-a"),
                name="site-a")
    s = util.connect("127.0.0.1", a_port)
    client_port = s.getsockname()[1]
    s.sendall(b"ping\n")
    assert util.recv_exactly(s, 5) == b"ping\n"
    s.close()
    for gw, route in ((a, "out"), (m, "hop"), (b, "in")):
        gw.wait_for_event("conn_close", route=route)
    # the hops' own source ports, from their close lines
    m_client = int(m.events("conn_close")[0]["peer"].rsplit(":", 1)[1])
    b_client = int(b.events("conn_close")[0]["peer"].rsplit(":", 1)[1])
    for gw in (a, m, b):
        gw.stop()
    echo_host, echo_port = echo.addr.rsplit(":", 1)

    for code in ("110124", "110125"):  # attach, detach
        # A, wrap: the local client by address -> site B's gateway (M) by certificate
        (rec,) = records(tmp_path, "site-a", code)
        p = parties(rec)
        assert set(p) == {SOURCE, DEST, APP}, p
        check_by_address(p[SOURCE], "127.0.0.1", client_port, "true")
        check_by_cert(p[DEST], "CN=site-b.zonegate.test", "DNS:site-b.zonegate.test", "127.0.0.1",
                      "false")
        assert "OU=rsa" in p[DEST]["UserID"], p  # M's certificate, not A's own
        check_gateway(p[APP], "site-a", "out")
        d = details(rec)
        assert d["peer_port"] == str(client_port) and d["upstream_port"] == str(m_port), d

        # M, bridge: A's client certificate -> B's server certificate
        (rec,) = records(tmp_path, "hub", code)
        p = parties(rec)
        assert set(p) == {SOURCE, DEST, APP}, p
        check_by_cert(p[SOURCE], "CN=site-a.zonegate.test", "DNS:site-a.zonegate.test",
                      "127.0.0.1", "true")
        assert "OU=ec" in p[SOURCE]["UserID"], p
        check_by_cert(p[DEST], "CN=site-b.zonegate.test", "DNS:site-b.zonegate.test",
                      "127.0.0.1", "false")
        assert "OU=ec" in p[DEST]["UserID"], p  # B presents the EC site-b leaf
        check_gateway(p[APP], "hub", "hop")
        d = details(rec)
        assert d["peer_port"] == str(m_client) and d["upstream_port"] == str(b_port), d

        # B, unwrap: M's client certificate -> the local service by address
        (rec,) = records(tmp_path, "site-b", code)
        p = parties(rec)
        assert set(p) == {SOURCE, DEST, APP}, p
        check_by_cert(p[SOURCE], "CN=site-b.zonegate.test", "DNS:site-b.zonegate.test",
                      "127.0.0.1", "true")
        assert "OU=rsa" in p[SOURCE]["UserID"], p
        check_by_address(p[DEST], echo_host, int(echo_port), "false")
        check_gateway(p[APP], "site-b", "in")
        assert details(rec)["peer_port"] == str(b_client)


def empty_subject_client(pki, tmp_path):
    """A client certificate with an empty subject and a critical SAN (RFC 5280
    4.1.2.6), signed by the test intermediate."""
    key, csr, crt = tmp_path / "empty.key", tmp_path / "empty.csr", tmp_path / "empty.pem"
    ext = tmp_path / "empty.ext"
    ext.write_text("basicConstraints = critical, CA:FALSE\n"
                   "keyUsage = critical, digitalSignature\n"
                   "extendedKeyUsage = clientAuth\n"
                   "subjectKeyIdentifier = hash\n"
                   "authorityKeyIdentifier = keyid\n"
                   "subjectAltName = critical, DNS:empty.zonegate.test\n")
    run = lambda *a: subprocess.run(a, check=True, capture_output=True)  # noqa: E731
    run("openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(key))
    os.chmod(key, 0o600)
    run("openssl", "req", "-new", "-key", str(key), "-subj", "/", "-out", str(csr))
    run("openssl", "x509", "-req", "-in", str(csr), "-CA", pki.path("int-ec.pem"),
        "-CAkey", pki.path("int-ec.key"), "-CAcreateserial", "-days", "5", "-sha256",
        "-extfile", str(ext), "-out", str(crt))
    chain = tmp_path / "empty.chain.pem"
    chain.write_text(crt.read_text() + open(pki.path("int-ec.pem")).read())
    return str(chain), str(key)


def test_bridge_client_without_subject_keeps_its_identity(pki, gateway, port, echo_server,
                                                          tmp_path):
    """An empty client subject must not let the upstream's subject and SANs
    stand in for the client's identity (conn.c note_identity tested
    `!subject[0]`)."""
    echo = echo_server()
    b_port, m_port = port(), port()
    b = gateway(make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{b_port}",
                                         "connect": echo.addr}}, name="site-b"), name="site-b")
    m = gateway(audited(make_config(pki, {"hop": {"mode": "bridge", "listen": f"127.0.0.1:{m_port}",
                                                  "connect": f"127.0.0.1:{b_port}",
                                                  "server_name": "site-b.zonegate.test"}},
                                    name="hub", leaf="site-b", alg="rsa"), tmp_path, "hub"),
                name="hub")
    cert, key = empty_subject_client(pki, tmp_path)
    ctx = util.tls_context(pki, cert=cert, key=key)
    with util.tls_connect(ctx, "127.0.0.1", m_port) as s:
        s.sendall(b"ping\n")
        assert util.recv_exactly(s, 5) == b"ping\n"
    close = m.wait_for_event("conn_close", route="hop")[0]
    assert "site-b" not in close["subject"] and "site-b" not in close["san"], close
    assert close["san"] == "DNS:empty.zonegate.test", close
    m.stop()
    b.stop()
    for code in ("110124", "110125"):
        (rec,) = records(tmp_path, "hub", code)
        p = parties(rec)
        src, dst = p[SOURCE], p[DEST]
        assert "site-b" not in src["UserID"] and src.get("UserName") == "DNS:empty.zonegate.test", p
        assert src["NetworkAccessPointID"] == "127.0.0.1", p
        assert "CN=site-b.zonegate.test" in dst["UserID"], p
        assert "DNS:site-b.zonegate.test" in dst["UserName"], p
