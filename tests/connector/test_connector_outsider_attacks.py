"""An outside participant (its own did:web, key and membership) and a member holding a valid
agreement, attacking a running provider with the ids, addresses and URLs they choose.

Held here as regressions: naming another participant's process ids, callback addresses inside
the provider's network in every spelling, and URLs holding text no record can hold (U+0000,
which PostgreSQL refuses as a parameter: each store is exercised).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from connector.identity import issue_token
from tests.connector.dsp_world import Authority, running_party, wait_for_state
from tests.connector.plain_peer import pid, plain_peer
from tests.connector.test_connector_access_every_step import World, _finalized, _publish, _started


@dataclass
class Started:
    world: World
    agreement_id: str
    provider_pid: str
    consumer_pid: str


@pytest.fixture(scope="module")
def started(
    tmp_path_factory: pytest.TempPathFactory,
    authority: Authority,
    module_storage_urls: Callable[[str], str],
    dsp_examples: Path,
) -> Iterator[Started]:
    root = tmp_path_factory.mktemp("outsider")
    with (
        running_party(root, "provider", authority, module_storage_urls("provider")) as provider,
        plain_peer(root, authority, dsp_examples, "member") as member,
        plain_peer(root, authority, dsp_examples, "intruder") as intruder,
    ):
        world = World(provider, member, intruder)
        dataset_id, _ = _publish(provider, member.did)
        agreement_id = _finalized(world, dataset_id)
        provider_pid, consumer_pid, _ = _started(world, agreement_id)
        yield Started(world, agreement_id, provider_pid, consumer_pid)


def test_another_participants_process_ids_grant_nothing(started: Started) -> None:
    provider, intruder = started.world.provider, started.world.intruder
    ppid, cpid = started.provider_pid, started.consumer_pid
    for kind in ("suspension", "completion", "termination", "start"):
        message = intruder.transfer_message(kind, ppid, cpid)
        response = intruder.post(provider, f"/transfers/{ppid}/{kind}", message)
        assert response.status == 404, (kind, response.body)
    assert intruder.get(provider, f"/transfers/{ppid}").status == 404
    request = intruder.transfer_request(pid(), started.agreement_id)
    stolen = intruder.post(provider, "/transfers/request", request)
    assert stolen.status in (400, 404), stolen.body
    assert wait_for_state(provider, "transfers", ppid, "STARTED")["state"] == "STARTED"


INTERNAL_CALLBACKS = [
    "http://169.254.169.254/dsp",
    "http://[::ffff:169.254.169.254]/dsp",
    "http://[::ffff:a9fe:a9fe]/dsp",
    "http://2852039166/dsp",
    "http://0xa9fea9fe/dsp",
    "http://0251.0376.0251.0376/dsp",
    "http://10.0.0.1/dsp",
    "http://100.64.0.1/dsp",
    "http://[fc00::1]/dsp",
    "http://[fe80::1]/dsp",
    "http://0.0.0.0:1/dsp",
    "http://[::]:1/dsp",
    "http://metadata.google.internal/dsp",
    "http://127.0.0.1:1/dsp?next=http://169.254.169.254/",
    "http://user@127.0.0.1:1/dsp",
    "file:///etc/passwd",
]


def test_callbacks_inside_the_providers_network_are_refused(started: Started) -> None:
    provider, member = started.world.provider, started.world.member
    for callback in INTERNAL_CALLBACKS:
        body = {**member.transfer_request(pid(), started.agreement_id), "callbackAddress": callback}
        response = member.post(provider, "/transfers/request", body)
        assert response.status == 400, (callback, response.body)
        assert response.body is not None
        assert response.body["code"] == "callback-refused", (callback, response.body)


def test_urls_holding_u0000_name_nothing_and_are_not_500(started: Started) -> None:
    provider, member = started.world.provider, started.world.member
    token = issue_token(member.key, member.did, provider.did, member.credentials)
    dsp = {"Authorization": f"Bearer {token}"}
    completion = member.transfer_message("completion", "x", started.consumer_pid)
    with httpx.Client(base_url=provider.url, timeout=30) as client:
        for path in ("/dsp/negotiations/%00", "/dsp/transfers/%00", "/dsp/catalog/datasets/%00"):
            response = client.get(path, headers=dsp)
            assert response.status_code == 404, (path, response.text)
            assert response.json()["@type"].endswith("Error"), response.text
        posted = client.post("/dsp/transfers/%00/completion", json=completion, headers=dsp)
        assert posted.status_code == 404, posted.text
        management = {"Authorization": f"Bearer {provider.token}"}
        for path in (
            "/management/negotiations/%00",
            "/management/agreements/%00",
            "/management/transfers/%00",
            "/management/agreements?state=%00",
            "/data/obligations?agreement_id=%00",
        ):
            response = client.get(path, headers=management)
            assert response.status_code == (400 if "?" in path else 404), (path, response.text)
        suspended = client.post("/management/transfers/%00/suspend", json={}, headers=management)
        assert suspended.status_code == 404
        # the store still answers
        assert client.get("/management/agreements", headers=management).status_code == 200


def test_page_forms_holding_u0000_are_refused_not_500(started: Started) -> None:
    from tests.pages.test_pages_hostile import csrf_of, login

    provider = started.world.provider
    with login(provider.url, provider.token) as client:
        csrf = csrf_of(client, "/pages/offers")
        form = {"csrf": csrf, "id": "nul-offer", "asset": "a\x00b", "access": "", "action": "save"}
        response = client.post("/pages/offers", data=form)
        assert 400 <= response.status_code < 500, response.text[:300]
        csrf = csrf_of(client, "/pages/request")
        form = {"csrf": csrf, "dataset": "d\x00", "dsp": provider.dsp, "provider": "", "offer": "o",
                "purpose": "x", "compute_site": "y", "title": "t\x00"}
        response = client.post("/pages/request", data=form)
        assert 400 <= response.status_code < 500, response.text[:300]


def test_a_message_naming_another_participants_process_in_its_body_changes_nothing(started: Started) -> None:
    world = started.world
    provider, intruder = world.provider, world.intruder
    # the intruder has a process of its own, admitted by an offer made for it
    own = World(provider, intruder, world.member)
    dataset_id, _ = _publish(provider, intruder.did)
    own_ppid, _, _ = _started(own, _finalized(own, dataset_id))
    for kind in ("termination", "suspension", "completion"):
        body = intruder.transfer_message(kind, started.provider_pid, started.consumer_pid)
        response = intruder.post(provider, f"/transfers/{own_ppid}/{kind}", body)
        assert response.status in (400, 404), (kind, response.status, response.body)
        assert wait_for_state(provider, "transfers", started.provider_pid, "STARTED")["state"] == "STARTED"
    assert wait_for_state(provider, "transfers", own_ppid, "STARTED")["state"] == "STARTED"
