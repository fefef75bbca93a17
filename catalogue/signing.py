"""Record signatures: a W3C Data Integrity ``eddsa-jcs-2022`` proof on every stored record.

What is signed is a deterministic JSON form of the record's RDF: its statements as N-Triples
lines (blank nodes relabelled canonically when there are any), sorted. JCS over that JSON is
fast and needs no JSON-LD processing; RDF canonicalisation suites measured 25x slower and
silently drop undefined terms. Any tool that can produce the same lines can verify our proofs
with an off-the-shelf eddsa-jcs-2022 verifier.

A publisher may sign its own record: the proof travels inside the record as a JSON literal on
the dataset (``sluis:recordProof``), is removed before signing and validation, verified on
publish, and kept next to the node's proof in the record's proof set.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.term import Node

from catalogue.canonical import canonical_graph
from connector.identity import (
    IdentityError,
    KeyPair,
    ProofError,
    public_key_from_multibase,
    sign_document,
    verify_document,
)
from vocab.jsonld import SLUIS_CONTEXT as RECORD_CONTEXT
from vocab.namespaces import SLUIS

_log = logging.getLogger(__name__)

RECORD_DOCUMENT_TYPE = "CatalogueRecord"
NODE_KEY_FILE = "node-key.pem"
PUBLISHER_PROOF = SLUIS.recordProof
# A record carries its publisher's proof and perhaps a co-signer's; more is abuse.
MAX_PUBLISHER_PROOFS = 4
# A proof object is a few hundred bytes.
MAX_PROOF_CHARS = 8 * 1024

KeyLookup = Callable[[str], Ed25519PublicKey]


def ntriples_lines(graph: Graph, labels: Mapping[BNode, str] | None = None) -> list[str]:
    """The graph's statements as N-Triples lines (blank nodes renamed by ``labels`` when given)."""

    # A record repeats its subjects, predicates and vocabulary IRIs many times; rdflib's n3()
    # is costly enough that writing each distinct term once halves the time of this function.
    written: dict[Node, str] = {}

    def term(node: Node) -> str:
        found = written.get(node)
        if found is not None:
            return found
        if labels is not None and isinstance(node, BNode):
            text = labels[node]
        elif isinstance(node, Literal) and ("\n" in node or "\r" in node):
            text = _one_line_literal(node)
        else:
            text = str(node.n3())
        written[node] = text
        return text

    return [f"{term(s)} {term(p)} {term(o)} ." for s, p, o in graph]


def _one_line_literal(literal: Literal) -> str:
    """A literal with line breaks as one N-Triples line (rdflib writes it triple-quoted).

    Stored record content is read back line by line as N-Triples, and the store loads it as
    N-Quads; both need every statement on one line. Other literals keep rdflib's form, which is
    already valid N-Triples.
    """
    text = str(literal).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    if literal.language:
        return f'"{text}"@{literal.language}'
    if literal.datatype is not None:
        return f'"{text}"^^<{literal.datatype}>'
    return f'"{text}"'


class _NotATree(Exception):
    pass


MAX_TREE_DEPTH = 64
"""Deepest blank-node tree labelled by hashes (the labelling recurses once per level): a chain
of 2,000 blank nodes, written flat in Turtle, overflowed Python's stack (a 500). Deeper trees
go to the general labelling, which :data:`catalogue.publish.MAX_CANONICAL_BLANK_NODES` bounds."""


def _tree_labels(graph: Graph) -> dict[BNode, str] | None:
    """Canonical blank node labels when blank nodes form trees (what Turtle ``[ ]`` writes).

    Each blank node is named by a hash of its own statements (nested blank nodes by their
    names), which does not depend on parser labels. Shared or cyclic blank nodes, or two with the
    same content, give None and the general algorithm is used instead.
    """
    referenced: dict[BNode, int] = {}
    for _, _, value in graph:
        if isinstance(value, BNode):
            referenced[value] = referenced.get(value, 0) + 1
            if referenced[value] > 1:
                return None
    blanks = {subject for subject in graph.subjects() if isinstance(subject, BNode)} | set(referenced)
    labels: dict[BNode, str] = {}
    visiting: set[BNode] = set()

    def label(node: BNode) -> str:
        known = labels.get(node)
        if known is not None:
            return known
        if node in visiting or len(visiting) >= MAX_TREE_DEPTH:
            raise _NotATree
        visiting.add(node)
        lines = sorted(
            f"{predicate.n3()} {label(value) if isinstance(value, BNode) else value.n3()}"
            for predicate, value in graph.predicate_objects(node)
        )
        visiting.discard(node)
        name = "_:t" + hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()[:32]
        labels[node] = name
        return name

    try:
        for node in blanks:
            label(node)
    except _NotATree:
        return None
    if len(set(labels.values())) != len(labels):
        return None
    return labels


