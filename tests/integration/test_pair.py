"""Gateways in pairs (issue 16, item 2): shared session-ticket keys, and an
active/standby pair behind a keepalived (VRRP) virtual address.

Resumption across nodes works because both derive a route's ticket keys from
the same operator-made file (session_ticket_key); the pair test builds a
small LAN of network namespaces (client, node1, node2 on one bridge), runs
zonegate and keepalived on each node, cuts node1's link as a power loss
would, and measures how long until a new connection succeeds on node2.
"""
import os
import signal
import socket
import ssl
import subprocess
import time

import pytest

import netns_util
import util
from conftest import Gateways, gateway_section, make_config

VIP = "198.51.100.10"
NODES = {"n1": ("198.51.100.11", 150), "n2": ("198.51.100.12", 100)}
CLIENT = "198.51.100.50"
PORT = 2762


def key_file(path):
    path.write_bytes(os.urandom(80))
    os.chmod(path, 0o600)
    return str(path)


def tls_ctx(pki):
    return util.tls_context(pki, cert=pki.cert("site-a"), key=pki.key("site-a"),
                            chain=pki.chain("site-a"))


def echo_session(ctx, connect, session=None):
    """One echo through mTLS; returns (reused, session to resume next)."""
    raw = connect()
    with ctx.wrap_socket(raw, server_hostname="server.zonegate.test", session=session) as s:
        assert util.echo_roundtrip(s, b"ping\n", timeout=5) == b"ping\n"
        return s.session_reused, s.session


def unwrap_route(listen, backend_port, **over):
    return {"in": {"mode": "unwrap", "listen": listen, "connect": f"127.0.0.1:{backend_port}",
                   **over}}


# ------------------------------------------------------- shared ticket keys


def test_tickets_resume_across_gateways_sharing_a_key_file(pki, gateway, port, echo_server,
                                                           tmp_path):
    echo = echo_server()
    shared, other = key_file(tmp_path / "ticket.key"), key_file(tmp_path / "other.key")
    tls = {"session_tickets": "on", "session_ticket_key": shared}
    ports = [port() for _ in range(3)]
    for i, p in enumerate(ports):
        t = dict(tls) if i < 2 else {**tls, "session_ticket_key": other}
        gateway(make_config(pki, unwrap_route(f"127.0.0.1:{p}", echo.port), name=f"node{i}",
                            leaf="server", tls=t), name=f"node{i}")
    ctx = tls_ctx(pki)

    def to(p):
        return lambda: util.connect("127.0.0.1", p, timeout=5)

    reused, sess = echo_session(ctx, to(ports[0]))
    assert not reused
    reused, _ = echo_session(ctx, to(ports[1]), sess)
    assert reused, "node1 must open node0's ticket: same key file, same route name"
    reused, _ = echo_session(ctx, to(ports[2]), sess)
    assert not reused, "a gateway with another key file must not"


def test_rotation_keeps_old_tickets_open(pki, gateway, port, echo_server, tmp_path):
    """The operator prepends a new key and reloads: tickets sealed with the
    old key still resume (and are replaced); a key dropped entirely does not."""
    echo = echo_server()
    old, new = key_file(tmp_path / "old.key"), key_file(tmp_path / "new.key")
    p = port()
    cfg = make_config(pki, unwrap_route(f"127.0.0.1:{p}", echo.port), leaf="server",
                      tls={"session_tickets": "on", "session_ticket_key": old})
    gw = gateway(cfg)
    ctx = tls_ctx(pki)

    def conn():
        return util.connect("127.0.0.1", p, timeout=5)

    _, sess = echo_session(ctx, conn)
    cfg["tls"]["session_ticket_key"] = f"{new}, {old}"
    mark = gw.reload(cfg)
    gw.wait_for_log(r"event=reload result=ok", since=mark)
    reused, _ = echo_session(ctx, conn, sess)
    assert reused
    cfg["tls"]["session_ticket_key"] = new
    mark = gw.reload(cfg)
    gw.wait_for_log(r"event=reload result=ok", since=mark)
    reused, _ = echo_session(ctx, conn, sess)
    assert not reused


