"""The operator documents stay true to the code.

- every ```ini block of docs/deployment.md is a whole configuration that
  `zonegate check` accepts, once the placeholder paths are mapped to a test
  PKI (the table "How the examples are tested" in docs/deployment.md);
- the reason-code table in docs/operations.md is the current output of
  scripts/reason-table.sh, and every code of src/base/reason.h also appears in
  the hand-written part of docs/operations.md (troubleshooting);
- contrib/zonegate.service passes `systemd-analyze verify` without warnings.
"""
import datetime
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from conftest import REPO, zg_env

DEPLOYMENT = REPO / "docs" / "deployment.md"
OPERATIONS = REPO / "docs" / "operations.md"
REASON_H = REPO / "src" / "base" / "reason.h"
REASON_TABLE = REPO / "scripts" / "reason-table.sh"
UNIT = REPO / "contrib" / "zonegate.service"

TABLE_BEGIN = "<!-- BEGIN reason-table -->"
TABLE_END = "<!-- END reason-table -->"


def fenced_blocks(text, lang):
    """The bodies of the ```LANG fenced blocks of a Markdown text, in order."""
    return re.findall(r"^```" + re.escape(lang) + r"[ \t]*\n(.*?)^```[ \t]*$", text,
                      re.M | re.S)


# ---------------------------------------------------------------- (a) examples


def _directory(zonegate_bin, workdir, doc):
    """Sign the document's ```json directory, valid from an hour ago for 30
    days, with a fresh operator key; returns (json path, public key path)."""
    blocks = fenced_blocks(doc, "json")
    assert len(blocks) == 1, f"expected one ```json directory block, found {len(blocks)}"
    d = json.loads(blocks[0])
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    d["issued_at"] = (now - datetime.timedelta(hours=1)).strftime(fmt)
    d["expires"] = (now + datetime.timedelta(days=30)).strftime(fmt)
    path = workdir / "directory.json"
    path.write_text(json.dumps(d, indent=2) + "\n")
    for args in (["keygen", "-o", str(workdir / "operator")],
                 ["sign", "-k", str(workdir / "operator.key"), str(path)]):
        cp = subprocess.run([zonegate_bin, "directory", *args], capture_output=True, text=True,
                            env=zg_env(), timeout=60, stdin=subprocess.DEVNULL)
        assert cp.returncode == 0, f"zonegate directory {args[0]}: {cp.stdout}{cp.stderr}"
    return path, workdir / "operator.pub"


def _substitute(block, mapping, port):
    """The block with placeholder paths mapped, every listen address
    replaced by a free 127.0.0.1 port and every documentation host name
    (*.example) in connect by localhost (`check` refuses a pool member that
    does not resolve); fails on an unmapped path."""
    text = block
    for placeholder in sorted(mapping, key=len, reverse=True):
        text = text.replace(placeholder, str(mapping[placeholder]))
    left = re.findall(r"(?:/etc/zonegate|/var/)\S*", text)
    assert not left, (f"paths {left} have no test substitute; add them to the table in "
                      f"docs/deployment.md and to test_docs.py")

    def listen(m):
        return f"{m.group(1)}127.0.0.1:{port()}"

    def connect(m):
        return re.sub(r"[A-Za-z0-9.-]+\.example(?=:)", "localhost", m.group(0))

    text = re.sub(r"^[ \t]*connect[ \t]*[=:].*$", connect, text, flags=re.M)
    return re.sub(r"^([ \t]*listen[ \t]*[=:][ \t]*)\S+", listen, text, flags=re.M)


def test_deployment_examples_pass_check(pki, port, zonegate_bin, zonegate_check, tmp_path):
    doc = DEPLOYMENT.read_text()
    blocks = fenced_blocks(doc, "ini")
    assert len(blocks) >= 3, "docs/deployment.md lost its example configurations"
    logdir = tmp_path / "log"
    logdir.mkdir()
    dir_json, operator_pub = _directory(zonegate_bin, tmp_path, doc)
    mapping = {
        "/etc/zonegate/pki/gateway.crt": pki.cert("site-b"),
        "/etc/zonegate/pki/gateway.key": pki.key("site-b"),
        "/etc/zonegate/pki/chain.pem": pki.intermediate(),
        "/etc/zonegate/pki/trust-anchors.pem": pki.roots,
        "/etc/zonegate/pki/crls.pem": pki.path("crl-empty.pem"),
        "/etc/zonegate/directory.json": dir_json,
        "/etc/zonegate/operator.pub": operator_pub,
        "/var/log/zonegate/": str(logdir) + "/",
    }
    for i, block in enumerate(blocks, 1):
        text = _substitute(block, mapping, port)
        cp = zonegate_check(text)
        out = cp.stdout + cp.stderr
        assert cp.returncode == 0, f"example {i} of docs/deployment.md refused:\n{out}\n{text}"
        assert "configuration OK" in out


def test_substitution_refuses_unmapped_paths(port):
    with pytest.raises(AssertionError, match="no test substitute"):
        _substitute("[tls]\nkey = /etc/zonegate/other.key\n", {}, port)


