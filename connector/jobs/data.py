"""Read one transfer from a provider's data plane: Arrow in, ``pyarrow.Table`` out.

The reader holds the data address (endpoint, key-bound token, expiry, refresh endpoint) and
the consumer's key. Each request carries a fresh DPoP proof; the token is refreshed before it
expires (and once more if the server says it expired). Every byte received is hashed, so the
job's lineage record can name exactly what went into it.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import pyarrow as pa

from connector.dataplane.tokens import make_proof
from connector.identity import KeyPair, issue_token
from connector.jobs.errors import JobError

ARROW_STREAM = "application/vnd.apache.arrow.stream"
# Refresh this long before expiry, so a request never leaves with a token about to lapse.
REFRESH_MARGIN = timedelta(seconds=60)
# Read timeout between two chunks; a full read of a large table may take much longer.
READ_TIMEOUT_SECONDS = 300.0
# A per-request identity token only needs to outlive its request.
IDENTITY_TTL_SECONDS = 60
# Chunk size when receiving the stream (large chunks keep loopback throughput high).
RECEIVE_CHUNK_BYTES = 8 * 1024 * 1024
# A problem body is a few KB; more is not read.
MAX_PROBLEM_BYTES = 1024 * 1024


@dataclass
class Address:
    endpoint: str
    token: str
    expires_at: datetime
    refresh_endpoint: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Address:
        """Accept the flat form (``endpoint``, ``token``, ``expires_at``, ``refresh_endpoint``) and
        the DSP ``DataAddress`` form (``endpointProperties``)."""
        flat: dict[str, Any] = dict(data)
        for prop in data.get("endpointProperties") or []:
            if isinstance(prop, Mapping):
                flat.setdefault(str(prop.get("name")), prop.get("value"))
        token = flat.get("token") or flat.get("authorization")
        expires = flat.get("expires_at") or flat.get("expiresAt")
        refresh = flat.get("refresh_endpoint") or flat.get("refreshEndpoint")
        endpoint = flat.get("endpoint")
        if not all(isinstance(v, str) and v for v in (token, expires, refresh, endpoint)):
            raise JobError(
                "bad_data_address", "the data address lacks endpoint, token, expiry or refresh endpoint"
            )
        try:
            moment = datetime.fromisoformat(str(expires).replace("Z", "+00:00"))
        except ValueError:
            raise JobError("bad_data_address", f"expires_at is not a date-time: {expires!r}") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return cls(str(endpoint), str(token), moment, str(refresh))


@dataclass(frozen=True)
class ReadRecord:
    """One read, for lineage: what was asked and the hash of exactly what came back."""

    transfer_id: str
    endpoint: str
    sql: str | None
    query_hash: str | None
    content_sha256: str
    rows: int
    bytes: int
    at: datetime


class TransferReader:
    """Reads of one transfer, authenticated with the consumer's key."""

    def __init__(self, address: Address, key: KeyPair, transfer_id: str = "",
                 http: httpx.Client | None = None, *, consumer_id: str | None = None,
                 credentials: Sequence[Mapping[str, Any]] = ()) -> None:
        self.address = address
        self.key = key
        self.consumer_id = consumer_id
        self.credentials = [dict(credential) for credential in credentials]
        self.transfer_id = transfer_id or address.endpoint.rstrip("/").rsplit("/", 1)[-1]
        self._http = http or httpx.Client(timeout=httpx.Timeout(30.0, read=READ_TIMEOUT_SECONDS))
        self._owns_http = http is None
        self.reads: list[ReadRecord] = []

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def _headers(self, method: str, url: str) -> dict[str, str]:
        headers = {
            "Authorization": f"DPoP {self.address.token}",
            "DPoP": make_proof(self.key, method, url, self.address.token),
        }
        if self.consumer_id and self.credentials:
            # The consumer's self-issued identity token with its credentials, so that policies
            # requiring one (an EHDS data permit) can be decided at every read.
            audience = self.address.endpoint.rstrip("/").rsplit("/", 1)[0]
            headers["Sluis-Identity"] = issue_token(
                self.key, self.consumer_id, audience, self.credentials, ttl_seconds=IDENTITY_TTL_SECONDS
            )
        return headers

    def refresh(self) -> None:
        """Exchange the token for a new one (the old one cannot be refreshed again)."""
        url = self.address.refresh_endpoint
        response = self._http.post(url, headers=self._headers("POST", url))
        if response.status_code != 200:
            raise _error_from(response, "refresh_failed")
        renewed = Address.from_json(response.json())
        # The address our connector accepted was checked against its address policy; a refresh
        # answer may renew the token, not send the job to another host.
        for name, before, after in (
            ("endpoint", self.address.endpoint, renewed.endpoint),
            ("refresh endpoint", self.address.refresh_endpoint, renewed.refresh_endpoint),
        ):
            if _origin(before) != _origin(after):
                raise JobError(
                    "bad_data_address",
                    f"the refreshed data address moves the {name} to another origin ({after[:200]!r})",
                )
        self.address = renewed

    def _fresh(self) -> None:
        if self.address.expires_at - datetime.now(UTC) < REFRESH_MARGIN:
            self.refresh()

    def read(self) -> pa.Table:
        """The whole granted view."""
        return self._fetch("GET", self.address.endpoint, None)

    def query(self, sql: str) -> pa.Table:
        """One SQL SELECT over the view named ``data``."""
        return self._fetch("POST", self.address.endpoint + "/query", sql)

    def flight(self, location: str, sql: str | None = None) -> pa.Table:
        """The same read over Arrow Flight (``grpc://host:port`` of the provider's Flight
        server): the whole view, or one SQL SELECT; same token, proof and checks."""
        import pyarrow.flight as flight

        self._fresh()
        method, url = ("GET", self.address.endpoint) if sql is None else (
            "POST", self.address.endpoint + "/query")
        signed = self._headers(method, url)
        headers = [(name.lower().encode(), value.encode()) for name, value in signed.items()]
        ticket = json.dumps({"transfer": self.transfer_id, **({"sql": sql} if sql is not None else {})})
        client = flight.FlightClient(location)
        try:
            options = flight.FlightCallOptions(headers=headers, timeout=READ_TIMEOUT_SECONDS)
            table: pa.Table = client.do_get(flight.Ticket(ticket.encode()), options).read_all()
        except flight.FlightError as error:
            found = re.search(r"(\d{3}) ([a-z_]+): ", str(error))
            status, code = (int(found.group(1)), found.group(2)) if found else (None, "read_failed")
            raise JobError(code, f"the Flight read was refused or failed: {error}", status) from None
        finally:
            client.close()
        return table

    def _fetch(self, method: str, url: str, sql: str | None) -> pa.Table:
        self._fresh()
        for attempt in (1, 2):
            try:
                return self._once(method, url, sql)
            except JobError as error:
                if attempt == 1 and error.code == "token_expired":
                    self.refresh()
                    continue
                raise
        raise AssertionError("unreachable")

    def _once(self, method: str, url: str, sql: str | None) -> pa.Table:
        headers = {**self._headers(method, url), "Accept": ARROW_STREAM}
        body: bytes | None = None
        if sql is not None:
            body = json.dumps({"sql": sql}).encode("utf-8")
            headers["Content-Type"] = "application/json"
        digest = hashlib.sha256()
        data = bytearray()
        connection, response = _open(method, url, headers, body)
        try:
            if response.status != 200:
                raise _problem(response.status, response.read(MAX_PROBLEM_BYTES), "read_failed")
            query_hash = response.getheader("sluis-query-hash")
            while True:
                chunk = response.read(RECEIVE_CHUNK_BYTES)
                if not chunk:
                    break
                digest.update(chunk)
                data += chunk
        except (OSError, http.client.HTTPException) as error:
            reason = f"the read did not complete (result cap or failure): {error!r}"
            raise JobError("read_interrupted", reason) from None
        finally:
            connection.close()
        try:
            table = pa.ipc.open_stream(pa.py_buffer(bytes(data))).read_all()
        except pa.ArrowInvalid as error:
            raise JobError("bad_stream", f"the data plane sent an invalid Arrow stream: {error}") from None
        self.reads.append(ReadRecord(self.transfer_id, url, sql, query_hash, digest.hexdigest(),
                                     table.num_rows, len(data), datetime.now(UTC)))
        return table

    def obligations(self) -> list[dict[str, Any]]:
        url = self.address.endpoint + "/obligations"
        self._fresh()
        response = self._http.get(url, headers=self._headers("GET", url))
        if response.status_code != 200:
            raise _error_from(response, "obligations_failed")
        items = response.json().get("obligations", [])
        return [item for item in items if isinstance(item, dict)]