def test_bad_key_files_are_refused_with_reasons(zonegate_check, pki, port, tmp_path):
    short = tmp_path / "short.key"
    short.write_bytes(os.urandom(48))
    os.chmod(short, 0o600)
    cfg = make_config(pki, unwrap_route(f"127.0.0.1:{port()}", 9), leaf="server",
                      tls={"session_tickets": "on", "session_ticket_key": str(short)})
    out = zonegate_check(cfg)
    assert out.returncode == 3
    assert "a ticket key file holds exactly 80 bytes" in out.stdout + out.stderr
    readable = tmp_path / "readable.key"
    key_file(readable)
    os.chmod(readable, 0o644)
    cfg["tls"]["session_ticket_key"] = str(readable)
    out = zonegate_check(cfg)
    assert out.returncode == 3 and "readable by every user" in out.stdout + out.stderr
    cfg["tls"]["session_ticket_key"] = key_file(tmp_path / "ok.key")
    cfg["tls"]["session_tickets"] = "off"
    out = zonegate_check(cfg)
    assert out.returncode == 3
    assert "session_ticket_key: needs session_tickets = on in [tls]" in out.stdout + out.stderr


# ------------------------------------------------------- keepalived pair


def _ip(*args):
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


class Lan:
    """client, n1, n2 on one bridge (in namespace br), all addresses in
    TEST-NET-2 inside namespaces this test made."""

    def __init__(self):
        tag = f"zp{os.getpid() % 1000}"
        self.ns = {n: tag + n for n in ("br", "c", "n1", "n2")}
        self.created, self.procs = [], []

    def create(self):
        try:
            for ns in self.ns.values():
                _ip("netns", "add", ns)
                self.created.append(ns)
                _ip("-n", ns, "link", "set", "lo", "up")
            br = self.ns["br"]
            _ip("-n", br, "link", "add", "br0", "type", "bridge")
            _ip("-n", br, "link", "set", "br0", "up")
            for n, addr in (("c", CLIENT), ("n1", NODES["n1"][0]), ("n2", NODES["n2"][0])):
                _ip("-n", self.ns[n], "link", "add", "eth0", "type", "veth", "peer", "name",
                    "p" + n, "netns", br)
                _ip("-n", self.ns[n], "addr", "add", addr + "/24", "dev", "eth0")
                _ip("-n", self.ns[n], "link", "set", "eth0", "up")
                _ip("-n", br, "link", "set", "p" + n, "master", "br0", "up")
        except Exception:
            self.destroy()
            raise
        return self

    def destroy(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for ns in reversed(self.created):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self.created = []


def keepalived(lan, node, tmp_path):
    _, prio = NODES[node]
    conf = tmp_path / f"keepalived-{node}.conf"
    conf.write_text(f"""
global_defs {{
    router_id {node}
    vrrp_version 3
    script_user root
}}
vrrp_instance VI_ZG {{
    state {"MASTER" if prio > 100 else "BACKUP"}
    interface eth0
    virtual_router_id 51
    priority {prio}
    advert_int 0.1
    virtual_ipaddress {{
        {VIP}/24
    }}
}}
""")
    pre = tmp_path / f"ka-{node}"
    p = subprocess.Popen(["ip", "netns", "exec", lan.ns[node], "keepalived", "-n", "-l", "-D",
                          "-P", "-f", str(conf), "-p", f"{pre}.pid", "-r", f"{pre}.vrrp.pid",
                          "-c", f"{pre}.chk.pid", "-b", f"{pre}.bfd.pid"],
                         stdout=open(f"{pre}.log", "ab"), stderr=subprocess.STDOUT,
                         start_new_session=True)
    lan.procs.append(p)
    return p


def has_vip(lan, node):
    out = subprocess.run(["ip", "-n", lan.ns[node], "-o", "addr", "show", "dev", "eth0"],
                         capture_output=True, text=True).stdout
    return f" {VIP}/" in out


@pytest.fixture
def lan():
    ok, why = netns_util.available()
    if not ok:
        pytest.skip(why)
    try:
        subprocess.run(["keepalived", "--version"], capture_output=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        pytest.skip("needs keepalived (Debian package)")
    lan = Lan().create()
    yield lan
    lan.destroy()


def test_active_standby_pair_fails_over_and_resumes(request, lan, pki, zonegate_bin, tmp_path):
    key = key_file(tmp_path / "ticket.key")
    backends, gws = {}, {}
    for node in ("n1", "n2"):
        def listener():
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            s.listen(16)
            return s
        backends[node] = netns_util.EchoBackend(netns_util.run_in_netns(lan.ns[node], listener))
        wrapper = tmp_path / f"zonegate-{node}"
        wrapper.write_text(f"#!/bin/sh\nexec ip netns exec {lan.ns[node]} {zonegate_bin} \"$@\"\n")
        os.chmod(wrapper, 0o755)
        cfg = {"gateway": gateway_section(f"pair-{node}"),
               "tls": pki.tls("server", session_tickets="on", session_ticket_key=key),
               "route in": {"mode": "unwrap", "listen": f"*:{PORT}",
                            "connect": f"127.0.0.1:{backends[node].port}"}}
        gws[node] = Gateways(str(wrapper), tmp_path / node, request.node)(cfg, f"pair-{node}")
        keepalived(lan, node, tmp_path)
    try:
        util.wait_until(lambda: has_vip(lan, "n1") and not has_vip(lan, "n2"), 20, interval=0.05,
                        what="node1 to hold the virtual address")
        ctx = tls_ctx(pki)

        def connect(timeout=2.0):
            return netns_util.run_in_netns(
                lan.ns["c"], lambda: socket.create_connection((VIP, PORT), timeout=timeout))

        _, sess = echo_session(ctx, connect)
        gws["n1"].wait_for_event("conn_close", route="in")
        # node1 loses power: its link goes, its processes die
        t0 = time.monotonic()
        _ip("-n", lan.ns["n1"], "link", "set", "eth0", "down")
        gws["n1"].proc.kill()
        gws["n1"].proc.wait()
        gws["n1"].proc = None  # an intended crash: not a failure for the conftest hook

        def served():
            try:
                return echo_session(ctx, lambda: connect(0.5), sess)
            except (OSError, ssl.SSLError):
                return None

        reused, _ = util.wait_until(served, 15, interval=0.05, what="a new connection on node2")
        failover_s = time.monotonic() - t0
        print(f"\npair failover: new connections served by node2 {failover_s:.2f} s after "
              f"node1's link went down")
        (tmp_path / "failover_s").write_text(f"{failover_s:.3f}\n")
        assert has_vip(lan, "n2")
        gws["n2"].wait_for_event("conn_close", route="in")
        assert reused, "the session from node1 resumed on node2 (shared ticket keys)"
        assert failover_s < 10, "far past keepalived's master-down timer"
    finally:
        for b in backends.values():
            b.stop()


# ------------------------------------------------------- one collector, two sources


def test_both_nodes_audit_to_one_collector_with_their_own_source_ids(pki, gateway, port,
                                                                      echo_server, tmp_path):
    """The two nodes of a pair send to the same real rsyslog collector; each
    record names the node that wrote it (AuditSourceID = [gateway] name), so
    the trail of a pair is one trail with two sources, not two trails that
    look like one."""
    import audit_util as au
    ok, why = au.rsyslog_probe(tmp_path / "probe", pki, port())
    if not ok:
        pytest.skip(why)
    collector = au.Rsyslog(tmp_path / "rsyslog", pki, port())
    collector.start()
    echo = echo_server()
    try:
        ports = {}
        for node in ("pair-a", "pair-b"):
            p = ports[node] = port()
            cfg = make_config(pki, unwrap_route(f"127.0.0.1:{p}", echo.port), name=node,
                              leaf="site-a")
            cfg["audit"] = {"syslog_target": f"127.0.0.1:{collector.port}",
                            "syslog_server_name": "localhost",
                            "spool_dir": str(tmp_path / node / "spool"),
                            "file": str(tmp_path / node / "audit.log"), "io_timeout": "2s"}
            (tmp_path / node).mkdir()
            gateway(cfg, name=node)
        ctx = util.tls_context(pki, cert=pki.cert("site-b"), key=pki.key("site-b"),
                               chain=pki.chain("site-b"))
        for node, p in ports.items():
            with util.tls_connect(ctx, "127.0.0.1", p, server_hostname="site-a.zonegate.test") as s:
                assert util.echo_roundtrip(s, node.encode() + b"\n") == node.encode() + b"\n"

        def sources():
            return {r[3].find("AuditSourceIdentification").get("AuditSourceID")
                    for r in collector.records()}

        util.wait_until(lambda: {"pair-a", "pair-b"} <= sources(), 30,
                        what="records of both nodes at the one collector")
        assert sources() <= {"pair-a", "pair-b"}
    finally:
        collector.kill()
