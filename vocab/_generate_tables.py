"""Generate ``vocab/skos/eu-*.ttl`` and ``vocab/skos/iana-media-types.txt`` from the EU tables.

Run by ``./dev vocab`` (``python -m vocab._generate_tables SHARED_DIR``), never at run time: the
node ships only what this writes. ``SHARED_DIR`` holds ``vocabularies/`` (copies of the EU
authority tables, the ADMS vocabularies and the IANA media-type registry, each described by
that folder's README) and ``conformance/healthdcat-ap/r8/vocabularies/`` (the DG SANTE health
vocabularies of HealthDCAT-AP Release 8).

For each concept scheme one Turtle file: the scheme with its version (``owl:versionInfo`` as
stated in the source), where it came from (``dct:source``: repository, commit and path as the
README gives them) and its licence statement; each concept typed ``skos:Concept`` plus the class
DCAT-AP's ranges expect of it (a file type is a ``dct:MediaTypeOrExtent``…: several source
copies carry no types), with ``skos:inScheme``, its code where it differs from the IRI's last
segment, ``owl:deprecated`` when the table deprecates it, and ``skos:prefLabel`` in each official
EU language (SKOS-XL labels are read as plain labels). To keep the files small, a label equal
to the English one is left out (readers fall back to English: ``vocab.authority``). The media
types are one ``type/subtype`` per line.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import OWL, RDF, SKOS

OUT = Path(__file__).resolve().parent / "skos"
SKOSXL = "http://www.w3.org/2008/05/skos-xl#"
DC_IDENTIFIER = URIRef("http://purl.org/dc/elements/1.1/identifier")
AUTHORITY_DEPRECATED = URIRef("http://publications.europa.eu/ontology/authority/deprecated")
# The official EU languages (labels in other languages are left out to keep the files small).
EU_LANGUAGES = frozenset(
    {"bg", "cs", "da", "de", "el", "en", "es", "et", "fi", "fr", "ga", "hr"}
    | {"hu", "it", "lt", "lv", "mt", "nl", "pl", "pt", "ro", "sk", "sl", "sv"}
)
DCT = "http://purl.org/dc/terms/"


@dataclass(frozen=True)
class Table:
    """One source file and what to write from it."""

    source: str
    """Path under the shared folder."""
    readme_key: str
    """The file name as the README's table names it."""
    output: str
    range_class: str | None = None
    """The class DCAT-AP's ranges expect of the table's concepts, added to each."""
    readme: str = "vocabularies/README.md"


def _eu(name: str, range_class: str | None = None, output: str | None = None) -> Table:
    stem = name.rsplit(".", 1)[0]
    return Table(
        f"vocabularies/controlled/{name}", name, output or f"{stem}.ttl", range_class and DCT + range_class
    )


def _health(name: str, output: str) -> Table:
    folder = "conformance/healthdcat-ap/r8"
    return Table(f"{folder}/vocabularies/{name}", name, output, readme=f"{folder}/README.md")


TABLES: tuple[Table, ...] = (
    _eu("eu-access-right.rdf", "RightsStatement"),
    _eu("eu-continent.rdf", "Location"),
    _eu("eu-country.rdf", "Location"),
    _eu("eu-data-theme.rdf"),
    _eu("eu-dataset-type.ttl"),
    _eu("eu-distribution-status.rdf"),
    _eu("eu-file-type.rdf", "MediaTypeOrExtent"),
    _eu("eu-frequency.rdf", "Frequency"),
    _eu("eu-hvd-category.rdf"),
    _eu("eu-language.rdf", "LinguisticSystem"),
    _eu("eu-licence.ttl", "LicenseDocument"),
    _eu("eu-place.rdf", "Location"),
    _eu("eu-planned-availability.ttl"),
    _eu("adms-skos-1.00.rdf", output="eu-adms.ttl"),
    _health("healthcategories.rdf", "hdeu-health-categories.ttl"),
    _health("publisher-type.rdf", "hdeu-publisher-types.ttl"),
)
MEDIA_TYPES = ("vocabularies/controlled/iana-media-types.ttl", "iana-media-types.ttl", "iana-media-types.txt")
MEDIA_TYPES_BASE = "https://www.w3.org/ns/iana/media-types/media-types.ttl"
REG_NAME = URIRef("https://www.w3.org/ns/assignments/reg#name")
_LOCAL = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")


