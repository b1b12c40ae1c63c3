"""The control socket and `zonegate ctl` (issue 13): status, conns, kill,
drain, reload in text and JSON; bad input on the socket gets clear errors
while the data path goes on; only root and the socket's group may connect.
"""
import json
import os
import socket
import subprocess
import tempfile
import threading
import time

import pytest

import util
from conftest import make_config, zg_env

PAYLOAD = b"relayed while the operator looks\n"


@pytest.fixture
def ctl_dir():
    # a directory others may traverse (pytest's tmp_path is 0700): the
    # socket's own mode, not the directory's, must be what keeps them out
    d = tempfile.mkdtemp(prefix="zg-ctl-")
    os.chmod(d, 0o755)
    yield d
    for f in os.listdir(d):
        os.unlink(os.path.join(d, f))
    os.rmdir(d)


@pytest.fixture
def client_ctx(pki):
    return util.tls_context(pki, pki.chain("client"), pki.key("client"))


def _config(pki, echo, ports, sock, group=None):
    routes = {f"in{i + 1}": {"mode": "unwrap", "listen": f"127.0.0.1:{p}", "connect": echo.addr}
              for i, p in enumerate(ports)}
    cfg = make_config(pki, routes, name="site-b")
    cfg["control"] = {"socket": sock, "group": group}
    return cfg


def ctl(binary, sock, *args, user=None, timeout=60):
    cmd = [binary, "ctl", "-s", sock, *args]
    if user:
        cmd = ["setpriv", *user, *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=zg_env())


