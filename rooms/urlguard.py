"""Outbound URL address checks (the SSRF guard) shared by webhooks and playbacks.

A URL Parley fetches on a caller's behalf (a webhook target, a playback URL opened by the media worker) must not
reach the hosts' own network: loopback, private (RFC 1918, ULA), link-local (169.254.0.0/16 — cloud metadata —
and fe80::/10), CGNAT, reserved, multicast or unspecified addresses, also not hidden in an IPv4-mapped IPv6
address. Deployments that fetch from such hosts on purpose turn the check off per use
(``PARLEY_WEBHOOK_ALLOW_PRIVATE``, ``PARLEY_PLAYBACK_ALLOW_PRIVATE_URLS``).

- ``address_allowed(address)``: one literal address (str) → bool.
- ``host_addresses(host, port)``: the addresses a host name (or literal) resolves to; ``OSError`` /
  ``UnicodeError`` when it does not resolve.
- ``refused_addresses(addresses)``: those of ``addresses`` that ``address_allowed`` refuses.
- ``url_host_refused(url)``: whether the host of a URL is, or resolves to, a refused address.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit


def address_allowed(address: str) -> bool:
    """True for a globally routable unicast address (no private, loopback, link-local, CGNAT, reserved,
    multicast or unspecified address, also not hidden in an IPv4-mapped IPv6 address). ``address`` may carry an
    IPv6 zone (``fe80::1%eth0``). Raises ``ValueError`` for a string that is not an IP address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def host_addresses(host: str, port: int) -> list[str]:
    """Addresses of ``host`` in resolver order (duplicates dropped); a literal address resolves to itself.
    Raises ``OSError`` (``socket.gaierror``) or ``UnicodeError`` when it does not resolve."""
    seen: list[str] = []
    for *_, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        if sockaddr[0] not in seen:
            seen.append(sockaddr[0])
    return seen


def refused_addresses(addresses: list[str]) -> list[str]:
    """The addresses of ``addresses`` that are not globally routable (see ``address_allowed``)."""
    return [a for a in addresses if not address_allowed(a)]


def url_host_refused(url: str) -> bool:
    """True when the host of ``url`` (a literal address, bracketed IPv6 included, or a name) is or resolves to
    an address ``address_allowed`` refuses, or when ``url`` has no host at all (a file path, ``file://``).
    Raises ``OSError`` / ``UnicodeError`` when the host does not resolve, ``ValueError`` for a malformed port."""
    parts = urlsplit(url)
    if not parts.hostname:
        return True
    return bool(refused_addresses(host_addresses(parts.hostname, parts.port)))
