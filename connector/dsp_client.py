"""Send DSP messages to another connector over HTTPS (HTTP on loopback), with self-issued tokens.

Every request carries a fresh EdDSA JWT (new ``jti``) addressed to the counter-party's DID and
presenting our credentials, so the receiver can verify who we are before looking at the body.
Responses are size-limited and parsed defensively; a recorder hook sees every message (tests
validate them against the official schemas).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from connector.identity import KeyPair, issue_token
from vocab.dsp import catalog_request_message

#: Largest response body we read from a peer (a catalog of a few thousand datasets fits).
MAX_RESPONSE_BYTES = 8 * 1024 * 1024
#: Connect/read timeout for one DSP request.
REQUEST_TIMEOUT_SECONDS = 10.0
#: Lifetime of the token on one request: long enough for a slow peer, short against replay.
TOKEN_TTL_SECONDS = 120

Recorder = Callable[[str, str, Mapping[str, Any]], None]


@dataclass(frozen=True)
class DspResponse:
    status: int
    body: dict[str, Any] | None


class DspClientError(Exception):
    """The peer could not be reached or answered with something that is not JSON."""

    code = "dsp-unreachable"


class DspClient:
    """A DSP client acting as one participant."""

    def __init__(
        self,
        participant_id: str,
        key: KeyPair,
        credentials: Sequence[Mapping[str, Any]] = (),
        http: httpx.Client | None = None,
        recorder: Recorder | None = None,
    ) -> None:
        self.participant_id = participant_id
        self._key = key
        self._credentials = [dict(c) for c in credentials]
        self._http = http or httpx.Client(timeout=REQUEST_TIMEOUT_SECONDS, follow_redirects=False)
        self._owns_http = http is None
        self._recorder = recorder

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def token_for(self, audience: str) -> str:
        return issue_token(
            self._key, self.participant_id, audience, self._credentials, ttl_seconds=TOKEN_TTL_SECONDS
        )

    def _send(self, method: str, url: str, audience: str, body: Mapping[str, Any] | None) -> DspResponse:
        headers = {"Authorization": f"Bearer {self.token_for(audience)}", "Accept": "application/json"}
        if body is not None and self._recorder:
            self._recorder("request", url, body)
        try:
            with self._http.stream(
                method,
                url,
                headers=headers,
                content=None if body is None else json.dumps(body).encode(),
                timeout=REQUEST_TIMEOUT_SECONDS,
            ) as response:
                if response.status_code in (301, 302, 303, 307, 308):
                    raise DspClientError(f"{url} redirected; DSP peers must answer for themselves")
                raw = bytearray()
                for chunk in response.iter_bytes():
                    raw.extend(chunk)
                    if len(raw) > MAX_RESPONSE_BYTES:
                        raise DspClientError(f"{url} answered with more than {MAX_RESPONSE_BYTES} bytes")
                status = response.status_code
        except httpx.HTTPError as error:
            raise DspClientError(f"{url}: {error}") from error
        parsed: dict[str, Any] | None = None
        if raw.strip():
            try:
                value = json.loads(raw)
            except ValueError:
                value = None
            parsed = value if isinstance(value, dict) else None
        if parsed is not None and self._recorder:
            self._recorder("response", url, parsed)
        return DspResponse(status, parsed)

    def post(self, url: str, audience: str, body: Mapping[str, Any]) -> DspResponse:
        return self._send("POST", url, audience, body)

    def get(self, url: str, audience: str) -> DspResponse:
        return self._send("GET", url, audience, None)

    def catalog(self, dsp_base: str, audience: str, filters: Sequence[Any] = ()) -> DspResponse:
        return self.post(
            f"{dsp_base.rstrip('/')}/catalog/request", audience, catalog_request_message(filters)
        )
