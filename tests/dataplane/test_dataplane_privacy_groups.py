"""Differential-privacy mode, grouped reads: the released groups are the provider's declared
public keys, never the data's own key set, and no cell is left out on its true value.

The attacker holds a budget and wants to learn whether a person with a rare value exists: a
group of one. Under the threshold rule alone the group's row appears at ``k`` rows and not at
``k - 1``, and a cell is ``NULL`` exactly when its true count is small - facts about the data
released without noise. Here every read returns the same rows whatever the data holds.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from connector.dataplane import make_proof
from connector.dataplane.errors import AccessDenied
from connector.dataplane.privacy import COUNT, GroupColumn, NoisyCell, PrivacyPlan
from connector.dataplane.privacy_bounds import declared_keys
from connector.dataplane.privacy_noise import add_noise
from policies.parse import parse_policy

from .conftest import ASSET_ID, DataSpace, agreement_policy, research_permission

BUDGET = {"leftOperand": "sluis:epsilon", "operator": "lteq", "rightOperand": 1.0}
REGIONS = {"leftOperand": "https://w3id.org/sluis/keys/region", "operator": "isAnyOf",
           "rightOperand": ["GR", "NH", "UT", "ZH", "XX"]}
AGE_BOUNDS = (
    {"leftOperand": "bounds:age", "operator": "gteq", "rightOperand": 0},
    {"leftOperand": "bounds:age", "operator": "lteq", "rightOperand": 100},
)


def _post(space: DataSpace, endpoint: str, token: str, sql: str) -> httpx.Response:
    url = endpoint + "/query"
    proof = make_proof(space.consumers["alice"].key, "POST", url, token)
    return httpx.post(url, json={"sql": sql}, headers={"Authorization": f"DPoP {token}", "DPoP": proof})


def _access(space: DataSpace, *constraints: dict[str, Any]) -> tuple[str, str]:
    agreement = space.agreement(research_permission(BUDGET, *constraints, action="aggregate"))
    address = space.plane.issue_access(space.transfer(agreement))
    return address.endpoint, address.token


def _table(response: httpx.Response) -> pa.Table:
    assert response.status_code == 200, response.text
    return pa.ipc.open_stream(response.content).read_all()


def _with_one_rare_patient(space: DataSpace, present: bool) -> None:
    """The patients, plus (or not) one patient in region XX: the fact the attacker is after."""
    table = pq.read_table(space.data_path)
    if present:
        extra = pa.table({"patient_id": [10_000], "age": [99], "region": ["XX"], "diagnosis": ["E11"],
                          "ssn": ["SSN-rare"]}).cast(table.schema)
        table = pa.concat_tables([table, extra])
    path = space.data_path.parent / f"patients-{present}.parquet"
    pq.write_table(table, path)
    space.state.put_asset(ASSET_ID, "parquet", path)


@pytest.mark.parametrize("sql", [
    "SELECT region, count(*) AS n FROM data GROUP BY region",
    "SELECT diagnosis, count(*) AS n FROM data GROUP BY diagnosis",
    "SELECT region, diagnosis, count(*) AS n FROM data GROUP BY region, diagnosis",
])
def test_a_grouped_read_without_declared_keys_is_refused(space: DataSpace, sql: str) -> None:
    endpoint, token = _access(space, REGIONS)
    response = _post(space, endpoint, token, sql)
    if "diagnosis" in sql:
        assert (response.status_code, response.json()["code"]) == (403, "privacy_keys")
        assert "diagnosis" in response.json()["detail"]
    else:
        assert response.status_code == 200


def test_the_released_groups_do_not_depend_on_the_data(space: DataSpace) -> None:
    endpoint, token = _access(space, REGIONS)
    released = {}
    for present in (False, True):
        _with_one_rare_patient(space, present)
        sql = "SELECT region, count(*) AS n FROM data GROUP BY region"
        table = _table(_post(space, endpoint, token, sql))
        released[present] = table.column("region").to_pylist()
    # the declared keys, in their declared order, with and without the rare patient
    assert released[False] == released[True] == ["GR", "NH", "UT", "ZH", "XX"]


def test_no_cell_is_suppressed_on_its_true_value(space: DataSpace) -> None:
    """A small group's count is noised and then judged: ``NULL`` follows the noisy value, so over
    many reads a group of 1 is sometimes shown and a group of 0 sometimes suppressed alike."""
    plan = PrivacyPlan(1.0, (NoisyCell(1, COUNT, "n", 1.0),), 2, (GroupColumn(0, "region", ("XX", "YY")),))
    true = pa.table({"region": ["XX"], "n": pa.array([1], pa.int64())})  # YY has no rows at all
    shown: dict[str, set[bool]] = {"XX": set(), "YY": set()}
    for _ in range(300):
        noisy = add_noise(true, plan, threshold=2)
        for region, n in zip(noisy.column("region").to_pylist(), noisy.column("n").to_pylist(), strict=True):
            shown[region].add(n is None)
    assert shown == {"XX": {True, False}, "YY": {True, False}}


def test_grouped_sums_and_means_are_noisy_per_group_and_cost_one_read(space: DataSpace) -> None:
    endpoint, token = _access(space, REGIONS, *AGE_BOUNDS)
    response = _post(space, endpoint, token, "SELECT region, count(*) AS n, sum(age) AS s, avg(age) AS a "
                     "FROM data GROUP BY region ORDER BY region DESC")
    table = _table(response)
    assert table.column("region").to_pylist() == ["ZH", "XX", "UT", "NH", "GR"]
    assert response.headers["Sluis-Epsilon-Spent"] == "0.1"  # one read's epsilon, for five groups
    scales = json.loads(response.headers["Sluis-Noise-Scales"])
    assert scales == {"n": pytest.approx(30.0), "s": pytest.approx(3000.0), "a": pytest.approx(6000.0)}
    means = table.column("a").to_pylist()
    assert all(mean is None or 0 <= mean <= 100 for mean in means)


@pytest.mark.parametrize("sql", [
    "SELECT region, count(*) AS n FROM data GROUP BY region LIMIT 2",
    "SELECT region, count(*) AS n FROM data GROUP BY region ORDER BY n DESC",
    "SELECT count(*) AS n FROM data GROUP BY region",
])
def test_shapes_that_would_release_true_values_are_refused(space: DataSpace, sql: str) -> None:
    endpoint, token = _access(space, REGIONS)
    response = _post(space, endpoint, token, sql)
    assert response.status_code == 403, response.text
    assert response.json()["code"] in ("differential_privacy", "aggregate_only")


def test_a_whole_data_count_over_no_rows_is_still_released_noisy(space: DataSpace) -> None:
    endpoint, token = _access(space, REGIONS)
    table = _table(_post(space, endpoint, token, "SELECT count(*) AS n FROM data WHERE age > 1000"))
    assert table.num_rows == 1  # the row is there whatever the true count; its value is noise


def test_declared_keys_fail_closed() -> None:
    def keys(*constraints: dict[str, Any]) -> dict[str, tuple[object, ...]]:
        policy = agreement_policy("urn:uuid:1", "did:web:p", "did:web:c",
                                  research_permission(*constraints, action="aggregate"))
        return dict(declared_keys(parse_policy(json.dumps(policy))))

    assert keys(REGIONS) == {"region": ("GR", "NH", "UT", "ZH", "XX")}
    narrower = {**REGIONS, "rightOperand": ["NH", "XX", "QQ"]}
    assert keys(REGIONS, narrower) == {"region": ("NH", "XX")}
    for bad in ({**REGIONS, "operator": "gteq", "rightOperand": "A"},
                {**REGIONS, "rightOperand": [f"k{i}" for i in range(1001)]}):
        with pytest.raises(AccessDenied, match="public keys"):
            keys(bad)
