#!/usr/bin/env python3
"""bench/failover.py - the `failover` scenario (issue 11): a steady stream of
new short mTLS connections (a 1 KiB DICOM-sized request, its echo as the
response) through a proxy whose upstream pool has a primary and a backup;
the primary is killed (-9), restarted, then stopped (SIGSTOP: it accepts and
never answers). Run against zonegate (pool + passive failover + tcp health
checks) and HAProxy (`option redispatch`, `retries`, health checks) with the
same timings, then the CPU cost of tcp-checking 104 endpoints.

    bench/failover.py --zonegate build-bench/zonegate [--rate 200] [--rounds 3] [--out DIR]

Everything listens on 127.0.0.1; every loop is bounded in count and time.
Prints one Markdown table (also OUT/failover.md); not a test.
"""
import argparse
import calendar
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ECHO = r"""
import socket, sys, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1024)
def serve(c):
    try:
        c.settimeout(10)
        while True:
            d = c.recv(65536)
            if not d: break
            c.sendall(d)
    except OSError: pass
    finally: c.close()
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
"""
SINKS = r"""
import selectors, socket, sys
sel = selectors.DefaultSelector(); socks = []
for p in sys.argv[1:]:
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", int(p))); s.listen(64); s.setblocking(False)
    sel.register(s, selectors.EVENT_READ); socks.append(s)
while True:
    for k, _ in sel.select():
        try: c, _ = k.fileobj.accept(); c.close()
        except OSError: pass
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def echo(port):
    p = subprocess.Popen([sys.executable, "-c", ECHO, str(port)])
    wait_port(port)
    return p


def zonegate(args, work, pki, port, prim, back):
    conf = work / "zonegate-failover.conf"
    conf.write_text(f"""[gateway]
name = bench
workers = 1
log_level = info
connect_timeout = 1s

[tls]
profile = cryptrec-high
certificate = {pki}/server-chain.pem
key = {pki}/server.key
trust_anchors = {pki}/root.pem

[route bench]
mode = unwrap
listen = 127.0.0.1:{port}
connect = 127.0.0.1:{prim}, 127.0.0.1:{back} backup
hold_down = 1s
health_check = tcp
health_interval = 500ms
health_timeout = 400ms
health_rise = 2
health_fall = 2
""")
    os.chmod(conf, 0o600)
    log = open(work / "zonegate-failover.log", "w")
    p = subprocess.Popen([args.zonegate, "run", "-c", str(conf)], stderr=log)
    wait_port(port)
    return p


def haproxy(work, pki, port, prim, back):
    cfg = work / "haproxy-failover.cfg"
    cfg.write_text(f"""global
	nbthread 1
defaults
	mode tcp
	timeout connect 1s
	timeout client 30s
	timeout server 30s
	retries 3
	option redispatch
frontend tls_in
	bind 127.0.0.1:{port} ssl crt {pki}/server-combined.pem ca-file {pki}/root.pem verify required
	default_backend pool
backend pool
	server p 127.0.0.1:{prim} check inter 500 fall 2 rise 2
	server b 127.0.0.1:{back} check inter 500 fall 2 rise 2 backup
