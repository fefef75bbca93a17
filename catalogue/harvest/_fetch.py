"""Fetching one page from a harvest source, within limits, over plain HTTP(S).

A source is an address the operator configured, but the peer behind it is not trusted to behave:
it may answer slowly, endlessly, with a redirect elsewhere or with something huge. Every fetch
therefore has a connect/read timeout *and* a whole-response deadline (a peer dripping one byte
per second defeats a read timeout alone), a byte cap checked while streaming, and redirects are
followed only to the same origin (scheme, host and port), a few hops at most: a source never
makes this node talk to a host the operator did not name.

Every connection also passes the node's address policy (:class:`connector.addresses.AddressPolicy`)
on the address it *actually* reached: a source whose name resolves (or, by DNS rebinding, later
resolves) to a loopback, private, link-local or metadata address is refused before a byte is
sent, unless ``node.toml`` allows that network. The requests go through ``http.client`` because
its connection factory is where that check can sit.
"""

from __future__ import annotations

import contextlib
import http.client as http_client
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from connector.addresses import AddressPolicy, PeerRefused, guarded_create_connection

#: Connect and per-read timeout (seconds).
DEFAULT_TIMEOUT_SECONDS = 10.0
#: A whole response must arrive within this time, however it trickles in.
DEFAULT_DEADLINE_SECONDS = 60.0
#: One page (or one dump) larger than this is refused: a catalogue page of 1,000 records is a few MB.
DEFAULT_MAX_PAGE_BYTES = 32 * 1024 * 1024
#: Same-origin redirects followed for one fetch (a loop of redirects ends here).
MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
USER_AGENT = "sluis-harvester/1"
# N-Triples first: a Sluis node serves its pages as stored text in it (cheapest on both sides).
ACCEPT = (
    "application/n-triples, text/turtle;q=0.9, application/ld+json;q=0.8, "
    "application/rdf+xml;q=0.7, text/html;q=0.1"
)


class FetchError(Exception):
    """A page that could not be had; ``code`` is machine-readable, the message names the URL."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


#: Idle kept-alive connections per origin (a harvester reads one page at a time per source).
MAX_IDLE_PER_ORIGIN = 2
_CHUNK_BYTES = 256 * 1024


@dataclass(frozen=True)
class FetchLimits:
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    deadline_seconds: float = DEFAULT_DEADLINE_SECONDS
    max_bytes: int = DEFAULT_MAX_PAGE_BYTES
    addresses: AddressPolicy = field(default_factory=AddressPolicy)
    """Where a fetch may connect; refuses loopback and private networks unless allowed."""


@dataclass(frozen=True)
class Fetched:
    url: str
    """Where the body came from (after same-origin redirects)."""
    status: int
    body: bytes
    media_type: str
    etag: str | None = None
    last_modified: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.status == 304


def origin_of(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return scheme, (parts.hostname or "").lower(), port


def check_source_url(url: str) -> str:
    """An http(s) URL with a host, or a ``FetchError`` naming what is wrong with it."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise FetchError("invalid-url", f"{url!r} is not an absolute http(s) URL")
    if parts.username or parts.password:
        raise FetchError("invalid-url", f"{url!r} carries credentials; configure them elsewhere")
    return url


_Origin = tuple[str, str, int]


