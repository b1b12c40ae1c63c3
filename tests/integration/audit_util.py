"""Helpers for the audit trail tests: a real rsyslog collector over RFC 5425
TLS (rsyslog-gnutls, mutual authentication by certificate name) started on
127.0.0.1, a parser for what it stored, and the zonegate side
(`zonegate audit test`, the spool and the local file)."""
import os
import re
import shutil
import signal
import struct
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import util

RSYSLOGD = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"

# <85>1 TIMESTAMP HOSTNAME APP PROCID MSGID [SD] BOM MSG (RFC 5424, 5425 framing removed)
SYSLOG_RE = re.compile(
    r'^<85>1 (?P<ts>\S+) (?P<host>\S+) zonegate (?P<pid>\d+) IHE\+RFC-3881 '
    r'\[meta sequenceId="(?P<seq>\d+)"\] \ufeff(?P<xml><\?xml .*)$')


def rsyslog_probe(workdir, pki, port):
    """(ok, why): a real rsyslogd accepts a TLS connection with the gtls
    driver here. Found by running it, not by a module path (which differs
    per architecture): a missing rsyslog-gnutls leaves the port closed."""
    try:
        v = subprocess.run([RSYSLOGD, "-v"], capture_output=True, text=True, timeout=20)
    except OSError as e:
        return False, f"rsyslogd does not run: {e}"
    if v.returncode != 0:
        return False, f"rsyslogd -v exited {v.returncode}: {v.stderr.strip()}"
    c = Rsyslog(workdir, pki, port)
    try:
        c.start()
    except AssertionError:
        err = c.log.read_text(errors="replace") if c.log.exists() else ""
        return False, f"rsyslogd with the gtls driver did not listen: {err.strip()[-500:]}"
    finally:
        c.kill()
    err = c.log.read_text(errors="replace") if c.log.exists() else ""
    if "could not load module" in err:
        return False, f"rsyslogd could not load a module: {err.strip()[-500:]}"
    return True, ""


