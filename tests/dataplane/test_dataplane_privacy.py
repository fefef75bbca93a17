"""Differential-privacy mode: noisy counts, an epsilon budget spent by every read, persisted."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pyarrow as pa
import pytest

from connector.dataplane import DataPlaneLimits, make_proof
from connector.jobs import JobError

from .conftest import DataSpace, research_permission

BUDGET = {"leftOperand": "sluis:epsilon", "operator": "lteq", "rightOperand": 0.3}
# The public key set of the grouped column: a grouped read under a budget needs one.
REGIONS = {"leftOperand": "keys:region", "operator": "isAnyOf", "rightOperand": ["GR", "NH", "UT", "ZH"]}
COUNTS = "SELECT region, count(*) AS n FROM data GROUP BY region ORDER BY region"


def _post(space: DataSpace, endpoint: str, token: str, sql: str) -> httpx.Response:
    url = endpoint + "/query"
    proof = make_proof(space.consumers["alice"].key, "POST", url, token)
    return httpx.post(url, json={"sql": sql}, headers={"Authorization": f"DPoP {token}", "DPoP": proof})


def test_counts_are_noisy_and_the_budget_is_spent_and_shown(space: DataSpace) -> None:
    transfer = space.transfer(space.agreement(research_permission(BUDGET, REGIONS, action="aggregate")))
    address = space.plane.issue_access(transfer)
    seen: list[int] = []
    for spent in ("0.1", "0.2", "0.3"):
        response = _post(space, address.endpoint, address.token, COUNTS)
        assert response.status_code == 200, response.text
        assert response.headers["Sluis-Epsilon-Spent"] == spent
        assert response.headers["Sluis-Epsilon-Budget"] == "0.3"
        table = pa.ipc.open_stream(response.content).read_all()
        assert table.column("region").to_pylist() == ["GR", "NH", "UT", "ZH"]
        seen.extend(table.column("n").to_pylist())
    assert all(isinstance(n, int) and n >= 0 for n in seen)
    assert any(n != 250 for n in seen)  # twelve draws of discrete Laplace noise with scale 10
    refused = _post(space, address.endpoint, address.token, COUNTS)
    assert (refused.status_code, refused.json()["code"]) == (403, "privacy_budget")
    entries = [entry.body for entry in space.plane.audit.entries() if entry.body.get("epsilon")]
    completed = [entry["epsilon_spent"] for entry in entries if entry.get("status") == "completed"]
    assert completed == [0.1, 0.2, 0.3]


@pytest.mark.parametrize("sql", [
    "SELECT region, sum(age) AS s FROM data GROUP BY region",  # no bounds for age
    "SELECT diagnosis, count(*) AS n FROM data GROUP BY diagnosis",  # no public keys for diagnosis
    "SELECT * FROM data",
])
def test_grouped_sums_and_rows_are_refused_under_a_budget(space: DataSpace, sql: str) -> None:
    agreement = space.agreement(research_permission(BUDGET, REGIONS, action="aggregate"))
    reader = space.reader(space.transfer(agreement))
    with pytest.raises(JobError) as refused:
        reader.query(sql)
    assert refused.value.status == 403


def test_the_budget_survives_a_restart(make_space: Callable[..., DataSpace], tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    first = make_space(storage_url=storage, limits=DataPlaneLimits(epsilon_per_read=0.2))
    agreement = first.agreement(research_permission(BUDGET, REGIONS, action="aggregate"))
    first.reader(first.transfer(agreement)).query(COUNTS)
    first.plane.close()
    second = make_space(storage_url=storage, limits=DataPlaneLimits(epsilon_per_read=0.2))
    with pytest.raises(JobError) as spent:
        second.reader(second.transfer(agreement)).query(COUNTS)
    assert spent.value.code == "privacy_budget"
