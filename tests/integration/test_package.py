"""The Debian package, installed on this machine as an operator would.

scripts/test.sh builds it with scripts/package.sh (dpkg-buildpackage -b,
lintian clean) and passes its path in ZG_DEB. This test installs it with
dpkg, checks what docs/deployment.md promises about users, directories and
modes, runs `zonegate check` on the shipped example as the zonegate user
the unit runs as, and purges the package again.
"""
import grp
import os
import pwd
import re
import shutil
import stat
import subprocess

import pytest

from conftest import alloc_port

DEB = os.environ.get("ZG_DEB", "")

pytestmark = pytest.mark.skipif(not DEB, reason="ZG_DEB not set: scripts/test.sh builds the package")


def run(*cmd, check=True, timeout=120, **kw):
    cp = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout,
                        stdin=subprocess.DEVNULL, **kw)
    if check:
        assert cp.returncode == 0, f"{cmd}: exit {cp.returncode}\n{cp.stdout}{cp.stderr}"
    return cp


@pytest.fixture(scope="module")
def installed():
    assert os.geteuid() == 0, "installing a package needs root (CI runs as root)"
    # apt resolves Depends (adduser) and waits for another dpkg to finish
    run("apt-get", "install", "-y", "-q", "-o", "DPkg::Lock::Timeout=300", os.path.abspath(DEB),
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}, timeout=400)
    yield
    for leftover in ("/etc/zonegate/pkgtest",):
        shutil.rmtree(leftover, ignore_errors=True)
    run("apt-get", "purge", "-y", "-q", "-o", "DPkg::Lock::Timeout=300", "zonegate",
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}, timeout=400)
    assert not os.path.exists("/usr/bin/zonegate")


def mode_owner(path):
    st = os.stat(path)
    return (stat.S_IMODE(st.st_mode), pwd.getpwuid(st.st_uid).pw_name,
            grp.getgrgid(st.st_gid).gr_name)


def test_files_users_and_modes(installed):
    assert pwd.getpwnam("zonegate").pw_shell in ("/usr/sbin/nologin", "/bin/false")
    assert mode_owner("/etc/zonegate") == (0o750, "root", "zonegate")
    assert mode_owner("/var/lib/zonegate") == (0o700, "zonegate", "zonegate")
    assert mode_owner("/var/log/zonegate") == (0o700, "zonegate", "zonegate")
    out = run("/usr/bin/zonegate", "version").stdout
    assert "zonegate" in out and "OpenSSL" in out
    unit = open("/lib/systemd/system/zonegate.service").read()
    assert "ExecStart=/usr/bin/zonegate run -c /etc/zonegate/zonegate.conf" in unit
    assert "/usr/local" not in unit
    # installed but neither enabled nor started: there is no configuration yet
    assert not os.path.exists("/etc/systemd/system/multi-user.target.wants/zonegate.service")
    for page in ("man8/zonegate.8.gz", "man5/zonegate.conf.5.gz", "man1/zonegate-directory.1.gz"):
        text = run("zcat", "/usr/share/man/" + page).stdout
        assert re.search(r'^\.TH "?zonegate', text, re.M), page


def test_shipped_example_passes_check_as_the_service_user(installed, pki):
    """The annotated example, with its certificate paths pointed at the test
    PKI and its addresses at loopback, is accepted by the installed binary
    run as the unprivileged user, from /etc/zonegate with the package's modes."""
    example = open("/usr/share/doc/zonegate/examples/zonegate.conf").read()
    here = "/etc/zonegate/pkgtest"
    os.makedirs(here + "/private", mode=0o750)
    files = {
        "/etc/zonegate/site-a-gw1.crt": pki.cert("site-a"),
        "/etc/zonegate/private/site-a-gw1.key": pki.key("site-a"),
        "/etc/zonegate/zone-intermediate.pem": pki.intermediate(),
        "/etc/zonegate/zone-root.pem": pki.roots,
        "/etc/zonegate/zone-root.crl.pem": pki.path("root-ec.crl.pem"),
        "/etc/zonegate/zone-intermediate.crl.pem": pki.path("int-ec.crl.pem"),
    }
    gid = grp.getgrnam("zonegate").gr_gid
    for placeholder, src in sorted(files.items(), key=lambda kv: -len(kv[0])):
        dst = here + placeholder[len("/etc/zonegate"):]
        shutil.copyfile(src, dst)
        os.chown(dst, 0, gid)
        os.chmod(dst, 0o640)
        example = example.replace(placeholder, dst)
    for d in (here, here + "/private"):
        os.chown(d, 0, gid)
    left = re.findall(r"/etc/zonegate/(?!pkgtest/)\S+\.(?:pem|crt|key)", example)
    assert not left, f"example paths without a test file: {left}"
    example = re.sub(r"^(listen\s*=\s*)\S+", lambda m: f"{m.group(1)}127.0.0.1:{alloc_port()}",
                     example, flags=re.M)
    example = re.sub(r"^(connect\s*=\s*)[^:\s]+(:\d+)", r"\g<1>127.0.0.1\2", example, flags=re.M)
    conf = here + "/zonegate.conf"
    with open(conf, "w") as f:
        f.write(example)
    os.chown(conf, 0, gid)
    os.chmod(conf, 0o640)
    cp = run("runuser", "-u", "zonegate", "--", "/usr/bin/zonegate", "check", "-c", conf, check=False)
    out = cp.stdout + cp.stderr
    assert cp.returncode == 0, out
    assert "configuration OK" in out
    # and the same user may not read what it must not: the package's
    # /var/lib is its own, /etc/zonegate is not writable by it
    cp = run("runuser", "-u", "zonegate", "--", "touch", "/etc/zonegate/x", check=False)
    assert cp.returncode != 0
