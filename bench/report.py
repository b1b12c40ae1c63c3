#!/usr/bin/python3
"""report.py OUTDIR [MOREDIR...] - turn bench/run.sh results into Markdown tables.

Figures in each MOREDIR (e.g. a later `run.sh --proxies zonegate --scenarios idle`)
replace the figures of the same scenario, proxy, variant and metric in OUTDIR.

Reads OUTDIR/results.tsv (scenario, proxy, variant, metric, value; one line per
run), speed.txt (openssl speed), inproc.txt (bench/inproc) and meta.tsv.
Every cell is the median of the runs, with [min-max] when there were several.
"zonegate / best peer" divides zonegate's median by the best peer median
(lowest cost); "zonegate / floor" divides it by the crypto floor.
"""
import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path

PEERS = ["stunnel", "haproxy", "nginx", "hitch"]
ORDER = ["zonegate"] + PEERS


def link_order(p):
    """zonegate's stormlink rows first (classes, unshaped, unshaped-150), then the peers."""
    base = p.split("-unshaped")[0].split("-dscp")[0]
    return (not base.startswith("zonegate"), base, p.endswith("-dscp"), p.endswith("-150"), p)


def load(out):
    res = defaultdict(list)
    f = out / "results.tsv"
    if f.exists():
        for line in f.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) != 5:
                continue
            try:
                res[tuple(parts[:4])].append(float(parts[4]))
            except ValueError:
                pass
    return res


def speed(out):
    s = {}
    f = out / "speed.txt"
    if not f.exists():
        return s
    for line in f.read_text().splitlines():
        nums = re.findall(r"[0-9]+\.[0-9]+k?|[0-9]+", line)
        if line.startswith("rsa 2048 bits") and len(nums) >= 2:
            s["rsa_sign"], s["rsa_verify"] = float(nums[-2]), float(nums[-1])
        elif "ecdsa (nistp256)" in line:
            s["ecdsa_sign"], s["ecdsa_verify"] = float(nums[-2]), float(nums[-1])
        elif "ecdh (X25519)" in line:
            s["x25519"] = float(nums[-1])
        elif "ecdh (nistp256)" in line:
            s["ecdhp256"] = float(nums[-1])
        elif re.match(r"(?i)^aes-(128|256)-gcm\s", line):
            k = "aes128" if "128" in line.split()[0] else "aes256"
            s[k] = float(nums[-1].rstrip("k")) * 1000.0
    return s


def inproc(out):
    r = {}
    f = out / "inproc.txt"
    if not f.exists():
        return r
    for line in f.read_text().splitlines():
        kv = dict(x.split("=", 1) for x in line.split()[1:] if "=" in x)
        r[(kv["type"], kv["tls"], kv["mode"])] = kv
    return r


def meta(out):
    m = {}
    f = out / "meta.tsv"
    if f.exists():
        for line in f.read_text().splitlines():
            if "\t" in line:
                k, v = line.split("\t", 1)
                m[k] = v
    return m


def med(vals):
    return statistics.median(vals) if vals else None


def cell(vals, fmt):
    if not vals:
        return "—"
    m = med(vals)
    if len(vals) > 1 and fmt(min(vals)) != fmt(max(vals)):
        return f"{fmt(m)} [{fmt(min(vals))}–{fmt(max(vals))}]"
    return fmt(m)


def f0(x):
    return f"{x:,.0f}"


def f1(x):
    return f"{x:,.1f}"


def f2(x):
    return f"{x:,.2f}"


def f3(x):
    return f"{x:,.3f}"


def ratio(a, b):
    if a is None or not b:
        return "—"
    return f"{a / b:.2f}×"


