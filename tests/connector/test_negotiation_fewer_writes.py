"""One write where there were two: a delivered message and the peer's pid learnt from its answer
commit together, and a writer that planned from the row before cannot write the pid back away.
The correlation id and trace context a step gives its messages survive the outbox. And the
settings that switch the fast paths off and tracing on are checked like every other key."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from connector.config import ConfigError, config_from_mapping
from connector.identity import KeyPair
from connector.store import OutboundMessage, ProcessRecord, Store, new_pid
from connector.store.store import MAX_PEER_PID_CHARS

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def store(storage_urls: Callable[[str], str], tmp_path: Path) -> Store:
    created = Store(storage_urls("store"), data_root=tmp_path / "data")
    created.migrate()
    return created


def _requested(store: Store, role: str = "consumer") -> ProcessRecord:
    """Our first message is queued; the peer's pid is not known yet."""
    pid = new_pid()
    record = ProcessRecord(
        id=pid,
        kind="negotiation",
        role=role,
        state="REQUESTED",
        version=0,
        counterparty_id="did:web:p",
        counterparty_address="http://127.0.0.1:1/dsp",
        provider_pid=pid if role == "provider" else None,
        consumer_pid=pid if role == "consumer" else None,
    )
    message = OutboundMessage(
        "http://127.0.0.1:1/dsp/negotiations/request", "did:web:p", {"n": 1}, "urn:corr:1", TRACEPARENT
    )
    return store.create_process(record, outbox=[message])


def test_the_peer_pid_is_learnt_with_the_delivery_and_a_stale_writer_loses(store: Store) -> None:
    created = _requested(store)
    (item,) = store.claim_outbox("worker")
    # what the step stamped on the message comes back with it, also through the worker's claim
    assert (item.correlation_id, item.traceparent) == ("urn:corr:1", TRACEPARENT)
    ack = {"@type": "ContractNegotiation", "providerPid": "urn:uuid:p-1", "consumerPid": created.id}
    store.outbox_delivered(item.id, ack=ack)
    learnt = store.get_process(created.id)
    assert learnt is not None
    assert learnt.provider_pid == "urn:uuid:p-1"
    assert learnt.version == created.version + 1
    assert store.claim_outbox("worker", now=time.time() + 3600) == []  # delivered, in the same write
    # a step planned from the row before the pid was learnt would write it back to NULL: refused
    assert store.advance(created, "AGREED") is None
    # a later answer naming another pid changes nothing: the first one learnt stays
    second = _requested(store)
    (other,) = store.claim_outbox("worker")
    store.outbox_delivered(other.id, ack={"providerPid": "urn:uuid:p-2"})
    store.outbox_delivered(item.id, ack={"providerPid": "urn:uuid:evil"})
    again = store.get_process(created.id)
    assert again is not None
    assert again.provider_pid == "urn:uuid:p-1"
    assert (store.get_process(second.id) or created).provider_pid == "urn:uuid:p-2"


def test_a_provider_learns_the_consumer_pid_and_never_a_giant_or_foreign_one(store: Store) -> None:
    created = _requested(store, role="provider")
    (item,) = store.claim_outbox("worker")
    store.outbox_delivered(
        item.id,
        ack={"providerPid": "urn:uuid:not-ours", "consumerPid": "x" * (MAX_PEER_PID_CHARS + 1)},
    )
    unchanged = store.get_process(created.id)
    assert unchanged is not None
    # the provider's own pid is never taken from an answer, and an oversized pid is not learnt
    assert (unchanged.provider_pid, unchanged.consumer_pid) == (created.id, None)
    assert unchanged.version == created.version


def test_a_delivery_says_whether_its_process_has_a_message_behind_it(store: Store) -> None:
    """What lets a sender leave the outbox worker asleep: only a message queued behind the one
    delivered (the worker's to send), never one of another process, and never a stale lease."""
    created = _requested(store)
    behind = OutboundMessage("http://127.0.0.1:1/dsp/negotiations/x/events", "did:web:p", {"n": 2})
    advanced = store.advance(created, "REQUESTED", outbox=[behind])
    assert advanced is not None
    _requested(store)  # another process's message, pending meanwhile
    first, _other = store.claim_outbox("worker")
    assert first.process_id == created.id
    # a stale lease records nothing and reports nothing (its sender wakes the worker anyway)
    assert store.outbox_delivered_next(first.id, first.process_id, worker="stale") == (False, False)
    assert store.outbox_delivered_next(first.id, first.process_id, worker="worker") == (True, True)
    (second,) = [i for i in store.claim_outbox("worker") if i.process_id == created.id]
    assert store.outbox_delivered_next(second.id, second.process_id, worker="worker") == (True, False)