def canonical_statements(graph: Graph) -> list[str]:
    """The record's statements as sorted N-Triples lines, blank nodes labelled canonically."""
    has_blank = any(isinstance(term, BNode) for triple in graph for term in (triple[0], triple[2]))
    if not has_blank:
        return sorted(set(ntriples_lines(graph)))
    labels = _tree_labels(graph)
    if labels is not None:
        return sorted(set(ntriples_lines(graph, labels)))
    return sorted(set(ntriples_lines(canonical_graph(graph))))  # bounded: catalogue.canonical


def canonical_statements_of(triples: Sequence[tuple[str, str, str]]) -> list[str] | None:
    """:func:`canonical_statements` of statements given as N-Triples terms (the compact form).

    The same lines, byte for byte: literals are written as rdflib writes them (only ``\\``,
    ``"``, line feed and carriage return escaped), which is what every proof produced so far
    signed, and blank nodes forming trees get the same hash-of-their-statements labels. None when
    the blank nodes do not form trees: the caller then canonicalises an rdflib graph (rare).
    """
    written: dict[str, str] = {}

    def term(text: str) -> str:
        found = written.get(text)
        if found is None:
            found = written[text] = _rdflib_form(text)
        return found

    rows = [(s, term(p), term(o)) for s, p, o in triples]
    if not any(s[:2] == "_:" or o[:2] == "_:" for s, _, o in rows):
        return sorted({f"{s} {p} {o} ." for s, p, o in rows})
    labels = _tree_labels_of(rows)
    if labels is None:
        return None
    return sorted({f"{labels.get(s, s)} {p} {labels.get(o, o)} ." for s, p, o in rows})


def _rdflib_form(text: str) -> str:
    """A term as the rdflib path writes it in a signed statement (``ntriples_lines``).

    Typed literals go through rdflib itself: it normalises some lexical forms as it parses
    (``"01"^^xsd:integer`` becomes ``"1"``), and a verifier reads the stored record with rdflib.
    """
    if text[:1] != '"':
        return text  # IRIs and blank nodes are written alike
    end = text.rfind('"')
    suffix = text[end + 1 :]
    if suffix.startswith("^^"):
        return _typed_literal_form(text)
    if "\\" not in text:
        return text
    lexical = _ESCAPED.sub(_unescape, text[1:end])
    encoded = lexical.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{encoded}"{suffix}'


@lru_cache(maxsize=65_536)  # dates, sizes and flags repeat across records
def _typed_literal_form(text: str) -> str:
    end = text.rfind('"')
    lexical = _ESCAPED.sub(_unescape, text[1:end]) if "\\" in text[:end] else text[1:end]
    value = Literal(lexical, datatype=URIRef(text[end + 4 : -1]))
    return _one_line_literal(value) if ("\n" in value or "\r" in value) else str(value.n3())


_ESCAPED = re.compile(r"\\(?:u([0-9A-Fa-f]{4})|U([0-9A-Fa-f]{8})|(.))", re.DOTALL)
_ESCAPES = {"t": "\t", "b": "\b", "n": "\n", "r": "\r", "f": "\f", '"': '"', "'": "'", "\\": "\\"}


def _unescape(match: re.Match[str]) -> str:
    short, long, char = match.groups()
    if short is not None or long is not None:
        return chr(int(short or long, 16))
    return _ESCAPES.get(char, char)


def _label_form(term: str) -> str:
    """A term as :func:`_tree_labels` hashes it into a blank node's label: rdflib's ``n3()``.

    The signed lines write a literal holding a line break on one line, but the labels have
    always hashed ``n3()``, which writes it triple-quoted; a label computed from the one-line
    form named the blank node differently, so a proof made on one path failed on the other.
    Only literals with an escape can differ; the others are written alike.
    """
    if term[:1] != '"' or "\\" not in term:
        return term
    return _n3_of_literal(term)


