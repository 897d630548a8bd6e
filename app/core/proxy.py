"""Behind a reverse proxy: the client's address, scheme and host from ``X-Forwarded-For``,
``X-Forwarded-Proto`` and ``X-Forwarded-Host`` — believed only when the connection comes from
a trusted proxy (``BLEND727_TRUSTED_PROXIES``: IP addresses and CIDR networks).

``X-Forwarded-For`` is read from the right: each trusted proxy on the way is skipped, and the
first address that is not a trusted proxy is the client (a client can write anything to the
left of it, never to the right). With several hops, the scheme and host are taken from the
same hop as the client when every proxy appended its own, else from the nearest proxy.
"""

from __future__ import annotations

import ipaddress
import re
from typing import TypeAlias

from starlette.types import ASGIApp, Receive, Scope, Send

Network: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network
Address: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address

_HOST = re.compile(
    r"^(?:[A-Za-z0-9][A-Za-z0-9-]{0,62}(?:\.[A-Za-z0-9-]{1,63})*|\[[0-9A-Fa-f:.]+\])"
    r"(?::\d{1,5})?$"
)


def parse_networks(spec: str) -> list[Network]:
    """``"10.0.0.1, 192.168.0.0/16, ::1"`` → networks; a bad entry is a ``ValueError``."""
    networks: list[Network] = []
    for entry in (e.strip() for e in spec.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(
                f"BLEND727_TRUSTED_PROXIES: {entry!r} is not an IP address or network (CIDR)"
            ) from None
    return networks


def parse_address(value: str) -> Address | None:
    """An address as proxies write it: ``1.2.3.4``, ``1.2.3.4:5678``, ``::1``, ``[::1]:80``."""
    text = value.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class TrustedProxies:
    def __init__(self, spec: str | list[Network]) -> None:
        self.networks = parse_networks(spec) if isinstance(spec, str) else list(spec)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def __contains__(self, address: Address | None) -> bool:
        if address is None:
            return False
        return any(address.version == n.version and address in n for n in self.networks)


def _values(headers: list[tuple[bytes, bytes]], name: bytes) -> list[str]:
    """A header's comma-separated values, over all of its lines, in order."""
    joined = ",".join(v.decode("latin-1") for k, v in headers if k == name)
    return [v.strip() for v in joined.split(",")] if joined else []


def _same_hop(values: list[str], hop: int, hops: int) -> str | None:
    if not values:
        return None
    return values[hop] if len(values) == hops else values[-1]


def forwarded(
    peer: str | None, headers: list[tuple[bytes, bytes]], trusted: TrustedProxies
) -> tuple[str | None, str | None, str | None]:
    """(client address, scheme, host) the proxies vouch for; ``None`` for what stays as is."""
    if not trusted or parse_address(peer or "") not in trusted:
        return None, None, None
    chain = _values(headers, b"x-forwarded-for")
    client: str | None = None
    hop = len(chain) - 1
    while hop >= 0:
        address = parse_address(chain[hop])
        if address is None:  # garbage: believe nothing further left
            hop += 1
            break
        client = str(address)
        if address not in trusted:
            break
        hop -= 1
    hop = max(hop, 0)
    if client is None:
        hop = len(chain) - 1
    scheme = _same_hop(_values(headers, b"x-forwarded-proto"), hop, len(chain))
    host = _same_hop(_values(headers, b"x-forwarded-host"), hop, len(chain))
    return (
        client,
        scheme.lower() if scheme and scheme.lower() in ("http", "https") else None,
        host if host and _HOST.match(host) else None,
    )


class ProxyHeadersMiddleware:
    """Rewrites ``scope["client"]``, ``scope["scheme"]`` and the ``Host`` header from a
    trusted proxy's ``X-Forwarded-*``; from anyone else those headers change nothing."""

    def __init__(self, app: ASGIApp, trusted: TrustedProxies) -> None:
        self.app = app
        self.trusted = trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and self.trusted:
            peer = scope.get("client")
            headers = scope.get("headers", [])
            client, scheme, host = forwarded(peer[0] if peer else None, headers, self.trusted)
            if client is not None:
                scope["client"] = (client, 0)
            if scheme is not None:
                ws = scope["type"] == "websocket"
                scope["scheme"] = scheme.replace("http", "ws") if ws else scheme
            if host is not None:
                scope["headers"] = [(k, v) for k, v in headers if k != b"host"] + [
                    (b"host", host.encode("latin-1"))
                ]
        await self.app(scope, receive, send)
