"""``sluis demo``: a whole data space on one machine, walked through step by step.

A catalogue node, a provider connector and a consumer connector run on embedded storage
(SQLite, Oxigraph, DuckDB) in one folder and listen on 127.0.0.1 only. The demo drives them
the way their users would — the governance authority and participants are created with the
same ``sluis`` commands an operator types, records go to the catalogue over HTTP with publisher
tokens, the provider uses its management API, the AI job uses :mod:`connector.jobs` — and it
checks every outcome: an expected denial that is not denied makes the demo fail (exit 1).

Each step is a small function over a :class:`DemoSpace` (the files) and :class:`Endpoints`
(where the three servers answer), so the end-to-end tests can run the same steps against
servers started as separate processes.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import random
import shutil
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
from rdflib import Graph, URIRef

from connector.identity import did_web_for
from connector.jobs import Dataset, Job, JobError
from policies import parse_policy, templates, to_dsp_json
from sluis.progress import Progress
from sluis.servers import free_port, serve_in_thread

_log = logging.getLogger(__name__)

# --- what the demo data space is made of -----------------------------------------------------

HOST = "127.0.0.1"
PURPOSE_BASE = "https://w3id.org/sluis/purpose/"
AI_TRAINING = PURPOSE_BASE + "ai-training"
COUNTRY = "http://publications.europa.eu/resource/authority/country/"
COMPUTE_SITE = COUNTRY + "NLD"  # the AI Factory the job runs in
NON_EU_SITE = COUNTRY + "USA"
DATASET_IRI = "https://data.sluis.example/dataset/demo-hourly-household-electricity"
PROVIDER_PUBLISHER = "https://data.sluis.example/agent/demo-grid-operator"
ASSET_PATH = "electricity/hourly-household-consumption.parquet"
FORBIDDEN_COLUMN = "household_id"  # personal data: never leaves the provider
# Reads the agreement allows; the demo makes exactly this many and then one more, refused.
MAX_READS = 3
JOB_ID = "train-load-forecaster-1"
MEMBERSHIP_CREDENTIAL = "MembershipCredential"

# The synthetic data: a week of hourly smart-meter readings for households in every Dutch
# province (ISO 3166-2 codes); small enough to generate in well under a second.
PROVINCES: tuple[tuple[str, str], ...] = (
    ("NL-DR", "Drenthe"),
    ("NL-FL", "Flevoland"),
    ("NL-FR", "Fryslan"),
    ("NL-GE", "Gelderland"),
    ("NL-GR", "Groningen"),
    ("NL-LI", "Limburg"),
    ("NL-NB", "Noord-Brabant"),
    ("NL-NH", "Noord-Holland"),
    ("NL-OV", "Overijssel"),
    ("NL-UT", "Utrecht"),
    ("NL-ZE", "Zeeland"),
    ("NL-ZH", "Zuid-Holland"),
)
HOUSEHOLDS_PER_PROVINCE = 25
HOURS = 7 * 24
DATA_SEED = 20250101
DATA_START = datetime(2025, 1, 6, tzinfo=UTC)  # a Monday

# HTTP calls between the demo and its own loopback servers; publishing validates SHACL.
HTTP_TIMEOUT_SECONDS = 60.0
# How long the consumer may take to learn over DSP that the provider ended the transfer.
NOTICE_WAIT_SECONDS = 30.0
# Explanations are long sentences; wrap them for a terminal.
WRAP_WIDTH = 100
# Rounding of the aggregate (one decimal) against the provider's exact sum.
AGGREGATE_TOLERANCE = 0.051
# Violations of the rejected record shown (all are counted).
SHOWN_VIOLATIONS = 6


class DemoError(Exception):
    """A step could not go on (a server refused, a command failed): the demo stops, exit 1."""


# --- narration and checks --------------------------------------------------------------------


@dataclass
class Narrator:
    """Prints the numbered story on ``out`` and keeps the score of every expectation."""

    out: TextIO
    root: Path | None = None
    passed: int = 0
    failures: list[str] = field(default_factory=list)

    def step(self, number: int, title: str) -> None:
        self.out.write(f"\n{number}. {title}\n")
        self.out.flush()

    def say(self, text: str, indent: int = 3) -> None:
        prefix = " " * indent
        for line in text.splitlines() or [""]:
            self.out.write(f"{prefix}{line}\n")
        self.out.flush()

    def wrapped(self, text: str, indent: int = 7) -> None:
        prefix = " " * indent
        self.out.write(
            textwrap.fill(
                text,
                WRAP_WIDTH,
                initial_indent=prefix,
                subsequent_indent=prefix + "  ",
                break_on_hyphens=False,
            )
            + "\n"
        )

    def command(self, argv: Sequence[str]) -> None:
        self.say("$ sluis " + " ".join(self.short(arg) for arg in argv))

    def short(self, text: str) -> str:
        """Paths inside the demo folder, relative to it: the output stays readable."""
        if self.root is not None:
            text = text.replace(str(self.root) + "/", "")
        return text

    def check(self, ok: bool, expectation: str, detail: str = "") -> bool:
        if ok:
            self.passed += 1
            self.say(f"[ok] {expectation}")
        else:
            self.failures.append(expectation + (f" ({detail})" if detail else ""))
            self.say(f"[FAILED] {expectation}" + (f": {detail}" if detail else ""))
        return ok


# --- the files of the data space --------------------------------------------------------------


@dataclass(frozen=True)
class DemoSpace:
    """A local data space on disk: authority, catalogue node and two participants."""

    root: Path
    authority_dir: Path
    catalogue_dir: Path
    provider_dir: Path
    consumer_dir: Path
    catalogue_port: int
    provider_port: int
    consumer_port: int
    publisher_tokens: dict[str, str]  # publisher IRI -> catalogue token

    @property
    def provider_config(self) -> Path:
        return self.provider_dir / "connector.toml"

    @property
    def consumer_config(self) -> Path:
        return self.consumer_dir / "connector.toml"

    @property
    def provider_did(self) -> str:
        return did_web_for(HOST, self.provider_port)

    @property
    def consumer_did(self) -> str:
        return did_web_for(HOST, self.consumer_port)


@dataclass(frozen=True)
class Endpoints:
    """Where the three servers answer (base URLs, no trailing slash)."""

    catalogue: str
    provider: str
    consumer: str

    @property
    def provider_dsp(self) -> str:
        return self.provider + "/dsp"


def run_cli(argv: Sequence[str], say: Narrator | None = None) -> tuple[int, str]:
    """Run a ``sluis`` command in this process, as a script would; returns (exit code, stdout)."""
    from sluis.cli import main

    if say is not None:
        say.command(argv)
    level = logging.getLevelName(logging.getLogger().level)
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        code = main(["--log-level", str(level), *argv])
    return code, captured.getvalue()


def _cli(argv: Sequence[str], say: Narrator) -> str:
    code, output = run_cli(argv, say)
    if code != 0:
        raise DemoError(f"'sluis {' '.join(argv[:2])}' exited {code}: {output.strip()}")
    return output


def seed_publishers() -> dict[Path, str]:
    """Each seed record's file and the publisher IRI it names (its token must be that one's)."""
    from catalogue.seed import seed_files

    dct_publisher = URIRef("http://purl.org/dc/terms/publisher")
    publishers: dict[Path, str] = {}
    for path in seed_files():
        graph = Graph().parse(data=path.read_text(encoding="utf-8"), format="turtle")
        named = sorted({str(value) for value in graph.objects(None, dct_publisher)})
        if len(named) != 1:
            raise DemoError(f"seed record {path.name} names {len(named)} publishers, expected one")
        publishers[path] = named[0]
    return publishers


def set_up(root: Path, say: Narrator) -> DemoSpace:
    """Step 1: the authority, two participants and the catalogue's publisher tokens, by CLI."""
    say.step(1, "Governance: an authority, two participants, catalogue publisher tokens")
    catalogue_port, provider_port, consumer_port, authority_port = (free_port(HOST) for _ in range(4))
    authority_dir = root / "authority"
    authority = json.loads(
        _cli(["authority", "init", "--id", did_web_for(HOST, authority_port), "--dir", str(authority_dir)],
             say)
    )
    say.say(f"the data space's authority is {authority['did']} (key {authority['public_key_multibase']})")
    participants: dict[str, Path] = {}
    for name, port in (("provider", provider_port), ("consumer", consumer_port)):
        folder = root / name
        created = json.loads(
            _cli(
                [
                    "participant", "init", "--id", did_web_for(HOST, port), "--dir", str(folder),
                    "--authority-dir", str(authority_dir),
                ],
                say,
            )
        )
        participants[name] = folder
        role = "grid operator sharing smart-meter data" if name == "provider" else "AI team training a model"
        say.say(f"{name} ({role}): {created['participant']}")
        say.say(f"holds a {MEMBERSHIP_CREDENTIAL} signed by the authority; {say.short(created['config'])}")
    catalogue_dir = root / "catalogue"
    publishers = sorted({*seed_publishers().values(), PROVIDER_PUBLISHER})
    tokens: dict[str, str] = {}
    for index, publisher in enumerate(publishers):
        argv = ["catalogue", "token", "create", "--data", str(catalogue_dir), "--publisher", publisher]
        code, output = run_cli(argv, say if index == 0 else None)
        if code != 0 or not output.strip():
            raise DemoError(f"'sluis catalogue token create' for {publisher} exited {code}")
        tokens[publisher] = output.strip()
    say.say(f"... one token per publisher: {len(tokens)} publisher tokens issued by the catalogue operator")
    say.check(
        len(tokens) == len(publishers) and len(set(tokens.values())) == len(tokens),
        "every publisher holds its own catalogue token",
    )
    return DemoSpace(
        root, authority_dir, catalogue_dir, participants["provider"], participants["consumer"],
        catalogue_port, provider_port, consumer_port, tokens,
    )


