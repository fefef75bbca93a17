"""Differential-privacy mode of aggregate-only reads: what a read may release, at what noise.

An agreement opts in with ``sluis:epsilon lteq E`` next to its aggregate-only terms. Then:

* only counts (``count(*)``, ``count(col)``, ``count(DISTINCT col)``), sums and means
  (``sum(col)``, ``avg(col)``) may be asked for; the disclosure rules (threshold, dominance)
  still apply first, on what the engine computes;
* a sum or mean needs the column's range declared by the provider (``privacy_bounds``); the
  values are clamped into it inside the engine (``privacy_clamp``), so one record moves a sum
  by at most ``max(|lower|, |upper|)`` - its sensitivity (each record is one row);
* sums and means are released for the whole granted relation only, never per group: which
  groups appear follows the (noiseless) threshold rule, a key set revealed from the data,
  and a noisy sum beside it would be released over groups whose very presence is not private;
* each read spends ``epsilon_per_read`` of the budget *before* the engine runs, atomically in
  the database (the budget holds across restarts and replicas, counted per consumer and
  offer like the read limit); a read that would exceed ``E`` is refused;
* the read's epsilon is split evenly over its ``m`` aggregate columns; a count column gets
  discrete Laplace noise of scale ``m / epsilon`` (sensitivity 1), a sum column continuous
  Laplace noise of scale ``sensitivity * m / epsilon``; a mean is a noisy sum divided by a
  noisy count of the values it saw, each with half of the column's share
  (scales ``2 m sensitivity / epsilon`` and ``2 m / epsilon``), clamped into the bounds. Noise
  comes from OpenDP (``privacy_noise``); groups are disjoint, so one record affects one group.

The mean is the ratio of two noisy releases rather than OpenDP's ``make_mean``, which needs the
number of records as public knowledge: the ratio is biased for small counts (the expectation of
a ratio is not the ratio of expectations, and clamping into the bounds pulls it inwards).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlglot import exp

from connector.dataplane.disclosure import output_name
from connector.dataplane.errors import QueryRefused
from connector.dataplane.privacy_bounds import Bounds

# Budget amounts are stored as integers of this unit (exact arithmetic in every database).
MICRO = 1_000_000

COUNT, SUM, AVG = "count", "sum", "avg"


@dataclass(frozen=True)
class NoisyCell:
    """One aggregate column of the result and the noise its cells get."""

    position: int  # index of the column in the result
    kind: str  # COUNT, SUM or AVG
    name: str  # the output column's name
    scale: float  # Laplace scale of the count or sum (a mean: of its sum)
    column: str | None = None  # the clamped input column (sums and means)
    bounds: Bounds | None = None
    count_scale: float | None = None  # a mean: scale of the noisy count it is divided by
    count_position: int | None = None  # a mean: index of that count's hidden column


@dataclass(frozen=True)
class PrivacyPlan:
    """What one read releases under a budget: its noisy cells and the epsilon they share."""

    epsilon: float
    cells: tuple[NoisyCell, ...]
    width: int  # columns the consumer asked for; a mean's hidden count columns follow them

    def scales(self) -> dict[str, float]:
        """Output column -> Laplace scale of its noise (what both sides are shown)."""
        return {cell.name: cell.scale for cell in self.cells}


def hidden_count_name(position: int) -> str:
    """The hidden column that carries the count a mean at ``position`` is divided by."""
    return f"sluis_dp_n{position}"


def _aggregate(projection: exp.Expr) -> exp.Expr:
    return projection.this if isinstance(projection, exp.Alias) else projection


def _input_column(value: exp.Expr) -> str:
    column = value.this
    if not (isinstance(column, exp.Column) and isinstance(column.this, exp.Identifier) and not column.table):
        raise QueryRefused(
            "differential_privacy",
            f"{value.sql('duckdb')}: under a differential-privacy budget a sum or mean is taken over "
            "a plain column (no expression, CASE or FILTER)",
        )
    return column.name.lower()


def plan(tree: exp.Select, bounds: Mapping[str, Bounds], epsilon: float) -> PrivacyPlan:
    """The noisy cells of an accepted aggregate and their scales; refuses anything else."""
    aggregates = [
        (index, projection)
        for index, projection in enumerate(tree.expressions)
        if isinstance(_aggregate(projection), exp.AggFunc)
    ]
    share = epsilon / max(1, len(aggregates))
    cells: list[NoisyCell] = []
    for index, projection in aggregates:
        value, name = _aggregate(projection), output_name(projection)
        if isinstance(value, exp.Count):
            cells.append(NoisyCell(index, COUNT, name, 1 / share))
            continue
        if not isinstance(value, exp.Sum | exp.Avg):
            raise QueryRefused(
                "differential_privacy",
                f"{value.sql('duckdb')}: under a differential-privacy budget only count, sum and avg "
                "may be read (no min, max, median, variance or other statistics)",
            )
        if tree.args.get("group") is not None:
            raise QueryRefused(
                "differential_privacy",
                f"{value.sql('duckdb')}: under a differential-privacy budget sums and means are read over "
                "the whole granted data, not per group (which groups exist is not released privately)",
            )
        column = _input_column(value)
        found = bounds.get(column)
        if found is None:
            raise QueryRefused(
                "privacy_bounds",
                f"{value.sql('duckdb')}: the agreement declares no bounds for column {column!r}, so a "
                f"sum over it has no bounded sensitivity (the provider states bounds:{column} gteq L "
                "and lteq U)",
            )
        if isinstance(value, exp.Sum):
            cells.append(NoisyCell(index, SUM, name, found.sensitivity / share, column, found))
        else:
            half = share / 2
            hidden = len(tree.expressions) + sum(cell.kind == AVG for cell in cells)
            scale = found.sensitivity / half
            cells.append(NoisyCell(index, AVG, name, scale, column, found, 1 / half, hidden))
    _refuse_ordering_by_noisy_cells(tree, [cell.name for cell in cells])
    return PrivacyPlan(epsilon, tuple(cells), len(tree.expressions))


def _refuse_ordering_by_noisy_cells(tree: exp.Select, names: Sequence[str]) -> None:
    """The result is ordered (and cut by ``LIMIT``) in the engine, before noise is added: an
    ``ORDER BY`` on a count or sum would release the exact ranking of the true values
    (``ORDER BY n DESC LIMIT 1`` names the largest group) outside the budget. Ordering by group
    columns, which are released as they are, stays allowed; a client orders noisy cells itself."""
    order = tree.args.get("order")
    if order is None:
        return
    noisy = {name.lower() for name in names}
    for item in order.expressions:
        key = item.this
        name = key.name if isinstance(key, exp.Column) else key.sql("duckdb")
        if name.lower() in noisy:
            raise QueryRefused(
                "differential_privacy",
                f"ORDER BY {name}: under a differential-privacy budget aggregates are noised after the "
                "query runs, so results may be ordered by grouped columns only (order them yourself)",
            )
