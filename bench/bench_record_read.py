"""What one anonymous read of a large record costs: the rdflib path it replaced against ``render``.

Publishes (in process) a record of 45,000 keywords and one of 1,000 distributions, then renders
each in every RDF syntax the way reads used to (rdflib parse of the stored N-Triples, rdflib
serialiser) and the way :mod:`catalogue.render` does (Oxigraph's parser and writers, cached per
version), plus the dataset page's view (full rdflib graph against the bounded part). Prints CPU
seconds (this process) beside wall clock, and the ratio; asserts nothing.

Usage: ``python bench/bench_record_read.py [--keywords N]``.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from catalogue import validation  # noqa: E402
from catalogue.api import open_node  # noqa: E402
from catalogue.config import CatalogueConfig  # noqa: E402
from catalogue.pages.bounded import bounded_record  # noqa: E402
from catalogue.pages.record import view  # noqa: E402
from catalogue.publish import record_graph_of  # noqa: E402
from catalogue.render import RecordRenderer  # noqa: E402
from catalogue.store import RecordVersion  # noqa: E402
from tests.catalogue.catalogue_records import EU, PUBLISHER, dataset_iri, dataset_turtle  # noqa: E402
from vocab.jsonld import DCAT_AP_CONTEXT  # noqa: E402
from vocab.namespaces import bind_prefixes  # noqa: E402
from vocab.rdfio import JSON_LD, N_TRIPLES, RDF_XML, TURTLE, serialize  # noqa: E402


def measure(work: Callable[[], Any]) -> tuple[float, float]:
    gc.collect()  # the previous figure's garbage is not this one's cost
    cpu, wall = time.process_time(), time.perf_counter()
    work()
    return time.process_time() - cpu, time.perf_counter() - wall


def distributions(count: int) -> str:
    iri = dataset_iri("parts")
    links = " , ".join(f"<{iri}/d{n}>" for n in range(count - 1))
    rows = "".join(
        f'<{iri}/d{n}> a dcat:Distribution ; dct:title "Part {n}"@en ; '
        f"dcat:accessURL <https://files.example.eu/parts/{n}.csv> ; "
        f"dct:format <{EU}file-type/CSV> .\n"
        for n in range(count - 1)
    )
    return dataset_turtle("parts", extra=f", {links}") + rows


def old_body(node: Any, record: RecordVersion, media_type: str) -> bytes:
    graph = record_graph_of(record, with_quality=False) + node.publisher.quality_graph(record)
    bind_prefixes(graph)
    if media_type == JSON_LD:
        return serialize(graph, JSON_LD, DCAT_AP_CONTEXT)
    return serialize(graph, media_type)


def old_page(record: RecordVersion) -> None:
    validation.validate_record(record_graph_of(record, with_quality=False))
    graph_view = record_graph_of(record, with_quality=False)  # the old view parsed it again
    del graph_view


def new_page(record: RecordVersion) -> None:
    shown = bounded_record(record)
    view(record, validation.validate_record(shown.graph), "en", shown)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keywords", type=int, default=45_000)
    parser.add_argument("--quick", action="store_true", help="5,000 keywords (./dev bench --quick)")
    args = parser.parse_args()
    if args.quick:
        args.keywords = min(args.keywords, 5_000)
    node = open_node(Path(tempfile.mkdtemp()), CatalogueConfig(public_url="http://127.0.0.1:1"))
    bodies = {
        f"{args.keywords} keywords": dataset_turtle(
            "words", keywords=tuple(f"word {n}" for n in range(args.keywords))
        ),
        "1000 distributions": distributions(1000),
    }
    warm = node.publisher.publish(dataset_turtle("warm").encode(), TURTLE, owner=PUBLISHER, strict=False)
    warm_record = node.store.current(warm.record_id)
    assert warm_record is not None
    new_page(warm_record)  # loads the labels and shapes once, outside the figures
    print(f"{'record':<20} {'read':<22} {'before cpu/wall s':>18} {'after cpu/wall s':>18} {'ratio':>7}")
    for name, body in bodies.items():
        outcome = node.publisher.publish(body.encode(), TURTLE, owner=PUBLISHER, strict=False)
        record = node.store.current(outcome.record_id)
        assert record is not None
        renderer = RecordRenderer(node.publisher.quality_graph)
        rows: list[tuple[str, Callable[[], Any], Callable[[], Any]]] = []
        for media_type in (TURTLE, N_TRIPLES, RDF_XML, JSON_LD):
            rows.append(
                (
                    media_type,
                    lambda m=media_type, r=record: old_body(node, r, m),  # type: ignore[misc]
                    lambda m=media_type, r=record, w=renderer: w.body(r, m),  # type: ignore[misc]
                )
            )
        # before: at least the two full parses and the validation the page used to do
        rows.append(("HTML page", lambda r=record: old_page(r), lambda r=record: new_page(r)))  # type: ignore[misc]
        for label, before, after in rows:
            old_cpu, old_wall = measure(before)
            new_cpu, new_wall = measure(after)
            ratio = old_cpu / new_cpu if new_cpu else float("inf")
            print(
                f"{name:<20} {label:<22} {old_cpu:>8.2f}/{old_wall:<8.2f} {new_cpu:>8.2f}/{new_wall:<8.2f} "
                f"{ratio:>6.1f}x"
            )
        repeat_cpu, repeat_wall = measure(lambda r=record, w=renderer: w.body(r, TURTLE))  # type: ignore[misc]
        print(f"{name:<20} {'Turtle, repeated':<22} {'':>18} {repeat_cpu:>8.4f}/{repeat_wall:<8.4f}")


if __name__ == "__main__":
    main()
