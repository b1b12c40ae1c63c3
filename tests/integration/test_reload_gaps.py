"""Reload gaps (issue 10 item 9), each against a real `zonegate run`:

- a directory change whose reload failed for an unrelated reason (a bad
  line in the configuration) is retried at the next poll, not forgotten
  because its file stamp was recorded before the reload;
- CRLs and trust anchors are read once per snapshot, not once per route
  (two reads of one file can give two routes of one snapshot different
  CRLs): the stale-CRL warning, written once per read, shows it;
- a ticket-resumed live connection is re-checked on its whole chain: a CRL
  revoking the intermediate closes it;
- a handshake that straddles a reload is judged again by every rule in
  force, not only by the directory and the CRLs.
"""
import os
import shutil
import subprocess

import util
from conftest import make_config
from test_directory import Operator, directory_doc, standard_participants


def _operator(zonegate_bin, tmp_path):
    d = tmp_path / "op"
    d.mkdir()
    op = Operator(zonegate_bin, d)
    op.publish(directory_doc(1, standard_participants()))
    return op


def test_directory_change_retried_after_an_unrelated_reload_failure(pki, port, gateway,
                                                                    zonegate_bin, tmp_path):
    op = _operator(zonegate_bin, tmp_path)
    cfg = make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{port()}",
                                   "connect": "127.0.0.1:11112", "peers": "site-a, site-b"}},
                      name="gw")
    cfg["directory"] = {"file": str(op.json), "public_key": op.pub, "reload_interval": "300ms"}
    gw = gateway(cfg, name="gw")
    good = gw.conf_path.read_text()
    mark = gw.mark()
    # an operator's half-finished edit, and meanwhile a new directory
    gw.conf_path.write_text(good + "\n[route half-written]\ncolour = blue\n")
    op.publish(directory_doc(2, standard_participants()))
    gw.wait_for_event("directory_changed", since=mark)
    gw.wait_for_event("reload", result="refused", since=mark)
    gw.conf_path.write_text(good)  # edit finished; no SIGHUP
    ok = gw.wait_for_event("reload", result="ok", since=mark, timeout=10)
    assert ok, gw.log()[mark:]


def test_crls_and_anchors_read_once_per_snapshot(tmp_path_factory, gateway, port):
    """Every read of the CRL files names a stale CRL once (event=crl_stale
    at load). Three routes, four TLS contexts: one read per snapshot, at
    start and again at a reload, so every route of a snapshot judges by
    the same CRLs and anchors even when the files change during a load."""
    import policy_util
    ppki = policy_util.make_pki(tmp_path_factory.mktemp("policy-pki"))
    from conftest import gateway_section
    cfg = {"gateway": gateway_section("gw"),
           "tls": ppki.tls("ok-p256", crl_stale="warn")}
    cfg["route in"] = {"mode": "unwrap", "listen": f"127.0.0.1:{port()}",
                       "connect": "127.0.0.1:9"}
    cfg["route hop"] = {"mode": "bridge", "listen": f"127.0.0.1:{port()}",
                        "connect": "127.0.0.1:9", "server_name": "server.zonegate.test"}
    cfg["route out"] = {"mode": "wrap", "listen": f"127.0.0.1:{port()}",
                        "connect": "127.0.0.1:9", "server_name": "server.zonegate.test",
                        "allow_from": "127.0.0.0/8"}
    gw = gateway(cfg, name="gw")
    at_load = [e for e in gw.events("crl_stale") if e.get("msg") == "CRL past its nextUpdate"]
    stale = {e["issuer"] for e in at_load}
    assert stale and len(at_load) == len(stale), at_load  # once per stale CRL, not per route
    mark = gw.reload()
    gw.wait_for_event("reload", result="ok", since=mark)
    again = [e for e in gw.events("crl_stale", since=mark) if e.get("msg") == "CRL past its nextUpdate"]
    assert len(again) == len(stale), again


def _crl_revoking(pki, tmp_path, victim, ca):
    """A CRL of CA `ca` (e.g. root-ec) listing certificate `victim`."""
    run = lambda *a: subprocess.run(a, check=True, capture_output=True, text=True)  # noqa: E731
    d = tmp_path / f"ca-{ca}"
    d.mkdir()
    serial = run("openssl", "x509", "-in", pki.path(victim), "-noout", "-serial").stdout
    subject = run("openssl", "x509", "-in", pki.path(victim), "-noout", "-subject",
                  "-nameopt", "compat").stdout
    serial = serial.strip().split("=", 1)[1]
    subject = subject.strip().split("=", 1)[1].strip()
    (d / "index.txt").write_text(f"R\t491231235959Z\t240101000000Z\t{serial}\tunknown\t{subject}\n")
    (d / "crlnumber").write_text("1000\n")
    cnf = d / "ca.cnf"
    cnf.write_text(f"[ca]\ndefault_ca = d\n[d]\ndatabase = {d}/index.txt\n"
                   f"crlnumber = {d}/crlnumber\ndefault_md = sha256\ndefault_crl_days = 30\n"
                   "[crl_ext]\nauthorityKeyIdentifier = keyid:always\n")
    out = d / "revoking.crl.pem"
    run("openssl", "ca", "-gencrl", "-config", str(cnf), "-cert", pki.path(f"{ca}.pem"),
        "-keyfile", pki.path(f"{ca}.key"), "-crlexts", "crl_ext", "-out", str(out))
    return out


