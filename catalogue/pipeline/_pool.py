"""Worker processes for the CPU-bound half of ingesting, warmed once.

Why processes: parsing, normalising, validating and scoring are pure Python and hold the GIL.
Why ``spawn``: a fork of the node would copy its open stores, sockets and threads into the
worker; a spawned worker is the node's own child, so its CPU time is the node's to account
(``RUSAGE_CHILDREN``), which a forkserver's grandchildren are not. Each worker compiles the
shapes and loads the EU tables once (:func:`_warm`), then takes batches of documents as bytes
and returns worked records as strings and rows.
"""

from __future__ import annotations

import atexit
import gc
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager

from catalogue.analysis import warm_up
from catalogue.pipeline._documents import Document, WorkSettings
from catalogue.pipeline._work import WorkedDocument, work_documents
from catalogue.validation import compile_seconds
from vocab.shacl import Profile

_log = logging.getLogger(__name__)

# A worker holds the shapes, the EU tables and rdflib (~300 MB): more than a few is memory for
# nothing on the machines a node runs on, and past the cores it only adds switching.
MAX_WORKERS = 8


def default_workers() -> int:
    """One worker per core this process may use (at least one, at most :data:`MAX_WORKERS`)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(MAX_WORKERS, cores))


def _warm() -> None:
    """Load the EU tables and compile the DCAT-AP shapes (every record needs them) before the
    first batch; the other profile combinations are compiled when a record first needs them
    (all of them cost ~5 CPU-seconds a worker, more than a small bulk run's whole work).

    Then everything warm-up made (~800,000 objects: shapes, tables, vocabularies, rdflib) is
    moved out of the garbage collector's view (``gc.freeze``): it lives as long as the worker, and
    every full collection would otherwise walk all of it again, which cost a third of a worker's
    CPU time per record. Objects made later are collected as usual; at exit they are handed back
    (frozen objects are never freed, and extension modules report them as leaks).
    """
    warm_up([(Profile.DCAT_AP,)])
    gc.collect()
    gc.freeze()
    atexit.register(gc.unfreeze)


_frozen_by = 0
_frozen_lock = threading.Lock()


@contextmanager
def long_lived_frozen() -> Iterator[None]:
    """Keep the objects that exist now out of the garbage collector's view for the block.

    A node receiving worked records from the workers unpickles ~100,000 container objects a
    batch, which sets off full collections over everything the node holds (the stack, the
    vocabularies, the tables: ~600,000 objects), ~0.2 ms of CPU per record. Frozen objects are
    still freed when their last reference goes; only cycles among them wait until the block
    ends. Nested and concurrent blocks share one freeze: the last to leave lifts it.
    """
    global _frozen_by
    with _frozen_lock:
        if _frozen_by == 0:
            gc.freeze()
        _frozen_by += 1
    try:
        yield
    finally:
        with _frozen_lock:
            _frozen_by -= 1
            if _frozen_by == 0:
                gc.unfreeze()


def _started_cpu() -> float:
    """This worker's CPU time so far: its start-up, when asked right after it started."""
    return time.process_time()


def _work(documents: Sequence[Document], settings: WorkSettings) -> tuple[list[WorkedDocument], float, float]:
    """The worked documents, the CPU seconds they took (what ingest costs, beside start-up) and
    the part of those spent compiling the shapes of a profile combination first met."""
    started, compiling = time.process_time(), compile_seconds()
    worked = work_documents(documents, settings)
    return worked, time.process_time() - started, compile_seconds() - compiling


class WorkerPool:
    """A pool of warmed ingest workers, started on first use."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or default_workers()
        self._executor: ProcessPoolExecutor | None = None

    def _started(self) -> ProcessPoolExecutor:
        if self._executor is None:
            context = multiprocessing.get_context("spawn")
            self._executor = ProcessPoolExecutor(self.workers, mp_context=context, initializer=_warm)
            _log.info("ingest workers started", extra={"workers": self.workers})
        return self._executor

    def start(self) -> float:
        """Start and warm every worker now; the CPU seconds they spent starting (start-up cost).

        Each worker is spawned on a submission that finds none idle, so one call per worker
        lands on a new process, which runs the warm-up before its first task.
        """
        executor = self._started()
        futures = [executor.submit(_started_cpu) for _ in range(self.workers)]
        return sum(future.result() for future in futures)

    def submit(
        self, documents: Sequence[Document], settings: WorkSettings
    ) -> Future[tuple[list[WorkedDocument], float, float]]:
        return self._started().submit(_work, list(documents), settings)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
