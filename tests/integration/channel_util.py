"""Three network namespaces and a WireGuard tunnel: the channel layer.

    site A  "<tag>a"                transit "<tag>t" (the open network)        site B  "<tag>b"
    eth0 203.0.113.1/24  ── veth ──  br0 203.0.113.99/24 (an outsider) ── veth ──  eth0 203.0.113.2/24
    wg "<tag>wa" 10.99.0.1/24  ═══════════ WireGuard over the transit ═══════════  wg "<tag>wb" 10.99.0.2/24

Every address is in a documentation range (TEST-NET-3 203.0.113.0/24, RFC
5737) or in 10.99.0.0/24 *inside* namespaces this module made; nothing is
configured in the caller's namespace. WireGuard is Debian's userspace
wireguard-go (no kernel module here, see shared testbed notes), one daemon
per site, run in the foreground so its PID is ours to stop. `destroy()` stops
the daemons and deletes the namespaces, which removes every link with them.
"""
import os
import subprocess
import time

from netns_util import run_in_netns  # noqa: F401  (re-exported for the tests)

A_T = "203.0.113.1"
B_T = "203.0.113.2"
OUTSIDER = "203.0.113.99"
A_WG = "10.99.0.1"
B_WG = "10.99.0.2"
WG_PORT = 51820
_counter = [0]


def available():
    """(ok, why): what the channel tests need is here and works."""
    if os.geteuid() != 0:
        return False, "needs root for ip netns"
    if not os.path.exists("/dev/net/tun"):
        return False, "needs /dev/net/tun for wireguard-go"
    for tool in (["wireguard-go", "--version"], ["wg", "--version"]):
        try:
            subprocess.run(tool, capture_output=True, timeout=10, check=True)
        except (OSError, subprocess.SubprocessError):
            return False, f"needs {tool[0]} (Debian wireguard-go, wireguard-tools)"
    return True, ""


def _ip(*args):
    cp = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if cp.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {cp.stderr.strip()}")
    return cp.stdout


def _wg(*args, inp=None):
    cp = subprocess.run(["wg", *args], capture_output=True, text=True, input=inp, timeout=30)
    if cp.returncode != 0:
        raise RuntimeError(f"wg {' '.join(args)}: {cp.stderr.strip()}")
    return cp.stdout.strip()


class Channel:
    def __init__(self, workdir):
        _counter[0] += 1
        tag = f"zc{os.getpid() % 1000}{_counter[0]}"
        self.a, self.t, self.b = tag + "a", tag + "t", tag + "b"
        self.wga, self.wgb = tag + "wa", tag + "wb"
        self.dir = workdir
        self.created, self.daemons = [], []

    # -- lifecycle
    def create(self):
        try:
            for ns in (self.a, self.t, self.b):
                _ip("netns", "add", ns)
                self.created.append(ns)
                _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", self.t, "link", "add", "br0", "type", "bridge")
            _ip("-n", self.t, "addr", "add", OUTSIDER + "/24", "dev", "br0")
            _ip("-n", self.t, "link", "set", "br0", "up")
            for ns, addr, peer in ((self.a, A_T, "va"), (self.b, B_T, "vb")):
                _ip("-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", peer,
                    "netns", self.t)
                _ip("-n", ns, "addr", "add", addr + "/24", "dev", "eth0")
                _ip("-n", ns, "link", "set", "eth0", "up")
                _ip("-n", self.t, "link", "set", peer, "master", "br0", "up")
            self._tunnel()
        except Exception:
            self.destroy()
            raise
        return self

    def _tunnel(self):
        keys = {}
        for side in ("a", "b"):
            priv = _wg("genkey")
            path = self.dir / f"wg-{side}.key"
            path.write_text(priv + "\n")
            os.chmod(path, 0o600)
            keys[side] = (str(path), _wg("pubkey", inp=priv + "\n"))
        for ns, ifn, me, peer_t, peer_wg, mine, theirs in (
                (self.a, self.wga, A_WG, B_T, B_WG, keys["a"], keys["b"]),
                (self.b, self.wgb, B_WG, A_T, A_WG, keys["b"], keys["a"])):
            env = {**os.environ, "WG_PROCESS_FOREGROUND": "1"}
            self.daemons.append(subprocess.Popen(
                ["ip", "netns", "exec", ns, "wireguard-go", "-f", ifn], env=env,
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            deadline = time.monotonic() + 10
            while subprocess.run(["ip", "-n", ns, "link", "show", ifn],
                                 capture_output=True).returncode != 0:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"wireguard-go did not create {ifn} in {ns}")
                time.sleep(0.05)
            subprocess.run(["ip", "netns", "exec", ns, "wg", "set", ifn, "private-key", mine[0],
                            "listen-port", str(WG_PORT), "peer", theirs[1], "endpoint",
                            f"{peer_t}:{WG_PORT}", "allowed-ips", peer_wg + "/32",
                            "persistent-keepalive", "1"], check=True, capture_output=True,
                           timeout=30)
            _ip("-n", ns, "addr", "add", me + "/24", "dev", ifn)
            _ip("-n", ns, "link", "set", ifn, "up")

    def destroy(self):
        for d in self.daemons:
            d.kill()
            d.wait()
        self.daemons = []
        for ns in reversed(self.created):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self.created = []

    def __enter__(self):
        return self.create()

    def __exit__(self, *exc):
        self.destroy()

    # -- helpers
    def tunnel(self, up):
        """Take site A's end of the tunnel down or up (the link, not the daemon)."""
        _ip("-n", self.a, "link", "set", self.wga, "up" if up else "down")
        if up:
            # the prefix route comes back with the link; nothing else to restore
            _ip("-n", self.a, "route", "replace", "10.99.0.0/24", "dev", self.wga)

    def wrapper(self, path, ns, binary):
        """An executable that runs `binary` inside namespace `ns` (exec: same PID)."""
        path.write_text(f"#!/bin/sh\nexec ip netns exec {ns} {binary} \"$@\"\n")
        os.chmod(path, 0o755)
        return str(path)
