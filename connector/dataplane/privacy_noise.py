"""Noise on the cells of a result released under a differential-privacy budget, from OpenDP.

The scales come from ``privacy.plan``; this module only draws. Counts get discrete Laplace
noise (integers stay integers, no floating-point attack surface), sums continuous Laplace
noise from OpenDP's float-safe sampler. Before the draw, a grouped result is
completed to every combination of the declared keys (``privacy.GroupColumn``): a group the data
does not have gets a true zero, so which rows come out never depends on the data. Everything
after the draw is post-processing, which cannot weaken the guarantee: counts are floored at
zero, a count whose *noisy* value is below the disclosure threshold is shown as ``NULL``,
counts are rounded when the profile asks for rounding (rounding *before* noise would raise a
count's sensitivity to the rounding step), a mean is its noisy sum over its noisy count (at
least one), kept within the bounds, the rows are ordered as ``ORDER BY`` asked (grouped
columns only), and the hidden count columns of means are dropped.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from typing import Any

import pyarrow as pa

from connector.dataplane.errors import QueryRefused
from connector.dataplane.privacy import AVG, COUNT, NoisyCell, PrivacyPlan

_lock = threading.Lock()
_enabled = False


def _opendp() -> Any:
    """The OpenDP prelude, with the contributed measurements (Laplace) enabled once."""
    global _enabled
    import opendp.prelude as dp

    with _lock:
        if not _enabled:
            dp.enable_features("contrib")
            _enabled = True
    return dp


def _integer_noise(scale: float) -> Callable[[int], int]:
    dp = _opendp()
    measurement = dp.m.make_laplace(dp.atom_domain(T=int), dp.absolute_distance(T=int), scale=scale)
    return lambda value: int(measurement(value))


def _float_noise(scale: float) -> Callable[[float], float]:
    dp = _opendp()
    measurement = dp.m.make_laplace(
        dp.atom_domain(T=float, nan=False), dp.absolute_distance(T=float), scale=scale
    )
    return lambda value: float(measurement(value))


def _count(value: int, noise: Callable[[int], int], round_to: int | None,
           threshold: int | None) -> int | None:
    noisy = max(0, noise(value))
    if threshold is not None and noisy < threshold:
        return None
    return int(round(noisy / round_to) * round_to) if round_to else noisy


def _column(table: pa.Table, cell: NoisyCell, round_to: int | None, threshold: int | None) -> pa.Array:
    values = table.column(cell.position).to_pylist()
    if cell.kind == COUNT:
        count = _integer_noise(cell.scale)
        return pa.array([None if v is None else _count(int(v), count, round_to, threshold) for v in values],
                        pa.int64())
    total = _float_noise(cell.scale)
    if cell.kind != AVG:
        return pa.array([None if v is None else total(float(v)) for v in values], pa.float64())
    assert cell.bounds is not None
    assert cell.count_scale is not None
    assert cell.count_position is not None  # by position: a consumer may name a column alike
    counts = table.column(cell.count_position).to_pylist()
    count = _integer_noise(cell.count_scale)
    low, high = cell.bounds.lower, cell.bounds.upper
    means: list[float | None] = []
    for value, seen in zip(values, counts, strict=True):
        if value is None or seen is None:
            means.append(None)
            continue
        mean = total(float(value)) / max(1, count(int(seen)))
        means.append(min(high, max(low, mean)))
    return pa.array(means, pa.float64())


def noisy_schema(schema: pa.Schema, privacy: PrivacyPlan) -> pa.Schema:
    """The schema of what :func:`add_noise` returns for a result of ``schema``."""
    fields = [schema.field(index) for index in range(privacy.width)]
    for cell in privacy.cells:
        kind = pa.int64() if cell.kind == COUNT else pa.float64()
        fields[cell.position] = pa.field(fields[cell.position].name, kind)
    return pa.schema(fields)


def _completed(table: pa.Table, privacy: PrivacyPlan) -> pa.Table:
    """The result with one row per combination of the declared keys, in their declared order:
    the engine's row where the data has the group, true zeros where it has not."""
    if not privacy.groups:
        return table
    found: dict[tuple[object, ...], int] = {}
    keys = [table.column(group.position).to_pylist() for group in privacy.groups]
    for row, key in enumerate(zip(*keys, strict=True)):
        found[key] = row
    columns: list[list[object]] = [[] for _ in range(table.num_columns)]
    values = [table.column(index).to_pylist() for index in range(table.num_columns)]
    grouped = {group.position: index for index, group in enumerate(privacy.groups)}
    try:
        declared = [pa.array(list(group.keys), table.schema.field(group.position).type).to_pylist()
                    for group in privacy.groups]
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        raise QueryRefused("privacy_keys", "the declared public keys do not fit the types of their "
                           "columns") from None
    for combination in itertools.product(*declared):
        match = found.get(combination)
        for index in range(table.num_columns):
            if index in grouped:
                columns[index].append(combination[grouped[index]])
            else:
                columns[index].append(values[index][match] if match is not None else 0)
    arrays = [pa.array(column, table.schema.field(index).type) for index, column in enumerate(columns)]
    return pa.table(arrays, schema=table.schema)


def add_noise(table: pa.Table, privacy: PrivacyPlan, round_to: int | None = None,
              threshold: int | None = None) -> pa.Table:
    """``table`` completed to the declared groups, with every noisy cell drawn, counts below
    ``threshold`` (after the noise) suppressed, means divided, rows ordered, hidden columns dropped."""
    table = _completed(table, privacy)
    for cell in privacy.cells:
        name = table.schema.field(cell.position).name
        kind = pa.int64() if cell.kind == COUNT else pa.float64()
        noisy = _column(table, cell, round_to, threshold)
        table = table.set_column(cell.position, pa.field(name, kind), noisy)
    table = table.select(list(range(privacy.width)))
    if privacy.order:
        names = table.column_names
        table = table.sort_by([(names[position], "descending" if descending else "ascending")
                               for position, descending in privacy.order])
    return table
