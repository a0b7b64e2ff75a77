"""Where the broker may send a request on someone else's say-so: public addresses only.

A webhook URL comes from an account, and the broker POSTs to it from inside the district's
network. Without a check, a startup could make the broker call the Docker API on 127.0.0.1,
the cloud's metadata service on 169.254.169.254, or a database on the private network.

`DestinationGuard.check` parses the URL, refuses the integer spellings of an address that
resolvers accept (2130706433, 0x7f000001, 0177.0.0.1, 127.1), resolves the name and refuses it
unless every address is global unicast. `post` then connects to the address the check
approved, sending the name as Host and for TLS (SNI and certificate), so a name that resolves
elsewhere a moment later (DNS rebinding) changes nothing; it never follows a redirect.
An operator's allow-list lets named local targets through: an entry matches the URL's host
as written (a name, an address, or a network for address literals), never an address that
some other name resolves to.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]

SCHEMES = {"http": 80, "https": 443}
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT; not "private" to ipaddress
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# What resolvers read as an IPv4 address: a last label that is a decimal, octal or hex number.
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$", re.IGNORECASE)
_HOST_NAME = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,62})(?:\.[a-z0-9_](?:[a-z0-9_-]{0,62}))*$")
_PUBLIC_ONLY = "webhooks go only to public addresses"


class RefusedDestination(Exception):
    """The URL may not be called; `reason` says why, fit to show to whoever gave it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Destination:
    """A URL that passed the check, and the address it is to be reached at."""

    url: str
    scheme: str
    host: str  # as written in the URL: lower-case, A-labels for an internationalised name, no brackets
    port: int
    address: str

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == SCHEMES[self.scheme] else f"{host}:{self.port}"


def system_resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to, in the resolver's order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]).split("%", 1)[0] for info in infos))


@dataclass(frozen=True)
class DestinationGuard:
    """The check every outgoing webhook passes, at registration and again at delivery."""

    allowed_names: frozenset[str] = frozenset()
    allowed_networks: tuple[Network, ...] = ()
    https_only: bool = False
    resolve: Resolver = field(default=system_resolve, compare=False)

    @classmethod
    def parse(cls, allowed: Iterable[str], *, https_only: bool = False, resolve: Resolver = system_resolve) -> DestinationGuard:
        """A guard from allow-list entries (names, addresses, CIDR networks); ValueError names a bad entry."""
        names, networks = set(), []
        for raw in allowed:
            entry = raw.strip().lower().rstrip(".")
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            if not _HOST_NAME.match(entry) or _NUMERIC_LABEL.match(entry.rsplit(".", 1)[-1]):
                raise ValueError(f"{raw!r} is not a host name, an IP address or a CIDR network")
            names.add(entry)
        return cls(frozenset(names), tuple(networks), https_only, resolve)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> DestinationGuard:
        """The guard the app's settings ask for: their allow-list; https only in production."""
        return cls.parse(config.get("WEBHOOK_ALLOWED_HOSTS") or (), https_only=config.get("BROKER_ENV") == "production")

    def check(self, url: str) -> Destination:
        """The destination `url` names, resolved and checked; RefusedDestination says why not."""
        scheme, host, port = self._parse(url)
        literal = _address_literal(host)
        if literal is not None:
            if not any(literal in network for network in self.allowed_networks):
                _refuse_unless_public(literal, str(literal))
            return Destination(url, scheme, host, port, str(literal))
        try:
            addresses = [ipaddress.ip_address(a) for a in self.resolve(host, port)]
        except (OSError, UnicodeError, ValueError):
            raise RefusedDestination(f"{host} does not resolve.") from None
        if not addresses:
            raise RefusedDestination(f"{host} does not resolve.")
        if host not in self.allowed_names:
            for address in addresses:
                _refuse_unless_public(address, f"{host} resolves to {address}, which")
        return Destination(url, scheme, host, port, str(addresses[0]))

    def _parse(self, url: str) -> tuple[str, str, int]:
        if any(c in url for c in "\\\x00\t\r\n ") or not url.isprintable():
            raise RefusedDestination("Not a URL: it contains spaces, backslashes or control characters.")
        try:
            parts = urlsplit(url)
        except ValueError:
            raise RefusedDestination("Not a URL.") from None
        scheme = parts.scheme.lower()
        if scheme not in SCHEMES:
            raise RefusedDestination("Not an http(s) URL.")
        if self.https_only and scheme != "https":
            raise RefusedDestination("Webhooks must use https.")
        if "@" in parts.netloc:
            raise RefusedDestination("A webhook URL may not carry a user name or password.")
        host = (parts.hostname or "").rstrip(".")
        if not host:
            raise RefusedDestination("The URL has no host.")
        try:
            port = SCHEMES[scheme] if parts.port is None else parts.port
        except ValueError:
            port = 0
        if not 0 < port < 65536:
            raise RefusedDestination("The port is not a number from 1 to 65535.")
        if _address_literal(host) is None:
            if _NUMERIC_LABEL.match(host.rsplit(".", 1)[-1]):
                raise RefusedDestination(
                    f"{host} is a number but not a dotted-quad IPv4 address: "
                    "decimal, hex, octal and shortened spellings of addresses are refused."
                )
            try:
                # An internationalised name is checked, resolved, matched and sent as its A-labels.
                ascii_host = host if host.isascii() else host.encode("idna").decode("ascii").lower()
            except UnicodeError:
                ascii_host = ""
            if not _HOST_NAME.match(ascii_host):
                raise RefusedDestination(f"{host!r} is not a host name.")
            host = ascii_host
        return scheme, host, port


