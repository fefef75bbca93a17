"""Generated catalogue records for the scale benchmark, varied the way Europe's metadata is.

Why not copies of one record: search cost depends on how words, languages and facet values are
distributed (a word most records hold, a publisher that publishes half the catalogue), and a
store's size on how many distinct terms it holds. So the records here are drawn from real
distributions:

* **words** — the labels of the EU controlled vocabularies shipped in ``vocab/skos`` (data
  themes, high-value-dataset categories, countries, languages, frequencies, places…), which are
  real words in every EU language, plus the titles and descriptions of the real-world corpus
  (``../shared/corpus/dcat-real``) when it is there; each language's words are drawn with a Zipf
  frequency (rank r has weight 1/r), as words in real metadata are;
* **languages** — a record is written in its publisher's country's language, often with an English
  translation, sometimes a third language (12 EU languages);
* **publishers** — the publishers named in the real corpus (their IRIs and names), the national
  statistics offices of the member states, and per country a few hundred public bodies named from
  the country's places (municipalities, regions) in the country's language; drawn with a Zipf
  frequency, so a few publish a lot. There is no table of EU corporate bodies under
  ``../shared/vocabularies``, hence this mix;
* **themes, formats, licences, access rights, places** — codes of the EU tables, skewed (CSV, PDF
  and XLSX far more common than GRID_ASCII), 1–3 themes, 1–n distributions (mostly 1–3, a few
  with dozens). No health records: a record with HealthDCAT-AP categories must carry the
  health-data-access-body details of Release 8, which the generator does not make, and every
  generated record is meant to pass validation.

Records come out as facts (:class:`Facts`), rendered as Turtle for the validated pipeline or as
N-Triples plus the index row the indexer makes of them for the bulk loader.
"""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pyoxigraph as ox

from catalogue.index import IndexRow

REPO = Path(__file__).resolve().parent.parent
SKOS_DIR = REPO / "vocab" / "skos"
CORPUS_DIR = REPO.parent / "shared" / "corpus" / "dcat-real"

EU = "http://publications.europa.eu/resource/authority/"
HEALTH_CATEGORY = "https://hdeu-dcat.data.health.europa.eu/resource/authority/healthcategories/"
EHDS = "http://data.europa.eu/eli/reg/2025/327/oj"
PREF_LABEL = "http://www.w3.org/2004/02/skos/core#prefLabel"

# Country (EU country table code) -> language of its records, and what a municipality is called.
COUNTRIES: dict[str, tuple[str, str]] = {
    "DEU": ("de", "Stadt"),
    "FRA": ("fr", "Ville de"),
    "ITA": ("it", "Comune di"),
    "ESP": ("es", "Ayuntamiento de"),
    "NLD": ("nl", "Gemeente"),
    "POL": ("pl", "Urząd Miasta"),
    "SWE": ("sv", "Kommun"),
    "DNK": ("da", "Kommune"),
    "FIN": ("fi", "Kaupunki"),
    "PRT": ("pt", "Câmara Municipal de"),
    "CZE": ("cs", "Město"),
    "AUT": ("de", "Gemeinde"),
    "BEL": ("nl", "Stad"),
    "IRL": ("en", "County Council of"),
}
# Weight of each country in the catalogue (the larger portals publish more).
COUNTRY_WEIGHTS = [20, 18, 14, 12, 9, 6, 5, 4, 4, 3, 3, 3, 3, 2]
STATISTICS_OFFICES: dict[str, str] = {
    "DEU": "Statistisches Bundesamt",
    "FRA": "Institut national de la statistique et des études économiques",
    "ITA": "Istituto Nazionale di Statistica",
    "ESP": "Instituto Nacional de Estadística",
    "NLD": "Centraal Bureau voor de Statistiek",
    "POL": "Główny Urząd Statystyczny",
    "SWE": "Statistiska centralbyrån",
    "DNK": "Danmarks Statistik",
    "FIN": "Tilastokeskus",
    "PRT": "Instituto Nacional de Estatística",
    "CZE": "Český statistický úřad",
    "AUT": "Statistik Austria",
    "BEL": "Statbel",
    "IRL": "Central Statistics Office",
}
THEMES = [
    "AGRI",
    "ECON",
    "EDUC",
    "ENER",
    "ENVI",
    "GOVE",
    "HEAL",
    "INTR",
    "JUST",
    "REGI",
    "SOCI",
    "TECH",
    "TRAN",
]
THEME_WEIGHTS = [6, 10, 5, 5, 14, 16, 6, 2, 3, 12, 9, 4, 8]
# The commonest file types first; the tail of the EU table follows with small weights.
FORMATS = [
    "CSV", "PDF", "XLSX", "JSON", "XML", "HTML", "ZIP", "XLS", "GEOJSON", "SHP", "WMS_SRVC",
    "RDF_XML", "RDF_TURTLE", "PARQUET", "TXT", "DOCX", "ODS", "GML", "KML", "GRID_ASCII", "TIFF",
    "JSON_LD", "NETCDF", "GPKG", "SPARQLQ",
]  # fmt: skip
LICENCES = [
    "CC_BY_4_0",
    "CC0",
    "CC_BYSA_4_0",
    "ODC_BY",
    "EUPL_1_2",
    "DL_DE_BY_2_0",
    "IODL_2_0",
    "OGL_ROU_1_0",
]
LICENCE_WEIGHTS = [40, 25, 8, 4, 3, 10, 6, 4]
ACCESS = ["PUBLIC", "RESTRICTED", "NON_PUBLIC"]
ACCESS_WEIGHTS = [85, 10, 5]
HEALTH_CATEGORIES = ["EHRS", "MRMR", "HGPD", "PHDR", "HRAD"]
BANDS = ["excellent", "good", "sufficient", "bad"]
LANGUAGE_CODES = {
    "en": "ENG", "de": "DEU", "fr": "FRA", "it": "ITA", "es": "SPA", "nl": "NLD", "pl": "POL",
    "sv": "SWE", "da": "DAN", "fi": "FIN", "pt": "POR", "cs": "CES",
}  # fmt: skip
_WORD = re.compile(r"[^\W\d_]{3,}", re.UNICODE)


