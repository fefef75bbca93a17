"""Differential-privacy mode of aggregate-only reads: what a read may release, at what noise.

An agreement opts in with ``sluis:epsilon lteq E`` next to its aggregate-only terms. Then:

* only counts (``count(*)``, ``count(col)``, ``count(DISTINCT col)``), sums and means
  (``sum(col)``, ``avg(col)``) may be asked for, in the shapes the disclosure rules accept;
* a sum or mean needs the column's range declared by the provider (``privacy_bounds``); the
  values are clamped into it inside the engine (``privacy_clamp``), so one record moves a sum
  by at most ``max(|lower|, |upper|)`` - its sensitivity (each record is one row);
* a grouped read needs a **public key set** for each column it groups by, declared by the
  provider (``privacy_bounds.declared_keys``): the read releases exactly the declared groups
  (every combination of the declared keys, in the order declared or as ``ORDER BY`` asks),
  a group with no rows as a noisy zero, and rows with other keys (or ``NULL``) in no group. So
  which groups appear is not decided by the data; without declared keys a grouped read is
  refused. No cell is suppressed or left out on its true value: the threshold rule is applied
  to the *noisy* counts (post-processing) and the dominance rule not at all (the noise of a sum
  is calibrated to one record's largest clamped contribution, what that rule guards against);
* groups are disjoint (one record has one key per grouped column), so a record changes one
  cell of each aggregate column: by parallel composition a grouped read costs what a read of
  the whole data costs, ``epsilon_per_read``, however many groups it releases;
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
from connector.dataplane.privacy_bounds import Bounds, Key

# Budget amounts are stored as integers of this unit (exact arithmetic in every database).
MICRO = 1_000_000

COUNT, SUM, AVG = "count", "sum", "avg"
# Groups one read may release (the product of the declared key sets of its grouped columns).
MAX_CELLS = 10_000


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
class GroupColumn:
    """A grouped column of the result and the public keys it is released for."""

    position: int  # index of the column in the result
    column: str  # the granted column grouped by (lower case)
    keys: tuple[Key, ...]


@dataclass(frozen=True)
class PrivacyPlan:
    """What one read releases under a budget: its noisy cells and the epsilon they share."""

    epsilon: float
    cells: tuple[NoisyCell, ...]
    width: int  # columns the consumer asked for; a mean's hidden count columns follow them
    groups: tuple[GroupColumn, ...] = ()  # the released groups: every combination of their keys
    order: tuple[tuple[int, bool], ...] = ()  # (result column, descending) of ORDER BY, applied after

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


def _groups(tree: exp.Select, keys: Mapping[str, tuple[Key, ...]]) -> tuple[GroupColumn, ...]:
    """The grouped columns of the result, each with its declared public keys (refused without)."""
    group = tree.args.get("group")
    if group is None:
        return ()
    grouped = set()
    for expression in group.expressions:
        if not (isinstance(expression, exp.Column) and not expression.table):
            raise QueryRefused("differential_privacy", "under a differential-privacy budget GROUP BY lists "
                               "columns")
        grouped.add(expression.name.lower())
    found: list[GroupColumn] = []
    cells = 1
    for index, projection in enumerate(tree.expressions):
        value = _aggregate(projection)
        if isinstance(value, exp.AggFunc):
            continue
        name = value.name.lower() if isinstance(value, exp.Column) else ""
        if name not in grouped:
            raise QueryRefused("differential_privacy", f"{value.sql('duckdb')}: under a differential-privacy "
                               "budget every output column is a grouped column or an aggregate")
        declared = keys.get(name)
        if declared is None:
            raise QueryRefused(
                "privacy_keys",
                f"GROUP BY {name}: the agreement declares no public keys for column {name!r}, so which "
                f"groups exist would be released from the data itself (the provider states keys:{name} "
                "isAnyOf [...])",
            )
        cells *= len(declared)
        found.append(GroupColumn(index, name, declared))
    if {column.column for column in found} != grouped:
        raise QueryRefused("differential_privacy", "under a differential-privacy budget every grouped "
                           "column is shown in the result (a hidden grouping splits cells unseen)")
    if cells > MAX_CELLS:
        raise QueryRefused("differential_privacy", f"the declared keys make {cells} groups; a read releases "
                           f"at most {MAX_CELLS}")
    return tuple(found)


def plan(tree: exp.Select, bounds: Mapping[str, Bounds], epsilon: float,
         keys: Mapping[str, tuple[Key, ...]] | None = None) -> PrivacyPlan:
    """The noisy cells of an accepted aggregate and their scales; refuses anything else."""
    if tree.args.get("limit") is not None or tree.args.get("offset") is not None:
        raise QueryRefused("differential_privacy", "under a differential-privacy budget a read releases "
                           "every declared group: no LIMIT or OFFSET (cut the result yourself)")
    groups = _groups(tree, keys or {})
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
    return PrivacyPlan(epsilon, tuple(cells), len(tree.expressions), groups, _order(tree, groups))


def _order(tree: exp.Select, groups: Sequence[GroupColumn]) -> tuple[tuple[int, bool], ...]:
    """ORDER BY as (result column, descending): applied to the released groups after the noise."""
    order = tree.args.get("order")
    if order is None:
        return ()
    names = {output_name(tree.expressions[group.position]).lower(): group.position for group in groups}
    names.update({group.column: group.position for group in groups})
    found: list[tuple[int, bool]] = []
    for item in order.expressions:
        key = item.this
        position = names.get(key.name.lower()) if isinstance(key, exp.Column) else None
        if position is None:
            raise QueryRefused("differential_privacy", f"ORDER BY {key.sql('duckdb')}: under a "
                               "differential-privacy budget results may be ordered by grouped columns only")
        found.append((position, bool(item.args.get("desc"))))
    return tuple(found)


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
