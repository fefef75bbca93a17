"""Where a push's data waits between attempts: a file on disk and, in the database, its hash.

A push reads the granted data once and sends the same bytes on every attempt, so a flaky
destination does not spend the agreement's reads and the receiver sees one content hash. The
bytes stream from the data plane straight into a file under the spool folder (memory stays
bounded by one chunk, whatever the size) and are renamed into place only once complete; the
SHA-256, size and media type are then recorded in ``push_spools`` under the outbox item.

After a restart the file is still there and is sent again without reading. A replica on
another disk (or a lost file) reads again - counted once, by the data plane's read key - and
the new bytes must hash to what was recorded: a push never sends different data under one
delivery. A file is removed when its delivery ends; files whose delivery ended elsewhere are
swept when the spool opens.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
import uuid
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from pathlib import Path

from connector.store import Store

#: Bytes read from a spool file per ``read`` (hashing on reopen, sending).
CHUNK_BYTES = 1024 * 1024
#: Spool files looked at when the spool opens (a folder with more is swept over several opens).
MAX_SWEPT_FILES = 10_000
#: A half-written spool file untouched this long was left by a process that died while reading.
STALE_PART_SECONDS = 600.0
#: Largest push (bytes): what the receiving endpoint takes. A bigger result is refused while it
#: spools (the disk holds at most this much per delivery); such data is for a pull.
MAX_PUSH_BYTES = 8 * 1024**3


class SpoolMismatch(ValueError):
    """The data read again differs from what this delivery first read (the asset changed)."""


class SpoolTooLarge(ValueError):
    """The data to push is larger than :data:`MAX_PUSH_BYTES`."""


@dataclass(frozen=True)
class Spooled:
    """One delivery's bytes on disk: where, their SHA-256 (hex), size and media type."""

    path: Path
    sha256: str
    size: int
    media_type: str


class PushSpool:
    """The spool folder of one connector process and the ``push_spools`` records of all."""

    def __init__(self, root: Path, store: Store, max_bytes: int = MAX_PUSH_BYTES) -> None:
        self.root = root
        self.store = store
        self.max_bytes = max_bytes
        self._checked: set[int] = set()
        self._lock = threading.Lock()
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        root.chmod(0o700)  # granted data of other participants' agreements: this process alone

    def path(self, item_id: int) -> Path:
        return self.root / f"{int(item_id)}.spool"

    # -- records -----------------------------------------------------------------------------

    def recorded(self, item_id: int) -> Spooled | None:
        with self.store.db.transaction(write=False) as tx:
            row = tx.one("SELECT sha256, bytes, media_type FROM push_spools WHERE outbox_id = ?", (item_id,))
        if row is None:
            return None
        return Spooled(self.path(item_id), str(row["sha256"]), int(row["bytes"]), str(row["media_type"]))

    def _record(self, item_id: int, transfer_id: str, spooled: Spooled) -> Spooled:
        """Record what this delivery read; the record already there wins (first read)."""
        with self.store.db.transaction() as tx:
            tx.execute(
                "INSERT INTO push_spools (outbox_id, transfer_id, sha256, bytes, media_type, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (outbox_id) DO NOTHING",
                (item_id, transfer_id, spooled.sha256, spooled.size, spooled.media_type, time.time()),
            )
            row = tx.one("SELECT sha256, bytes FROM push_spools WHERE outbox_id = ?", (item_id,))
        if row is None or (str(row["sha256"]), int(row["bytes"])) != (spooled.sha256, spooled.size):
            raise SpoolMismatch(
                "the granted data read again differs from what this push first read (the asset changed"
                " since); the push does not send other data under the same delivery"
            )
        return spooled

    # -- files -------------------------------------------------------------------------------

    def local(self, item_id: int) -> Spooled | None:
        """The spooled bytes of a delivery, if this disk has them complete and they hash to the
        record (checked once per process: a file left by a killed process is read once)."""
        record = self.recorded(item_id)
        if record is None or not record.path.is_file():
            return None
        with self._lock:
            if item_id in self._checked:
                return record
        if record.path.stat().st_size != record.size or _sha256_of(record.path) != record.sha256:
            record.path.unlink(missing_ok=True)
            return None
        with self._lock:
            self._checked.add(item_id)
        return record

    def write(
        self, item_id: int, transfer_id: str, media_type: str, chunks: Iterable[bytes | memoryview]
    ) -> Spooled:
        """Stream ``chunks`` to the delivery's file, then record (or check against the record)
        their hash. Raises :class:`SpoolMismatch` when a record with another hash exists."""
        final = self.path(item_id)
        # a writer of its own: a worker whose lease ran out may still be writing the same delivery
        partial = final.with_name(f"{final.stem}.{uuid.uuid4().hex}.part")
        digest = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
                for chunk in chunks:
                    size += len(chunk) if isinstance(chunk, bytes) else chunk.nbytes
                    if size > self.max_bytes:
                        raise SpoolTooLarge(
                            f"the granted data is larger than a push may be ({self.max_bytes} bytes); read it"
                            " with a pull"
                        )
                    out.write(chunk)
                    digest.update(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(partial, final)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        finally:
            if isinstance(chunks, Generator):
                chunks.close()  # a read stopped early ends now: its slot freed, its audit entry written
        spooled = Spooled(final, digest.hexdigest(), size, media_type)
        try:
            self._record(item_id, transfer_id, spooled)
        except SpoolMismatch:
            final.unlink(missing_ok=True)
            raise
        with self._lock:
            self._checked.add(item_id)
        return spooled

    def forget(self, item_id: int) -> None:
        """The delivery ended: its file and record go."""
        with self._lock:
            self._checked.discard(item_id)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path(item_id))
        with self.store.db.transaction() as tx:
            tx.execute("DELETE FROM push_spools WHERE outbox_id = ?", (item_id,))

    def sweep(self) -> int:
        """Remove spool files of deliveries no longer pending (ended here or on a replica) and
        half-written ones nobody wrote to for :data:`STALE_PART_SECONDS`; how many were removed."""
        removed = 0
        files = sorted(self.root.glob("*.spool"))[:MAX_SWEPT_FILES]
        stale = time.time() - STALE_PART_SECONDS
        for partial in list(self.root.glob("*.part"))[:MAX_SWEPT_FILES]:
            with contextlib.suppress(FileNotFoundError):
                if partial.stat().st_mtime < stale:  # a replica sharing the folder may be writing it
                    partial.unlink()
                    removed += 1
        ids = [int(path.stem) for path in files if path.stem.isdigit()]
        pending = self._pending(ids)
        for item_id in ids:
            if item_id not in pending:
                self.forget(item_id)
                removed += 1
        return removed

    def _pending(self, ids: list[int]) -> set[int]:
        pending: set[int] = set()
        with self.store.db.transaction(write=False) as tx:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                if not chunk:
                    continue
                rows = tx.all(
                    f"SELECT id FROM outbox WHERE id IN ({', '.join('?' * len(chunk))}) "
                    "AND delivered_at IS NULL AND failed_reason IS NULL",
                    tuple(chunk),
                )
                pending.update(int(row["id"]) for row in rows)
        return pending


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()