""")
    log = open(work / "haproxy-failover.log", "w")
    p = subprocess.Popen(["haproxy", "-db", "-f", str(cfg)], stdout=log, stderr=log)
    wait_port(port)
    return p


class Load:
    """Open `rate` connections a second from a few threads until stopped;
    each sends 1 KiB and reads it back. Records (t, ok, latency)."""

    def __init__(self, port, pki, rate, threads=8):
        self.port, self.rate = port, rate
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.ctx.check_hostname = False
        self.ctx.load_verify_locations(f"{pki}/root.pem")
        self.ctx.load_cert_chain(f"{pki}/client-chain.pem", f"{pki}/client.key")
        self.results = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.t0 = time.monotonic()
        self.threads = [threading.Thread(target=self.run, args=(i, threads), daemon=True)
                        for i in range(threads)]

    def one(self):
        payload = os.urandom(1024)
        with socket.create_connection(("127.0.0.1", self.port), timeout=3) as raw:
            with self.ctx.wrap_socket(raw, server_hostname="localhost") as s:
                s.sendall(payload)
                got = b""
                while len(got) < len(payload):
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    got += chunk
        return got == payload

    def run(self, i, n):
        period = n / self.rate
        nxt = time.monotonic() + i * period / n
        while not self.stop.is_set():
            now = time.monotonic()
            if now < nxt:
                time.sleep(nxt - now)
            nxt += period
            t = time.monotonic()
            try:
                ok = self.one()
            except (OSError, ssl.SSLError):
                ok = False
            with self.lock:
                self.results.append((t - self.t0, ok, time.monotonic() - t))

    def start(self):
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(10)


def window(results, a, b):
    return [r for r in results if a <= r[0] < b]


def recovery(results, t_fault, t_end):
    """(failed, seconds until every later connection succeeded)."""
    w = sorted(window(results, t_fault, t_end))
    failed = [r for r in w if not r[1]]
    if not failed:
        return 0, 0.0
    return len(failed), failed[-1][0] - t_fault


def scenario(name, start_proxy, args, work, pki):
    port, prim_p, back_p = free_port(), free_port(), free_port()
    prim, back = echo(prim_p), echo(back_p)
    proxy = start_proxy(work, pki, port, prim_p, back_p)
    load = Load(port, pki, args.rate)
    row = {"proxy": name}
    try:
        ph = args.phase
        load.start()
        time.sleep(ph / 2)
        t_kill = time.monotonic() - load.t0
        prim.kill()                              # primary killed (-9): refuses
        time.sleep(ph)
        t_restart = time.monotonic() - load.t0
        restart_wall = time.time()
        prim = echo(prim_p)                      # primary back
        time.sleep(ph)
        t_stop = time.monotonic() - load.t0
        prim.send_signal(signal.SIGSTOP)         # accepts, never answers
        time.sleep(ph * 4 / 3)
        t_end = time.monotonic() - load.t0
        load.finish()
        row["connections"] = len(load.results)
        row["kill_failed"], row["kill_recover_s"] = recovery(load.results, t_kill, t_restart)
        row["stop_failed"], row["stop_recover_s"] = recovery(load.results, t_stop, t_end)
        row["total_failed"] = sum(1 for r in load.results if not r[1])
        row["back_to_primary_s"] = back_to_primary(name, work, restart_wall)
    finally:
        load.finish()
        for p in (prim, back, proxy):
            try:
                p.send_signal(signal.SIGCONT)
            except ProcessLookupError:
                pass
            p.kill()
            p.wait(10)
    return row


def back_to_primary(name, work, restart_wall):
    """zonegate: seconds from the primary's restart to its event=upstream_up
    (the log's wall-clock ts)."""
    if name != "zonegate":
        return None
    for line in (work / "zonegate-failover.log").read_text().splitlines():
        if "event=upstream_up" in line:
            ts = line.split()[0].split("=", 1)[1]
            t = calendar.timegm(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S"))
            t += float("0." + ts[20:23])
            if t >= restart_wall - 0.5:
                return t - restart_wall
    return None


def check_cost(args, work, pki):
    """CPU of health-checking 104 endpoints (13 routes x 8 members, tcp,
    every 2 s) for 30 s of an otherwise idle zonegate."""
    ports = [free_port() for _ in range(104)]
    sinks = subprocess.Popen([sys.executable, "-c", SINKS, *map(str, ports)])
    time.sleep(1)
    routes = []
    for r in range(13):
        members = ", ".join(f"127.0.0.1:{p}" for p in ports[r * 8:(r + 1) * 8])
        routes.append(f"""[route r{r}]
mode = unwrap
listen = 127.0.0.1:{free_port()}
connect = {members}
health_check = tcp
health_interval = 2s
""")
    conf = work / "zonegate-checks.conf"
    conf.write_text(f"""[gateway]
name = bench
workers = 1
log_level = info

[tls]
certificate = {pki}/server-chain.pem
key = {pki}/server.key
trust_anchors = {pki}/root.pem

""" + "\n".join(routes))
    os.chmod(conf, 0o600)
    zg = subprocess.Popen([args.zonegate, "run", "-c", str(conf)],
                          stderr=open(work / "zonegate-checks.log", "w"))
    try:
        time.sleep(3)
        tick = os.sysconf("SC_CLK_TCK")

        def cpu():
            f = Path(f"/proc/{zg.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(f[11]) + int(f[12])) / tick

        c0, t0 = cpu(), time.monotonic()
        time.sleep(args.phase * 5)
        c1, t1 = cpu(), time.monotonic()
        return 100.0 * (c1 - c0) / (t1 - t0)
    finally:
        zg.kill()
        zg.wait(10)
        sinks.kill()
        sinks.wait(10)


def spread(values):
    """'median [min-max]' of the numbers in @values ('-' for none)."""
    v = sorted(x for x in values if x is not None)
    if not v:
        return "-"
    med = v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2
    fmt = (lambda x: f"{x:.2f}") if any(isinstance(x, float) for x in v) else str
    return fmt(med) if len(v) == 1 else f"{fmt(med)} [{fmt(v[0])}-{fmt(v[-1])}]"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--zonegate", required=True)
    ap.add_argument("--rate", type=int, default=200)
    ap.add_argument("--out", default=None)
    ap.add_argument("--phase", type=float, default=6.0,
                    help="seconds per fault phase (the CPU sample takes 5 x this)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="interleaved rounds (zonegate, HAProxy, zonegate, ...); "
                         "figures are medians [min-max]")
    args = ap.parse_args()
    work = Path(args.out or f"build-bench/failover-{int(time.time())}")
    work.mkdir(parents=True, exist_ok=True)
    pki_root = work / "pki"
    subprocess.run([str(HERE / "mkcerts.sh"), str(pki_root)], check=True,
                   stdout=subprocess.DEVNULL)
    pki = pki_root / "ec"
    runs = {"zonegate": [], "haproxy": []}
    costs = []
    for r in range(args.rounds):
        rw = work / f"round-{r + 1}"
        rw.mkdir(exist_ok=True)
        runs["zonegate"].append(scenario(
            "zonegate", lambda w, k, p, a, b: zonegate(args, w, k, p, a, b), args, rw, pki))
        runs["haproxy"].append(scenario("haproxy", haproxy, args, rw, pki))
        costs.append(check_cost(args, rw, pki))
    keys = ["connections", "kill_failed", "kill_recover_s", "stop_failed", "stop_recover_s",
            "total_failed"]
    out = [f"failover scenario, {args.rate} new mTLS connections/s, 1 KiB request + echo, "
           f"{args.rounds} round(s): median [min-max]",
           "", "| proxy | connections | failed: primary killed | recovered after (s) | "
           "failed: primary stopped | recovered after (s) | failed in all |",
           "|---|---|---|---|---|---|---|"]
    for proxy, rows in runs.items():
        out.append(f"| {proxy} | " + " | ".join(spread([row[k] for row in rows]) for k in keys)
                   + " |")
    for proxy, rows in runs.items():
        back = [row["back_to_primary_s"] for row in rows]
        if any(b is not None for b in back):
            out.append(f"\n{proxy}: primary back in the pool {spread(back)} s after it listened "
                       "again (event=upstream_up)")
    out += ["", f"zonegate CPU, 104 endpoints tcp-checked every 2 s, idle otherwise: "
                f"{spread(costs)} % of one core"]
    text = "\n".join(out) + "\n"
    (work / "failover.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
