"""Read-only SPARQL 1.1 over the store, each query in a worker process that cannot hurt the node.

The node never evaluates a caller's query in its own process. A small pool of worker processes
(:mod:`catalogue.store._sparql_worker`) parse and check each query on its algebra
(:mod:`catalogue.store.sparql_check`), run it on a read-only snapshot of the store and serialise
the results within a cap in rows and in bytes. Here the node:

* keeps snapshots current (:class:`Snapshots`: a RocksDB checkpoint made when the store changed
  since the last one; hard links, so cheap);
* waits for each answer at most the time limit, then kills the worker (SIGKILL) and answers
  422 — the query does not run on after its answer;
* notices a worker that died (a crash or its memory limit) and answers 422; the next query
  starts a fresh worker;
* refuses with 429 when every worker is busy (no queue: a queue would only hold callers longer
  than they wait).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import select
import shutil
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from time import monotonic
from typing import Any, Final

from catalogue.store._sparql_protocol import MAX_REQUEST_BYTES, N_TRIPLES, SPARQL_RESULTS_JSON
from catalogue.store.records import OxigraphStore
from catalogue.store.sparql_check import QueryRefused

__all__ = [
    "N_TRIPLES",
    "SPARQL_RESULTS_JSON",
    "QueryRefused",
    "QueryResult",
    "QueryTimeout",
    "Snapshots",
    "SparqlRunner",
]

_log = logging.getLogger(__name__)

WORKER_START_SECONDS: Final = 60.0
"""How long a new worker may take to import its libraries and say it is ready."""
_HEADER_LIMIT: Final = 64 * 1024
_BODY_SLACK: Final = 64 * 1024
"""Bytes a result may exceed its cap by (the JSON around the rows)."""
_PACKAGE_ROOT: Final = str(Path(__file__).resolve().parents[2])


class QueryTimeout(Exception):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"the query ran longer than the limit of {seconds:g} s and was stopped")
        self.seconds = seconds


@dataclass(frozen=True)
class QueryResult:
    media_type: str
    body: bytes
    truncated: bool
    count: int


class Snapshots:
    """Read-only checkpoints of an :class:`OxigraphStore` for the query workers.

    A new checkpoint is made when a query comes and the store changed since the newest one;
    older checkpoints are removed once no query uses them. The folder is emptied at start (what
    a previous run left is stale).
    """

    def __init__(self, store: OxigraphStore, folder: Path) -> None:
        self._store = store
        self._folder = folder
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._latest: tuple[int, Path] | None = None
        self._users: dict[Path, int] = {}
        self._made = 0

    def acquire(self) -> Path:
        with self._lock:
            if self._latest is None or self._latest[0] != self._store.generation:
                self._made += 1
                target = self._folder / f"snapshot-{self._made}"
                generation = self._store.backup(target)
                self._latest = (generation, target)
                self._sweep()
            path = self._latest[1]
            self._users[path] = self._users.get(path, 0) + 1
            return path

    def release(self, path: Path) -> None:
        with self._lock:
            left = self._users.get(path, 1) - 1
            if left > 0:
                self._users[path] = left
            else:
                self._users.pop(path, None)
            self._sweep()

    def _sweep(self) -> None:
        latest = self._latest[1] if self._latest else None
        for child in self._folder.iterdir():
            if child != latest and child not in self._users:
                shutil.rmtree(child, ignore_errors=True)

    def close(self) -> None:
        with self._lock:
            shutil.rmtree(self._folder, ignore_errors=True)


class _WorkerDied(Exception):
    pass


class _WorkerGone(_WorkerDied):
    """The worker was dead before it got the query (ended from outside while idle)."""


class _Spawner:
    """Starts worker processes from one long-lived thread.

    A worker asks the kernel to kill it when its parent goes (``PR_SET_PDEATHSIG``); the kernel
    means the parent *thread*. Started from a request's pool thread, a worker died with SIGKILL
    whenever that thread ended; started here, it dies only with this thread: at :meth:`close` or
    when the node's process ends.
    """

    def __init__(self) -> None:
        self._requests: queue.Queue[tuple[list[str], dict[str, str], list[Any], threading.Event] | None] = (
            queue.Queue()
        )
        self._thread = threading.Thread(target=self._loop, name="sparql-spawner", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while (request := self._requests.get()) is not None:
            command, env, box, done = request
            try:
                box.append(
                    subprocess.Popen(
                        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, close_fds=True
                    )
                )
            except OSError as error:
                box.append(error)
            done.set()

    def start(self, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        box: list[Any] = []
        done = threading.Event()
        self._requests.put((command, env, box, done))
        done.wait()
        if isinstance(box[0], OSError):
            raise box[0]
        process: subprocess.Popen[bytes] = box[0]
        return process

    def close(self) -> None:
        self._requests.put(None)


class _Worker:
    """One worker process and its pipes."""

    def __init__(self, spawner: _Spawner, memory_bytes: int) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            part for part in (_PACKAGE_ROOT, env.get("PYTHONPATH", "")) if part
        )
        self.process = spawner.start(
            [sys.executable, "-m", "catalogue.store._sparql_worker", str(memory_bytes)], env
        )
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self._in = self.process.stdin
        self._out = self.process.stdout.fileno()
        ready = json.loads(self._frame(monotonic() + WORKER_START_SECONDS, _HEADER_LIMIT))
        if not ready.get("network_denied"):
            _log.warning("SPARQL worker runs without the network filter (seccomp unavailable)")

    def _read(self, size: int, deadline: float) -> bytes:
        chunks: list[bytes] = []
        while size > 0:
            remaining = deadline - monotonic()
            if remaining <= 0:
                raise TimeoutError
            readable, _, _ = select.select([self._out], [], [], remaining)
            if not readable:
                raise TimeoutError
            chunk = os.read(self._out, min(size, 1 << 20))
            if not chunk:
                raise _WorkerDied
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    def _frame(self, deadline: float, limit: int) -> bytes:
        size = int.from_bytes(self._read(4, deadline), "big")
        if size > limit:
            raise _WorkerDied
        return self._read(size, deadline)

    def ask(self, request: dict[str, Any], deadline: float, body_limit: int) -> tuple[dict[str, Any], bytes]:
        data = json.dumps(request).encode()
        try:
            self._in.write(len(data).to_bytes(4, "big") + data)
            self._in.flush()
        except OSError:
            raise _WorkerGone from None
        header = json.loads(self._frame(deadline, _HEADER_LIMIT))
        return header, self._frame(deadline, body_limit)

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self._in.close()
        if self.process.stdout is not None:
            self.process.stdout.close()

    def exit_reason(self, memory_bytes: int) -> str:
        code = self.process.wait()
        if code == -signal.SIGABRT:
            return f"the query needed more than its memory limit of {memory_bytes // (1024 * 1024)} MiB"
        if code < 0:
            return f"the query engine stopped on this query (signal {-code}); the node is unaffected"
        return f"the query engine stopped on this query (exit code {code}); the node is unaffected"


class SparqlRunner:
    """Runs read-only queries on snapshots of ``store`` in isolated worker processes, within limits."""

    def __init__(
        self,
        snapshots: Snapshots,
        *,
        timeout_seconds: float,
        max_results: int,
        max_result_bytes: int,
        concurrency: int,
        max_query_chars: int,
        memory_bytes: int,
    ) -> None:
        self._snapshots = snapshots
        self.timeout_seconds = timeout_seconds
        self.max_results = max_results
        self.max_result_bytes = max_result_bytes
        self.memory_bytes = memory_bytes
        self._max_query_chars = max_query_chars
        self._slots = threading.BoundedSemaphore(concurrency)
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False
        self._spawner = _Spawner()

    def run(self, query: str) -> QueryResult:
        if not query.strip():
            raise QueryRefused(400, "query", "the query is empty")
        if len(query) > self._max_query_chars or len(query.encode()) > MAX_REQUEST_BYTES // 2:
            raise QueryRefused(413, "query", f"the query is longer than {self._max_query_chars} characters")
        if not self._slots.acquire(blocking=False):
            raise QueryRefused(429, "query", "too many SPARQL queries are running; retry shortly")
        try:
            return self._run(query)
        finally:
            self._slots.release()

    def _take_worker(self) -> _Worker:
        with self._lock:
            if self._closed:
                raise QueryRefused(503, "query", "the node is shutting down")
            while self._idle:
                worker = self._idle.pop()
                if worker.process.poll() is None:
                    return worker
                worker.kill()  # died while idle (killed from outside): replaced below
        try:
            return _Worker(self._spawner, self.memory_bytes)
        except (OSError, TimeoutError, _WorkerDied, ValueError) as error:
            _log.error("SPARQL worker did not start: %s", error)
            raise QueryRefused(503, "query", "the query engine could not be started; retry shortly") from None

    def _run(self, query: str) -> QueryResult:
        try:
            return self._run_once(query)
        except _WorkerGone:
            return self._run_once(query)  # once more, on a fresh worker

    def _run_once(self, query: str) -> QueryResult:
        worker = self._take_worker()
        snapshot = self._snapshots.acquire()
        keep = False
        try:
            request = {
                "query": query,
                "snapshot": str(snapshot),
                "max_rows": self.max_results,
                "max_bytes": self.max_result_bytes,
            }
            deadline = monotonic() + self.timeout_seconds
            try:
                header, body = worker.ask(request, deadline, self.max_result_bytes + _BODY_SLACK)
            except TimeoutError:
                raise QueryTimeout(self.timeout_seconds) from None
            except _WorkerGone:
                raise
            except _WorkerDied:
                worker.kill()
                raise QueryRefused(422, "query", worker.exit_reason(self.memory_bytes)) from None
            keep = True
        finally:
            self._snapshots.release(snapshot)
            if keep:
                with self._lock:
                    if self._closed:
                        worker.kill()
                    else:
                        self._idle.append(worker)
            else:
                worker.kill()
        if header.get("status") == "refused":
            raise QueryRefused(int(header["code"]), str(header["field"]), str(header["reason"]))
        return QueryResult(str(header["media_type"]), body, bool(header["truncated"]), int(header["count"]))

    def idle_workers(self) -> list[int]:
        """Process ids of the workers waiting for a query (for operators and tests)."""
        with self._lock:
            return [worker.pid for worker in self._idle]

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.kill()
        self._spawner.close()
        self._snapshots.close()
