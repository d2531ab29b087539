"""Where a provider call may go: public internet addresses only, checked when connecting.

A provider's URL is typed by a merchant or an operator, and a provider's answer may redirect: both
could point the hub at itself, its database, its cache or a cloud metadata service (SSRF). Checking
the URL when it is saved is not enough: the name may resolve elsewhere a minute later (DNS
rebinding). So every transport resolves the name itself when it connects, refuses the connection
unless every address is globally routable, and connects to the address it checked.

`PROVIDER_URL_ALLOW_PRIVATE` (on in development, where the simulators run on loopback) lifts the
check.
"""

import ipaddress
import socket

from django.conf import settings
from django.utils.translation import gettext as _

from . import errors


def private_allowed():
    return bool(getattr(settings, "PROVIDER_URL_ALLOW_PRIVATE", False))


def is_public(address):
    """Whether an IP address (text or ipaddress object) is globally routable unicast."""
    ip = ipaddress.ip_address(str(address).split("%", 1)[0])  # a scoped IPv6 address ends with %zone
    if ip.version == 6:
        # IPv4 inside IPv6 (::ffff:127.0.0.1, 64:ff9b::7f00:1, 6to4's 2002:7f00:1::) is judged by
        # the IPv4 address: a gateway on the way may deliver it there.
        if ip.ipv4_mapped is not None:
            return is_public(ip.ipv4_mapped)
        if ip in _NAT64:
            return is_public(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if ip.sixtofour is not None:
            return is_public(ip.sixtofour)
    if any(ip in network for network in _NOT_GLOBAL):
        return False
    # `is_global` alone lets multicast through (224.0.0.0/4 is not in its private table).
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified or ip.is_loopback)


_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Not globally reachable per IANA's special-purpose registries, yet `is_global` on Python 3.11 says
# they are (newer Pythons agree with IANA on most); fec0::/10 is the deprecated site-local range,
# still routed inside some networks.
_NOT_GLOBAL = tuple(
    ipaddress.ip_network(network)
    for network in ("192.0.0.0/24", "192.88.99.0/24", "fec0::/10", "3fff::/20", "5f00::/16")
)


def resolve(host, port, *, family=0, socktype=socket.SOCK_STREAM):
    """`getaddrinfo` for a provider's host, refusing unless every address is public (one private
    answer among public ones is how a rebinding attack hides). Returns the addrinfo tuples; connect
    to one of them, not to the name, so that what was checked is what is used."""
    host = (host or "").strip("[]")
    try:
        infos = socket.getaddrinfo(host, port, family, socktype)
    except (socket.gaierror, UnicodeError) as exc:
        raise errors.ProviderUnavailable(
            _("The provider's host name %(host)s could not be resolved.") % {"host": host}, sent=False
        ) from exc
    if not infos:
        raise errors.ProviderUnavailable(
            _("The provider's host name %(host)s could not be resolved.") % {"host": host}, sent=False
        )
    if not private_allowed():
        for info in infos:
            if not is_public(info[4][0]):
                raise errors.ForbiddenDestination()
    return infos


def connect(host, port, timeout=None, source_address=None):
    """`socket.create_connection` to a checked address of `host`: what every non-HTTP transport
    uses to open its socket (HTTP goes through `CheckedHTTPAdapter` in `http.py`)."""
    last = None
    for family, socktype, proto, _canon, sockaddr in resolve(host, port):
        sock = socket.socket(family, socktype, proto)
        try:
            if timeout is not None:
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            last = exc
            sock.close()
    raise last
