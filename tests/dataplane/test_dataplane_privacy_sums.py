"""Differential-privacy mode, sums and means: declared bounds, clamping, calibrated noise."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from connector.dataplane import DataPlaneLimits, make_proof
from connector.dataplane.privacy import AVG, COUNT, SUM, NoisyCell, PrivacyPlan
from connector.dataplane.privacy_bounds import Bounds, declared_bounds
from connector.dataplane.privacy_noise import add_noise
from policies.parse import parse_policy

from .conftest import ASSET_ID, PATIENT_ROWS, DataSpace, agreement_policy, research_permission

BUDGET = {"leftOperand": "sluis:epsilon", "operator": "lteq", "rightOperand": 0.5}
AGE_BOUNDS = (
    {"leftOperand": "https://w3id.org/sluis/bounds/age", "operator": "gteq", "rightOperand": 0},
    {"leftOperand": "bounds:age", "operator": "lteq", "rightOperand": 100},
)
REGIONS = {"leftOperand": "keys:region", "operator": "isAnyOf", "rightOperand": ["GR", "NH", "UT", "ZH"]}
AGES = [20 + (i * 7) % 60 for i in range(PATIENT_ROWS)]  # conftest's patients


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


def _last_completed(space: DataSpace) -> dict[str, Any]:
    entries = [entry.body for entry in space.plane.audit.entries()]
    return next(body for body in reversed(entries) if body.get("status") == "completed")


def test_sums_and_means_need_declared_bounds(space: DataSpace) -> None:
    endpoint, token = _access(space, *AGE_BOUNDS)
    for sql in ("SELECT sum(patient_id) AS s FROM data", "SELECT avg(patient_id) AS a FROM data",
                "SELECT sum(age) AS s, sum(patient_id) AS t FROM data"):
        refused = _post(space, endpoint, token, sql)
        assert (refused.status_code, refused.json()["code"]) == (403, "privacy_bounds"), sql
        assert "patient_id" in refused.json()["detail"]
    badly_declared = [
        (AGE_BOUNDS[0],),  # a lower bound only
        ({**AGE_BOUNDS[0], "operator": "gt"}, AGE_BOUNDS[1]),  # an operator the bounds do not know
        ({**AGE_BOUNDS[0], "rightOperand": 1e300}, AGE_BOUNDS[1]),  # no usable sensitivity
        ({**AGE_BOUNDS[0], "rightOperand": 200}, AGE_BOUNDS[1]),  # lower above upper
        ({"or": list(AGE_BOUNDS)},),  # may not hold
    ]
    for constraints in badly_declared:
        endpoint, token = _access(space, *constraints)
        refused = _post(space, endpoint, token, "SELECT sum(age) AS s FROM data")
        assert refused.status_code == 403, constraints
        assert refused.json()["code"] in ("privacy_bounds", "policy_denied"), refused.json()


def test_unsafe_forms_are_refused_without_spending_the_budget(space: DataSpace) -> None:
    endpoint, token = _access(space, *AGE_BOUNDS)
    for sql in (
        "SELECT sum(age) AS s FROM data ORDER BY s LIMIT 1",
        "SELECT count(*) AS n, avg(age) AS a FROM data ORDER BY a DESC",
        "SELECT region, sum(age) AS s FROM data GROUP BY region",
        "SELECT sum(CASE WHEN region = 'NH' THEN age ELSE 0 END) AS s FROM data",
        "SELECT sum(age) FILTER (WHERE region = 'NH') AS s FROM data",
        "SELECT sum(age + 0) AS s FROM data",
        "SELECT sum(DISTINCT age) AS s FROM data",
        "SELECT min(age) AS m FROM data",
        "SELECT max(age) AS m FROM data",
        "SELECT median(age) AS m FROM data",
        "SELECT stddev(age) AS m FROM data",
    ):
        refused = _post(space, endpoint, token, sql)
        assert refused.status_code == 403, (sql, refused.text)
        codes = ("differential_privacy", "privacy_keys", "policy_denied")
        assert refused.json()["code"] in codes, refused.text
    allowed = _post(space, endpoint, token, "SELECT sum(age) AS s FROM data")
    _table(allowed)
    assert allowed.headers["Sluis-Epsilon-Spent"] == "0.1"  # the refusals spent nothing


def test_an_outlier_moves_the_sum_by_at_most_the_bound(make_space: Callable[..., DataSpace]) -> None:
    space = make_space(limits=DataPlaneLimits(epsilon_per_read=0.5))
    folder = space.data_path.parent.parent / "outlier"
    folder.mkdir()
    ages = [*AGES, 10**12, None]
    pq.write_table(pa.table({"age": pa.array(ages, pa.int64()), "region": ["NH"] * len(ages)}),
                   folder / "patients.parquet")
    space.state.put_asset(ASSET_ID, "parquet", folder / "patients.parquet")
    endpoint, token = _access(space, *AGE_BOUNDS)
    response = _post(space, endpoint, token, "SELECT sum(age) AS s, avg(age) AS a FROM data")
    row = _table(response).to_pylist()[0]
    scales = json.loads(response.headers["Sluis-Noise-Scales"])
    assert scales == pytest.approx({"s": 400, "a": 800})  # epsilon 0.5 over two cells, bound 100
    clamped = sum(AGES) + 100
    # noise beyond 40 scales has probability e^-40; the unclamped outlier would add 10^12
    assert abs(row["s"] - clamped) < 40 * scales["s"]
    # the mean's noise is about 800 / 1001 per unit of its draw; unclamped it would be ~10^9
    assert abs(row["a"] - clamped / (PATIENT_ROWS + 1)) < 15


def test_a_spent_budget_refuses_before_the_query_runs(make_space: Callable[..., DataSpace]) -> None:
    space = make_space(limits=DataPlaneLimits(epsilon_per_read=0.3))
    endpoint, token = _access(space, *AGE_BOUNDS)
    # a column named like the mean's hidden count does not confuse the two
    first = _table(_post(space, endpoint, token, "SELECT avg(age) AS a, count(*) AS sluis_dp_n0 FROM data"))
    assert first.schema.names == ["a", "sluis_dp_n0"]
    assert 0 <= first.column("a")[0].as_py() <= 100
    refused = _post(space, endpoint, token, "SELECT avg(age) AS a FROM data")
    assert (refused.status_code, refused.json()["code"]) == (403, "privacy_budget")
    denied = [e.body for e in space.plane.audit.entries() if e.body.get("code") == "privacy_budget"]
    assert [entry["read_number"] for entry in denied] == [None]  # not counted: it never reached the engine


def test_noise_is_calibrated_to_bounds_and_split_over_the_cells(space: DataSpace) -> None:
    endpoint, token = _access(space, *AGE_BOUNDS)
    response = _post(space, endpoint, token, "SELECT count(*) AS n, sum(age) AS s, avg(age) AS a FROM data")
    table = _table(response)
    # epsilon 0.1 per read over three cells; sensitivity of a sum over [0, 100] is 100; a mean
    # splits its third in halves between its sum and its count
    scales = json.loads(response.headers["Sluis-Noise-Scales"])
    assert scales == pytest.approx({"n": 30, "s": 3000, "a": 6000})
    assert table.schema.names == ["n", "s", "a"]  # the mean's hidden count is not released
    row = table.to_pylist()[0]
    assert row["s"] != sum(AGES)  # a continuous draw equals zero with probability zero
    entry = _last_completed(space)
    assert entry["noise_scales"] == pytest.approx({"n": 30, "s": 3000, "a": 6000})
    assert "sluis_dp_0" in entry["query"]  # what ran summed the clamped copy


def test_the_spread_of_the_noise_matches_its_scale() -> None:
    """Draws straight from the production sampler (OpenDP, not seedable): the mean absolute
    deviation of Laplace noise is its scale; over 2,000 draws its estimate lies within 4 % of
    it (one standard error is 2.2 %), so the 20 % tolerance fails with probability below 1e-12."""
    rows = 2_000
    plan = PrivacyPlan(1.0, (NoisyCell(0, SUM, "s", 50.0, "x", Bounds(0, 1)),
                             NoisyCell(1, COUNT, "n", 20.0)), 2)
    table = pa.table({"s": pa.array([1000.0] * rows), "n": pa.array([500] * rows, pa.int64())})
    noisy = add_noise(table, plan)
    for name, true, scale in (("s", 1000.0, 50.0), ("n", 500, 20.0)):
        spread = sum(abs(v - true) for v in noisy.column(name).to_pylist()) / rows
        assert spread == pytest.approx(scale, rel=0.2), name


def test_a_mean_is_kept_within_its_bounds_and_its_hidden_count_dropped() -> None:
    plan = PrivacyPlan(1.0, (NoisyCell(0, AVG, "a", 1e6, "x", Bounds(10, 20), 1.0, 1),), 1)
    table = pa.table({"a": [150.0, None], "sluis_dp_n0": pa.array([10, 0], pa.int64())})
    noisy = add_noise(table, plan)
    assert noisy.schema.names == ["a"]
    low, suppressed = noisy.column("a").to_pylist()
    assert low is not None
    assert 10 <= low <= 20
    assert suppressed is None


def test_counts_are_rounded_after_the_noise(space: DataSpace) -> None:
    """Rounding before noise would raise a count's sensitivity to the rounding step."""
    profile = {"leftOperand": "sluis:disclosureProfile", "operator": "eq", "rightOperand": "opensafely"}
    endpoint, token = _access(space, profile, REGIONS)
    response = _post(space, endpoint, token, "SELECT region, count(*) AS n FROM data GROUP BY region")
    counts = _table(response).column("n").to_pylist()
    assert all(n % 5 == 0 for n in counts)
    assert json.loads(response.headers["Sluis-Noise-Scales"]) == {"n": 10}
    entry = _last_completed(space)
    assert "round" not in entry["query"].lower()


def test_bounds_stated_by_several_permissions_intersect() -> None:
    def permission(low: float, high: float) -> dict[str, Any]:
        return research_permission({"leftOperand": "bounds:age", "operator": "gteq", "rightOperand": low},
                                   {"leftOperand": "bounds:age", "operator": "lteq", "rightOperand": high},
                                   action="aggregate")

    policy = agreement_policy("urn:uuid:1", "did:web:p", "did:web:c", permission(0, 120))
    policy["permission"].append({"target": ASSET_ID, **permission(-10, 90)})
    declared = declared_bounds(parse_policy(json.dumps(policy)))
    assert declared == {"age": Bounds(0, 90)}
    assert declared["age"].sensitivity == 90
