"""Our DSP 2025-1 contexts mean exactly what the official ones mean, message by message."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from rdflib.compare import isomorphic

from tests.conftest import CONFORMANCE_DIR
from tests.vocab_io.official_contexts import describe_difference, graph_with, official_loader
from vocab import jsonld

pytestmark = pytest.mark.conformance

DSP_DIR = Path("dsp") / "2025-1"
EXAMPLES = sorted(
    str(path.relative_to(CONFORMANCE_DIR / DSP_DIR / "examples"))
    for path in (CONFORMANCE_DIR / DSP_DIR / "examples").glob("**/*.json")
)
# A base IRI the messages do not use themselves: relative values (e.g. "leftOperand": "partner",
# which the DSP context leaves to @vocab resolution) resolve against it identically on both sides.
BASE = "https://connector.example/dsp/"


def official_dsp_loader(conformance_dir: Path):  # type: ignore[no-untyped-def]
    context_dir = conformance_dir / DSP_DIR / "context"
    return official_loader(
        {
            jsonld.DSP_CONTEXT: context_dir / "context.jsonld",
            jsonld.DSP_ODRL_PROFILE_CONTEXT: context_dir / "odrl-profile.jsonld",
        },
        # The DID examples also name the W3C DID v1 context, which the conformance data does not
        # hold: both sides use ours for it, so the comparison is about the DSP contexts only.
        fallback=jsonld.document_loader,
    )


@pytest.mark.parametrize("example", EXAMPLES)
def test_our_dsp_context_expands_every_official_example_to_the_official_graph(
    conformance_dir: Path, example: str
) -> None:
    document = json.loads((conformance_dir / DSP_DIR / "examples" / example).read_text(encoding="utf-8"))

    expected = graph_with(official_dsp_loader(conformance_dir), document, BASE)
    actual = jsonld.to_graph(document, base=BASE)

    assert isomorphic(expected, actual), f"{example}:\n{describe_difference(expected, actual)}"
    if "@context" in document:
        assert len(actual) > 0, f"{example} has a context but expanded to no triples"


def test_the_examples_are_there_to_compare(conformance_dir: Path) -> None:
    assert len(EXAMPLES) >= 20, "expected the official DSP 2025-1 example messages in the conformance data"


def test_expanding_messages_in_any_order_gives_the_same_graphs(conformance_dir: Path) -> None:
    """Cached contexts must not carry state from one message into the next."""
    paths = sorted((conformance_dir / DSP_DIR / "examples").glob("**/*.json"))
    documents = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in paths}
    first = {name: jsonld.to_graph(doc, base=BASE) for name, doc in documents.items()}
    order = list(documents)
    random.Random(2025).shuffle(order)
    for name in order:
        assert isomorphic(jsonld.to_graph(documents[name], base=BASE), first[name]), name


def test_a_document_importing_our_profile_cannot_change_it_for_later_documents(conformance_dir: Path) -> None:
    offer_message = json.loads(
        (conformance_dir / DSP_DIR / "examples" / "negotiation" / "contract-offer-message.json").read_text()
    )
    before = jsonld.to_graph(offer_message, base=BASE)
    hostile = {
        "@context": {"@version": 1.1, "@import": jsonld.DSP_ODRL_PROFILE_CONTEXT, "use": "https://evil.example/use"},
        "@id": "urn:x",
        "@type": "Offer",
        "permission": [{"action": "use"}],
    }
    hostile_graph = jsonld.to_graph(hostile, base=BASE)
    assert any("evil.example" in str(o) for o in hostile_graph.objects())

    after = jsonld.to_graph(offer_message, base=BASE)
    assert isomorphic(before, after)
    assert not any("evil.example" in str(o) for o in after.objects())
    profile_user = {
        "@context": jsonld.DSP_ODRL_PROFILE_CONTEXT,
        "@id": "urn:offer",
        "@type": "Offer",
        "permission": [{"action": "use"}],
    }
    actions = {str(o) for o in jsonld.to_graph(profile_user, base=BASE).objects()}
    assert "http://www.w3.org/ns/odrl/2/use" in actions
    assert not any("evil.example" in a for a in actions)


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_official_message_with_the_dsp_context_qualifies_for_the_fast_path(
    conformance_dir: Path, example: str
) -> None:
    document = json.loads((conformance_dir / DSP_DIR / "examples" / example).read_text(encoding="utf-8"))
    expected = document.get("@context") == [jsonld.DSP_CONTEXT]
    assert jsonld.is_dsp_compact(document) is expected


def test_concurrent_expansion_from_many_threads_gives_the_same_graphs(conformance_dir: Path) -> None:
    """A connector expands messages on several worker threads at once."""
    from concurrent.futures import ThreadPoolExecutor

    paths = sorted((conformance_dir / DSP_DIR / "examples").glob("**/*.json"))
    documents = [json.loads(p.read_text(encoding="utf-8")) for p in paths]
    expected = [jsonld.to_graph(doc, base=BASE) for doc in documents]
    work = [i for _round in range(4) for i in range(len(documents))]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda i: (i, jsonld.to_graph(documents[i], base=BASE)), work))
    for i, graph in results:
        assert isomorphic(graph, expected[i]), paths[i].name
