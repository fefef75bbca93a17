"""A callback host that answers one byte at a time cannot hold an outbox sender past the
exchange's deadline (the read timeout alone applies per read: it would hold it indefinitely).

The trickling host would take far longer than the deadline to finish its answer; what is
asserted is that the client hung up before the host got to the end, and said why.
"""

from __future__ import annotations

import pytest

from connector.dsp_client import DspClient, DspClientError
from connector.identity import KeyPair, did_web_for
from tests.identity.test_did_resolution_deadline import PADDING_BYTES, SECONDS_PER_BYTE, trickling_host


def test_a_callback_trickling_its_answer_is_cut_off_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("connector.dsp_client.REQUEST_DEADLINE_SECONDS", 0.5, raising=False)
    key = KeyPair.generate()
    client = DspClient(did_web_for("127.0.0.1", 1), key)
    with trickling_host() as host:
        try:
            with pytest.raises(DspClientError) as refused:
                client.post(f"http://127.0.0.1:{host.port}/dsp/negotiations/x/events", "did:web:peer", {})
        finally:
            client.close()
        assert "no complete answer within" in str(refused.value)
        assert host.done.wait(PADDING_BYTES * SECONDS_PER_BYTE * 4)
        assert host.cut_off == 1
        assert host.finished == 0
