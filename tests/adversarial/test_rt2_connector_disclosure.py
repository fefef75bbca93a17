"""A consumer under an aggregate-only agreement reads a dominant contributor through the spread.

The dominance rule suppresses a sum or mean whose largest contributions make up nearly all of
it (one income of a thousand million among thousands). The spread of the same group gives the
same value away: with one dominant value ``x`` among ``n`` small ones, ``variance`` is about
``x**2 / n`` and ``stddev`` about ``x / sqrt(n)`` - as is ``covar_pop(income, income)``. Every
statistic that shows magnitudes must fall under the rule, not only the sum and the mean.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from tests.dataplane.conftest import ASSET_ID, DataSpace, did_host, make_space, research_permission, space

__all__ = ["did_host", "make_space", "space"]  # the data plane's fixtures, used here as they are

AGGREGATE_ONLY = {"leftOperand": "sluis:aggregateOnly", "operator": "eq", "rightOperand": True}
DOMINANT = 1_000_000_000


def test_a_dominant_value_cannot_be_read_through_its_groups_spread(space: DataSpace) -> None:
    path = space.data_path.parent / "incomes.parquet"
    region = ["A"] * 40 + ["B"] * 30
    income = [1_000 + i for i in range(len(region))]
    income[40] = DOMINANT  # one person in B
    pq.write_table(pa.table({"region": region, "income": income}), path)
    space.state.put_asset(ASSET_ID, "parquet", path)
    policy = research_permission(AGGREGATE_ONLY, action="aggregate")
    reader = space.reader(space.transfer(space.agreement(policy)))
    result = reader.query(
        "SELECT region, count(*) AS n, sum(income) AS s, stddev(income) AS sd, stddev_pop(income) AS sdp,"
        " variance(income) AS v, var_pop(income) AS vp, covar_pop(income, income) AS cp,"
        " covar_samp(income, income) AS cs FROM data GROUP BY region ORDER BY region"
    ).to_pydict()
    assert result["region"] == ["A", "B"]
    assert result["n"] == [40, 30]
    leaked = {name: values[1] for name, values in result.items()
              if name not in ("region", "n") and values[1] is not None}
    assert not leaked, f"group B's dominant value shows through {sorted(leaked)}"
    assert all(values[0] is not None for name, values in result.items()), "A is not dominated"
