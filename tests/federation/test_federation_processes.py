"""Three catalogue nodes and two connectors as processes: A harvests B and C (and B again, by a
second path) plus misbehaving peers, C harvests both connectors' DSP catalogs (a
CatalogRequestMessage signed as C's did:web); the federation is searchable from A, updates and
deletions on B reach A, a tampered record is quarantined, bad peers are reported and stop
nothing."""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from catalogue.seed import seed_files
from catalogue.signing import load_node_key
from connector.config import load_config
from connector.identity import did_web_for
from sluis import demo
from sluis.demo import Narrator
from tests.federation.conftest import (
    PEER_TIMEOUT_SECONDS,
    BadPeer,
    Process,
    catalogue_process,
    free_port,
    sluis,
)

HARVEST_SECONDS = 120.0


@dataclass
class Federation:
    a: str
    b: str
    c: str
    operator: str
    c_operator: str
    b_publisher_token: str
    a_publisher_token: str
    peer: BadPeer


#: What each connector offers to anyone who asks (its access and contract policy permit use).
OPEN_POLICY = {"@id": "urn:sluis:test:open", "@type": "Offer", "permission": [{"action": "use"}]}


def _offer(base: str, config: Path, asset: str, title: str) -> None:
    token = load_config(config).management.token
    with httpx.Client(base_url=f"{base}/management", headers={"Authorization": f"Bearer {token}"}) as api:
        for path, body in (
            ("/assets", {"id": asset, "title": title, "data": {"kind": "parquet", "path": "x.parquet"}}),
            ("/policies", {"id": "open", "policy": OPEN_POLICY}),
            (
                "/contract-definitions",
                {
                    "id": "open",
                    "access_policy_id": "open",
                    "contract_policy_id": "open",
                    "asset_ids": [asset],
                },
            ),
        ):
            answer = api.post(path, json=body)
            assert answer.status_code == 201, answer.text


def _connectors(root: Path, stack: ExitStack) -> list[tuple[str, str]]:
    """Two connectors serving one open offer each; their (DSP base URL, DID)."""
    space = demo.set_up(root, Narrator(io.StringIO(), root))
    found = []
    for name, config, port, did in (
        ("provider", space.provider_config, space.provider_port, space.provider_did),
        ("consumer", space.consumer_config, space.consumer_port, space.consumer_did),
    ):
        base = f"http://127.0.0.1:{port}"
        argv = [sys.executable, "-m", "sluis.cli", "connector", "serve", "--config", str(config)]
        server = Process(name, argv, f"{base}/.well-known/dspace-version", root)
        stack.callback(server.stop)
        server.wait_ready()
        _offer(
            base, config, f"https://data.sluis.example/dataset/{name}-grid-load", f"Hourly grid load ({name})"
        )
        found.append((f"{base}/dsp", did))
    return found


def _init(data: Path, port: int) -> str:
    done = sluis("catalogue", "init", "--data", str(data), "--public-url", f"http://127.0.0.1:{port}")
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _publish(data: Path, files: list[Path]) -> None:
    done = sluis("catalogue", "publish", *map(str, files), "--data", str(data))
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    root = tmp_path_factory.mktemp("federation")
    ports = {name: free_port() for name in "abc"}
    url = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    operators = {name: _init(root / name, ports[name]) for name in "abc"}
    seeds = sorted(seed_files())
    b_seeds = [path for path in seeds if path.name.startswith("cbs-")]
    c_seeds = [path for path in seeds if path.name.startswith("elia-")]
    _publish(root / "b", b_seeds)
    _publish(root / "c", c_seeds)
    token = sluis(
        "catalogue",
        "token",
        "create",
        "--data",
        str(root / "b"),
        "--publisher",
        "https://data.sluis.example/agent/cbs",
    ).stdout.strip()
    b_key = load_node_key(root / "b").public_multibase
    b_did = did_web_for("127.0.0.1", ports["b"])
    a_token = sluis(
        "catalogue",
        "token",
        "create",
        "--data",
        str(root / "a"),
        "--publisher",
        "https://data.sluis.example/agent/eurostat",
    ).stdout.strip()
    with ExitStack() as stack:
        peer = stack.enter_context(BadPeer(url["b"]))
        _configure_a(root / "a", url, peer.url, b_did, b_key)
        with (root / "c" / "node.toml").open("a") as config:
            # Harvested by the scheduler inside `sluis catalogue serve`, with no request.
            config.write(
                f'\n[[sources]]\nid = "scheduled"\nurl = "{peer.url}/empty"\ninterval_seconds = 3600\n'
            )
            for number, (dsp, did) in enumerate(_connectors(root / "space", stack)):
                config.write(
                    f'\n[[sources]]\nid = "connector-{number}"\nkind = "dsp"\nurl = "{dsp}"\ndid = "{did}"\n'
                )
        servers = [catalogue_process(name, root / name, ports[name], root) for name in "abc"]
        for server in servers:
            stack.callback(server.stop)
        for server in servers:
            server.wait_ready()
        yield Federation(url["a"], url["b"], url["c"], operators["a"], operators["c"], token, a_token, peer)


