"""A consumer with a valid agreement cannot grow the signed audit chain without bound.

Each refused query used to become a signed entry. Past a per-transfer rate, refusals are still
refused but counted instead of appended, and the next appended refusal says how many were left
out, so the chain keeps the evidence that the consumer kept trying.
"""

from __future__ import annotations

import pytest

from connector.dataplane.denial_budget import DenialBudget
from connector.jobs import JobError

from .conftest import DataSpace, research_permission

FORBIDDEN = "SELECT * FROM read_csv('/etc/passwd')"


def _refusals(space: DataSpace, transfer_id: str) -> list[dict[str, object]]:
    return [
        entry.body for entry in space.plane.audit.entries()
        if entry.body.get("transfer_id") == transfer_id and entry.body.get("decision") == "deny"
    ]


def test_refusals_past_the_rate_are_counted_not_appended(space: DataSpace) -> None:
    space.plane.denial_budget = DenialBudget(burst=3, per_second=0.0)
    transfer = space.transfer(space.agreement(research_permission()))
    reader = space.reader(transfer)
    for _ in range(10):
        with pytest.raises(JobError):
            reader.query(FORBIDDEN)

    assert len(_refusals(space, transfer.id)) == 3
    assert space.plane.denial_budget.left_out_total == 7
    assert reader.query("SELECT count(*) AS n FROM data").num_rows == 1  # permitted reads unaffected


def test_the_next_audited_refusal_says_how_many_were_left_out() -> None:
    now = [0.0]
    budget = DenialBudget(burst=2, per_second=1.0, clock=lambda: now[0])
    assert [budget.take("t")[0] for _ in range(5)] == [True, True, False, False, False]
    now[0] += 1.0
    assert budget.take("t") == (True, 3)
    assert budget.take("other") == (True, 0)  # buckets are per transfer


def test_the_bucket_never_holds_more_than_its_burst() -> None:
    now = [0.0]
    budget = DenialBudget(burst=2, per_second=1.0, clock=lambda: now[0])
    now[0] += 3600.0
    assert [budget.take("t")[0] for _ in range(3)] == [True, True, False]
