"""Helpers for zonegate's integration tests: log parsing, waiting, backends and
clients. Standard library only (the tests run on Debian's python3-pytest).

Backends run an asyncio loop in a background thread of the test process, so a
test can ask them what they saw (connections, bytes, digests) without parsing
another process's output.
"""
import asyncio
import hashlib
import os
import re
import select
import socket
import ssl
import subprocess
import threading
import time

# ---------------------------------------------------------------- waiting


def wait_until(cond, timeout=10.0, interval=0.02, what="condition"):
    """Poll cond() until it returns a truthy value; return that value.
    Raises AssertionError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def runs(*argv):
    """True if the command starts and exits 0: tools are detected by
    running them, not by where a package happens to put them."""
    try:
        return subprocess.run(list(argv), capture_output=True, timeout=30,
                              stdin=subprocess.DEVNULL).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def wait_port(host, port, timeout=10.0):
    """Wait until something accepts TCP connections on host:port."""

    def try_connect():
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            return False

    wait_until(try_connect, timeout, 0.05, f"{host}:{port} to accept connections")


# ---------------------------------------------------------------- addresses


def free_port(host="127.0.0.1"):
    """A TCP port nobody listens on right now (the kernel's choice)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def hostport(host, port):
    """'127.0.0.1:80' or '[::1]:80', as zonegate's config writes addresses."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# ---------------------------------------------------------------- log lines

_KV = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')


def parse_line(line):
    """One `key=value key="quoted value"` log line as a dict of strings."""
    out = {}
    for k, v in _KV.findall(line):
        if v.startswith('"') and v.endswith('"') and len(v) >= 2:
            v = re.sub(r"\\(.)", r"\1", v[1:-1])
        out[k] = v
    return out


# ---------------------------------------------------------------- backends


class _AsyncServer:
    """A TCP server whose per-connection coroutine is `handle`, running on an
    asyncio loop in a daemon thread. Counts connections and bytes received."""

    def __init__(self, host="127.0.0.1", port=0):
        self.host = host
        self.port = port
        self.connections = 0
        self.active = 0
        self.max_active = 0
        self.bytes_received = 0
        self.digests = []  # sha256 hex of everything each connection sent
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._server = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._started = threading.Event()
        self._error = None

    def _run(self):
        asyncio.set_event_loop(self._loop)
        try:
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._wrap, self.host, self.port, backlog=4096,
                                     limit=1 << 20))
            self.port = self._server.sockets[0].getsockname()[1]
        except Exception as e:  # noqa: BLE001 - reported to start()
            self._error = e
            self._started.set()
            return
        self._started.set()
        self._loop.run_forever()
        pending = asyncio.all_tasks(self._loop)
        for t in pending:
            t.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._server.close()
        self._loop.run_until_complete(self._server.wait_closed())
        self._loop.close()

    async def _wrap(self, reader, writer):
        with self._lock:
            self.connections += 1
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            await self.handle(reader, writer)
        except (ConnectionError, OSError):
            pass
        finally:
            with self._lock:
                self.active -= 1
            try:
                writer.close()
            except Exception:  # noqa: BLE001
                pass

    def _count(self, n):
        with self._lock:
            self.bytes_received += n

    async def handle(self, reader, writer):
        raise NotImplementedError

    def start(self):
        self._thread.start()
        self._started.wait(10)
        if self._error:
            raise self._error
        return self

    def stop(self):
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    @property
    def addr(self):
        return hostport(self.host, self.port)


class EchoServer(_AsyncServer):
    """Echoes every byte back; on EOF from the client, sends EOF back
    (half-close aware) after hashing what it received."""

    async def handle(self, reader, writer):
        h = hashlib.sha256()
        while True:
            data = await reader.read(256 * 1024)
            if not data:
                break
            self._count(len(data))
            h.update(data)
            writer.write(data)
            await writer.drain()
        with self._lock:
            self.digests.append(h.hexdigest())
        if writer.can_write_eof():
            writer.write_eof()
        await writer.drain()


class HashServer(_AsyncServer):
    """Reads until the client half-closes, then replies
    `sha256-hex byte-count\\n` and closes: proves the client's data all
    arrived and that the reply still flows after the client's FIN."""

    async def handle(self, reader, writer):
        h = hashlib.sha256()
        n = 0
        while True:
            data = await reader.read(256 * 1024)
            if not data:
                break
            n += len(data)
            self._count(len(data))
            h.update(data)
        with self._lock:
            self.digests.append(h.hexdigest())
        writer.write(f"{h.hexdigest()} {n}\n".encode())
        await writer.drain()


class GreeterServer(_AsyncServer):
    """Sends GREETING and shuts its write side at once, then reads until the
    client's EOF: the service half-closes first."""

    GREETING = b"220 greeter ready\r\n"

    async def handle(self, reader, writer):
        writer.write(self.GREETING)
        await writer.drain()
        writer.write_eof()
        h = hashlib.sha256()
        while True:
            data = await reader.read(256 * 1024)
            if not data:
                break
            self._count(len(data))
            h.update(data)
        with self._lock:
            self.digests.append(h.hexdigest())


class PausedServer(_AsyncServer):
    """Accepts but does not read until `release()`; then reads to EOF and
    records the digest. Models a service that stalls (backpressure)."""

    def __init__(self, host="127.0.0.1", port=0):
        super().__init__(host, port)
        self._go = None

    def release(self):
        self._loop.call_soon_threadsafe(self._go_event().set)

    def _go_event(self):
        if self._go is None:
            self._go = asyncio.Event()
        return self._go

    async def handle(self, reader, writer):
        await self._go_event().wait()
        h = hashlib.sha256()
        while True:
            data = await reader.read(256 * 1024)
            if not data:
                break
            self._count(len(data))
            h.update(data)
        with self._lock:
            self.digests.append(h.hexdigest())


class ResetServer(_AsyncServer):
    """Reads `after` bytes, then aborts the connection with a TCP RST
    (SO_LINGER 0): a service that fails mid-stream."""

    def __init__(self, host="127.0.0.1", port=0, after=1):
        super().__init__(host, port)
        self.after = after

    async def handle(self, reader, writer):
        n = 0
        while n < self.after:
            data = await reader.read(65536)
            if not data:
                return
            n += len(data)
            self._count(len(data))
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        writer.transport.abort()


def rst_close(sock):
    """Close a client socket with a TCP RST instead of a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()


def rss_kib(pid):
    """Resident set size of a process, KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


class HttpServer:
    """python3 -m http.server serving `directory` on host:port."""

    def __init__(self, directory, host="127.0.0.1", port=None, logfile=None):
        self.host = host
        self.port = port or free_port(host)
        self.directory = directory
        self.logfile = logfile
        self.proc = None

    def start(self):
        out = open(self.logfile, "wb") if self.logfile else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", "-m", "http.server", "--bind", self.host,
             "--directory", str(self.directory), str(self.port)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        wait_port(self.host, self.port)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# ---------------------------------------------------------------- clients


def connect(host, port, timeout=10.0, source=None):
    """A plain TCP connection (blocking, with a timeout)."""
    return socket.create_connection((host, port), timeout=timeout,
                                    source_address=(source, 0) if source else None)


def recv_exactly(sock, n, timeout=10.0):
    """Read exactly n bytes or raise (EOF or timeout)."""
    sock.settimeout(timeout)
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(1 << 20, n - len(buf)))
        if not chunk:
            raise AssertionError(f"EOF after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def recv_all(sock, timeout=10.0):
    """Read until EOF; returns the bytes. Raises on timeout."""
    sock.settimeout(timeout)
    buf = bytearray()
    while True:
        chunk = sock.recv(1 << 20)
        if not chunk:
            return bytes(buf)
        buf += chunk


def closed_by_peer(sock, timeout=10.0):
    """True if the peer closes (EOF or reset) within timeout without sending
    data; False if it sends data or stays open."""
    sock.settimeout(timeout)
    try:
        data = sock.recv(4096)
    except (ConnectionResetError, BrokenPipeError):
        return True
    except (socket.timeout, TimeoutError):
        return False
    return data == b""


def echo_roundtrip(sock, payload=b"ping\n", timeout=10.0):
    """Send payload on a relayed connection to an echo server and return what
    came back (exactly len(payload) bytes)."""
    sock.sendall(payload)
    return recv_exactly(sock, len(payload), timeout)


def tls_context(pki, cert=None, key=None, chain=None, ca=None, server_name_check=False):
    """A client SSLContext trusting pki's roots (or `ca`), with an optional
    client certificate (cert file may be a leaf+intermediate chain file)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = server_name_check
    ctx.load_verify_locations(ca or pki.roots)
    if cert:
        ctx.load_cert_chain(chain or cert, key)
    return ctx


def tls_connect(ctx, host, port, server_hostname="localhost", timeout=10.0):
    """A TLS client connection, handshake done."""
    raw = socket.create_connection((host, port), timeout=timeout)
    try:
        return ctx.wrap_socket(raw, server_hostname=server_hostname)
    except Exception:
        raw.close()
        raise


class SClient:
    """`openssl s_client` as a subprocess with pipes: write to it, read what
    the server sent, close stdin, collect exit status and output."""

    def __init__(self, host, port, args=(), pki=None, cert=None, key=None, chain=None,
                 ca=None):
        cmd = ["openssl", "s_client", "-connect", hostport(host, port), "-no_ign_eof",
               "-servername", "localhost"]
        if pki is not None or ca:
            cmd += ["-CAfile", ca or pki.roots]
        if cert:
            cmd += ["-cert", cert, "-key", key]
        if chain:
            cmd += ["-cert_chain", chain]
        cmd += list(args)
        self.cmd = cmd
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.out = bytearray()

    def send(self, data):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def read_until(self, needle, timeout=10.0):
        """Collect stdout until `needle` appears; True if it did, False on EOF
        or timeout."""
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while needle not in self.out:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                return False
            chunk = os.read(fd, 65536)
            if not chunk:
                return False
            self.out += chunk
        return True

    def finish(self, timeout=15.0):
        """Close stdin, wait for exit; returns (rc, stdout, stderr)."""
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        self.proc.stdin = None  # communicate() must not flush it again
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        self.out += out
        return self.proc.returncode, bytes(self.out), err

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


def s_client_once(host, port, data=b"hello\n", timeout=15.0, **kw):
    """Run s_client, send `data`, close stdin, wait for exit.
    Returns (rc, stdout, stderr)."""
    c = SClient(host, port, **kw)
    try:
        c.send(data)
    except BrokenPipeError:
        pass
    return c.finish(timeout)
