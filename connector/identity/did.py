"""did:web identifiers, DID documents and an HTTP resolver for them.

did:web maps a DID to an HTTPS URL: ``did:web:example.org`` -> ``https://example.org/.well-known/did.json``,
``did:web:example.org:users:alice`` -> ``https://example.org/users/alice/did.json``, and a port is
written percent-encoded (``did:web:127.0.0.1%3A9191``). Plain HTTP is used only for loopback hosts
so connectors on one machine (tests, the demo) need no certificates; everything else is HTTPS.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import ipaddress
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import quote, unquote

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from connector.addresses import AddressPolicy, AddressRefused
from connector.identity.errors import IdentityError
from connector.identity.keys import KeyPair, public_key_from_multibase, public_key_to_multibase
from vocab.jsonld import DID_V1_CONTEXT as DID_V1_CONTEXT
from vocab.jsonld import MULTIKEY_V1_CONTEXT as MULTIKEY_CONTEXT

logger = logging.getLogger(__name__)

KEY_FRAGMENT = "key-1"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

# A DID document of ours is ~1 KB; 64 KiB leaves room for many keys and services but stops a
# hostile server from streaming an endless body into memory.
MAX_DID_DOCUMENT_BYTES = 64 * 1024
# Peers answer on loopback or a LAN; a slow DID host must not stall a DSP request for long.
# The whole fetch (connect, headers, body) must finish within this.
RESOLVE_TIMEOUT_SECONDS = 2.0
# Fetches in flight at once. Each holds a worker thread for up to the timeout; the server's
# thread pool (40 by default) must keep room for everything else. Beyond this, refuse at once.
MAX_CONCURRENT_FETCHES = 16
# Fetches in flight to one host: a member's host that hangs can hold only these, so it cannot
# keep the documents of every other member from being fetched.
MAX_FETCHES_PER_HOST = 2
# How long a failed resolution is answered from memory: long enough that a host that hangs
# costs one timeout per window however many tokens name it, short enough for a restart.
FAILURE_CACHE_SECONDS = 30.0
# Only failures that cost time are remembered: a refused connection or a 404 is cheap to repeat,
# and remembering it would lock out a peer that was merely restarting (its outbox sends before
# its server listens) for the whole window.
REMEMBER_FAILURES_AFTER_SECONDS = 1.0

# Keys rotate rarely; five minutes bounds how long a revoked key keeps working.
DEFAULT_CACHE_TTL_SECONDS = 300.0
# Enough for every participant of a large data space without unbounded growth.
MAX_CACHED_DOCUMENTS = 10_000
# DIDs arrive in tokens from strangers; bound them before any parsing.
MAX_DID_CHARS = 512

_HOST_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_PATH_SEGMENT = re.compile(r"^[A-Za-z0-9._~!$&'()*+,;=@-]+$")
_RELATIONSHIPS = ("authentication", "assertionMethod")


def _is_loopback(host: str) -> bool:
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    return bare.lower() in LOOPBACK_HOSTS


def _check_host(host: str) -> None:
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ipaddress.ip_address(bare)
    except ValueError:
        labels = bare.split(".")
        if not bare or not all(_HOST_LABEL.match(label) for label in labels):
            raise IdentityError("bad_did", f"{host!r} is not a valid did:web host name") from None
    else:
        if ":" in bare and not host.startswith("["):
            raise IdentityError("bad_did", f"IPv6 host {host!r} must be written in brackets")


def did_web_for(host: str, port: int | None = None, path: Sequence[str] = ()) -> str:
    """The did:web identifier of ``host[:port][/path...]``: ``did_web_for("127.0.0.1", 9191)``."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    _check_host(host)
    authority = host if port is None else f"{host}:{port}"
    if port is not None and not 0 < port < 65536:
        raise IdentityError("bad_did", f"port {port} is outside 1..65535")
    parts = [quote(authority, safe="")]
    for segment in path:
        if not _PATH_SEGMENT.match(segment) or segment in (".", ".."):
            raise IdentityError("bad_did", f"path segment {segment!r} is not allowed in a did:web")
        parts.append(segment)
    return "did:web:" + ":".join(parts)