@lru_cache(maxsize=4096)
def _n3_of_literal(term: str) -> str:
    end = term.rfind('"')
    lexical = _ESCAPED.sub(_unescape, term[1:end])
    suffix = term[end + 1 :]
    if suffix.startswith("@"):
        return str(Literal(lexical, lang=suffix[1:]).n3())
    if suffix.startswith("^^<"):
        return str(Literal(lexical, datatype=URIRef(suffix[3:-1])).n3())
    return str(Literal(lexical).n3())


def _tree_labels_of(rows: Sequence[tuple[str, str, str]]) -> dict[str, str] | None:
    """:func:`_tree_labels` on N-Triples terms."""
    out: dict[str, list[tuple[str, str]]] = {}
    referenced: set[str] = set()
    for s, p, o in rows:
        out.setdefault(s, []).append((p, o))
        if o[:2] == "_:":
            if o in referenced:
                return None
            referenced.add(o)
    blanks = [s for s in out if s[:2] == "_:"] + [b for b in referenced if b not in out]
    labels: dict[str, str] = {}
    visiting: set[str] = set()

    def label(node: str) -> str:
        known = labels.get(node)
        if known is not None:
            return known
        if node in visiting or len(visiting) >= MAX_TREE_DEPTH:
            raise _NotATree
        visiting.add(node)
        lines = sorted(f"{p} {label(o) if o[:2] == '_:' else _label_form(o)}" for p, o in out.get(node, ()))
        visiting.discard(node)
        name = "_:t" + hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()[:32]
        labels[node] = name
        return name

    try:
        for node in blanks:
            label(node)
    except _NotATree:
        return None
    if len(set(labels.values())) != len(labels):
        return None
    return labels


def record_document(graph: Graph, subject: str, statements: Sequence[str] | None = None) -> dict[str, Any]:
    """The JSON form of a record that proofs sign (without its proofs).

    ``statements`` are :func:`canonical_statements` of ``graph`` when the caller has them already
    (a harvester computes them once per record for its change digest and its proof check).
    """
    return {
        "@context": RECORD_CONTEXT,
        "type": RECORD_DOCUMENT_TYPE,
        "id": subject,
        "statements": list(statements) if statements is not None else canonical_statements(graph),
    }


def did_key_for(key: KeyPair) -> tuple[str, str]:
    """A self-describing ``did:key`` and its verification method: verifiable with no network."""
    did = f"did:key:{key.public_multibase}"
    return did, f"{did}#{key.public_multibase}"


def did_key_lookup(verification_method: str) -> Ed25519PublicKey:
    """The public key a ``did:key`` verification method names; anything else is unknown."""
    if not verification_method.startswith("did:key:"):
        raise ProofError("unknown_key", f"no trusted key for verification method {verification_method!r}")
    did, _, fragment = verification_method.partition("#")
    multibase = did[len("did:key:") :]
    if fragment and fragment != multibase:
        raise ProofError("unknown_key", f"{verification_method!r} names a key its DID does not hold")
    try:
        return public_key_from_multibase(multibase)
    except IdentityError as error:
        raise ProofError("unknown_key", f"{verification_method!r}: {error.message}") from None


class TrustedKeys:
    """Verification method ids → public keys: pinned keys first, then self-describing did:key."""

    def __init__(self, keys: Mapping[str, Ed25519PublicKey] | None = None) -> None:
        self._keys = dict(keys or {})

    def add(self, verification_method: str, key: Ed25519PublicKey) -> None:
        self._keys[verification_method] = key

    def __call__(self, verification_method: str) -> Ed25519PublicKey:
        key = self._keys.get(verification_method)
        return key if key is not None else did_key_lookup(verification_method)


def load_node_key(data_dir: Path) -> KeyPair:
    """The node's signing key in ``DIR/node-key.pem``, created (mode 0600) on first use."""
    path = data_dir / NODE_KEY_FILE
    if path.exists():
        return KeyPair.load(path)
    key = KeyPair.generate()
    key.save(path)
    _log.info("created node key", extra={"path": str(path)})
    return key


def proofs_as_list(proof: Any) -> list[dict[str, Any]]:
    if proof is None:
        return []
    return [dict(item) for item in (proof if isinstance(proof, list) else [proof])]


