"""Files that decide trust are held to the configuration's rule (issue 10
item 11): owned by root or the gateway's user and writable by nobody else,
judged on the descriptor the gateway reads. Trust anchors, CRLs, the
collector's trust anchors, the directory, its signature and its operator's
public key, the audit spool directory and its state file: each refused with
its path, its mode or owner and the fix, at `check`, at start and at reload.
A group-writable spool would let a local user plant CRC-valid records that
the backfill appends to the hash chain.
"""
import os
import shutil
import subprocess

import pytest

import util
from conftest import make_config, sanitizer_lines, zg_env
from test_directory import Operator, directory_doc, standard_participants

EXIT_CONFIG = 3
NOBODY = 65534


def _errors(cp):
    return cp.stdout + cp.stderr


def _config(pki, port, tmp_path):
    return make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{port()}",
                                    "connect": "127.0.0.1:11112"}}, name="site-b")


def _copy(src, dst, mode, owner=None):
    shutil.copy(src, dst)
    os.chmod(dst, mode)
    if owner is not None:
        os.chown(dst, owner, -1)
    return str(dst)


def _operator(zonegate_bin, tmp_path):
    d = tmp_path / "op"
    d.mkdir()
    op = Operator(zonegate_bin, d)
    op.publish(directory_doc(1, standard_participants()))
    return op


# (kind, how to make the config use a bad file of that kind, the key named in the message)
def _bad_trust_anchors(cfg, pki, tmp_path, zg, mode, owner):
    cfg["tls"]["trust_anchors"] = _copy(pki.roots, tmp_path / "roots.pem", mode, owner)
    return cfg["tls"]["trust_anchors"]


def _bad_crl(cfg, pki, tmp_path, zg, mode, owner):
    cfg["tls"]["crl"] = _copy(pki.path("crl-empty.pem"), tmp_path / "crl.pem", mode, owner)
    return cfg["tls"]["crl"]


def _bad_syslog_ca(cfg, pki, tmp_path, zg, mode, owner):
    cfg["audit"] = {"syslog_target": "127.0.0.1:6514", "syslog_server_name": "localhost",
                    "spool_dir": str(tmp_path / "spool"),
                    "syslog_ca": _copy(pki.roots, tmp_path / "collector-ca.pem", mode, owner)}
    return cfg["audit"]["syslog_ca"]


def _bad_directory(which):
    def make(cfg, pki, tmp_path, zg, mode, owner):
        op = _operator(zg, tmp_path)
        path = {"file": op.json, "signature": op.sig, "public_key": op.pub}[which]
        os.chmod(path, mode)
        if owner is not None:
            os.chown(path, owner, -1)
        cfg["directory"] = {"file": str(op.json), "public_key": op.pub, "reload_interval": "0"}
        return str(path)
    return make


def _bad_spool_dir(cfg, pki, tmp_path, zg, mode, owner):
    spool = tmp_path / "spool"
    spool.mkdir()
    os.chmod(spool, mode | 0o100 | (0o010 if mode & 0o040 else 0) | (0o001 if mode & 0o004 else 0))
    if owner is not None:
        os.chown(spool, owner, -1)
    cfg["audit"] = {"syslog_target": "127.0.0.1:6514", "syslog_server_name": "localhost",
                    "spool_dir": str(spool)}
    return str(spool)


KINDS = {
    "trust_anchors": _bad_trust_anchors,
    "crl": _bad_crl,
    "syslog_ca": _bad_syslog_ca,
    "directory_file": _bad_directory("file"),
    "directory_signature": _bad_directory("signature"),
    "directory_public_key": _bad_directory("public_key"),
    "spool_dir": _bad_spool_dir,
}


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("bad", ["group-writable", "world-writable", "foreign owner"])
def test_check_refuses_a_trust_file_others_can_change(pki, port, tmp_path, zonegate_check,
                                                       zonegate_bin, kind, bad):
    mode, owner = {"group-writable": (0o664, None), "world-writable": (0o646, None),
                   "foreign owner": (0o644, NOBODY)}[bad]
    cfg = _config(pki, port, tmp_path)
    path = KINDS[kind](cfg, pki, tmp_path, zonegate_bin, mode, owner)
    cp = zonegate_check(cfg)
    text = _errors(cp)
    assert cp.returncode == EXIT_CONFIG, f"{kind} {bad} accepted:\n{text}"
    hits = [ln for ln in text.splitlines() if path in ln]
    assert hits, f"no message naming {path}:\n{text}"
    want = f"owned by uid {NOBODY}" if owner else bad
    assert any(want in h for h in hits), f"{want!r} not in {hits}"
    assert any(("chown root" if owner else "chmod go-w") in h for h in hits), hits