class Table:
    def __init__(self, res, scen, metric, variants, fmt):
        self.res, self.scen, self.metric, self.variants, self.fmt = res, scen, metric, variants, fmt

    def vals(self, proxy, v):
        return self.res.get((self.scen, proxy, v, self.metric), [])

    def best_peer(self, v):
        best = None
        for p in PEERS:
            m = med(self.vals(p, v))
            if m is not None and (best is None or m < best[1]):
                best = (p, m)
        return best

    def rows(self, refs, floor=None, lower_is_better=True):
        lines = []
        for p in ORDER:
            if p not in ["zonegate"] + PEERS and not any(self.vals(p, v) for v in self.variants):
                continue
            lines.append([p] + [cell(self.vals(p, v), self.fmt) for v in self.variants])
        bp = [self.best_peer(v) for v in self.variants]
        lines.append(["best peer"] + [f"{self.fmt(b[1])} ({b[0]})" if b else "—" for b in bp])
        zg = [med(self.vals("zonegate", v)) for v in self.variants]
        lines.append(["**zonegate / best peer**"] +
                     [f"**{ratio(z, b[1] if b else None)}**" for z, b in zip(zg, bp)])
        for name, getter in refs:
            lines.append([name] + [getter(v) for v in self.variants])
        if floor:
            fl = [floor(v) for v in self.variants]
            lines.append(["crypto floor (openssl speed)"] + [self.fmt(x) if x is not None else "—" for x in fl])
            lines.append(["zonegate / floor"] + [ratio(z, x) if x else "—" for z, x in zip(zg, fl)])
        return lines


def md(header, lines):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for l in lines:
        out.append("| " + " | ".join(l) + " |")
    return "\n".join(out)


VNAME = {"ec-1.2": "ECDSA P-256, TLS 1.2", "ec-1.3": "ECDSA P-256, TLS 1.3",
         "rsa-1.2": "RSA-2048, TLS 1.2", "rsa-1.3": "RSA-2048, TLS 1.3"}


def zg_variants(res, names, variants):
    """Tables 1 and 2 for the zonegate variants of the run (zonegate-2w,
    zonegate-2p, zonegate-base ...), each also as a change against
    `zonegate` in the same run; and the switches per connection if recorded."""
    lines = []
    for scen, title in [("hs", "full"), ("resume", "resumed")]:
        for n in ["zonegate"] + names:
            row = [f"{n}, {title}"]
            for v in variants:
                c = cell(res.get((scen, n, v, "cpu_us"), []), f0)
                z, x = med(res.get((scen, "zonegate", v, "cpu_us"), [])), med(res.get((scen, n, v, "cpu_us"), []))
                if n != "zonegate" and z and x:
                    c += f" ({(x / z - 1) * 100:+.0f} %)"
                sw = med(res.get((scen, n, v, "switches_per_conn"), []))
                if sw is not None:
                    c += f"; {sw:.1f} sw"
                row.append(c)
            lines.append(row)
    return ("## 2b. zonegate variants in the same run: proxy CPU µs per connection (change against zonegate)\n\n" +
            md(["variant"] + [VNAME[v] for v in variants], lines) +
            "\n\nzonegate-1f: one worker free on CPUs 0-1; zonegate-2w: `workers = 2` on CPUs 0-1; zonegate-2p: two processes of one worker on one port, "
            "both on CPUs 0-1; zonegate-2ps: the same, one on CPU 0, one on CPU 1 (the load generator shares CPU 1 "
            "in all three). sw: context switches per connection over the proxy's threads, when recorded.\n")