class RecordSigner:
    """Signs records with the node's key; ``sign`` adds the node's proof to the proof set."""

    def __init__(
        self, key: KeyPair, verification_method: str | None = None, *, key_file: Path | None = None
    ) -> None:
        self._key = key
        self.verification_method = verification_method or did_key_for(key)[1]
        self.key_file = key_file
        """Where the key is kept (``load_node_key``): ingest workers load it there and sign the
        records they work, so the key itself never crosses a process boundary."""

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self._key.public_key

    @property
    def public_multibase(self) -> str:
        return self._key.public_multibase

    def sign(self, graph: Graph, subject: str, publisher_proofs: Sequence[Mapping[str, Any]] = ()) -> Any:
        """The proof (one object, or a list when the publisher signed too) for the stored record."""
        return self.sign_statements(canonical_statements(graph), subject, publisher_proofs)

    def sign_statements(
        self, statements: Sequence[str], subject: str, publisher_proofs: Sequence[Mapping[str, Any]] = ()
    ) -> Any:
        """:meth:`sign` over the record's canonical statements, already computed by the caller."""
        document = record_document(Graph(), subject, statements)
        if publisher_proofs:
            document["proof"] = [dict(proof) for proof in publisher_proofs]
        signed = sign_document(document, self._key, self.verification_method)
        return signed["proof"]

    def signed_document(self, graph: Graph, subject: str, proof: Any) -> dict[str, Any]:
        document = record_document(graph, subject)
        document["proof"] = proof
        return document


def verify_record(
    graph: Graph, subject: str, proof: Any, key_for: KeyLookup, statements: Sequence[str] | None = None
) -> list[str]:
    """Verify a stored record's proof set; return the verification methods that verified.

    Raises ``ProofError`` when the record or a proof was altered or a key is unknown.
    """
    document = record_document(graph, subject, statements)
    document["proof"] = proof
    return verify_document(document, key_for)


def take_publisher_proofs(graph: Graph, subject: URIRef) -> list[dict[str, Any]]:
    """Remove the publisher's proofs from the record graph and return them (parsed JSON).

    Raises ``ProofError`` for a proof that is not a JSON object.
    """
    found = list(graph.objects(subject, PUBLISHER_PROOF))
    if len(found) > MAX_PUBLISHER_PROOFS:
        raise ProofError(
            "too_many_proofs", f"a record may carry at most {MAX_PUBLISHER_PROOFS} publisher proofs"
        )
    proofs: list[dict[str, Any]] = []
    for value in found:
        graph.remove((subject, PUBLISHER_PROOF, value))
        text = str(value) if isinstance(value, Literal) else ""
        if len(text) > MAX_PROOF_CHARS:
            raise ProofError(
                "malformed_proof", f"a publisher proof is longer than {MAX_PROOF_CHARS} characters"
            )
        try:
            parsed = json.loads(text)
        except ValueError:
            raise ProofError("malformed_proof", "sluis:recordProof must be a JSON object literal") from None
        if not isinstance(parsed, dict):
            raise ProofError("malformed_proof", "sluis:recordProof must be a JSON object literal")
        proofs.append(parsed)
    return proofs


def verify_publisher_proofs(
    graph: Graph, subject: str, proofs: Sequence[Mapping[str, Any]], key_for: KeyLookup
) -> list[str]:
    """Verify the publisher's own proofs over the record (without them); raise ``ProofError``."""
    if not proofs:
        return []
    document = record_document(graph, subject)
    document["proof"] = [dict(proof) for proof in proofs] if len(proofs) > 1 else dict(proofs[0])
    return verify_document(document, key_for)


def verify_publisher_statements(
    statements: Sequence[str], subject: str, proofs: Sequence[Mapping[str, Any]], key_for: KeyLookup
) -> list[str]:
    """:func:`verify_publisher_proofs` over canonical statements already computed."""
    if not proofs:
        return []
    document = record_document(Graph(), subject, statements)
    document["proof"] = [dict(proof) for proof in proofs] if len(proofs) > 1 else dict(proofs[0])
    return verify_document(document, key_for)


def sign_as_publisher(
    graph: Graph, subject: str, key: KeyPair, verification_method: str | None = None
) -> str:
    """The JSON text of a publisher proof to add to a record as ``sluis:recordProof`` (for clients)."""
    method = verification_method or did_key_for(key)[1]
    signed = sign_document(record_document(graph, subject), key, method)
    return json.dumps(signed["proof"], sort_keys=True)
