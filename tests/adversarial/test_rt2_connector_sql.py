"""A consumer with a valid agreement (one column withheld, rows of one region only) sends the
DuckDB dialect's less common syntax through the read API, trying to read more than granted.

Each query runs with the SQL checker on and off (the test-only switch): whatever the checker
lets through, the engine sees only the granted rows and columns. No answer may be a 5xx, carry a
withheld byte, name the provider's folder, or quote a withheld value in an error.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from connector.dataplane import make_proof
from tests.dataplane.conftest import ASSET_ID, DataSpace, did_host, make_space, research_permission, space

__all__ = ["did_host", "make_space", "space"]  # the data plane's fixtures, used here as they are

ROWS = 90
ONLY_NH = {"leftOperand": "https://w3id.org/sluis/column/region", "operator": "eq", "rightOperand": "NH"}
NO_SECRET = {"leftOperand": "sluis:columns", "operator": "isNoneOf", "rightOperand": ["secret"]}
FORBIDDEN = (b"SECRET-", b"ROW-ZH-", b"ROW-UT-", b"OTHERFILE-")

QUERIES = [
    # star expansions and column selectors
    "SELECT COLUMNS(*) FROM data",
    "SELECT COLUMNS('sec.*') FROM data",
    "SELECT COLUMNS(c -> c LIKE '%ec%') FROM data",
    "SELECT * EXCLUDE (note) FROM data",
    "SELECT * REPLACE (secret AS note) FROM data",
    "SELECT * RENAME (secret AS s) FROM data",
    "SELECT data FROM data",
    "SELECT d FROM data AS d",
    "SELECT to_json(d) AS j FROM data AS d",
    "SELECT struct_pack(s := secret) AS s FROM data",
    "SELECT {'a': secret} AS s FROM data",
    "SELECT [secret] AS s FROM data",
    "SELECT list_transform([note], secret -> secret) AS s FROM data",
    "SELECT list_transform([note], x -> secret) AS s FROM data",
    "FROM data",
    "FROM data SELECT secret",
    "SELECT data.* FROM data",
    'SELECT "data"."secret" FROM "data"',
    "SELECT secret.note FROM data AS secret",
    "SELECT note FROM DATA",
    # PIVOT / UNPIVOT, windows, QUALIFY, joins of unusual kinds
    "PIVOT data ON region USING first(secret)",
    "UNPIVOT data ON COLUMNS(*) INTO NAME k VALUE v",
    "SELECT * FROM (UNPIVOT data ON note, secret INTO NAME k VALUE v)",
    "SELECT note FROM data QUALIFY row_number() OVER (ORDER BY secret) = 1",
    "SELECT note, row_number() OVER w AS n FROM data WINDOW w AS (ORDER BY secret)",
    "SELECT note FROM data ORDER BY secret",
    "SELECT note FROM data ORDER BY ALL",
    "SELECT note, count(*) AS n FROM data GROUP BY ALL",
    "SELECT note FROM data, LATERAL (SELECT secret) AS t",
    "SELECT * FROM data NATURAL JOIN data AS b",
    "SELECT * FROM data POSITIONAL JOIN data AS b",
    "SELECT * FROM data ASOF JOIN data AS b USING (id)",
    "SELECT note FROM data USING SAMPLE 10",
    "SELECT * FROM data UNION BY NAME SELECT * FROM data",
    "SELECT note FROM data WHERE id IN (SELECT id FROM data WHERE secret = 'SECRET-3')",
    "SELECT note FROM data WHERE EXISTS (SELECT 1 FROM data AS b WHERE b.secret LIKE 'SECRET-1%')",
    "WITH data AS (SELECT 'x' AS secret) SELECT secret FROM data",
    "SELECT * FROM (VALUES (1)) AS t(x)",
    "SELECT * FROM data AS a, data AS b, data AS c ORDER BY a.note",
    # statements that are not a query, or more than one
    "SUMMARIZE data",
    "DESCRIBE data",
    "SHOW TABLES",
    "EXPLAIN SELECT note FROM data",
    "EXPLAIN ANALYZE SELECT secret FROM data",
    "CALL pragma_version()",
    "PRAGMA show_tables",
    "PREPARE p AS SELECT secret FROM data",
    "EXECUTE p",
    "CREATE MACRO m(x) AS x",
    "CREATE TEMP TABLE t AS SELECT * FROM data",
    "SET VARIABLE x = 1",
    "SELECT getvariable('x') AS x",
    "SELECT getenv('HOME') AS h",
    "SELECT current_setting('home_directory') AS h",
    "SELECT current_setting('temp_directory') AS h",
    "LOAD 'httpfs'",
    "USE memory",
    "DETACH DATABASE memory",
    "SELECT note FROM data; SELECT 1",
    "SELECT note FROM data -- ; DROP VIEW data",
    "/*+ hint */ SELECT note FROM data",
    "SELECT note FROM data WHERE id = ?",
    "SELECT $1 AS x",
    # quoting and literals
    "SELECT $$S$$ || 'x' AS x",
    "SELECT e'\\x41' AS x",
    "SELECT note COLLATE nocase AS n FROM data",
    'SELECT "secret" FROM data',
    'SELECT "SECRET" FROM data',
    'SELECT "se""cret" FROM data',
    "SELECT note AS \"\u202e\u0000\" FROM data",
    "SELECT note AS \"\U0001f600\" FROM data WHERE note = '\u00e9'",
    # huge numbers and resource use
    "SELECT 99999999999999999999999999999999999999 * 99999999999999999999 AS x",
    "SELECT CAST(1e308 * 10 AS BIGINT) AS x",
    "SELECT note FROM data LIMIT 1e308",
    "SELECT note FROM data LIMIT -1",
    "SELECT note FROM data OFFSET 99999999999999999999999",
    "SELECT count(*) AS n FROM data AS a, data AS b, data AS c, data AS d",
    # errors that would quote a value
    "SELECT CAST(note AS INTEGER) AS n FROM data",
    "SELECT CAST(secret AS INTEGER) AS n FROM data",
    "SELECT TRY_CAST(secret AS INTEGER) AS n FROM data",
    "SELECT CAST(note AS DATE) AS n FROM data",
    "SELECT note::JSON AS j FROM data",
    "SELECT regexp_extract(note, '(') AS x FROM data",
    "SELECT strftime(note, '%Y') AS x FROM data",
    "SELECT [1, 2][note] AS x FROM data",
]


# Unbounded with the checker off (the engine would run it until the read's timeout): checked only.
CHECKED_ONLY = [
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT n FROM r",
]

# Results many times larger than their arguments: DuckDB builds a vector's strings outside its
# memory_limit, so each of these took gigabytes (the first killed the provider's process).
GROWING = [
    "SELECT length(repeat(note, 100000000)) AS x FROM data",
    "SELECT repeat('x', 2000000000) AS x",
    "SELECT repeat(note, age * 1000000) AS x FROM data",
    "SELECT lpad('x', 2000000000, 'y') AS x",
    "SELECT rpad(note, 1 + 2000000000) AS x FROM data",
    "SELECT replace(note, 'R', note) AS x FROM data",
    "SELECT replace(repeat(note, 100), 'R', repeat('x', 100)) AS x FROM data",
    "SELECT regexp_replace(note, '', '" + "x" * 101 + "', 'g') AS x FROM data",
    "SELECT concat(" + ", ".join(["repeat(note, 100)"] * 5) + ") AS x FROM data",
    "SELECT repeat([note], 1000000) AS x FROM data",
]


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
    space.state.put_asset(ASSET_ID, "parquet", path)
    return path


@pytest.mark.parametrize("checker", ["on", "off"])
def test_unusual_duckdb_syntax_reads_nothing_withheld(space: DataSpace, checker: str) -> None:
    folder = _asset(space).parent
    space.plane.check_sql = checker == "on"
    transfer = space.transfer(space.agreement(research_permission(NO_SECRET, ONLY_NH)))
    address = space.plane.issue_access(transfer)
    url = address.endpoint + "/query"
    key = space.consumers["alice"].key
    failures = []
    with httpx.Client(timeout=120) as client:
        for sql in QUERIES:
            headers = {"Authorization": f"DPoP {address.token}",
                       "DPoP": make_proof(key, "POST", url, address.token)}
            response = client.post(url, json={"sql": sql}, headers=headers)
            forbidden = (*FORBIDDEN, str(folder).encode())
            leaked = [token for token in forbidden if token in response.content]
            if leaked or response.status_code >= 500:
                failures.append((sql, response.status_code, leaked, response.text[:200]))
            if checker == "on" and "secret" in sql.lower() and "AS secret" not in sql and response.is_success:
                failures.append((sql, response.status_code, "accepted a query naming the withheld column"))
    assert not failures, failures


def test_results_cannot_grow_past_the_engines_memory_limit_nor_recurse(space: DataSpace) -> None:
    _asset(space)
    transfer = space.transfer(space.agreement(research_permission(NO_SECRET, ONLY_NH)))
    address = space.plane.issue_access(transfer)
    url = address.endpoint + "/query"
    key = space.consumers["alice"].key
    with httpx.Client(timeout=120) as client:
        for sql in CHECKED_ONLY + GROWING:
            headers = {"Authorization": f"DPoP {address.token}",
                       "DPoP": make_proof(key, "POST", url, address.token)}
            response = client.post(url, json={"sql": sql}, headers=headers)
            assert response.status_code == 403, (sql, response.status_code, response.text[:200])
            assert response.json()["code"] in ("result_growth", "recursive_query"), (sql, response.text[:200])
        bounded = ("SELECT lpad(note, 12, '.') AS a, replace(note, 'ROW', 'row') AS b, repeat('-', 3) AS c"
                   " FROM data")
        headers = {"Authorization": f"DPoP {address.token}",
                   "DPoP": make_proof(key, "POST", url, address.token)}
        response = client.post(url, json={"sql": bounded}, headers=headers)
        assert response.status_code == 200, response.text
        table = pa.ipc.open_stream(response.content).read_all()
        assert table.column("c").to_pylist()[0] == "---"
        assert all(value.startswith("row-NH-") for value in table.column("b").to_pylist())
