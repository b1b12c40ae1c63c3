"""Network namespaces for tests that need several source addresses.

`NetnsPair` creates two namespaces joined by one veth pair:

    gateway side  "<tag>g"  dev "<tag>g0"  198.51.100.1/24, 2001:db8:5a::1/64
    client side   "<tag>c"  dev "<tag>c0"  the client addresses given

Every address is in a documentation range (TEST-NET-2 198.51.100.0/24,
RFC 5737; 2001:db8::/32, RFC 3849) and lives only inside the two namespaces
this module creates; nothing is configured in the caller's namespace, and
`destroy()` (also on failure) deletes both namespaces, which removes the veth
pair with them.

Processes run in a namespace through `ip netns exec` (`exec_prefix`).
Sockets are made in a namespace by a short-lived thread that joins it with
setns(2): a socket belongs to the namespace it was created in and can then
be used from any thread, so test code stays plain Python.
"""
import ctypes
import os
import socket
import subprocess
import threading

CLONE_NEWNET = 0x40000000
GW_V4 = "198.51.100.1"
GW_V6 = "2001:db8:5a::1"

_libc = ctypes.CDLL(None, use_errno=True)
_counter = [0]


def available():
    """(ok, why): namespaces can be made here (root, iproute2, kernel)."""
    if os.geteuid() != 0:
        return False, "needs root for ip netns"
    try:
        subprocess.run(["ip", "-V"], capture_output=True, check=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False, "needs iproute2 (ip -V does not run)"
    name = f"zgprobe{os.getpid() % 100000}"
    cp = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if cp.returncode != 0:
        return False, f"ip netns add failed: {cp.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return True, ""


def _ip(*args):
    cp = subprocess.run(["ip", *args], capture_output=True, text=True)
    if cp.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {cp.stderr.strip()}")
    return cp.stdout


def run_in_netns(ns, fn, *args):
    """Call fn(*args) on a thread that has joined network namespace `ns`;
    returns its result or raises its exception."""
    box = {}

    def body():
        try:
            fd = os.open(f"/var/run/netns/{ns}", os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    e = ctypes.get_errno()
                    raise OSError(e, f"setns({ns}): {os.strerror(e)}")
            finally:
                os.close(fd)
            box["r"] = fn(*args)
        except BaseException as e:  # handed to the caller
            box["e"] = e

    t = threading.Thread(target=body, daemon=True)
    t.start()
    t.join()
    if "e" in box:
        raise box["e"]
    return box.get("r")


class NetnsPair:
    def __init__(self, client_addrs):
        _counter[0] += 1
        tag = f"zgd{os.getpid() % 10000}x{_counter[0]}"
        self.gw = tag + "g"
        self.cl = tag + "c"
        self.client_addrs = list(client_addrs)
        self.created = []

    # -- lifecycle
    def create(self):
        try:
            for ns in (self.gw, self.cl):
                _ip("netns", "add", ns)
                self.created.append(ns)
            # both ends are born inside the namespaces: nothing in ours
            _ip("-n", self.gw, "link", "add", self.gw + "0", "type", "veth", "peer", "name",
                self.cl + "0", "netns", self.cl)
            for ns in (self.gw, self.cl):
                _ip("-n", ns, "link", "set", "lo", "up")
                _ip("-n", ns, "link", "set", ns + "0", "up")
            _ip("-n", self.gw, "addr", "add", GW_V4 + "/24", "dev", self.gw + "0")
            _ip("-n", self.gw, "addr", "add", GW_V6 + "/64", "dev", self.gw + "0", "nodad")
            for a in self.client_addrs:
                if ":" in a:
                    _ip("-n", self.cl, "addr", "add", a + "/64", "dev", self.cl + "0", "nodad")
                else:
                    _ip("-n", self.cl, "addr", "add", a + "/24", "dev", self.cl + "0")
        except Exception:
            self.destroy()
            raise
        return self

    def destroy(self):
        for ns in reversed(self.created):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self.created = []

    def __enter__(self):
        return self.create()

    def __exit__(self, *exc):
        self.destroy()

    # -- helpers
    def exec_prefix(self, ns):
        return ["ip", "netns", "exec", ns]

    def wrapper(self, path, binary):
        """Write an executable that runs `binary` inside the gateway
        namespace (ip netns exec execs it, so the PID stays the same and
        signals reach zonegate itself)."""
        path.write_text(f"#!/bin/sh\nexec ip netns exec {self.gw} {binary} \"$@\"\n")
        os.chmod(path, 0o755)
        return str(path)

    def client_connect(self, src, dst, port, timeout=10.0):
        """A TCP connection from client address `src` to dst:port."""
        fam = socket.AF_INET6 if ":" in dst else socket.AF_INET

        def make():
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.settimeout(timeout)
            s.bind((src, 0))
            s.connect((dst, port))
            return s

        return run_in_netns(self.cl, make)

    def gw_listen(self, host, port=0):
        """A listening socket inside the gateway namespace."""
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET

        def make():
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
            s.listen(64)
            return s

        return run_in_netns(self.gw, make)


class EchoBackend:
    """An echo service on a socket made in a namespace (see gw_listen)."""

    def __init__(self, listener):
        self.sock = listener
        self.port = listener.getsockname()[1]
        self.conns = []
        self._stop = False
        self._t = threading.Thread(target=self._accept, daemon=True)
        self._t.start()

    def _accept(self):
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                c, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            self.conns.append(c)
            threading.Thread(target=self._echo, args=(c,), daemon=True).start()

    @staticmethod
    def _echo(c):
        try:
            while True:
                d = c.recv(65536)
                if not d:
                    break
                c.sendall(d)
        except OSError:
            pass
        finally:
            c.close()

    def stop(self):
        self._stop = True
        self._t.join(2)
        self.sock.close()