class Rsyslog:
    """rsyslogd -n with one imtcp/gtls listener whose messages go, raw, to a
    file. Mutual TLS: the client must present a certificate chaining to the
    test roots whose name is in `permitted`."""

    def __init__(self, workdir, pki, port, permitted=("site-a.zonegate.test",), udp=False):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "work").mkdir(exist_ok=True)
        self.port = port
        self.out = self.dir / "received.log"
        self.pidfile = self.dir / "rsyslogd.pid"
        self.log = self.dir / "rsyslogd.stderr"
        self.proc = None
        self.kills = 0
        self.udp = udp
        peers = ", ".join(f'"{p}"' for p in permitted)
        listener = (f'module(load="imudp")\ninput(type="imudp" address="127.0.0.1" port="{port}" '
                    f'ruleset="audit")' if udp else
                    f'input(type="imtcp" port="{port}" ruleset="audit")')
        self.conf = self.dir / "rsyslog.conf"
        self.conf.write_text(f"""
global(workDirectory="{self.dir / 'work'}" maxMessageSize="64k"
       DefaultNetstreamDriver="gtls"
       DefaultNetstreamDriverCAFile="{pki.roots}"
       DefaultNetstreamDriverCertFile="{pki.path('server-ec.chain.pem')}"
       DefaultNetstreamDriverKeyFile="{pki.path('server-ec.key')}")
module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1"
       StreamDriver.AuthMode="x509/name" PermittedPeer=[{peers}])
template(name="raw" type="string" string="%rawmsg%\\n")
# A repository must not lose what it has read when it is killed: with a
# direct queue the input thread writes each message to the file before it
# reads the next one (rsyslog's default in-memory queue would lose what it
# holds on SIGKILL - the collector's durability, docs/audit.md).
ruleset(name="audit" queue.type="Direct") {{
  action(type="omfile" file="{self.out}" template="raw")
}}
{listener}
""")

    def start(self):
        self.pidfile.unlink(missing_ok=True)
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [RSYSLOGD, "-n", "-f", str(self.conf), "-i", str(self.pidfile)],
            stdout=logf, stderr=subprocess.STDOUT)
        logf.close()
        if self.udp:
            time.sleep(1.0)  # nothing to connect to; give rsyslogd time to bind
        else:
            # a loaded CI box (and a restart right after SIGKILL) can take
            # more than a few seconds to bring the gtls listener up
            util.wait_port("127.0.0.1", self.port, timeout=30)
        return self

    def kill(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            self.kills += 1  # bounds the batches a test may see twice
            self.proc.send_signal(sig)
            self.proc.wait(timeout=20)
        self.proc = None

    def stop(self):
        self.kill(signal.SIGTERM)

    def records(self):
        """[(seq, syslog_ts, xml_text, Element)] in arrival order."""
        out = []
        if not self.out.exists():
            return out
        text = self.out.read_bytes()
        # rsyslog may be in the middle of writing the last line
        text = text[:text.rfind(b"\n") + 1].decode("utf-8")
        for line in text.splitlines():
            m = SYSLOG_RE.match(line)
            assert m, f"not an RFC 5424 IHE audit message: {line[:200]!r}"
            xml = m.group("xml")
            out.append((int(m.group("seq")), m.group("ts"), xml,
                        ET.fromstring(xml.encode("utf-8"))))
        return out

    def seqs(self):
        return [r[0] for r in self.records()]

    def wait_seq(self, seq, timeout=30.0):
        util.wait_until(lambda: seq in set(self.seqs()), timeout=timeout,
                        what=f"sequenceId {seq} at the collector")


def audit_config(pki, tmp, port, syslog=True, **audit):
    """INI text for `zonegate audit test` (a route is required by the loader)."""
    sect = {
        "file": str(tmp / "audit.log"),
        "spool_dir": str(tmp / "spool"),
        "retry_max": "500ms",
        "io_timeout": "2s",
    }
    if syslog:
        sect.update({"syslog_target": f"127.0.0.1:{port}",
                     "syslog_server_name": "localhost"})
    sect.update(audit)
    lines = [
        "[gateway]", "name = site-a", "",
        "[tls]",
        f"certificate = {pki.path('site-a-ec.chain.pem')}",
        f"key = {pki.path('site-a-ec.key')}",
        f"trust_anchors = {pki.roots}", "",
        "[route audit-dummy]", "mode = unwrap",
        f"listen = 127.0.0.1:{util.free_port()}",
        f"connect = 127.0.0.1:{util.free_port()}", "",
        "[audit]",
    ] + [f"{k} = {v}" for k, v in sect.items()]
    path = tmp / "zonegate.conf"
    path.write_text("\n".join(lines) + "\n")
    os.chmod(path, 0o600)
    return path


def audit_test(zonegate_bin, conf, *args, timeout=120, check=True):
    """Run `zonegate audit test -c conf ARGS`; returns the CompletedProcess."""
    p = subprocess.run([zonegate_bin, "audit", "test", "-c", str(conf), *map(str, args)],
                       capture_output=True, text=True, timeout=timeout)
    if check:
        assert p.returncode == 0, f"audit test failed ({p.returncode}):\n{p.stdout}\n{p.stderr}"
    return p


def file_records(path):
    """[(seq, xml_text)] of the local hash-chained audit file."""
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        _h, seq, _ts, xml = line.split(" ", 3)
        out.append((int(seq), xml))
    return out


SPOOL_HDR = struct.Struct(">4sIQqI")  # magic, len, seq, ts_ns, crc


def spool_frames(spool_dir):
    """[(segment path, offset, seq, length)] of every frame in the spool."""
    frames = []
    for seg in sorted(Path(spool_dir).glob("*.zgs")):
        data = seg.read_bytes()
        off = 0
        while off + SPOOL_HDR.size <= len(data):
            magic, n, seq, _ts, _crc = SPOOL_HDR.unpack_from(data, off)
            assert magic == b"ZGS1", f"{seg}: bad frame at {off}"
            frames.append((seg, off, seq, SPOOL_HDR.size + n))
            off += SPOOL_HDR.size + n
    return frames


def verify_chain(path):
    """Check the local file's hash chain with hashlib, from the format in
    docs/audit.md alone (not with zonegate's verifier): each line is
    `HASH SEQ TIME XML`, HASH the hex SHA-256 of the previous line's hash
    (32 raw bytes, zeros before the first line) followed by `SEQ SP TIME SP
    XML`. Returns the number of records; raises AssertionError naming the
    first line (1-based) that breaks the chain."""
    import hashlib
    prev = bytes(32)
    n = 0
    for n, line in enumerate(Path(path).read_bytes().split(b"\n"), 1):
        if not line:
            assert n > 1 and Path(path).read_bytes().endswith(b"\n"), f"empty line {n}"
            return n - 1
        h, sp, rest = line.partition(b" ")
        assert sp and len(h) == 64, f"line {n}: no hash field"
        want = hashlib.sha256(prev + rest).hexdigest().encode()
        assert h == want, f"line {n}: chain broken (hash {h[:16]!r}..., want {want[:16]!r}...)"
        prev = bytes.fromhex(h.decode())
    return n


def wait_file_seq(path, seq, timeout=20.0):
    def have():
        try:
            return any(s >= seq for s, _x in file_records(path))
        except (FileNotFoundError, ValueError):
            return False
    util.wait_until(have, timeout=timeout, what=f"seq {seq} in {path}")
