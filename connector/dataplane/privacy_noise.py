"""Noise on the cells of a result released under a differential-privacy budget, from OpenDP.

The scales come from ``privacy.plan``; this module only draws. Counts get discrete Laplace
noise (integers stay integers, no floating-point attack surface), sums continuous Laplace
noise from OpenDP's float-safe sampler. Everything after the draw is post-processing, which
cannot weaken the guarantee: counts are floored at zero and rounded when the disclosure profile
asks for rounding (rounding *before* noise would raise a count's sensitivity to the rounding
step), a mean is its noisy sum over its noisy count (at least one), kept within the bounds,
and the hidden count columns of means are dropped. Suppressed cells (``NULL``) stay ``NULL``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pyarrow as pa

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


def _count(value: int, noise: Callable[[int], int], round_to: int | None) -> int:
    noisy = max(0, noise(value))
    return int(round(noisy / round_to) * round_to) if round_to else noisy


def _column(table: pa.Table, cell: NoisyCell, round_to: int | None) -> pa.Array:
    values = table.column(cell.position).to_pylist()
    if cell.kind == COUNT:
        count = _integer_noise(cell.scale)
        return pa.array([None if v is None else _count(int(v), count, round_to) for v in values], pa.int64())
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


def add_noise(table: pa.Table, privacy: PrivacyPlan, round_to: int | None = None) -> pa.Table:
    """``table`` with every noisy cell drawn, means divided, and hidden columns dropped."""
    for cell in privacy.cells:
        name = table.schema.field(cell.position).name
        kind = pa.int64() if cell.kind == COUNT else pa.float64()
        table = table.set_column(cell.position, pa.field(name, kind), _column(table, cell, round_to))
    return table.select(list(range(privacy.width)))
