"""An AI job reads what its agreement allows, and nothing else, at every read."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import httpx
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from connector.dataplane import make_proof
from connector.identity import EHDS_DATA_PERMIT, KeyPair, issue_credential
from connector.jobs import JobError

from .conftest import ASSET_ID, PURPOSE, DataSpace, research_permission

FORBID_SSN = {"leftOperand": "sluis:columns", "operator": "isNoneOf", "rightOperand": ["ssn"]}


def test_job_reads_only_permitted_columns(space: DataSpace) -> None:
    reader = space.reader(space.transfer(space.agreement(research_permission(FORBID_SSN))))
    table = reader.read()
    assert table.column_names == ["patient_id", "age", "region", "diagnosis"]
    assert table.num_rows == 1_000
    result = reader.query("SELECT region, count(*) AS n FROM data GROUP BY region ORDER BY region")
    assert result.to_pydict() == {"region": ["GR", "NH", "UT", "ZH"], "n": [250, 250, 250, 250]}
    assert result.to_pandas()["n"].sum() == 1_000


def test_row_filter_keeps_only_permitted_rows(space: DataSpace) -> None:
    only_nh = {"leftOperand": "https://w3id.org/sluis/column/region", "operator": "eq", "rightOperand": "NH"}
    reader = space.reader(space.transfer(space.agreement(research_permission(FORBID_SSN, only_nh))))
    assert set(reader.read().column("region").to_pylist()) == {"NH"}
    counted = reader.query("SELECT count(*) AS n FROM data WHERE region <> 'NH'")
    assert counted.column("n").to_pylist() == [0]


def test_forbidden_column_is_refused_with_the_policy_explanation(space: DataSpace) -> None:
    reader = space.reader(space.transfer(space.agreement(research_permission(FORBID_SSN))))
    with pytest.raises(JobError) as refused:
        reader.query("SELECT patient_id, ssn FROM data")
    assert refused.value.status == 403
    assert refused.value.problem is not None
    assert refused.value.problem["decision"]["decision"] == "deny"
    assert "columns" in refused.value.problem["detail"]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_parquet('{path}')",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM glob('{folder}/*')",
        "SELECT * FROM '{path}'",
        "SELECT * FROM data WHERE patient_id IN (SELECT patient_id FROM read_parquet('{path}'))",
        "COPY (SELECT * FROM data) TO '{folder}/copy.csv'",
        "ATTACH '{folder}/other.duckdb' AS other",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET enable_external_access = true",
        "PRAGMA database_list",
        "SELECT 1; SELECT 2",
        "SELECT * FROM data; DROP VIEW data",
        "SELECT query('SELECT * FROM read_parquet(''{path}'')')",
        "SELECT current_setting('allowed_directories')",
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r, data",
    ],
)
def test_sandbox_escapes_are_refused(space: DataSpace, sql: str) -> None:
    reader = space.reader(space.transfer(space.agreement(research_permission(FORBID_SSN))))
    statement = sql.format(path=space.data_path, folder=space.data_path.parent)
    with pytest.raises(JobError) as refused:
        reader.query(statement)
    assert refused.value.status == 403, refused.value
    assert not (space.data_path.parent / "copy.csv").exists()
    assert "ssn" not in str(refused.value.problem)


def test_query_after_revocation_is_denied(space: DataSpace) -> None:
    agreement_id = space.agreement(research_permission(FORBID_SSN))
    reader = space.reader(space.transfer(agreement_id))
    assert reader.query("SELECT count(*) AS n FROM data").column("n").to_pylist() == [1_000]
    space.state.terminate_agreement(agreement_id)
    with pytest.raises(JobError) as refused:
        reader.query("SELECT count(*) AS n FROM data")
    assert (refused.value.status, refused.value.code) == (403, "agreement_terminated")


def test_revoked_transfer_token_is_dead(space: DataSpace) -> None:
    transfer = space.transfer(space.agreement(research_permission(FORBID_SSN)))
    reader = space.reader(transfer)
    reader.read()
    space.plane.revoke(transfer.id)
    with pytest.raises(JobError) as refused:
        reader.read()
    assert (refused.value.status, refused.value.code) == (401, "token_inactive")


def test_suspended_transfer_is_denied(space: DataSpace) -> None:
    transfer = space.transfer(space.agreement(research_permission(FORBID_SSN)))
    reader = space.reader(transfer)
    space.state.set_transfer_state(transfer.id, "SUSPENDED")
    with pytest.raises(JobError) as refused:
        reader.read()
    assert (refused.value.status, refused.value.code) == (403, "transfer_not_started")


def test_wrong_purpose_token_is_denied_with_explanation(space: DataSpace) -> None:
    agreement_id = space.agreement(research_permission(FORBID_SSN))
    reader = space.reader(space.transfer(agreement_id, purpose="marketing"))
    with pytest.raises(JobError) as refused:
        reader.read()
    assert refused.value.status == 403
    assert refused.value.code == "policy_denied"
    assert refused.value.problem is not None
    assert "purpose" in refused.value.problem["detail"]


def test_compute_site_outside_the_eu_is_denied(space: DataSpace) -> None:
    eu_only = {"leftOperand": "sluis:computeSite", "operator": "isPartOf",
               "rightOperand": "https://w3id.org/sluis/place/EU"}
    agreement_id = space.agreement(research_permission(FORBID_SSN, eu_only))
    inside = space.reader(space.transfer(agreement_id))
    assert inside.read().num_rows == 1_000
    from .conftest import PLACE_USA

    outside = space.reader(space.transfer(agreement_id, site=PLACE_USA))
    with pytest.raises(JobError) as refused:
        outside.read()
    assert refused.value.code == "policy_denied"


def test_expired_token_is_refused(space: DataSpace) -> None:
    transfer = space.transfer(space.agreement(research_permission(FORBID_SSN)))
    address = space.plane.issue_access(transfer, now=datetime.now(UTC) - timedelta(minutes=30))
    key = space.consumers["alice"].key
    proof = make_proof(key, "GET", address.endpoint, address.token)
    response = httpx.get(address.endpoint, headers={"Authorization": f"DPoP {address.token}", "DPoP": proof})
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "token_expired"


def test_another_consumers_key_cannot_use_the_token(space: DataSpace) -> None:
    transfer = space.transfer(space.agreement(research_permission(FORBID_SSN)))
    thief = space.reader(transfer, key=space.consumers["bob"].key)
    with pytest.raises(JobError) as refused:
        thief.read()
    assert (refused.value.status, refused.value.code) == (401, "wrong_holder")


def test_another_consumers_own_token_cannot_read_this_transfer(space: DataSpace) -> None:
    alice_transfer = space.transfer(space.agreement(research_permission(FORBID_SSN)))
    bob_transfer = space.transfer(space.agreement(research_permission(FORBID_SSN), consumer="bob"),
                                  consumer="bob")
    bob = space.reader(bob_transfer, consumer="bob")
    url = f"{space.base_url}/data/{alice_transfer.id}"
    response = httpx.get(url, headers={
        "Authorization": f"DPoP {bob.address.token}",
        "DPoP": make_proof(space.consumers["bob"].key, "GET", url, bob.address.token),
    })
    assert response.status_code == 401
    assert response.json()["code"] == "wrong_transfer"


def test_bearer_use_without_proof_and_replayed_proofs_are_refused(space: DataSpace) -> None:
    transfer = space.transfer(space.agreement(research_permission(FORBID_SSN)))
    address = space.plane.issue_access(transfer)
    bearer = httpx.get(address.endpoint, headers={"Authorization": f"Bearer {address.token}"})
    assert (bearer.status_code, bearer.json()["code"]) == (401, "token_scheme")
    proof = make_proof(space.consumers["alice"].key, "GET", address.endpoint, address.token)
    headers = {"Authorization": f"DPoP {address.token}", "DPoP": proof}
    assert httpx.get(address.endpoint, headers=headers).status_code == 200
    replayed = httpx.get(address.endpoint, headers=headers)
    assert (replayed.status_code, replayed.json()["code"]) == (401, "proof_replayed")


def test_refresh_gives_a_new_token_once(space: DataSpace) -> None:
    transfer = space.transfer(space.agreement(research_permission(FORBID_SSN)))
    reader = space.reader(transfer)
    old = reader.address.token
    reader.refresh()
    assert reader.address.token != old
    assert reader.read().num_rows == 1_000
    key = space.consumers["alice"].key
    url = reader.address.refresh_endpoint
    proof = make_proof(key, "POST", url, old)
    again = httpx.post(url, headers={"Authorization": f"DPoP {old}", "DPoP": proof})
    assert (again.status_code, again.json()["code"]) == (401, "token_replayed")
    stale = httpx.get(reader.address.endpoint, headers={
        "Authorization": f"DPoP {old}", "DPoP": make_proof(key, "GET", reader.address.endpoint, old)})
    assert (stale.status_code, stale.json()["code"]) == (401, "token_inactive")


def test_parquet_and_csv_by_accept(space: DataSpace) -> None:
    transfer = space.transfer(space.agreement(research_permission(FORBID_SSN)))
    address = space.plane.issue_access(transfer)
    key = space.consumers["alice"].key
    for accept, load in (("application/vnd.apache.parquet", pq.read_table), ("text/csv", pa_csv.read_csv)):
        response = httpx.get(address.endpoint, headers={
            "Authorization": f"DPoP {address.token}", "Accept": accept,
            "DPoP": make_proof(key, "GET", address.endpoint, address.token)})
        assert response.status_code == 200
        assert response.headers["content-type"].startswith(accept)
        table: pa.Table = load(io.BytesIO(response.content))
        assert table.num_rows == 1_000
        assert "ssn" not in table.column_names


def test_aggregate_only_suppresses_small_groups(space: DataSpace) -> None:
    group_size = {"leftOperand": "sluis:groupSize", "operator": "gteq", "rightOperand": 100}
    policy = research_permission(group_size, action="aggregate")
    reader = space.reader(space.transfer(space.agreement(policy)))
    result = reader.query("SELECT region, count(*) AS n, avg(age) AS mean_age FROM data GROUP BY region")
    assert sorted(result.column("n").to_pylist()) == [250, 250, 250, 250]
    small = reader.query("SELECT age, count(*) AS n FROM data GROUP BY age")
    assert small.num_rows == 0  # every age group has fewer than 100 rows: all suppressed
    one = reader.query("SELECT region, count(*) AS n FROM data WHERE patient_id < 150 GROUP BY region")
    assert one.num_rows == 0  # 150 rows over 4 regions: groups of 37 or 38, all suppressed
    for sql in ("SELECT * FROM data", "SELECT patient_id, age FROM data"):
        with pytest.raises(JobError) as refused:
            reader.query(sql)
        assert refused.value.status == 403
    with pytest.raises(JobError) as whole:
        reader.read()
    assert whole.value.status == 403


def test_read_requiring_a_data_permit_is_decided_with_the_consumers_credentials(space: DataSpace) -> None:
    permit_type = EHDS_DATA_PERMIT
    needs_permit = {"leftOperand": "sluis:credential", "operator": "hasPart", "rightOperand": permit_type}
    transfer = space.transfer(space.agreement(research_permission(FORBID_SSN, needs_permit)))
    without = space.reader(transfer)
    with pytest.raises(JobError) as refused:
        without.read()
    assert refused.value.code == "policy_denied"
    now = datetime.now(UTC)
    alice = space.consumers["alice"].did
    claims = {"permitId": "NL-2026-042", "purposes": [PURPOSE + "scientific-research"],
              "datasets": [ASSET_ID], "healthDataAccessBody": "did:web:hdab.example"}
    window = (now - timedelta(minutes=1), now + timedelta(days=1))
    permit = issue_credential(space.authority, space.authority_did, alice, permit_type, claims, *window)
    assert space.reader(transfer, credentials=[permit]).read().num_rows == 1_000
    forged = issue_credential(KeyPair.generate(), space.authority_did, alice, permit_type, claims, *window)
    with pytest.raises(JobError) as rejected:
        space.reader(transfer, credentials=[forged]).read()
    assert (rejected.value.status, rejected.value.code) == (401, "bad_identity")


@pytest.mark.parametrize("kind", ["csv", "duckdb"])
def test_csv_and_duckdb_assets_are_served_through_the_same_view(space: DataSpace, kind: str) -> None:
    import duckdb

    folder = space.data_path.parent
    source = pq.read_table(space.data_path)
    if kind == "csv":
        path = folder / "patients.csv"
        pa_csv.write_csv(source, path)
        table_name = None
    else:
        path, table_name = folder / "patients.duckdb", "patients"
        with duckdb.connect(str(path)) as db:
            db.register("source", source)
            db.execute("CREATE TABLE patients AS SELECT * FROM source")
    space.state.put_asset(ASSET_ID, kind, path, table_name)
    reader = space.reader(space.transfer(space.agreement(research_permission(FORBID_SSN))))
    table = reader.read()
    assert table.num_rows == 1_000
    assert "ssn" not in table.column_names
    with pytest.raises(JobError) as refused:
        reader.query(f"SELECT * FROM {'read_csv' if kind == 'csv' else 'read_parquet'}('{path}')")
    assert refused.value.status == 403
    if kind == "duckdb":
        with pytest.raises(JobError) as qualified:
            reader.query("SELECT ssn FROM asset_source.main.patients")
        assert qualified.value.status == 403


def test_the_whole_view_is_sent_with_its_length_and_matches_the_sql_read(space: DataSpace) -> None:
    address = space.plane.issue_access(space.transfer(space.agreement(research_permission(FORBID_SSN))))
    key = space.consumers["alice"].key
    for _ in range(2):  # the first read writes the Arrow copy, the second maps the one written
        headers = {"Authorization": f"DPoP {address.token}",
                   "DPoP": make_proof(key, "GET", address.endpoint, address.token)}
        response = httpx.get(address.endpoint, headers=headers, timeout=60)
        assert response.status_code == 200
        assert response.headers["content-length"] == str(len(response.content))
        assert "chunked" not in response.headers.get("transfer-encoding", "")
        whole = pa.ipc.open_stream(response.content).read_all()
        entry = list(space.plane.audit.entries())[-1].body
        assert entry is not None
        assert (entry["rows"], entry["bytes"], entry["status"]) == (1_000, len(response.content), "completed")
    url = address.endpoint + "/query"
    headers = {"Authorization": f"DPoP {address.token}", "DPoP": make_proof(key, "POST", url, address.token)}
    selected = httpx.post(url, json={"sql": "SELECT * FROM data"}, headers=headers, timeout=60)
    assert whole.to_pydict() == pa.ipc.open_stream(selected.content).read_all().to_pydict()
    assert "ssn" not in whole.column_names