@contextmanager
def serve_in_process(space: DemoSpace, say: Narrator) -> Iterator[Endpoints]:
    """The catalogue node and both connectors as real HTTP servers on loopback, in this process."""
    from catalogue.api import create_catalogue_app
    from catalogue.config import CatalogueConfig
    from connector.app import create_app
    from connector.config import load_config

    with ExitStack() as stack:
        catalogue_url = f"http://{HOST}:{space.catalogue_port}"
        catalogue = stack.enter_context(
            serve_in_thread(
                create_catalogue_app(space.catalogue_dir, CatalogueConfig(public_url=catalogue_url)),
                HOST,
                space.catalogue_port,
            )
        )
        provider = stack.enter_context(
            serve_in_thread(create_app(load_config(space.provider_config)), HOST, space.provider_port)
        )
        consumer = stack.enter_context(
            serve_in_thread(create_app(load_config(space.consumer_config)), HOST, space.consumer_port)
        )
        say.say(f"catalogue node     {catalogue}  (Oxigraph store + SQLite index in catalogue/)")
        say.say(f"provider connector {provider}  (DSP at /dsp, management API, data plane at /data)")
        say.say(f"consumer connector {consumer}")
        yield Endpoints(catalogue, provider, consumer)


# --- step 2: the catalogue ---------------------------------------------------------------------

INVALID_RECORD = """\
@prefix dcat: <http://www.w3.org/ns/dcat#> .
@prefix dct: <http://purl.org/dc/terms/> .

<https://data.sluis.example/dataset/demo-incomplete>
    a dcat:Dataset ;
    dct:publisher <{publisher}> ;
    dct:accessRights <https://example.org/not-an-access-right> ;
    dcat:distribution <https://data.sluis.example/dataset/demo-incomplete/distribution/1> .

<https://data.sluis.example/dataset/demo-incomplete/distribution/1>
    a dcat:Distribution .
"""