def test_check_accepts_trust_files_only_root_can_change(pki, port, tmp_path, zonegate_check,
                                                         zonegate_bin):
    cfg = _config(pki, port, tmp_path)
    _bad_trust_anchors(cfg, pki, tmp_path, zonegate_bin, 0o644, None)
    _bad_crl(cfg, pki, tmp_path, zonegate_bin, 0o444, None)
    _bad_directory("signature")(cfg, pki, tmp_path, zonegate_bin, 0o644, None)
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o700)
    cfg["audit"] = {"syslog_target": "127.0.0.1:6514", "syslog_server_name": "localhost",
                    "spool_dir": str(spool)}
    cp = zonegate_check(cfg)
    assert cp.returncode == 0, _errors(cp)


def _run(zonegate_bin, conf, timeout=30):
    return subprocess.run([zonegate_bin, "run", "-c", str(conf)], capture_output=True, text=True,
                          timeout=timeout, env=zg_env(), stdin=subprocess.DEVNULL)


def _write(tmp_path, cfg):
    from conftest import render_config
    p = tmp_path / "zonegate.conf"
    p.write_text(render_config(cfg))
    os.chmod(p, 0o600)
    return p


def test_start_refuses_a_group_writable_crl(pki, port, tmp_path, zonegate_bin):
    cfg = _config(pki, port, tmp_path)
    crl = _bad_crl(cfg, pki, tmp_path, zonegate_bin, 0o664, None)
    cp = _run(zonegate_bin, _write(tmp_path, cfg))
    assert cp.returncode == EXIT_CONFIG, cp.stderr
    assert f"{crl} is group-writable (mode 0664)" in cp.stderr, cp.stderr
    assert "event=ready" not in cp.stderr
    assert not sanitizer_lines(cp.stderr), cp.stderr


def test_start_refuses_a_spool_whose_state_file_others_can_write(pki, port, tmp_path,
                                                                 zonegate_bin):
    """A planted or rewritable state file moves the delivery cursor: refused
    at start (and at `check`), naming the file."""
    cfg = _config(pki, port, tmp_path)
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o700)
    (spool / "state").write_bytes(b"\0" * 16)
    os.chmod(spool / "state", 0o666)
    cfg["audit"] = {"syslog_target": "127.0.0.1:6514", "syslog_server_name": "localhost",
                    "spool_dir": str(spool), "retry_max": "500ms"}
    conf = _write(tmp_path, cfg)
    cp = _run(zonegate_bin, conf)
    assert cp.returncode != 0, cp.stderr
    assert f"{spool}/state is world-writable (mode 0666)" in cp.stderr, cp.stderr
    assert "event=ready" not in cp.stderr
    chk = subprocess.run([zonegate_bin, "check", "-c", str(conf)], capture_output=True, text=True,
                         timeout=30, env=zg_env())
    assert chk.returncode == EXIT_CONFIG, _errors(chk)
    assert f"{spool}/state is world-writable" in _errors(chk)


def test_reload_refuses_trust_anchors_made_group_writable(pki, port, tmp_path, gateway):
    """The old snapshot keeps serving; the refusal names the file."""
    cfg = _config(pki, port, tmp_path)
    anchors = _copy(pki.roots, tmp_path / "roots.pem", 0o644)
    cfg["tls"]["trust_anchors"] = anchors
    gw = gateway(cfg, name="gw")
    os.chmod(anchors, 0o664)
    gw.reload()
    ev = gw.wait_for_event("reload", result="refused")[0]
    assert ev["result"] == "refused"
    assert f"{anchors} is group-writable (mode 0664)" in gw.log()
    os.chmod(anchors, 0o644)
    gw.reload()
    gw.wait_for_event("reload", result="ok")
