"""Which network addresses the connector may send a request to when a peer chose the address.

A peer names places we will contact: a ``callbackAddress`` we POST to with our own token, a
did:web host whose DID document we fetch, later a push destination we write data to. Each is a
server-side request forgery waiting to happen: the peer aims us at ``http://127.0.0.1:5432``, a
cloud metadata service at ``169.254.169.254`` or a host on the operator's private network. This
module is the one place that decides, for every such address:

* the form: ``http``/``https`` only, a host, no userinfo (``user@host`` hides the real host from
  naive readers), no query string or fragment, no whitespace or control characters, at most
  :data:`MAX_URL_CHARS`;
* the host spelling: numeric hosts must be canonical dotted-quad IPv4 or bracketed IPv6, so
  ``2130706433``, ``0177.0.0.1``, ``0x7f.1`` and IPv6 zone ids (``fe80::1%eth0``) are refused
  rather than left to whatever a resolver makes of them;
* the destination, *after* DNS resolution: every address a name resolves to must be globally
  routable; loopback, private, link-local, shared (CGNAT), multicast, unspecified, reserved and
  documentation ranges are refused, also when written as IPv4-mapped (``::ffff:127.0.0.1``) or
  embedded (NAT64, 6to4, Teredo) IPv6.

Exceptions are explicit operator settings: ``allow_loopback`` (development on one machine: the
demo and the tests) and ``allowed_networks`` (a data space on a private network). A name that
resolves to a permitted address now may resolve elsewhere later (DNS rebinding), so a client
that sends the request should also check the address it actually connected to with
:meth:`AddressPolicy.check_ip`.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]

#: Longest URL a peer may make us contact; real DSP base URLs are far shorter.
MAX_URL_CHARS = 2048
#: At most this many addresses of one name are checked; a name with more is refused, not sampled.
MAX_RESOLVED_ADDRESSES = 32
#: Operators list a handful of networks; a bound keeps a typo'd config from being a DoS.
MAX_ALLOWED_NETWORKS = 256

_SCHEMES = {"http": 80, "https": 443}
# Every label numeric (decimal, octal with a leading zero, or hex): a resolver may read such a
# host as an IPv4 address in a form ipaddress does not accept, so it must be canonical or nothing.
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$", re.IGNORECASE)
_HOST_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", re.IGNORECASE)
_FORBIDDEN_CHARS = re.compile(r"[\x00-\x20\x7f\\]")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# IPv6 forms whose last 32 bits are an IPv4 host a translator or the stack may deliver to, beyond
# the mapped (::ffff:0:0/96) and NAT64 ones: the local-use NAT64 prefix (RFC 8215), IPv4-
# translated SIIT addresses (::ffff:0:0:0/96, RFC 2765) and deprecated IPv4-compatible ones (::/96).
_EMBEDDING_LOW_32 = (
    ipaddress.IPv6Network("64:ff9b:1::/48"),
    ipaddress.IPv6Network("::ffff:0:0:0/96"),
    ipaddress.IPv6Network("::/96"),
)
# The only IPv6 range assigned for global unicast; everything else is reserved, deprecated
# (site-local fec0::/10), documentation (3fff::/20) or special, which ``ipaddress`` does not all
# mark as non-global (it calls ::7f00:1 and 4000::1 global).
_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
_NAT64_PREFIXES = (_NAT64, _EMBEDDING_LOW_32[0])
# Inside 2000::/3 but not global, and newer than the ``ipaddress`` tables: documentation (RFC 9637).
_NOT_GLOBAL_UNICAST = (ipaddress.IPv6Network("3fff::/20"),)


class AddressRefused(ValueError):
    """An address the policy does not let the connector contact; the message says why."""


class PeerRefused(ConnectionError):
    """A connection reached an address the policy refuses (the name resolved elsewhere since)."""


def default_resolver(host: str, port: int) -> list[str]:
    """All addresses ``host`` resolves to for TCP (the system resolver, as the request would)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