@dataclass(frozen=True)
class Publisher:
    iri: str
    name: str
    country: str


@dataclass(frozen=True)
class Facts:
    """One generated record: what both renderings and the index row are made from."""

    n: int
    iri: str
    publisher: Publisher
    texts: dict[str, tuple[str, str]]
    """Language -> (title, description); the first is the publisher's language."""
    keywords: tuple[tuple[str, str], ...]
    """(keyword, language)."""
    themes: tuple[str, ...]
    country: str
    place: str | None
    access: str
    health: tuple[str, ...]
    issued: str
    modified: str
    distributions: tuple[tuple[str, str, int], ...]
    """(file type code, licence code, byte size)."""
    quality_total: int
    quality_band: str


class Vocabulary:
    """Per language, the words to draw and their cumulative Zipf weights."""

    def __init__(self, words: dict[str, list[str]]) -> None:
        self.words = words
        self.cumulative = {
            language: list(itertools.accumulate(1 / (rank + 1) for rank in range(len(found))))
            for language, found in words.items()
        }

    def draw(self, rng: random.Random, language: str, count: int) -> list[str]:
        return rng.choices(self.words[language], cum_weights=self.cumulative[language], k=count)

    def common(self, language: str, count: int) -> list[str]:
        """The most frequent words of a language (searched for in the "common words" figure)."""
        return self.words[language][:count]


def _labels(path: Path) -> list[tuple[str, str, str]]:
    """(subject, language, label) of every ``skos:prefLabel`` in a shipped table."""
    found = []
    for quad in ox.parse(path=str(path), format=ox.RdfFormat.TURTLE):
        value = quad.object
        if quad.predicate.value == PREF_LABEL and isinstance(value, ox.Literal) and value.language:
            found.append((str(quad.subject.value), value.language.lower(), value.value))
    return found


def _corpus_texts() -> list[tuple[str, str]]:
    """(language, text) of the real corpus's titles, descriptions and keywords, when present."""
    found: list[tuple[str, str]] = []
    if not CORPUS_DIR.is_dir():
        return found
    wanted = {
        "http://purl.org/dc/terms/title",
        "http://purl.org/dc/terms/description",
        "http://www.w3.org/ns/dcat#keyword",
    }
    for path in sorted(CORPUS_DIR.glob("*/*.ttl")):
        try:
            quads = list(ox.parse(path=str(path), format=ox.RdfFormat.TURTLE))
        except (SyntaxError, ValueError, OSError):
            continue
        for quad in quads:
            value = quad.object
            if quad.predicate.value in wanted and isinstance(value, ox.Literal) and value.language:
                found.append((value.language.lower()[:2], value.value))
    return found


