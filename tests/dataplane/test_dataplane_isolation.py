"""The attacker's tests: with a valid agreement, crafted SQL gets no byte the agreement withholds.

Every bypass class runs twice: with the SQL checker on (the first line), and with it switched
off (the test-only ``check_sql`` switch), where the query goes to the engine as sent. The
second run proves isolation by construction: the connection that runs the query can open one
file, holding only the granted rows and columns.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from connector.dataplane import make_proof

from .conftest import ASSET_ID, DataSpace, research_permission

ROWS = 400
ONLY_NH = {"leftOperand": "https://w3id.org/sluis/column/region", "operator": "eq", "rightOperand": "NH"}
NO_SECRET = {"leftOperand": "sluis:columns", "operator": "isNoneOf", "rightOperand": ["secret"]}
# Bytes the consumer must never receive: the withheld column, rows outside the filter, another
# file of the asset's folder, and where the provider keeps its data.
FORBIDDEN = (b"SECRET-", b"ROW-ZH-", b"ROW-UT-", b"OTHERFILE-")


def _asset(space: DataSpace) -> Path:
    folder = space.data_path.parent
    path = folder / "records.parquet"
    pq.write_table(pa.table({
        "id": pa.array(range(ROWS), pa.int64()),
        "region": [("NH", "ZH", "UT")[i % 3] for i in range(ROWS)],
        "note": [f"ROW-{('NH', 'ZH', 'UT')[i % 3]}-{i}" for i in range(ROWS)],
        "age": [20 + i % 50 for i in range(ROWS)],
        "secret": [f"SECRET-{i}" for i in range(ROWS)],
    }), path)
    pq.write_table(pa.table({"x": ["OTHERFILE-1"]}), folder / "other.parquet")
    (folder / "notes.csv").write_text("x\nOTHERFILE-2\n")
    space.state.put_asset(ASSET_ID, "parquet", path)
    return path


BYPASSES = [
    # scoping confusion: a name made legal in one scope, used where SQL means another thing
    "SELECT (SELECT 1 AS secret) AS a, secret FROM data",
    "WITH secret AS (SELECT 1 AS x) SELECT secret FROM data",
    "SELECT * FROM (WITH \"{asset}\" AS (SELECT 1 AS x) SELECT x FROM \"{asset}\") AS t, \"{asset}\"",
    "SELECT note FROM data WHERE region <> 'NH' UNION ALL SELECT secret FROM data",
    "SELECT d.secret FROM data AS d",
    # quoted identifiers and literals as file paths; other files of the folder
    "SELECT * FROM \"{asset}\"",
    "SELECT * FROM '{asset}'",
    "SELECT * FROM \"{folder}/other.parquet\"",
    "SELECT * FROM read_parquet('{folder}/*.parquet')",
    "SELECT * FROM read_text('{folder}/notes.csv')",
    "SELECT * FROM read_blob('{asset}')",
    "SELECT * FROM read_csv('{folder}/notes.csv')",
    "SELECT * FROM glob('{folder}/*')",
    "SELECT * FROM data, '{asset}' AS raw",
    # catalogue functions and tables that name files, settings or view definitions
    "SELECT * FROM duckdb_views()",
    "SELECT * FROM duckdb_settings()",
    "SELECT * FROM duckdb_databases()",
    "SELECT * FROM information_schema.tables",
    "SELECT * FROM sqlite_master",
    "PRAGMA database_list",
    "SELECT current_setting('allowed_paths') AS s",
    # writing, attaching, loading, reconfiguring
    "COPY (SELECT 1 AS x) TO '{folder}/dropped.csv'",
    "ATTACH '{folder}/dropped.duckdb' AS other",
    "INSTALL httpfs",
    "SET allowed_paths = ['{folder}']",
    "SET enable_external_access = true",
    # error messages that quote cell values
    "SELECT CAST(secret AS INTEGER) AS n FROM data",
    "SELECT CAST(note AS INTEGER) AS n FROM data",
]


def _query(space: DataSpace, endpoint: str, token: str, sql: str) -> httpx.Response:
    url = endpoint + "/query"
    key = space.consumers["alice"].key
    headers = {"Authorization": f"DPoP {token}", "DPoP": make_proof(key, "POST", url, token)}
    return httpx.post(url, json={"sql": sql}, headers=headers, timeout=60)


@pytest.mark.parametrize("checker", ["on", "off"])
def test_no_bypass_class_returns_a_forbidden_byte(space: DataSpace, checker: str) -> None:
    asset = _asset(space)
    folder = asset.parent
    space.plane.check_sql = checker == "on"
    transfer = space.transfer(space.agreement(research_permission(NO_SECRET, ONLY_NH)))
    address = space.plane.issue_access(transfer)
    answered = {}
    for template in BYPASSES:
        sql = template.format(asset=asset, folder=folder)
        # the data folder's path is forbidden too, unless the query itself names it (an echo)
        forbidden = FORBIDDEN if str(folder) in sql else (*FORBIDDEN, str(folder).encode())
        response = _query(space, address.endpoint, address.token, sql)
        answered[template] = response.status_code
        leaked = [token for token in forbidden if token in response.content]
        assert not leaked, (checker, sql, response.status_code, leaked)
        assert response.status_code < 500, (checker, sql, response.text)
        if checker == "on":
            assert response.status_code in (400, 403), (sql, response.status_code)
    assert not (folder / "dropped.csv").exists()
    assert not (folder / "dropped.duckdb").exists()
    # what the engine did answer with the checker off came from the granted file alone
    if checker == "off":
        assert 200 in answered.values()
    granted = _query(space, address.endpoint, address.token, "SELECT note FROM data")
    assert granted.status_code == 200
    notes = pa.ipc.open_stream(granted.content).read_all().column("note").to_pylist()
    assert len(notes) == len([i for i in range(ROWS) if i % 3 == 0])
    assert all(note.startswith("ROW-NH-") for note in notes)


def test_engine_errors_are_generic_and_counted(space: DataSpace) -> None:
    _asset(space)
    transfer = space.transfer(space.agreement(research_permission(NO_SECRET)))
    address = space.plane.issue_access(transfer)
    response = _query(space, address.endpoint, address.token, "SELECT CAST(note AS INTEGER) AS n FROM data")
    assert response.status_code == 400
    assert b"ROW-" not in response.content
    assert response.json()["code"] == "query_failed"
    ok = _query(space, address.endpoint, address.token, "SELECT count(*) AS n FROM data")
    assert ok.headers["Sluis-Read-Number"] == "2"  # the failed query was read number 1


def test_a_tampered_granted_file_is_written_again(space: DataSpace) -> None:
    _asset(space)
    transfer = space.transfer(space.agreement(research_permission(NO_SECRET, ONLY_NH)))
    address = space.plane.issue_access(transfer)
    assert _query(space, address.endpoint, address.token, "SELECT count(*) AS n FROM data").status_code == 200
    granted = list(space.plane.granted_files.root.glob("*/granted.parquet"))
    assert len(granted) == 1
    granted[0].chmod(0o644)
    pq.write_table(pa.table({"id": [1], "note": ["PLANTED"]}), granted[0])
    response = _query(space, address.endpoint, address.token, "SELECT note FROM data")
    notes = pa.ipc.open_stream(response.content).read_all().column("note").to_pylist()
    assert "PLANTED" not in notes
    assert len(notes) == len([i for i in range(ROWS) if i % 3 == 0])


def test_a_changed_asset_is_materialised_again(space: DataSpace) -> None:
    asset = _asset(space)
    transfer = space.transfer(space.agreement(research_permission(NO_SECRET)))
    address = space.plane.issue_access(transfer)
    before = _query(space, address.endpoint, address.token, "SELECT count(*) AS n FROM data")
    assert pa.ipc.open_stream(before.content).read_all().column("n").to_pylist() == [ROWS]
    pq.write_table(pa.table({"id": [1, 2], "region": ["NH", "NH"], "note": ["a", "b"], "age": [1, 2],
                             "secret": ["SECRET-x", "SECRET-y"]}), asset)
    after = _query(space, address.endpoint, address.token, "SELECT count(*) AS n FROM data")
    assert pa.ipc.open_stream(after.content).read_all().column("n").to_pylist() == [2]


def test_a_query_that_overwrites_its_granted_file_does_not_reach_the_next_read(space: DataSpace) -> None:
    _asset(space)
    space.plane.check_sql = False  # the one write the engine allows: its own granted file
    transfer = space.transfer(space.agreement(research_permission(NO_SECRET, ONLY_NH)))
    address = space.plane.issue_access(transfer)
    settings = _query(space, address.endpoint, address.token,
                      "SELECT value FROM duckdb_settings() WHERE name = 'allowed_paths'")
    granted = pa.ipc.open_stream(settings.content).read_all().column("value")[0].as_py().strip("[]")
    assert str(space.data_path.parent) not in granted
    overwrite = f"COPY (SELECT 'PLANTED' AS note) TO '{granted}' (FORMAT parquet, USE_TMP_FILE false)"
    _query(space, address.endpoint, address.token, overwrite)
    assert pq.read_table(granted).column("note").to_pylist() == ["PLANTED"]  # the write happened
    response = _query(space, address.endpoint, address.token, "SELECT note FROM data")
    notes = pa.ipc.open_stream(response.content).read_all().column("note").to_pylist()
    assert "PLANTED" not in notes
    assert len(notes) == len([i for i in range(ROWS) if i % 3 == 0])


@pytest.mark.parametrize("sql", [
    "WITH t AS (SELECT age AS secret FROM data) SELECT secret FROM t",
    "SELECT age FROM (SELECT * FROM data) AS t",
    "SELECT a.age FROM data AS a JOIN data AS b ON a.id = b.id",
    "SELECT (SELECT max(age) FROM data) AS secret",
    "SELECT t.* FROM (SELECT note, age FROM data) AS t WHERE t.age > 30",
])
def test_names_that_merely_look_forbidden_are_resolved_not_refused(space: DataSpace, sql: str) -> None:
    _asset(space)
    transfer = space.transfer(space.agreement(research_permission(NO_SECRET, ONLY_NH)))
    address = space.plane.issue_access(transfer)
    response = _query(space, address.endpoint, address.token, sql)
    assert response.status_code == 200, response.text
    assert not [token for token in FORBIDDEN if token in response.content]


def _whole(space: DataSpace, endpoint: str, token: str) -> httpx.Response:
    key = space.consumers["alice"].key
    headers = {"Authorization": f"DPoP {token}", "DPoP": make_proof(key, "GET", endpoint, token)}
    return httpx.get(endpoint, headers=headers, timeout=60)


def test_the_whole_views_arrow_copy_is_no_file_a_query_can_open(space: DataSpace) -> None:
    _asset(space)
    space.plane.check_sql = False
    transfer = space.transfer(space.agreement(research_permission(NO_SECRET, ONLY_NH)))
    address = space.plane.issue_access(transfer)
    assert _whole(space, address.endpoint, address.token).status_code == 200
    copies = list(space.plane.granted_files.root.glob("*.stream/granted.arrow"))
    assert len(copies) == 1
    for sql in (f"SELECT * FROM read_blob('{copies[0]}')", f"SELECT * FROM read_text('{copies[0]}')",
                f"SELECT * FROM '{copies[0]}'", f"SELECT * FROM glob('{copies[0].parent}/*')"):
        response = _query(space, address.endpoint, address.token, sql)
        assert response.status_code == 400, (sql, response.status_code)
        assert b"ARROW1" not in response.content
        assert str(copies[0]).encode() not in response.content


def test_a_tampered_arrow_copy_is_written_again(space: DataSpace) -> None:
    _asset(space)
    transfer = space.transfer(space.agreement(research_permission(NO_SECRET, ONLY_NH)))
    address = space.plane.issue_access(transfer)
    assert _whole(space, address.endpoint, address.token).status_code == 200
    copy = next(space.plane.granted_files.root.glob("*.stream/granted.arrow"))
    copy.chmod(0o644)
    planted = pa.table({"id": pa.array([1], pa.int64()), "region": ["NH"], "note": ["PLANTED"],
                        "age": pa.array([1], pa.int64())})
    with pa.OSFile(str(copy), "wb") as sink, pa.ipc.new_file(sink, planted.schema) as writer:
        writer.write_table(planted)
    response = _whole(space, address.endpoint, address.token)
    notes = pa.ipc.open_stream(response.content).read_all().column("note").to_pylist()
    assert "PLANTED" not in notes
    assert len(notes) == len([i for i in range(ROWS) if i % 3 == 0])
    assert all(note.startswith("ROW-NH-") for note in notes)


def test_a_changed_asset_gives_a_whole_view_of_the_new_rows(space: DataSpace) -> None:
    asset = _asset(space)
    transfer = space.transfer(space.agreement(research_permission(NO_SECRET)))
    address = space.plane.issue_access(transfer)
    before = pa.ipc.open_stream(_whole(space, address.endpoint, address.token).content).read_all()
    assert before.num_rows == ROWS
    assert "secret" not in before.column_names
    pq.write_table(pa.table({"id": [1, 2], "region": ["NH", "NH"], "note": ["a", "b"], "age": [1, 2],
                             "secret": ["SECRET-x", "SECRET-y"]}), asset)
    after = pa.ipc.open_stream(_whole(space, address.endpoint, address.token).content).read_all()
    assert after.column("note").to_pylist() == ["a", "b"]
    assert "secret" not in after.column_names
    assert len(list(space.plane.granted_files.root.glob("*.stream/granted.arrow"))) <= 2


@pytest.mark.parametrize("columns", ["note, id", "*", "data.note", "d.age, d.note"])
def test_a_query_listing_columns_is_answered_from_the_granted_relation_alone(
    space: DataSpace, columns: str,
) -> None:
    """A query that only lists columns is read from the granted relation's Arrow copy, without
    the engine: it gets what the engine would give - the granted rows, no withheld column."""
    _asset(space)
    transfer = space.transfer(space.agreement(research_permission(NO_SECRET, ONLY_NH)))
    address = space.plane.issue_access(transfer)
    source = "data AS d" if columns.startswith("d.") else "data"
    stats = space.plane.sandboxes.stats
    listed = _query(space, address.endpoint, address.token, f"SELECT {columns} FROM {source}")
    engines = stats.opened + stats.reused
    assert engines == 0  # no engine connection was taken for it
    engine = _query(space, address.endpoint, address.token, f"SELECT {columns} FROM {source} WHERE true")
    assert stats.opened + stats.reused == engines + 1
    assert listed.status_code == engine.status_code == 200
    assert not [token for token in FORBIDDEN if token in listed.content]
    fast, slow = (pa.ipc.open_stream(r.content).read_all() for r in (listed, engine))
    assert fast.column_names == slow.column_names
    assert fast.to_pydict() == slow.to_pydict()
    assert fast.num_rows == len([i for i in range(ROWS) if i % 3 == 0])
    entries = [e.body for e in space.plane.audit.entries() if e.body.get("kind") == "read"]
    assert [e["read_number"] for e in entries[-2:]] == [1, 2]
    assert entries[-2]["rows"] == fast.num_rows


@pytest.mark.parametrize("query", [
    "SELECT id, note FROM data AS d(note, id)",  # a column list renames (here: swaps) columns
    "SELECT * EXCLUDE (id) FROM data",
    "SELECT * REPLACE (age + 1 AS age) FROM data",
    "SELECT * RENAME (id AS x) FROM data",
    "SELECT id FROM data AS FINAL",
    "FROM data SELECT note, age",
])
def test_queries_that_only_look_like_a_column_list_get_the_engines_answer(
    space: DataSpace, query: str,
) -> None:
    _asset(space)
    transfer = space.transfer(space.agreement(research_permission(NO_SECRET, ONLY_NH)))
    address = space.plane.issue_access(transfer)
    answers = [_query(space, address.endpoint, address.token, sql) for sql in (query, query + " WHERE true")]
    assert [answer.status_code for answer in answers] == [200, 200], answers[0].text
    first, second = (pa.ipc.open_stream(answer.content).read_all() for answer in answers)
    assert first.column_names == second.column_names
    assert first.to_pydict() == second.to_pydict()