def _readme_row(shared: Path, table: Table) -> tuple[str, str]:
    """(source, licence) as the README's table states them for this file."""
    readme = (shared / table.readme).read_text(encoding="utf-8")
    rows: dict[str, tuple[str, str]] = {}
    for line in readme.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 6 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = (cells[4].replace("`", ""), cells[5].replace("`", ""))
    commits = set(re.findall(r"\b[0-9a-f]{40}\b", readme))

    def resolve(text: str) -> str:
        # The README abbreviates a commit it gave in full earlier ("7425c177…"); spell it out.
        def full(match: re.Match[str]) -> str:
            found = [commit for commit in commits if commit.startswith(match.group(1))]
            return found[0] if len(found) == 1 else match.group(0)

        return re.sub(r"\b([0-9a-f]{7,39})…", full, text).replace(" (as above)", "")

    if table.readme_key in rows:
        source, licence = rows[table.readme_key]
        for _ in range(3):  # "As for eu-access-right.rdf": the licence of that row
            referred = re.fullmatch(r"As for (\S+)", licence)
            if not referred or referred.group(1) not in rows:
                break
            licence = rows[referred.group(1)][1]
        return resolve(source), resolve(licence)
    if "healthdcat-ap/r8" in table.readme:
        return (
            "HealthDCAT-AP Release 8 (code.europa.eu/healthdataeu/healthdcat-ap @ cd7841f, "
            "public/releases/release-8/, validator background data), as vendored by "
            "SemanticDataCharter/sdc_healthdcat_ap, data/healthdcat-ap-r8-cd7841f/",
            "CC BY 4.0, (c) European Union (DG SANTE, HealthData@EU)",
        )
    raise SystemExit(f"{table.readme_key} is not described in {table.readme}")


def _quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


def _labels(graph: Graph, concept: URIRef) -> dict[str, str]:
    found: dict[str, str] = {}
    values: list[Literal] = [v for v in graph.objects(concept, SKOS.prefLabel) if isinstance(v, Literal)]
    for xl in graph.objects(concept, URIRef(SKOSXL + "prefLabel")):
        values.extend(v for v in graph.objects(xl, URIRef(SKOSXL + "literalForm")) if isinstance(v, Literal))
    for value in sorted(values, key=str):
        language = (value.language or "").lower()
        if language in EU_LANGUAGES or (language == "" and "en" not in found):
            found.setdefault(language or "en", str(value).strip())
    return found


def _term(iri: str, prefix: str, prefixed: str) -> str:
    if iri.startswith(prefix) and _LOCAL.match(iri[len(prefix) :]):
        return f"{prefixed}:{iri[len(prefix) :]}"
    return f"<{iri}>"


def _scheme_block(graph: Graph, scheme: URIRef, table: Table, source: str, licence: str) -> list[str]:
    labels = _labels(graph, scheme) or {"en": str(scheme).rsplit("/", 1)[-1]}
    version = next((str(v) for v in graph.objects(scheme, OWL.versionInfo)), "not stated in the source")
    parts = [
        f"<{scheme}> a skos:ConceptScheme",
        "    skos:prefLabel " + ", ".join(f"{_quote(text)}@{lang}" for lang, text in sorted(labels.items())),
        f"    owl:versionInfo {_quote(version)}",
        f"    dct:source {_quote(source)}",
        f"    dct:rights {_quote(licence)}",
        f"    rdfs:comment {_quote('generated from ' + table.readme_key + ' by vocab/_generate_tables.py')}",
    ]
    return [" ;\n".join(parts) + " .", ""]


def _concept_block(graph: Graph, concept: URIRef, scheme: URIRef, table: Table) -> str:
    prefix = str(scheme) + "/"
    types = ["skos:Concept"] + ([f"<{table.range_class}>"] if table.range_class else [])
    parts = [f"{_term(str(concept), prefix, 'c')} a {', '.join(types)}", "    skos:inScheme s:"]
    segment = str(concept).rstrip("/").rsplit("/", 1)[-1]
    codes = sorted(
        {str(v).strip() for p in (SKOS.notation, DC_IDENTIFIER) for v in graph.objects(concept, p)}
        - {segment}
    )
    codes = [code for code in codes if code and len(code) <= 40 and "://" not in code]
    if codes:
        parts.append("    skos:notation " + ", ".join(_quote(code) for code in codes))
    deprecated = any(
        str(v).lower() == "true"
        for p in (AUTHORITY_DEPRECATED, OWL.deprecated)
        for v in graph.objects(concept, p)
    )
    if deprecated:
        parts.append("    owl:deprecated true")
    labels = _labels(graph, concept)
    english = labels.get("en")
    kept = {lang: text for lang, text in labels.items() if lang == "en" or text != english}
    if kept:
        parts.append(
            "    skos:prefLabel " + ", ".join(f"{_quote(text)}@{lang}" for lang, text in sorted(kept.items()))
        )
    return " ;\n".join(parts) + " ."


