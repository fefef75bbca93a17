"""A node's federation side, held open for its lifetime: the ledger, the harvester, the node's
identity (did:web) and the scheduler that re-harvests sources in the background.

The composition root opens one :class:`Federation` per node; the sources API
(:mod:`catalogue.harvest.routes`) and ``sluis catalogue harvest`` drive it. Harvests run in
background threads, one per source at a time, so a slow or hostile peer occupies one thread and
never the request path.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from catalogue.harvest._run import Harvester, HarvestError, ProgressHook, origins_json
from catalogue.harvest.config import NODE_CONFIG_FILE, ConfigError, NodeSettings, load_settings
from catalogue.harvest.ledger import LEDGER_FILE, Ledger, Run, Source
from catalogue.publish import CataloguePublisher, timestamp
from catalogue.signing import load_node_key
from connector.identity import KeyPair, did_document

_log = logging.getLogger(__name__)

#: How often the scheduler looks for sources that are due (seconds).
SCHEDULER_TICK_SECONDS = 1.0


def settings_for(data_dir: Path, public_url: str | None = None) -> NodeSettings:
    """The node's settings: ``DIR/node.toml`` when present, else defaults for ``public_url``."""
    path = data_dir / NODE_CONFIG_FILE
    if path.exists():
        return load_settings(path)
    return NodeSettings(public_url=public_url) if public_url else NodeSettings()


class Federation:
    def __init__(
        self,
        publisher: CataloguePublisher,
        data_dir: Path,
        settings: NodeSettings,
        *,
        key: KeyPair | None = None,
    ) -> None:
        self.settings = settings
        self.ledger = Ledger(data_dir / LEDGER_FILE)
        now = timestamp(datetime.now(UTC))
        for source in settings.sources:
            self.ledger.put_source(source, now)
        self._key = key or load_node_key(data_dir)
        self._dsp: Any = None
        self.harvester = Harvester(publisher, self.ledger, settings, dsp_fetch=self._dsp_catalog)
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._scheduler: threading.Thread | None = None

    # ---- identity -----------------------------------------------------------------------------
    @property
    def did(self) -> str:
        return self.settings.node_did

    def did_document(self) -> dict[str, Any]:
        return did_document(self.did, self._key)

    def _dsp_catalog(self, url: str, audience: str) -> tuple[int, Any]:
        """A DSP CatalogRequestMessage signed as this node (its did:web and key)."""
        from catalogue.harvest._fetch import FetchError
        from connector.dsp_client import DspClient, DspClientError

        if self._dsp is None:
            self._dsp = DspClient(self.did, self._key, address_policy=self.settings.address_policy)
        try:
            response = self._dsp.catalog(url, audience)
        except DspClientError as error:
            raise FetchError("unreachable", str(error)[:500]) from None
        return response.status, response.body

    # ---- sources ------------------------------------------------------------------------------
    def add_source(self, source: Source) -> bool:
        return self.ledger.put_source(source, timestamp(datetime.now(UTC)))

    def status(self, source_id: str) -> dict[str, Any] | None:
        source = self.ledger.source(source_id)
        if source is None:
            return None
        run = self.ledger.last_run(source_id)
        with self._lock:
            running = source_id in self._threads and self._threads[source_id].is_alive()
        return {
            "source": source.to_json(),
            "status": "running" if running else (str(run.state) if run else "never harvested"),
            "trusted": bool(source.did and source.did in self.settings.trusted),
            "counts": self.ledger.source_counts(source_id),
            "last_run": run.to_json() if run else None,
            "last_error": run.error if run else None,
            "rejected": self.ledger.rejections(run.id, 20) if run else [],
            "quarantined": self.ledger.quarantined(source_id, 20),
        }

    def origins(self, record_ids: list[str]) -> dict[str, list[dict[str, str]]]:
        return origins_json(self.ledger, record_ids)

    # ---- running harvests ------------------------------------------------------------------------
    def harvest(self, source_id: str, progress: ProgressHook | None = None) -> Run:
        """Harvest now, in this thread (the CLI)."""
        return self.harvester.harvest(source_id, progress=progress, stop=self._stop)

    def harvest_in_background(self, source_id: str) -> bool:
        """Start a harvest of the source unless one is running; False when one was."""
        if self.ledger.source(source_id) is None:
            raise HarvestError("unknown-source", f"no source {source_id!r}")
        with self._lock:
            thread = self._threads.get(source_id)
            if thread is not None and thread.is_alive():
                return False
            thread = threading.Thread(
                target=self._run_quietly, args=(source_id,), name=f"harvest-{source_id}", daemon=True
            )
            self._threads[source_id] = thread
            thread.start()
        return True

    def _run_quietly(self, source_id: str) -> None:
        try:
            self.harvester.harvest(source_id, stop=self._stop)
        except HarvestError as error:
            _log.info("harvest not run", extra={"source": source_id, "reason": error.message})
        except Exception:  # a harvest must never take the node down; the run records what it could
            _log.exception("harvest failed", extra={"source": source_id})

    def _due(self, source: Source, now: datetime) -> bool:
        interval = source.interval_seconds or self.settings.harvest_interval_seconds
        if not interval:
            return False
        run = self.ledger.last_run(source.id)
        if run is None:
            return True
        if run.finished is None:
            return True  # interrupted: resume
        finished = datetime.strptime(run.finished, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        return (now - finished).total_seconds() >= interval

    def start_scheduler(self, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        """Re-harvest every source on its interval, in the background, until :meth:`close`."""

        def loop() -> None:
            while not self._stop.wait(SCHEDULER_TICK_SECONDS):
                now = clock()
                for source in self.ledger.sources():
                    if self._due(source, now):
                        self.harvest_in_background(source.id)

        self._scheduler = threading.Thread(target=loop, name="harvest-scheduler", daemon=True)
        self._scheduler.start()

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            threads = list(self._threads.values())
        for thread in threads:
            thread.join(timeout=30)
        if self._scheduler is not None:
            self._scheduler.join(timeout=5)
        self.harvester.close()
        if self._dsp is not None:
            self._dsp.close()
        self.ledger.close()


__all__ = ["ConfigError", "Federation", "settings_for"]
