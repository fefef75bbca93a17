"""A read the watchdog stops is a read: it ran on the engine, so it counts against the
agreement's reads and is always in the audit log as a permitted read that failed - never left
out as a refusal past the rate at which refusals are appended."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from connector.dataplane import DataPlaneLimits
from connector.dataplane.denial_budget import DenialBudget
from connector.dataplane.sandbox import SandboxLimits
from connector.jobs import JobError

from .conftest import DataSpace, research_permission

ENDLESS = "SELECT sum(a.age * b.age * c.age * d.age) AS s FROM data AS a, data AS b, data AS c, data AS d"


def test_a_timed_out_read_is_counted_and_audited_like_any_read(make_space: Callable[..., DataSpace]) -> None:
    space = make_space(limits=DataPlaneLimits(sandbox=SandboxLimits(timeout_seconds=0.3)))
    space.plane.denial_budget = DenialBudget(burst=0, per_second=0.0)  # no refusal is appended
    transfer = space.transfer(space.agreement(research_permission()))
    reader = space.reader(transfer)
    with pytest.raises(JobError) as stopped:
        reader.query(ENDLESS)
    assert "read_timeout" in str(stopped.value) or "too long" in str(stopped.value)
    entries = [entry.body for entry in space.plane.audit.entries()
               if entry.body.get("transfer_id") == transfer.id and entry.body.get("kind") == "read"]
    assert len(entries) == 1
    assert entries[0]["read_number"] == 1
    assert entries[0]["decision"] != "deny"
    assert entries[0]["status"] == "failed"
    assert entries[0]["code"] == "read_timeout"
    reader.query("SELECT count(*) AS n FROM data")
    numbers = [entry.body["read_number"] for entry in space.plane.audit.entries()
               if entry.body.get("transfer_id") == transfer.id and entry.body.get("kind") == "read"]
    assert numbers == [1, 2]


def test_the_default_limits_keep_one_consumer_from_holding_the_engine_long() -> None:
    limits = DataPlaneLimits()
    # a consumer's reads at once times the watchdog's limit: the engine time it can hold
    held = limits.max_concurrent_reads_per_consumer * limits.sandbox.timeout_seconds
    assert held <= 5 * 60
    assert limits.max_concurrent_reads_per_consumer < limits.max_concurrent_reads // 2
