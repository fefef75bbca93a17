"""A read the watchdog stops is a read: it ran on the engine, so it counts against the
agreement's reads and is always in the audit log as a permitted read that failed - never left
out as a refusal past the rate at which refusals are appended."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from connector.config import ConfigError, load_config
from connector.dataplane import DataPlaneLimits
from connector.dataplane.denial_budget import DenialBudget
from connector.dataplane.plane import configured_limits
from connector.dataplane.sandbox import SandboxLimits
from connector.identity import KeyPair, public_key_to_multibase
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


def test_the_read_limits_are_set_in_the_configuration(tmp_path: Path) -> None:
    (tmp_path / "key.pem").write_text("")
    authority_key = public_key_to_multibase(KeyPair.generate().public_key)
    base = (
        '[participant]\nid = "did:web:p.example"\nkey_file = "key.pem"\n[storage]\nurl = "sqlite:///c.db"\n'
        f'[authority]\ndid = "did:web:a.example"\npublic_key_multibase = "{authority_key}"\n'
        f'[management]\ntoken = "{"t" * 32}"\n[dataplane]\ndata_root = "data"\nread_timeout_seconds = 30\n'
    )
    path = tmp_path / "connector.toml"
    path.write_text(base + "reads_per_consumer = 1\n")
    limits = configured_limits(load_config(path))
    assert limits.sandbox.timeout_seconds == 30.0
    assert limits.max_concurrent_reads_per_consumer == 1
    assert configured_limits(None) == DataPlaneLimits()
    path.write_text(base + "reads_per_consumer = 0\n")
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    assert "dataplane.reads_per_consumer" in str(refused.value)