def raw_request(sock, data, shut=True, timeout=15):
    """Send raw bytes to the control socket; return everything it answers."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(sock)
    if data:
        s.sendall(data)
    if shut:
        s.shutdown(socket.SHUT_WR)
    out = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
    s.close()
    return out.decode()


@pytest.fixture
def running(pki, gateway, port, echo_server, ctl_dir):
    echo = echo_server()
    p1, p2 = port(), port()
    sock = os.path.join(ctl_dir, "control.sock")
    gw = gateway(_config(pki, echo, [p1, p2], sock), name="site-b")
    gw.wait_for_log(r"event=ctl_listening")
    return gw, sock, p1, p2, echo


def test_status_text_and_json(running, zonegate_bin):
    gw, sock, p1, p2, _ = running
    st = os.stat(sock)
    assert oct(st.st_mode & 0o777) == "0o660"
    r = ctl(zonegate_bin, sock, "status")
    assert r.returncode == 0, r.stderr
    assert "serving: generation 1" in r.stdout and "in1" in r.stdout and "in2" in r.stdout
    r = ctl(zonegate_bin, sock, "--json", "status")
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    assert st["generation"] == 1 and st["workers"] == 2 and st["state"] == "serving"
    assert [x["name"] for x in st["routes"]] == ["in1", "in2"]
    assert gw.events("ctl_command", command="status", result="ok", uid="0", user="root")


def test_conns_kill_drain_and_the_data_path(running, zonegate_bin, client_ctx):
    gw, sock, p1, p2, _ = running
    a = util.tls_connect(client_ctx, "127.0.0.1", p1)
    b = util.tls_connect(client_ctx, "127.0.0.1", p2)
    assert util.echo_roundtrip(a, PAYLOAD) == PAYLOAD
    assert util.echo_roundtrip(b, PAYLOAD) == PAYLOAD
    r = ctl(zonegate_bin, sock, "--json", "conns")
    conns = json.loads(r.stdout)["connections"]
    assert sorted(c["route"] for c in conns) == ["in1", "in2"], r.stdout
    c1 = next(c for c in conns if c["route"] == "in1")
    assert c1["state"] == "relaying" and c1["bytes_in"] == len(PAYLOAD)
    assert "client" in c1["subject"] and c1["peer"].startswith("127.0.0.1:")
    r = ctl(zonegate_bin, sock, "conns", "--route", "in2")
    assert r.returncode == 0 and " in2 " in r.stdout and " in1 " not in r.stdout, r.stdout
    assert "1 connections" in r.stdout

    # kill: the one connection closes, with its reason; the other relays on
    r = ctl(zonegate_bin, sock, "kill", c1["id"])
    assert r.returncode == 0 and "closed" in r.stdout, r.stderr
    assert util.closed_by_peer(a, 10)
    ev = gw.wait_for_event("conn_close", reason="operator_closed")
    assert ev[0]["route"] == "in1"
    assert util.echo_roundtrip(b, PAYLOAD) == PAYLOAD
    r = ctl(zonegate_bin, sock, "kill", c1["id"])
    assert r.returncode == 1 and "no live connection" in r.stderr
    r = ctl(zonegate_bin, sock, "kill", "x.1")
    assert r.returncode == 1 and "bad connection id" in r.stderr

    # drain in2: new connections refused, the live one goes on, also after a reload
    r = ctl(zonegate_bin, sock, "drain", "in2")
    assert r.returncode == 0, r.stderr
    util.wait_until(lambda: _refused(p2), 10, 0.1, "in2 to stop accepting")
    assert util.echo_roundtrip(b, PAYLOAD) == PAYLOAD
    with util.tls_connect(client_ctx, "127.0.0.1", p1) as s:
        assert util.echo_roundtrip(s, PAYLOAD) == PAYLOAD
    r = ctl(zonegate_bin, sock, "reload")
    assert r.returncode == 0 and "reload ok: generation 2" in r.stdout, r.stdout + r.stderr
    assert _refused(p2), "a reload reopened a drained route"
    st = json.loads(ctl(zonegate_bin, sock, "--json", "status").stdout)
    assert {x["name"]: x["state"] for x in st["routes"]} == {"in1": "serving", "in2": "drained"}
    assert util.echo_roundtrip(b, PAYLOAD) == PAYLOAD
    r = ctl(zonegate_bin, sock, "drain", "nosuch")
    assert r.returncode == 1 and "no route 'nosuch'" in r.stderr
    b.close()


def _refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        return True
    return False


def test_reload_reports_every_error(running, zonegate_bin):
    gw, sock, p1, p2, _ = running
    good = gw.conf_path.read_text()
    gw.write_config(good.replace("workers = 2", "workers = lots").replace(
        "idle_timeout = 60s", "idle_timeout = forever"))
    r = ctl(zonegate_bin, sock, "reload")
    assert r.returncode == 1
    assert "reload refused, 2 errors; generation 1 keeps serving" in r.stderr, r.stderr
    assert "workers" in r.stderr and "idle_timeout" in r.stderr
    r = ctl(zonegate_bin, sock, "--json", "reload")
    err = json.loads(r.stderr)
    assert err["error"] == "reload refused" and err["error_count"] == 2 and len(err["errors"]) == 2
    gw.write_config(good)
    r = ctl(zonegate_bin, sock, "--json", "reload")
    assert json.loads(r.stdout) == {"reload": "ok", "generation": 2}


def test_bad_input_gets_clear_errors_and_the_data_path_goes_on(running, zonegate_bin,
                                                               client_ctx):
    gw, sock, p1, p2, _ = running
    live = util.tls_connect(client_ctx, "127.0.0.1", p1)
    assert raw_request(sock, b"frobnicate\n").startswith("error\nerror: unknown command 'frobnicate'")
    assert "empty request" in raw_request(sock, b"\n")
    assert "request too long" in raw_request(sock, b"status " * 400, shut=False)
    assert "truncated request" in raw_request(sock, b"stat")
    assert "control byte" in raw_request(sock, b"sta\x01tus\n")
    assert "NUL byte" in raw_request(sock, b"sta\x00tus\n")
    assert "too many words" in raw_request(sock, b"conns" + b" w" * 70 + b"\n")
    assert raw_request(sock, b"json status\n").startswith("ok\n{")
    assert json.loads(raw_request(sock, b"json kill 9.9\n").split("\n", 1)[1])["error"]
    # a silent client is dropped with a message, and does not hold up others
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    silent.connect(sock)
    t0 = time.monotonic()
    assert raw_request(sock, b"status\n").startswith("ok\n")
    assert time.monotonic() - t0 < 3
    assert util.echo_roundtrip(live, PAYLOAD) == PAYLOAD
    silent.settimeout(15)
    answer = silent.recv(4096).decode()
    assert "timeout: no complete request" in answer
    silent.close()

    # 100 clients at once, each answered, while the relay keeps flowing
    results = []

    def one():
        try:
            results.append(raw_request(sock, b"json status\n"))
        except OSError as e:
            results.append(f"oserror {e}")

    threads = [threading.Thread(target=one) for _ in range(100)]
    for t in threads:
        t.start()
    for _ in range(20):
        assert util.echo_roundtrip(live, PAYLOAD) == PAYLOAD
    for t in threads:
        t.join(60)
    assert len(results) == 100
    assert all(r.startswith("ok\n") for r in results), [r for r in results if not r.startswith("ok")][:3]
    with util.tls_connect(client_ctx, "127.0.0.1", p2) as s:
        assert util.echo_roundtrip(s, PAYLOAD) == PAYLOAD
    live.close()


def test_only_root_and_the_group_may_connect(pki, gateway, port, echo_server, ctl_dir,
                                             zonegate_bin):
    echo = echo_server()
    sock = os.path.join(ctl_dir, "control.sock")
    gw = gateway(_config(pki, echo, [port()], sock, group="daemon"), name="site-b")
    gw.wait_for_log(r"event=ctl_listening")
    st = os.stat(sock)
    assert st.st_gid == 1 and (st.st_mode & 0o777) == 0o660
    nobody = ["--reuid", "nobody", "--regid", "nogroup", "--clear-groups"]
    r = ctl(zonegate_bin, sock, "status", user=nobody)
    assert r.returncode == 4 and "Permission denied" in r.stderr, (r.returncode, r.stderr)
    member = ["--reuid", "nobody", "--regid", "nogroup", "--groups", "1"]
    r = ctl(zonegate_bin, sock, "status", user=member)
    assert r.returncode == 0, r.stderr
    gw.wait_for_event("ctl_command", user="nobody", command="status")


def test_a_socket_served_by_another_process_refuses_the_start(pki, gateway, port, echo_server,
                                                             ctl_dir):
    echo = echo_server()
    sock = os.path.join(ctl_dir, "control.sock")
    first = gateway(_config(pki, echo, [port()], sock), name="first")
    first.wait_for_log(r"event=ctl_listening")
    second = gateway(_config(pki, echo, [port()], sock), name="second", wait_ready=False)
    assert second.wait(20) == 4
    assert "another process serves it" in second.log()
    assert raw_request(sock, b"status\n").startswith("ok\n")
    first.stop()
    assert not os.path.exists(sock), "the socket file outlived the gateway"
    # a stale socket (a crash) is replaced
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(sock)
    stale.close()
    third = gateway(_config(pki, echo, [port()], sock), name="third")
    third.wait_for_log(r"event=ctl_listening")
