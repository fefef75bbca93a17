"""Aggregate-only agreements under statistical disclosure control, tried as an attacker would."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from connector.dataplane import DataPlaneLimits
from connector.jobs import JobError
from connector.jobs.data import TransferReader

from .conftest import ASSET_ID, DataSpace, research_permission

# Group sizes: A 62, B 30, C 6, D 4. B holds one dominant income; ``rare`` has 3 values in A.
SIZES = {"A": 62, "B": 30, "C": 6, "D": 4}
AGGREGATE_ONLY = {"leftOperand": "sluis:aggregateOnly", "operator": "eq", "rightOperand": True}


def _rows() -> dict[str, list[Any]]:
    region: list[str] = [name for name, size in SIZES.items() for _ in range(size)]
    income = [1_000 + i for i in range(len(region))]
    income[region.index("B")] = 1_000_000_000
    rare: list[int | None] = [None] * len(region)
    for i in range(3):
        rare[i] = 50 + i
    return {"id": list(range(len(region))), "region": region, "income": income, "rare": rare,
            "name": [f"PERSON-{i}" for i in range(len(region))]}


def _reader(space: DataSpace, *constraints: dict[str, Any]) -> TransferReader:
    path = space.data_path.parent / "survey.parquet"
    pq.write_table(pa.table(_rows()), path)
    space.state.put_asset(ASSET_ID, "parquet", path)
    policy = research_permission(AGGREGATE_ONLY, *constraints, action="aggregate")
    return space.reader(space.transfer(space.agreement(policy)))


def _profile(name: str) -> dict[str, Any]:
    return {"leftOperand": "sluis:disclosureProfile", "operator": "eq", "rightOperand": name}


COUNTS = "SELECT region, count(*) AS n FROM data GROUP BY region ORDER BY region"


def test_default_profile_leaves_out_groups_below_ten(space: DataSpace) -> None:
    result = _reader(space).query(COUNTS).to_pydict()
    assert result == {"region": ["A", "B"], "n": [62, 30]}


def test_opensafely_profile_suppresses_seven_or_fewer_and_rounds_to_five(space: DataSpace) -> None:
    result = _reader(space, _profile("opensafely")).query(COUNTS).to_pydict()
    assert result == {"region": ["A", "B"], "n": [60, 30]}


def test_datashield_profile_threshold_is_three(space: DataSpace) -> None:
    result = _reader(space, _profile("datashield")).query(COUNTS).to_pydict()
    assert result == {"region": ["A", "B", "C", "D"], "n": [62, 30, 6, 4]}


def test_group_size_in_the_agreement_raises_the_threshold(space: DataSpace) -> None:
    size = {"leftOperand": "sluis:groupSize", "operator": "gteq", "rightOperand": 40}
    assert _reader(space, size).query(COUNTS).to_pydict() == {"region": ["A"], "n": [62]}


def test_unknown_profile_is_refused(space: DataSpace) -> None:
    with pytest.raises(JobError) as refused:
        _reader(space, _profile("lenient")).query(COUNTS)
    assert refused.value.status == 403


def test_cells_see_their_own_rows_and_dominated_sums_are_suppressed(space: DataSpace) -> None:
    reader = _reader(space)
    result = reader.query(
        "SELECT region, count(*) AS n, sum(rare) AS r, sum(income) AS s, avg(income) AS m"
        " FROM data GROUP BY region ORDER BY region"
    ).to_pydict()
    assert result["n"] == [62, 30]
    assert result["r"] == [None, None]  # only 3 rows of A have a value: below the threshold
    assert result["s"][0] == sum(1_000 + i for i in range(62))
    assert result["s"][1] is None  # one income dominates B
    assert result["m"][1] is None


def test_a_single_row_cannot_be_isolated_by_where(space: DataSpace) -> None:
    reader = _reader(space)
    assert reader.query("SELECT count(*) AS n, avg(income) AS m FROM data WHERE id = 7").num_rows == 0


@pytest.mark.parametrize("sql", [
    "SELECT region, max(income, 2) AS x FROM data GROUP BY region",
    "SELECT region, min(income) AS x FROM data GROUP BY region",
    "SELECT region, max(income) AS x FROM data GROUP BY region",
    "SELECT region, arg_min(name, income) AS x FROM data GROUP BY region",
    "SELECT region, arg_max(name, income, 2) AS x FROM data GROUP BY region",
    "SELECT region, list(name) AS x FROM data GROUP BY region",
    "SELECT region, string_agg(name, ',') AS x FROM data GROUP BY region",
    "SELECT region, array_agg(income) AS x FROM data GROUP BY region",
    "SELECT region, first(name) AS x FROM data GROUP BY region",
    "SELECT region, any_value(name) AS x FROM data GROUP BY region",
    "SELECT region, mode(name) AS x FROM data GROUP BY region",
    "SELECT region, quantile_disc(income, 0.99) AS x FROM data GROUP BY region",
    "SELECT region, sum(income) FILTER (WHERE id = 3) AS x FROM data GROUP BY region",
    "SELECT region, sum(CASE WHEN id = 3 THEN income END) AS x FROM data GROUP BY region",
    "SELECT region, sum(income * CAST(id = 3 AS INTEGER)) AS x FROM data GROUP BY region",
    "SELECT region, count(DISTINCT name) FILTER (WHERE id < 2) AS x FROM data GROUP BY region",
    "SELECT region, sum(DISTINCT income) AS x FROM data GROUP BY region",
    "SELECT region, count(*) AS n FROM data GROUP BY ROLLUP (region)",
    "SELECT region, count(*) AS n FROM data GROUP BY CUBE (region)",
    "SELECT count(*) AS n FROM data GROUP BY ALL",
    "SELECT region, count(*) AS n FROM data GROUP BY region HAVING count(*) > 1",
    "SELECT region, count(*) AS n FROM data GROUP BY region ORDER BY sum(income)",
    "SELECT name, count(*) AS n FROM (SELECT * FROM data) AS t GROUP BY name",
    "SELECT region, count(*) OVER () AS n FROM data",
    "SELECT DISTINCT region, count(*) AS n FROM data GROUP BY region",
    "SELECT region, count(*) + 0 AS n FROM data GROUP BY region",
    "SELECT * FROM data",
])
def test_disclosive_forms_are_refused(space: DataSpace, sql: str) -> None:
    with pytest.raises(JobError) as refused:
        _reader(space, _profile("datashield")).query(sql)
    assert refused.value.status == 403, refused.value
    assert "PERSON-" not in str(refused.value.problem)


def test_aggregate_only_without_a_read_limit_has_a_query_budget(
    make_space: Callable[..., DataSpace],
) -> None:
    space = make_space(limits=DataPlaneLimits(aggregate_query_budget=3))
    reader = _reader(space)
    for _ in range(2):
        reader.query(COUNTS)
    with pytest.raises(JobError):
        reader.query("SELECT count(*) AS n FROM data WHERE CAST(region AS INTEGER) = 1")
    with pytest.raises(JobError) as spent:  # the failed query counted too
        reader.query(COUNTS)
    assert (spent.value.status, spent.value.code) == (403, "read_limit")