def parse_did_web(did: str) -> tuple[str, int | None, list[str]]:
    """Split a did:web into (host, port, path segments), refusing anything malformed."""
    if not isinstance(did, str) or len(did) > MAX_DID_CHARS:
        raise IdentityError("bad_did", f"a DID must be a string of at most {MAX_DID_CHARS} characters")
    if not did.startswith("did:web:"):
        raise IdentityError("unsupported_did_method", f"only did:web is supported, got {did[:40]!r}")
    if any(char in did for char in "#?/ "):
        raise IdentityError("bad_did", f"{did!r} must not contain '#', '?', '/' or spaces")
    encoded_authority, *path = did[len("did:web:") :].split(":")
    authority = unquote(encoded_authority)
    host, port = authority, None
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            raise IdentityError("bad_did", f"unterminated IPv6 host in {did!r}")
        host, rest = authority[: end + 1], authority[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise IdentityError("bad_did", f"unexpected text after the host in {did!r}")
            port = _parse_port(rest[1:], did)
    elif ":" in authority:
        host, port_text = authority.rsplit(":", 1)
        port = _parse_port(port_text, did)
    _check_host(host)
    for segment in path:
        # '.' and '..' would move the document's URL to another path of the host once a server
        # normalises it: a participant could claim a DID whose document is any file it can place
        # on a trusted host (trust lists name hosts, not paths).
        if not segment or not _PATH_SEGMENT.match(unquote(segment)) or unquote(segment) in (".", ".."):
            raise IdentityError("bad_did", f"path segment {segment!r} in {did!r} is not allowed")
    return host, port, [unquote(segment) for segment in path]


def _parse_port(text: str, did: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise IdentityError("bad_did", f"{text!r} in {did!r} is not a port number")
    return int(text)


def did_to_url(did: str, *, allow_http_loopback: bool = True) -> str:
    """Where a did:web's document lives: http for loopback hosts, https for everything else."""
    host, port, path = parse_did_web(did)
    scheme = "http" if allow_http_loopback and _is_loopback(host) else "https"
    authority = host if port is None else f"{host}:{port}"
    if path:
        return (
            f"{scheme}://{authority}/" + "/".join(quote(segment, safe="") for segment in path) + "/did.json"
        )
    return f"{scheme}://{authority}/.well-known/did.json"


def verification_method_id(did: str, fragment: str = KEY_FRAGMENT) -> str:
    return f"{did}#{fragment}"


def split_verification_method(verification_method: str) -> tuple[str, str]:
    """``did:web:x#key-1`` -> (``did:web:x``, ``key-1``)."""
    if not isinstance(verification_method, str) or "#" not in verification_method:
        raise IdentityError(
            "bad_verification_method", f"{verification_method!r} is not a DID URL with a fragment"
        )
    did, _, fragment = verification_method.partition("#")
    if not fragment:
        raise IdentityError("bad_verification_method", f"{verification_method!r} has an empty fragment")
    return did, fragment


def did_document(
    did: str,
    key: KeyPair | Ed25519PublicKey,
    services: Iterable[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The DID document a participant publishes: one Multikey usable for tokens and proofs."""
    public_key = key.public_key if isinstance(key, KeyPair) else key
    method_id = verification_method_id(did)
    document: dict[str, Any] = {
        "@context": [DID_V1_CONTEXT, MULTIKEY_CONTEXT],
        "id": did,
        "verificationMethod": [
            {
                "id": method_id,
                "type": "Multikey",
                "controller": did,
                "publicKeyMultibase": public_key_to_multibase(public_key),
            }
        ],
        "authentication": [method_id],
        "assertionMethod": [method_id],
    }
    service_list = [dict(service) for service in services]
    if service_list:
        document["service"] = service_list
    return document


def dsp_service(did: str, dsp_base_url: str) -> dict[str, str]:
    """A DID service entry pointing peers at a connector's Dataspace Protocol endpoint."""
    return {"id": f"{did}#dsp", "type": "DataService", "serviceEndpoint": dsp_base_url}


def _absolute(reference: str, did: str) -> str:
    return did + reference if reference.startswith("#") else reference


def public_key_from_document(
    document: Mapping[str, Any], verification_method: str, relationship: str | None = None
) -> Ed25519PublicKey:
    """The key a DID document holds for ``verification_method``, optionally checking its use.

    ``relationship`` ("authentication" for tokens, "assertionMethod" for proofs) must list the
    method, so a key the controller meant only for logins cannot sign contracts.
    """
    did, _ = split_verification_method(verification_method)
    if document.get("id") != did:
        raise IdentityError(
            "did_mismatch", f"the DID document is for {document.get('id')!r}, not for {did!r}"
        )
    if relationship is not None:
        if relationship not in _RELATIONSHIPS:
            raise IdentityError("bad_relationship", f"unknown verification relationship {relationship!r}")
        listed = document.get(relationship)
        entries = listed if isinstance(listed, list) else []
        ids = {
            _absolute(entry if isinstance(entry, str) else str(entry.get("id", "")), did)
            for entry in entries
            if isinstance(entry, str | dict)
        }
        if verification_method not in ids:
            raise IdentityError(
                "key_not_authorized",
                f"{verification_method} is not listed under {relationship} in its DID document",
            )
    methods = document.get("verificationMethod")
    candidates: list[Any] = list(methods) if isinstance(methods, list) else []
    if relationship is not None:
        candidates += [entry for entry in document.get(relationship) or [] if isinstance(entry, dict)]
    for method in candidates:
        if not isinstance(method, dict) or _absolute(str(method.get("id", "")), did) != verification_method:
            continue
        controller = method.get("controller")
        if controller is not None and controller != did:
            raise IdentityError(
                "key_not_authorized", f"{verification_method} is controlled by {controller!r}"
            )
        multibase = method.get("publicKeyMultibase")
        if isinstance(multibase, str):
            return public_key_from_multibase(multibase)
        jwk = method.get("publicKeyJwk")
        if isinstance(jwk, dict):
            return _public_key_from_jwk(jwk)
        raise IdentityError(
            "bad_key", f"{verification_method} has neither publicKeyMultibase nor publicKeyJwk"
        )
    raise IdentityError("unknown_key", f"{verification_method} is not in the DID document of {did}")


def _public_key_from_jwk(jwk: Mapping[str, Any]) -> Ed25519PublicKey:
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519" or not isinstance(jwk.get("x"), str):
        raise IdentityError("bad_key", "only Ed25519 OKP JWKs are accepted")
    text = str(jwk["x"])
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise IdentityError("bad_key", "publicKeyJwk.x is not a 32-byte base64url Ed25519 key") from None


class PublicKeyResolver(Protocol):
    """What token and proof verification need: the key behind a verification method id."""

    def public_key(self, verification_method: str, relationship: str | None = None) -> Ed25519PublicKey: ...


class StaticDidResolver:
    """DID documents known in advance (pinned peers, the documents inside an agreement bundle)."""

    def __init__(self, documents: Iterable[Mapping[str, Any]]) -> None:
        self._documents: dict[str, Mapping[str, Any]] = {}
        for document in documents:
            did = document.get("id")
            if not isinstance(did, str):
                raise IdentityError("bad_did_document", "a DID document must have a string id")
            self._documents[did] = copy.deepcopy(dict(document))

    def resolve(self, did: str) -> dict[str, Any]:
        return copy.deepcopy(dict(self._document(did)))

    def _document(self, did: str) -> Mapping[str, Any]:
        document = self._documents.get(did)
        if document is None:
            raise IdentityError("did_not_found", f"no DID document known for {did}")
        return document

    def public_key(self, verification_method: str, relationship: str | None = None) -> Ed25519PublicKey:
        did, _ = split_verification_method(verification_method)
        return public_key_from_document(self._document(did), verification_method, relationship)


def check_host_pattern(pattern: str) -> str:
    """A trust-list entry: ``host``, ``host:port`` or ``*.domain`` (any host below ``domain``)."""
    text = pattern.strip().lower()
    bare = text[2:] if text.startswith("*.") else text
    host, port = bare, None
    if bare.startswith("["):
        end = bare.find("]")
        host, rest = bare[: end + 1], bare[end + 1 :]
        port = rest[1:] if rest.startswith(":") else (None if not rest else "x")
    elif bare.count(":") == 1:
        host, port = bare.split(":")
    if port is not None and not (port.isdigit() and 0 < int(port) < 65536):
        raise IdentityError("bad_host_pattern", f"{pattern!r}: the port must be a number in 1..65535")
    if text.startswith("*.") and (port is not None or host.startswith("[")):
        raise IdentityError("bad_host_pattern", f"{pattern!r}: a wildcard names a domain, without a port")
    _check_host(host)
    return text


def host_matches(patterns: Iterable[str], host: str, port: int | None) -> bool:
    """Whether ``host[:port]`` is on a trust list of :func:`check_host_pattern` entries."""
    host = host.lower()
    for pattern in patterns:
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]) and not host.startswith("["):
                return True
        elif pattern == host or (port is not None and pattern == f"{host}:{port}"):
            return True
    return False


class _FailureCache:
    """Recent resolution failures, so a host that hangs or refuses costs one attempt per window."""

    def __init__(self, ttl_seconds: float, limit: int) -> None:
        self._ttl = ttl_seconds
        self._limit = limit
        self._failures: dict[str, tuple[float, IdentityError]] = {}
        self._lock = threading.Lock()

    def get(self, did: str) -> IdentityError | None:
        now = time.monotonic()
        with self._lock:
            entry = self._failures.get(did)
            if entry is None:
                return None
            if entry[0] <= now:
                del self._failures[did]
                return None
            return entry[1]

    def put(self, did: str, error: IdentityError) -> None:
        with self._lock:
            if len(self._failures) >= self._limit:
                now = time.monotonic()
                self._failures = {k: v for k, v in self._failures.items() if v[0] > now}
                if len(self._failures) >= self._limit:
                    self._failures.clear()
            self._failures[did] = (time.monotonic() + self._ttl, error)


class _Deadline:
    """Ends a fetch at its deadline, whatever the server does.

    httpx's timeouts apply to each read, so a host that sends its status line and headers one
    byte at a time, each within the read timeout, would hold a fetch (a worker thread and a
    resolver slot) for as long as it likes; the body loop can check the clock, header reading
    cannot. Once the connection is made (httpcore's ``trace`` hook hands over the stream), a
    timer shuts the socket down at the deadline, which wakes the blocked read with an error.
    """

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.fired = False
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    def trace(self, event: str, info: Mapping[str, Any]) -> None:
        if event != "connection.connect_tcp.complete":
            return
        stream = info.get("return_value")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if not isinstance(sock, socket.socket):
            return
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(max(0.0, self.deadline - time.monotonic()), self._fire, (sock,))
            self._timer.daemon = True
            self._timer.start()

    def _fire(self, sock: socket.socket) -> None:
        self.fired = True
        with contextlib.suppress(OSError):  # already closed: the fetch ended by itself
            sock.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()


class DidResolver:
    """Resolve did:web documents over HTTP(S), with limits, a trust list and small caches.

    A DID arrives in a stranger's token, so resolving it sends a request to a host the stranger
    chose, before we know who they are. Hence: only hosts on ``allowed_hosts`` (the data
    space's trust list) are contacted; the host's resolved addresses must pass
    ``address_policy`` and the request goes to the checked address (no second DNS answer can
    redirect it); one fetch may take at most ``timeout_seconds`` in all; at most
    :data:`MAX_CONCURRENT_FETCHES` fetches run at once, at most :data:`MAX_FETCHES_PER_HOST`
    to one host, and a request finding no free slot is refused at once instead of waiting;
    and a failure that took at least :data:`REMEMBER_FAILURES_AFTER_SECONDS` is remembered for
    :data:`FAILURE_CACHE_SECONDS`, so a host that never answers costs one wait per window, not
    one per request. Redirects are not followed,
    bodies are capped while streaming, and a document whose ``id`` is not the DID asked for
    is refused.
    """

    def __init__(
        self,
        http_client: httpx.Client | None = None,
        allow_http_loopback: bool = True,
        cache_ttl_seconds: float = DEFAULT_CACHE_TTL_SECONDS,
        timeout_seconds: float = RESOLVE_TIMEOUT_SECONDS,
        allowed_hosts: Iterable[str] | None = None,
        *,
        address_policy: AddressPolicy | None = None,
        max_concurrent_fetches: int = MAX_CONCURRENT_FETCHES,
        max_fetches_per_host: int = MAX_FETCHES_PER_HOST,
        failure_cache_seconds: float = FAILURE_CACHE_SECONDS,
        remember_failures_after_seconds: float = REMEMBER_FAILURES_AFTER_SECONDS,
    ) -> None:
        """``allowed_hosts`` (``host``, ``host:port``, ``*.domain``) restricts whom we ever contact.

        ``None`` contacts any host (offline tools verifying a bundle against live documents);
        a connector always passes its trust list. ``address_policy`` ``None`` skips the address
        check (the same tools); a connector passes its own.
        """
        self._client = http_client or httpx.Client(timeout=timeout_seconds, follow_redirects=False)
        self._owns_client = http_client is None
        self._allow_http_loopback = allow_http_loopback
        self._ttl = cache_ttl_seconds
        self._timeout = timeout_seconds
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._allowed_hosts = (
            None if allowed_hosts is None else tuple(check_host_pattern(h) for h in allowed_hosts)
        )
        self._addresses = address_policy
        self._max_fetches = max_concurrent_fetches
        self._max_per_host = max_fetches_per_host
        self._in_flight: dict[str, int] = {}
        self._failures = _FailureCache(failure_cache_seconds, MAX_CACHED_DOCUMENTS)
        self._remember_after = remember_failures_after_seconds

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> DidResolver:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def forget(self, did: str | None = None) -> None:
        """Drop one cached document (or all), e.g. after a peer announces a key rotation."""
        with self._lock:
            if did is None:
                self._cache.clear()
            else:
                self._cache.pop(did, None)

    def resolve(self, did: str) -> dict[str, Any]:
        """The DID document of ``did`` (a copy: callers may change it without touching the cache)."""
        return copy.deepcopy(self._document(did))

    def _document(self, did: str) -> dict[str, Any]:
        url = did_to_url(did, allow_http_loopback=self._allow_http_loopback)
        host, port, _ = parse_did_web(did)
        if self._allowed_hosts is not None and not host_matches(self._allowed_hosts, host, port):
            raise IdentityError(
                "did_host_not_allowed",
                f"{did} is on a host that is not on this data space's trust list",
            )
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(did)
            if cached is not None and cached[0] > now:
                return cached[1]
        failure = self._failures.get(did)
        if failure is not None:
            raise IdentityError(failure.code, f"{failure.message} (remembered; not retried yet)")
        slot = host.lower() if port is None else f"{host.lower()}:{port}"
        self._take_slot(did, slot)
        started = time.monotonic()
        try:
            document = self._fetch(did, url)
        except IdentityError as error:
            if time.monotonic() - started >= self._remember_after:
                self._failures.put(did, error)
            raise
        finally:
            self._give_slot(slot)
        with self._lock:
            if len(self._cache) >= MAX_CACHED_DOCUMENTS:
                self._cache.clear()
            self._cache[did] = (now + self._ttl, document)
        return document

    def _take_slot(self, did: str, host: str) -> None:
        """Count a fetch in, or refuse at once (never wait) when the host or all slots are busy."""
        with self._lock:
            per_host = self._in_flight.get(host, 0)
            if per_host >= self._max_per_host or sum(self._in_flight.values()) >= self._max_fetches:
                raise IdentityError(
                    "did_resolver_busy",
                    f"resolving {did}: too many DID resolutions in progress (for this host or in all);"
                    " retry later",
                )
            self._in_flight[host] = per_host + 1

    def _give_slot(self, host: str) -> None:
        with self._lock:
            left = self._in_flight.get(host, 1) - 1
            if left > 0:
                self._in_flight[host] = left
            else:
                self._in_flight.pop(host, None)

    def public_key(self, verification_method: str, relationship: str | None = None) -> Ed25519PublicKey:
        did, _ = split_verification_method(verification_method)
        return public_key_from_document(self._document(did), verification_method, relationship)

    def _target(self, did: str, url: str) -> tuple[str, dict[str, str], dict[str, Any]]:
        """The URL to request (host replaced by the checked address), Host header, extensions."""
        if self._addresses is None:
            return url, {}, {}
        try:
            destination = self._addresses.check_url(url, what=f"the DID document of {did}")
        except AddressRefused as refused:
            raise IdentityError("did_host_refused", str(refused)) from None
        pinned, host_header, extensions = destination.pinned()
        return pinned, host_header, dict(extensions)

    def _fetch(self, did: str, url: str) -> dict[str, Any]:
        deadline = time.monotonic() + self._timeout
        target, host_header, extensions = self._target(did, url)
        watchdog = _Deadline(deadline)
        try:
            with self._client.stream(
                "GET",
                target,
                # a fresh connection per fetch (fetches are rare: documents are cached), so the
                # watchdog always sees it connect
                headers={"Accept": "application/did+json, application/json", "Connection": "close",
                         **host_header},
                timeout=self._timeout,
                extensions={**extensions, "trace": watchdog.trace},
            ) as response:
                if response.status_code != 200:
                    # a server error or throttling is the host being unavailable now, not an
                    # answer about the DID: callers may try again later
                    status = response.status_code
                    code = "did_unreachable" if status >= 500 or status in (408, 429) else "did_not_found"
                    raise IdentityError(code, f"resolving {did}: {url} answered HTTP {status}")
                declared = response.headers.get("content-length")
                if declared is not None and declared.isdigit() and int(declared) > MAX_DID_DOCUMENT_BYTES:
                    raise IdentityError(
                        "did_document_too_large", f"{url} is larger than {MAX_DID_DOCUMENT_BYTES} bytes"
                    )
                body = bytearray()
                for chunk in response.iter_bytes():
                    body.extend(chunk)
                    if len(body) > MAX_DID_DOCUMENT_BYTES:
                        raise IdentityError(
                            "did_document_too_large", f"{url} is larger than {MAX_DID_DOCUMENT_BYTES} bytes"
                        )
                    if time.monotonic() > deadline:
                        raise IdentityError(
                            "did_unreachable", f"resolving {did}: {url} took longer than {self._timeout} s"
                        )
        except httpx.HTTPError as error:
            logger.info("did resolution failed", extra={"did": did, "url": url, "error": str(error)})
            if watchdog.fired:
                raise IdentityError(
                    "did_unreachable", f"resolving {did}: {url} took longer than {self._timeout} s"
                ) from None
            raise IdentityError(
                "did_unreachable", f"resolving {did}: {url} could not be fetched ({error})"
            ) from None
        finally:
            watchdog.cancel()
        try:
            document = json.loads(bytes(body))
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise IdentityError("bad_did_document", f"resolving {did}: {url} is not JSON") from None
        if not isinstance(document, dict):
            raise IdentityError("bad_did_document", f"resolving {did}: the DID document is not a JSON object")
        if document.get("id") != did:
            raise IdentityError(
                "did_mismatch", f"resolving {did}: the document at {url} is for {document.get('id')!r}"
            )
        return document
