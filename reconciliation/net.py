"""Outgoing HTTP to addresses someone typed in: which addresses are never
fetched, and connections pinned to the one address that was checked (so a
second DNS answer cannot swap in an internal one)."""

import http.client
import ipaddress
import socket
import ssl

from django.utils.translation import gettext as _


def address_refusal(address: str) -> str | None:
    """Why `address` may not be fetched, or None for a public address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return _("迴環位址")
    if ip.is_link_local:
        return _("鏈路本地位址")
    if ip.is_unspecified or ip.is_reserved or ip.is_multicast:
        return _("保留位址")
    if ip.is_private:
        return _("私有網段位址")
    if not ip.is_global:
        return _("非公開位址")
    return None


class PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the address that was checked, whatever DNS says later;
    the Host header still names the host."""

    def __init__(self, host, port, *, address, timeout):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host, port, *, address, timeout):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        # The certificate is checked against the host name, not the address.
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)
