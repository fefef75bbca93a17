"""The consumer's receiving endpoint for HTTP push: ``PUT /push/{transfer}``.

When our job asks a provider for an ``HttpData-PUSH`` transfer without naming a destination of
its own, the destination is this endpoint, with a secret made for that one transfer (only its
hash is stored). A push is accepted only while the transfer is STARTED, only as Arrow IPC stream
or Parquet, only with a ``Content-Digest: sha-256=:...:`` (RFC 9530) that matches the bytes
received and only if the bytes read as what the media type says - within what they may decode
to (rows, batches, decompressed bytes: :mod:`connector.push_limits`, checked from the metadata
before anything is decompressed; a compressed stream over them is refused 413). The data is written to a
temporary file and moved into place (``<data_root>/received/<transfer>/``) once checked, so a
half-sent or corrupted push leaves nothing behind; the transfer's details record the file, its
size and hash. A provider that retries after a lost answer sends the same ``Idempotency-Key``
and digest: the delivery is then taken once (answered 200 naming what was stored, the file
left as it is), and the same key with other bytes is refused (422).
``application/octet-stream`` (what generic uploaders send) stands for the media type our request
asked for; the bytes must still read as that.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.ipc as ipc
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from connector.control import PUSH_FORMAT, ConnectorService
from connector.control.process import Plan
from connector.control.push_spool import MAX_PUSH_BYTES as PUSH_LIMIT
from connector.dataplane import ARROW_STREAM, PARQUET
from connector.dataplane.obligations import agreed_at, duties_of
from connector.http import FieldError, ProblemError, bearer_token
from connector.policy_gate import parsed_policy
from connector.protocol import Role, TransferState
from connector.push_limits import OverLimit, check_arrow_stream, check_parquet
from connector.store import ProcessRecord
from policies import PolicyError

#: Largest push accepted (bytes; what a provider of ours sends at most); a bigger one is
#: refused with 413 while it streams in.
MAX_PUSH_BYTES = PUSH_LIMIT
#: File name of the received data per media type.
FILE_NAMES = {ARROW_STREAM: "data.arrows", PARQUET: "data.parquet"}
#: Bytes of the media type our transfer request asked for (generic HTTP uploaders send this).
OCTET_STREAM = "application/octet-stream"
_DIGEST = re.compile(r"(?:^|,)\s*sha-256=:([A-Za-z0-9+/]+={0,2}):\s*(?:,|$)")
_SAFE_ID = re.compile(r"^[A-Za-z0-9:._-]{1,200}$")
#: An ``Idempotency-Key`` (draft-ietf-httpapi-idempotency-key-header): a quoted string of at most
#: this many visible characters, or the same unquoted.
_IDEMPOTENCY_KEY = re.compile(r'^"?([\x21\x23-\x7e]{1,200})"?$')


@dataclass(frozen=True)
class Received:
    path: Path
    sha256: str
    size: int
    media_type: str
    idempotency_key: str | None = None
    duplicate: bool = False

    def to_json(self, root: Path) -> dict[str, Any]:
        return {
            "file": str(self.path.relative_to(root)),
            "sha256": self.sha256,
            "bytes": self.size,
            "media_type": self.media_type,
            "received_at": datetime.now(UTC).isoformat(timespec="seconds"),
            **({"idempotency_key": self.idempotency_key} if self.idempotency_key else {}),
        }


def idempotency_key(header: str | None) -> str | None:
    """The delivery key a provider sent (``None`` without one); a 400 naming the header if malformed."""
    if header is None:
        return None
    match = _IDEMPOTENCY_KEY.match(header.strip()) if len(header) <= 256 else None
    if match is None:
        raise ProblemError(
            400,
            "Idempotency key malformed",
            "Idempotency-Key must be a quoted string of at most 200 visible characters",
            code="idempotency-key-malformed",
            errors=[FieldError("Idempotency-Key", "not a short quoted string")],
        )
    return match.group(1)


def _earlier(record: ProcessRecord, key: str | None, digest: bytes) -> dict[str, Any] | None:
    """What an earlier delivery under ``key`` stored, when this one repeats it; a 422 when the
    key was used for other bytes (a provider must not reuse a delivery's key)."""
    kept = record.details.get("received")
    if key is None or not isinstance(kept, dict) or kept.get("idempotency_key") != key:
        return None
    if kept.get("sha256") != digest.hex():
        raise ProblemError(
            422,
            "Idempotency key reused",
            "this Idempotency-Key was used for a delivery with other content",
            code="idempotency-key-reused",
            errors=[FieldError("Idempotency-Key", "already used for other content")],
        )
    return kept


def _unauthorised() -> ProblemError:
    # one answer for an unknown transfer and a wrong secret: no oracle for transfer ids
    return ProblemError(
        401, "Not authorised", "no push is expected here with these credentials", code="push-unauthorised"
    )


def expected_digest(header: str | None) -> bytes:
    """The SHA-256 a ``Content-Digest`` header announces; a 400 problem naming it otherwise."""
    match = _DIGEST.search(header or "") if header and len(header) < 1024 else None
    if match is None:
        raise ProblemError(
            400,
            "Content digest required",
            "send Content-Digest: sha-256=:<base64>: (RFC 9530)",
            code="content-digest-missing",
            errors=[FieldError("Content-Digest", "missing or not sha-256")],
        )
    try:
        digest = base64.b64decode(match.group(1), validate=True)
    except binascii.Error:
        digest = b""
    if len(digest) != 32:
        raise ProblemError(
            400,
            "Content digest malformed",
            "the sha-256 value is not 32 base64 bytes",
            code="content-digest-malformed",
            errors=[FieldError("Content-Digest", "not a SHA-256 value")],
        )
    return digest


def _readable(path: Path, media_type: str) -> ProblemError | None:
    """``None`` when the file reads as ``media_type`` within the decoding limits
    (:mod:`connector.push_limits`, checked before anything is decompressed); else the problem."""
    try:
        if media_type == PARQUET:
            check_parquet(path)
        else:
            check_arrow_stream(path)
            with pa.memory_map(str(path)) as source, ipc.open_stream(source) as reader:
                for _ in reader:
                    pass
    except OverLimit as error:
        return ProblemError(413, "Push decodes too large", str(error), code="push-decodes-too-large")
    except (pa.ArrowException, OSError, ValueError) as error:
        reason = f"the data does not read as {media_type}: {str(error)[:200]}"
        return ProblemError(400, "Unreadable data", reason, code="push-unreadable")
    return None


class PushReceiver:
    """Checks and stores pushes for our own consumer-side push transfers."""

    def __init__(self, service: ConnectorService, data_root: Path) -> None:
        self.service = service
        self.root = data_root / "received"

    def expected(self, transfer_id: str, authorization: str | None) -> ProcessRecord:
        token = bearer_token(authorization)
        if token is None or not _SAFE_ID.match(transfer_id):
            raise _unauthorised()
        record = self.service.store.get_process(transfer_id, "transfer")
        stored = record.details.get("push_secret_sha256") if record is not None else None
        given = hashlib.sha256(token.encode()).hexdigest()
        if record is None or not isinstance(stored, str) or not hmac.compare_digest(stored, given):
            raise _unauthorised()
        if record.role != Role.CONSUMER or record.details.get("format") != PUSH_FORMAT:
            raise _unauthorised()
        return record

    async def receive(self, request: Request, transfer_id: str) -> Received:
        record = self.expected(transfer_id, request.headers.get("authorization"))
        media_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
        if media_type == OCTET_STREAM:  # a generic uploader: the data is what our request asked for
            media_type = str(record.details.get("push_media_type") or ARROW_STREAM)
        if media_type not in FILE_NAMES:
            raise ProblemError(
                415,
                "Unsupported media type",
                f"a push is one of {sorted(FILE_NAMES)}",
                code="unsupported-media-type",
                errors=[FieldError("Content-Type", "not Arrow IPC stream or Parquet")],
            )
        wanted = expected_digest(request.headers.get("content-digest"))
        key = idempotency_key(request.headers.get("idempotency-key"))
        earlier = _earlier(record, key, wanted)
        # a push is taken while the transfer runs; a delivery repeated after it completed (our
        # answer to the first was lost, the provider completed on a later attempt) is answered too
        repeat = earlier is not None and record.state == TransferState.COMPLETED
        if record.state != TransferState.STARTED and not repeat:
            raise ProblemError(
                409,
                "Transfer not started",
                f"the transfer is {record.state}; a push is taken while it is {TransferState.STARTED}",
                code="transfer-not-started",
            )
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > MAX_PUSH_BYTES:
            raise ProblemError(
                413, "Push too large", f"at most {MAX_PUSH_BYTES} bytes", code="push-too-large"
            )
        folder = self.root / record.id
        await run_in_threadpool(folder.mkdir, 0o700, True, True)
        handle, name = tempfile.mkstemp(dir=folder, prefix=".incoming-")
        temporary = Path(name)
        digest = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(handle, "wb") as out:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > MAX_PUSH_BYTES:
                        raise ProblemError(
                            413, "Push too large", f"at most {MAX_PUSH_BYTES} bytes", code="push-too-large"
                        )
                    digest.update(chunk)
                    await run_in_threadpool(out.write, chunk)
            if not hmac.compare_digest(digest.digest(), wanted):
                raise ProblemError(
                    400,
                    "Content digest mismatch",
                    "the data received does not hash to the Content-Digest sent",
                    code="content-digest-mismatch",
                    errors=[FieldError("Content-Digest", "does not match the body")],
                )
            if earlier is not None:
                # the same delivery again (its answer was lost): taken once, the file left alone
                temporary.unlink(missing_ok=True)
                kept = self.root.parent / str(earlier["file"])
                return Received(kept, str(earlier["sha256"]), int(earlier["bytes"]), media_type, key, True)
            problem = await run_in_threadpool(_readable, temporary, media_type)
            if problem is not None:
                raise problem
            final = folder / FILE_NAMES[media_type]
            await run_in_threadpool(os.replace, temporary, final)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        received = Received(final, digest.hexdigest(), size, media_type, key)
        await run_in_threadpool(self._record, record.id, received)
        return received

    def _record(self, transfer_id: str, received: Received) -> None:
        writer = self.service.ctx.writer
        details = {"received": received.to_json(self.root.parent)}

        def plan_for(record: ProcessRecord) -> Plan:
            return Plan(state=record.state, details=details)

        writer.compare_and_set(
            lambda: self.service.store.get_process(transfer_id, "transfer"),
            plan_for,
            ProblemError(
                409,
                "Concurrent update",
                "the transfer changed meanwhile; push again",
                code="concurrent-update",
            ),
        )


class ReceivedData:
    """The received file of one of our push transfers, for our own people and jobs: fetched and
    deleted through the management API (its bearer token), kept no longer than the agreement's
    ``delete`` duty allows.

    The file is found from the transfer's record and must lie in that transfer's own folder
    (a record pointing elsewhere is not followed). Past the duty's due time it is deleted when
    next asked for and answered 410: what the agreement says must be gone is not served.
    """

    def __init__(self, receiver: PushReceiver) -> None:
        self.receiver = receiver
        self.service = receiver.service

    def _kept(self, transfer_id: str) -> tuple[ProcessRecord, dict[str, Any], Path]:
        store = self.service.store
        record = store.get_process(transfer_id, "transfer") if _SAFE_ID.match(transfer_id) else None
        kept = record.details.get("received") if record is not None else None
        if record is None or record.role != Role.CONSUMER or not isinstance(kept, dict):
            raise ProblemError(404, "Nothing received", "no push was received for this transfer",
                               code="nothing-received")
        if kept.get("deleted_at"):
            raise ProblemError(410, "Received data deleted", f"deleted at {kept['deleted_at']}",
                               code="received-deleted")
        folder = (self.receiver.root / record.id).resolve()
        path = (self.receiver.root.parent / str(kept.get("file") or "")).resolve()
        if path.parent != folder or not path.is_file():
            raise ProblemError(404, "Nothing received", "the received file is not on this connector",
                               code="nothing-received")
        return record, kept, path

    def delete_by(self, record: ProcessRecord, kept: dict[str, Any]) -> datetime | None:
        """When the agreement's ``delete`` duty wants the data gone (``None``: it names no time)."""
        agreement = self.service.store.get_agreement(record.agreement_id or "")
        if agreement is None:
            return None
        try:
            policy = parsed_policy(agreement.agreement)
        except PolicyError:
            return None
        try:
            received_at = datetime.fromisoformat(str(kept.get("received_at")))
        except ValueError:
            received_at = datetime.now(UTC)
        dues = [
            due
            for duty in duties_of(policy)
            if duty.action == "delete" and (due := duty.due(received_at, agreed_at(policy))) is not None
        ]
        return min(dues) if dues else None

    def open(self, transfer_id: str) -> tuple[Path, dict[str, Any], datetime | None]:
        """The file, what was recorded of it, and its deletion time; deleted (410) once due."""
        record, kept, path = self._kept(transfer_id)
        due = self.delete_by(record, kept)
        if due is not None and datetime.now(UTC) >= due:
            self.delete(transfer_id, f"the agreement's delete duty fell due at {due.isoformat()}")
            raise ProblemError(410, "Received data deleted", "the agreement's delete duty fell due;"
                               " the data is gone", code="received-deleted")
        return path, kept, due

    def delete(self, transfer_id: str, reason: str = "deleted by the participant") -> None:
        record, kept, path = self._kept(transfer_id)
        path.unlink(missing_ok=True)
        moment = datetime.now(UTC).isoformat(timespec="seconds")
        gone = {**kept, "deleted_at": moment, "deleted_because": reason}
        writer = self.service.ctx.writer
        writer.compare_and_set(
            lambda: self.service.store.get_process(record.id, "transfer"),
            lambda current: Plan(state=current.state, details={"received": gone}),
            ProblemError(409, "Concurrent update", "the transfer changed meanwhile; try again",
                         code="concurrent-update"),
        )


#: Pieces in which received data is sent back to the participant.
RECEIVED_CHUNK_BYTES: Final = 1024 * 1024


def received_router(data: ReceivedData, token: str) -> APIRouter:
    """``GET``/``DELETE /management/received/{transfer}``, behind the management token."""
    expected = token.encode()

    def require_token(request: Request) -> None:
        given = bearer_token(request.headers.get("authorization"))
        if not given or not hmac.compare_digest(given.encode(), expected):
            raise ProblemError(401, "Unauthorized", "a valid management bearer token is required",
                               code="unauthorized")

    router = APIRouter(prefix="/management", tags=["management"], dependencies=[Depends(require_token)])

    @router.get(
        "/received/{transfer_id}",
        summary="Consumer: the data a push delivered for one of our transfers (as received, hash-checked)",
        response_class=FileResponse,
    )
    def fetch_received(transfer_id: str) -> Response:
        path, kept, due = data.open(transfer_id)
        # Opened here, streamed from the open handle: a DELETE racing this request removes the
        # name, not the bytes already being sent, and a file gone before the open is a 404.
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            raise ProblemError(404, "Not found", "no received data is kept for this transfer",
                               code="not-found") from None
        size = os.fstat(handle.fileno()).st_size
        digest = base64.b64encode(bytes.fromhex(str(kept["sha256"]))).decode()
        headers = {"Content-Digest": f"sha-256=:{digest}:", "ETag": f'"{kept["sha256"]}"',
                   "Content-Length": str(size)}
        if due is not None:
            headers["Sluis-Delete-By"] = due.isoformat(timespec="seconds")

        def chunks() -> Iterator[bytes]:
            with handle:
                while chunk := handle.read(RECEIVED_CHUNK_BYTES):
                    yield chunk

        return StreamingResponse(chunks(), media_type=str(kept.get("media_type") or OCTET_STREAM),
                                 headers=headers)

    @router.delete(
        "/received/{transfer_id}",
        status_code=204,
        summary="Consumer: delete the data a push delivered (the record keeps its hash and when)",
    )
    def delete_received(transfer_id: str) -> Response:
        data.delete(transfer_id)
        return Response(status_code=204)

    return router


def push_router(receiver: PushReceiver) -> APIRouter:
    router = APIRouter(tags=["push"])

    @router.put(
        "/push/{transfer_id}",
        status_code=201,
        summary="Consumer: receive the data of one of our HTTP push transfers (Arrow IPC or Parquet)",
    )
    async def receive_push(transfer_id: str, request: Request) -> JSONResponse:
        received = await receiver.receive(request, transfer_id)
        return JSONResponse(
            {"transfer_id": transfer_id, "sha256": received.sha256, "bytes": received.size,
             "duplicate": received.duplicate},
            status_code=200 if received.duplicate else 201,
        )

    return router
