"""Every reason code of the table is produced by some test on a running
gateway, so a verdict the docs promise cannot lose its last test unnoticed.

conftest.py keeps the log of every gateway the suite started; a code counts
when it is the `reason=` of a log line (a refusal, a close, a revocation, a
reload, a health check...), or the cause an `event=config_error` message
starts with (conftest.reasons_in_log). This test runs last, and only when
the whole suite ran (pytest_collection_modifyitems in conftest.py). A code
no test can produce on a live gateway is listed in reasons_impossible.txt
with the reason.
"""
from pathlib import Path

import conftest

IMPOSSIBLE = Path(__file__).with_name("reasons_impossible.txt")


def impossible_codes():
    """{code: why} from reasons_impossible.txt (`code  # why`)."""
    out = {}
    for n, line in enumerate(IMPOSSIBLE.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        code, _, why = line.partition("#")
        assert why.strip(), f"{IMPOSSIBLE}:{n}: {code.strip()} listed without a reason"
        out[code.strip()] = why.strip()
    return out


def test_every_reason_code_produced_on_a_running_gateway():
    codes = conftest.reason_table()
    impossible = impossible_codes()
    seen = conftest.reasons_seen()
    unknown = sorted(set(impossible) - set(codes))
    assert not unknown, f"reasons_impossible.txt lists codes not in the table: {unknown}"
    produced_anyway = sorted(set(impossible) & seen)
    assert not produced_anyway, \
        f"listed as impossible but produced by a test, drop them from the list: {produced_anyway}"
    missing = [c for c in codes if c not in seen and c not in impossible]
    print(f"reason codes produced on a running gateway: {len(set(codes) & seen)} of {len(codes)}"
          f" ({len(impossible)} listed as impossible)")
    assert not missing, (
        f"no test produced these reason codes on a running gateway: {missing}; write a test "
        f"that does, or list the code with its reason in {IMPOSSIBLE.name}")


def test_no_sanitizer_report_outside_a_test():
    """Reports of processes that ended between tests (a module-scoped
    gateway stopped at module teardown) belong to no test: they fail here.
    conftest.py sends every sanitizer report of the session to files."""
    late = conftest.new_sanitizer_reports()
    assert not late, "\n".join(f"{n}:\n{t[:4000]}" for n, t in late)
