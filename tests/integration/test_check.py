"""`zonegate check -c FILE`: exit 0 and the effective settings for a good
file; exit 3 and `file:line:` messages (every error at once) for bad ones."""
import os
import re
import shutil
import socket

import util
from conftest import make_config, render_config

EXIT_CONFIG = 3


def _good(pki, port):
    return make_config(pki, {
        "pacs-in": {"mode": "unwrap", "listen": f"127.0.0.1:{port()}", "connect": "127.0.0.1:11112"},
        "pacs-out": {"mode": "wrap", "listen": f"[::1]:{port('::1')}",
                     "connect": "localhost:2762", "server_name": "site-b.zonegate.test",
                     "allow_from": "127.0.0.0/8, ::1/128"},
    }, name="site-a", leaf="site-a")


def _errors(cp):
    return cp.stdout + cp.stderr


def test_check_good_file_prints_effective_settings(pki, port, zonegate_check):
    cp = zonegate_check(_good(pki, port))
    assert cp.returncode == 0, _errors(cp)
    out = cp.stdout
    assert "configuration OK" in out
    for word in ("pacs-in", "pacs-out", "unwrap", "wrap", "cryptrec-high", "site-b.zonegate.test",
                 "127.0.0.1:11112", "localhost:2762"):
        assert word in out, f"{word!r} missing from check output:\n{out}"
    # defaults are filled in: settings the file never set are shown too
    for key in ("handshake_timeout", "idle_timeout", "connect_timeout", "max_connections",
                "session_cache"):
        assert key in out, f"effective {key} missing from check output:\n{out}"
    # key material is never printed
    key_pem = open(pki.key("site-a")).read()
    assert "PRIVATE KEY" not in out and key_pem.splitlines()[1] not in out


def _syscalls(argv, tmp_path, name):
    """Run argv under strace; returns (CompletedProcess, listen/accept calls)."""
    import subprocess
    from conftest import zg_env
    trace = tmp_path / f"{name}.strace"
    # LeakSanitizer cannot run under ptrace; ASan and UBSan still do
    env = zg_env()
    env["ASAN_OPTIONS"] += ":detect_leaks=0"
    cp = subprocess.run(["strace", "-f", "-qq", "-e", "trace=listen,accept,accept4",
                         "-o", str(trace), *argv], capture_output=True, text=True, timeout=60,
                        env=env, stdin=subprocess.DEVNULL)
    calls = [ln for ln in trace.read_text().splitlines() if re.search(r"\b(listen|accept4?)\(", ln)]
    return cp, calls


def test_check_does_not_serve(pki, port, zonegate_check, zonegate_bin, tmp_path):
    """`check` test-binds each listen address but never listens or accepts
    (strace sees no listen(2)/accept(2)); the same trace of `run` sees
    listen(2), so the method would notice a check that served."""
    import signal
    import subprocess
    from conftest import zg_env
    cp = zonegate_check(_good(pki, port))
    assert cp.returncode == 0, _errors(cp)
    conf = cp.path
    cp, calls = _syscalls([zonegate_bin, "check", "-c", conf], tmp_path, "check")
    assert cp.returncode == 0, _errors(cp)
    assert not calls, f"zonegate check listened or accepted: {calls}"
    # control: `run` on the same file listens
    env = zg_env()
    env["ASAN_OPTIONS"] += ":detect_leaks=0"  # LeakSanitizer cannot run under ptrace
    trace = tmp_path / "run.strace"
    p = subprocess.Popen(["strace", "-f", "-qq", "-e", "trace=listen", "-o", str(trace),
                          zonegate_bin, "run", "-c", conf], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                         env=env)
    try:
        util.wait_until(lambda: trace.exists() and "listen(" in trace.read_text(), 30,
                        what="zonegate run to listen under strace")
    finally:
        # Stop the gateway itself: a signal to strace only detaches it, and
        # the traced gateway ran on after the test (found left running).
        try:
            with open(f"/proc/{p.pid}/task/{p.pid}/children") as f:
                traced = [int(x) for x in f.read().split()]
        except OSError:
            traced = []
        for pid in traced:
            os.kill(pid, signal.SIGTERM)
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            for pid in traced:
                os.kill(pid, signal.SIGKILL)
            p.kill()
            p.wait()
        assert not [pid for pid in traced if os.path.exists(f"/proc/{pid}")], \
            "the traced zonegate run is still running"


