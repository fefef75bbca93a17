"""An AI team under a differential-privacy budget orders the noisy counts by their true values.

The engine orders (and cuts with ``LIMIT``) the result before the noise is added, so an
``ORDER BY`` on a count column releases the exact ranking of the true counts - which group is
largest, whatever the noise says - outside the budget.
"""

from __future__ import annotations

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from connector.dataplane import make_proof
from tests.dataplane.conftest import ASSET_ID, DataSpace, did_host, make_space, research_permission, space

__all__ = ["did_host", "make_space", "space"]  # the data plane's fixtures, used here as they are

BUDGET = {"leftOperand": "sluis:epsilon", "operator": "lteq", "rightOperand": 5}
# Grouped reads under a budget release the provider's declared public keys.
REGIONS = {"leftOperand": "keys:region", "operator": "isAnyOf", "rightOperand": ["NH", "ZH", "UT"]}


def _post(space: DataSpace, endpoint: str, token: str, sql: str) -> httpx.Response:
    url = endpoint + "/query"
    proof = make_proof(space.consumers["alice"].key, "POST", url, token)
    headers = {"Authorization": f"DPoP {token}", "DPoP": proof}
    return httpx.post(url, json={"sql": sql}, headers=headers, timeout=60)


@pytest.mark.parametrize("sql", [
    "SELECT region, count(*) AS n FROM data GROUP BY region ORDER BY n DESC LIMIT 1",
    "SELECT region, count(*) AS n FROM data GROUP BY region ORDER BY n",
    "SELECT count(*) AS n, region FROM data GROUP BY region ORDER BY region, n",
    "SELECT region, count(age) AS n FROM data GROUP BY region ORDER BY N DESC",
])
def test_counts_cannot_order_the_result_before_the_noise(space: DataSpace, sql: str) -> None:
    folder = space.data_path.parent
    # groups differing by one or two rows: noise hides the difference, an exact ordering does not
    regions = ["NH"] * 102 + ["ZH"] * 101 + ["UT"] * 100
    pq.write_table(pa.table({"region": regions, "age": list(range(len(regions)))}), folder / "small.parquet")
    space.state.put_asset(ASSET_ID, "parquet", folder / "small.parquet")
    address = space.plane.issue_access(
        space.transfer(space.agreement(research_permission(BUDGET, REGIONS, action="aggregate")))
    )
    response = _post(space, address.endpoint, address.token, sql)
    assert response.status_code == 403, response.text[:300]
    assert response.json()["code"] == "differential_privacy"
    by_group = _post(space, address.endpoint, address.token,
                     "SELECT region, count(*) AS n FROM data GROUP BY region ORDER BY region")
    assert by_group.status_code == 200, by_group.text
    assert by_group.headers["Sluis-Epsilon-Spent"] == "0.1"  # the refusal spent nothing
