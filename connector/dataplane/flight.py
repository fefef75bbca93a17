"""Arrow Flight as a second read protocol, with the same token, checks, limits and audit.

Jobs that use standard Arrow tooling read with ``pyarrow.flight``: a ``DoGet`` whose ticket is
``{"transfer": "<id>"}`` (the whole granted view) or ``{"transfer": "<id>", "sql": "SELECT ..."}``,
with the same call headers an HTTP read sends - ``authorization: DPoP <token>`` and a ``dpop``
proof made for the HTTP read it stands for (``GET {endpoint}`` for the whole view, ``POST
{endpoint}/query`` for SQL), and optionally ``sluis-identity``. Everything else is
``DataPlane.prepare_read``: the proof is single-use, the read is counted, the query runs in the
same sandbox, and the audit entry records ``protocol: flight``. What an HTTP read says in its
headers (``DataPlane.disclosure``: query hash, read number, caps, and under a privacy budget the
epsilon spent and the noise scales) is in the result schema's metadata, lower-case.

The server binds to the address it is given (loopback by default); TLS is the deployment's
business, as for the HTTP port.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight

from connector.dataplane.encoders import ARROW_STREAM
from connector.dataplane.errors import DataPlaneError, InvalidToken
from connector.dataplane.plane import DATA_PREFIX, DataPlane
from connector.http import BodyError, parse_json

_log = logging.getLogger(__name__)

# A ticket is a transfer id and one query (sql_guard.MAX_QUERY_CHARS) in a small JSON object.
MAX_TICKET_BYTES = 64 * 1024
MAX_TICKET_DEPTH = 8
_HEADERS = ("authorization", "dpop", "sluis-identity")


class _Headers(flight.ServerMiddleware):  # type: ignore[misc]
    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers


class _HeadersFactory(flight.ServerMiddlewareFactory):  # type: ignore[misc]
    """Keeps the call headers a read needs (gRPC metadata, lower-case names)."""

    def start_call(self, info: Any, headers: dict[str, list[str]]) -> _Headers:
        kept = {name: values[0] for name, values in headers.items() if name in _HEADERS and values}
        return _Headers(kept)


def _ticket(raw: bytes) -> tuple[str, str | None]:
    if len(raw) > MAX_TICKET_BYTES:
        raise DataPlaneError("bad_ticket", f"the ticket is larger than {MAX_TICKET_BYTES} bytes")
    try:  # the shared strict reading: no duplicate keys, lone surrogates or U+0000
        body = parse_json(raw, max_depth=MAX_TICKET_DEPTH)
    except BodyError as error:
        raise DataPlaneError("bad_ticket", f"the ticket must be a JSON object: {error.reason}") from None
    if not isinstance(body, dict) or not isinstance(body.get("transfer"), str) or not body["transfer"]:
        raise DataPlaneError("bad_ticket", "the ticket must name its transfer: {\"transfer\": \"...\"}")
    sql = body.get("sql")
    if sql is not None and (not isinstance(sql, str) or not sql.strip()):
        raise DataPlaneError("bad_ticket", "sql, when given, must be a non-empty string")
    return body["transfer"], sql


def _flight_error(error: DataPlaneError) -> Exception:
    message = f"{error.status} {error.code}: {error.message}"
    result: Exception
    if isinstance(error, InvalidToken):
        result = flight.FlightUnauthenticatedError(message)
    elif error.status == 403:
        result = flight.FlightUnauthorizedError(message)
    else:
        result = flight.FlightServerError(message)
    return result


_INTERNAL = "500 internal: the read failed; the provider's log has the detail"


def _without_tracebacks(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """The batches, with a failure while streaming sent as a Flight error of its own (pyarrow
    would otherwise send the Python traceback)."""
    try:
        yield from batches
    except DataPlaneError as error:
        raise _flight_error(error) from None
    except Exception:
        _log.exception("Flight read failed while streaming")
        raise flight.FlightServerError(_INTERNAL) from None


class DataFlightServer(flight.FlightServerBase):  # type: ignore[misc]
    """``DoGet`` over a :class:`DataPlane`; nothing else (no listing, no uploads)."""

    def __init__(self, plane: DataPlane, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(f"grpc://{host}:{port}", middleware={"headers": _HeadersFactory()})
        self.plane = plane

    def do_get(self, context: Any, ticket: flight.Ticket) -> flight.FlightDataStream:
        headers: dict[str, str] = context.get_middleware("headers").headers
        try:
            transfer_id, sql = _ticket(ticket.ticket)
            method, path = ("GET", f"{DATA_PREFIX}/{transfer_id}") if sql is None else (
                "POST", f"{DATA_PREFIX}/{transfer_id}/query")
            read = self.plane.prepare_read(
                transfer_id, headers.get("authorization"), headers.get("dpop"), method, path, sql,
                ARROW_STREAM, headers.get("sluis-identity"),
            )
        except DataPlaneError as error:
            raise _flight_error(error) from None
        except Exception:
            # pyarrow would send the Python traceback (paths, code) to the client: log it here
            _log.exception("Flight read failed")
            raise flight.FlightServerError(_INTERNAL) from None
        # what an HTTP read sends as headers (epsilon spent, noise scales, query hash ...) goes
        # in the schema's metadata: the first message of the stream, before any row
        shown = {name.lower(): value for name, value in self.plane.disclosure(read).items()}
        schema = read.schema.with_metadata({**(read.schema.metadata or {}), **{
            name.encode(): value.encode() for name, value in shown.items()}})
        batches = _without_tracebacks(self.plane.stream_batches(read, "flight"))
        return flight.GeneratorStream(schema, batches)

    def serve_in_thread(self) -> threading.Thread:
        """Serve on a daemon thread (``shutdown()`` stops it)."""
        thread = threading.Thread(target=self.serve, name="data-flight", daemon=True)
        thread.start()
        return thread