@dataclass(frozen=True)
class PublishSummary:
    published: int
    attempted: int
    rejected_status: int
    violations: list[dict[str, Any]]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def publish_catalogue(space: DemoSpace, urls: Endpoints, say: Narrator) -> PublishSummary:
    """Step 2: every seed record over HTTP with its publisher's token, and one invalid record."""
    say.step(2, "Publish the seed catalogue to the catalogue node (POST /catalogue/datasets)")
    records = seed_publishers()
    published = 0
    refused: list[str] = []
    with httpx.Client(base_url=urls.catalogue, timeout=HTTP_TIMEOUT_SECONDS) as client:
        with Progress(len(records), "   publishing", stream=say.out) as progress:
            for path, publisher in records.items():
                response = client.post(
                    "/catalogue/datasets",
                    content=path.read_bytes(),
                    headers={"Content-Type": "text/turtle", **_bearer(space.publisher_tokens[publisher])},
                )
                if response.status_code == 201:
                    published += 1
                else:
                    refused.append(f"{path.name}: HTTP {response.status_code} {response.text[:300]}")
                progress.advance()
        say.check(
            published == len(records),
            f"{published} of {len(records)} seed records validated against their profiles "
            "(DCAT-AP 3, HVD, HealthDCAT-AP), scored, signed and stored",
            "; ".join(refused[:3]),
        )
        total = _search(client, {"page_size": 1})["total"]
        say.check(total == len(records), f"the search index holds {total} records")

        say.say("a publisher sends a record without title or description, with a made-up access right:")
        response = client.post(
            "/catalogue/datasets",
            content=INVALID_RECORD.format(publisher=PROVIDER_PUBLISHER).encode(),
            headers={"Content-Type": "text/turtle", **_bearer(space.publisher_tokens[PROVIDER_PUBLISHER])},
        )
        body = response.json() if "json" in response.headers.get("content-type", "") else {}
        listed = body.get("violations", body.get("errors", []))
        violations = [item for item in listed if isinstance(item, dict)]
        say.check(
            response.status_code == 422 and bool(violations),
            f"rejected: HTTP {response.status_code} {body.get('title', '')}, {len(violations)} violations",
        )
        for item in violations[:SHOWN_VIOLATIONS]:
            say.wrapped(_violation_text(item))
        if len(violations) > SHOWN_VIOLATIONS:
            say.say(f"    ... and {len(violations) - SHOWN_VIOLATIONS} more")
        after = _search(client, {"page_size": 1})["total"]
        say.check(after == total, "nothing of the rejected record was stored")
    return PublishSummary(published, len(records), response.status_code, violations)


def _violation_text(item: dict[str, Any]) -> str:
    path = item.get("path") or item.get("field") or ""
    focus = str(item.get("focus_node") or item.get("focusNode") or "")
    message = item.get("message") or item.get("reason") or ""
    where = " ".join(part for part in (_local(focus), _local(str(path))) if part)
    return f"- {where}: {message}"


def _local(iri: str) -> str:
    for prefix, short in (
        ("http://purl.org/dc/terms/", "dct:"),
        ("http://www.w3.org/ns/dcat#", "dcat:"),
        ("https://data.sluis.example/dataset/", ""),
    ):
        if iri.startswith(prefix):
            return short + iri[len(prefix) :]
    return iri


# --- step 3: search ----------------------------------------------------------------------------


def search_catalogue(urls: Endpoints, say: Narrator) -> dict[str, Any]:
    """Step 3: full text and facets, as an AI team looking for training data would search."""
    say.step(3, "An AI team searches the catalogue (full text + facets)")
    with httpx.Client(base_url=urls.catalogue, timeout=HTTP_TIMEOUT_SECONDS) as client:
        query: dict[str, Any] = {"q": "electricity", "page_size": 3}
        say.say("GET /catalogue/search?q=electricity")
        broad = _search(client, query)
        _print_hits(broad, say)
        _print_facets(broad, say, ("theme", "spatial", "format", "access_rights", "publisher"))
        say.say("narrowed to the Netherlands: &spatial=NLD&theme=ENER")
        narrow = _search(client, {**query, "spatial": "NLD", "theme": "ENER"})
        _print_hits(narrow, say)
        say.check(
            0 < narrow["total"] < broad["total"] and "NLD" in _codes(narrow, "spatial"),
            f"facets narrow {broad['total']} hits to {narrow['total']}",
        )
        say.say("restricted health data (EHDS, HealthDCAT-AP): ?q=hospital&access_rights=RESTRICTED")
        health = _search(client, {"q": "hospital", "access_rights": "RESTRICTED", "page_size": 3})
        _print_hits(health, say)
        say.check(
            health["total"] > 0 and _codes(health, "access_rights") == ["RESTRICTED"],
            f"{health['total']} restricted health records, nothing else",
        )
    return narrow


def _search(client: httpx.Client, params: dict[str, Any]) -> dict[str, Any]:
    response = client.get("/catalogue/search", params=params)
    if response.status_code != 200:
        raise DemoError(f"search {params} answered HTTP {response.status_code}: {response.text[:300]}")
    body: dict[str, Any] = response.json()
    return body


def _codes(body: dict[str, Any], facet: str) -> list[str]:
    return [str(item.get("code")) for item in body.get("facets", {}).get(facet, [])]


def _print_hits(body: dict[str, Any], say: Narrator) -> None:
    shown = len(body.get("hits", []))
    say.say(f"{body['total']} hits" + (f", the first {shown}:" if shown < body["total"] else ":"))
    for hit in body.get("hits", []):
        quality = hit.get("quality") or {}
        score = f"{quality.get('total')}/{quality.get('maximum')} {quality.get('band')}" if quality else "-"
        say.say(f"  - {hit.get('title')}")
        say.say(f"    {hit.get('publisher_name') or hit.get('publisher')}; quality {score}")


