"""Fetching one page from a harvest source, within limits, over plain HTTP(S).

A source is an address the operator configured, but the peer behind it is not trusted to behave:
it may answer slowly, endlessly, with a redirect elsewhere or with something huge. Every fetch
therefore has a connect/read timeout *and* a whole-response deadline (a peer dripping one byte
per second defeats a read timeout alone), a byte cap checked while streaming, and redirects are
followed only to the same origin (scheme, host and port), a few hops at most: a source never
makes this node talk to a host the operator did not name.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

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


@dataclass(frozen=True)
class FetchLimits:
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    deadline_seconds: float = DEFAULT_DEADLINE_SECONDS
    max_bytes: int = DEFAULT_MAX_PAGE_BYTES


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


class Fetcher:
    """Fetches pages with the limits above; one kept-alive client per harvester."""

    def __init__(self, limits: FetchLimits | None = None, client: httpx.Client | None = None) -> None:
        self.limits = limits or FetchLimits()
        self._client = client or httpx.Client(
            follow_redirects=False,
            timeout=httpx.Timeout(self.limits.timeout_seconds),
            headers={"User-Agent": USER_AGENT},
            trust_env=False,  # no proxy from the environment: the operator named the host
        )

    def close(self) -> None:
        self._client.close()

    def get(self, url: str, *, etag: str | None = None, last_modified: str | None = None) -> Fetched:
        check_source_url(url)
        origin = origin_of(url)
        headers = {"Accept": ACCEPT}
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

    def _once(self, url: str, headers: dict[str, str], deadline: float) -> tuple[int, bytes, httpx.Headers]:
        limit = self.limits.max_bytes
        try:
            with self._client.stream("GET", url, headers=headers) as response:
                declared = response.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > limit:
                    raise FetchError(
                        "page-too-large", f"{url} announced {declared} bytes; the cap is {limit}"
                    )
                body = bytearray()
                for chunk in response.iter_bytes():
                    body.extend(chunk)
                    if len(body) > limit:
                        raise FetchError("page-too-large", f"{url} sent more than {limit} bytes")
                    if time.monotonic() > deadline:
                        raise FetchError(
                            "deadline",
                            f"{url} did not finish within {self.limits.deadline_seconds:g} s",
                        )
                return response.status_code, bytes(body), response.headers
        except httpx.TimeoutException:
            raise FetchError(
                "timeout", f"{url} did not answer within {self.limits.timeout_seconds:g} s"
            ) from None
        except httpx.HTTPError as error:
            raise FetchError("unreachable", f"{url}: {type(error).__name__}: {error}"[:500]) from None
