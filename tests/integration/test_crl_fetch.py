"""CRL fetching ([crl NAME], issue 15 item 4): a real HTTP server on
loopback serves the intermediate CA's CRL; CRLs are issued at test time by
the test PKI's own intermediate (python3-cryptography), numbered. A newer
CRL that revokes a client replaces the file and a reload takes it; garbage,
a CRL signed by another CA, a 404 and an older (replayed) CRL each keep the
CRL in force and say why."""
import datetime
import functools
import re
import http.server
import shutil
import threading

import pytest

import util
from conftest import make_config

x509 = pytest.importorskip("cryptography.x509")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402


def load_key(path):
    return serialization.load_pem_private_key(open(path, "rb").read(), None)


def load_cert(path):
    return x509.load_pem_x509_certificate(open(path, "rb").read())


def crl(issuer_cert, issuer_key, number, revoked=()):
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateRevocationListBuilder().issuer_name(issuer_cert.subject)
         .last_update(now - datetime.timedelta(minutes=1))
         .next_update(now + datetime.timedelta(days=1))
         .add_extension(x509.CRLNumber(number), critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                        critical=False))
    for serial in revoked:
        b = b.add_revoked_certificate(x509.RevokedCertificateBuilder().serial_number(serial)
                                      .revocation_date(now).build())
    return b.sign(issuer_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


class Server:
    """python's http.server on 127.0.0.1 serving one directory."""

    def __init__(self, root):
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
        handler.log_message = lambda *a: None
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_fetched_crl_revokes_and_bad_fetches_keep_the_old(pki, gateway, port, echo_server,
                                                          tmp_path):
    int_cert, int_key = load_cert(pki.intermediate()), load_key(pki.path("int-ec.key"))
    revoked_serial = load_cert(pki.cert("revoked")).serial_number
    www = tmp_path / "www"
    www.mkdir()
    state = tmp_path / "crl"
    state.mkdir()
    int_crl = state / "int-ec.crl.pem"
    int_crl.write_bytes(crl(int_cert, int_key, 1))
    root_crl = state / "root-ec.crl.pem"
    shutil.copyfile(pki.path("root-ec.crl.pem"), root_crl)
    served = www / "int.crl"
    served.write_bytes(crl(int_cert, int_key, 1))
    srv = Server(www)
    echo = echo_server()
    p = port()
    cfg = make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{p}",
                                   "connect": f"127.0.0.1:{echo.port}"}}, leaf="server",
                      tls={"crl": f"{root_crl}, {int_crl}"})
    cfg["crl int"] = {"url": f"http://127.0.0.1:{srv.port}/int.crl", "file": str(int_crl),
                      "interval": "1s", "timeout": "2s"}
    gw = gateway(cfg)

    def echo_as(leaf):
        ctx = util.tls_context(pki, cert=pki.cert(leaf), key=pki.key(leaf), chain=pki.chain(leaf))
        try:
            with util.tls_connect(ctx, "127.0.0.1", p, server_hostname="server.zonegate.test") as s:
                return util.echo_roundtrip(s, b"x\n", timeout=5) == b"x\n"
        except OSError:
            return False

    try:
        gw.wait_for_log(r"event=crl_fetch name=int result=unchanged", timeout=10)
        assert echo_as("revoked") and echo_as("client")

        mark = gw.mark()
        served.write_bytes(crl(int_cert, int_key, 3, [revoked_serial]))
        gw.wait_for_log(r"event=crl_fetch name=int result=replaced", since=mark, timeout=10)
        gw.wait_for_log(r"event=reload result=ok", since=mark, timeout=10)
        assert not echo_as("revoked")
        gw.wait_for_event("refused", route="in", reason="cert_revoked")
        assert echo_as("client")
        in_force = int_crl.read_bytes()

        other_cert, other_key = load_cert(pki.path("other-int.pem")), load_key(pki.path("other-int.key"))
        bad = [(b"<html>not a crl</html>", "not a CRL (PEM or DER)"),
               (crl(other_cert, other_key, 9), "not signed by a CA we trust"),
               (None, "HTTP status 404"),
               (crl(int_cert, int_key, 2), "older than the CRL in force")]
        for body, why in bad:
            mark = gw.mark()
            if body is None:
                served.unlink()
            else:
                served.write_bytes(body)
            gw.wait_for_log(r"event=crl_fetch name=int result=failed .*" + re.escape(why), since=mark,
                            timeout=15)
            assert int_crl.read_bytes() == in_force, f"{why}: the CRL in force was replaced"
            assert not echo_as("revoked"), f"{why}: the revocation was lost"
    finally:
        srv.stop()


def test_reload_does_not_wait_for_a_hung_crl_server(pki, gateway, port, echo_server, tmp_path):
    """A reload that changes [crl] restarts the fetch thread on the main
    thread. It waited for the transfer in progress, up to its `timeout`:
    with a server that accepts and never answers, a minute of a main thread
    that reloads nothing, reaps nothing and pings no watchdog. The transfer
    is now aborted; the reload is done in about a second."""
    import socket
    import time
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(8)
    state = tmp_path / "crl"
    state.mkdir()
    root_crl = state / "root-ec.crl.pem"
    shutil.copyfile(pki.path("root-ec.crl.pem"), root_crl)
    echo = echo_server()
    p = port()
    cfg = make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{p}",
                                   "connect": f"127.0.0.1:{echo.port}"}}, leaf="server",
                      tls={"crl": f"{root_crl}, {pki.path('int-ec.crl.pem')}"})
    cfg["crl root"] = {"url": f"http://127.0.0.1:{hung.getsockname()[1]}/root.crl",
                       "file": str(root_crl), "interval": "1s", "timeout": "60s"}
    gw = gateway(cfg)
    try:
        hung.settimeout(10)
        conn, _ = hung.accept()  # the fetch is in progress and will not end by itself
        cfg["crl root"]["interval"] = "2s"
        t0 = time.monotonic()
        mark = gw.reload(cfg)
        gw.wait_for_log(r"event=reload result=ok", since=mark, timeout=30)
        took = time.monotonic() - t0
        assert took < 5, f"the reload waited {took:.1f} s for the hung CRL server"
        ctx = util.tls_context(pki, cert=pki.cert("client"), key=pki.key("client"),
                               chain=pki.chain("client"))
        with util.tls_connect(ctx, "127.0.0.1", p, server_hostname="server.zonegate.test") as s:
            assert util.echo_roundtrip(s, b"x\n", timeout=5) == b"x\n"
        conn.close()
    finally:
        hung.close()
