"""One catalogue node and one provider/consumer pair for the whole robustness suite.

They are shared (starting them is most of the suite's cost); every test that writes checks a
snapshot before and after, so one test's accepted write never hides another's half-write.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.robustness.worlds import CatalogueWorld, ConnectorWorld, catalogue_world, connector_world


@pytest.fixture(scope="session")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CatalogueWorld]:
    with catalogue_world(tmp_path_factory.mktemp("robust-catalogue")) as world:
        yield world


@pytest.fixture(scope="session")
def connectors(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConnectorWorld]:
    with connector_world(tmp_path_factory.mktemp("robust-connectors")) as world:
        yield world
