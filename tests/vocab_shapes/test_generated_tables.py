"""The shipped EU tables are exactly what the generator makes from the EU sources (nothing edited by hand)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from tests.conftest import CONFORMANCE_DIR
from vocab._generate_tables import MEDIA_TYPES, TABLES, generate

SHARED = CONFORMANCE_DIR.parent


def test_regenerating_the_tables_gives_the_shipped_files(tmp_path: Path) -> None:
    if not (SHARED / "vocabularies" / "README.md").is_file():
        pytest.skip(
            f"the EU vocabulary sources are not at {SHARED / 'vocabularies'} (beside the conformance data)"
        )
    written = generate(SHARED, tmp_path)
    assert {path.name for path in written} == {table.output for table in TABLES} | {MEDIA_TYPES[2]}
    shipped = resources.files("vocab").joinpath("skos")
    for path in written:
        assert path.read_bytes() == shipped.joinpath(path.name).read_bytes(), path.name
