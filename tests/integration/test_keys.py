"""The key process (issue 15 item 2): private keys live only in a separate
process; the gateway signs through it and never maps a key.

- real handshakes through wrap -> unwrap with ECDSA and RSA keys (TLS 1.3:
  ECDSA and RSA-PSS; TLS 1.2 with PKCS#1 v1.5 signature algorithms forced by
  s_client), with the key process on;
- the gateway process's memory (every readable mapping of /proc/PID/mem,
  the main thread's and the workers') holds no byte string of the private
  key, while with `key_process = off` the same scan finds it (so the scan can
  fail);
- the audit collector's TLS client key (a key of its own) is held by the
  key process too: records reach a real rsyslog-gnutls collector and the
  gateway's memory holds none of that key's bytes;
- SIGKILL of the key process: handshakes fail closed with
  reason=key_process_unavailable while the test-only hook holds the restart
  back, then the main thread restarts it and handshakes work again.
"""
import os
import re
import signal
import subprocess

import pytest

import util
from conftest import make_config


def backend_pair(pki, gateway, port, echo_server, alg):
    """client -> A (wrap) -> B (unwrap) -> echo, B without session resumption
    so that every connection is a full handshake B signs."""
    echo = echo_server()
    b_port, a_port = port(), port()
    b = gateway(make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{b_port}",
                                         "connect": f"127.0.0.1:{echo.port}"}},
                            name="site-b", leaf="site-b", alg=alg,
                            tls={"session_cache": "off"}), name="site-b")
    a = gateway(make_config(pki, {"out": {"mode": "wrap", "listen": f"127.0.0.1:{a_port}",
                                          "connect": f"127.0.0.1:{b_port}",
                                          "server_name": "site-b.zonegate.test",
                                          "allow_from": "127.0.0.0/8"}},
                            name="site-a", leaf="site-a", alg=alg), name="site-a")
    return a, b, a_port


def roundtrip(a_port):
    with util.connect("127.0.0.1", a_port) as s:
        return util.echo_roundtrip(s, b"key process\n")


def key_pid(gw):
    """The pid of the gateway's newest key process, from its log."""
    pids = re.findall(r"event=key_process_(?:started|restart) (?:result=ok )?pid=(\d+)", gw.log())
    assert pids, "no key_process_started line"
    return int(pids[-1])


@pytest.mark.parametrize("alg", ["ec", "rsa"])
def test_wrap_unwrap_handshakes_sign_in_the_key_process(pki, gateway, port, echo_server, alg):
    a, b, a_port = backend_pair(pki, gateway, port, echo_server, alg)
    for gw in (a, b):
        gw.wait_for_event("key_process_started")
        pid = key_pid(gw)
        # a separate process, a child of the gateway, running our binary
        with open(f"/proc/{pid}/stat") as f:
            assert int(f.read().rsplit(")", 1)[1].split()[1]) == gw.proc.pid
        assert b"__key-process" in open(f"/proc/{pid}/cmdline", "rb").read()
    for _ in range(3):
        assert roundtrip(a_port) == b"key process\n"
    b.wait_for_event("conn_close", count=3, resumed="0")


def test_rsa_tls12_pkcs1_signature_through_the_key_process(pki, gateway, port, echo_server):
    """TLS 1.2 with only PKCS#1 v1.5 signature algorithms offered: the key
    process signs with PKCS#1 padding (TLS 1.3 would have used PSS)."""
    echo = echo_server()
    b_port = port()
    b = gateway(make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{b_port}",
                                         "connect": f"127.0.0.1:{echo.port}"}},
                            name="site-b", leaf="site-b", alg="rsa",
                            tls={"profile": "bcp195"}))
    rc, out, err = util.s_client_once(
        "127.0.0.1", b_port, pki=pki, cert=pki.cert("site-a", "rsa"), key=pki.key("site-a", "rsa"),
        chain=pki.intermediate("rsa"),
        args=("-tls1_2", "-sigalgs", "RSA+SHA256:RSA+SHA384", "-client_sigalgs", "RSA+SHA256"),
        data=b"")
    text = (out + err).decode(errors="replace")
    assert rc == 0 and "Verify return code: 0 (ok)" in text, text
    assert re.search(r"Peer signature type: RSA\b", text), text  # not RSA-PSS
    assert "Protocol  : TLSv1.2" in text, text


def private_byte_strings(key_path):
    """The private scalar (EC) or private exponent d (RSA) as big- and
    little-endian byte strings (OpenSSL's BIGNUM keeps little-endian limbs),
    plus the PEM file's first base64 body line."""
    text = subprocess.run(["openssl", "pkey", "-in", key_path, "-text", "-noout"], check=True,
                          capture_output=True, text=True).stdout
    m = re.search(r"^(?:priv|privateExponent):\s*\n((?:\s+[0-9a-f:]+\n)+)", text, re.M)
    assert m, text
    raw = bytes.fromhex(re.sub(r"[\s:]", "", m.group(1)))
    raw = raw.lstrip(b"\0")
    assert len(raw) >= 30
    pem = open(key_path).read().splitlines()
    return [raw, raw[::-1], pem[1].encode()]


def memory_holds(pid, needles):
    """Which of `needles` appear in any readable mapping of process `pid`."""
    found = set()
    chunk_max = 16 << 20
    longest = max(len(n) for n in needles)
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            addr, perms, *rest = line.split()
            if perms[0] != "r" or (rest and rest[-1] in ("[vvar]", "[vsyscall]")):
                continue
            lo, hi = (int(x, 16) for x in addr.split("-"))
            if hi - lo > (4 << 30):
                continue  # the sanitizer's reserved shadow, not data
            at = lo
            while at < hi:
                try:
                    mem.seek(at)
                    chunk = mem.read(min(chunk_max + longest, hi - at))
                except (OSError, ValueError, OverflowError):
                    break
                for i, n in enumerate(needles):
                    if n in chunk:
                        found.add(i)
                at += chunk_max
    return found


