"""The query rewrite that clamps summed values into their declared bounds inside the engine.

A differentially private sum is only as private as its sensitivity is bounded, so every value
a sum or mean sees is clamped *before* it is added, where the data is: the granted view is
read through a subquery that adds, for each bounded column, its clamped copy under a name of
its own (``sluis_dp_0`` ...). The sums and means of the consumer's query are pointed at those
copies and keep their output names; grouped columns, counts and ``count(DISTINCT ...)`` keep
seeing the values as they are. A mean becomes a sum plus a hidden count of the values it saw
(appended after the consumer's columns, in the order of the plan's cells, at the positions the
plan gave them): ``privacy_noise`` divides their noisy releases.

Clamping keeps ``NULL`` as ``NULL`` (``least``/``greatest`` would not: they skip nulls) and,
since DuckDB orders ``NaN`` above every number, sends ``NaN`` to the upper bound.
"""

from __future__ import annotations

from sqlglot import exp

from connector.dataplane.privacy import AVG, PrivacyPlan, hidden_count_name
from connector.dataplane.privacy_bounds import Bounds

_DOUBLE = exp.DataType.build("DOUBLE")


def _number(value: float) -> exp.Expr:
    literal = exp.Literal.number(repr(abs(float(value))))
    return exp.Cast(this=exp.Neg(this=literal) if value < 0 else literal, to=_DOUBLE.copy())


def _clamped(column: str, bounds: Bounds) -> exp.Expr:
    value = exp.column(column, quoted=True)
    low, high = bounds.lower, bounds.upper
    return exp.Case(
        ifs=[
            exp.If(this=exp.LT(this=value.copy(), expression=_number(low)), true=_number(low)),
            exp.If(this=exp.GT(this=value.copy(), expression=_number(high)), true=_number(high)),
        ],
        default=exp.Cast(this=value, to=_DOUBLE.copy()),
    )


def clamp(tree: exp.Select, privacy: PrivacyPlan) -> exp.Select:
    """``tree`` (a copy) with its sums and means over clamped copies of their columns."""
    clamped = [
        (cell, cell.column, cell.bounds)
        for cell in privacy.cells
        if cell.column is not None and cell.bounds is not None
    ]
    if not clamped:
        return tree
    tree = tree.copy()
    source = tree.args.get("from_") or tree.args.get("from")
    assert isinstance(source, exp.From)
    table = source.this
    assert isinstance(table, exp.Table)  # ``disclosure.aggregate_problem`` accepted the query
    copies: list[exp.Expr] = [exp.Star()]
    projections = list(tree.expressions)
    for slot, (cell, column, bounds) in enumerate(clamped):
        name = f"sluis_dp_{slot}"
        copies.append(exp.alias_(_clamped(column, bounds), name, quoted=True))
        copy = exp.column(name, quoted=True)
        projections[cell.position] = exp.alias_(exp.Sum(this=copy), cell.name, quoted=True)
        if cell.kind == AVG:
            projections.append(
                exp.alias_(exp.Count(this=copy.copy()), hidden_count_name(cell.position), quoted=True)
            )
    inner = exp.select(*copies).from_(exp.Table(this=exp.to_identifier(table.name, quoted=True)))
    alias = exp.TableAlias(this=exp.to_identifier(table.alias_or_name, quoted=True))
    source.set("this", exp.Subquery(this=inner, alias=alias))
    tree.set("expressions", projections)
    return tree


def keyed(tree: exp.Select, privacy: PrivacyPlan) -> exp.Select:
    """``tree`` with its rows restricted to the declared keys of its grouped columns (a row whose
    key is not declared, or ``NULL``, belongs to no released group), without order or limit: the
    released groups are completed and ordered after the noise (``privacy_noise``)."""
    tree = tree.copy()
    for key in ("order", "limit", "offset"):
        tree.set(key, None)
    for group in privacy.groups:
        column = exp.column(group.column, quoted=True)
        allowed = exp.In(this=column, expressions=[_key(value) for value in group.keys])
        tree = tree.where(allowed, copy=False)
    return tree


def _key(value: object) -> exp.Expr:
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int | float):
        literal = exp.Literal.number(repr(abs(value)))
        return literal if value >= 0 else exp.Neg(this=literal)
    return exp.Literal.string(str(value))
