"""OCSP (issue 15, item 4): checking peers per trust store (ocsp = soft |
hard in [tls] or a [trust NAME] a route side names) and stapling the status
of our certificate ([tls] or an [identity NAME]).

The responder is OpenSSL's own (`openssl ocsp -index index.txt -rsigner
... -CA ...`), answering from the database `openssl ca` kept while issuing
the test PKI (tests/pki/mkpki-ocsp.sh): good, revoked and unknown leaves.
`openssl ocsp -port` listens on every interface, so the test serves HTTP on
127.0.0.1 itself and hands each request to `openssl ocsp -reqin -respout`.
Stapling is read back with `openssl s_client -status`."""
import http.server
import socket
import subprocess
import threading
from pathlib import Path

import pytest

import util
from conftest import gateway_section

HANDSHAKE = "5s"


class Responder:
    """OpenSSL's OCSP responder behind a loopback HTTP server."""

    def __init__(self, pki_dir, port):
        self.dir = Path(pki_dir)
        self.port = port
        self.requests = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.requests += 1
                req = outer.dir / f"req-{threading.get_ident()}.der"
                resp = outer.dir / f"resp-{threading.get_ident()}.der"
                req.write_bytes(body)
                subprocess.run(["openssl", "ocsp", "-index", str(outer.dir / "index.txt"),
                                "-rsigner", str(outer.dir / "responder.pem"),
                                "-rkey", str(outer.dir / "responder.key"),
                                "-CA", str(outer.dir / "int.pem"), "-ndays", "1",
                                "-reqin", str(req), "-respout", str(resp)],
                               check=True, capture_output=True, timeout=30)
                data = resp.read_bytes()
                self.send_response(200)
                self.send_header("Content-Type", "application/ocsp-response")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def ocsp_pki(tmp_path, port):
    rport = port()
    d = tmp_path / "ocsp-pki"
    subprocess.run(["bash", str(Path(__file__).resolve().parents[2] / "tests" / "pki" /
                                "mkpki-ocsp.sh"), str(d), f"http://127.0.0.1:{rport}"],
                   check=True, timeout=120, capture_output=True)
    return d, rport


@pytest.fixture
def responder(ocsp_pki):
    d, rport = ocsp_pki
    r = Responder(d, rport)
    yield r
    r.stop()


def tls_section(d, **over):
    sec = {"profile": "cryptrec-high", "certificate": str(d / "server.chain.pem"),
           "key": str(d / "server.key"), "trust_anchors": str(d / "root.pem")}
    sec.update(over)
    return sec


def config(d, routes, tls=None, audit=None, name="gw", sections=None):
    cfg = {"gateway": gateway_section(name, handshake_timeout=HANDSHAKE),
           "tls": tls_section(d, **(tls or {}))}
    if audit:
        cfg["audit"] = audit
    cfg.update(sections or {})
    for rname, r in routes.items():
        cfg[f"route {rname}"] = r
    return cfg


def client_ctx(d, leaf):
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(str(d / "root.pem"))
    ctx.load_cert_chain(str(d / f"{leaf}.chain.pem"), str(d / f"{leaf}.key"))
    return ctx


def relay_as(d, leaf, p, data=b"ocsp\n"):
    """Echo @data through route port @p as @leaf; the bytes back, or None
    when the gateway closed the connection instead."""
    try:
        with util.tls_connect(client_ctx(d, leaf), "127.0.0.1", p) as s:
            s.sendall(data)
            got = b""
            while len(got) < len(data):
                chunk = s.recv(len(data) - len(got))
                if not chunk:
                    return None
                got += chunk
            return got
    except (ConnectionError, OSError):
        return None


def unwrap(p, echo, **over):
    r = {"mode": "unwrap", "listen": f"127.0.0.1:{p}", "connect": f"127.0.0.1:{echo.port}"}
    r.update(over)
    return r


def test_good_revoked_and_unknown_clients_under_hard_fail(ocsp_pki, responder, gateway, port,
                                                          echo_server):
    d, _ = ocsp_pki
    echo = echo_server()
    p = port()
    gw = gateway(config(d, {"in": unwrap(p, echo)}, tls={"ocsp": "hard"}))
    assert relay_as(d, "good", p) == b"ocsp\n"
    asked = responder.requests
    assert asked == 1
    # the answer is cached until its nextUpdate: no second query
    assert relay_as(d, "good", p) == b"ocsp\n"
    assert responder.requests == asked
    assert relay_as(d, "revoked", p) is None
    gw.wait_for_reason("cert_ocsp_revoked")
    assert relay_as(d, "unknown", p) is None
    gw.wait_for_reason("cert_ocsp_unknown")
    assert "keyCompromise" in gw.log()
    assert gw.stop() == 0