@pytest.mark.parametrize(
    ("section", "key", "value", "reason"),
    [
        ("tuning", "fast_paths", "no", "must be true or false"),
        ("observability", "tracing", 1, "must be true or false"),
        ("observability", "trace_exporter", "otlp", "must be one of none, console"),
        ("observability", "sampler", "always", "unknown key"),
    ],
)
def test_a_bad_tuning_or_tracing_setting_names_its_key(
    tmp_path: Path, section: str, key: str, value: object, reason: str
) -> None:
    KeyPair.generate().save(tmp_path / "k.pem")
    authority = KeyPair.generate()
    data = {
        "participant": {"id": "did:web:127.0.0.1%3A9", "key_file": "k.pem"},
        "storage": {"url": "sqlite:///c.db"},
        "authority": {"did": "did:web:127.0.0.1%3A8", "public_key_multibase": authority.public_multibase},
        "management": {"token": "t" * 32},
        section: {key: value},
    }
    with pytest.raises(ConfigError) as raised:
        config_from_mapping(data, tmp_path)
    assert raised.value.key == f"{section}.{key}"
    assert reason in raised.value.message


def test_copies_of_one_initial_request_make_one_provider_process(store: Store) -> None:
    """Copies of a consumer's initial request handled at once (each looked and found nothing):
    the look and the insert are one transaction, so one process is written and every copy
    answers with it - on PostgreSQL too, where two transactions would otherwise both insert."""
    from concurrent.futures import ThreadPoolExecutor

    def copy(_: int) -> str:
        pid = new_pid()
        record = ProcessRecord(
            id=pid, kind="negotiation", role="provider", state="REQUESTED", version=0,
            counterparty_id="did:web:consumer", counterparty_address="http://127.0.0.1:1/dsp",
            provider_pid=pid, consumer_pid="urn:uuid:one-request",
        )
        return store.create_process(record, once_per_consumer_pid=True).id

    with ThreadPoolExecutor(8) as pool:
        answered = set(pool.map(copy, range(16)))
    assert len(answered) == 1
    (only,) = answered
    found = store.find_provider_process("negotiation", "did:web:consumer", "urn:uuid:one-request")
    assert found is not None
    assert found.id == only
    # a transfer with the same consumer pid is another process
    other = store.create_process(
        ProcessRecord(
            id="urn:uuid:t", kind="transfer", role="provider", state="REQUESTED", version=0,
            counterparty_id="did:web:consumer", counterparty_address="http://127.0.0.1:1/dsp",
            provider_pid="urn:uuid:t", consumer_pid="urn:uuid:one-request",
        ),
        once_per_consumer_pid=True,
    )
    assert other.id == "urn:uuid:t"


def test_a_lease_renewal_meeting_a_settled_delivery_is_no_lost_lease(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """The worker renews the leases of what is being sent; one whose delivery was just recorded
    is not held any more, and that is not a lease another worker took (no warning, not lost)."""
    from connector.control.outbox import Lease, Outbox
    from connector.dsp_client import DspClient

    outbox = Outbox(store, DspClient("did:web:p", KeyPair.generate()))
    worker = outbox._worker_id
    _requested(store)
    _requested(store)
    first, second = store.claim_outbox(worker)
    settled, taken = Lease(first), Lease(second)
    settled.settling = True
    assert store.outbox_delivered(first.id, worker=worker)
    assert store.claim_outbox("other-worker", now=time.time() + 3600)  # the second's lease ran out
    outbox._leases.update({first.id: settled, second.id: taken})
    with caplog.at_level("WARNING", logger="connector.control.outbox"):
        outbox._renew_leases()
    assert not settled.lost
    assert taken.lost
    warned = [getattr(r, "outbox_id", None) for r in caplog.records if r.getMessage() == "outbox lease lost"]
    assert warned == [second.id]