def main():
    out = Path(sys.argv[1])
    res, sp, ip, mt = load(out), speed(out), inproc(out), meta(out)
    for more in sys.argv[2:]:
        res.update(load(Path(more)))
    # zonegate variants run beside it (zonegate-base, -nokp, ...) get rows too
    global ORDER
    ORDER = ["zonegate"] + sorted({k[1] for k in res if k[1].startswith("zonegate-")}) + PEERS
    variants = [v for v in ["ec-1.2", "ec-1.3", "rsa-1.2", "rsa-1.3"]
                if any(k[0] == "hs" and k[2] == v for k in res)]
    us = lambda rate: 1e6 / rate if rate else None  # noqa: E731

    def hs_floor(v):
        t = v.split("-")[0]
        try:
            if t == "ec":
                return us(sp["ecdsa_sign"]) + 3 * us(sp["ecdsa_verify"]) + 2 * us(sp["x25519"])
            return us(sp["rsa_sign"]) + 3 * us(sp["rsa_verify"]) + 2 * us(sp["x25519"])
        except KeyError:
            return None

    def rs_floor(v):
        if v.endswith("1.2"):
            return 0.0
        return 2 * us(sp["x25519"]) if "x25519" in sp else None

    def ipratio(scen, mode):
        def g(v):
            t, ver = v.split("-")
            r = ip.get((t, ver, mode))
            z = med(res.get((scen, "zonegate", v, "cpu_us"), []))
            return ratio(z, float(r["server_us"])) if r else "—"
        return g

    def ipget(mode, key="server_us"):
        def g(v):
            t, ver = v.split("-")
            r = ip.get((t, ver, mode))
            return f1(float(r[key])) if r else "—"
        return g

    print("# zonegate benchmark results\n")
    for k in ["date", "mode", "cpu", "kernel", "openssl", "zonegate", "stunnel4", "haproxy", "nginx", "hitch"]:
        if k in mt:
            print(f"- {k}: {mt[k]}")
    if sp:
        print(f"- openssl speed on CPU 0: ECDSA P-256 sign {us(sp.get('ecdsa_sign', 0)) or 0:.1f} µs, verify "
              f"{us(sp.get('ecdsa_verify', 0)) or 0:.1f} µs; RSA-2048 sign {us(sp.get('rsa_sign', 0)) or 0:.1f} µs, "
              f"verify {us(sp.get('rsa_verify', 0)) or 0:.1f} µs; X25519 {us(sp.get('x25519', 0)) or 0:.1f} µs, "
              f"P-256 ECDH {us(sp.get('ecdhp256', 0)) or 0:.1f} µs; AES-256-GCM "
              f"{sp.get('aes256', 0) / 1e9:.2f} GB/s, AES-128-GCM {sp.get('aes128', 0) / 1e9:.2f} GB/s (16 KiB blocks)")
    print()

    t = Table(res, "hs", "cpu_us", variants, f0)
    print("## 1. Full mTLS handshake + 100-byte echo: proxy CPU µs per connection\n")
    print(md(["proxy"] + [VNAME[v] for v in variants], t.rows(
        [("OpenSSL alone, in-process (server side)", ipget("full")),
         ("zonegate / OpenSSL alone", ipratio("hs", "full")),
         ("plain TCP relay, no TLS (kernel alone)",
          lambda v: cell(res.get(("hs", "relay", v, "cpu_us"), []), f0))],
        floor=hs_floor)))
    print("\nFloor = 1 signature + 3 verifications (client CertificateVerify, client leaf, "
          "intermediate) + 2 X25519 operations, from `openssl speed`.\n")

    if any(k[0] == "hsmany" for k in res):
        t = Table(res, "hsmany", "cpu_us", ["ec-1.3"], f0)
        print("## 1b. Full handshake, every connection a different client certificate: proxy CPU µs per connection\n")
        print(md(["proxy", VNAME["ec-1.3"]], t.rows(
            [("OpenSSL alone, in-process (server side, full verification)", ipget("full")),
             ("zonegate / OpenSSL alone", lambda v: ratio(med(res.get(("hsmany", "zonegate", v, "cpu_us"), [])),
                                                          float(ip[("ec", "1.3", "full")]["server_us"])
                                                          if ("ec", "1.3", "full") in ip else None))],
            floor=hs_floor)))
        print("\nA fresh proxy per run and as many distinct client leaves as connections: no verified-chain "
              "cache hit, every chain built and verified (table 1 is the returning-device case).\n")

    t = Table(res, "resume", "cpu_us", variants, f0)
    print("## 2. Resumed mTLS handshake + 100-byte echo: proxy CPU µs per connection\n")
    print(md(["proxy"] + [VNAME[v] for v in variants], t.rows(
        [("resumed share, zonegate / peers' median %",
          lambda v: f"{f0(med(res.get(('resume', 'zonegate', v, 'resumed_pct'), [0])))} / "
                    f"{f0(med([x for p in PEERS for x in res.get(('resume', p, v, 'resumed_pct'), [])] or [0]))}"),
         ("OpenSSL alone: server session cache", ipget("cache")),
         ("zonegate / OpenSSL alone with a session cache", ipratio("resume", "cache")),
         ("OpenSSL alone: stateless tickets", ipget("ticket"))],
        floor=rs_floor)))
    print("\nFloor: TLS 1.2 resumption needs no public-key operation; TLS 1.3 (psk_dhe_ke) needs 2 X25519 "
          "operations.\n")

    zv = sorted({k[1] for k in res if k[1].startswith("zonegate-") and k[0] in ("hs", "resume")})
    if zv:
        print(zg_variants(res, zv, variants))

    bv = [v for v in ("ec-1.3", "ec-1.3-down") if any(k[0] == "bulk" and k[2] == v for k in res)]
    t = Table(res, "bulk", "cpu_s_per_gb", bv, f3)
    aes = sp.get("aes256")
    bname = {"ec-1.3": "upload", "ec-1.3-down": "download"}
    print("## 3. Bulk one-way transfer (TLS 1.3, AES-256-GCM): proxy CPU seconds per GB\n")
    print(md(["proxy"] + [f"{bname[v]}: CPU s/GB" for v in bv] +
             [f"{bname[v]}: MB/s (load generator bound)" for v in bv],
             [r + [cell(res.get(("bulk", r[0], v, "mb_per_s"), []), f0) for v in bv]
              for r in t.rows([("plain TCP relay, no TLS (kernel alone)",
                                lambda v: cell(res.get(("bulk", "relay", v, "cpu_s_per_gb"), []), f3))],
                              floor=lambda v: 1.0 / (aes / 1e9) if aes else None)]))
    print("\nUpload: the client's bytes through the proxy to a sink; download: a source's bytes through the "
          "proxy to the client. Floor = AES-256-GCM at `openssl speed` rate (16 KiB records); "
          "the plain relay row is the system-call and copy cost on top.\n")

    levels = sorted({k[2] for k in res if k[0] == "idle"}, key=int)
    if levels:
        t = Table(res, "idle", "rss_kib_per_conn", levels, f2)
        print("## 4. Idle mTLS connections held: proxy RSS KiB per connection\n")
        ipb = [r for r in ip.values() if r["mode"] == "full" and r["tls"] == "1.3" and r["type"] == "ec"]
        print(md(["proxy"] + [f"{n} connections" for n in levels], t.rows(
            [("total RSS MiB at the largest level, zonegate",
              lambda v: cell(res.get(("idle", "zonegate", v, "rss_mib_total"), []), f1)),
             ("plain TCP relay, no TLS (kernel alone)",
              lambda v: cell(res.get(("idle", "relay", v, "rss_kib_per_conn"), []), f2)),
             ("one server SSL after handshake, buffers released (inproc)",
              lambda v: f2(float(ipb[0]["server_bytes"]) / 1024) if ipb else "—"),
             ("zonegate / one server SSL (the floor)",
              lambda v: ratio(med(res.get(("idle", "zonegate", v, "rss_kib_per_conn"), [])),
                              float(ipb[0]["server_bytes"]) / 1024 if ipb else None))])))
        print("\nRSS delta of the whole proxy process tree between before and after the connections "
              "are open, divided by their number (kernel socket buffers are not in RSS).\n")

    print("## 5. 1 KiB ping-pong (TLS 1.3): round-trip latency µs, p50 / p99\n")
    lines = []
    base = {c: (med(res.get(("pingpong", "direct", c, "p50_us"), [])),
                med(res.get(("pingpong", "direct", c, "p99_us"), []))) for c in ["c1", "c32"]}
    best = {}
    bestcpu = {}

    def cpu(p, c):  # schedstat (ns) where the run has it, else ticks
        return res.get(("pingpong", p, c, "sched_us_per_req")) or res.get(("pingpong", p, c, "cpu_us_per_req"), [])
    for p in ORDER + ["relay", "direct"]:
        if p not in ["zonegate"] + PEERS + ["relay", "direct"] and not any(k[:2] == ("pingpong", p) for k in res):
            continue
        row = [p]
        for c in ["c1", "c32"]:
            p50 = med(res.get(("pingpong", p, c, "p50_us"), []))
            p99 = med(res.get(("pingpong", p, c, "p99_us"), []))
            if p50 is None:
                row += ["—", "—", "—"]
                continue
            if p in PEERS and cpu(p, c) and (c not in bestcpu or med(cpu(p, c)) < bestcpu[c][1]):
                bestcpu[c] = (p, med(cpu(p, c)))
            b50, b99 = base[c]
            add50 = p50 - b50 if b50 is not None else None
            add99 = p99 - b99 if b99 is not None else None
            row += [f"{f0(p50)} / {f0(p99)}",
                    f"+{f0(add50)} / +{f0(add99)}" if add50 is not None and p != "direct" else "—",
                    cell(cpu(p, c), f1)]
            if p in PEERS and add50 is not None:
                cur = best.get(c)
                if cur is None or add50 < cur[1]:
                    best[c] = (p, add50, add99)
        lines.append(row)
    row = ["**zonegate added / best peer added (p50, p99)**"]
    for c in ["c1", "c32"]:
        z50 = med(res.get(("pingpong", "zonegate", c, "p50_us"), []))
        z99 = med(res.get(("pingpong", "zonegate", c, "p99_us"), []))
        b = best.get(c)
        if z50 is None or b is None or base[c][0] is None:
            row += ["—", "—", "—"]
            continue
        bc = bestcpu.get(c)
        row += [f"best peer {b[0]}", f"**{ratio(z50 - base[c][0], b[1])} / {ratio(z99 - base[c][1], b[2])}**",
                f"**{ratio(med(cpu('zonegate', c)), bc[1])}** ({bc[0]})" if bc and cpu("zonegate", c) else ""]
    lines.append(row)
    row = ["zonegate added / plain relay added (the floor: one more hop, no TLS)"]
    for c in ["c1", "c32"]:
        z50 = med(res.get(("pingpong", "zonegate", c, "p50_us"), []))
        r50 = med(res.get(("pingpong", "relay", c, "p50_us"), []))
        b50 = base[c][0]
        row += ["", ratio(z50 - b50, r50 - b50) + " (p50)" if None not in (z50, r50, b50) else "—", ""]
    lines.append(row)
    print(md(["proxy", "1 conn: RTT p50 / p99", "1 conn: added vs direct", "1 conn: proxy CPU µs/req",
              "32 conns: RTT p50 / p99", "32 conns: added vs direct", "32 conns: proxy CPU µs/req"], lines))
    print("\n`direct` = load generator to the echo backend in plain TCP; the proxies' figures include the "
          "load generator's own TLS work, the relay's do not. CPU per request from the threads' schedstat "
          "(ns) where the run recorded it, else from 10 ms ticks.\n")

    scp = [p for p in ORDER if any(k[:2] == ("syscalls", p) for k in res)]
    for c in ["c1", "c32"]:
        names = sorted({k[3] for k in res if k[0] == "syscalls" and k[2] == c and k[3] != "total"},
                       key=lambda n: -max(med(res.get(("syscalls", p, c, n), [0])) for p in scp))
        if not names:
            continue
        n = c[1:]
        print(f"## 7. System calls per 1 KiB round trip (TLS 1.3), {n} connection{'s' if n != '1' else ''}\n")
        lines = [[nm] + [cell(res.get(("syscalls", p, c, nm), []), f2) for p in scp] for nm in names]
        lines.append(["**total**"] + [f"**{cell(res.get(('syscalls', p, c, 'total'), []), f2)}**" for p in scp])
        print(md(["system call"] + scp, lines))
        print()
    if scp:
        print("From `perf stat` on the syscalls:sys_enter_* tracepoints of the proxy's process tree "
              "(\"other\": every call not counted by name, from raw_syscalls:sys_enter); "
              "(EAGAIN) rows are those calls that returned EAGAIN (already counted in their own row). "
              "Per round trip = difference between two ping-pongs of different lengths, divided by the "
              "extra round trips.\n")

    storm = sorted({k[1] for k in res if k[0] == "storm"})
    if storm:
        print("## Storm: bulk uploads beside a clinical ping-pong\n")
        lines = []
        for p in storm:
            g = lambda v, m: med(res.get(("storm", p, v, m), []))  # noqa: E731
            i99, s99 = g("idle", "p99_us"), g("storm", "p99_us")
            lines.append([p, cell(res.get(("storm", p, "idle", "p50_us"), []), f0) + " / " +
                          cell(res.get(("storm", p, "idle", "p99_us"), []), f0),
                          cell(res.get(("storm", p, "storm", "p50_us"), []), f0) + " / " +
                          cell(res.get(("storm", p, "storm", "p99_us"), []), f0),
                          ratio(s99, i99) if None not in (s99, i99) else "—",
                          cell(res.get(("storm", p, "bulk", "mbit_per_s"), []), f1),
                          cell(res.get(("storm", p, "bulk", "cpu_s_per_gb"), []), f3)])
        print(md(["proxy", "ping-pong alone p50 / p99 µs", "during the storm p50 / p99 µs",
                  "p99 storm / alone", "bulk Mbit/s", "CPU s/GB"], lines))
        print("\nzonegate: classes updates (rate 50, ceil 150 Mbit/s, priority 7) and clinical (rate 50, "
              "ceil 200, priority 0), link 200 Mbit/s. zonegate-unshaped and the peers: no classes.\n")

    link = sorted({k[1] for k in res if k[0] == "stormlink"}, key=link_order)
    if link:
        print("## Storm over a 200 Mbit/s link: bulk uploads beside a clinical ping-pong\n")
        lines = []
        for p in link:
            def c(v, m, f):
                return cell(res.get(("stormlink", p, v, m), []), f)
            i99, s99 = (med(res.get(("stormlink", p, v, "p99_us"), [])) for v in ("idle", "storm"))
            lines.append([p, "150" if p.endswith("-150") else "200, AF41 first" if p.endswith("-dscp") else "200",
                          c("idle", "p50_us", f0) + " / " + c("idle", "p99_us", f0),
                          c("storm", "p50_us", f0) + " / " + c("storm", "p99_us", f0),
                          ratio(s99, i99) if None not in (s99, i99) else "—",
                          c("bulk", "mbit_per_s", f1), c("bulk", "cpu_s_per_gb", f3),
                          c("bulk", "user_s_per_gb", f3) + " / " + c("bulk", "sys_s_per_gb", f3),
                          c("bulk", "sleeps_per_gb", f0), c("bulk", "path_s_per_gb", f3),
                          c("storm", "pp_end_s", f1) + " / " + c("bulk", "storm_s", f1)])
        print(md(["proxy", "link Mbit/s", "ping-pong alone p50 / p99 µs", "during the storm p50 / p99 µs",
                  "p99 storm / alone", "bulk Mbit/s", "CPU s/GB", "user / sys s/GB", "sleeps/GB",
                  "path CPU s/GB (proxy + loadgen + sink + softirqd)",
                  "ping-pong ended / storm lasted s"], lines))
        print("\nBackends in a network namespace behind a router namespace whose egress toward them is a tbf (the "
              "link, with a 50 ms router buffer). zonegate: classes updates (rate 50, ceil 150 Mbit/s, "
              "priority 7) and clinical (rate 50, ceil 200, priority 0), link 200 Mbit/s. -unshaped and "
              "the peers: no classes; -150: the link itself at 150 Mbit/s (the updates ceil), for CPU per "
              "GB at the shaped rate; -dscp: classes, and the router (an HTB, same rate) serves DSCP AF41 (the clinical "
              "class's mark) before the rest.\n")

    fails = [(k, v) for k, v in res.items() if k[3] == "failed"]
    if fails:
        print("## Failed connections\n")
        for k, v in sorted(fails):
            print(f"- {k[1]} {k[0]} {k[2]}: {sum(v):.0f}")


if __name__ == "__main__":
    main()
