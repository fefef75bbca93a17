"""An AI job, through two real connectors on loopback: negotiate, transfer, read, revoke, lineage."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from connector.config import load_config
from connector.jobs import Job, JobError
from sluis.cli import main as sluis_main
from tests.connector.dsp_world import (
    RESEARCH,
    Party,
    make_authority,
    make_party,
    members_only,
    running,
    wait_for_state,
)

from .conftest import PLACE_NLD, write_patients

DATASET = "urn:sluis:dataset:patients"


@pytest.fixture
def connectors(tmp_path: Path) -> Iterator[tuple[Party, Party]]:
    authority = make_authority()
    provider = make_party(tmp_path, "provider", authority, "sqlite:///connector.db")
    consumer = make_party(tmp_path, "consumer", authority, "sqlite:///connector.db")
    write_patients(provider.root / "data" / "patients")
    with running(provider), running(consumer):
        yield provider, consumer


def _publish(provider: Party) -> None:
    contract = {
        "@id": "urn:sluis:policy:research-no-ssn", "@type": "Offer",
        "permission": [{"action": "use", "constraint": [
            {"leftOperand": "purpose", "operator": "isA", "rightOperand": RESEARCH},
            {"leftOperand": "sluis:columns", "operator": "isNoneOf", "rightOperand": ["ssn"]},
        ]}],
    }
    with provider.management() as api:
        api.post("/assets", json={"id": DATASET, "title": "Synthetic patients",
                                  "data": {"kind": "parquet", "path": "patients/patients.parquet"}}
                 ).raise_for_status()
        api.post("/policies", json={"id": "access", "policy": members_only()}).raise_for_status()
        api.post("/policies", json={"id": "contract", "policy": contract}).raise_for_status()
        api.post("/contract-definitions", json={"id": "cd", "access_policy_id": "access",
                                                "contract_policy_id": "contract", "asset_ids": [DATASET]}
                 ).raise_for_status()


def test_ai_job_reads_through_real_connectors_and_is_cut_off_by_revocation(
    connectors: tuple[Party, Party],
) -> None:
    provider, consumer = connectors
    _publish(provider)
    config = load_config(consumer.config_path)
    with Job.from_config(consumer.config_path, "train-7", RESEARCH, PLACE_NLD) as job:
        assert job.consumer_id == config.participant_id
        data = job.dataset(DATASET, provider.dsp, provider.did)
        table = data.read()
        assert table.num_rows == 1_000
        assert "ssn" not in table.column_names
        counts = data.query("SELECT diagnosis, count(*) AS n FROM data GROUP BY diagnosis ORDER BY diagnosis")
        assert counts.column("n").to_pylist() == [334, 333, 333]
        with pytest.raises(JobError) as refused:
            data.query("SELECT ssn FROM data")
        assert refused.value.status == 403

        again = job.dataset(DATASET, provider.dsp, provider.did)
        assert again.agreement_id == data.agreement_id  # the agreement is reused, not renegotiated

        lineage = job.lineage()
        reads = [node for node in lineage["@graph"] if node.get("@type") == "prov:Entity"
                 and "checksum" in node]
        assert len(reads) == 2
        sink = io.BytesIO()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        assert all(len(node["checksum"]["checksumValue"]) == 64 for node in reads)
        assert hashlib.sha256(b"").hexdigest() not in {node["checksum"]["checksumValue"] for node in reads}
        activity = lineage["@graph"][0]
        assert activity["purpose"] == RESEARCH
        assert set(activity["used"]) == {node["@id"] for node in reads}

        with provider.management() as api:
            ended = api.post(f"/agreements/{data.agreement_id}/terminate", json={"reason": "revoked"})
            ended.raise_for_status()
        with pytest.raises(JobError) as revoked:
            data.read()
        assert revoked.value.status in (401, 403)
        wait_for_state(consumer, "transfers", data.transfer_id, "TERMINATED")

    # the compliance officers of both sides get their exports and check them offline
    provider_export = provider.root / "audit-provider.jsonl"
    consumer_export = provider.root / "audit-consumer.jsonl"
    config_args = ["--config", str(provider.config_path)]
    assert sluis_main(["audit", "export", *config_args, "--out", str(provider_export)]) == 0
    assert sluis_main(["audit", "export", *config_args, "--out", str(consumer_export),
                       "--consumer", consumer.did]) == 0
    key_file = str(provider.root / "participant-key.pem")
    for export in (provider_export, consumer_export):
        assert sluis_main(["audit", "verify", str(export), "--key", key_file]) == 0
    assert sluis_main(["audit", "verify", "--config", str(provider.config_path)]) == 0
    lines = provider_export.read_text().splitlines()[1:]
    kinds = [json.loads(line).get("body", {}).get("kind") for line in lines]
    assert {"access-issued", "read", "revocation"} <= set(kinds)
