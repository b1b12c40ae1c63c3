"""The names and size rules on the wire (issue 15, item 3): client
certificates made at test time, issued by the test PKI's own intermediate
(so everything else about them passes), one with a NUL inside a DNS SAN
(the CVE-2009-2408 trick), one with a control character in its CN, one of
more than 8 KiB. `openssl s_client` presents each to an unwrap route; the
handshake fails and the refusal names the rule."""
import datetime
import subprocess

import pytest

import util

from conftest import make_config

x509 = pytest.importorskip("cryptography.x509")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402


def issue(pki, tmp_path, name, cn, sans, padding=0):
    """A clientAuth leaf from int-ec; returns (cert path, key path)."""
    ca_cert = x509.load_pem_x509_certificate(open(pki.intermediate(), "rb").read())
    ca_key = serialization.load_pem_private_key(open(pki.path("int-ec.key"), "rb").read(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder()
         .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
         .issuer_name(ca_cert.subject).public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(days=1))
         .not_valid_after(now + datetime.timedelta(days=10))
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                        critical=True)
         .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
         .add_extension(x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]),
                        critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                        critical=False)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if padding:
        b = b.add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"),
                                                       b"\x04\x82" + padding.to_bytes(2, "big")
                                                       + b"x" * padding), critical=False)
    cert = b.sign(ca_key, hashes.SHA256())
    cp, kp = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    kp.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))
    kp.chmod(0o600)
    return str(cp), str(kp)


@pytest.mark.parametrize("case,cn,sans,padding,reason", [
    ("nul_in_san", "client.zonegate.test", ["evil.test\x00.client.zonegate.test"], 0,
     "cert_name_control_char"),
    ("control_in_cn", "client\x1b[31m.zonegate.test", ["client.zonegate.test"], 0,
     "cert_name_control_char"),
    ("oversized", "client.zonegate.test", ["client.zonegate.test"], 9000, "cert_too_large"),
    ("clean", "client.zonegate.test", ["client.zonegate.test"], 0, None),
])
def test_client_certificate_names_and_size(pki, gateway, port, echo_server, tmp_path, case, cn,
                                           sans, padding, reason):
    echo = echo_server()
    p = port()
    gw = gateway(make_config(pki, {"in": {"mode": "unwrap", "listen": f"127.0.0.1:{p}",
                                          "connect": f"127.0.0.1:{echo.port}"}}, leaf="server"))
    cert, key = issue(pki, tmp_path, case, cn, sans, padding)
    cp = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{p}", "-cert", cert,
                         "-cert_chain", pki.intermediate(), "-key", key, "-CAfile", pki.roots, "-servername", "server.zonegate.test",
                         "-quiet", "-no_ign_eof"], input=b"ping\n", capture_output=True, timeout=30)
    if reason is None:
        full = tmp_path / "clean-chain.pem"
        full.write_bytes(open(cert, "rb").read() + open(pki.intermediate(), "rb").read())
        ctx = util.tls_context(pki, cert=cert, key=key, chain=str(full))
        with util.tls_connect(ctx, "127.0.0.1", p, server_hostname="server.zonegate.test") as s:
            assert util.echo_roundtrip(s, b"ping\n") == b"ping\n"
        gw.wait_for_event("conn_close", route="in")
        return
    assert cp.stdout == b""
    ev = gw.wait_for_event("refused", route="in")[0]
    assert ev["reason"] == reason, ev