@dataclass(frozen=True)
class Destination:
    """A checked URL: its parts and the addresses its host resolved to when checked."""

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]

    @property
    def origin(self) -> tuple[str, str, int]:
        return self.scheme, self.host, self.port

    def pinned(self) -> tuple[str, dict[str, str], dict[str, str]]:
        """For an ``httpx`` request to this destination: the URL with its host replaced by the
        first checked address, the ``Host`` header naming the host as written, and the
        ``sni_hostname`` extension (TLS still checks the certificate of the name).

        Requesting the URL as written lets the client resolve the name again, and a peer that
        controls its DNS can answer the second time with an internal address (DNS rebinding):
        the pinned request connects to the very address that was checked."""
        parts = urlsplit(self.url)
        address = self.addresses[0]
        literal = f"[{address}]" if ":" in address else address
        url = parts._replace(netloc=f"{literal}:{self.port}").geturl()
        return url, {"Host": parts.netloc}, {"sni_hostname": self.host}


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form carries (mapped, NAT64, 6to4, Teredo), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if any(address in network for network in _EMBEDDING_LOW_32) and int(address) > 1:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def parse_networks(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    """CIDR strings as networks; raises ``ValueError`` naming the one that is not a network."""
    networks: list[IPNetwork] = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value, strict=True))
        except ValueError as error:
            raise ValueError(f"{value!r} is not a network in CIDR form ({error})") from None
    if len(networks) > MAX_ALLOWED_NETWORKS:
        raise ValueError(f"at most {MAX_ALLOWED_NETWORKS} networks")
    return tuple(networks)


@dataclass(frozen=True)
class AddressPolicy:
    """Where the connector may send requests whose address a peer chose (see the module doc)."""

    allow_loopback: bool = False
    allowed_networks: tuple[IPNetwork, ...] = ()
    resolver: Resolver = field(default=default_resolver, compare=False, repr=False)

    # -- addresses ---------------------------------------------------------------------------

    def ip_refusal(self, text: str) -> str | None:
        """``None`` when the IP address ``text`` may be contacted, else why not."""
        try:
            address: IPAddress = ipaddress.ip_address(text.split("%", 1)[0])
        except ValueError:
            return f"{text!r} is not an IP address"
        if "%" in text:
            return f"{text} carries an IPv6 zone id"
        candidates: list[IPAddress] = [address]
        if isinstance(address, ipaddress.IPv6Address):
            embedded = _embedded_ipv4(address)
            if address.ipv4_mapped is not None:
                candidates = [address.ipv4_mapped]  # the same IPv4 host, spelt in IPv6
            elif embedded is not None and any(address in net for net in _NAT64_PREFIXES):
                candidates = [embedded]  # DNS64 answers these for IPv4 hosts: the host decides
            elif embedded is not None:
                candidates.insert(0, embedded)  # a translator or tunnel delivers to that host
        for candidate in candidates:
            reason = self._range_refusal(candidate)
            if reason is not None:
                if candidate is address:
                    return f"{text} is {reason}"
                return f"{text} embeds {candidate}, {reason}"
        return None

    def _range_refusal(self, address: IPAddress) -> str | None:
        if any(address.version == net.version and address in net for net in self.allowed_networks):
            return None
        if address.is_loopback:
            return None if self.allow_loopback else "a loopback address (allowed only in development)"
        if address.is_unspecified:
            return "the unspecified address"
        if address.is_multicast:
            return "a multicast address"
        if address.is_link_local:
            return "a link-local address"
        if not address.is_global or address.is_reserved:
            return "not a globally routable address (private, shared, reserved or documentation range)"
        if isinstance(address, ipaddress.IPv6Address) and (
            address not in _GLOBAL_UNICAST or any(address in net for net in _NOT_GLOBAL_UNICAST)
        ):
            return "not a global unicast address (outside 2000::/3, or a documentation range)"
        return None

    def check_ip(self, text: str) -> None:
        """Raise :class:`AddressRefused` unless the IP address ``text`` may be contacted."""
        reason = self.ip_refusal(text)
        if reason is not None:
            raise AddressRefused(reason)

    # -- URLs --------------------------------------------------------------------------------

    def check_url(self, url: str, *, what: str = "the address") -> Destination:
        """Check ``url``'s form, host spelling and resolved addresses; raise :class:`AddressRefused`."""
        parts, host, port = self._parse(url, what)
        literal = _literal_ip(host)
        if literal is not None:
            addresses: tuple[str, ...] = (literal,)
        else:
            try:
                addresses = tuple(dict.fromkeys(self.resolver(host, port)))
            except (OSError, UnicodeError) as error:
                raise AddressRefused(f"{what}: the host {host} does not resolve ({error})") from None
            if not addresses:
                raise AddressRefused(f"{what}: the host {host} resolves to no address")
            if len(addresses) > MAX_RESOLVED_ADDRESSES:
                raise AddressRefused(f"{what}: the host {host} resolves to too many addresses")
        for address in addresses:
            reason = self.ip_refusal(address)
            if reason is not None:
                shown = host if literal is not None else f"{host} resolves to {address}, which"
                raise AddressRefused(f"{what}: {shown} {reason.removeprefix(address + ' ')}")
        return Destination(url, parts.scheme, host, port, addresses)

    def url_refusal(self, url: str, *, what: str = "the address") -> str | None:
        try:
            self.check_url(url, what=what)
        except AddressRefused as refusal:
            return str(refusal)
        return None

    @staticmethod
    def _parse(url: str, what: str) -> tuple[SplitResult, str, int]:
        if not isinstance(url, str) or not url:
            raise AddressRefused(f"{what} must be a non-empty URL")
        if len(url) > MAX_URL_CHARS:
            raise AddressRefused(f"{what} is longer than {MAX_URL_CHARS} characters")
        if _FORBIDDEN_CHARS.search(url) or not url.isascii():
            raise AddressRefused(f"{what} must be ASCII without spaces, control characters or backslashes")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as error:
            raise AddressRefused(f"{what} is not a valid URL ({error})") from None
        if parts.scheme not in _SCHEMES:
            raise AddressRefused(f"{what} must be an http or https URL")
        if "@" in parts.netloc:
            raise AddressRefused(f"{what} must not carry user information (user@host)")
        if "?" in url or "#" in url:
            raise AddressRefused(f"{what} must not have a query string or a fragment")
        host = (parts.hostname or "").lower()
        if not host:
            raise AddressRefused(f"{what} has no host")
        _check_host_spelling(host, what)
        return parts, host, port if port is not None else _SCHEMES[parts.scheme]


