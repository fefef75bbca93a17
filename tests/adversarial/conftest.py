"""The worlds the adversarial tests attack: real connectors and a catalogue on loopback.

They are the robustness suite's worlds (made the way a user makes them, with a real agreement
and a started transfer), built once per module here so an attack that changes state cannot
spoil another module's.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.robustness.worlds import ConnectorWorld, connector_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConnectorWorld]:
    with connector_world(tmp_path_factory.mktemp("adversarial")) as made:
        yield made
