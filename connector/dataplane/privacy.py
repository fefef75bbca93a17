"""Differential-privacy mode of aggregate-only reads: noisy counts against an ``epsilon`` budget.

An agreement opts in with ``sluis:epsilon lteq E`` next to its aggregate-only terms. Then:

* only counts may be asked for (``count(*)``, ``count(col)``, ``count(DISTINCT col)``), grouped
  as the disclosure rules allow; the disclosure rules (threshold, rounding) still apply first;
* each read spends ``epsilon_per_read`` of the budget *before* the engine runs, atomically in
  the database (so the budget holds across restarts and replicas, counted per consumer and
  offer like the read limit); a read that would exceed ``E`` is refused;
* every count cell of the result gets discrete Laplace noise from OpenDP, with scale
  ``m / epsilon_per_read`` where ``m`` is the number of count columns (one record changes each
  count column of one group by at most one: L1 sensitivity ``m`` under adding or removing a
  record; groups are disjoint). Noisy counts are floored at zero (post-processing).

What this does *not* protect, stated plainly: which groups appear in the result follows the
threshold rule, not differential privacy (a key set released without noise); sums, means and
other statistics are refused in this mode rather than released without a calibrated bound.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
from sqlglot import exp

from connector.dataplane.disclosure import output_name
from connector.dataplane.errors import QueryRefused

# Budget amounts are stored as integers of this unit (exact arithmetic in every database).
MICRO = 1_000_000

_lock = threading.Lock()
_enabled = False


def _opendp() -> Any:
    """The OpenDP prelude, with the contributed measurements (discrete Laplace) enabled once."""
    global _enabled
    import opendp.prelude as dp

    with _lock:
        if not _enabled:
            dp.enable_features("contrib")
            _enabled = True
    return dp


def count_columns(tree: exp.Select) -> list[int]:
    """Positions of the count cells of an accepted aggregate; refuses any other statistic.

    Positions, not names: what runs (``disclosure.protect``) keeps the projection's order, and a
    position cannot be mistaken for another column of the same name."""
    positions: list[int] = []
    for index, projection in enumerate(tree.expressions):
        value = projection.this if isinstance(projection, exp.Alias) else projection
        if isinstance(value, exp.AggFunc):
            if not isinstance(value, exp.Count):
                raise QueryRefused(
                    "differential_privacy",
                    f"{value.sql('duckdb')}: under a differential-privacy budget only counts may be read",
                )
            positions.append(index)
    _refuse_ordering_by_counts(tree, positions)
    return positions


def _refuse_ordering_by_counts(tree: exp.Select, positions: Sequence[int]) -> None:
    """The result is ordered (and cut by ``LIMIT``) in the engine, before noise is added: an
    ``ORDER BY`` on a count would release the exact ranking of the true counts (``ORDER BY n
    DESC LIMIT 1`` names the largest group) outside the budget. Ordering by group columns, which
    are released as they are, stays allowed; a client orders noisy counts itself."""
    order = tree.args.get("order")
    if order is None:
        return
    noisy = {output_name(tree.expressions[index]).lower() for index in positions}
    for item in order.expressions:
        key = item.this
        name = key.name if isinstance(key, exp.Column) else key.sql("duckdb")
        if name.lower() in noisy:
            raise QueryRefused(
                "differential_privacy",
                f"ORDER BY {name}: under a differential-privacy budget counts are noised after the query "
                "runs, so results may be ordered by grouped columns only (order the noisy counts yourself)",
            )


def add_noise(table: pa.Table, columns: Sequence[int], epsilon: float) -> pa.Table:
    """``table`` with discrete Laplace noise on the columns at ``columns`` (scale
    ``len(columns) / epsilon``)."""
    if not columns or table.num_rows == 0:
        return table
    dp = _opendp()
    scale = len(columns) / epsilon
    measurement = dp.m.make_laplace(dp.atom_domain(T=int), dp.absolute_distance(T=int), scale=scale)
    for index in columns:
        name = table.schema.field(index).name
        values = table.column(index).to_pylist()
        noisy = [None if value is None else max(0, int(measurement(int(value)))) for value in values]
        table = table.set_column(index, pa.field(name, pa.int64()), pa.array(noisy, pa.int64()))
    return table