def _corpus_publishers() -> list[Publisher]:
    """Publishers named by IRI (with a name) in the real corpus."""
    if not CORPUS_DIR.is_dir():
        return []
    names: dict[str, str] = {}
    publishers: set[str] = set()
    for path in sorted(CORPUS_DIR.glob("*/*.ttl")):
        try:
            quads = list(ox.parse(path=str(path), format=ox.RdfFormat.TURTLE))
        except (SyntaxError, ValueError, OSError):
            continue
        for quad in quads:
            predicate, value = quad.predicate.value, quad.object
            if predicate == "http://purl.org/dc/terms/publisher" and isinstance(value, ox.NamedNode):
                publishers.add(value.value)
            elif (
                predicate in ("http://xmlns.com/foaf/0.1/name", PREF_LABEL)
                and isinstance(value, ox.Literal)
                and isinstance(quad.subject, ox.NamedNode)
            ):
                names.setdefault(quad.subject.value, value.value)
    return [
        Publisher(iri, names[iri], "")
        for iri in sorted(publishers)
        if iri in names and iri.startswith("http")
    ]


def load_vocabulary() -> Vocabulary:
    """Words of every benchmark language from the EU tables' labels (and the corpus, if present)."""
    texts: list[tuple[str, str]] = []
    for table in ("eu-data-theme", "eu-hvd-category", "eu-frequency", "eu-access-right", "eu-dataset-type",
                  "eu-distribution-status", "eu-country", "eu-language", "eu-licence"):  # fmt: skip
        texts += [(language, label) for _, language, label in _labels(SKOS_DIR / f"{table}.ttl")]
    texts += _corpus_texts()
    # Place names in each language (titles name where the data is about), after the common words.
    texts += [(language, label) for _, language, label in _labels(SKOS_DIR / "eu-place.ttl")]
    counts: dict[str, dict[str, int]] = {language: {} for language in LANGUAGE_CODES}
    for language, text in texts:
        bucket = counts.get(language)
        if bucket is not None:
            for word in _WORD.findall(text.lower()):
                bucket[word] = bucket.get(word, 0) + 1
    rng = random.Random(11)
    words: dict[str, list[str]] = {}
    for language, bucket in counts.items():
        # Frequent words of the sources first, then the rest in a fixed random order.
        ranked = sorted(bucket, key=lambda word: (-bucket[word], word))
        head, tail = ranked[:200], ranked[200:]
        rng.shuffle(tail)
        words[language] = head + tail
    return Vocabulary(words)


def load_publishers(rng: random.Random, per_country: int = 300) -> list[Publisher]:
    """Corpus publishers, statistics offices and generated public bodies, most prolific first."""
    places: dict[str, list[str]] = {}
    for subject, language, label in _labels(SKOS_DIR / "eu-place.ttl"):
        code = subject.rsplit("/", 1)[1]
        country = code[:3]
        if country in COUNTRIES and language in (COUNTRIES[country][0], "en"):
            places.setdefault(country, []).append(label)
    publishers = [
        Publisher(f"https://data.example.eu/org/{code.lower()}/statistics", name, code)
        for code, name in STATISTICS_OFFICES.items()
    ]
    publishers += [Publisher(p.iri, p.name, rng.choice(list(COUNTRIES))) for p in _corpus_publishers()]
    for code, (_, prefix) in COUNTRIES.items():
        names = sorted(set(places.get(code, []))) or [f"{code.title()} {n}" for n in range(per_country)]
        for n, place in enumerate(rng.sample(names, min(per_country, len(names)))):
            slug = re.sub(r"\W+", "-", place.lower()).strip("-") or str(n)
            publishers.append(
                Publisher(f"https://data.example.eu/org/{code.lower()}/{slug}", f"{prefix} {place}", code)
            )
    rng.shuffle(publishers)
    return publishers


