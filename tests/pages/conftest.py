"""A running data space for the page tests: catalogue node, provider and consumer connectors.

Built by the demo's own steps (the same commands and APIs a newcomer's ``sluis demo`` uses): the
seed catalogue is published, and the provider offers its dataset under the demo's usage policy.
Real servers on loopback, real storage in a temporary folder.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from connector.config import load_config
from sluis import demo


@dataclass(frozen=True)
class Space:
    files: demo.DemoSpace
    urls: demo.Endpoints
    provider_token: str
    consumer_token: str
    publisher_token: str

    @property
    def publisher(self) -> str:
        return demo.PROVIDER_PUBLISHER


@pytest.fixture(scope="package")
def space(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Space]:
    root: Path = tmp_path_factory.mktemp("pages-space")
    say = demo.Narrator(io.StringIO(), root)
    files = demo.set_up(root, say)
    with demo.serve_in_process(files, say) as urls:
        demo.publish_catalogue(files, urls, say)
        demo.offer_dataset(files, urls, say)
        assert not say.failures, say.failures
        yield Space(
            files,
            urls,
            load_config(files.provider_config).management.token,
            load_config(files.consumer_config).management.token,
            files.publisher_tokens[demo.PROVIDER_PUBLISHER],
        )