def _address_literal(host: str) -> Address | None:
    """The address a host is written as: only the canonical dotted quad or an IPv6 literal."""
    try:
        return ipaddress.ip_address(host)  # strict: leading zeros and short forms are not addresses
    except ValueError:
        return None


def refusal(address: Address) -> str | None:
    """Why `address` is no place for a webhook, or None for a global unicast address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            inner = refusal(address.ipv4_mapped)
            return f"is {address.ipv4_mapped} written as IPv6" + (f", which {inner}" if inner else "; write the IPv4 address")
        embedded = address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        inner = refusal(embedded) if embedded is not None else None
        if inner is not None:
            return f"wraps {embedded}, which {inner}"
    checks = (
        ("is_unspecified", "is the unspecified address"),
        ("is_loopback", "is a loopback address"),
        ("is_link_local", "is a link-local address (where cloud metadata services live)"),
        ("is_multicast", "is a multicast address"),
        ("is_site_local", "is a site-local address"),
    )
    for attribute, reason in checks:
        if getattr(address, attribute, False):
            return reason
    if address in _SHARED:
        return "is in the shared address space of carrier-grade NAT (100.64.0.0/10)"
    if address.is_private:
        return "is a private or special-purpose address"
    if address.is_reserved or not address.is_global:
        return "is a reserved address"
    return None


def _refuse_unless_public(address: Address, subject: str) -> None:
    reason = refusal(address)
    if reason is not None:
        raise RefusedDestination(f"{subject} {reason}: {_PUBLIC_ONLY}.")


class _PinnedAdapter(HTTPAdapter):
    """Connects to the checked address; Host, SNI and the certificate check use the URL's name.

    `get_connection_with_tls_context` is the hook requests offers adapters from 2.32.2 on
    (setup.cfg's floor); older versions never call it and would connect to the name.
    """

    def __init__(self, destination: Destination) -> None:
        self.destination = destination
        super().__init__(max_retries=0)

    def get_connection_with_tls_context(self, request: Any, verify: Any, proxies: Any = None, cert: Any = None) -> Any:
        host_params, pool_kwargs = self.build_connection_pool_key_attributes(request, verify, cert)
        host_params["host"] = self.destination.address
        if self.destination.scheme == "https":
            pool_kwargs["server_hostname"] = self.destination.host
            pool_kwargs["assert_hostname"] = self.destination.host
        return self.poolmanager.connection_from_host(**host_params, pool_kwargs=pool_kwargs)


def post(http: requests.Session, destination: Destination, body: bytes, headers: Mapping[str, str], timeout: float) -> int:
    """POST `body` to the checked destination, on its checked address, and return the status.

    Never through a proxy (it would resolve the name again) and never following a redirect;
    the response body is not read.
    """
    # Not the session's prepare_request: it would add credentials from ~/.netrc for the name.
    request = requests.Request("POST", destination.url, data=body, headers={**http.headers, **headers}).prepare()
    request.headers["Host"] = destination.host_header
    adapter = _PinnedAdapter(destination)
    try:
        response = adapter.send(request, stream=True, timeout=timeout, verify=http.verify, cert=http.cert, proxies={})
        status = response.status_code
        response.close()
        return status
    finally:
        adapter.close()
