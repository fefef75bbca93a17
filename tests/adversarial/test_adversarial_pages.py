"""Hostile publishers against the pages: a catalogue record names the provider's DSP endpoint,
and the consumer's request-access page contacts it. Whatever that host answers, the connector
reads a bounded amount of it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from connector.pages.request_access import MAX_DISCOVERY_BYTES, AccessError, discover_provider
from sluis.servers import free_port, serve_in_thread

CHUNK = 1024 * 1024
SENT_AT_MOST = 64 * CHUNK


@pytest.fixture
def endless_provider() -> Iterator[tuple[str, list[int]]]:
    """A 'provider' whose version document never ends (64 MiB), counting what it managed to send."""
    sent = [0]
    app = FastAPI()

    @app.get("/.well-known/dspace-version")
    def version() -> StreamingResponse:
        def body() -> Iterator[bytes]:
            yield b'{"protocolVersions": ["'
            while sent[0] < SENT_AT_MOST:
                sent[0] += CHUNK
                yield b"a" * CHUNK

        return StreamingResponse(body(), media_type="application/json")

    port = free_port()
    with serve_in_thread(app, port=port):
        yield f"http://127.0.0.1:{port}/dsp", sent


def test_a_huge_version_document_is_refused_after_the_limit_not_read_whole(
    endless_provider: tuple[str, list[int]],
) -> None:
    dsp, sent = endless_provider
    with pytest.raises(AccessError) as refused:
        discover_provider(dsp)
    assert refused.value.field == "dsp"
    assert str(MAX_DISCOVERY_BYTES) in refused.value.reason
    # the connector stopped reading: the server could not push the whole document into it
    assert sent[0] < SENT_AT_MOST // 2, sent[0]
