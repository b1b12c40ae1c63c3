"""Both security layers, each shown holding alone (issue 16, item 1).

Site B's gateway serves an unwrap route only to packets that arrived through
the WireGuard tunnel from site A (route key `interface`, SO_BINDTODEVICE):
the channel layer. Every connection that does arrive must still pass mutual
TLS: the object layer. Namespaces, tunnel and addresses: channel_util.py.
"""
import socket
import ssl

import pytest

import channel_util as cu
import netns_util
import util
from conftest import Gateways, gateway_section

PORT = 2762


@pytest.fixture
def channel(tmp_path):
    ok, why = cu.available()
    if not ok:
        pytest.skip(why)
    with cu.Channel(tmp_path) as ch:
        yield ch


class SiteB:
    """zonegate inside site B's namespace, unwrap route `in` to an echo
    service on B's loopback; `interface` names the tunnel, or is left out."""

    def __init__(self, request, tmp_path, zonegate_bin, pki, ch, interface=True):
        self.ch, self.pki = ch, pki

        def listener():
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            s.listen(16)
            return s

        self.backend = netns_util.EchoBackend(cu.run_in_netns(ch.b, listener))
        route = {"mode": "unwrap", "listen": f"*:{PORT}",
                 "connect": f"127.0.0.1:{self.backend.port}"}
        if interface:
            route["interface"] = ch.wgb
        wrapper = ch.wrapper(tmp_path / "zonegate-in-b", ch.b, zonegate_bin)
        self.gw = Gateways(wrapper, tmp_path, request.node)(
            {"gateway": gateway_section("site-b"), "tls": pki.tls("server"), "route in": route},
            "site-b")

    def connect(self, ns, dst, timeout=3.0):
        def make():
            return socket.create_connection((dst, PORT), timeout=timeout)
        return cu.run_in_netns(ns, make)

    def works(self, ns, dst, leaf="site-a", timeout=3.0):
        """Echo through mutual TLS from namespace `ns` to dst; raises on refusal."""
        ctx = util.tls_context(self.pki, cert=self.pki.cert(leaf), key=self.pki.key(leaf),
                               chain=self.pki.chain(leaf)) if leaf else util.tls_context(self.pki)
        raw = self.connect(ns, dst, timeout)
        with ctx.wrap_socket(raw, server_hostname="server.zonegate.test") as s:
            return util.echo_roundtrip(s, b"C-ECHO-RQ\n", timeout=timeout) == b"C-ECHO-RQ\n"

    def stop(self):
        self.backend.stop()


@pytest.fixture
def site_b(request, tmp_path, zonegate_bin, pki, channel):
    s = SiteB(request, tmp_path, zonegate_bin, pki, channel)
    yield s
    s.stop()


def test_inside_the_tunnel_with_a_valid_certificate_is_served(site_b, channel):
    assert site_b.works(channel.a, cu.B_WG)
    ev = site_b.gw.wait_for_event("conn_close", route="in")[0]
    assert ev["peer"].startswith(cu.A_WG + ":")
    assert "CN=site-a.zonegate.test" in ev["subject"]


def test_valid_certificate_from_the_open_network_is_refused(site_b, channel):
    """The object layer alone would admit this certificate; the channel
    layer does not: B's transit address takes no connection for the route,
    from the outsider on the open network nor from site A outside the tunnel."""
    for ns in (channel.t, channel.a):
        with pytest.raises(ConnectionRefusedError):
            site_b.works(ns, cu.B_T)
    assert site_b.works(channel.a, cu.B_WG), "the tunnel still works"


def test_inside_the_tunnel_without_a_valid_certificate_is_refused(site_b, channel):
    """The channel layer alone would admit this host; the object layer does not."""
    with pytest.raises((ssl.SSLError, ConnectionResetError, OSError)):
        site_b.works(channel.a, cu.B_WG, leaf=None)
    site_b.gw.wait_for_event("refused", route="in", reason="tls_no_client_certificate")
    with pytest.raises((ssl.SSLError, ConnectionResetError, OSError)):
        site_b.works(channel.a, cu.B_WG, leaf="other-client")
    site_b.gw.wait_for_event("refused", route="in", reason="tls_untrusted_chain")


def test_tunnel_down_and_up_is_survived_without_a_restart(site_b, channel):
    assert site_b.works(channel.a, cu.B_WG)
    pid = site_b.gw.proc.pid
    channel.tunnel(False)
    with pytest.raises(OSError):
        site_b.works(channel.a, cu.B_WG, timeout=1.0)
    channel.tunnel(True)

    def back():
        try:
            return site_b.works(channel.a, cu.B_WG, timeout=1.0)
        except OSError:
            return False

    util.wait_until(back, 20, interval=0.2, what="new connections through the tunnel again")
    assert site_b.gw.running() and site_b.gw.proc.pid == pid


def test_without_interface_the_open_network_reaches_the_route(request, tmp_path, zonegate_bin,
                                                             pki, channel):
    """What the `interface` key adds: the same route listening on every
    address serves the open network too (so the refusal above is its doing)."""
    s = SiteB(request, tmp_path, zonegate_bin, pki, channel, interface=False)
    try:
        assert s.works(channel.t, cu.B_T)
    finally:
        s.stop()
