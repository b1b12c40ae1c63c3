#!/usr/bin/env python3
"""bench/inspect.py - what DICOM inspection costs (issue 14): one zonegate
with two unwrap routes to the same storescp, identical but for
`inspect = dicom` on one, measured side by side in the same run:

- bulk: storescu (+tls, DCMTK) sends a 100 MB Secondary Capture object
  (--objects times per run, one association) into storescp --ignore.
  Figure: the gateway's CPU seconds per GB (10^9 bytes of object).
- burst: 1,000 associations one after the other, each a resumed mTLS
  connection, A-ASSOCIATE-RQ (echoscu's, recorded), one C-ECHO, A-RELEASE.
  Figures: the gateway's CPU µs per association, and the client's wall
  time per association (median over the burst).

CPU is utime + stime of the gateway's process tree (its workers and the key
process) from /proc/PID/stat, before and after each run once it is quiet.
The routes take turns within each round and the order flips every round,
so a disturbance on a shared machine spreads over both. zonegate is pinned
to CPU 0, storescp and the clients to CPU 1.

    bench/inspect.py --zonegate build-bench/zonegate [--rounds 5] [--out DIR]
    bench/inspect.py --zonegate build-bench/zonegate --callgrind [--associations 200]

--callgrind runs the gateway under valgrind's callgrind and counts its
instructions per phase instead (callgrind_control --dump between phases):
one round, each route's bulk and burst alone in a dump. Instruction counts
do not depend on what else the machine runs, so they resolve differences
that CPU time on a shared machine cannot.

Everything listens on 127.0.0.1; prints one Markdown table (also
OUT/inspect.md); not a test.
"""
import argparse
import os
import socket
import ssl
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE.parent / "tests" / "fuzz" / "corpus" / "dicom_ul" / "dcmtk_echo"
TICK = os.sysconf("SC_CLK_TCK")
SC_STORAGE = b"1.2.840.10008.5.1.4.1.1.7"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=15):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def tree(pid):
    out = [pid]
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        kids = []
    for k in kids:
        out += tree(int(k))
    return out


def cpu_s(pid):
    """utime + stime of @pid's process tree, in seconds."""
    t = 0
    for p in tree(pid):
        try:
            f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        t += int(f[11]) + int(f[12])
    return t / TICK


