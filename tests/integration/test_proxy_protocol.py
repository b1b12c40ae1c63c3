"""PROXY protocol v2 on unwrap routes (route key proxy_protocol = v2).

The system behind the gateway learns who really connected: a real consumer,
HAProxy with `accept-proxy`, answers an HTTP request with the source address,
authority (SNI) and unique id it parsed from our header; a raw listener
parses the same header independently of zonegate (the layout of
haproxy.org's proxy-protocol.txt, section 2.2) and checks every TLV.
"""
import shutil
import socket
import struct
import subprocess
import threading

import pytest

import util
from conftest import make_config

SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def parse_pp2(data):
    """(family, src, sport, dst, dport, {type: value}, ssl) from one header."""
    assert data[:12] == SIG, data[:16]
    assert data[12] == 0x21, "version 2, command PROXY"
    fam = data[13]
    length = struct.unpack(">H", data[14:16])[0]
    body = data[16:16 + length]
    assert len(body) == length
    if fam == 0x11:
        src, dst = socket.inet_ntop(socket.AF_INET, body[0:4]), socket.inet_ntop(socket.AF_INET, body[4:8])
        sport, dport = struct.unpack(">HH", body[8:12])
        rest = body[12:]
    else:
        assert fam == 0x21, hex(fam)
        src, dst = socket.inet_ntop(socket.AF_INET6, body[0:16]), socket.inet_ntop(socket.AF_INET6, body[16:32])
        sport, dport = struct.unpack(">HH", body[32:36])
        rest = body[36:]
    tlvs, ssl = {}, None
    while rest:
        t, n = rest[0], struct.unpack(">H", rest[1:3])[0]
        v, rest = rest[3:3 + n], rest[3 + n:]
        assert len(v) == n, "TLV overruns the header"
        if t == 0x20:
            client, verify = v[0], struct.unpack(">I", v[1:5])[0]
            sub, sv = {}, v[5:]
            while sv:
                st, sn = sv[0], struct.unpack(">H", sv[1:3])[0]
                sub[st], sv = sv[3:3 + sn].decode(), sv[3 + sn:]
            ssl = {"client": client, "verify": verify, **sub}
        else:
            tlvs[t] = v.decode()
    return fam, src, sport, dst, dport, tlvs, ssl, 16 + length


class HeaderCatcher:
    """A raw TCP listener that keeps the first bytes of each connection."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.got = []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            c.settimeout(5)
            data = b""
            try:
                while len(data) < 16 or len(data) < 16 + struct.unpack(">H", data[14:16])[0] + 5:
                    chunk = c.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            except OSError:
                pass
            self.got.append(data)
            c.close()


def _tls_client(pki, port, payload=b"hello"):
    """An mTLS client as site A, SNI site-b.zonegate.test; returns its local port."""
    cmd = ["openssl", "s_client", "-quiet", "-connect", f"127.0.0.1:{port}",
           "-servername", "site-b.zonegate.test", "-cert", pki.cert("site-a"), "-cert_chain", pki.intermediate(),
           "-key", pki.key("site-a"), "-CAfile", pki.roots, "-verify_return_error"]
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    p.stdin.write(payload)
    p.stdin.flush()
    return p


def test_header_fields_parsed_independently(pki, gateway, port):
    catcher = HeaderCatcher()
    p = port()
    gw = gateway(make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{p}",
                                          "connect": f"127.0.0.1:{catcher.port}",
                                          "proxy_protocol": "v2"}}, name="site-b"), name="site-b")
    client = _tls_client(pki, p)
    util.wait_until(lambda: catcher.got, 10, what="the upstream to receive the header")
    client.kill()
    client.wait()
    fam, src, sport, dst, dport, tlvs, ssl, hlen = parse_pp2(catcher.got[0])
    assert (fam, src, dst, dport) == (0x11, "127.0.0.1", "127.0.0.1", p)
    assert sport > 0
    assert catcher.got[0][hlen:] == b"hello", "the client's bytes follow the header, unchanged"
    assert tlvs[0x02] == "site-b.zonegate.test"             # authority: the SNI
    assert tlvs[0x05].startswith("site-b/") and "." in tlvs[0x05]   # unique id, as in our log
    assert "CN=site-a.zonegate.test" in tlvs[0xE1]           # verified subject
    assert "DNS:site-a.zonegate.test" in tlvs[0xE2]          # its SANs
    assert 0xE0 not in tlvs, "no directory: no participant"
    assert ssl["client"] == 0x01 | 0x02 and ssl["verify"] == 0
    assert ssl[0x21] == "TLSv1.3" and ssl[0x22] == "site-a.zonegate.test"
    assert ssl[0x23].startswith("TLS_") and ssl[0x24] == "ecdsa-with-SHA256" and ssl[0x25] == "EC256"
    ev = gw.wait_for_event("conn_close", route="in")[0]
    assert tlvs[0x05].endswith("/" + ev["id"])


@pytest.mark.skipif(not shutil.which("haproxy"), reason="haproxy (Debian package) not installed")
def test_haproxy_accept_proxy_reads_our_header(pki, gateway, port, tmp_path):
    hp = port()
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(f"""
global
    log stdout format raw local0
