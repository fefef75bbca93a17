"""How many refusals one transfer may write into the signed audit chain, per unit of time.

A consumer with a valid agreement can send refused queries as fast as it likes (a query the
checker refuses, a read past its limit), and each refusal used to become a signed audit entry
appended under the lock every read shares: an identified but unbounded way to grow the chain
and slow everyone's reads. Refusals stay refusals; past a token bucket's rate they are counted
instead of appended, and the next refusal that is appended says how many were left out, so the
chain still shows that the consumer kept trying.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

#: Refusals a transfer may have audited in a burst, then one more per second.
DEFAULT_BURST: Final = 60
DEFAULT_PER_SECOND: Final = 1.0
#: Transfers tracked at once (least recently refused forgotten first: a fresh, full bucket).
MAX_TRACKED_TRANSFERS: Final = 10_000


@dataclass
class _Bucket:
    tokens: float
    updated: float
    left_out: int = 0


class DenialBudget:
    """Token bucket per transfer; :meth:`take` says whether to audit one more refusal."""

    def __init__(
        self,
        burst: int = DEFAULT_BURST,
        per_second: float = DEFAULT_PER_SECOND,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._burst = float(burst)
        self._per_second = per_second
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()
        self.left_out_total = 0

    def take(self, transfer_id: str) -> tuple[bool, int]:
        """(audit this refusal?, refusals of this transfer left out since the last audited one)."""
        now = self._clock()
        with self._lock:
            bucket = self._buckets.pop(transfer_id, None) or _Bucket(self._burst, now)
            bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._per_second)
            bucket.updated = now
            self._buckets[transfer_id] = bucket
            while len(self._buckets) > MAX_TRACKED_TRANSFERS:
                self._buckets.popitem(last=False)
            if bucket.tokens < 1.0:
                bucket.left_out += 1
                self.left_out_total += 1
                return False, bucket.left_out
            bucket.tokens -= 1.0
            left_out, bucket.left_out = bucket.left_out, 0
            return True, left_out