def test_ticket_resumed_connection_rechecked_on_its_whole_chain(pki, gateway, port, echo_server,
                                                                tmp_path):
    """session_tickets = on: a connection resumed from a ticket carries no
    chain, yet a CRL revoking its intermediate must close it after reload
    as it closes a fully verified one."""
    echo = echo_server()
    p = port()
    crl = tmp_path / "crl.pem"
    shutil.copy(pki.path("crl-empty.pem"), crl)
    # the gateway's own chain is RSA: only the clients' EC intermediate is revoked
    cfg = make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{p}",
                                   "connect": echo.addr}}, name="site-b", alg="rsa",
                      tls={"session_tickets": "on", "session_cache": "off", "crl": str(crl)},
                      gateway={"workers": 1})
    cfg["directory"] = {"grace_period": "1s"}
    gw = gateway(cfg, name="site-b")
    sess = tmp_path / "sess.pem"
    first = util.SClient("127.0.0.1", p, ["-tls1_3", "-sess_out", str(sess)], pki=pki,
                         cert=pki.cert("client"), key=pki.key("client"), chain=pki.intermediate())
    first.send(b"ticket\n")
    assert first.read_until(b"ticket\n", timeout=15)
    first.finish()
    live = util.SClient("127.0.0.1", p, ["-tls1_3", "-sess_in", str(sess)], pki=pki,
                        cert=pki.cert("client"), key=pki.key("client"), chain=pki.intermediate())
    try:
        live.send(b"resumed\n")
        assert live.read_until(b"resumed\n", timeout=15)
        revoking = _crl_revoking(pki, tmp_path, "int-ec.pem", "root-ec")
        crl.write_text(revoking.read_text() + "".join(
            open(pki.path(f)).read() for f in ("int-ec.crl.pem", "root-rsa.crl.pem",
                                               "int-rsa.crl.pem")))
        mark = gw.reload()
        gw.wait_for_event("reload", since=mark, result="ok")
        ev = gw.wait_for_event("conn_close", since=mark, route="in", reason="cert_revoked",
                               timeout=10)[0]
        assert ev["resumed"] == "1", ev
    finally:
        live.finish()


class HoldProxy:
    """A TCP proxy to 127.0.0.1:`target` that passes the client's bytes at
    once but holds the server's until release(): a TLS handshake through it
    waits for its ServerHello for as long as the test wants."""

    def __init__(self, target):
        import socket
        import threading
        self.target = target
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(4)
        self.port = self.ls.getsockname()[1]
        self.go = threading.Event()
        self.accepted = threading.Event()
        self.socks = []
        threading.Thread(target=self._run, daemon=True).start()

    def _pipe(self, src, dst, gate=None):
        import socket
        if gate is not None:
            gate.wait(60)
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    dst.shutdown(socket.SHUT_WR)
                    return
                dst.sendall(data)
        except OSError:
            return

    def _run(self):
        import socket
        import threading
        c, _ = self.ls.accept()
        u = socket.create_connection(("127.0.0.1", self.target))
        self.socks += [c, u]
        self.accepted.set()
        threading.Thread(target=self._pipe, args=(c, u), daemon=True).start()
        threading.Thread(target=self._pipe, args=(u, c, self.go), daemon=True).start()

    def release(self):
        self.go.set()

    def close(self):
        self.go.set()
        for s in self.socks + [self.ls]:
            s.close()


def test_handshake_straddling_a_reload_is_judged_by_the_new_trust_anchors(pki, gateway, port,
                                                                         tmp_path):
    """A wrap route's upstream handshake is held open across a reload that
    drops the upstream's root from trust_anchors: the connection must not
    relay under the anchors the reload removed (it used to be re-judged for
    the directory and the CRLs only)."""
    up_port = port()
    server = subprocess.Popen(
        ["openssl", "s_server", "-accept", str(up_port), "-cert", pki.cert("site-b"),
         "-key", pki.key("site-b"), "-cert_chain", pki.intermediate(), "-quiet"],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proxy = None
    try:
        util.wait_port("127.0.0.1", up_port)
        proxy = HoldProxy(up_port)
        a_port = port()
        # site A's own chain is RSA, so dropping the EC root keeps A valid
        cfg = make_config(pki, {"out": {"mode": "wrap", "listen": f"127.0.0.1:{a_port}",
                                        "connect": f"127.0.0.1:{proxy.port}",
                                        "server_name": "site-b.zonegate.test",
                                        "allow_from": "127.0.0.0/8"}},
                          name="site-a", leaf="site-a", alg="rsa", gateway={"workers": 1})
        gw = gateway(cfg, name="site-a")
        s = util.connect("127.0.0.1", a_port)
        s.sendall(b"straddle\n")
        assert proxy.accepted.wait(10), "the gateway never connected upstream"
        cfg["tls"]["trust_anchors"] = pki.path("root-rsa.pem")
        mark = gw.reload(cfg)
        gw.wait_for_event("reload", since=mark, result="ok")
        proxy.release()
        ev = gw.wait_for_event("refused", since=mark, route="out", timeout=10)[0]
        assert ev["reason"] == "tls_untrusted_chain", ev
        assert "reloaded during the handshake" in ev.get("detail", ""), ev
        assert not gw.events("conn_close", route="out")
        s.close()
    finally:
        if proxy:
            proxy.close()
        server.kill()
        server.wait()