def _literal_ip(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


def _check_host_spelling(host: str, what: str) -> None:
    if ":" in host or "%" in host:  # an IPv6 literal (urlsplit removed the brackets)
        if "%" in host:
            raise AddressRefused(f"{what}: IPv6 zone ids are not accepted")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise AddressRefused(f"{what}: {host!r} is not a valid IPv6 address") from None
        return
    labels = host.rstrip(".").split(".")
    if _NUMERIC_LABEL.match(labels[-1]):
        # the last label is numeric, so resolvers read the whole host as an IPv4 address
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise AddressRefused(
                f"{what}: {host!r} is a numeric host that is not a canonical dotted-quad IPv4 address"
            ) from None
        return
    if host.endswith(".") or not all(_HOST_LABEL.match(label) for label in labels):
        raise AddressRefused(f"{what}: {host!r} is not a valid host name")


def guarded_create_connection(policy: AddressPolicy) -> Callable[..., socket.socket]:
    """``socket.create_connection`` that checks the address it actually connected to.

    A callback host passed :meth:`AddressPolicy.check_url` when the peer named it, but the
    outbox sends later, resolving the name again: a peer controlling its DNS could answer with
    an internal address by then (DNS rebinding). Checking the connected socket's peer closes
    that gap for every client built on ``http.client`` (``HTTPConnection._create_connection``).
    """

    def create_connection(
        address: tuple[str, int], timeout: float | None = None, source_address: tuple[str, int] | None = None
    ) -> socket.socket:
        return checked_peer(socket.create_connection(address, timeout, source_address), policy, address[0])

    return create_connection


def checked_peer(sock: socket.socket, policy: AddressPolicy, name: str) -> socket.socket:
    """``sock`` if the address it is connected to passes ``policy``; else closed, and
    :class:`PeerRefused` naming ``name`` (what was asked for) and the reason."""
    try:
        reason = policy.ip_refusal(str(sock.getpeername()[0]))
    except OSError:
        sock.close()
        raise
    if reason is not None:
        sock.close()
        raise PeerRefused(f"{name} connected to {reason}")
    return sock