defaults
    mode http
    timeout connect 5s
    timeout client 10s
    timeout server 10s
frontend fe
    bind 127.0.0.1:{hp} accept-proxy
    http-request return status 200 content-type text/plain lf-string "src=%[src] sport=%[src_port] authority=%[fc_pp_authority] uid=%[fc_pp_unique_id]\\n"
""")
    haproxy = subprocess.Popen(["haproxy", "-db", "-f", str(cfg)], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
    try:
        util.wait_until(lambda: _can_connect(hp), 10, what="haproxy to listen")
        p = port()
        gateway(make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{p}",
                                         "connect": f"127.0.0.1:{hp}",
                                         "proxy_protocol": "v2"}}, name="site-b"), name="site-b")
        cp = subprocess.run(["curl", "-sS", "--fail", "--max-time", "20",
                             "--cert", pki.chain("site-a"), "--key", pki.key("site-a"),
                             "--cacert", pki.roots, "-w", " local_port=%{local_port}",
                             "--connect-to", f"site-b.zonegate.test:{p}:127.0.0.1:{p}",
                             f"https://site-b.zonegate.test:{p}/"], capture_output=True, text=True)
        assert cp.returncode == 0, cp.stderr
        fields = dict(kv.split("=", 1) for kv in cp.stdout.split())
        assert fields["src"] == "127.0.0.1"
        assert fields["sport"] == fields["local_port"], "HAProxy saw curl's own port"
        assert fields["authority"] == "site-b.zonegate.test"
        assert fields["uid"].startswith("site-b/")
    finally:
        haproxy.kill()
        haproxy.wait()


def _can_connect(p):
    try:
        socket.create_connection(("127.0.0.1", p), timeout=1).close()
        return True
    except OSError:
        return False


def test_wrap_route_refuses_proxy_protocol(zonegate_check, pki, port):
    cfg = make_config(pki, {"out": {"mode": "wrap", "listen": f"127.0.0.1:{port()}",
                                    "connect": "127.0.0.1:9", "server_name": "site-b.zonegate.test",
                                    "allow_from": "127.0.0.0/8", "proxy_protocol": "v2"}})
    cp = zonegate_check(cfg)
    assert cp.returncode == 3
    assert "proxy_protocol: only for unwrap and bridge routes" in cp.stdout + cp.stderr


def test_bad_value_is_named(zonegate_check, pki, port):
    cfg = make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{port()}",
                                   "connect": "127.0.0.1:9", "proxy_protocol": "v1"}})
    cp = zonegate_check(cfg)
    assert cp.returncode == 3
    assert "'v1' is not a PROXY protocol setting (expected off or v2)" in cp.stdout + cp.stderr