def _origin(url: str) -> tuple[str, str, int | None]:
    """Scheme, host and port of ``url`` (a malformed port counts as its own origin)."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


def _open(method: str, url: str, headers: Mapping[str, str],
          body: bytes | None) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    """The data stream goes through the standard library's HTTP client: it reads large
    chunked bodies in big blocks (several times faster than a pure-Python HTTP parser)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise JobError("bad_data_address", f"the data endpoint is not an http(s) URL: {url!r}")
    factory = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = factory(parts.hostname, parts.port, timeout=READ_TIMEOUT_SECONDS)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request(method, target, body=body, headers=dict(headers))
        return connection, connection.getresponse()
    except (OSError, http.client.HTTPException) as error:
        connection.close()
        raise JobError("unreachable", f"cannot reach the data plane at {url}: {error!r}") from None


def _problem(status: int, raw: bytes, default: str) -> JobError:
    problem: dict[str, Any] | None = None
    try:
        parsed = json.loads(raw)
        problem = parsed if isinstance(parsed, dict) else None
    except (ValueError, RecursionError):
        problem = None
    code = str(problem.get("code", default)) if problem else default
    if problem:
        detail = str(problem.get("detail") or problem.get("title"))
    else:
        detail = raw[:300].decode(errors="replace")
    return JobError(code, f"HTTP {status}: {detail}", status, problem)


def _error_from(response: httpx.Response, default: str) -> JobError:
    problem: dict[str, Any] | None = None
    try:
        parsed = response.json()
        problem = parsed if isinstance(parsed, dict) else None
    except (ValueError, RecursionError):
        problem = None
    code = str(problem.get("code", default)) if problem else default
    detail = str(problem.get("detail") or problem.get("title")) if problem else response.text[:300]
    return JobError(code, f"HTTP {response.status_code}: {detail}", response.status_code, problem)
