"""The workers' sandbox ([gateway] sandbox = on, issue 15 item 2): Landlock
and a seccomp filter on each worker thread. The data path works inside it
(wrap -> unwrap handshakes signed through the key process, relaying, a
reload that re-opens a listener, a clean stop); a system call outside the
filter (made by the test-only fault hook of base/hook.h) stops the whole
process with a clear log line; a worker cannot open the key file (Landlock).
Each with the control that without the sandbox the same act succeeds, so
the tests can fail."""
import re

import pytest

import util
from conftest import make_config


def pair(pki, gateway, port, echo_server, sandbox, a_port=None):
    echo = echo_server()
    b_port, a_port = port(), a_port or port()
    gw = {"sandbox": sandbox}
    b = gateway(make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{b_port}",
                                         "connect": f"127.0.0.1:{echo.port}"}},
                            name="site-b", leaf="site-b", gateway=gw,
                            tls={"session_cache": "off"}), name="site-b")
    a_cfg = make_config(pki, {"out": {"mode": "wrap", "listen": f"127.0.0.1:{a_port}",
                                      "connect": f"127.0.0.1:{b_port}",
                                      "server_name": "site-b.zonegate.test",
                                      "allow_from": "127.0.0.0/8"}},
                        name="site-a", leaf="site-a", gateway=gw)
    a = gateway(a_cfg, name="site-a")
    return a, b, a_port, a_cfg


def roundtrip(p, data=b"sandboxed\n"):
    with util.connect("127.0.0.1", p) as s:
        return util.echo_roundtrip(s, data)


def test_data_path_runs_inside_the_filter(pki, gateway, port, echo_server):
    a, b, a_port, a_cfg = pair(pki, gateway, port, echo_server, "on")
    for _ in range(3):
        assert roundtrip(a_port) == b"sandboxed\n"
    # a reload that moves the listener: workers open a new socket inside the filter
    new_port = port()
    a_cfg["route out"]["listen"] = f"127.0.0.1:{new_port}"
    mark = a.reload(a_cfg)
    a.wait_for_log(r"event=reload result=ok", since=mark)
    util.wait_port("127.0.0.1", new_port)
    assert roundtrip(new_port, b"after reload\n") == b"after reload\n"
    for gw in (a, b):
        assert "sandbox_violation" not in gw.log()
        assert re.search(r"event=sandbox worker=0 seccomp=on landlock=(on|unavailable)", gw.log())
        assert gw.stop() == 0


@pytest.mark.parametrize("sandbox", ["on", "off"])
def test_a_call_outside_the_filter_stops_the_process(pki, gateway, port, echo_server, tmp_path,
                                                     monkeypatch, sandbox):
    probe = tmp_path / "sandbox-probe"
    monkeypatch.setenv("ZG_TEST_SANDBOX_PROBE", str(probe))
    a, b, a_port, _ = pair(pki, gateway, port, echo_server, sandbox)
    assert roundtrip(a_port) == b"sandboxed\n"
    probe.write_text("")
    if sandbox == "on":
        assert a.wait(15) == 4
        assert b.wait(15) == 4
        for gw in (a, b):
            assert "event=sandbox_violation syscall=110 " in gw.log()  # getppid, x86_64
    else:
        # the control: without the filter the same call changes nothing
        assert roundtrip(a_port) == b"sandboxed\n"
        assert a.running() and b.running()
        probe.unlink()


def _landlock_available():
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    # landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION), x86_64 nr 444
    return libc.syscall(444, None, 0, 1) >= 1


@pytest.mark.parametrize("sandbox", ["on", "off"])
def test_a_worker_cannot_open_the_key_file(pki, gateway, port, echo_server, monkeypatch, sandbox):
    if not _landlock_available():
        pytest.skip("this kernel has no Landlock")
    monkeypatch.setenv("ZG_TEST_SANDBOX_OPEN", pki.key("site-b", "ec"))
    a, b, a_port, _ = pair(pki, gateway, port, echo_server, sandbox)
    assert roundtrip(a_port) == b"sandboxed\n"  # the gateway does serve
    m = b.wait_for_log(r"event=hook_open worker=0 result=(.*)")
    if sandbox == "on":
        assert m.group(1) == "Permission denied"
    else:
        assert m.group(1) == "opened"  # the control: root or the service user can