def cpu_ns(pid):
    """The same to the nanosecond: sum_exec_runtime of every thread of the
    tree (/proc/PID/task/TID/schedstat); threads live as long as the gateway."""
    t = 0
    for p in tree(pid):
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                t += int((task / "schedstat").read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
    return t / 1e9


def settle(pid):
    """Wait until the gateway stops burning CPU (its tail work), then read
    it: (stat seconds, schedstat seconds)."""
    a = cpu_s(pid)
    for _ in range(30):
        time.sleep(0.2)
        b = cpu_s(pid)
        if b == a:
            break
        a = b
    return a, cpu_ns(pid)


def elem(group, el, vr, value):
    """One explicit-VR little-endian element, value padded to even length."""
    if len(value) % 2:
        value += b"\0" if vr in (b"UI", b"OB") else b" "
    if vr in (b"OB", b"OW", b"UN", b"SQ", b"UT"):
        return struct.pack("<HH", group, el) + vr + b"\0\0" + struct.pack("<I", len(value)) + value
    return struct.pack("<HH", group, el) + vr + struct.pack("<H", len(value)) + value


def make_object(path, size):
    """A Secondary Capture object of @size bytes of 8-bit pixels (rows x
    10000 columns), explicit VR little endian, written in pieces."""
    rows = size // 10000
    iuid = b"1.2.826.0.1.3680043.9.7433.1.100"
    meta = (elem(2, 1, b"OB", b"\0\1") + elem(2, 2, b"UI", SC_STORAGE) + elem(2, 3, b"UI", iuid) +
            elem(2, 0x10, b"UI", b"1.2.840.10008.1.2.1") + elem(2, 0x12, b"UI", b"1.2.826.0.1.3680043.9.7433"))
    head = b"\0" * 128 + b"DICM" + elem(2, 0, b"UL", struct.pack("<I", len(meta))) + meta
    ds = (elem(8, 0x16, b"UI", SC_STORAGE) + elem(8, 0x18, b"UI", iuid) + elem(8, 0x60, b"CS", b"OT") +
          elem(0x10, 0x10, b"PN", b"Bench^Patient") + elem(0x10, 0x20, b"LO", b"ZGB0001") +
          elem(0x20, 0xd, b"UI", b"1.2.826.0.1.3680043.9.7433.2.100") +
          elem(0x20, 0xe, b"UI", b"1.2.826.0.1.3680043.9.7433.3.100") +
          elem(0x28, 2, b"US", struct.pack("<H", 1)) + elem(0x28, 4, b"CS", b"MONOCHROME2") +
          elem(0x28, 0x10, b"US", struct.pack("<H", rows)) + elem(0x28, 0x11, b"US", struct.pack("<H", 10000)) +
          elem(0x28, 0x100, b"US", struct.pack("<H", 8)) + elem(0x28, 0x101, b"US", struct.pack("<H", 8)) +
          elem(0x28, 0x102, b"US", struct.pack("<H", 7)) + elem(0x28, 0x103, b"US", struct.pack("<H", 0)))
    n = rows * 10000
    with open(path, "wb") as f:
        f.write(head + ds + struct.pack("<HH", 0x7fe0, 0x10) + b"OB\0\0" + struct.pack("<I", n))
        block = bytes(range(256)) * 4096
        left = n
        while left:
            k = min(left, len(block))
            f.write(block[:k])
            left -= k
    return n


def zonegate_conf(work, pki, p_insp, p_blind, p_scp):
    conf = work / "zonegate-inspect.conf"
    conf.write_text(f"""[gateway]
name = bench
workers = 1
log_level = info

[tls]
profile = cryptrec-high
certificate = {pki}/server-chain.pem
key = {pki}/server.key
trust_anchors = {pki}/root.pem
verify_depth = 4

[route inspecting]
mode = unwrap
listen = 127.0.0.1:{p_insp}
connect = 127.0.0.1:{p_scp}
inspect = dicom
dicom_called_ae = PACS

[route blind]
mode = unwrap
listen = 127.0.0.1:{p_blind}
connect = 127.0.0.1:{p_scp}
""")
    os.chmod(conf, 0o600)
    return conf


class Echoer:
    """Associations over resumed mTLS: echoscu's recorded request (called
    AE PACS), its C-ECHO-RQ and A-RELEASE-RQ, each answer read in full."""

    def __init__(self, pki):
        rec = CORPUS.read_bytes()
        plen = struct.unpack(">I", rec[2:6])[0]
        rq = rec[:6 + plen]
        self.rq = rq[:10] + b"PACS".ljust(16) + b"BENCH".ljust(16) + rq[42:]
        rest = rec[6 + plen:]
        dlen = struct.unpack(">I", rest[2:6])[0]
        self.echo, self.release = rest[:6 + dlen], rest[6 + dlen:]
        assert self.echo[0] == 4 and self.release[:2] == b"\x05\x00", "corpus layout"
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.ctx.check_hostname = False
        self.ctx.load_verify_locations(f"{pki}/root.pem")
        self.ctx.load_cert_chain(f"{pki}/client-chain.pem", f"{pki}/client.key")
        self.session = {}

    @staticmethod
    def pdu(s):
        h = b""
        while len(h) < 6:
            d = s.recv(6 - len(h))
            if not d:
                raise RuntimeError("closed")
            h += d
        n = struct.unpack(">I", h[2:6])[0]
        body = b""
        while len(body) < n:
            d = s.recv(n - len(body))
            if not d:
                raise RuntimeError("closed")
            body += d
        return h[0]

    def one(self, port):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.ctx.wrap_socket(raw, session=self.session.get(port)) as s:
                t = time.perf_counter()
                s.sendall(self.rq)
                assert self.pdu(s) == 2, "A-ASSOCIATE-AC"
                t = time.perf_counter() - t
                s.sendall(self.echo)
                assert self.pdu(s) == 4, "C-ECHO-RSP"
                s.sendall(self.release)
                assert self.pdu(s) == 6, "A-RELEASE-RP"
                reused = s.session_reused
                self.session[port] = s.session  # TLS 1.3 tickets are single-use
                # close_notify: OpenSSL keeps no session of a truncated connection
                s.unwrap()
                return reused, t

    def burst(self, port, n):
        """(wall seconds of each association, of each RQ -> AC, resumed count)."""
        walls, rqac, resumed = [], [], 0
        for _ in range(n):
            t = time.perf_counter()
            r, a = self.one(port)
            walls.append(time.perf_counter() - t)
            rqac.append(a)
            resumed += r
        return walls, rqac, resumed


# DCMTK leaves Nagle on unless told: every association would wait ~40 ms for
# delayed ACKs (measured: 44 ms against 0.11 ms per C-ECHO association)
DCMTK_ENV = dict(os.environ, TCP_NODELAY="1")


def store(args, pki, port, obj):
    cp = subprocess.run(["taskset", "-c", "1", "storescu", "+tls", f"{pki}/client.key",
                         f"{pki}/client-chain.pem", "+cf", f"{pki}/root.pem", "-R", "-aet", "BENCH",
                         "-aec", "PACS", "127.0.0.1", str(port)] + [str(obj)] * args.objects,
                        capture_output=True, text=True, timeout=600, env=DCMTK_ENV)
    if cp.returncode != 0:
        raise RuntimeError(f"storescu: {cp.stdout}{cp.stderr}")


def callgrind_dump(pid, work, label):
    """Instructions the gateway executed since the last dump (its
    `summary:`), via callgrind_control; the dump file is kept in @work."""
    before = set(work.glob("cg.out*"))
    subprocess.run(["callgrind_control", "--dump=" + label, str(pid)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
    for _ in range(600):
        new = [f for f in set(work.glob("cg.out*")) - before if f.stat().st_size > 0]
        if new:
            for line in new[0].read_text(errors="replace").splitlines():
                if line.startswith(("summary:", "totals:")):
                    return int(line.split()[1])
        time.sleep(0.1)
    raise RuntimeError("no callgrind dump for " + label)


def counted(args, work, pki, obj, pixels, zg, routes, ech):
    """--callgrind: each route's bulk and burst alone in a dump."""
    out = {}
    for name, port in routes.items():
        settle(zg.pid)
        callgrind_dump(zg.pid, work, "idle")
        store(args, pki, port, obj)
        settle(zg.pid)
        bulk = callgrind_dump(zg.pid, work, "bulk")
        ech.burst(port, args.associations)
        settle(zg.pid)
        burst = callgrind_dump(zg.pid, work, "burst")
        out[name] = (bulk / (pixels * args.objects), burst / args.associations)
        print(f"{name}: {out[name][0]:.4f} instructions/byte, {out[name][1]:.0f} per association",
              file=sys.stderr)
    a, b = out["inspect = dicom"], out["none"]
    lines = [f"instructions executed by the gateway (callgrind), {args.objects} x {args.size / 1e6:.0f} MB "
             f"C-STORE and {args.associations} associations per route", "",
             "| route | instructions per byte of object | instructions per association |", "|---|---|---|"]
    for name, (x, y) in out.items():
        lines.append(f"| {name} | {x:.4f} | {y:,.0f} |")
    lines.append(f"| inspect - none | {100 * (a[0] - b[0]) / b[0]:+.3f} % | {a[1] - b[1]:+,.0f} "
                 f"({100 * (a[1] - b[1]) / b[1]:+.2f} %) |")
    return "\n".join(lines) + "\n"


def med(xs):
    return statistics.median(xs), min(xs), max(xs)


def fmt(t, unit="", digits=1):
    m, lo, hi = t
    return f"{m:.{digits}f}{unit} [{lo:.{digits}f}–{hi:.{digits}f}]"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--zonegate", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--associations", type=int, default=1000)
    ap.add_argument("--objects", type=int, default=4, help="100 MB objects per bulk run")
    ap.add_argument("--size", type=int, default=100_000_000)
    ap.add_argument("--out", default=None)
    ap.add_argument("--callgrind", action="store_true")
    args = ap.parse_args()
    work = Path(args.out or f"build-bench/inspect-{int(time.time())}")
    work.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(HERE / "mkcerts.sh"), str(work / "pki")], check=True, stdout=subprocess.DEVNULL)
    pki = work / "pki" / "ec"
    obj = work / "object.dcm"
    pixels = make_object(obj, args.size)
    p_insp, p_blind, p_scp = free_port(), free_port(), free_port()
    scp = subprocess.Popen(["taskset", "-c", "1", "storescp", "--ignore", "-aet", "PACS", str(p_scp)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=DCMTK_ENV)
    conf = zonegate_conf(work, pki, p_insp, p_blind, p_scp)
    wrap = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={work}/cg.out",
            "--dump-instr=no"] if args.callgrind else []
    zg = subprocess.Popen(["taskset", "-c", "0"] + wrap + [args.zonegate, "run", "-c", str(conf)],
                          stderr=open(work / "zonegate-inspect.log", "w"))
    routes = {"inspect = dicom": p_insp, "none": p_blind}
    res = {r: {"gb": [], "gb_ns": [], "assoc_cpu": [], "assoc_ns": [], "assoc_wall": [], "rqac_p50": [],
               "rqac_p10": [], "resumed": 0}
           for r in routes}
    try:
        wait_port(p_scp)
        wait_port(p_insp, timeout=120)
        wait_port(p_blind, timeout=120)
        os.sched_setaffinity(0, {1})
        ech = Echoer(pki)
        for port in routes.values():  # warm-up: sessions, caches, page cache
            ech.burst(port, 50)
            store(args, pki, port, obj)
        if args.callgrind:
            text = counted(args, work, pki, obj, pixels, zg, routes, ech)
            (work / "inspect-callgrind.md").write_text(text)
            print(text)
            return
        for rnd in range(args.rounds):
            order = list(routes.items())
            if rnd % 2:
                order.reverse()
            for name, port in order:
                c0 = settle(zg.pid)
                store(args, pki, port, obj)
                c1 = settle(zg.pid)
                gb = pixels * args.objects / 1e9
                res[name]["gb"].append((c1[0] - c0[0]) / gb)
                res[name]["gb_ns"].append((c1[1] - c0[1]) / gb)
                walls, rqac, resumed = ech.burst(port, args.associations)
                c2 = settle(zg.pid)
                res[name]["rqac_p50"].append(statistics.median(rqac) * 1e6)
                res[name]["rqac_p10"].append(statistics.quantiles(rqac, n=10)[0] * 1e6)
                res[name]["assoc_cpu"].append((c2[0] - c1[0]) / args.associations * 1e6)
                res[name]["assoc_ns"].append((c2[1] - c1[1]) / args.associations * 1e6)
                res[name]["assoc_wall"].append(statistics.median(walls) * 1e6)
                res[name]["resumed"] += resumed
                print(f"round {rnd + 1} {name}: {res[name]['gb'][-1]:.3f} s/GB "
                      f"({res[name]['gb_ns'][-1]:.3f}), {res[name]['assoc_cpu'][-1]:.0f} µs CPU/assoc "
                      f"({res[name]['assoc_ns'][-1]:.1f}), "
                      f"{res[name]['assoc_wall'][-1]:.0f} µs wall/assoc", file=sys.stderr)
    finally:
        zg.terminate()
        zg.wait(20)
        scp.kill()
        scp.wait(10)
    a, b = res["inspect = dicom"], res["none"]
    # paired per round: the same round's conditions for both routes
    d_gb = [100.0 * (x - y) / y for x, y in zip(a["gb"], b["gb"])]
    d_gb_ns = [100.0 * (x - y) / y for x, y in zip(a["gb_ns"], b["gb_ns"])]
    d_cpu = [x - y for x, y in zip(a["assoc_cpu"], b["assoc_cpu"])]
    d_ns = [x - y for x, y in zip(a["assoc_ns"], b["assoc_ns"])]
    d_wall = [x - y for x, y in zip(a["assoc_wall"], b["assoc_wall"])]
    d_p50 = [x - y for x, y in zip(a["rqac_p50"], b["rqac_p50"])]
    d_p10 = [x - y for x, y in zip(a["rqac_p10"], b["rqac_p10"])]
    n_assoc = args.rounds * args.associations
    out = [f"DICOM inspection cost, {args.rounds} interleaved rounds; median [min–max] over rounds",
           f"bulk: {args.objects} x {args.size / 1e6:.0f} MB C-STORE per run (storescu +tls, one association); "
           f"burst: {args.associations} associations per run (resumed mTLS, C-ECHO, release)", "",
           "CPU from /proc/PID/stat (10 ms ticks) and, in brackets below it, from schedstat (ns)", "",
           "| route | CPU s per GB | (schedstat) | CPU µs per association | (schedstat) "
           "| wall µs per association (median of burst) | resumed |", "|---|---|---|---|---|---|---|"]
    for name, r in res.items():
        out.append(f"| {name} | {fmt(med(r['gb']), digits=3)} | {fmt(med(r['gb_ns']), digits=3)} | "
                   f"{fmt(med(r['assoc_cpu']), digits=0)} | {fmt(med(r['assoc_ns']), digits=1)} | "
                   f"{fmt(med(r['assoc_wall']), digits=0)} | {r['resumed']}/{n_assoc} |")
    out.append(f"| inspect - none (paired per round) | {fmt(med(d_gb), ' %', 2)} | {fmt(med(d_gb_ns), ' %', 2)} | "
               f"{fmt(med(d_cpu), ' µs', 1)} | {fmt(med(d_ns), ' µs', 1)} | {fmt(med(d_wall), ' µs', 1)} | |")
    out += ["", "A-ASSOCIATE-RQ sent -> A-ASSOCIATE-AC read, µs (per round: median and 10th percentile "
            "of the burst; then median [min-max] over rounds)", "",
            "| route | RQ -> AC median | RQ -> AC p10 |", "|---|---|---|"]
    for name, r in res.items():
        out.append(f"| {name} | {fmt(med(r['rqac_p50']), digits=0)} | {fmt(med(r['rqac_p10']), digits=0)} |")
    out.append(f"| inspect - none (paired per round) | {fmt(med(d_p50), ' µs', 1)} | {fmt(med(d_p10), ' µs', 1)} |")
    text = "\n".join(out) + "\n"
    (work / "inspect.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
