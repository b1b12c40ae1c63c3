"""[gateway] user (issue 15, item 2): after start-up the gateway runs as an
unprivileged user. Started as root by the test, with a user the test
creates: every thread of the process (workers, audit, main) carries that
uid and gid in /proc/PID/task/TID/status, a relay works, a reload (which
re-reads the configuration, certificates and key as that user) works and
opens a new listener, and a user that does not exist refuses the start.
The control: without `user` the same gateway's threads are root."""
import grp
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

import conftest
import util
from conftest import Gateway, make_config

USER = "zg-user-test"


@pytest.fixture(scope="module")
def service_user():
    if os.geteuid() != 0:
        pytest.skip("needs root to create a user and switch to it")
    try:
        pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                        "--shell", "/usr/sbin/nologin", USER], check=True)
    pw = pwd.getpwnam(USER)
    return pw.pw_uid, pw.pw_gid


@pytest.fixture
def shared_dir(service_user):
    """A directory the service user's group may read (the deployment's
    /etc/zonegate 0750 root:zonegate), and sanitizer reports it may write."""
    _, gid = service_user
    d = Path(tempfile.mkdtemp(prefix="zg-user-", dir="/tmp"))
    os.chown(d, 0, gid)
    os.chmod(d, 0o750)
    san = conftest.SANITIZER_DIR
    old_mode = san.stat().st_mode & 0o7777 if san else None
    if san:
        os.chmod(san, 0o1777)  # reports of a process that is no longer root
    yield d
    if san:
        os.chmod(san, old_mode)
    shutil.rmtree(d, ignore_errors=True)


def share(path, d, gid):
    """Copy a PKI file into @d as root:GROUP 0640; return the new path."""
    dst = d / Path(path).name
    shutil.copyfile(path, dst)
    os.chown(dst, 0, gid)
    os.chmod(dst, 0o640)
    return str(dst)


def unwrap_config(pki, d, gid, b_port, echo_port, user, extra_routes=None, sandbox=None):
    tls = {"cert": share(pki.cert("site-b", "ec"), d, gid), "key": share(pki.key("site-b", "ec"), d, gid)}
    cfg = make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{b_port}",
                                   "connect": f"127.0.0.1:{echo_port}"}, **(extra_routes or {})},
                      name="site-b", leaf="site-b",
                      gateway=dict({"user": user} if user else {},
                                   **({"sandbox": sandbox} if sandbox else {})),
                      tls={"certificate": tls["cert"], "key": tls["key"],
                           "chain": share(pki.intermediate("ec"), d, gid),
                           "trust_anchors": share(pki.roots, d, gid)})
    return cfg


class SharedGateway(Gateway):
    """A gateway whose configuration file the service user's group reads."""

    def __init__(self, *a, gid, **kw):
        self.gid = gid
        super().__init__(*a, **kw)

    def write_config(self, config):
        super().write_config(config)
        os.chown(self.conf_path, 0, self.gid)
        os.chmod(self.conf_path, 0o640)


def task_ids(pid):
    """uid and gid lines (real, effective, saved, fs) of every thread."""
    out = {}
    for t in os.listdir(f"/proc/{pid}/task"):
        fields = {}
        for ln in Path(f"/proc/{pid}/task/{t}/status").read_text().splitlines():
            k, _, v = ln.partition(":")
            if k in ("Uid", "Gid", "Groups", "Name"):
                fields[k] = v.split()
        out[t] = fields
    return out


def wrap_to(pki, gateway, port, b_port):
    a_port = port()
    a = gateway(make_config(pki, {"out": {"mode": "wrap", "listen": f"127.0.0.1:{a_port}",
                                          "connect": f"127.0.0.1:{b_port}",
                                          "server_name": "site-b.zonegate.test",
                                          "allow_from": "127.0.0.0/8"}},
                            name="site-a", leaf="site-a"), name="site-a")
    return a, a_port


def roundtrip(p, data):
    with util.connect("127.0.0.1", p) as s:
        return util.echo_roundtrip(s, data)


@pytest.mark.parametrize("user,sandbox", [(USER, None), (None, None), (USER, "on")])
def test_every_thread_runs_as_the_user_and_relay_and_reload_work(
        pki, gateway, port, echo_server, zonegate_bin, service_user, shared_dir, user, sandbox):
    """With sandbox = on the workers are under seccomp when the switch
    comes: glibc makes each of them change its own ids, which the filter
    must allow (engine/sandbox.c), or the process would stop."""
    uid, gid = service_user
    echo = echo_server()
    b_port = port()
    cfg = unwrap_config(pki, shared_dir, gid, b_port, echo.port, user, sandbox=sandbox)
    b = SharedGateway(zonegate_bin, shared_dir, "site-b", cfg, gid=gid)
    gateway.all.append(b)  # the fixture stops it and reads its sanitizer reports
    b.start()
    a, a_port = wrap_to(pki, gateway, port, b_port)
    assert roundtrip(a_port, b"as the user\n") == b"as the user\n"
    tasks = task_ids(b.proc.pid)
    assert len(tasks) >= 3, tasks  # main + 2 workers at least
    want = str(uid if user else 0)
    want_g = str(gid if user else 0)
    for t, f in tasks.items():
        assert f["Uid"] == [want] * 4, (t, f)
        assert f["Gid"] == [want_g] * 4, (t, f)
    if user:
        assert f["Groups"] == [str(gid)], f  # root's supplementary groups are gone
        b.wait_for_log(rf"event=user user={USER} uid={uid} gid={gid}")
    # a reload re-reads the configuration, certificate and key as the user
    # and opens a new listener
    new_port = port()
    cfg["route in2"] = dict(cfg["route in"], listen=f"127.0.0.1:{new_port}")
    mark = b.reload(cfg)
    b.wait_for_log(r"event=reload result=ok", since=mark)
    util.wait_port("127.0.0.1", new_port)
    a_cfg = make_config(pki, {"out": {"mode": "wrap", "listen": f"127.0.0.1:{a_port}",
                                      "connect": f"127.0.0.1:{new_port}",
                                      "server_name": "site-b.zonegate.test",
                                      "allow_from": "127.0.0.0/8"}},
                        name="site-a", leaf="site-a")
    mark = a.reload(a_cfg)
    a.wait_for_log(r"event=reload result=ok", since=mark)
    assert roundtrip(a_port, b"after reload\n") == b"after reload\n"
    for t, f in task_ids(b.proc.pid).items():
        assert f["Uid"] == [want] * 4, (t, f)
    assert "sandbox_violation" not in b.log()
    if sandbox:
        assert "event=sandbox worker=0 seccomp=on" in b.log()
    assert b.stop() == 0


def test_a_user_that_does_not_exist_refuses_the_start(pki, gateway, port, echo_server):
    cfg = make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{port()}",
                                   "connect": "127.0.0.1:9"}},
                      gateway={"user": "zg-no-such-user"})
    gw = gateway(cfg, wait_ready=False)
    assert gw.wait(20) == 3
    assert "event=start result=refused reason=user" in gw.log()
    assert "no such user" in gw.log()
    assert "event=ready" not in gw.log()