def _configure_a(data: Path, url: dict[str, str], peer: str, b_did: str, b_key: str) -> None:
    config = data / "node.toml"
    text = config.read_text()
    sources = [
        ("b", f"{url['b']}/catalogue/catalog?page_size=2", b_did, True),
        ("b-again", f"{url['b']}/catalogue/catalog?page_size=50", None, False),
        ("c", f"{url['c']}/catalogue/catalog", None, True),
        ("tampered", f"{peer}/tampered/catalogue/catalog?page_size=50", b_did, False),
        ("loop", f"{peer}/loop", None, False),
        ("slow", f"{peer}/slow", None, False),
        ("held", f"{peer}/held", None, False),
        ("endless", f"{peer}/endless", None, False),
        ("garbage", f"{peer}/garbage", None, False),
        ("failing", f"{peer}/failing", None, False),
        ("elsewhere", f"{peer}/elsewhere", None, False),
    ]
    for source_id, source_url, did, incremental in sources:
        text += f'\n[[sources]]\nid = "{source_id}"\nurl = "{source_url}"\n'
        text += f'did = "{did}"\n' if did else ""
        text += "incremental = true\n" if incremental else ""
    text += f'\n[[trusted]]\ndid = "{b_did}"\nkeys = ["{b_key}"]\n'
    text += f"\n[limits]\ntimeout_seconds = {PEER_TIMEOUT_SECONDS}\ndeadline_seconds = 60.0\n"
    text += "max_pages = 50\nmax_records = 100\n"
    config.write_text(text)


def _harvest(fed: Federation, source: str, token: str, node: str | None = None) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {token}"}
    node = node or fed.a
    started = httpx.post(f"{node}/catalogue/sources/{source}/harvest", headers=auth, timeout=30)
    assert started.status_code == 202, started.text
    deadline = time.monotonic() + HARVEST_SECONDS
    while time.monotonic() < deadline:
        status = httpx.get(f"{node}/catalogue/sources/{source}", timeout=30).json()
        if status["status"] != "running":
            return dict(status)
        time.sleep(0.2)
    raise AssertionError(f"harvest of {source} did not end")


def _search(fed: Federation, **params: Any) -> dict[str, Any]:
    found = httpx.get(f"{fed.a}/catalogue/search", params={"page_size": 100, **params}, timeout=30)
    assert found.status_code == 200, found.text
    return dict(found.json())


def _titles(body: dict[str, Any]) -> set[str]:
    return {hit["title"] for hit in body["hits"]}


