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


def test_check_does_not_serve(pki, port, zonegate_check):
    cfg = _good(pki, port)
    listen = cfg["route pacs-in"]["listen"]
    cp = zonegate_check(cfg)
    assert cp.returncode == 0, _errors(cp)
    host, p = listen.rsplit(":", 1)
    # the test-bind was released: we can bind the port ourselves
    with socket.socket() as s:
        s.bind((host, int(p)))


def _assert_line_error(cp, line, *words):
    text = _errors(cp)
    assert cp.returncode == EXIT_CONFIG, f"exit {cp.returncode}, expected 3:\n{text}"
    pat = re.escape(cp.path) + f":{line}:"
    hits = [ln for ln in text.splitlines() if re.search(pat, ln)]
    assert hits, f"no '{cp.path}:{line}:' message in:\n{text}"
    for w in words:
        assert any(w in h for h in hits), f"{w!r} not in the line-{line} message: {hits}"


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
    cp = zonegate_check(_text(pki, port))
    assert cp.returncode == 0, _errors(cp)


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
    _assert_line_error(cp, 18, "in")


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