def test_ocsp_off_asks_nobody(ocsp_pki, responder, gateway, port, echo_server):
    """The control: the same revoked client passes a route without ocsp."""
    d, _ = ocsp_pki
    echo = echo_server()
    p = port()
    gw = gateway(config(d, {"in": unwrap(p, echo)}))
    assert relay_as(d, "revoked", p) == b"ocsp\n"
    assert responder.requests == 0
    assert gw.stop() == 0


def test_dead_responder_hard_refuses_soft_admits_logged_and_audited(ocsp_pki, gateway, port,
                                                                    echo_server, tmp_path):
    d, _ = ocsp_pki
    echo = echo_server()
    dead = port()  # nothing listens there: connection refused
    hard, soft = port(), port()
    audit_file = tmp_path / "audit.log"
    # [tls]'s store checks hard, the store "lenient" (same anchors) soft
    gw = gateway(config(d, {"hard": unwrap(hard, echo),
                            "soft": unwrap(soft, echo, listen_trust="lenient")},
                        tls={"ocsp": "hard", "ocsp_responder": f"http://127.0.0.1:{dead}/"},
                        sections={"trust lenient": {
                            "trust_anchors": str(d / "root.pem"), "ocsp": "soft",
                            "ocsp_responder": f"http://127.0.0.1:{dead}/"}},
                        audit={"file": str(audit_file), "spool_dir": str(tmp_path / "spool")}))
    assert relay_as(d, "good", hard) is None
    gw.wait_for_reason("cert_ocsp_unavailable", route="hard")
    assert relay_as(d, "good", soft) == b"ocsp\n"
    gw.wait_for_log(r"event=ocsp_soft_fail route=soft .*reason=cert_ocsp_unavailable")
    gw.wait_for_log(r"event=conn_close route=soft .*ocsp=soft_fail")
    util.wait_until(lambda: audit_file.exists() and
                    "admitted without an OCSP answer (ocsp = soft)" in audit_file.read_text(),
                    what="the soft-fail admission in the audit trail")
    # soft fail still refuses what the responder does say: revoked
    assert gw.stop() == 0


def s_client_status(p, d):
    cp = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{p}", "-status",
                         "-servername", "localhost", "-CAfile", str(d / "root.pem"),
                         "-cert", str(d / "good.pem"), "-cert_chain", str(d / "int.pem"),
                         "-key", str(d / "good.key")],
                        input=b"", capture_output=True, timeout=30)
    return cp.stdout.decode(errors="replace")


def test_staple_fetched_from_the_aia_responder_and_seen_by_s_client(ocsp_pki, responder, gateway,
                                                                    port, echo_server, tmp_path):
    d, _ = ocsp_pki
    echo = echo_server()
    p = port()
    staple = tmp_path / "staple.der"
    # the identity the route presents, not [tls]'s, carries the staple settings
    gw = gateway(config(d, {"in": unwrap(p, echo, listen_identity="site")},
                        sections={"identity site": {
                            "certificate": str(d / "server.chain.pem"),
                            "key": str(d / "server.key"),
                            "ocsp_staple_url": "aia", "ocsp_staple_file": str(staple)}}))
    gw.wait_for_log(r"event=ocsp_staple_fetch result=replaced")
    gw.wait_for_log(r"event=reload result=ok")
    out = s_client_status(p, d)
    assert "OCSP Response Status: successful" in out, out
    assert "Cert Status: good" in out, out
    assert staple.stat().st_size > 0
    assert gw.stop() == 0


def test_bad_or_stale_staple_is_not_stapled(ocsp_pki, responder, gateway, port, echo_server,
                                            tmp_path):
    d, _ = ocsp_pki
    echo = echo_server()
    p = port()
    staple = tmp_path / "staple.der"
    # a real answer, but about another certificate (the client's, not ours)
    subprocess.run(["openssl", "ocsp", "-issuer", str(d / "int.pem"), "-cert", str(d / "good.pem"),
                    "-url", f"http://127.0.0.1:{responder.port}/", "-respout", str(staple),
                    "-noverify"], check=True, capture_output=True, timeout=30)
    gw = gateway(config(d, {"in": unwrap(p, echo)}, tls={"ocsp_staple_file": str(staple)}))
    gw.wait_for_log(r"event=ocsp_staple result=refused .*reason=cert_ocsp_unavailable "
                    r"detail=\"the response is not about this certificate\"")
    out = s_client_status(p, d)
    assert "OCSP response: no response sent" in out, out
    # the right answer in the file, a reload: stapled
    subprocess.run(["openssl", "ocsp", "-issuer", str(d / "int.pem"),
                    "-cert", str(d / "server.pem"),
                    "-url", f"http://127.0.0.1:{responder.port}/", "-respout", str(staple),
                    "-noverify"], check=True, capture_output=True, timeout=30)
    mark = gw.reload()
    gw.wait_for_log(r"event=reload result=ok", since=mark)
    out = s_client_status(p, d)
    assert "Cert Status: good" in out, out
    assert gw.stop() == 0


