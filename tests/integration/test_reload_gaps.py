"""Reload gaps (issue 10 item 9), each against a real `zonegate run`:

- a directory change whose reload failed for an unrelated reason (a bad
  line in the configuration) is retried at the next poll, not forgotten
  because its file stamp was recorded before the reload;
- CRLs and trust anchors are read once per snapshot, not once per route
  (two reads of one file can give two routes of one snapshot different
  CRLs): the stale-CRL warning, written once per read, shows it;
- a ticket-resumed live connection is re-checked on its whole chain: a CRL
  revoking the intermediate closes it;
- a handshake that straddles a reload is judged again by every rule in
  force, not only by the directory and the CRLs.
"""
import os
import shutil
import subprocess

import util
from conftest import make_config
from test_directory import Operator, directory_doc, standard_participants


def _operator(zonegate_bin, tmp_path):
    d = tmp_path / "op"
    d.mkdir()
    op = Operator(zonegate_bin, d)
    op.publish(directory_doc(1, standard_participants()))
    return op


def test_directory_change_retried_after_an_unrelated_reload_failure(pki, port, gateway,
                                                                    zonegate_bin, tmp_path):
    op = _operator(zonegate_bin, tmp_path)
    cfg = make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{port()}",
                                   "connect": "127.0.0.1:11112", "peers": "site-a, site-b"}},
                      name="gw")
    cfg["directory"] = {"file": str(op.json), "public_key": op.pub, "reload_interval": "300ms"}
    gw = gateway(cfg, name="gw")
    good = gw.conf_path.read_text()
    mark = gw.mark()
    # an operator's half-finished edit, and meanwhile a new directory
    gw.conf_path.write_text(good + "\n[route half-written]\ncolour = blue\n")
    op.publish(directory_doc(2, standard_participants()))
    gw.wait_for_event("directory_changed", since=mark)
    gw.wait_for_event("reload", result="refused", since=mark)
    gw.conf_path.write_text(good)  # edit finished; no SIGHUP
    ok = gw.wait_for_event("reload", result="ok", since=mark, timeout=10)
    assert ok, gw.log()[mark:]
