"""ICE configuration of the media worker's peer connections (DESIGN §6 "ICE settings").

- ``rtc_configuration()``: ``RTCConfiguration(iceServers=[...])`` built from ``PARLEY_ICE_SERVERS``. Never
  ``None``: aiortc falls back to a public STUN server when ``iceServers`` is None.
- Host addresses: aioice gathers host candidates on every non-loopback interface and leaves 127.0.0.1 out, and
  neither aioice (0.13: only ``use_ipv4``/``use_ipv6`` on ``Connection``) nor aiortc (which builds the
  ``Connection`` itself) lets a caller choose them. Parley's peers gather on ``PARLEY_ICE_HOST_ADDRESSES`` only
  (default ``127.0.0.1``) through one idempotent replacement of ``aioice.ice.get_host_addresses`` (``install()``)
  that consults a context variable: inside a *Parley ICE scope* it returns those addresses, everywhere else it
  calls aioice's own lookup unchanged. So in the embedded mode the web process's other aioice users keep
  aioice's behaviour. ``restrict_host_addresses()`` enters the scope for the current context — an asyncio task and
  the tasks it starts afterwards (the worker enters it in each session's task; a test or benchmark enters it for
  its own synthetic peers); ``host_addresses_scope()`` is the same as a ``with`` block.
- ``announce_address(sdp)``: rewrites host candidates to ``PARLEY_ICE_ANNOUNCED_ADDRESS`` (1:1 NAT, like
  mediasoup's ``announcedIp``).
"""

from __future__ import annotations

import contextlib
import contextvars
import ipaddress
import logging
from collections.abc import Callable, Iterator

import aioice.ice
from aiortc import RTCConfiguration, RTCIceServer
from django.conf import settings

logger = logging.getLogger(__name__)


def host_addresses() -> list[str]:
    """The local addresses host candidates are gathered on, from ``PARLEY_ICE_HOST_ADDRESSES``."""
    return [a.strip() for a in settings.PARLEY_ICE_HOST_ADDRESSES if a.strip()]


def _parley_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    out = []
    for address in host_addresses():
        version = ipaddress.ip_address(address).version
        if (version == 4 and use_ipv4) or (version == 6 and use_ipv6):
            out.append(address)
    return out


# True inside a Parley ICE scope (see the module docstring).
_scope: contextvars.ContextVar[bool] = contextvars.ContextVar("parley_ice_host_addresses", default=False)
# aioice's own lookup, kept by ``install()``.
_aioice_lookup: Callable[[bool, bool], list[str]] = aioice.ice.get_host_addresses


def _scoped_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    """``aioice.ice.get_host_addresses`` once installed: Parley's addresses inside the scope, aioice's outside."""
    if _scope.get():
        return _parley_host_addresses(use_ipv4, use_ipv6)
    return _aioice_lookup(use_ipv4, use_ipv6)


def install() -> None:
    """Replace ``aioice.ice.get_host_addresses`` by the scoped lookup (once per process; idempotent). Changes
    nothing outside a Parley ICE scope."""
    global _aioice_lookup
    current = aioice.ice.get_host_addresses
    if current is _scoped_host_addresses:
        return
    _aioice_lookup = current
    aioice.ice.get_host_addresses = _scoped_host_addresses
    logger.info("ICE host candidates of Parley's peers: %s", ",".join(host_addresses()))


def aioice_host_addresses(use_ipv4: bool = True, use_ipv6: bool = True) -> list[str]:
    """What aioice itself gathers on (every interface but loopback): the lookup outside the scope."""
    return _aioice_lookup(use_ipv4, use_ipv6)


def in_host_addresses_scope() -> bool:
    """Whether peers created here gather on ``PARLEY_ICE_HOST_ADDRESSES``."""
    return _scope.get()


def restrict_host_addresses() -> None:
    """Gather host candidates on ``PARLEY_ICE_HOST_ADDRESSES`` only, for the peers of the current context (this
    asyncio task, or this thread outside a loop, and the tasks started from it afterwards). Idempotent."""
    install()
    _scope.set(True)


@contextlib.contextmanager
def host_addresses_scope() -> Iterator[None]:
    """``with host_addresses_scope():`` peers gathering inside the block use ``PARLEY_ICE_HOST_ADDRESSES``."""
    install()
    token = _scope.set(True)
    try:
        yield
    finally:
        _scope.reset(token)


def rtc_configuration() -> RTCConfiguration:
    """``RTCConfiguration`` with the ICE servers of ``PARLEY_ICE_SERVERS`` (a list, possibly empty)."""
    servers = []
    for entry in settings.PARLEY_ICE_SERVERS:
        urls = entry.get("urls") or entry.get("url")
        servers.append(RTCIceServer(urls=urls, username=entry.get("username"), credential=entry.get("credential")))
    return RTCConfiguration(iceServers=servers)


def announce_address(sdp: str) -> str:
    """Replace the address of ``typ host`` candidates (and ``c=`` lines) by ``PARLEY_ICE_ANNOUNCED_ADDRESS``.

    Returns ``sdp`` unchanged when the setting is empty.
    """
    announced = settings.PARLEY_ICE_ANNOUNCED_ADDRESS
    if not announced:
        return sdp
    locals_ = set(host_addresses())
    lines = []
    for line in sdp.split("\r\n"):
        if line.startswith("a=candidate:") and " typ host" in line:
            parts = line.split(" ")
            if len(parts) > 5 and parts[4] in locals_:
                parts[4] = announced
                line = " ".join(parts)
        elif line.startswith("c=IN IP4 ") and line[9:] in locals_:
            line = f"c=IN IP4 {announced}"
        lines.append(line)
    return "\r\n".join(lines)