@pytest.mark.parametrize("stapled", [True, False])
def test_wrap_route_uses_the_upstreams_staple(ocsp_pki, responder, gateway, port, echo_server,
                                              tmp_path, stapled):
    """An upstream gateway staples; the wrap route in front of it checks
    with ocsp = hard and a responder that does not answer: the staple alone
    decides. Without the staple the same route refuses."""
    d, _ = ocsp_pki
    echo = echo_server()
    b_port, a_port = port(), port()
    staple = tmp_path / "staple.der"
    subprocess.run(["openssl", "ocsp", "-issuer", str(d / "int.pem"),
                    "-cert", str(d / "server.pem"),
                    "-url", f"http://127.0.0.1:{responder.port}/", "-respout", str(staple),
                    "-noverify"], check=True, capture_output=True, timeout=30)
    responder.stop()
    b = gateway(config(d, {"in": unwrap(b_port, echo)},
                       tls={"ocsp_staple_file": str(staple)} if stapled else None, name="b"),
                name="b")
    dead = port()
    a = gateway(config(d, {"out": {"mode": "wrap", "listen": f"127.0.0.1:{a_port}",
                                   "connect": f"127.0.0.1:{b_port}", "server_name": "localhost",
                                   "allow_from": "127.0.0.0/8", "connect_trust": "upstreams"}},
                       sections={"trust upstreams": {
                           "trust_anchors": str(d / "root.pem"), "ocsp": "hard",
                           "ocsp_responder": f"http://127.0.0.1:{dead}/"}}, name="a"),
                name="a")
    with util.connect("127.0.0.1", a_port) as s:
        try:
            got = util.echo_roundtrip(s, b"stapled\n")
        except (ConnectionError, OSError, AssertionError, socket.timeout):
            got = None
    if stapled:
        assert got == b"stapled\n"
    else:
        assert got != b"stapled\n"
        a.wait_for_reason("cert_ocsp_unavailable")
    for g in (a, b):
        assert g.stop() == 0


def test_a_silent_responder_never_stalls_the_worker(ocsp_pki, gateway, port, echo_server):
    """A responder that accepts and never answers: the one worker keeps
    relaying other clients while a hard-fail client waits for the query's
    3 s bound, after which that client is refused (cert_ocsp_unavailable)."""
    d, _ = ocsp_pki
    echo = echo_server()
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # connects complete in the backlog; nothing is ever read
    hard, free = port(), port()
    cfg = config(d, {"hard": unwrap(hard, echo),
                     "free": unwrap(free, echo, listen_trust="free")},
                 tls={"ocsp": "hard",
                      "ocsp_responder": f"http://127.0.0.1:{silent.getsockname()[1]}/"},
                 sections={"trust free": {"trust_anchors": str(d / "root.pem")}})
    cfg["gateway"]["workers"] = 1
    gw = gateway(cfg)
    result = {}

    def waiting_client():
        result["hard"] = relay_as(d, "good", hard)

    t = threading.Thread(target=waiting_client)
    t.start()
    silent.settimeout(20)
    asked, _ = silent.accept()  # the query is in flight: the hard client is parked
    # the worker that parked it relays another client meanwhile
    assert relay_as(d, "good", free, b"meanwhile\n") == b"meanwhile\n"
    assert "hard" not in result, "the hard client was decided before the responder timed out"
    for i in range(3):
        assert relay_as(d, "good", free, b"again %d\n" % i) == b"again %d\n" % i
    t.join(30)
    asked.close()
    silent.close()
    assert result["hard"] is None
    gw.wait_for_reason("cert_ocsp_unavailable", route="hard")
    gw.wait_for_log(r"event=ocsp_query .*result=cert_ocsp_unavailable")
    assert gw.stop() == 0
