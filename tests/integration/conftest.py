"""Shared fixtures for zonegate's integration tests.

- `zonegate_bin`: the binary under test ($ZONEGATE_BIN, default build/zonegate).
- `pki`: the test PKI (tests/pki/mkpki.sh, once per session; $ZG_PKI_DIR reuses one).
- `port()`: a free TCP port on 127.0.0.1 (or ::1) outside the ephemeral range.
- `gateway(config, name)`: a `Gateway` (zonegate run) that is started, waited for
  (`event=ready`), stopped at the end of the test, and whose log is dumped when
  the test fails. Sanitizer reports in any gateway log fail the test.
- `zonegate_check(config)`: runs `zonegate check -c FILE`.
- `echo_server()`, `hash_server()`, `http_server(dir)`: plain-TCP backends.

Configurations are dicts {"gateway": {...}, "tls": {...}, "route NAME": {...}}
(rendered in order) or INI text.
"""
import os
import re
import resource
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

import util

REPO = Path(__file__).resolve().parents[2]
SANITIZER_PATTERNS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer",
                      "ERROR: ThreadSanitizer", "AddressSanitizer:DEADLYSIGNAL")
SANITIZER_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1",
    "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
}
READY_TIMEOUT = float(os.environ.get("ZG_READY_TIMEOUT", "20"))


def zg_env():
    env = dict(os.environ)
    for k, v in SANITIZER_ENV.items():
        env.setdefault(k, v)
    return env


# Every process of the sanitizer build the session starts - gateways, and
# every CLI command (check, check-cert, probe, directory, audit), however a
# test runs it and whatever it does with its output - writes its ASan,
# LeakSanitizer and UBSan reports to files in one directory
# (log_path=DIR/report.PID), which is checked after each test and at the
# end of the session. UBSan halts and aborts on its first report, so a
# report can never pass as a command's expected exit status 1.
SANITIZER_DIR = None


def pytest_configure(config):
    global SANITIZER_DIR
    import tempfile
    SANITIZER_DIR = Path(tempfile.mkdtemp(prefix="zg-sanitizer-"))
    log = f"log_path={SANITIZER_DIR}/report"
    asan = os.environ.get("ASAN_OPTIONS", SANITIZER_ENV["ASAN_OPTIONS"])
    ubsan = os.environ.get("UBSAN_OPTIONS", SANITIZER_ENV["UBSAN_OPTIONS"])
    # later options win: ours come last
    os.environ["ASAN_OPTIONS"] = f"{asan}:{log}"
    os.environ["UBSAN_OPTIONS"] = f"{ubsan}:halt_on_error=1:abort_on_error=1:{log}"


_reports_seen = set()


def new_sanitizer_reports():
    """[(file, text)] of report files not seen before (and now seen)."""
    out = []
    if SANITIZER_DIR is None:
        return out
    for f in sorted(SANITIZER_DIR.glob("report*")):
        if f.name not in _reports_seen:
            _reports_seen.add(f.name)
            out.append((f.name, f.read_text(errors="replace")))
    return out


def sanitizer_lines(text):
    return [ln for ln in text.splitlines() if any(p in ln for p in SANITIZER_PATTERNS)]


# ---------------------------------------------------------------- config


def render_config(config):
    """INI text from a dict of sections (dict of key -> value); text passes."""
    if isinstance(config, str):
        return config
    out = []
    for section, keys in config.items():
        out.append(f"[{section}]")
        for k, v in keys.items():
            if v is None:
                continue
            if isinstance(v, (list, tuple)):
                v = ", ".join(str(x) for x in v)
            out.append(f"{k} = {v}")
        out.append("")
    return "\n".join(out)


class Pki:
    """The files mkpki.sh wrote (see its header for the layout)."""

    def __init__(self, root):
        self.root = Path(root)
        self.roots = str(self.root / "roots.pem")

    def path(self, name):
        p = self.root / name
        assert p.exists(), f"PKI file {p} missing"
        return str(p)

    def cert(self, leaf, alg="ec"):
        return self.path(f"{leaf}-{alg}.pem")

    def key(self, leaf, alg="ec"):
        return self.path(f"{leaf}-{alg}.key")

    def chain(self, leaf, alg="ec"):
        """leaf + intermediate in one file"""
        return self.path(f"{leaf}-{alg}.chain.pem")

    def intermediate(self, alg="ec"):
        return self.path(f"int-{alg}.pem")

    def tls(self, leaf="site-b", alg="ec", **over):
        """A [tls] section for a gateway presenting `leaf`."""
        sec = {
            "profile": "cryptrec-high",
            "certificate": self.cert(leaf, alg),
            "key": self.key(leaf, alg),
            "chain": self.intermediate(alg),
            "trust_anchors": self.roots,
        }
        sec.update(over)
        return sec


