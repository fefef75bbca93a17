"""Every governance template of ``policies.templates`` is negotiable end to end through two real
connectors: negotiate, transfer, one permitted read and one refused one."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from connector.jobs import Dataset, Job, JobError
from policies import templates, to_dsp_json
from tests.connector.dsp_world import Party, make_authority, make_party, members_only, running

from .conftest import PLACE_NLD, PLACE_USA, write_patients

RESEARCH = templates.SCIENTIFIC_RESEARCH
COMMERCIAL = templates.COMMERCIAL_USE
NOW = datetime.now(UTC)

OFFERS: dict[str, Callable[[str], Any]] = {
    "research-only": templates.research_only,
    "eu-only-processing": templates.eu_only_processing,
    "time-boxed": lambda uid: templates.time_boxed(uid, NOW - timedelta(hours=1), NOW + timedelta(days=1)),
    "max-reads": lambda uid: templates.max_reads(uid, 2),
    "aggregate-only": lambda uid: templates.aggregate_only(uid, 10),
    "no-commercial-use": templates.no_commercial_use,
    "delete-after": lambda uid: templates.delete_after(uid, 30),
}


def test_every_template_is_covered() -> None:
    assert set(OFFERS) == set(templates.TEMPLATES)


@pytest.fixture(scope="module")
def connectors(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Party, Party]]:
    root: Path = tmp_path_factory.mktemp("templates")
    authority = make_authority()
    provider = make_party(root, "provider", authority, "sqlite:///connector.db")
    consumer = make_party(root, "consumer", authority, "sqlite:///connector.db")
    write_patients(provider.root / "data" / "patients")
    with running(provider), running(consumer), provider.management() as api:
        api.post("/policies", json={"id": "access", "policy": members_only()}).raise_for_status()
        for name, make in OFFERS.items():
            offer = dict(to_dsp_json(make(f"urn:sluis:policy:{name}")))
            offer.pop("@context", None)
            dataset = f"urn:sluis:dataset:{name}"
            api.post("/assets", json={"id": dataset, "title": f"Patients under {name}",
                                      "data": {"kind": "parquet", "path": "patients/patients.parquet"}}
                     ).raise_for_status()
            api.post("/policies", json={"id": name, "policy": offer}).raise_for_status()
            api.post("/contract-definitions", json={"id": f"cd-{name}", "access_policy_id": "access",
                                                    "contract_policy_id": name, "asset_ids": [dataset]}
                     ).raise_for_status()
        yield provider, consumer


def _open(connectors: tuple[Party, Party], name: str, purpose: str = RESEARCH,
          site: str = PLACE_NLD) -> tuple[Job, Dataset]:
    provider, consumer = connectors
    job = Job.from_config(consumer.config_path, f"job-{name}-{purpose[-8:]}-{site[-3:]}", purpose, site)
    try:
        return job, job.dataset(f"urn:sluis:dataset:{name}", provider.dsp, provider.did)
    except BaseException:
        job.close()
        raise


def _refused(action: Callable[[], object]) -> JobError:
    with pytest.raises(JobError) as refused:
        action()
    return refused.value


REFUSED_SQL = "SELECT * FROM read_parquet('patients/patients.parquet')"


@pytest.mark.parametrize("name", sorted(OFFERS))
def test_template_negotiates_transfers_permits_and_refuses(
    connectors: tuple[Party, Party], name: str
) -> None:
    job, data = _open(connectors, name)
    with job:
        if name == "aggregate-only":
            counts = data.query(
                "SELECT diagnosis, count(*) AS n FROM data GROUP BY diagnosis ORDER BY diagnosis"
            )
            assert counts.column("n").to_pylist() == [334, 333, 333]
            assert _refused(data.read).status == 403
            return
        assert data.read().num_rows == 1_000
        if name == "max-reads":
            data.query("SELECT count(*) AS n FROM data")
            assert _refused(data.read).status == 403
        elif name in ("research-only", "no-commercial-use"):
            _refused(lambda: _open(connectors, name, purpose=COMMERCIAL))
        elif name == "eu-only-processing":
            _refused(lambda: _open(connectors, name, site=PLACE_USA))
        else:  # time-boxed and delete-after hold now: what they refuse is what every read refuses
            assert _refused(lambda: data.query(REFUSED_SQL)).status == 403