def _assert_line_error(cp, line, key, *phrases):
    """Exit 3 and a `FILE:LINE: KEY: message` line whose key is exactly
    `key` and whose message holds each phrase."""
    text = _errors(cp)
    assert cp.returncode == EXIT_CONFIG, f"exit {cp.returncode}, expected 3:\n{text}"
    prefix = f"{cp.path}:{line}: "
    hits = [ln[len(prefix):] for ln in text.splitlines() if ln.startswith(prefix)]
    assert hits, f"no '{prefix}' message in:\n{text}"
    mine = [h.split(": ", 1)[1] for h in hits if h.split(": ", 1)[0] == key]
    assert mine, f"no message for key {key!r} at line {line}: {hits}"
    for ph in phrases:
        assert any(ph in m for m in mine), f"{ph!r} not in the line-{line} {key} message: {mine}"


def _text(pki, port, extra_route="", tls_over=None, gw_extra=""):
    """Config text with known line numbers:
    1 [gateway] 2 name 3 workers 4 (gw_extra) 5 blank 6 [tls] 7 certificate
    8 key 9 chain 10 trust_anchors 11 blank 12 [route in] 13 mode 14 listen
    15 connect 16 (extra_route)"""
    t = {"certificate": pki.cert("site-b"), "key": pki.key("site-b"),
         "chain": pki.intermediate(), "trust_anchors": pki.roots}
    t.update(tls_over or {})
    return (f"[gateway]\nname = site-b\nworkers = 1\n{gw_extra}\n\n"
            f"[tls]\ncertificate = {t['certificate']}\nkey = {t['key']}\n"
            f"chain = {t['chain']}\ntrust_anchors = {t['trust_anchors']}\n\n"
            f"[route in]\nmode = unwrap\nlisten = 127.0.0.1:{port()}\n"
            f"connect = 127.0.0.1:11112\n{extra_route}\n")


def test_check_line_numbers_are_right(pki, port, zonegate_check):
    """An error on each of several lines (in [gateway], [tls], [route], after
    blank lines and section headers) is reported at that line and no other."""
    good = _text(pki, port)
    cp = zonegate_check(good)
    assert cp.returncode == 0, _errors(cp)
    edits = {3: ("workers = 1", "workers = many", "workers"),
             9: (f"chain = {pki.intermediate()}", "chain = /nonexistent/int.pem", "chain"),
             13: ("mode = unwrap", "mode = sideways", "mode"),
             15: ("connect = 127.0.0.1:11112", "connect = nowhere", "connect")}
    lines = good.splitlines()
    for n, (old, new, _key) in edits.items():
        assert lines[n - 1] == old, f"line {n} of the template is {lines[n - 1]!r}"
        lines[n - 1] = new
    cp = zonegate_check("\n".join(lines) + "\n")
    for n, (_old, _new, key) in edits.items():
        _assert_line_error(cp, n, key)
    reported = {int(m) for m in re.findall(re.escape(cp.path) + r":(\d+): ", _errors(cp))}
    assert reported == set(edits), f"errors reported at lines {sorted(reported)}"


def test_check_unknown_key(pki, port, zonegate_check):
    cp = zonegate_check(_text(pki, port, extra_route="colour = blue"))
    _assert_line_error(cp, 16, "colour")


def test_check_bad_value(pki, port, zonegate_check):
    cp = zonegate_check(_text(pki, port, gw_extra="handshake_timeout = soon"))
    _assert_line_error(cp, 4, "handshake_timeout")


def test_check_reports_all_errors_at_once(pki, port, zonegate_check):
    cp = zonegate_check(_text(pki, port, extra_route="colour = blue",
                              gw_extra="workers = lots"))
    _assert_line_error(cp, 4, "workers")
    _assert_line_error(cp, 16, "colour")