def test_deployment_example_with_an_error_is_caught(pki, port, zonegate_check):
    """The check above can fail: a wrap route without allow_from is refused."""
    block = fenced_blocks(DEPLOYMENT.read_text(), "ini")[0]
    assert re.search(r"^allow_from = 10\.10\.20\.0/24", block, re.M)
    broken = re.sub(r"^allow_from = 10\.10\.20\.0/24.*$", "", block, count=1, flags=re.M)
    mapping = {
        "/etc/zonegate/pki/gateway.crt": pki.cert("site-a"),
        "/etc/zonegate/pki/gateway.key": pki.key("site-a"),
        "/etc/zonegate/pki/chain.pem": pki.intermediate(),
        "/etc/zonegate/pki/trust-anchors.pem": pki.roots,
        "/etc/zonegate/pki/crls.pem": pki.path("crl-empty.pem"),
    }
    cp = zonegate_check(_substitute(broken, mapping, port))
    assert cp.returncode == 3
    assert "allow_from: required" in cp.stdout + cp.stderr


# ---------------------------------------------------------------- (b), (c) reason codes


def _reason_table():
    cp = subprocess.run(["bash", str(REASON_TABLE), str(REASON_H)], capture_output=True,
                        text=True, timeout=30)
    assert cp.returncode == 0, cp.stderr
    return cp.stdout


def _split_operations():
    """(generated table, the rest of docs/operations.md)."""
    text = OPERATIONS.read_text()
    assert text.count(TABLE_BEGIN) == 1 and text.count(TABLE_END) == 1, \
        f"docs/operations.md needs exactly one {TABLE_BEGIN} ... {TABLE_END} block"
    head, rest = text.split(TABLE_BEGIN)
    table, tail = rest.split(TABLE_END)
    return table.strip("\n") + "\n", head + tail


def _codes():
    codes = re.findall(r'X\(\s*[A-Z0-9_]+\s*,\s*[A-Z]+\s*,\s*"([a-z0-9_]+)"', REASON_H.read_text())
    assert len(codes) > 40, "could not read the codes of src/base/reason.h"
    return codes


def test_reason_table_is_current():
    table, _ = _split_operations()
    want = _reason_table()
    assert table == want, ("docs/operations.md's reason table is out of date: replace the "
                           "block between the markers with the output of "
                           "scripts/reason-table.sh")


def test_reason_table_lists_every_code_once():
    table = _reason_table()
    rows = re.findall(r"^\| `([a-z0-9_]+)` \|", table, re.M)
    assert sorted(rows) == sorted(_codes())


def test_every_reason_code_has_operator_guidance():
    """Not only in the generated table: the troubleshooting text names each."""
    _, prose = _split_operations()
    missing = [c for c in _codes() if not re.search(r"`" + re.escape(c) + r"`", prose)]
    assert not missing, f"reason codes with no guidance in docs/operations.md: {missing}"


def test_reason_table_refuses_an_unknown_class(tmp_path):
    h = tmp_path / "reason.h"
    h.write_text(REASON_H.read_text().replace('X(OK, OK, "ok"', 'X(OK, NEWCLASS, "ok"'))
    cp = subprocess.run(["bash", str(REASON_TABLE), str(h)], capture_output=True, text=True,
                        timeout=30)
    assert cp.returncode == 1 and "NEWCLASS" in cp.stderr


# ---------------------------------------------------------------- systemd unit


def test_systemd_unit_verifies(zonegate_bin, tmp_path):
    sa = "systemd-analyze"
    try:  # found by running it (Debian's systemd package ships it)
        v = subprocess.run([sa, "--version"], capture_output=True, text=True, timeout=30)
    except OSError as e:
        pytest.skip(f"systemd-analyze does not run: {e}")
    if v.returncode != 0:
        pytest.skip(f"systemd-analyze --version exited {v.returncode}")
    text = UNIT.read_text()
    # readiness and the watchdog come from zonegate itself (test_notify.py)
    assert re.search(r"^Type=notify$", text, re.M) and re.search(r"^WatchdogSec=\d+s$", text, re.M)
    assert "ExecStart=/usr/local/bin/zonegate run -c /etc/zonegate/zonegate.conf" in text
    unit = tmp_path / "zonegate.service"
    unit.write_text(text.replace("/usr/local/bin/zonegate", zonegate_bin))
    cp = subprocess.run([sa, "verify", str(unit)], capture_output=True, text=True, timeout=60,
                        env=dict(os.environ, SYSTEMD_LOG_LEVEL="warning"))
    noise = [ln for ln in (cp.stdout + cp.stderr).splitlines() if str(unit) in ln
             or "zonegate.service" in ln]
    assert cp.returncode == 0 and not noise, cp.stdout + cp.stderr
    # the drain must fit in the stop timeout
    stop = int(re.search(r"^TimeoutStopSec=(\d+)s$", text, re.M).group(1))
    assert stop > 30, "TimeoutStopSec must exceed the default drain_timeout (30s)"


# ---------------------------------------------------------------- links


def _slug(heading):
    """GitHub's anchor for a Markdown heading."""
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def _anchors(path):
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.M | re.S)
    return {_slug(m) for m in re.findall(r"^#+\s+(.*)$", text, re.M)}


@pytest.mark.parametrize("doc", ["deployment.md", "operations.md", "threat-model.md"])
def test_links_resolve(doc):
    """Every relative link of the operator documents names an existing file
    and, with #anchor, an existing heading."""
    path = REPO / "docs" / doc
    bad = []
    for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text()):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        if not dest.exists():
            bad.append(f"{target}: no file {dest}")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            bad.append(f"{target}: no heading #{anchor} in {dest.name}")
    assert not bad, f"broken links in docs/{doc}: {bad}"