def gateway_section(name="gw", **over):
    sec = {
        "name": name,
        "workers": 2,
        "log_level": "info",
        "drain_timeout": "10s",
        "handshake_timeout": "5s",
        "idle_timeout": "60s",
        "connect_timeout": "3s",
    }
    sec.update(over)
    return sec


def make_config(pki, routes, name="gw", leaf="site-b", alg="ec", gateway=None, tls=None):
    """A full config dict: routes is {route_name: {key: value}}."""
    cfg = {"gateway": gateway_section(name, **(gateway or {})),
           "tls": pki.tls(leaf, alg, **(tls or {}))}
    for rname, r in routes.items():
        cfg[f"route {rname}"] = r
    return cfg


# ---------------------------------------------------------------- gateway


class Gateway:
    """One `zonegate run -c FILE` process."""

    def __init__(self, binary, workdir, name, config):
        self.binary = binary
        self.name = name
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.conf_path = self.dir / f"{name}.conf"
        self.log_path = self.dir / f"{name}.log"
        GATEWAY_LOGS.append(self.log_path)
        self.proc = None
        self.returncode = None
        self.write_config(config)

    # -- config
    def write_config(self, config):
        """Write the config file atomically, mode 0600."""
        tmp = self.conf_path.with_suffix(".tmp")
        tmp.write_text(render_config(config))
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.conf_path)

    # -- lifecycle
    def start(self, wait_ready=True, timeout=READY_TIMEOUT, args=(), nofile=None):
        """Start `zonegate run`; nofile caps its descriptors (soft and hard)."""
        self.log_file = open(self.log_path, "ab")

        def limit():
            if nofile:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        self.proc = subprocess.Popen([self.binary, "run", "-c", str(self.conf_path), *args],
                                     stdin=subprocess.DEVNULL, stdout=self.log_file,
                                     stderr=self.log_file, env=zg_env(),
                                     start_new_session=True, preexec_fn=limit)
        if wait_ready:
            self.wait_for_log(r"event=ready\b", timeout)
        return self

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        assert self.running(), f"gateway {self.name} is not running"
        self.proc.send_signal(sig)

    def reload(self, config=None):
        """Optionally rewrite the config, then SIGHUP. Returns the log mark
        from before the signal (pass it as `since` to wait_for_log)."""
        if config is not None:
            self.write_config(config)
        mark = self.mark()
        self.signal(signal.SIGHUP)
        return mark

    def wait(self, timeout):
        """Wait for exit; returns the exit code (negative = killed by signal)."""
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"gateway {self.name} still running after {timeout}s")
        return self.returncode

    def stop(self, timeout=30, expect_rc=0):
        """SIGTERM, wait; asserts the exit code when expect_rc is not None."""
        if self.running():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.wait(timeout)
            except AssertionError:
                self.kill()
                raise
        rc = self.proc.returncode if self.proc else None
        self.returncode = rc
        if expect_rc is not None:
            assert rc == expect_rc, f"gateway {self.name} exited {rc}, expected {expect_rc}"
        return rc

    def kill(self):
        if self.running():
            self.proc.kill()
            self.proc.wait()

    def close_files(self):
        f = getattr(self, "log_file", None)
        if f:
            f.close()

    # -- log
    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def mark(self):
        """Current log length; later waits can look only past it."""
        return len(self.log())

    def wait_for_log(self, regex, timeout=10.0, since=0):
        """Wait until a log line (past offset `since`) matches regex; returns
        the re.Match. Fails early, with the log, if the process exits."""
        rx = re.compile(regex)
        deadline = time.monotonic() + timeout
        while True:
            text = self.log()[since:]
            for line in text.splitlines():
                m = rx.search(line)
                if m:
                    return m
            if self.proc is not None and self.proc.poll() is not None:
                # one last read: the line may have been written just before exit
                text = self.log()[since:]
                for line in text.splitlines():
                    m = rx.search(line)
                    if m:
                        return m
                raise AssertionError(
                    f"gateway {self.name} exited ({self.proc.returncode}) before "
                    f"logging /{regex}/; log:\n{self.log()[-4000:]}")
            if time.monotonic() >= deadline:
                raise AssertionError(f"gateway {self.name}: no log line /{regex}/ within "
                                     f"{timeout}s; log tail:\n{self.log()[-4000:]}")
            time.sleep(0.02)

    def events(self, event=None, since=0, **match):
        """Parsed log lines (dicts), optionally only `event=...` and with the
        given key=value pairs."""
        out = []
        for line in self.log()[since:].splitlines():
            d = util.parse_line(line)
            if event is not None and d.get("event") != event:
                continue
            if all(d.get(k) == str(v) for k, v in match.items()):
                out.append(d)
        return out

    def wait_for_event(self, event, timeout=10.0, since=0, count=1, **match):
        """Wait until at least `count` such events are logged; returns them."""
        return util.wait_until(
            lambda: (lambda ev: ev if len(ev) >= count else None)(
                self.events(event, since, **match)),
            timeout, 0.02,
            f"{count}x event={event} {match} in gateway {self.name} log")

    def reasons(self, reason, since=0, events=("refused", "conn_close"), **match):
        """Lines of the given event kinds that carry reason=`reason`."""
        return [d for d in self.events(None, since, reason=reason, **match)
                if d.get("event") in events]

    def wait_for_reason(self, reason, timeout=10.0, since=0, count=1,
                        events=("refused", "conn_close"), **match):
        """Wait until `count` refused/conn_close lines carry reason=`reason`
        (for failures the contract does not pin to one event kind, such as
        an upstream that fails after the client was accepted)."""
        return util.wait_until(
            lambda: (lambda ev: ev if len(ev) >= count else None)(
                self.reasons(reason, since, events, **match)),
            timeout, 0.02, f"{count}x reason={reason} {match} in gateway {self.name} log")

    def refusal_count(self, reason=None, since=0, **match):
        """Refusals logged: one per `event=refused` line plus the count of
        each `event=refused_repeated` line (a flood's lines are folded per
        route, source and reason after the first 20, engine/record.h)."""
        if reason is not None:
            match["reason"] = reason
        return (len(self.events("refused", since, **match)) +
                sum(int(d.get("count", "0"))
                    for d in self.events("refused_repeated", since, **match)))

    def wait_for_refusals(self, reason, count, timeout=25.0, since=0, **match):
        """Wait until `count` refusals for `reason` are logged, folded ones
        included (their line comes when the 10 s interval ends)."""
        return util.wait_until(
            lambda: self.refusal_count(reason, since, **match) >= count,
            timeout, 0.1, f"{count} refusals reason={reason} {match} in gateway {self.name} log")

    def sanitizer_reports(self):
        return sanitizer_lines(self.log())


