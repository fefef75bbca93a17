"""How many reads were made under an agreement, counted the way the data plane counts them.

The data plane counts reads per consumer and offer unless the agreement says ``readScope
agreement`` (:mod:`connector.dataplane.read_rules`); the pages ask the same functions for the
counter's key and read the same row, so "reads used" on a page is the number the next read is
checked against.
"""

from __future__ import annotations

from connector.dataplane.errors import DataPlaneError
from connector.dataplane.read_rules import read_counter, read_rules
from connector.dataplane.store import DataPlaneStore
from connector.store import Store
from policies import Policy


class ReadCounts:
    """Reads used under an agreement, from the data plane's own counter."""

    def __init__(self, store: Store, counters: DataPlaneStore) -> None:
        self._store = store
        self._counters = counters

    def used(self, agreement_id: str, policy: Policy) -> int | None:
        view = self._store.agreement(agreement_id)
        if view is None:
            return None
        try:
            key = read_counter(view, read_rules(policy))
        except DataPlaneError:
            return None  # the data plane refuses every read under it: nothing is counted
        return self._counters.reads(key)