def test_the_federation_is_searchable_from_a_with_sources_and_trust(federation: Federation) -> None:
    fed = federation
    for connector in ("connector-0", "connector-1"):
        # The CLI asks the running node C (connectors resolve C's did:web while it runs).
        done = sluis("catalogue", "harvest", connector, "--url", fed.c, "--token", fed.c_operator)
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.startswith(f"{connector}\tdone\t"), done.stdout
        dsp = httpx.get(f"{fed.c}/catalogue/sources/{connector}", timeout=10).json()
        assert dsp["counts"]["records"] == 1, dsp
    b_status = _harvest(fed, "b", fed.operator)
    c_status = _harvest(fed, "c", fed.operator)
    assert b_status["status"] == "done", b_status
    assert c_status["status"] == "done", c_status
    assert b_status["counts"]["records"] == 5
    assert b_status["counts"]["trusted"] == 5
    assert b_status["last_run"]["counts"]["pages"] == 3  # page_size=2: Hydra paging followed
    everything = _search(fed)
    assert everything["total"] == 10  # five from B; three from C and the two connectors C harvested
    assert {"Hourly grid load (provider)", "Hourly grid load (consumer)"} <= _titles(everything)
    offered = [hit for hit in everything["hits"] if hit["title"].startswith("Hourly grid load")]
    assert all(hit["publisher"].startswith("did:web:127.0.0.1") for hit in offered)  # the connector
    for hit in everything["hits"]:
        (origin,) = hit["origins"]
        assert origin["source"] in ("b", "c")
        assert origin["harvested"]
        assert origin["trust"] == ("trusted" if origin["source"] == "b" else "untrusted")
    trust = {entry["code"]: entry["count"] for entry in everything["facets"]["trust"]}
    assert trust == {"trusted": 5, "untrusted": 5}
    assert _search(fed, trust="trusted")["total"] == 5

    # The same datasets reached by a second path: one record each, with both origins.
    again = _harvest(fed, "b-again", fed.operator)
    assert again["status"] == "done", again
    assert _search(fed)["total"] == 10
    hits = _search(fed, q="Netherlands")["hits"]
    assert hits
    assert all({o["source"] for o in hit["origins"]} == {"b", "b-again"} for hit in hits)
    for hit in hits:
        assert {o["source"]: o["trust"] for o in hit["origins"]} == {"b": "trusted", "b-again": "untrusted"}
    # The untrusted second path does not take the display from the trusted one, nor its facet.
    trust = {entry["code"]: entry["count"] for entry in _search(fed)["facets"]["trust"]}
    assert trust == {"trusted": 5, "untrusted": 5}

    # Nothing new on B: the incremental run stores nothing.
    quiet = _harvest(fed, "b", fed.operator)
    assert quiet["last_run"]["incremental"]
    assert quiet["last_run"]["counts"]["stored"] == 0

    # A's operator sees the same in its metrics
    from prometheus_client.parser import text_string_to_metric_families

    scraped = httpx.get(f"{fed.a}/metrics", timeout=30).text
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(scraped)
        for sample in family.samples
    }
    assert samples[("sluis_harvest_records", (("kind", "trusted"), ("source", "b")))] == 5
    assert samples[("sluis_harvest_last_run", (("count", "stored"), ("source", "b")))] == 0
    assert samples[("sluis_catalogue_records", ())] == 10
    assert httpx.get(f"{fed.a}/health/ready", timeout=30).status_code == 200


def test_a_tampered_record_is_quarantined_with_its_reason(federation: Federation) -> None:
    status = _harvest(federation, "tampered", federation.operator)
    held = {item["dataset"]: item["reason"] for item in status["quarantined"]}
    tampered = "https://data.sluis.example/dataset/cbs-renewable-energy"
    assert "proof does not verify" in held[tampered]
    # Records the tampering proxy serves but cannot show signed as B signed them are held back
    # too: nothing from it is shown as trusted unless B's key verifies it.
    assert status["counts"]["trusted"] + status["counts"]["quarantined"] == 5
    assert not any("Tampered" in hit["title"] for hit in _search(federation, q="energy")["hits"])


@pytest.mark.parametrize(
    ("source", "state", "said"),
    [
        ("loop", "capped", "page loop"),
        ("endless", "capped", "record cap"),
        ("slow", "failed", "did not answer"),
        ("garbage", "failed", "not readable"),
        ("failing", "failed", "HTTP 500"),
        ("elsewhere", "failed", "another host"),
    ],
)
def test_bad_peers_are_reported_and_stop_nothing(
    federation: Federation, source: str, state: str, said: str
) -> None:
    status = _harvest(federation, source, federation.operator)
    assert status["status"] == state, status
    assert said in (status["last_error"] or ""), status
    # A still answers search.
    assert _search(federation)["total"] >= 10