class Gateways:
    """Factory the `gateway` fixture returns; remembers what it started."""

    def __init__(self, binary, tmp_path, node):
        self.binary = binary
        self.tmp_path = tmp_path
        # one list per test: a second factory (a gateway in another network
        # namespace) adds to it, so the hook checks every gateway it started
        if getattr(node, "_zg_gateways", None) is None:
            node._zg_gateways = []
        self.all = node._zg_gateways

    def __call__(self, config, name="gw", start=True, wait_ready=True, args=(), nofile=None):
        gw = Gateway(self.binary, self.tmp_path, name, config)
        self.all.append(gw)
        if start:
            gw.start(wait_ready=wait_ready, args=args, nofile=nofile)
        return gw


# ---------------------------------------------------------------- hooks


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """After the test body: stop the gateways it left running (they must exit
    0) and fail the test on any sanitizer report in any gateway log."""
    outcome = yield
    problems = []
    for gw in getattr(item, "_zg_gateways", []):
        if gw.running():
            try:
                gw.stop(timeout=30, expect_rc=0)
            except AssertionError as e:
                problems.append(str(e))
        elif gw.proc is not None and gw.proc.returncode is not None and gw.proc.returncode < 0:
            problems.append(f"gateway {gw.name} died of signal {-gw.proc.returncode}")
        rep = gw.sanitizer_reports()
        if rep:
            problems.append(f"gateway {gw.name} sanitizer report:\n" + "\n".join(rep[:20]))
    for text in getattr(item, "_zg_extra_logs", []):
        rep = sanitizer_lines(text)
        if rep:
            problems.append("sanitizer report in zonegate output:\n" + "\n".join(rep[:20]))
    for name, text in new_sanitizer_reports():
        problems.append(f"sanitizer report {name} written during this test:\n"
                        + text[:4000])
    if problems and outcome.excinfo is None:
        raise AssertionError("\n".join(problems))


def under_ci():
    """CI=true (or 1/yes): skips are failures unless allowed (SKIPS_ALLOWED)."""
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


SKIPS_ALLOWED = Path(__file__).with_name("skips_allowed.txt")


