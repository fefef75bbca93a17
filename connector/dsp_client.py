"""Send DSP messages to another connector over HTTPS (HTTP on loopback), with self-issued tokens.

Every request carries a fresh EdDSA JWT (new ``jti``) addressed to the counter-party's DID and
presenting our credentials, so the receiver can verify who we are before looking at the body.
Responses are size-limited and parsed defensively; a recorder hook sees every message (tests
validate them against the official schemas).

Requests go over kept-alive connections, pooled per peer origin, with the standard library's
HTTP client: a negotiation is four small messages to the same peer, and a general-purpose async-
capable client spent more CPU per request (~1.3 ms here) than the standard one (~0.3 ms).
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http import client as http_client
from typing import Any
from urllib.parse import urlsplit

import httpx

from connector.addresses import AddressPolicy, guarded_create_connection
from connector.http import BodyError, parse_json
from connector.identity import KeyPair, issue_token
from connector.observability import tracing
from connector.watchdog import Alarm, Watchdog
from vocab.dsp import MAX_MESSAGE_DEPTH, catalog_request_message

#: Largest response body we read from a peer (a catalog of a few thousand datasets fits).
MAX_RESPONSE_BYTES = 8 * 1024 * 1024
#: Connect/read timeout for one DSP request.
REQUEST_TIMEOUT_SECONDS = 10.0
#: Whole exchange (connect, request, status, headers, body): the read timeout applies to each
#: read, so a peer answering a byte at a time would otherwise hold a sender as long as it likes.
REQUEST_DEADLINE_SECONDS = 30.0
#: Lifetime of the token on one request: long enough for a slow peer, short against replay.
TOKEN_TTL_SECONDS = 120
#: Idle kept-alive connections per peer origin (as many as outbox senders may talk to it at once).
MAX_IDLE_PER_ORIGIN = 32
_REDIRECTS = (301, 302, 303, 307, 308)
_Origin = tuple[str, str, int]

Recorder = Callable[[str, str, Mapping[str, Any]], None]


@dataclass(frozen=True)
class DspResponse:
    status: int
    body: dict[str, Any] | None


class DspClientError(Exception):
    """The peer could not be reached or answered with something that is not JSON."""

    code = "dsp-unreachable"


#: Deadlines of every exchange of this process (one thread, see :mod:`connector.watchdog`).
_WATCHDOG = Watchdog(name="dsp-deadlines")


class _Deadline:
    """Shuts a connection's socket down when the exchange outlasts :data:`REQUEST_DEADLINE_SECONDS`
    (which wakes a blocked read with an error); cancelled when the exchange ends."""

    def __init__(self) -> None:
        self.fired = False
        self._alarm: Alarm | None = None

    def start(self, sock: socket.socket | None) -> None:
        if sock is None:
            return

        def fire() -> None:
            self.fired = True
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

        self._alarm = _WATCHDOG.arm(REQUEST_DEADLINE_SECONDS, fire)

    def cancel(self) -> None:
        if self._alarm is not None:
            self._alarm.cancel()

    def reason(self, url: str, error: BaseException) -> str:
        if self.fired:
            return f"{url}: no complete answer within {REQUEST_DEADLINE_SECONDS:g} s"
        return f"{url}: {error or type(error).__name__}"


class DspClient:
    """A DSP client acting as one participant."""

    def __init__(
        self,
        participant_id: str,
        key: KeyPair,
        credentials: Sequence[Mapping[str, Any]] = (),
        http: httpx.Client | None = None,
        recorder: Recorder | None = None,
        address_policy: AddressPolicy | None = None,
        keep_alive: bool = True,
    ) -> None:
        """``address_policy``: every connection's peer address is checked against it when set
        (the connector's outbox: callback hosts could resolve elsewhere by the time it sends).
        ``keep_alive=False`` opens a new connection for every request: the per-message baseline
        the negotiation benchmark compares with (``[tuning] fast_paths = false``)."""
        self.participant_id = participant_id
        self._connect = None if address_policy is None else guarded_create_connection(address_policy)
        self._key = key
        self._credentials = [dict(c) for c in credentials]
        self._http = http  # an injected httpx client is used as given (tests, proxies)
        self._recorder = recorder
        self._idle: dict[_Origin, list[http_client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._tls: ssl.SSLContext | None = None
        self._keep_alive = keep_alive

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()

    # -- pooled connections ------------------------------------------------------------------

    def _take(self, origin: _Origin) -> tuple[http_client.HTTPConnection, bool]:
        with self._lock:
            pooled = self._idle.get(origin)
            if pooled:
                return pooled.pop(), True
        scheme, host, port = origin
        connection: http_client.HTTPConnection
        if scheme == "https":
            if self._tls is None:
                self._tls = ssl.create_default_context()
            connection = http_client.HTTPSConnection(
                host, port, timeout=REQUEST_TIMEOUT_SECONDS, context=self._tls
            )
        else:
            connection = http_client.HTTPConnection(host, port, timeout=REQUEST_TIMEOUT_SECONDS)
        if self._connect is not None:
            connection._create_connection = self._connect  # type: ignore[attr-defined]
        return connection, False

    def _give_back(self, origin: _Origin, connection: http_client.HTTPConnection) -> None:
        if not self._keep_alive:
            connection.close()
            return
        with self._lock:
            pooled = self._idle.setdefault(origin, [])
            if len(pooled) < MAX_IDLE_PER_ORIGIN:
                pooled.append(connection)
                return
        connection.close()

    def _exchange(
        self, method: str, url: str, headers: dict[str, str], content: bytes | None
    ) -> tuple[int, bytes]:
        """One request on a pooled connection; a kept-alive one the peer closed meanwhile is
        replaced once (the request never reached it), any other failure is a DspClientError."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as error:
            raise DspClientError(f"{url}: {error}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise DspClientError(f"{url} is not an absolute http(s) URL")
        origin = (parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80))
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        for attempt in (1, 2):
            connection, reused = self._take(origin)
            deadline = _Deadline()
            try:
                try:
                    if connection.sock is None:
                        connection.connect()
                    deadline.start(connection.sock)
                    connection.request(method, target, body=content, headers=headers)
                    response = connection.getresponse()
                except (http_client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as error:
                    connection.close()
                    if reused and attempt == 1 and not deadline.fired:
                        continue
                    raise DspClientError(deadline.reason(url, error)) from None
                except (OSError, http_client.HTTPException) as error:
                    connection.close()
                    raise DspClientError(deadline.reason(url, error)) from None
                try:
                    if response.status in _REDIRECTS:
                        raise DspClientError(f"{url} redirected; DSP peers must answer for themselves")
                    raw = response.read(MAX_RESPONSE_BYTES + 1)
                    if len(raw) > MAX_RESPONSE_BYTES:
                        raise DspClientError(f"{url} answered with more than {MAX_RESPONSE_BYTES} bytes")
                except DspClientError:
                    connection.close()
                    raise
                except (OSError, http_client.HTTPException) as error:
                    connection.close()
                    raise DspClientError(deadline.reason(url, error)) from None
                deadline.cancel()
                if deadline.fired or response.will_close or not response.isclosed():
                    connection.close()
                else:
                    self._give_back(origin, connection)
                return response.status, raw
            finally:
                deadline.cancel()
        raise DspClientError(f"{url}: the connection was closed")  # not reached

    def token_for(self, audience: str) -> str:
        return issue_token(
            self._key, self.participant_id, audience, self._credentials, ttl_seconds=TOKEN_TTL_SECONDS
        )

    def _send(self, method: str, url: str, audience: str, body: Mapping[str, Any] | None) -> DspResponse:
        headers = {"Authorization": f"Bearer {self.token_for(audience)}", "Accept": "application/json"}
        traceparent = tracing.current_traceparent()
        if traceparent is not None:  # the peer's spans join our trace (W3C trace context)
            headers[tracing.TRACEPARENT] = traceparent
        if body is not None and self._recorder:
            self._recorder("request", url, body)
        content = None if body is None else json.dumps(body).encode()
        if self._http is None:
            if content is not None:
                headers["Content-Type"] = "application/json"
            status, raw = self._exchange(method, url, headers, content)
        else:
            status, raw = self._send_httpx(method, url, headers, content)
        parsed: dict[str, Any] | None = None
        if raw.strip():
            # a peer's answer is read as strictly as a request body: nested too deep (a
            # RecursionError), duplicate keys, or text no database can hold is no answer at all
            try:
                value = parse_json(raw, max_depth=MAX_MESSAGE_DEPTH)
            except BodyError:
                value = None
            parsed = value if isinstance(value, dict) else None
        if parsed is not None and self._recorder:
            self._recorder("response", url, parsed)
        return DspResponse(status, parsed)

    def _send_httpx(
        self, method: str, url: str, headers: dict[str, str], content: bytes | None
    ) -> tuple[int, bytes]:
        assert self._http is not None
        try:
            with self._http.stream(
                method,
                url,
                headers=headers,
                content=content,
                timeout=REQUEST_TIMEOUT_SECONDS,
            ) as response:
                if response.status_code in _REDIRECTS:
                    raise DspClientError(f"{url} redirected; DSP peers must answer for themselves")
                raw = bytearray()
                for chunk in response.iter_bytes():
                    raw.extend(chunk)
                    if len(raw) > MAX_RESPONSE_BYTES:
                        raise DspClientError(f"{url} answered with more than {MAX_RESPONSE_BYTES} bytes")
                return response.status_code, bytes(raw)
        except httpx.HTTPError as error:
            raise DspClientError(f"{url}: {error}") from error

    def post(self, url: str, audience: str, body: Mapping[str, Any]) -> DspResponse:
        return self._send("POST", url, audience, body)

    def get(self, url: str, audience: str) -> DspResponse:
        return self._send("GET", url, audience, None)

    def catalog(self, dsp_base: str, audience: str, filters: Sequence[Any] = ()) -> DspResponse:
        return self.post(
            f"{dsp_base.rstrip('/')}/catalog/request", audience, catalog_request_message(filters)
        )
