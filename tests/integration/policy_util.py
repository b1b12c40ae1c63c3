"""Helpers for the certificate-policy integration tests: the per-violation
PKI (tests/pki/mkpki-policy.sh) and `openssl s_server` as an upstream.
Standard library only."""
import os
import subprocess
import time
from pathlib import Path

import util

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tests" / "pki" / "mkpki-policy.sh"

# Peers use security level 0 so that they can load and present the weak
# certificates at all; refusing them is the gateway's job.
PEER_WEAK = ["-cipher", "DEFAULT:@SECLEVEL=0"]


class PolicyPki:
    """The files mkpki-policy.sh wrote and its manifest."""

    def __init__(self, root):
        self.root = Path(root)
        self.anchor = str(self.root / "root.pem")
        self.crls = str(self.root / "crls.pem")
        self.entries = []  # (name, expected reason, tls "any"|"1.2")
        for line in (self.root / "manifest.txt").read_text().splitlines():
            name, reason, tls = line.split()
            self.entries.append((name, reason, tls))

    def cert(self, name):
        return str(self.root / f"{name}.pem")

    def key(self, name):
        return str(self.root / f"{name}.key")

    def chain(self, name):
        return str(self.root / f"{name}.chain.pem")

    def intermediates(self, name):
        """A file with the intermediates of `name` (its chain minus the leaf),
        or None if the leaf hangs directly below the root."""
        text = (self.root / f"{name}.chain.pem").read_text()
        end = "-----END CERTIFICATE-----"
        blocks = [b + end + "\n" for b in text.split(end) if "BEGIN" in b]
        if len(blocks) < 2:
            return None
        p = self.root / f"{name}.inter.pem"
        p.write_text("".join(blocks[1:]))
        return str(p)

    def tls(self, leaf="ok-p256", **over):
        sec = {"profile": "cryptrec-high", "certificate": self.chain(leaf),
               "key": self.key(leaf), "trust_anchors": self.anchor, "crl": self.crls}
        sec.update(over)
        return sec


def make_pki(out):
    subprocess.run(["bash", str(SCRIPT), str(out)], check=True, timeout=300)
    return PolicyPki(out)


def tls_args(tls):
    return ["-tls1_2"] if tls == "1.2" else []


class SServer:
    """`openssl s_server` presenting one certificate on 127.0.0.1:port; what
    it receives from a client ends up in .output()."""

    def __init__(self, pki, name, port, args=(), files=None):
        cert, key, inter = files or (pki.cert(name), pki.key(name), pki.intermediates(name))
        cmd = ["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-quiet",
               "-cert", cert, "-key", key, "-verify", "1",
               "-CAfile", pki.anchor] + PEER_WEAK + list(args)
        if inter:
            cmd += ["-cert_chain", inter]
        self.cmd = cmd
        self.out_path = Path(pki.root) / f".s_server.{port}.out"
        self.out = open(self.out_path, "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=self.out,
                                     stderr=subprocess.STDOUT)
        try:
            util.wait_port("127.0.0.1", port, 10)
        except AssertionError:
            self.stop()
            raise

    def output(self):
        self.out.flush()
        return self.out_path.read_bytes()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()
        try:
            os.unlink(self.out_path)
        except OSError:
            pass


def wait_quiet(seconds=0.2):
    time.sleep(seconds)


CA_CNF = """[ca]
default_ca = ca_any
[ca_any]
dir = {d}
database = {d}/index.txt
new_certs_dir = {d}
serial = {d}/serial
default_md = sha256
policy = policy_any
unique_subject = no
copy_extensions = none
[policy_any]
commonName = supplied
[req]
distinguished_name = dn
prompt = no
[dn]
CN = placeholder
[ext]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = DNS:localhost, DNS:policy.zonegate.test, IP:127.0.0.1
"""


def short_lived_leaf(pki, workdir, name, seconds):
    """A P-256 leaf below the policy PKI's intermediate that expires
    `seconds` from now. Returns (cert, key, intermediates) paths."""
    d = Path(workdir) / f"ca-{name}"
    d.mkdir(parents=True, exist_ok=True)
    (d / "index.txt").write_text("")
    (d / "serial").write_text("%032x\n" % int(time.time() * 1000))
    cnf = d / "ca.cnf"
    cnf.write_text(CA_CNF.format(d=d))
    key, csr, crt = d / f"{name}.key", d / f"{name}.csr", d / f"{name}.pem"
    env = dict(os.environ, OPENSSL_CONF=str(cnf))

    def utc(offset):
        return time.strftime("%y%m%d%H%M%SZ", time.gmtime(time.time() + offset))

    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-out", str(key)], check=True, env=env,
                   capture_output=True)
    subprocess.run(["openssl", "req", "-new", "-key", str(key), "-subj", f"/CN={name}",
                    "-out", str(csr)], check=True, env=env, capture_output=True)
    subprocess.run(["openssl", "ca", "-batch", "-notext", "-config", str(cnf),
                    "-cert", str(pki.root / "int.pem"), "-keyfile", str(pki.root / "int.key"),
                    "-startdate", utc(-3600), "-enddate", utc(seconds),
                    "-extensions", "ext", "-in", str(csr), "-out", str(crt)],
                   check=True, env=env, capture_output=True)
    return str(crt), str(key), str(pki.root / "int.pem")