def test_check_duplicate_route(pki, port, zonegate_check):
    dup = f"\n[route in]\nmode = unwrap\nlisten = 127.0.0.1:{port()}\nconnect = 127.0.0.1:1\n"
    cp = zonegate_check(_text(pki, port) + dup)
    # line 18 is the second [route in] header
    _assert_line_error(cp, 18, "[route in]", "given twice (first at line 12)")


def test_check_wrap_without_allow_from(pki, port, zonegate_check):
    text = _text(pki, port).replace("mode = unwrap", "mode = wrap")
    text += "server_name = site-a.zonegate.test\n"
    cp = zonegate_check(text)
    text_out = _errors(cp)
    assert cp.returncode == EXIT_CONFIG, text_out
    assert "allow_from" in text_out
    assert re.search(re.escape(cp.path) + r":\d+:", text_out), text_out


def test_check_world_readable_key(pki, port, zonegate_check, tmp_path):
    key = tmp_path / "open.key"
    shutil.copy(pki.key("site-b"), key)
    os.chmod(key, 0o644)
    cp = zonegate_check(_text(pki, port, tls_over={"key": str(key)}))
    _assert_line_error(cp, 8, "key")


def test_check_unreadable_certificate(pki, port, zonegate_check, tmp_path):
    cp = zonegate_check(_text(pki, port, tls_over={"certificate": str(tmp_path / "nope.pem")}))
    _assert_line_error(cp, 7, "certificate")


def test_check_key_does_not_match_certificate(pki, port, zonegate_check):
    cp = zonegate_check(_text(pki, port, tls_over={"key": pki.key("site-a")}))
    _assert_line_error(cp, 8, "key")


def test_check_listen_address_in_use(pki, port, zonegate_check):
    text = _text(pki, port)
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        text = re.sub(r"listen = 127\.0\.0\.1:\d+", f"listen = 127.0.0.1:{busy.getsockname()[1]}",
                      text)
        cp = zonegate_check(text)
        _assert_line_error(cp, 14, "listen")
    finally:
        busy.close()


def test_check_group_writable_config_refused(pki, port, zonegate_check):
    cp = zonegate_check(_text(pki, port), mode=0o664)
    text = _errors(cp)
    assert cp.returncode == EXIT_CONFIG, text
    assert cp.path in text


def test_run_refuses_bad_file_and_does_not_start(pki, port, zonegate_bin, tmp_path):
    import subprocess
    from conftest import sanitizer_lines, zg_env
    p = tmp_path / "bad.conf"
    p.write_text(_text(pki, port, extra_route="colour = blue"))
    os.chmod(p, 0o600)
    cp = subprocess.run([zonegate_bin, "run", "-c", str(p)], capture_output=True, text=True,
                        timeout=30, env=zg_env(), stdin=subprocess.DEVNULL)
    assert cp.returncode == EXIT_CONFIG, cp.stderr
    assert f"{p}:16:" in cp.stderr
    assert "event=ready" not in cp.stderr
    assert not sanitizer_lines(cp.stderr), cp.stderr


def test_check_refuses_audit_file_in_missing_directory(pki, port, zonegate_check, tmp_path):
    """`check` opens nothing but proves the audit sinks could be opened: an
    audit file whose directory does not exist is refused here, as `run`
    would refuse to start."""
    cfg = _good(pki, port)
    cfg["audit"] = {"file": str(tmp_path / "no-such-dir" / "audit.log")}
    cp = zonegate_check(cfg)
    assert cp.returncode == EXIT_CONFIG, _errors(cp)
    assert "no-such-dir" in _errors(cp) and "does not exist" in _errors(cp)
    cfg["audit"] = {"file": str(tmp_path / "audit.log")}
    cp = zonegate_check(cfg)
    assert cp.returncode == 0, _errors(cp)
    assert not (tmp_path / "audit.log").exists(), "check must not create the audit file"
