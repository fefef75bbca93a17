"""Statistical disclosure control for aggregate-only agreements: what a query may compute and
which cells of its result are suppressed before any byte leaves.

The rules follow the output-checking practice of trusted research environments (the
"safe outputs" rules ACRO automates, the UK LLC and the ABS apply, OpenSAFELY's redaction and
DataSHIELD's ``nfilter.tab``):

* **Plain aggregates only.** ``count(*)``, ``count(col)``, ``count(DISTINCT col)``, ``sum``,
  ``avg``, ``median``, ``stddev``/``variance`` (sample and population), ``corr`` and
  ``covar_*``, each over plain columns. Refused: ``min``/``max`` (the extreme *is* a record),
  ``mode``, ``first``/``any_value``, every top-n form (``max(x, n)``, ``arg_min(x, y, n)``),
  every list/string/array-returning aggregate, ``quantile_*``, ``DISTINCT`` other than in
  ``count``, ordered aggregates, and any expression inside an aggregate: ``CASE``, ``IF``,
  ``FILTER (WHERE ...)``, arithmetic on a comparison - **conditional aggregation** would let an
  aggregate see a sub-group smaller than the one the threshold counted.
* **One grouped SELECT over the granted view**: no join, subquery, CTE, window, set
  operation, ``DISTINCT``, ``HAVING``, ``ROLLUP``/``CUBE``/``GROUPING SETS``/``GROUP BY ALL``;
  ``GROUP BY`` lists columns; ``ORDER BY`` names output columns; output names are distinct.
* **Threshold per cell.** A group with fewer than ``k`` rows is left out of the result; within
  a kept group, an aggregate cell whose own contributing rows (its non-null inputs) number
  fewer than ``k`` is suppressed (``NULL``).
* **Dominance** (``sum``/``avg``, and the spread: ``stddev``, ``variance``, ``covar_*``, which
  give a dominant value away as well): a cell where the ``n`` largest contributions (absolute
  values) of an input column exceed ``p`` of its total is suppressed (the N-K rule, by default 2
  and 90 %).
* **Rounding** (profiles that ask for it): counts are rounded to the nearest multiple of ``r``.

The profile is named in the agreement (``sluis:disclosureProfile``); ``sluis:groupSize`` raises
its threshold. Differencing across reads (``a IN (x, y)`` minus ``a = x``) is not something a
single read can see: the data plane counts every query that reaches the engine against the
agreement's read limit, and gives aggregate-only agreements without one a query budget.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from connector.dataplane.errors import QueryRefused


@dataclass(frozen=True)
class DisclosureProfile:
    """Output-checking rules applied to every aggregate-only read."""

    name: str
    min_cell: int  # a cell needs at least this many contributing rows
    round_to: int | None = None  # counts rounded to a multiple of this (None: not rounded)
    dominance_n: int = 2  # the N largest contributions ...
    dominance_share: float = 0.9  # ... may not exceed this share of the cell's total
    description: str = ""


PROFILES: dict[str, DisclosureProfile] = {
    profile.name: profile
    for profile in (
        DisclosureProfile(
            "default", 10, description="threshold 10 (ACRO's default; UK LLC, ABS), N-K 2/90 %"
        ),
        DisclosureProfile(
            "opensafely",
            8,
            round_to=5,
            description="counts of 7 or fewer suppressed, others rounded to 5 (OpenSAFELY)",
        ),
        DisclosureProfile("datashield", 3, description="threshold 3 (DataSHIELD's nfilter.tab)"),
    )
}
DEFAULT_PROFILE = PROFILES["default"]


def profile_named(name: str | None, min_group_size: int | None) -> DisclosureProfile:
    """The profile an agreement names (default if none), its threshold raised to ``min_group_size``.

    An agreement that states ``sluis:groupSize`` but no profile gets that threshold with the
    default profile's other rules; an unknown profile name refuses the read (fail closed).
    """
    if name is None:
        base = DEFAULT_PROFILE
        if min_group_size is not None:
            return DisclosureProfile(
                base.name,
                max(1, min_group_size),
                base.round_to,
                base.dominance_n,
                base.dominance_share,
                base.description,
            )
        return base
    profile = PROFILES.get(name)
    if profile is None:
        raise QueryRefused(
            "disclosure_profile",
            f"the agreement names disclosure profile {name!r}; known: {sorted(PROFILES)}",
        )
    if min_group_size is not None and min_group_size > profile.min_cell:
        return DisclosureProfile(
            profile.name,
            min_group_size,
            profile.round_to,
            profile.dominance_n,
            profile.dominance_share,
            profile.description,
        )
    return profile


_ONE_COLUMN = (
    exp.Sum,
    exp.Avg,
    exp.Median,
    exp.Stddev,
    exp.StddevPop,
    exp.StddevSamp,
    exp.Variance,
    exp.VariancePop,
)
_TWO_COLUMNS = (exp.Corr, exp.CovarPop, exp.CovarSamp)
# Statistics that show magnitudes: a sum or mean, and equally the spread - with one dominant
# value x among n small ones the variance is about x**2 / n (covar(x, x) is the variance).
_DOMINATED = (
    exp.Sum, exp.Avg, exp.Stddev, exp.StddevPop, exp.StddevSamp, exp.Variance, exp.VariancePop,
    exp.CovarPop, exp.CovarSamp,
)


def _plain_column(node: object) -> bool:
    return isinstance(node, exp.Column) and isinstance(node.this, exp.Identifier) and not node.table


def _extra_args(node: exp.Expr, allowed: tuple[str, ...]) -> bool:
    return any(value not in (None, False, []) for key, value in node.args.items() if key not in allowed)


def aggregate_inputs(node: exp.Expr) -> list[exp.Column] | None:
    """The columns a plain allowed aggregate reads (``[]`` for ``count(*)``), ``None`` if not allowed."""
    if isinstance(node, exp.Count):
        if _extra_args(node, ("this", "big_int")):
            return None
        inner = node.this
        if isinstance(inner, exp.Star):
            return []
        if isinstance(inner, exp.Distinct):
            if inner.args.get("on") is not None or len(inner.expressions) != 1:
                return None
            inner = inner.expressions[0]
        return [inner] if _plain_column(inner) else None
    if isinstance(node, _ONE_COLUMN):
        if _extra_args(node, ("this",)) or not _plain_column(node.this):
            return None
        return [node.this]
    if isinstance(node, _TWO_COLUMNS):
        if _extra_args(node, ("this", "expression")):
            return None
        if not (_plain_column(node.this) and _plain_column(node.expression)):
            return None
        return [node.this, node.expression]
    return None


def aggregate_problem(tree: exp.Expr) -> str | None:
    """Why ``tree`` is not an aggregate the disclosure rules allow, or ``None`` if it is."""
    if not isinstance(tree, exp.Select):
        return "it must be a single SELECT (no UNION, INTERSECT or EXCEPT)"
    for kind, label in (
        (exp.With, "WITH"),
        (exp.Join, "JOIN"),
        (exp.Subquery, "a subquery"),
        (exp.Window, "a window function"),
        (exp.Qualify, "QUALIFY"),
        (exp.Having, "HAVING"),
        (exp.Filter, "FILTER (conditional aggregation)"),
    ):
        if tree.find(kind) is not None:
            return f"it may not use {label}"
    if tree.args.get("distinct"):
        return "it may not use SELECT DISTINCT"
    source = tree.args.get("from_") or tree.args.get("from")
    if not isinstance(source, exp.From) or not isinstance(source.this, exp.Table):
        return "it must read the granted view directly"
    group = tree.args.get("group")
    group_columns: set[str] = set()
    if group is not None:
        if _extra_args(group, ("expressions",)):
            return "GROUP BY may only list columns (no ALL, ROLLUP, CUBE or GROUPING SETS)"
        for item in group.expressions:
            if not _plain_column(item):
                return "GROUP BY may only list columns (no ALL, ROLLUP, CUBE or GROUPING SETS)"
            group_columns.add(item.name.lower())
    saw_aggregate = False
    names: set[str] = set()
    for projection in tree.expressions:
        inner = projection.this if isinstance(projection, exp.Alias) else projection
        name = output_name(projection).lower()
        if name in names:
            # each output cell is checked, suppressed (and under a privacy budget, noised) by its
            # column: two columns of one name could not be told apart
            return f"two output columns are named {name!r}; give each its own name"
        names.add(name)
        if _plain_column(inner):
            if inner.name.lower() not in group_columns:
                return f"column {inner.name!r} is neither grouped nor aggregated"
            continue
        if isinstance(inner, exp.AggFunc):
            if aggregate_inputs(inner) is None:
                return (
                    f"{inner.sql('duckdb')} is not a plain allowed aggregate over columns "
                    "(count, sum, avg, median, stddev, variance, corr, covar; no min/max, top-n, "
                    "list-returning or conditional forms)"
                )
            saw_aggregate = True
            continue
        return f"{inner.sql('duckdb')} is neither a grouped column nor a plain aggregate"
    if not saw_aggregate:
        return "it computes no aggregate"
    order = tree.args.get("order")
    if order is not None:
        for item in order.expressions:
            key = item.this
            if not _plain_column(key) or (key.name.lower() not in names | group_columns):
                return "ORDER BY may only name output or grouped columns"
    return None


def output_name(projection: exp.Expr) -> str:
    if isinstance(projection, exp.Alias):
        return projection.alias
    if isinstance(projection, exp.Column):
        return projection.name
    return projection.sql("duckdb").lower()


def _count(column: exp.Expr | None) -> exp.Expr:
    return exp.Count(this=exp.Star() if column is None else column.copy())


def protect(tree: exp.Select, profile: DisclosureProfile) -> exp.Select:
    """The query that runs instead of ``tree`` (already accepted by :func:`aggregate_problem`):
    groups below the threshold left out, cells below it or dominated suppressed, counts rounded."""
    k = exp.Literal.number(profile.min_cell)
    inner = tree.copy()
    order, limit, offset = inner.args.get("order"), inner.args.get("limit"), inner.args.get("offset")
    for key in ("order", "limit", "offset"):
        inner.set(key, None)
    projections: list[exp.Expr] = []
    outer: list[exp.Expr] = []
    for index, projection in enumerate(tree.expressions):
        value = projection.this if isinstance(projection, exp.Alias) else projection
        name = output_name(projection)
        slot = f"sluis_v{index}"
        projections.append(exp.alias_(value.copy(), slot, quoted=True))
        cell = exp.column(slot, quoted=True)
        if not isinstance(value, exp.AggFunc):
            outer.append(exp.alias_(cell, name, quoted=True))
            continue
        inputs = aggregate_inputs(value) or []
        suppress: list[exp.Expr] = []
        seen = f"sluis_n{index}"
        if inputs:
            rows = exp.Count(this=exp.Star())
            condition = exp.and_(
                *(exp.Not(this=exp.Is(this=c.copy(), expression=exp.Null())) for c in inputs)
            )
            projections.append(
                exp.alias_(exp.Filter(this=rows, expression=exp.Where(this=condition)), seen, quoted=True)
            )
            suppress.append(exp.LT(this=exp.column(seen, quoted=True), expression=k.copy()))
        dominated = inputs if isinstance(value, _DOMINATED) and profile.dominance_n > 0 else []
        for place, column in enumerate(dominated):  # each input column of the statistic
            top, total = f"sluis_t{index}_{place}", f"sluis_s{index}_{place}"
            magnitude = exp.Abs(this=column.copy())
            largest = exp.Anonymous(
                this="max", expressions=[magnitude, exp.Literal.number(profile.dominance_n)]
            )
            projections.append(
                exp.alias_(exp.Anonymous(this="list_sum", expressions=[largest]), top, quoted=True)
            )
            projections.append(exp.alias_(exp.Sum(this=magnitude.copy()), total, quoted=True))
            suppress.append(
                exp.GT(
                    this=exp.column(top, quoted=True),
                    expression=exp.Mul(
                        this=exp.Literal.number(profile.dominance_share),
                        expression=exp.column(total, quoted=True),
                    ),
                )
            )
        shown: exp.Expr = cell
        if isinstance(value, exp.Count) and profile.round_to:
            step = exp.Literal.number(profile.round_to)
            shown = exp.Cast(
                this=exp.Mul(
                    this=exp.Anonymous(
                        this="round",
                        expressions=[
                            exp.Div(
                                this=cell.copy(),
                                expression=exp.Cast(this=step.copy(), to=exp.DataType.build("DOUBLE")),
                            )
                        ],
                    ),
                    expression=step,
                ),
                to=exp.DataType.build("BIGINT"),
            )
        if suppress:
            shown = exp.Case(ifs=[exp.If(this=exp.or_(*suppress), true=exp.Null())], default=shown)
        outer.append(exp.alias_(shown, name, quoted=True))
    inner.set("expressions", projections)
    inner = inner.having(exp.GTE(this=_count(None), expression=k), copy=False)
    result = exp.select(*outer).from_(
        exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier("sluis_cells", quoted=True)))
    )
    if order is not None:
        result.set(
            "order",
            exp.Order(
                expressions=[
                    exp.Ordered(
                        this=exp.column(_order_name(item.this, tree), quoted=True),
                        desc=item.args.get("desc"),
                        nulls_first=item.args.get("nulls_first"),
                    )
                    for item in order.expressions
                ]
            ),
        )
    if limit is not None:
        result.set("limit", limit.copy())
    if offset is not None:
        result.set("offset", offset.copy())
    return result


def _order_name(key: exp.Expr, tree: exp.Select) -> str:
    """The output column an ORDER BY key names (an alias, or a grouped column shown as such)."""
    wanted = key.name.lower()
    for projection in tree.expressions:
        if output_name(projection).lower() == wanted:
            return output_name(projection)
    raise QueryRefused("aggregate_only", f"ORDER BY {key.name!r} must name an output column")