class RecordGenerator:
    """Deterministic records: the same seed gives the same catalogue."""

    def __init__(self, seed: int = 1) -> None:
        self.vocabulary = load_vocabulary()
        setup = random.Random(seed)
        self.publishers = load_publishers(setup)
        self._publisher_weights = list(
            itertools.accumulate(1 / (rank + 1) ** 0.8 for rank in range(len(self.publishers)))
        )
        self._format_weights = list(
            itertools.accumulate(1 / (rank + 1) ** 1.3 for rank in range(len(FORMATS)))
        )
        self._rng = random.Random(seed * 7919)

    def facts(self, n: int) -> Facts:
        rng = self._rng
        publisher = rng.choices(self.publishers, cum_weights=self._publisher_weights)[0]
        country = publisher.country or rng.choices(list(COUNTRIES), weights=COUNTRY_WEIGHTS)[0]
        language = COUNTRIES[country][0]
        languages = [language]
        if language != "en" and rng.random() < 0.45:
            languages.append("en")
        if rng.random() < 0.08:
            languages.append(rng.choice([code for code in LANGUAGE_CODES if code not in languages]))
        title_words = self.vocabulary.draw(rng, language, rng.randint(3, 8))
        description_length = rng.randint(8, 60)
        texts: dict[str, tuple[str, str]] = {}
        for tag in languages:
            title = " ".join(self.vocabulary.draw(rng, tag, len(title_words))).capitalize()
            description = " ".join(self.vocabulary.draw(rng, tag, description_length)).capitalize() + "."
            texts[tag] = (f"{title} {2010 + n % 17}", description)
        keywords = tuple(
            sorted(
                {
                    (word, tag)
                    for tag in languages
                    for word in self.vocabulary.draw(rng, tag, rng.randint(1, 5))
                }
            )
        )
        themes = tuple(
            sorted(set(rng.choices(THEMES, weights=THEME_WEIGHTS, k=rng.choice((1, 1, 1, 2, 2, 3)))))
        )
        health = False
        if health and "HEAL" not in themes:
            themes = tuple(sorted((*themes, "HEAL")))
        count = min(60, int(rng.paretovariate(1.6))) if rng.random() < 0.9 else rng.randint(4, 40)
        distributions = tuple(
            (
                rng.choices(FORMATS, cum_weights=self._format_weights)[0],
                rng.choices(LICENCES, weights=LICENCE_WEIGHTS)[0],
                int(rng.lognormvariate(12, 3)) + 1,
            )
            for _ in range(max(1, count))
        )
        year = rng.randint(2010, 2026)
        day = f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        quality = rng.randrange(0, 406)
        return Facts(
            n=n,
            iri=f"https://data.example.eu/{country.lower()}/dataset/{n}",
            publisher=publisher,
            texts=texts,
            keywords=keywords,
            themes=themes,
            country=country,
            place=None,
            access="PUBLIC" if health else rng.choices(ACCESS, weights=ACCESS_WEIGHTS)[0],
            health=tuple(sorted(rng.sample(HEALTH_CATEGORIES, rng.randint(1, 3)))) if health else (),
            issued=f"{year - rng.randint(0, 3)}-01-15",
            modified=f"{day}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00Z",
            distributions=distributions,
            quality_total=quality,
            quality_band=BANDS[min(3, (405 - quality) // 102)],
        )


# ---- renderings -----------------------------------------------------------------------------------
def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _lines(facts: Facts) -> list[tuple[str, str, str]]:
    """The record's statements as (subject, predicate, object) in N-Triples term syntax."""
    dcat, dct, xsd = (
        "http://www.w3.org/ns/dcat#",
        "http://purl.org/dc/terms/",
        "http://www.w3.org/2001/XMLSchema#",
    )
    s = f"<{facts.iri}>"
    publisher = f"<{facts.publisher.iri}>"
    contact = f"<{facts.iri}#contact>"
    lines = [
        (s, "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>", f"<{dcat}Dataset>"),
        (s, f"<{dct}identifier>", f'"{facts.n}"'),
        (s, f"<{dct}publisher>", publisher),
        (publisher, "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>", "<http://xmlns.com/foaf/0.1/Agent>"),
        (publisher, "<http://xmlns.com/foaf/0.1/name>", f'"{_escape(facts.publisher.name)}"'),
        (s, f"<{dcat}contactPoint>", contact),
        (
            contact,
            "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>",
            "<http://www.w3.org/2006/vcard/ns#Kind>",
        ),
        (contact, "<http://www.w3.org/2006/vcard/ns#fn>", '"Open data desk"'),
        (contact, "<http://www.w3.org/2006/vcard/ns#hasEmail>", "<mailto:opendata@data.example.eu>"),
        (s, f"<{dct}spatial>", f"<{EU}country/{facts.country}>"),
        (s, f"<{dct}accessRights>", f"<{EU}access-right/{facts.access}>"),
        (s, f"<{dct}issued>", f'"{facts.issued}"^^<{xsd}date>'),
        (s, f"<{dct}modified>", f'"{facts.modified}"^^<{xsd}dateTime>'),
    ]
    for tag, (title, description) in facts.texts.items():
        lines.append((s, f"<{dct}title>", f'"{_escape(title)}"@{tag}'))
        lines.append((s, f"<{dct}description>", f'"{_escape(description)}"@{tag}'))
        lines.append((s, f"<{dct}language>", f"<{EU}language/{LANGUAGE_CODES[tag]}>"))
    lines += [(s, f"<{dcat}keyword>", f'"{_escape(word)}"@{tag}') for word, tag in facts.keywords]
    lines += [(s, f"<{dcat}theme>", f"<{EU}data-theme/{theme}>") for theme in facts.themes]
    if facts.health:
        lines += [
            (s, "<http://healthdataportal.eu/ns/health#healthCategory>", f"<{HEALTH_CATEGORY}{c}>")
            for c in facts.health
        ]
    for d, (file_type, licence, size) in enumerate(facts.distributions):
        dist = f"<{facts.iri}/distribution/{d}>"
        lines += [
            (s, f"<{dcat}distribution>", dist),
            (dist, "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>", f"<{dcat}Distribution>"),
            (dist, f"<{dcat}accessURL>", f"<https://files.data.example.eu/{facts.n}/{d}>"),
            (dist, f"<{dct}format>", f"<{EU}file-type/{file_type}>"),
            (dist, f"<{dct}license>", f"<{EU}licence/{licence}>"),
            (dist, f"<{dcat}byteSize>", f'"{size}"^^<{xsd}nonNegativeInteger>'),
        ]
    return lines


def ntriples(facts: Facts) -> str:
    """The record as N-Triples, one statement per line (what the store's bulk loader takes)."""
    return "\n".join(f"{a} {b} {c} ." for a, b, c in _lines(facts))


def turtle(facts: Facts) -> str:
    """The record as a Turtle document (N-Triples is Turtle) for the validated pipeline."""
    return ntriples(facts) + "\n"


def index_row(facts: Facts, record_id: str, record_modified: str) -> IndexRow:
    """The index row :func:`catalogue.index.flatten_record` makes of the same record.

    The benchmark checks this on a sample (``bench_scale.check_rows``), so the bulk-loaded
    rows are the rows the pipeline would have written.
    """
    from catalogue.index import TRUST_LOCAL, language_order

    order = language_order(facts.texts)
    texts = {tag: facts.texts[tag] for tag in order}
    formats = sorted({f"{EU}file-type/{d[0]}" for d in facts.distributions})
    licences = sorted({f"{EU}licence/{d[1]}" for d in facts.distributions})
    return IndexRow(
        record_id=record_id,
        dataset=facts.iri,
        kind="dataset",
        title="\n".join(dict.fromkeys(t for t, _ in texts.values() if t)),
        description="\n".join(dict.fromkeys(d for _, d in texts.values() if d)),
        keywords=tuple(sorted({word for word, _ in facts.keywords})),
        publisher=facts.publisher.iri,
        publisher_name=facts.publisher.name,
        modified=facts.modified.replace("Z", "+00:00"),  # as rdflib reads the literal
        record_modified=record_modified,
        version=1,
        quality_total=facts.quality_total,
        quality_maximum=405,
        quality_band=facts.quality_band,
        facets={
            "theme": tuple(f"{EU}data-theme/{theme}" for theme in facts.themes),
            "publisher": (facts.publisher.iri,),
            "format": tuple(formats),
            "license": tuple(licences),
            "access_rights": (f"{EU}access-right/{facts.access}",),
            "spatial": (f"{EU}country/{facts.country}",),
            "health_category": tuple(f"{HEALTH_CATEGORY}{c}" for c in facts.health),
            "quality_band": (facts.quality_band,),
            "ehds_minimum": (),
            "trust": (TRUST_LOCAL,),
        },
        texts=texts,
    )


def sample_words(vocabulary: Vocabulary, rng: random.Random, languages: Sequence[str], skip: int) -> str:
    """A search word past the ``skip`` most common of a random language (what users look for)."""
    language = rng.choice(list(languages))
    words = vocabulary.words[language]
    return rng.choice(words[skip : max(skip + 1, len(words) // 3)])
