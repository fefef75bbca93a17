"""Bring every accepted input form to one shape: expanded JSON-LD node objects.

Three front ends feed the parser:

* the DSP 2025-1 compact form (``"@type": "Offer"``, ``"permission": [...]``, operands as
  ``"purpose"``, ``"odrl:purpose"`` or ``{"@id": ...}``), with no ``@context`` or with the DSP
  context, is read by :func:`expand_compact` with the DSP ODRL profile's term definitions.
  This is the hot path of a connector and must not round-trip through a JSON-LD processor;
* any other JSON-LD is expanded by ``vocab.jsonld.expand`` (offline contexts only);
* RDF graphs (Turtle) are turned into node objects by :func:`nodes_from_graph`.

The result is a list of node objects: ``{"@id": ..., "@type": [...], IRI: [items]}`` where an
item is ``{"@id": IRI}``, ``{"@value": v, "@type"?: datatype}``, ``{"@list": [items]}`` or a
nested node object.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from rdflib import BNode, Graph, Literal, URIRef
from rdflib.collection import Collection
from rdflib.namespace import RDF

from policies import terms
from policies.errors import PolicyError

Node = dict[str, Any]

# How a compact key is read: the property IRI and whether its values are IRIs, vocabulary
# terms ("use", "odrl:purpose"), literals, or nested nodes.
_IRI, _VOCAB, _LITERAL, _NODE = "iri", "vocab", "literal", "node"
_COMPACT_KEYS: Final[dict[str, tuple[str, str]]] = {
    "permission": (terms.odrl("permission"), _NODE),
    "prohibition": (terms.odrl("prohibition"), _NODE),
    "obligation": (terms.odrl("obligation"), _NODE),
    "duty": (terms.odrl("duty"), _NODE),
    "constraint": (terms.odrl("constraint"), _NODE),
    "refinement": (terms.odrl("refinement"), _NODE),
    "remedy": (terms.odrl("remedy"), _NODE),
    "consequence": (terms.odrl("consequence"), _NODE),
    "and": (terms.odrl("and"), _NODE),
    "or": (terms.odrl("or"), _NODE),
    "xone": (terms.odrl("xone"), _NODE),
    "andSequence": (terms.odrl("andSequence"), _NODE),
    "action": (terms.odrl("action"), _VOCAB),
    "leftOperand": (terms.odrl("leftOperand"), _VOCAB),
    "operator": (terms.odrl("operator"), _VOCAB),
    "conflict": (terms.odrl("conflict"), _VOCAB),
    "rightOperand": (terms.odrl("rightOperand"), _LITERAL),
    "rightOperandReference": (terms.odrl("rightOperandReference"), _IRI),
    "dataType": (terms.odrl("dataType"), _IRI),
    "unit": (terms.odrl("unit"), _IRI),
    "status": (terms.odrl("status"), _LITERAL),
    "target": (terms.odrl("target"), _IRI),
    "assigner": (terms.odrl("assigner"), _IRI),
    "assignee": (terms.odrl("assignee"), _IRI),
    "profile": (terms.odrl("profile"), _IRI),
    "inheritFrom": (terms.odrl("inheritFrom"), _IRI),
    "partOf": (terms.odrl("partOf"), _IRI),
    "source": (terms.odrl("source"), _IRI),
    "hasPolicy": (terms.odrl("hasPolicy"), _IRI),
    "timestamp": (terms.DSPACE_NS + "timestamp", _LITERAL),
    "value": (terms.RDF_NS + "value", _VOCAB),
    # DSP messages and catalogs that embed a policy: the policy is found inside them.
    "offer": (terms.DSPACE_NS + "offer", _NODE),
    "agreement": (terms.DSPACE_NS + "agreement", _NODE),
    "dataset": ("http://www.w3.org/ns/dcat#dataset", _NODE),
    "rdf:value": (terms.RDF_NS + "value", _VOCAB),
}
# Where a compact key that no context defines is recorded (with no values).
UNMAPPED_NS: Final = "urn:sluis:unmapped-key:"
# The ODRL context maps these to keywords.
_KEYWORD_ALIASES: Final = {"uid": "@id", "id": "@id", "type": "@type"}
# Limits protect the recursive walk from hostile documents.
MAX_DEPTH: Final = 48  # nesting of nodes (policy > rule > duty > constraint > logical ...)
MAX_ITEMS: Final = 10_000  # values of one property


def expand_compact(doc: Mapping[str, Any]) -> list[Node]:
    """The expanded node for a policy in DSP compact form (no context or the DSP context)."""
    return [_compact_node(doc, "$", 0)]


def _compact_node(doc: Mapping[str, Any], location: str, depth: int) -> Node:
    if depth > MAX_DEPTH:
        raise PolicyError("too-deep", f"the policy nests more than {MAX_DEPTH} levels", location)
    node: Node = {}
    for raw_key, raw_value in doc.items():
        key = _KEYWORD_ALIASES.get(raw_key, raw_key)
        if key == "@context":
            continue
        where = f"{location}.{raw_key}"
        if key == "@id":
            if not isinstance(raw_value, str):
                raise PolicyError("invalid-uid", "a uid / @id must be a string IRI", where)
            node["@id"] = terms.expand_term(raw_value) if not raw_value.startswith("_:") else raw_value
            continue
        if key == "@type":
            types = raw_value if isinstance(raw_value, list) else [raw_value]
            if not all(isinstance(t, str) for t in types):
                raise PolicyError("invalid-type", "@type must be a string or a list of strings", where)
            node["@type"] = [terms.expand_term(t) for t in types]
            continue
        iri, mode = _COMPACT_KEYS.get(key) or (terms.expand_term(key), _LITERAL)
        if ":" not in iri:
            # A bare name that no context defines is not part of the RDF model; it is kept
            # under a marker so that the reader can refuse one on an ODRL node (a misspelt
            # ``prohibitions`` must not silently vanish) while messages around it keep theirs.
            node[UNMAPPED_NS + key] = []
            continue
        if isinstance(raw_value, Mapping) and set(raw_value) == {"@set"}:
            raw_value = raw_value["@set"]  # a JSON-LD set is its members
        values = raw_value if isinstance(raw_value, list) else [raw_value]
        if len(values) > MAX_ITEMS:
            raise PolicyError("too-many-values", f"more than {MAX_ITEMS} values", where)
        items = [
            _compact_item(value, mode, f"{where}[{i}]" if isinstance(raw_value, list) else where, depth)
            for i, value in enumerate(values)
        ]
        if mode == _LITERAL and isinstance(raw_value, list) and iri == terms.odrl("rightOperand"):
            node[iri] = [{"@list": items}]
        else:
            node[iri] = items
    return node


def _compact_item(value: Any, mode: str, location: str, depth: int) -> Any:
    if isinstance(value, Mapping):
        if "@value" in value:
            item: dict[str, Any] = {"@value": value["@value"]}
            if isinstance(value.get("@type"), str):
                item["@type"] = terms.expand_term(value["@type"])
            if isinstance(value.get("@language"), str):
                item["@language"] = value["@language"]
            return item
        if "@list" in value and isinstance(value["@list"], list):
            return {"@list": [_compact_item(v, mode, location, depth + 1) for v in value["@list"]]}
        keys = {_KEYWORD_ALIASES.get(k, k) for k in value} - {"@context"}
        if keys == {"@id"}:
            ident = value.get("@id", value.get("uid", value.get("id")))
            if not isinstance(ident, str):
                raise PolicyError("invalid-iri", "@id must be a string", location)
            return {"@id": terms.expand_term(ident) if mode == _VOCAB else _prefixed(ident)}
        return _compact_node(value, location, depth + 1)
    if mode == _NODE:
        if isinstance(value, str):
            return {"@id": _prefixed(value)}
        raise PolicyError("invalid-node", f"expected an object, found {type(value).__name__}", location)
    if mode == _VOCAB:
        if not isinstance(value, str):
            raise PolicyError("invalid-term", f"expected a term or IRI, found {value!r}", location)
        return {"@id": terms.expand_term(value)}
    if mode == _IRI:
        if not isinstance(value, str):
            raise PolicyError("invalid-iri", f"expected an IRI, found {value!r}", location)
        return {"@id": _prefixed(value)}
    if value is None or isinstance(value, list):
        raise PolicyError("invalid-value", f"unsupported value {value!r}", location)
    return {"@value": value}


def _prefixed(value: str) -> str:
    """Expand ``odrl:x`` / ``sluis:x`` style names; leave absolute IRIs and other names alone."""
    prefix, sep, rest = value.partition(":")
    if sep and prefix in terms.PREFIXES and not rest.startswith("//"):
        return terms.PREFIXES[prefix] + rest
    return value


def nodes_from_graph(graph: Graph) -> list[Node]:
    """Node objects for every subject of an RDF graph; RDF lists become ``@list`` items."""
    nodes: dict[str, Node] = {}
    list_heads = set(graph.subjects(RDF.first, None))
    for subject in set(graph.subjects()):
        if subject in list_heads:
            continue
        node: Node = {"@id": _term_id(subject)}
        for predicate, obj in graph.predicate_objects(subject):
            if predicate == RDF.type:
                node.setdefault("@type", []).append(str(obj))
                continue
            node.setdefault(str(predicate), []).append(_graph_item(graph, obj, list_heads))
        nodes[node["@id"]] = node
    return list(nodes.values())


def _graph_item(graph: Graph, obj: Any, list_heads: set[Any]) -> Any:
    if isinstance(obj, Literal):
        item: dict[str, Any] = {"@value": obj.toPython() if obj.datatype is None else str(obj)}
        if obj.datatype is not None:
            item["@type"] = str(obj.datatype)
        if obj.language:
            item["@language"] = obj.language
        if obj.datatype is None:
            item["@value"] = str(obj)
        return item
    if obj in list_heads or obj == RDF.nil:
        return {"@list": [_graph_item(graph, member, list_heads) for member in Collection(graph, obj)]}
    return {"@id": _term_id(obj)}


def _term_id(term: Any) -> str:
    if isinstance(term, BNode):
        return f"_:{term}"
    if isinstance(term, URIRef):
        return str(term)
    return str(term)
