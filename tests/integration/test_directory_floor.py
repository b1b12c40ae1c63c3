"""Directory rollback across restarts ([directory] state_file, issue 15
item 5): the newest accepted serial survives a restart, so an older,
still-valid signed directory put back while the gateway was down is refused
at start as it would be on a reload."""
import os

from conftest import gateway_section
from test_directory import Operator, directory_doc, standard_participants


def config(pki, operator, state, port):
    return {"gateway": gateway_section("gw"), "tls": pki.tls("server"),
            "directory": {"file": str(operator.json), "public_key": operator.pub,
                          "state_file": str(state), "reload_interval": "0"},
            "route in": {"mode": "unwrap", "listen": f"127.0.0.1:{port}",
                         "connect": "127.0.0.1:9", "peers": "site-a"}}


def test_restart_refuses_an_older_directory(gateway, pki, zonegate_bin, zonegate_check, tmp_path,
                                            port):
    operator = Operator(zonegate_bin, tmp_path)
    state = tmp_path / "state" / "directory.state"
    state.parent.mkdir(mode=0o700)
    old = directory_doc(7, standard_participants())
    operator.publish(old)
    old_json, old_sig = operator.json.read_bytes(), operator.json.with_suffix(".json.sig").read_bytes()
    cfg = config(pki, operator, state, port())
    gw = gateway(cfg)
    assert state.read_text().startswith("serial 7\nsha256 ")
    operator.publish(directory_doc(8, standard_participants()))
    gw.wait_for_log(r"event=reload result=ok", since=gw.reload())
    assert state.read_text().startswith("serial 8\n")
    assert os.stat(state).st_mode & 0o777 == 0o600
    gw.stop()

    # serial 7 is still signed and valid: put it back while the gateway is down
    operator.json.write_bytes(old_json)
    operator.json.with_suffix(".json.sig").write_bytes(old_sig)
    cp = zonegate_check(cfg)
    out = cp.stdout + cp.stderr
    assert cp.returncode == 3, out
    assert "directory_rollback: serial 7 is older than serial 8 accepted before this start" in out
    # without the state file the same start is accepted: the floor is what refuses it
    cfg["directory"].pop("state_file")
    assert zonegate_check(cfg).returncode == 0


def test_a_state_file_others_can_write_is_refused(pki, zonegate_bin, zonegate_check, tmp_path,
                                                  port):
    operator = Operator(zonegate_bin, tmp_path)
    operator.publish(directory_doc(3, standard_participants()))
    state = tmp_path / "directory.state"
    state.write_text("serial 1\nsha256 " + "00" * 32 + "\n")
    os.chmod(state, 0o666)
    cp = zonegate_check(config(pki, operator, state, port()))
    assert cp.returncode == 3
    assert "must be a regular file writable only by its owner" in cp.stdout + cp.stderr
    os.chmod(state, 0o600)
    state.write_text("serial one\n")
    cp = zonegate_check(config(pki, operator, state, port()))
    assert cp.returncode == 3 and "not a directory state file" in cp.stdout + cp.stderr
