"""Each source's version of a dataset, and which one the catalogue shows.

A harvested record's identity is (source, dataset IRI). Every source's version of a dataset is
kept as that source served it, as text under its own name in the store
(``urn:sluis:source:{source}:dataset:{id}``, one literal in ``urn:sluis:source-copies``, with no
history or index row; text, so SPARQL over the union of graphs never sees a hidden version),
so a source's copy survives whatever another source does with the same dataset.

Search shows a dataset once: the catalogue's record for the dataset IRI carries exactly one of
those versions (its ``sluis:source`` names which) and its trust facet is *that* version's
trust, so an untrusted source's content is never shown as trusted, nor the other way round.
Which version is shown, deterministically:

* a record published on this node is never replaced by a harvested version;
* a trusted version outranks an untrusted one;
* among versions of equal trust, the one that changed last is shown (a source whose content
  changes takes the display), and when the shown source drops the dataset, the most recently
  harvested of the others takes its place (its graph is read back and goes through the
  pipeline again); with none left, the record is retracted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from catalogue.harvest.ledger import Origin
from catalogue.index import TRUST_TRUSTED, TRUST_UNTRUSTED
from catalogue.publish import record_id_for

SOURCE_IRI_PREFIX = "urn:sluis:source:"
_RANK = {TRUST_TRUSTED: 2, TRUST_UNTRUSTED: 1}


@runtime_checkable
class SourceGraphs(Protocol):
    """What both record stores offer for the sources' copies, kept apart from the records."""

    def replace_source_copies(self, graphs: Mapping[str, str]) -> None: ...

    def source_copy(self, name: str) -> list[str]: ...


def source_graph(source_id: str, dataset: str) -> str:
    """The name under which ``source_id``'s copy of ``dataset`` is kept."""
    return f"{SOURCE_IRI_PREFIX}{source_id}:dataset:{record_id_for(dataset)}"


def source_id_of(source_iri: str) -> str | None:
    """The source id a record's ``sluis:source`` names, or None for anything else."""
    return source_iri.removeprefix(SOURCE_IRI_PREFIX) if source_iri.startswith(SOURCE_IRI_PREFIX) else None


def rank(trust: str) -> int:
    return _RANK.get(trust, 0)


def takes_display(trust: str, shown: Origin | None) -> bool:
    """Whether a version that just changed, judged ``trust``, replaces the shown one."""
    return shown is None or rank(trust) >= rank(shown.trust)


def successor(origins: Sequence[Origin]) -> Origin | None:
    """The version to show when the shown one is gone: best trust, then latest harvested."""
    if not origins:
        return None
    return max(origins, key=lambda origin: (rank(origin.trust), origin.harvested, origin.source))