class Fetcher:
    """Fetches pages with the limits above, keeping a few connections per origin alive."""

    def __init__(self, limits: FetchLimits | None = None) -> None:
        self.limits = limits or FetchLimits()
        self._connect = guarded_create_connection(self.limits.addresses)
        self._idle: dict[_Origin, list[http_client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._tls: ssl.SSLContext | None = None

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()

    def check(self, url: str) -> None:
        """Refuse (``FetchError``) a URL whose host resolves to an address the policy refuses."""
        check_source_url(url)
        _, host, port = origin_of(url)
        try:
            addresses = self.limits.addresses.resolver(host, port)
        except (OSError, UnicodeError) as error:
            raise FetchError("unreachable", f"{url}: the host {host} does not resolve ({error})") from None
        for address in addresses:
            reason = self.limits.addresses.ip_refusal(address)
            if reason is not None:
                raise FetchError(
                    "address-refused",
                    f"{url}: {host} resolves to {reason}; node.toml's [node] allow_loopback / "
                    "allowed_networks decide which internal networks may be harvested",
                )

    def get(self, url: str, *, etag: str | None = None, last_modified: str | None = None) -> Fetched:
        check_source_url(url)
        origin = origin_of(url)
        headers = {"Accept": ACCEPT, "User-Agent": USER_AGENT}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        deadline = time.monotonic() + self.limits.deadline_seconds
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            status, body, response_headers = self._once(current, headers, deadline)
            if status in _REDIRECTS:
                location = response_headers.get("location")
                if not location:
                    raise FetchError("bad-redirect", f"{current} redirected without a Location")
                target = urljoin(current, location)
                if origin_of(target) != origin:
                    raise FetchError(
                        "redirect-refused",
                        f"{current} redirected to another host ({target[:200]}); "
                        "a source is harvested only from the host the operator configured",
                    )
                current = target
                continue
            media_type = response_headers.get("content-type", "").split(";")[0].strip().lower()
            return Fetched(
                current,
                status,
                body,
                media_type,
                response_headers.get("etag"),
                response_headers.get("last-modified"),
            )
        raise FetchError("too-many-redirects", f"{url} redirected more than {MAX_REDIRECTS} times")

    def _take(self, origin: _Origin) -> tuple[http_client.HTTPConnection, bool]:
        with self._lock:
            pooled = self._idle.get(origin)
            if pooled:
                return pooled.pop(), True
        scheme, host, port = origin
        timeout = self.limits.timeout_seconds
        connection: http_client.HTTPConnection
        if scheme == "https":
            if self._tls is None:
                self._tls = ssl.create_default_context()
            connection = http_client.HTTPSConnection(host, port, timeout=timeout, context=self._tls)
        else:
            connection = http_client.HTTPConnection(host, port, timeout=timeout)
        connection._create_connection = self._connect  # type: ignore[attr-defined]
        return connection, False

    def _give_back(self, origin: _Origin, connection: http_client.HTTPConnection) -> None:
        with self._lock:
            pooled = self._idle.setdefault(origin, [])
            if len(pooled) < MAX_IDLE_PER_ORIGIN:
                pooled.append(connection)
                return
        connection.close()

    def _once(self, url: str, headers: dict[str, str], deadline: float) -> tuple[int, bytes, dict[str, str]]:
        parts = urlsplit(url)
        origin = origin_of(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        for attempt in (1, 2):
            connection, reused = self._take(origin)
            watchdog = _Watchdog(deadline)
            try:
                try:
                    if connection.sock is None:
                        connection.connect()
                    watchdog.start(connection.sock)
                    connection.request("GET", target, headers=headers)
                    response = connection.getresponse()
                    body = self._read(url, response, deadline)
                    if watchdog.fired:  # the shutdown may read as an end of headers or body
                        raise self._failure(url, TimeoutError(), watchdog)
                except FetchError:
                    connection.close()
                    raise
                except PeerRefused as refused:
                    connection.close()
                    raise FetchError(
                        "address-refused",
                        f"{url}: {refused}; node.toml's [node] allow_loopback / allowed_networks "
                        "decide which internal networks may be harvested",
                    ) from None
                except (http_client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as error:
                    connection.close()
                    if reused and attempt == 1 and not watchdog.fired:
                        continue  # the peer closed a kept-alive connection before our request
                    raise self._failure(url, error, watchdog) from None
                except (OSError, http_client.HTTPException) as error:
                    connection.close()
                    raise self._failure(url, error, watchdog) from None
            finally:
                watchdog.cancel()
            answer = {name.lower(): value for name, value in response.getheaders()}
            if watchdog.fired or response.will_close or not response.isclosed():
                connection.close()
            else:
                self._give_back(origin, connection)
            return response.status, body, answer
        raise FetchError("unreachable", f"{url}: the connection kept closing")

    def _failure(self, url: str, error: BaseException, watchdog: _Watchdog) -> FetchError:
        if watchdog.fired:
            return FetchError("deadline", f"{url} did not finish within {self.limits.deadline_seconds:g} s")
        if isinstance(error, TimeoutError):
            return FetchError("timeout", f"{url} did not answer within {self.limits.timeout_seconds:g} s")
        return FetchError("unreachable", f"{url}: {type(error).__name__}: {error}"[:500])

    def _read(self, url: str, response: http_client.HTTPResponse, deadline: float) -> bytes:
        limit = self.limits.max_bytes
        declared = response.getheader("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise FetchError("page-too-large", f"{url} announced {declared} bytes; the cap is {limit}")
        body = bytearray()
        while True:
            chunk = response.read1(_CHUNK_BYTES)  # what arrived, never waiting to fill a buffer
            if not chunk:
                return bytes(body)
            body.extend(chunk)
            if len(body) > limit:
                raise FetchError("page-too-large", f"{url} sent more than {limit} bytes")
            if time.monotonic() > deadline:
                raise FetchError(
                    "deadline", f"{url} did not finish within {self.limits.deadline_seconds:g} s"
                )


class _Watchdog:
    """Shuts the socket down when the whole exchange outlasts its deadline: a peer trickling its
    status line or headers a byte at a time never trips a read timeout, and http.client reads
    those before any of our code runs. Shutting down wakes the blocked read with an error."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.fired = False
        self._timer: threading.Timer | None = None

    def start(self, sock: socket.socket | None) -> None:
        if sock is None:
            return

        def fire() -> None:
            self.fired = True
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

        self._timer = threading.Timer(max(self.deadline - time.monotonic(), 0.0), fire)
        self._timer.daemon = True
        self._timer.start()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