def _print_facets(body: dict[str, Any], say: Narrator, names: Sequence[str]) -> None:
    facets = body.get("facets", {})
    for name in names:
        values = ", ".join(f"{item.get('code')} ({item.get('count')})" for item in facets.get(name, [])[:6])
        say.say(f"  facet {name:<13} {values}")


# --- step 4: the provider's offer ---------------------------------------------------------------


def write_consumption_parquet(path: Path) -> pa.Table:
    """A week of hourly household electricity readings per Dutch province (synthetic)."""
    rng = random.Random(DATA_SEED)  # noqa: S311 - reproducible synthetic data, not secrets
    households: list[str] = []
    provinces: list[str] = []
    names: list[str] = []
    hours: list[datetime] = []
    kwh: list[float] = []
    for code, name in PROVINCES:
        for number in range(HOUSEHOLDS_PER_PROVINCE):
            household = f"{code}-HH{number:04d}"
            base = rng.uniform(0.15, 0.45)
            for hour in range(HOURS):
                moment = DATA_START + timedelta(hours=hour)
                evening = 1.8 if 17 <= moment.hour <= 21 else (0.6 if moment.hour < 6 else 1.0)
                households.append(household)
                provinces.append(code)
                names.append(name)
                hours.append(moment)
                kwh.append(round(base * evening * rng.uniform(0.7, 1.3), 3))
    table = pa.table(
        {
            "household_id": pa.array(households, pa.string()),
            "province": pa.array(provinces, pa.string()),
            "province_name": pa.array(names, pa.string()),
            "hour": pa.array(hours, pa.timestamp("s", tz="UTC")),
            "kwh": pa.array(kwh, pa.float64()),
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return table


def contract_policy() -> dict[str, Any]:
    """The usage policy, assembled from the provider's templates (DSP compact form)."""
    no_personal_column = parse_policy(
        {
            "@id": "urn:sluis:demo:policy:no-household-id",
            "@type": "Offer",
            "permission": [
                {
                    "action": "use",
                    "constraint": [
                        {
                            "leftOperand": "sluis:columns",
                            "operator": "isNoneOf",
                            "rightOperand": [FORBIDDEN_COLUMN],
                        }
                    ],
                }
            ],
        }
    )
    offer = templates.combine(
        "urn:sluis:demo:policy:household-electricity",
        templates.research_only("urn:sluis:demo:policy:ai", templates.AI_DEVELOPMENT),
        templates.eu_only_processing("urn:sluis:demo:policy:eu"),
        templates.max_reads("urn:sluis:demo:policy:reads", MAX_READS),
        no_personal_column,
    )
    return dict(to_dsp_json(offer))


def access_policy() -> dict[str, Any]:
    """Who may see the offer at all: members of the data space (a credential from the authority)."""
    return {
        "@id": "urn:sluis:demo:policy:members",
        "@type": "Offer",
        "permission": [
            {
                "action": "use",
                "constraint": [
                    {
                        "leftOperand": "sluis:credential",
                        "operator": "hasPart",
                        "rightOperand": MEMBERSHIP_CREDENTIAL,
                    }
                ],
            }
        ],
    }


DATASET_DESCRIPTION = (
    "A week of hourly smart-meter readings (kWh) of households in every Dutch province, with a "
    "pseudonymous household identifier. Synthetic data generated by the Sluis demo; available to "
    "data-space members under a usage policy for AI development, processed in the EU."
)


def offer_turtle() -> str:
    """The contract policy as Turtle, for the record: the same offer the provider's connector makes.

    Typed ``odrl:Policy`` beside ``odrl:Offer`` because DCAT-AP shapes accept ``odrl:hasPolicy``
    only on a node of that class; the catalogue's dataset page reads it as sentences.
    """
    from policies.serialize import to_odrl_jsonld
    from vocab.namespaces import ODRL, RDF
    from vocab.rdfio import parse_rdf, serialize

    policy = parse_policy(contract_policy())
    document = json.dumps(to_odrl_jsonld(policy))
    graph = parse_rdf(document, "application/ld+json", DATASET_IRI)
    graph.add((URIRef(policy.uid), RDF.type, ODRL.Policy))
    return serialize(graph, "text/turtle").decode("utf-8")


def dataset_record(dsp_url: str) -> str:
    """The provider's DCAT-AP record: restricted data, reachable through its DSP connector.

    The record carries its offer (``odrl:hasPolicy``), so a visitor of the catalogue reads the
    terms before asking the provider's connector.
    """
    policy = parse_policy(contract_policy()).uid
    return offer_turtle() + f"""
@prefix dcat: <http://www.w3.org/ns/dcat#> .
@prefix dct: <http://purl.org/dc/terms/> .
@prefix dcatap: <http://data.europa.eu/r5r/> .
@prefix foaf: <http://xmlns.com/foaf/0.1/> .
@prefix vcard: <http://www.w3.org/2006/vcard/ns#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .

<{DATASET_IRI}>
    a dcat:Dataset ;
    dct:identifier "demo-hourly-household-electricity" ;
    dct:title "Hourly household electricity consumption per Dutch province (synthetic)"@en ;
    dct:description "{DATASET_DESCRIPTION}"@en ;
    dct:publisher <{PROVIDER_PUBLISHER}> ;
    dcat:contactPoint <https://data.sluis.example/contact/demo-grid-operator> ;
    dcat:theme <http://publications.europa.eu/resource/authority/data-theme/ENER> ;
    dcat:keyword "electricity consumption"@en, "smart meter"@en, "hourly"@en, "households"@en ;
    dct:spatial <http://publications.europa.eu/resource/authority/country/NLD> ;
    dct:temporal [ a dct:PeriodOfTime ;
        dcat:startDate "2025-01-06"^^xsd:date ; dcat:endDate "2025-01-12"^^xsd:date ] ;
    dct:accrualPeriodicity <http://publications.europa.eu/resource/authority/frequency/WEEKLY> ;
    dct:language <http://publications.europa.eu/resource/authority/language/ENG> ;
    dct:accessRights <http://publications.europa.eu/resource/authority/access-right/RESTRICTED> ;
    dcat:distribution <{DATASET_IRI}/distribution/parquet> ;
    <http://www.w3.org/ns/odrl/2/hasPolicy> <{policy}> .

<{DATASET_IRI}/distribution/parquet>
    a dcat:Distribution ;
    dct:title "Parquet through the provider's Dataspace Protocol connector"@en ;
    dcat:accessURL <{dsp_url}> ;
    dcat:accessService <{DATASET_IRI}/service/dsp> ;
    dct:format <http://publications.europa.eu/resource/authority/file-type/PARQUET> ;
    dct:license <http://publications.europa.eu/resource/authority/licence/CC_BY_4_0> .

<{DATASET_IRI}/service/dsp>
    a dcat:DataService ;
    dct:title "Demo grid operator's Dataspace Protocol 2025-1 endpoint"@en ;
    dcat:endpointURL <{dsp_url}> .

<{PROVIDER_PUBLISHER}>
    a foaf:Organization ;
    foaf:name "Demo grid operator"@en .

<https://data.sluis.example/contact/demo-grid-operator>
    a vcard:Organization ;
    vcard:fn "Demo grid operator" ;
    vcard:hasEmail <mailto:data@demo-grid-operator.example> .
"""


def _management(base: str, config_path: Path) -> httpx.Client:
    from connector.config import load_config

    token = load_config(config_path).management.token
    return httpx.Client(base_url=base + "/management", headers=_bearer(token), timeout=HTTP_TIMEOUT_SECONDS)


def _post(client: httpx.Client, path: str, body: dict[str, Any], expected: int = 201) -> dict[str, Any]:
    response = client.post(path, json=body)
    if response.status_code != expected:
        raise DemoError(f"POST {path} answered HTTP {response.status_code}: {response.text[:500]}")
    answer: dict[str, Any] = response.json()
    return answer


def offer_dataset(space: DemoSpace, urls: Endpoints, say: Narrator) -> pa.Table:
    """Step 4: the provider's Parquet file, asset, policies and contract definition; its record."""
    from connector.config import load_config

    say.step(4, "The provider offers its data under a usage policy (management API)")
    data_root = load_config(space.provider_config).dataplane.data_root
    table = write_consumption_parquet(data_root / ASSET_PATH)
    say.say(f"generated {say.short(str(data_root / ASSET_PATH))}: {table.num_rows:,} rows,")
    say.say(f"columns {', '.join(table.column_names)}")
    say.say(f"({FORBIDDEN_COLUMN} identifies a household: personal data under the GDPR)")
    contract = contract_policy()
    say.say("usage policy from policies.templates: research_only(ai-development) + eu_only_processing()")
    say.say(f"+ max_reads({MAX_READS}) + a constraint forbidding the column {FORBIDDEN_COLUMN}:")
    for constraint in contract["permission"][0].get("constraint", []):
        right = constraint["rightOperand"]
        value = right.get("@value") if isinstance(right, dict) else right
        say.say(f"  {constraint['leftOperand']} {constraint['operator']} {value}")
    with _management(urls.provider, space.provider_config) as api:
        _post(api, "/assets", {
            "id": DATASET_IRI,
            "title": "Hourly household electricity consumption per Dutch province (synthetic)",
            "data": {"kind": "parquet", "path": ASSET_PATH},
        })
        _post(api, "/policies", {"id": "members-only", "policy": access_policy()})
        _post(api, "/policies", {"id": "household-electricity", "policy": contract})
        _post(api, "/contract-definitions", {
            "id": "household-electricity-offer", "access_policy_id": "members-only",
            "contract_policy_id": "household-electricity", "asset_ids": [DATASET_IRI],
        })
    say.say("POST /management/assets, /management/policies (access, contract),")
    say.say("     /management/contract-definitions")
    say.say("asset, policies and contract definition registered")
    with httpx.Client(base_url=urls.catalogue, timeout=HTTP_TIMEOUT_SECONDS) as client:
        response = client.post(
            "/catalogue/datasets",
            content=dataset_record(urls.provider_dsp).encode(),
            headers={"Content-Type": "text/turtle", **_bearer(space.publisher_tokens[PROVIDER_PUBLISHER])},
        )
    say.check(
        response.status_code == 201,
        "its DCAT-AP record (restricted, reachable through the provider's DSP endpoint) is in the catalogue",
        f"HTTP {response.status_code}: {response.text[:400]}",
    )
    return table


# --- step 5: the AI job ------------------------------------------------------------------------


@dataclass
class JobRun:
    job: Job
    dataset: Dataset
    provider_dsp: str
    provider_id: str
    agreement_valid: bool
    full: pa.Table
    aggregate: pa.Table
    reads: int


def find_dataset(job: Job, say: Narrator) -> tuple[str, str]:
    """The AI job finds the dataset in the catalogue and, from its record, the provider's connector."""
    say.say('job.search("hourly household electricity", access_rights="RESTRICTED", spatial="NLD")')
    found = job.search("hourly household electricity", access_rights="RESTRICTED", spatial="NLD")
    hits = [hit for hit in found if hit.get("dataset") == DATASET_IRI]
    if not hits:
        raise DemoError(f"the provider's dataset is not found by search: {found}")
    say.say(f"found: {hits[0]['title']}")
    say.say("job.locate(hit): the record names the provider's DSP endpoint; its connector names the provider")
    _, dsp, provider_id = job.locate(hits[0])
    say.say(f"its record names the provider's DSP endpoint {dsp},")
    say.say(f"served by provider {provider_id} (from /.well-known/dspace-version)")
    return dsp, provider_id


def run_ai_job(space: DemoSpace, urls: Endpoints, say: Narrator, table: pa.Table) -> JobRun:
    """Step 5: negotiate over DSP, verify the agreement offline, start a transfer, read, aggregate."""
    say.step(5, "The AI job negotiates an agreement and reads the data it may read")
    job = Job.from_config(
        space.consumer_config, JOB_ID, AI_TRAINING, COMPUTE_SITE, catalogue_url=urls.catalogue
    )
    say.say(f"from connector.jobs import Job: job {JOB_ID}, purpose ai-training, compute site NLD")
    try:
        dsp, provider_id = find_dataset(job, say)
        say.check(provider_id == space.provider_did, "the provider's DID is the one its connector serves")
        offer = job.offer_for(DATASET_IRI, dsp, provider_id)
        say.say(f"the provider's DSP catalog offers {offer.get('@id')} to this member")
        say.say("job.dataset(...): negotiate over DSP, then start a transfer bound to the job")
        dataset = job.dataset(DATASET_IRI, dsp, provider_id, offer)
        negotiations, transfer = _consumer_view(space, urls, dataset.transfer_id)
        say.check(
            any(n.get("state") == "FINALIZED" and n.get("agreement_id") == dataset.agreement_id
                for n in negotiations),
            f"contract negotiation FINALIZED over DSP 2025-1: agreement {dataset.agreement_id}",
        )
        valid = verify_agreement(space, urls, dataset.agreement_id, say)
        say.check(
            transfer.get("state") == "STARTED" and transfer.get("job_id") == JOB_ID,
            f"transfer {dataset.transfer_id} STARTED, bound to job {JOB_ID}",
            f"the consumer connector reports {transfer}",
        )
        say.say("(HTTP pull: a data address and a job-scoped token, refreshed by the client)")
        full = dataset.read()
        say.say(f"read(): GET /data/{{transfer}} -> Arrow, {full.num_rows:,} rows,")
        say.say(f"columns {', '.join(full.column_names)}")
        say.check(
            full.num_rows == table.num_rows and FORBIDDEN_COLUMN not in full.column_names,
            f"every row, but the view has no {FORBIDDEN_COLUMN} column",
        )
        sql = (
            "SELECT province, round(sum(kwh), 1) AS kwh, count(*) AS readings "
            "FROM data GROUP BY province ORDER BY kwh DESC"
        )
        say.say(f"query(): {sql}")
        aggregate = dataset.query(sql)
        for row in aggregate.slice(0, 4).to_pylist():
            say.say(f"  {row['province']}  {row['kwh']:>8.1f} kWh  {row['readings']} readings")
        say.say(f"  ... {aggregate.num_rows} provinces")
        say.check(_aggregate_matches(aggregate, table), "the aggregate matches the provider's own data")
        return JobRun(job, dataset, dsp, provider_id, valid, full, aggregate, reads=2)
    except BaseException:
        job.close()
        raise


def _consumer_view(
    space: DemoSpace, urls: Endpoints, transfer_id: str
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The consumer connector's own record of its negotiations and of one transfer."""
    with _management(urls.consumer, space.consumer_config) as api:
        negotiations = api.get("/negotiations").json()
        transfer = api.get(f"/transfers/{transfer_id}").json()
    return [n for n in negotiations if isinstance(n, dict)], dict(transfer)


def _aggregate_matches(aggregate: pa.Table, table: pa.Table) -> bool:
    expected = table.group_by("province").aggregate([("kwh", "sum"), ("kwh", "count")])
    provinces = expected.column("province").to_pylist()
    sums = dict(zip(provinces, expected.column("kwh_sum").to_pylist(), strict=True))
    counts = dict(zip(provinces, expected.column("kwh_count").to_pylist(), strict=True))
    rows = aggregate.to_pylist()
    return len(rows) == len(sums) and all(
        abs(row["kwh"] - round(sums[row["province"]], 1)) < AGGREGATE_TOLERANCE
        and row["readings"] == counts[row["province"]]
        for row in rows
    )


def verify_agreement(space: DemoSpace, urls: Endpoints, agreement_id: str, say: Narrator) -> bool:
    """Bundle the counter-signed agreement with both DID documents, then verify it offline."""
    with _management(urls.consumer, space.consumer_config) as api:
        response = api.get(f"/agreements/{agreement_id}")
    if response.status_code != 200:
        raise DemoError(f"GET /management/agreements/{agreement_id} answered HTTP {response.status_code}")
    agreement = response.json()
    proofs = agreement.get("proof", [])
    say.say(f"the agreement carries {len(proofs) if isinstance(proofs, list) else 1} eddsa-jcs-2022 proofs")
    agreement_file = space.root / "agreement.json"
    bundle_file = space.root / "agreement-bundle.json"
    agreement_file.write_text(json.dumps(agreement, indent=2) + "\n", encoding="utf-8")
    _cli(["agreement", "bundle", str(agreement_file), "--resolve", "--out", str(bundle_file)], say)
    code, output = run_cli(["agreement", "verify", str(bundle_file)], say)
    for line in output.strip().splitlines():
        say.say(say.short(line))
    return say.check(code == 0, "provider's signature and consumer's counter-signature verify offline")


# --- step 6: what the policy refuses --------------------------------------------------------------


@dataclass(frozen=True)
class Denial:
    what: str
    denied: bool
    status: int | None
    code: str
    explanation: str


def _attempt(
    say: Narrator,
    what: str,
    action: Callable[[], object],
    codes: Sequence[str] = (),
    statuses: Sequence[int | None] = (403,),
) -> Denial:
    """Run ``action``; a refusal (with one of ``statuses`` and, if given, ``codes``) is the
    expected outcome; anything read, or a refusal for another reason, is a failure."""
    say.say(f"- {what}")
    try:
        result = action()
    except JobError as error:
        problem = error.problem or {}
        explanation = str(problem.get("detail") or error.message)
        denial = Denial(what, True, error.status, error.code, explanation)
        answer = f"HTTP {error.status}" if error.status else "refused"
        say.wrapped(f"{answer} [{error.code}] {explanation}")
        good = error.status in statuses and (not codes or error.code in codes)
        expected = ", ".join([*(f"HTTP {status}" for status in statuses if status), *codes])
        say.check(good, "denied, with the reason", f"expected {expected}")
        return denial
    rows = getattr(result, "num_rows", "?")
    say.check(False, "denied", f"the read was allowed and returned {rows} rows")
    return Denial(what, False, 200, "", "")


def denied_reads(space: DemoSpace, urls: Endpoints, say: Narrator, run: JobRun) -> list[Denial]:
    """Step 6: a forbidden column, a file read, a non-EU job, the read limit, then revocation."""
    from connector.config import load_config

    say.step(6, "What the agreement does not allow is refused, at every read")
    data = run.dataset
    personal = f"SELECT {FORBIDDEN_COLUMN}, sum(kwh) AS kwh FROM data GROUP BY {FORBIDDEN_COLUMN}"
    denials = [
        _attempt(say, f"the forbidden column: {personal}", lambda: data.query(personal), ("policy_denied",))
    ]
    asset_file = load_config(space.provider_config).dataplane.data_root / ASSET_PATH
    around = f"SELECT * FROM read_parquet('{asset_file}')"
    denials.append(
        _attempt(say, f"the asset's file, around the view: {say.short(around)}", lambda: data.query(around))
    )
    denials.append(_non_eu_job(space, run, say))
    run.reads += sum(1 for denial in denials if not denial.denied)  # a read let through counts too
    while run.reads < MAX_READS:
        data.query("SELECT count(*) AS readings FROM data")
        run.reads += 1
    say.say(f"({run.reads} reads made so far; the agreement allows {MAX_READS})")
    denials.append(
        _attempt(say, f"read number {MAX_READS + 1}: SELECT count(*) FROM data",
                 lambda: data.query("SELECT count(*) AS readings FROM data"), ("policy_denied",))
    )
    say.say("the provider revokes the agreement: POST /management/agreements/{id}/terminate")
    with _management(urls.provider, space.provider_config) as api:
        ended = _post(
            api, f"/agreements/{data.agreement_id}/terminate", {"reason": "demo: consent withdrawn"}, 200
        )
    say.say(f"transfers ended: {', '.join(ended.get('transfers_terminated', [])) or 'none'}")
    denials.append(
        _attempt(say, "the next read, after revocation",
                 lambda: data.query("SELECT province FROM data LIMIT 1"),
                 ("agreement_terminated", "token_inactive", "transfer_not_started"), (401, 403))
    )
    say.check(
        _consumer_told(space, urls, data.transfer_id),
        "the consumer connector was told over DSP: its transfer is TERMINATED",
    )
    return denials


def _non_eu_job(space: DemoSpace, run: JobRun, say: Narrator) -> Denial:
    """The same team, same agreement, but a job running outside the EU: refused."""
    with Job.from_config(space.consumer_config, JOB_ID + "-us", AI_TRAINING, NON_EU_SITE) as remote:

        def read_outside_eu() -> pa.Table:
            dataset = remote.dataset(DATASET_IRI, run.provider_dsp, run.provider_id)
            return dataset.query("SELECT province, avg(kwh) AS kwh FROM data GROUP BY province")

        site = NON_EU_SITE.rsplit("/", 1)[-1]
        return _attempt(
            say, f"a job of the same team at compute site {site}, outside the EU", read_outside_eu,
            ("policy_denied", "transfer_failed"), (403, None),
        )


def _consumer_told(space: DemoSpace, urls: Endpoints, transfer_id: str) -> bool:
    deadline = time.monotonic() + NOTICE_WAIT_SECONDS
    with _management(urls.consumer, space.consumer_config) as api:
        while time.monotonic() < deadline:
            state = api.get(f"/transfers/{transfer_id}").json().get("state")
            if state == "TERMINATED":
                return True
            time.sleep(0.05)
    return False


# --- step 7: evidence ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditSummary:
    intact: bool
    entries: int
    tamper_detected: bool
    lineage: dict[str, Any]


def audit_and_lineage(
    space: DemoSpace, say: Narrator, run: JobRun, denials: Sequence[Denial]
) -> AuditSummary:
    """Step 7: the provider's hash-chained audit log verified; an export tampered with is caught."""
    from connector.config import load_config

    say.step(7, "Evidence for compliance officers: audit log and lineage")
    code, output = run_cli(["audit", "verify", "--config", str(space.provider_config)], say)
    line = say.short(output.strip())
    say.say(line)
    entries = _entries(line)
    # the reads and the data plane's own denials (a transfer refused at its start is not a read)
    expected = run.reads + sum(1 for denial in denials if denial.denied and denial.status is not None)
    intact = say.check(
        code == 0 and entries >= expected,
        f"the provider's audit chain is intact: {entries} signed entries (every read and every denial)",
        f"exit {code}, expected at least {expected} entries",
    )
    export = space.root / "audit-export.jsonl"
    _cli(["audit", "export", "--config", str(space.provider_config), "--out", str(export)], say)
    key = load_config(space.provider_config).load_key().public_multibase
    code, output = run_cli(["audit", "verify", str(export), "--key", key], say)
    say.say(say.short(output.strip()))
    say.check(code == 0, "the export verifies offline against the provider's key")
    tampered = space.root / "audit-export-tampered.jsonl"
    tampered.write_text(_tamper(export.read_text(encoding="utf-8")), encoding="utf-8")
    say.say("a copy with one entry's row count changed:")
    code, output = run_cli(["audit", "verify", str(tampered), "--key", key], say)
    say.say(say.short(output.strip()))
    detected = say.check(code == 1, "the change is detected")

    lineage = run.job.lineage()
    lineage_file = space.root / "lineage.jsonld"
    lineage_file.write_text(json.dumps(lineage, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    say.say(f"lineage record of job {JOB_ID} (PROV-O JSON-LD, {say.short(str(lineage_file))}):")
    _print_lineage(lineage, say)
    reads = [node for node in lineage.get("@graph", []) if isinstance(node, dict) and "checksum" in node]
    say.check(len(reads) == run.reads, f"it names all {run.reads} reads, each with the SHA-256 of its bytes")
    return AuditSummary(intact, entries, detected, lineage)


def _entries(line: str) -> int:
    words = line.split()
    for index, word in enumerate(words[:-1]):
        if words[index + 1].startswith("entries") and word.isdigit():
            return int(word)
    return 0


def _tamper(export: str) -> str:
    """Change one number inside the last entry: what a tidy-up of the evidence would look like."""
    lines = export.splitlines()
    for index in range(len(lines) - 1, 0, -1):
        entry = json.loads(lines[index])
        body = entry.get("body") if isinstance(entry, dict) else None
        if isinstance(body, dict) and isinstance(body.get("rows"), int):
            body["rows"] += 1
            lines[index] = json.dumps(entry)
            return "\n".join(lines) + "\n"
    raise DemoError("the audit export holds no read entry to alter")


def _print_lineage(lineage: dict[str, Any], say: Narrator) -> None:
    for node in lineage.get("@graph", []):
        if not isinstance(node, dict):
            continue
        kind = node.get("@type")
        if kind == "prov:Activity":
            say.say(f"  activity {node['@id']} by {node.get('wasAssociatedWith')}")
            say.say(f"    purpose {node.get('purpose')}, at {node.get('atLocation')}")
        elif "checksum" in node:
            digest = node["checksum"].get("checksumValue", "")
            query = str(node.get("query", ""))
            say.say(f"  used {node.get('rows')} rows, sha256 {digest[:16]}...: {query[:60]}")
        elif kind == "odrl:Agreement":
            say.say(f"  under agreement {node['@id']} for {node.get('purpose')}")


# --- the whole story -----------------------------------------------------------------------------


def run_steps(space: DemoSpace, urls: Endpoints, say: Narrator) -> None:
    """Steps 2 to 7 against running servers (in this process or not)."""
    publish_catalogue(space, urls, say)
    search_catalogue(urls, say)
    table = offer_dataset(space, urls, say)
    run = run_ai_job(space, urls, say, table)
    try:
        denials = denied_reads(space, urls, say, run)
        audit_and_lineage(space, say, run, denials)
    finally:
        run.job.close()


def _provider_key(root: Path) -> str:
    from connector.config import load_config

    return load_config(root / "provider" / "connector.toml").load_key().public_multibase


def print_pages(space: DemoSpace, urls: Endpoints, say: Narrator) -> None:
    """Where the web pages of the running data space are, and the tokens that log in to them."""
    from connector.config import load_config

    say.say("\nThe data space keeps running; its pages (open them in a browser):", 0)
    say.say(f"catalogue search   {urls.catalogue}/catalogue/search")
    say.say(f"provider connector {urls.provider}/pages/  (agreements, offers, audit log, register)")
    say.say(f"consumer connector {urls.consumer}/pages/  (request access, agreements, transfers)")
    say.say(f"public register    {urls.provider}/pages/register  (lists the agreements of the offers the")
    say.say("                   provider chooses on its Offers page)")
    say.say("log in with (local demo only):")
    say.say(f"  provider operator token  {load_config(space.provider_config).management.token}")
    say.say(f"  consumer operator token  {load_config(space.consumer_config).management.token}")
    say.say(f"  publisher token          {space.publisher_tokens[PROVIDER_PUBLISHER]}")
    say.say("Press Ctrl-C to stop.", 0)


def _until_interrupted() -> None:
    stop = threading.Event()
    try:
        while not stop.wait(3600):
            pass
    except KeyboardInterrupt:
        return


def run_demo(
    directory: Path | None, keep: bool, out: TextIO, *, serve: bool = False,
    wait: Callable[[], None] = _until_interrupted,
) -> int:
    """The demo in ``directory`` (a new temporary folder when None); 0 when every check held.

    With ``serve`` the data space keeps running after the story (its page URLs printed) until
    ``wait`` returns - by default, until Ctrl-C.
    """
    root = (directory or Path(tempfile.mkdtemp(prefix="sluis-demo-"))).resolve()
    root.mkdir(parents=True, exist_ok=True)
    say = Narrator(out, root)
    say.say(f"Sluis demo: a local data space on {HOST} only, embedded storage in {root}", 0)
    try:
        space = set_up(root, say)
        say.say("starting the servers:")
        with serve_in_process(space, say) as urls:
            run_steps(space, urls, say)
            if serve and not say.failures:
                print_pages(space, urls, say)
                wait()
    except Exception as caught:  # the composition root: any failure ends the demo with exit 1
        _log.exception("demo step failed")
        say.failures.append(f"the demo stopped: {caught}")
        say.say(f"\n[FAILED] the demo stopped: {caught}", 0)
    finally:
        if directory is None and not keep:
            shutil.rmtree(root, ignore_errors=True)
    say.say("", 0)
    if say.failures:
        say.say(f"FAILED: {len(say.failures)} of {say.passed + len(say.failures)} checks did not hold:", 0)
        for failure in say.failures:
            say.say(f"- {failure}")
        return 1
    kept = directory is not None or keep
    say.say(f"All {say.passed} checks held.", 0)
    if kept:
        say.say(f"The data space's files are in {root}; check the evidence again, offline:", 0)
        say.say(f"sluis agreement verify {root / 'agreement-bundle.json'}")
        say.say(f"sluis audit verify {root / 'audit-export.jsonl'} --key {_provider_key(root)}")
        say.say(f"sluis audit verify --config {root / 'provider' / 'connector.toml'}")
    else:
        say.say("Temporary files removed (keep them with --keep or --dir DIR).", 0)
    return 0