def test_local_publishing_and_search_go_on_while_a_peer_stalls_a_harvest(federation: Federation) -> None:
    fed = federation
    auth = {"Authorization": f"Bearer {fed.operator}"}
    # The held peer keeps the harvest running (it trickles bytes) until the test lets it go.
    assert httpx.post(f"{fed.a}/catalogue/sources/held/harvest", headers=auth, timeout=30).status_code == 202
    record = next(path for path in seed_files() if path.name == "eurostat-energy-balances.ttl")
    published = httpx.post(
        f"{fed.a}/catalogue/datasets",
        content=record.read_bytes(),
        headers={"Authorization": f"Bearer {fed.a_publisher_token}", "Content-Type": "text/turtle"},
        timeout=30,
    )
    assert published.status_code == 201, published.text
    (hit,) = _search(fed, q="energy balances", trust="local")["hits"]
    assert hit["origins"] == [{"source": "local", "harvested": "", "trust": "local"}]
    assert httpx.get(f"{fed.a}/catalogue/sources/held", timeout=10).json()["status"] == "running"
    fed.peer.release.set()
    deadline = time.monotonic() + HARVEST_SECONDS
    while httpx.get(f"{fed.a}/catalogue/sources/held", timeout=10).json()["status"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_sources_api_refuses_without_the_operator_token_and_names_bad_fields(federation: Federation) -> None:
    fed = federation
    body = {"id": "new", "url": f"{fed.c}/catalogue/catalog"}
    assert httpx.post(f"{fed.a}/catalogue/sources", json=body, timeout=10).status_code == 401
    wrong = httpx.post(
        f"{fed.a}/catalogue/sources", json=body, headers={"Authorization": "Bearer nope"}, timeout=10
    )
    assert wrong.status_code == 401
    auth = {"Authorization": f"Bearer {fed.operator}"}
    bad = httpx.post(
        f"{fed.a}/catalogue/sources", json={"id": "x", "url": "ftp://h/"}, headers=auth, timeout=10
    )
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "url"
    # A cloud metadata address is refused even on a node that may harvest loopback sources.
    metadata = httpx.post(
        f"{fed.a}/catalogue/sources",
        json={"id": "meta", "url": "http://169.254.169.254/latest/meta-data"},
        headers=auth,
        timeout=10,
    )
    assert metadata.status_code == 400, metadata.text
    assert metadata.json()["errors"][0]["field"] == "url"
    assert "link-local" in metadata.json()["errors"][0]["reason"]
    made = httpx.post(f"{fed.a}/catalogue/sources", json=body, headers=auth, timeout=10)
    assert made.status_code == 201
    assert made.json()["status"] == "never harvested"
    assert httpx.get(f"{fed.a}/catalogue/sources/nope", timeout=10).status_code == 404
    did = httpx.get(f"{fed.a}/.well-known/did.json", timeout=10).json()
    assert did["id"].startswith("did:web:127.0.0.1%3A")


def test_updates_and_deletions_on_b_reach_a_at_the_next_harvest(federation: Federation) -> None:
    fed = federation
    publisher = {"Authorization": f"Bearer {fed.b_publisher_token}"}
    record = httpx.get(f"{fed.b}/catalogue/search", params={"q": "Renewable"}, timeout=10).json()["hits"][0]
    turtle = httpx.get(f"{fed.b}/catalogue/datasets/{record['id']}.ttl", timeout=10).text
    changed = turtle.replace("Renewable energy in the Netherlands", "Renewable power in the Netherlands")
    replaced = httpx.put(
        f"{fed.b}/catalogue/datasets/{record['id']}",
        content=changed.encode(),
        headers={**publisher, "Content-Type": "text/turtle"},
        timeout=30,
    )
    assert replaced.status_code == 200, replaced.text
    gone = httpx.get(f"{fed.b}/catalogue/search", params={"q": "hospital"}, timeout=10).json()["hits"][0]
    assert (
        httpx.delete(f"{fed.b}/catalogue/datasets/{gone['id']}", headers=publisher, timeout=30).status_code
        == 200
    )

    status = _harvest(fed, "b", fed.operator)
    assert status["status"] == "done", status
    assert "Renewable power in the Netherlands" in {
        hit["title"].split(":")[0] for hit in _search(fed, q="Netherlands")["hits"]
    }
    # Other sources (b-again, and the proxy in front of B) held it too: it stays until every
    # source that listed it has been harvested again.
    assert gone["dataset"] in {hit["dataset"] for hit in _search(fed, q="hospital")["hits"]}
    _harvest(fed, "b-again", fed.operator)
    _harvest(fed, "tampered", fed.operator)
    assert gone["dataset"] not in {hit["dataset"] for hit in _search(fed, q="hospital")["hits"]}


def test_a_serving_node_harvests_its_sources_on_schedule(federation: Federation) -> None:
    deadline = time.monotonic() + HARVEST_SECONDS
    while True:
        status = httpx.get(f"{federation.c}/catalogue/sources/scheduled", timeout=10).json()
        if status["status"] == "done":
            break
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
    assert status["last_run"]["counts"]["pages"] == 1