def allowed_skips(path=SKIPS_ALLOWED):
    """{"test_file.py::test_name": reason} from the allow-list; a line is
    `FILE::NAME  # why it may skip in CI`. A line without a reason is an
    error: the list exists so that every tolerated gap is explained."""
    out = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        test, _, why = line.partition("#")
        if not why.strip():
            raise pytest.UsageError(f"{path}:{n}: allowed skip without a reason: {line}")
        out[test.strip()] = why.strip()
    return out


def short_id(nodeid):
    """tests/integration/test_x.py::test_y[p] -> test_x.py::test_y[p]"""
    return nodeid.rsplit("/", 1)[-1]


def skip_is_allowed(nodeid, allowed):
    sid = short_id(nodeid)
    return sid in allowed or sid.split("[", 1)[0] in allowed


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    # Under CI a skip is a hole in the suite nobody sees (a missing package,
    # no root for namespaces): it fails the run unless the allow-list names
    # it with a reason. xfail is a known bug, reported as such, not a skip.
    if rep.skipped and not hasattr(rep, "wasxfail") and under_ci() \
            and not skip_is_allowed(item.nodeid, allowed_skips()):
        why = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
        rep.outcome = "failed"
        rep.longrepr = (f"skipped under CI=true ({why}); install what it needs "
                        f"(scripts/deps.sh) or list it with a reason in {SKIPS_ALLOWED.name}")
    if rep.failed:
        for gw in getattr(item, "_zg_gateways", []):
            text = gw.log()
            lines = text.splitlines()
            if len(lines) > 300:
                lines = ["... (%d earlier lines)" % (len(lines) - 300)] + lines[-300:]
            rep.sections.append((f"zonegate {gw.name} log ({gw.log_path})", "\n".join(lines)))


# The log of every gateway the session started (Gateway.__init__), for the
# reason coverage test (test_zz_reason_coverage.py): which codes of the
# table some test produced on a running gateway.
GATEWAY_LOGS = []


def reason_table(_cache=[]):
    """The code strings of the X-macro table in src/**/reason.h, in order."""
    if not _cache:
        (h,) = list(REPO.glob("src/**/reason.h"))
        _cache.extend(re.findall(r'X\(\s*[A-Z0-9_]+\s*,\s*[A-Z]+\s*,\s*"([a-z0-9_]+)"',
                                 h.read_text()))
        assert len(_cache) > 40, f"could not read the codes of {h}"
    return list(_cache)


def reasons_in_log(text, table):
    """Codes of `table` a gateway log shows as a verdict: `reason=CODE` of
    any line (refusals, closes, revocations, reloads, health checks...), and
    the code an `event=config_error` message starts its cause with (the
    directory codes, docs/operations.md)."""
    seen = set()
    for line in text.splitlines():
        if "event=config_error" in line:
            seen.update(re.findall(r"\b([a-z][a-z0-9_]+): ", line))
        else:
            seen.update(re.findall(r"\breason=([a-z0-9_]+)", line))
    return seen & set(table)


def reasons_seen():
    """Every table code some gateway of this session produced so far."""
    table = reason_table()
    seen = set()
    for p in GATEWAY_LOGS:
        try:
            seen |= reasons_in_log(p.read_text(errors="replace"), table)
        except FileNotFoundError:
            pass
    return seen


def pytest_sessionfinish(session):
    """Reports written after the last test that could own them (a
    module-scoped gateway stopped at teardown) fail the session."""
    late = new_sanitizer_reports()
    if late:
        for name, text in late:
            print(f"\nsanitizer report {name} after the tests:\n{text[:4000]}")
        session.exitstatus = 1
    elif SANITIZER_DIR is not None:
        import shutil
        shutil.rmtree(SANITIZER_DIR, ignore_errors=True)
    reasons_file(session)


def reasons_file(session):
    """With $ZG_REASONS_SEEN, add the codes produced to that file (one a
    line; several pytest runs add to one file)."""
    out = os.environ.get("ZG_REASONS_SEEN")
    if out and GATEWAY_LOGS:
        old = set(Path(out).read_text().split()) if Path(out).exists() else set()
        Path(out).write_text("".join(c + "\n" for c in sorted(reasons_seen() | old)))


@pytest.fixture(autouse=True)
def _cleanup_gateways(request):
    yield
    for gw in getattr(request.node, "_zg_gateways", []):
        gw.kill()
        gw.close_files()


# The reason coverage test means something only after the whole suite ran:
# with a -k filter, a file list or deselection it is left out (not skipped).
COVERAGE_TEST = "test_zz_reason_coverage.py"
_deselected = []