def _schemes(graph: Graph) -> dict[URIRef, list[URIRef]]:
    members: dict[URIRef, list[URIRef]] = {}
    for concept, scheme in graph.subject_objects(SKOS.inScheme):
        if isinstance(concept, URIRef) and isinstance(scheme, URIRef):
            members.setdefault(scheme, []).append(concept)
    for scheme in graph.subjects(RDF.type, SKOS.ConceptScheme):
        if isinstance(scheme, URIRef):
            members.setdefault(scheme, [])
    return {scheme: sorted(set(found)) for scheme, found in members.items() if found}


def generate_table(shared: Path, table: Table) -> str:
    path = shared / table.source
    graph = Graph()
    graph.parse(path, format="turtle" if path.suffix == ".ttl" else "xml")
    source, licence = _readme_row(shared, table)
    lines = [
        f"# {table.output}: generated by vocab/_generate_tables.py (./dev vocab) from {table.readme_key}.",
        "# Do not edit: regenerate. Source, version and licence are stated on each scheme below.",
        "",
        "@prefix skos: <http://www.w3.org/2004/02/skos/core#> .",
        "@prefix owl:  <http://www.w3.org/2002/07/owl#> .",
        "@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .",
        "@prefix dct:  <http://purl.org/dc/terms/> .",
        "",
    ]
    for scheme, concepts in sorted(_schemes(graph).items()):
        lines += [f"@prefix s: <{scheme}> .", f"@prefix c: <{scheme}/> .", ""]
        lines += _scheme_block(graph, scheme, table, source, licence)
        lines += [
            _concept_block(graph, concept, scheme, table)
            for concept in concepts
            if not isinstance(concept, BNode)
        ]
        lines.append("")
    return "\n".join(lines)


def generate_media_types(shared: Path) -> str:
    graph = Graph()
    graph.parse(shared / MEDIA_TYPES[0], format="turtle", publicID=MEDIA_TYPES_BASE)
    prefix = MEDIA_TYPES_BASE.rsplit("/", 1)[0] + "/"
    names = sorted(
        {
            str(subject).removeprefix(prefix).split("#", 1)[0].lower()
            for subject in graph.subjects(REG_NAME, None)
            if str(subject).startswith(prefix) and str(subject).count("/") == prefix.count("/") + 1
        }
    )
    table = Table(MEDIA_TYPES[0], MEDIA_TYPES[1], MEDIA_TYPES[2])
    source, licence = _readme_row(shared, table)
    updated = sorted(
        str(v) for v in graph.objects(None, URIRef("https://www.w3.org/ns/assignments/reg#updated"))
    )
    header = [
        f"# {MEDIA_TYPES[2]}: generated by vocab/_generate_tables.py (./dev vocab) from {MEDIA_TYPES[1]}.",
        f"# The IANA media-type registry (updated {updated[-1] if updated else 'date not stated'}),",
        "# one registered type/subtype a line.",
        f"# Source: {source}",
        f"# Licence: {licence}",
    ]
    return "\n".join(header + names) + "\n"


def generate(shared: Path, out: Path = OUT) -> list[Path]:
    written: list[Path] = []
    for table in TABLES:
        target = out / table.output
        target.write_text(generate_table(shared, table), encoding="utf-8")
        written.append(target)
    target = out / MEDIA_TYPES[2]
    target.write_text(generate_media_types(shared), encoding="utf-8")
    written.append(target)
    return written


def main(argv: Iterable[str] = ()) -> int:
    args = list(argv)
    if len(args) != 1 or not Path(args[0]).is_dir():
        print(
            "usage: python -m vocab._generate_tables SHARED_DIR  (the folder holding vocabularies/)",
            file=sys.stderr,
        )
        return 2
    for path in generate(Path(args[0])):
        print(f"{path.name}: {path.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