def test_audit_client_key_is_held_by_the_key_process(pki, gateway, port, echo_server, tmp_path):
    """The audit trail's syslog TLS client key was read by the gateway
    itself: the one private key its memory still held with the key process
    on. It signs through the key process now."""
    import audit_util as au
    ok, why = au.rsyslog_probe(tmp_path / "probe", pki, port())
    if not ok:
        pytest.skip(why)
    collector = au.Rsyslog(tmp_path / "rsyslog", pki, port(), permitted=("site-a.zonegate.test",))
    collector.start()
    echo = echo_server()
    try:
        b_port = port()
        cfg = make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{b_port}",
                                       "connect": f"127.0.0.1:{echo.port}"}},
                          name="site-b", leaf="site-b", tls={"key_process": "on"})
        cfg["audit"] = {"syslog_target": f"127.0.0.1:{collector.port}",
                        "syslog_server_name": "localhost",
                        "syslog_certificate": pki.chain("site-a"),
                        "syslog_key": pki.key("site-a"),
                        "spool_dir": str(tmp_path / "spool"), "io_timeout": "2s"}
        b = gateway(cfg, name="site-b")
        ctx = util.tls_context(pki, cert=pki.cert("site-a"), key=pki.key("site-a"),
                               chain=pki.chain("site-a"))
        with util.tls_connect(ctx, "127.0.0.1", b_port) as s:
            assert util.echo_roundtrip(s, b"x\n") == b"x\n"
        util.wait_until(lambda: len(collector.records()) >= 3, 30,
                        what="audit records at the collector (signed through the key process)")
        found = memory_holds(b.proc.pid, private_byte_strings(pki.key("site-a")))
        assert not found, f"audit key bytes {sorted(found)} in the gateway's memory"
    finally:
        collector.kill()


@pytest.mark.parametrize("alg", ["ec", "rsa"])
@pytest.mark.parametrize("key_process", ["on", "off"])
def test_gateway_memory_holds_no_private_key(pki, gateway, port, echo_server, alg, key_process):
    echo = echo_server()
    b_port = port()
    b = gateway(make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{b_port}",
                                         "connect": f"127.0.0.1:{echo.port}"}},
                            name="site-b", leaf="site-b", alg=alg,
                            tls={"key_process": key_process}))
    # a handshake first, so every worker has signed
    for _ in range(4):
        ctx = util.tls_context(pki, cert=pki.cert("site-a", alg), key=pki.key("site-a", alg),
                               chain=pki.chain("site-a", alg))
        with util.tls_connect(ctx, "127.0.0.1", b_port) as s:
            assert util.echo_roundtrip(s, b"x\n") == b"x\n"
    needles = private_byte_strings(pki.key("site-b", alg))
    found = memory_holds(b.proc.pid, needles)
    if key_process == "on":
        assert not found, f"private key bytes {sorted(found)} in the gateway's memory"
        assert "key_process_started" in b.log()
    else:
        # the control: the scan does find a key the gateway loaded itself
        assert found, "the scan found no key even in a gateway that loaded it"


def test_key_process_killed_fails_closed_then_restarts(pki, gateway, port, echo_server, tmp_path,
                                                       monkeypatch):
    hold = tmp_path / "keys-hold"
    hold.write_text("")
    monkeypatch.setenv("ZG_TEST_KEYS_HOLD", str(hold))
    a, b, a_port = backend_pair(pki, gateway, port, echo_server, "ec")
    assert roundtrip(a_port) == b"key process\n"
    old = key_pid(b)
    mark = b.mark()
    os.kill(old, signal.SIGKILL)
    b.wait_for_event("key_process_lost", since=mark, pid=str(old))
    # restart held back (test hook): B cannot sign, the handshake fails closed
    with util.connect("127.0.0.1", a_port) as s:
        s.sendall(b"refused\n")
        assert util.closed_by_peer(s)
    b.wait_for_reason("key_process_unavailable", since=mark)
    assert b.running()
    hold.unlink()
    b.wait_for_log(r"event=key_process_restart result=ok", since=mark)
    assert key_pid(b) != old
    assert roundtrip(a_port) == b"key process\n"


def test_reload_restarts_the_key_process_and_refuses_a_mismatched_key(pki, gateway, port,
                                                                      echo_server):
    """A reload replaces the key process by one that re-reads the key file;
    a key that does not match the certificate is refused and the old key
    process keeps signing."""
    a, b, a_port = backend_pair(pki, gateway, port, echo_server, "ec")
    old = key_pid(b)
    mark = b.reload()
    b.wait_for_log(r"event=reload result=ok", since=mark)
    b.wait_for_log(r"event=key_process_started pid=\d+ keys=1 cause=reload", since=mark)
    new = key_pid(b)
    assert new != old
    util.wait_until(lambda: not os.path.exists(f"/proc/{old}"), 10, what="old key process gone")
    assert roundtrip(a_port) == b"key process\n"
    # the site-a key with the site-b certificate: refused, old process serves on
    conf_text = b.conf_path.read_text().replace(pki.key("site-b", "ec"), pki.key("site-a", "ec"))
    b.conf_path.write_text(conf_text)
    mark = b.reload()
    b.wait_for_log(r"event=reload result=refused", since=mark)
    assert "does not match the certificate" in b.log()[mark:]
    assert roundtrip(a_port) == b"key process\n"