def pytest_deselected(items):
    _deselected.extend(items)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session, config, items):
    cov = [it for it in items if it.nodeid.rsplit("/", 1)[-1].startswith(COVERAGE_TEST)]
    if not cov:
        return
    here = Path(__file__).parent
    files = {p.name for p in here.glob("test_*.py")}
    ran = {Path(str(it.fspath)).name for it in items}
    whole = ran == files and not _deselected
    for it in cov:
        items.remove(it)
    if whole:
        items.extend(cov)  # last: it reads what every other test saw
    else:
        config.hook.pytest_deselected(items=cov)


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="session", autouse=True)
def _raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


@pytest.fixture(scope="session")
def zonegate_bin():
    b = os.environ.get("ZONEGATE_BIN") or str(REPO / "build" / "zonegate")
    b = str(Path(b).resolve())
    assert os.access(b, os.X_OK), f"zonegate binary {b} not found (set ZONEGATE_BIN)"
    return b


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    out = os.environ.get("ZG_PKI_DIR") or str(tmp_path_factory.mktemp("pki"))
    subprocess.run(["bash", str(REPO / "tests" / "pki" / "mkpki.sh"), out], check=True)
    return Pki(out)


_used_ports = set()


def _have_ipv6():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


HAVE_IPV6 = _have_ipv6()


def _port_free(host, port):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def alloc_port(host="127.0.0.1"):
    """A port below the ephemeral range (so no outgoing connection takes it
    between allocation and bind), unique within this test session."""
    base = 20000 + (os.getpid() % 400) * 25
    for i in range(10000):
        p = 20000 + (base - 20000 + i) % 12000
        if p in _used_ports:
            continue
        if _port_free(host, p) and (host != "127.0.0.1" or not HAVE_IPV6 or _port_free("::1", p)):
            _used_ports.add(p)
            return p
    raise RuntimeError("no free port")


@pytest.fixture
def port():
    return alloc_port


@pytest.fixture
def gateway(zonegate_bin, tmp_path, request):
    return Gateways(zonegate_bin, tmp_path, request.node)


@pytest.fixture
def zonegate_check(zonegate_bin, tmp_path, request):
    """run `zonegate check -c FILE` on a config (dict or text); returns the
    CompletedProcess (text). `path=` writes the file there instead."""
    request.node._zg_extra_logs = logs = []
    counter = [0]

    def run(config, path=None, mode=0o600, args=()):
        counter[0] += 1
        p = Path(path) if path else tmp_path / f"check{counter[0]}.conf"
        p.write_text(render_config(config))
        os.chmod(p, mode)
        cp = subprocess.run([zonegate_bin, "check", "-c", str(p), *args], capture_output=True,
                            text=True, env=zg_env(), timeout=60, stdin=subprocess.DEVNULL)
        cp.path = str(p)
        logs.append(cp.stdout + cp.stderr)
        return cp

    return run


@pytest.fixture
def echo_server():
    started = []

    def make(host="127.0.0.1", port=0):
        s = util.EchoServer(host, port).start()
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()


@pytest.fixture
def hash_server():
    started = []

    def make(host="127.0.0.1", port=0):
        s = util.HashServer(host, port).start()
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()


@pytest.fixture
def http_server(tmp_path):
    started = []

    def make(directory, host="127.0.0.1"):
        s = util.HttpServer(directory, host, alloc_port(host),
                            logfile=tmp_path / f"http{len(started)}.log").start()
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()


@pytest.fixture
def site_pair(pki, gateway, port):
    """Factory for the standard two-site chain in front of `backend_addr`:
    client -> A (wrap, plain in) -> B (unwrap, mTLS) -> backend.
    Returns (A, B, a_port). Extra route keys via a_route / b_route."""

    def make(backend_addr, host="127.0.0.1", a_route=None, b_route=None, a_gw=None, b_gw=None,
             alg="ec"):
        b_port = port(host)
        a_port = port(host)
        b_cfg = make_config(pki, {"in": {"mode": "unwrap",
                                         "listen": util.hostport(host, b_port),
                                         "connect": backend_addr, **(b_route or {})}},
                            name="site-b", leaf="site-b", alg=alg, gateway=b_gw)
        a_cfg = make_config(pki, {"out": {"mode": "wrap",
                                          "listen": util.hostport(host, a_port),
                                          "connect": util.hostport(host, b_port),
                                          "server_name": "site-b.zonegate.test",
                                          "allow_from": "127.0.0.0/8, ::1/128",
                                          **(a_route or {})}},
                            name="site-a", leaf="site-a", alg=alg, gateway=a_gw)
        b = gateway(b_cfg, name="site-b")
        a = gateway(a_cfg, name="site-a")
        return a, b, a_port

    return make
