"""Parse ODRL 2.2 policies (JSON-LD, DSP compact JSON, Turtle) into the immutable model.

Errors are precise: each ``PolicyError`` names what is wrong and where
(``$.permission[0].constraint[1]``). Parsing also derives the *atomic* rules: policy-level
``target`` / ``assigner`` / ``assignee`` / ``action`` are pushed into every rule, and a rule
with several actions, targets or parties is split into one rule per combination (ODRL 2.2
Information Model, 2.7.1 "Compact Policy"). Rules of ``inheritFrom`` parents are appended.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping
from typing import Any, Final

from policies import terms
from policies._forms import UNMAPPED_NS, Node, expand_compact, nodes_from_graph
from policies.errors import PolicyError
from policies.model import (
    Action,
    Constraint,
    ConstraintNode,
    Entity,
    LogicalConstraint,
    Policy,
    Rule,
    RuleKind,
    Value,
)

# Limits: a policy is a small document; anything bigger is a mistake or an attack.
MAX_POLICY_BYTES: Final = 1024 * 1024  # 1 MiB of JSON or Turtle
MAX_RULES: Final = 1_000  # atomic rules after compact expansion and inheritance
MAX_CONSTRAINT_DEPTH: Final = 16  # nested logical constraints
MAX_INHERITANCE_DEPTH: Final = 8  # chain of inheritFrom parents
DEFAULT_BASE: Final = "urn:sluis:policy:"

# The contexts whose term definitions the compact reader implements exactly.
_DSP_CONTEXTS: Final = frozenset(
    {"https://w3id.org/dspace/2025/1/context.jsonld", "https://w3id.org/dspace/2025/1/odrl-profile.jsonld"}
)
_RULE_KEYS: Final[tuple[tuple[str, RuleKind], ...]] = (
    (terms.odrl("permission"), "permission"),
    (terms.odrl("prohibition"), "prohibition"),
    (terms.odrl("obligation"), "obligation"),
)
_LOGICAL_BY_IRI: Final = {terms.odrl(name): name for name in terms.LOGICAL_NAMES}
# The ODRL properties each kind of node may carry. Any other ODRL property (a misspelt
# ``odrl:constraints``, ``odrl:status``, the deprecated ``odrl:failure``, an ``odrl:not``) or an
# undefined compact key would otherwise be dropped and the policy read as something weaker
# than written, so the policy is refused, naming the property.
_POLICY_PROPERTIES: Final = frozenset(
    terms.odrl(n)
    for n in (
        "permission",
        "prohibition",
        "obligation",
        "target",
        "assigner",
        "assignee",
        "action",
        "profile",
        "conflict",
        "inheritFrom",
        "constraint",
        "uid",
    )
)
_RULE_PROPERTIES: Final = frozenset(
    terms.odrl(n)
    for n in (
        "action",
        "target",
        "assigner",
        "assignee",
        "constraint",
        "duty",
        "remedy",
        "consequence",
        "uid",
    )
)
_CONSTRAINT_PROPERTIES: Final = frozenset(
    {
        terms.odrl(n)
        for n in (
            "leftOperand",
            "operator",
            "rightOperand",
            "rightOperandReference",
            "dataType",
            "unit",
            "uid",
        )
    }
    | set(_LOGICAL_BY_IRI)
)
_ACTION_PROPERTIES: Final = frozenset({terms.odrl("refinement"), terms.odrl("uid")})

InheritSource = Policy | Mapping[str, Any] | str | bytes


def parse_policy(
    source: str | bytes | Mapping[str, Any],
    media_type: str | None = None,
    base: str | None = None,
    *,
    inherit: Mapping[str, InheritSource] | None = None,
) -> Policy:
    """Parse one ODRL policy.

    ``source`` is JSON-LD (a mapping or its text), DSP compact JSON, or Turtle; ``media_type``
    forces the reading (``application/ld+json``, ``application/json``, ``text/turtle``),
    otherwise it is sniffed. ``inherit`` maps the IRIs a policy may ``inheritFrom`` to those
    parent policies (parsed or not); an unresolvable or circular parent is an error.
    """
    return _parse(source, media_type, base, inherit or {}, ())


def parse_nodes(
    source: str | bytes | Mapping[str, Any], media_type: str | None = None, base: str | None = None
) -> list[Node]:
    """The input as expanded node objects (used for policies and for ODRL ``Request`` files)."""
    if isinstance(source, Mapping):
        return _json_nodes(source, base)
    text = source.decode("utf-8", errors="strict") if isinstance(source, bytes) else source
    if len(text.encode("utf-8")) > MAX_POLICY_BYTES:
        raise PolicyError("too-large", f"the policy is larger than {MAX_POLICY_BYTES} bytes")
    kind = _sniff(text, media_type)
    if kind == "json":
        try:
            document = json.loads(text, object_pairs_hook=_unique_keys)
        except RecursionError:
            raise PolicyError("too-deep", "the JSON document nests too deeply") from None
        except json.JSONDecodeError as error:
            raise PolicyError(
                "invalid-json", f"malformed JSON: {error.msg} at line {error.lineno}, column {error.colno}"
            ) from None
        except ValueError as error:  # an integer literal longer than Python converts
            raise PolicyError("invalid-json", f"malformed JSON: {error}") from None
        if isinstance(document, list):
            return _expanded_nodes(document)
        if not isinstance(document, Mapping):
            raise PolicyError("invalid-json", "a policy must be a JSON object", "$")
        return _json_nodes(document, base)
    return _turtle_nodes(text, media_type or "text/turtle", base)


def _parse(
    source: InheritSource,
    media_type: str | None,
    base: str | None,
    inherit: Mapping[str, InheritSource],
    stack: tuple[str, ...],
) -> Policy:
    if isinstance(source, Policy):
        return source
    nodes = _merge_nodes(parse_nodes(source, media_type, base))
    node_map = {node["@id"]: node for node in nodes if isinstance(node.get("@id"), str) and len(node) > 1}
    policy_node = _find_policy_node(nodes)
    return _Reader(node_map).policy(policy_node, inherit, stack)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refusing a repeated key: readers disagree on which value counts (first or
    last), so a signature checker and the engine could read two different policies."""
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise PolicyError("duplicate-key", f"the key {key!r} appears twice in one JSON object")
        document[key] = value
    return document


def _merge_nodes(nodes: list[Node]) -> list[Node]:
    """One node object per ``@id``, as JSON-LD reads them: the values of all its node objects.

    A ``@graph`` may describe one node in several objects (the policy's permission in one, its
    prohibition in another); reading only the first would drop the rest, so they are merged.
    ``@type`` is always a list (a bare string would otherwise be read letter by letter).
    """
    merged: dict[str, Node] = {}
    result: list[Node] = []
    for node in nodes:
        types = node.get("@type")
        if isinstance(types, str):
            node = {**node, "@type": [types]}
        ident = node.get("@id")
        if not isinstance(ident, str):
            result.append(node)
            continue
        into = merged.get(ident)
        if into is None:
            merged[ident] = node
            result.append(node)
            continue
        for key, value in node.items():
            if key == "@id":
                continue
            values = value if isinstance(value, list) else [value]
            present = into.setdefault(key, [])
            if not isinstance(present, list):
                present = into[key] = [present]
            present.extend(v for v in values if v not in present)
    return result


def _sniff(text: str, media_type: str | None) -> str:
    if media_type:
        lowered = media_type.split(";")[0].strip().lower()
        if lowered in {"application/json", "application/ld+json"}:
            return "json"
        if lowered in {"text/turtle", "application/n-triples", "application/rdf+xml", "application/x-turtle"}:
            return "rdf"
        raise PolicyError("unsupported-media-type", f"cannot read a policy from {media_type!r}")
    return "json" if text.lstrip()[:1] in {"{", "["} else "rdf"


def _json_nodes(document: Mapping[str, Any], base: str | None) -> list[Node]:
    context = document.get("@context")
    if context is None:
        if "@graph" in document or any(isinstance(k, str) and "://" in k for k in document):
            return _expanded_nodes([document])
        return _expanded_nodes(expand_compact(document))
    contexts = context if isinstance(context, list) else [context]
    if contexts and all(isinstance(c, str) and c in _DSP_CONTEXTS for c in contexts):
        return _expanded_nodes(expand_compact(document))
    from vocab.errors import VocabError
    from vocab.jsonld import expand

    try:
        expanded = expand(dict(document), base=base or DEFAULT_BASE)
    except VocabError as error:
        raise PolicyError(getattr(error, "code", "invalid-jsonld"), str(error), "$.@context") from None
    return _expanded_nodes(expanded)


def _expanded_nodes(document: list[Any]) -> list[Node]:
    """Every node object of an expanded (or flattened) JSON-LD document, top-level first."""
    nodes: list[Node] = []

    def visit(value: Any, depth: int) -> None:
        if depth > 64:
            raise PolicyError("too-deep", "the JSON-LD document nests too deeply")
        if isinstance(value, list):
            for item in value:
                visit(item, depth + 1)
        elif isinstance(value, Mapping):
            if "@graph" in value:
                visit(value["@graph"], depth + 1)
                return
            if "@value" in value:
                return
            if "@list" in value:
                visit(value["@list"], depth + 1)
                return
            nodes.append(dict(value))
            for key, item in value.items():
                if not key.startswith("@"):
                    visit(item, depth + 1)

    visit(document, 0)
    return nodes


def _turtle_nodes(text: str, media_type: str, base: str | None) -> list[Node]:
    from vocab.errors import VocabError
    from vocab.rdfio import parse_rdf

    try:
        graph = parse_rdf(text, media_type, base=base or DEFAULT_BASE, max_bytes=MAX_POLICY_BYTES)
    except VocabError as error:
        line = getattr(error, "line", None)
        raise PolicyError(
            getattr(error, "code", "rdf-syntax"), str(error), f"line {line}" if line else None
        ) from None
    return nodes_from_graph(graph)


def _find_policy_node(nodes: list[Node]) -> Node:
    rule_keys = {key for key, _ in _RULE_KEYS}
    typed = [n for n in nodes if set(n.get("@type", ())) & terms.POLICY_TYPES]
    referenced = {
        item.get("@id")
        for node in nodes
        for key, values in node.items()
        if not key.startswith("@")
        for item in (values if isinstance(values, list) else [])
        if isinstance(item, Mapping)
    }
    untyped = [n for n in nodes if rule_keys & set(n) and not set(n.get("@type", ())) & terms.POLICY_TYPES]
    if len(typed) == 1:
        chosen = typed[0]
    elif len(typed) > 1:
        # Nested policies (e.g. inside a catalog) - prefer the one no other node refers to.
        roots = [n for n in typed if n.get("@id") not in referenced]
        if len(roots) != 1:
            raise PolicyError("ambiguous-policy", f"the document holds {len(typed)} policies; give one", "$")
        chosen = roots[0]
    elif untyped:
        chosen = untyped[0]
    else:
        raise PolicyError(
            "not-a-policy", "no ODRL policy found (no @type Set/Offer/Agreement and no rules)", "$"
        )
    # Rules on another node that nothing refers to would be silently left out of the decision
    # (a prohibition written beside the policy rather than in it): refuse, naming the node.
    stray = [n for n in untyped if n is not chosen and n.get("@id") not in referenced]
    if stray:
        where = stray[0].get("@id") or "a blank node"
        raise PolicyError(
            "ambiguous-policy",
            f"the document holds rules outside the policy (on {where}); give one policy",
            "$",
        )
    return chosen


class _Reader:
    """Walks expanded node objects into model values, tracking the location for errors."""

    def __init__(self, node_map: Mapping[str, Node]) -> None:
        self._nodes = node_map

    # --- access helpers ----------------------------------------------------------------
    def _deref(self, item: Any) -> Any:
        """The node an item names: its merged description when the document has one."""
        if isinstance(item, Mapping) and isinstance(item.get("@id"), str):
            return self._nodes.get(item["@id"], item)
        return item

    def _items(self, node: Mapping[str, Any], name: str) -> list[Any]:
        values = node.get(terms.odrl(name) if "://" not in name else name, [])
        values = values if isinstance(values, list) else [values]
        flat: list[Any] = []
        for value in values:
            if isinstance(value, Mapping) and "@list" in value:
                flat.extend(value["@list"])
            else:
                flat.append(value)
        return flat

    def _iris(self, node: Mapping[str, Any], name: str, location: str) -> list[str]:
        result = []
        for i, item in enumerate(self._items(node, name)):
            if isinstance(item, Mapping) and isinstance(item.get("@id"), str):
                result.append(item["@id"])
            elif isinstance(item, Mapping) and isinstance(item.get("@value"), str):
                result.append(terms.expand_term(item["@value"]))
            else:
                raise PolicyError("invalid-iri", f"{name} must be an IRI", f"{location}.{name}[{i}]")
        return result

    def _one_iri(self, node: Mapping[str, Any], name: str, location: str, required: bool) -> str | None:
        iris = self._iris(node, name, location)
        if len(iris) > 1:
            raise PolicyError(f"multiple-{name.lower()}", f"more than one {name}", f"{location}.{name}")
        if not iris and required:
            raise PolicyError(f"missing-{name.lower()}", f"{name} is required", location)
        return iris[0] if iris else None

    # --- policy --------------------------------------------------------------------------
    def policy(self, node: Node, inherit: Mapping[str, InheritSource], stack: tuple[str, ...]) -> Policy:
        location = "$"
        _check_properties(node, _POLICY_PROPERTIES, "a policy", location, policy=True)
        uid = node.get("@id")
        if not isinstance(uid, str) or not uid or uid.startswith("_:"):
            raise PolicyError("missing-uid", "a policy must have a uid (@id) that is an IRI", location)
        types = [t for t in node.get("@type", []) if t in terms.POLICY_TYPES and t != terms.POLICY]
        unknown_types = [t for t in node.get("@type", []) if t not in terms.POLICY_TYPES]
        if len(types) > 1:
            raise PolicyError("multiple-policy-types", f"a policy has one type, found {types}", "$.@type")
        if not types and unknown_types:
            raise PolicyError(
                "unknown-policy-type", f"{unknown_types[0]!r} is not an ODRL policy type", "$.@type"
            )
        policy_type = types[0] if types else terms.SET
        profiles = tuple(self._iris(node, "profile", location))
        conflict = self._one_iri(node, "conflict", location, required=False)
        if conflict is not None and conflict not in terms.CONFLICT_STRATEGIES:
            raise PolicyError(
                "unknown-conflict-strategy",
                f"conflict must be perm, prohibit or invalid, not {conflict!r}",
                "$.conflict",
            )
        if self._items(node, "constraint"):
            raise PolicyError(
                "policy-level-constraint",
                "ODRL 2.2 has no policy-level constraint; put it on each rule",
                "$.constraint",
            )
        targets = tuple(self._entity(i, f"$.target[{n}]") for n, i in enumerate(self._items(node, "target")))
        assigners = tuple(
            self._entity(i, f"$.assigner[{n}]") for n, i in enumerate(self._items(node, "assigner"))
        )
        assignees = tuple(
            self._entity(i, f"$.assignee[{n}]") for n, i in enumerate(self._items(node, "assignee"))
        )
        actions = tuple(self._action(i, f"$.action[{n}]") for n, i in enumerate(self._items(node, "action")))
        timestamp_items = node.get(terms.DSPACE_NS + "timestamp") or node.get(terms.DCT_NS + "issued") or []
        timestamp = None
        if timestamp_items and isinstance(timestamp_items[0], Mapping):
            timestamp = str(timestamp_items[0].get("@value", "")) or None

        rules: list[Rule] = []
        for key, kind in _RULE_KEYS:
            for index, item in enumerate(self._items(node, key.rsplit("/", 1)[1])):
                loc = f"$.{kind}[{index}]"
                rules.append(self._rule(item, kind, f"{uid}/{kind}/{index}", loc, uid))
        inherit_from = tuple(self._iris(node, "inheritFrom", location))
        if not rules and not inherit_from:
            raise PolicyError(
                "no-rules", "a policy needs at least one permission, prohibition or obligation", location
            )

        if policy_type == terms.AGREEMENT:
            _require_parties(assigners, assignees, rules)

        _check_expansion(rules, targets, assigners, assignees, actions)
        atomic = [atom for rule in rules for atom in _atomize(rule, targets, assigners, assignees, actions)]
        inherited: list[Rule] = []
        for parent_iri in inherit_from:
            parent = _resolve_parent(parent_iri, uid, inherit, stack)
            inherited.extend(parent.atomic_rules)
            conflict = _stricter(conflict, parent.conflict)
            # A parent's profile governs its rules wherever they are inherited: an unsupported
            # one must deny the child too, not vanish with the parent's policy node.
            profiles += tuple(p for p in parent.profiles if p not in profiles)
        if len(atomic) + len(inherited) > MAX_RULES:
            raise PolicyError("too-many-rules", f"more than {MAX_RULES} atomic rules", "$")
        return Policy(
            uid=uid,
            type=policy_type,
            rules=tuple(rules),
            atomic_rules=tuple(atomic + inherited),
            profiles=profiles,
            conflict=conflict,
            inherit_from=inherit_from,
            targets=targets,
            assigners=assigners,
            assignees=assignees,
            actions=actions,
            timestamp=timestamp,
            inherited_rules=tuple(inherited),
        )

    # --- rules -----------------------------------------------------------------------------
    def _rule(self, item: Any, kind: RuleKind, minted: str, location: str, origin: str) -> Rule:
        node = self._deref(item)
        if not isinstance(node, Mapping):
            raise PolicyError("invalid-rule", f"a {kind} must be an object", location)
        _check_properties(node, _RULE_PROPERTIES, f"a {kind}", location)
        declared = node.get("@id")
        uid = declared if isinstance(declared, str) and not declared.startswith("_:") else minted
        actions = tuple(
            self._action(a, f"{location}.action[{n}]") for n, a in enumerate(self._items(node, "action"))
        )
        if not actions and kind == "duty":
            raise PolicyError("missing-action", f"duty {uid} has no action: the duty is invalid", location)
        duties = tuple(
            self._rule(d, "duty", f"{uid}/duty/{n}", f"{location}.duty[{n}]", origin)
            for n, d in enumerate(self._items(node, "duty"))
        )
        if duties and kind != "permission":
            raise PolicyError(
                "misplaced-duty", f"a {kind} cannot have a duty (only permissions can)", location
            )
        remedies = tuple(
            self._rule(d, "duty", f"{uid}/remedy/{n}", f"{location}.remedy[{n}]", origin)
            for n, d in enumerate(self._items(node, "remedy"))
        )
        if remedies and kind != "prohibition":
            raise PolicyError("misplaced-remedy", "only a prohibition can have a remedy", location)
        consequences = tuple(
            self._rule(d, "duty", f"{uid}/consequence/{n}", f"{location}.consequence[{n}]", origin)
            for n, d in enumerate(self._items(node, "consequence"))
        )
        if consequences and kind not in ("duty", "obligation"):
            raise PolicyError(
                "misplaced-consequence", "only a duty or an obligation can have a consequence", location
            )
        return Rule(
            kind=kind,
            uid=uid,
            actions=actions,
            targets=tuple(
                self._entity(t, f"{location}.target[{n}]") for n, t in enumerate(self._items(node, "target"))
            ),
            assigners=tuple(
                self._entity(t, f"{location}.assigner[{n}]")
                for n, t in enumerate(self._items(node, "assigner"))
            ),
            assignees=tuple(
                self._entity(t, f"{location}.assignee[{n}]")
                for n, t in enumerate(self._items(node, "assignee"))
            ),
            constraints=self._constraints(node, "constraint", location, 0),
            duties=duties,
            remedies=remedies,
            consequences=consequences,
            declared_uid=uid != minted,
            origin=origin,
            location=location,
        )

    def _action(self, item: Any, location: str) -> Action:
        node = self._deref(item)
        if isinstance(node, Mapping) and "@value" in node and isinstance(node["@value"], str):
            return Action(terms.canonical_action(terms.expand_term(node["@value"])))
        if not isinstance(node, Mapping):
            raise PolicyError("invalid-action", "an action must be a term, an IRI or an object", location)
        _check_properties(node, _ACTION_PROPERTIES, "an action", location)
        value_items = node.get(terms.RDF_NS + "value", [])
        if value_items:
            inner = value_items[0] if isinstance(value_items, list) else value_items
            iri = inner.get("@id") if isinstance(inner, Mapping) else None
        else:
            iri = node.get("@id")
        if not isinstance(iri, str):
            raise PolicyError(
                "invalid-action", "an action object needs rdf:value (or @id) naming the action", location
            )
        return Action(
            iri=terms.canonical_action(iri),
            refinements=self._constraints(node, "refinement", location, 0),
        )

    def _entity(self, item: Any, location: str) -> Entity:
        node = self._deref(item)
        if isinstance(node, Mapping) and isinstance(node.get("@value"), str):
            return Entity(node["@value"])
        if not isinstance(node, Mapping):
            raise PolicyError("invalid-entity", "an asset or party must be an IRI or an object", location)
        refinements = self._constraints(node, "refinement", location, 0)
        sources = self._iris(node, "source", location)
        types = set(node.get("@type", ()))
        collection = bool(
            refinements or sources or types & {terms.odrl("AssetCollection"), terms.odrl("PartyCollection")}
        )
        iri = sources[0] if sources else node.get("@id")
        if not isinstance(iri, str) or not iri:
            raise PolicyError("invalid-entity", "an asset or party needs an IRI (uid or source)", location)
        return Entity(iri=iri, collection=collection, refinements=refinements)

    # --- constraints -------------------------------------------------------------------------
    def _constraints(
        self, node: Mapping[str, Any], name: str, location: str, depth: int
    ) -> tuple[ConstraintNode, ...]:
        return tuple(
            self._constraint(item, f"{location}.{name}[{n}]", depth)
            for n, item in enumerate(self._items(node, name))
        )

    def _constraint(self, item: Any, location: str, depth: int) -> ConstraintNode:
        if depth > MAX_CONSTRAINT_DEPTH:
            raise PolicyError(
                "too-deep", f"logical constraints nest more than {MAX_CONSTRAINT_DEPTH} levels", location
            )
        node = self._deref(item)
        if not isinstance(node, Mapping):
            raise PolicyError("invalid-constraint", "a constraint must be an object", location)
        _check_properties(node, _CONSTRAINT_PROPERTIES, "a constraint", location)
        declared = node.get("@id")
        uid = declared if isinstance(declared, str) and not declared.startswith("_:") else None
        logical = [iri for iri in _LOGICAL_BY_IRI if iri in node]
        has_left = terms.odrl("leftOperand") in node
        if len(logical) > 1:
            names = " and ".join(_LOGICAL_BY_IRI[iri] for iri in logical)
            raise PolicyError(
                "multiple-logical-operators",
                f"a logical constraint has one operator, found {names}",
                location,
            )
        if logical:
            if has_left:
                raise PolicyError(
                    "mixed-constraint",
                    "a constraint is either logical (and/or/xone/andSequence) or has a leftOperand, not both",
                    location,
                )
            name = _LOGICAL_BY_IRI[logical[0]]
            operands = tuple(
                self._constraint(sub, f"{location}.{name}[{n}]", depth + 1)
                for n, sub in enumerate(self._items(node, name))
            )
            if not operands:
                raise PolicyError(
                    "empty-logical-constraint", f"{name} needs at least one constraint", location
                )
            return LogicalConstraint(operator=logical[0], operands=operands, uid=uid, location=location)
        left = self._one_iri(node, "leftOperand", location, required=True)
        operator = self._one_iri(node, "operator", location, required=True)
        assert left is not None
        assert operator is not None
        right_items = node.get(terms.odrl("rightOperand"), [])
        right_items = right_items if isinstance(right_items, list) else [right_items]
        is_list = len(right_items) > 1 or any(isinstance(r, Mapping) and "@list" in r for r in right_items)
        values = tuple(self._value(r, f"{location}.rightOperand") for r in self._items(node, "rightOperand"))
        reference = self._one_iri(node, "rightOperandReference", location, required=False)
        if not values and reference is None:
            raise PolicyError(
                "missing-rightoperand",
                "a constraint needs a rightOperand or a rightOperandReference",
                location,
            )
        return Constraint(
            left_operand=left,
            operator=operator,
            right=values,
            right_is_list=is_list,
            uid=uid,
            right_reference=reference,
            datatype=self._one_iri(node, "dataType", location, required=False),
            unit=self._one_iri(node, "unit", location, required=False),
            location=location,
        )

    def _value(self, item: Any, location: str) -> Value:
        if isinstance(item, Mapping) and "@value" in item:
            raw = item["@value"]
            if not isinstance(raw, str | int | float | bool):
                raise PolicyError("invalid-value", f"unsupported value {raw!r}", location)
            datatype = item.get("@type") if isinstance(item.get("@type"), str) else None
            return Value(raw, datatype)
        if isinstance(item, Mapping) and isinstance(item.get("@id"), str):
            return Value(item["@id"], None, is_iri=True)
        raise PolicyError("invalid-value", "a right operand must be a literal or an IRI", location)


# Stems of the ODRL policy properties: an undefined key on a policy node containing one (a
# misspelt ``prohibitions``, ``Permission``, ``conflict_strategy``) is refused; other undefined
# keys there (a signature's ``proof``, a ``title``) are metadata outside the policy.
_POLICY_STEMS: Final = (
    "permission",
    "prohibit",
    "obligat",
    "duty",
    "dutie",
    "constraint",
    "conflict",
    "profile",
    "inherit",
    "action",
    "target",
    "assign",
    "refine",
    "remed",
    "consequen",
)


def _check_properties(
    node: Mapping[str, Any], allowed: frozenset[str], what: str, location: str, *, policy: bool = False
) -> None:
    """Refuse an ODRL property (or an undefined compact key) that ``what`` cannot carry."""
    for key in node:
        if key.startswith(UNMAPPED_NS):
            name = key[len(UNMAPPED_NS) :]
            if policy and not any(stem in name.lower() for stem in _POLICY_STEMS):
                continue
            raise PolicyError(
                "unknown-property",
                f"{what} has the key {name!r}, which is not an ODRL term",
                f"{location}.{name}",
            )
        if key.startswith(terms.ODRL_NS) and key not in allowed:
            name = terms.compact_term(key)
            raise PolicyError(
                "unknown-property",
                f"{what} has the property {name}, which this engine does not support",
                f"{location}.{name}",
            )


def _require_parties(assigners: tuple[Entity, ...], assignees: tuple[Entity, ...], rules: list[Rule]) -> None:
    for role, policy_level in (("assigner", assigners), ("assignee", assignees)):
        if policy_level:
            continue
        for rule in rules:
            if not getattr(rule, role + "s"):
                raise PolicyError(
                    f"agreement-without-{role}",
                    f"an Agreement must name its {role} (on the policy or on every rule)",
                    rule.location or "$",
                )
        if not rules:
            raise PolicyError(f"agreement-without-{role}", f"an Agreement must name its {role}", "$")


def _check_expansion(
    rules: list[Rule],
    targets: tuple[Entity, ...],
    assigners: tuple[Entity, ...],
    assignees: tuple[Entity, ...],
    actions: tuple[Action, ...],
) -> None:
    """Refuse a compact policy whose rules would expand to too many atomic rules *before*
    expanding it: 60 actions x 60 targets x 60 assignees is a 2 KB document but 216,000 rules."""
    total = 0
    for rule in rules:
        total += (
            max(len(rule.actions or actions), 1)
            * max(len(rule.targets or targets), 1)
            * max(len(rule.assigners or assigners), 1)
            * max(len(rule.assignees or assignees), 1)
            * _weight(rule)
        )
        if total > MAX_RULES:
            raise PolicyError("too-many-rules", f"more than {MAX_RULES} atomic rules", rule.location or "$")


def _weight(rule: Rule) -> int:
    """The rule and the atomic duties, remedies and consequences it carries (each copied into
    every atomic rule it expands to)."""
    return 1 + sum(
        max(len(duty.actions), 1) * _weight(duty)
        for duty in (*rule.duties, *rule.remedies, *rule.consequences)
    )


def _atomize(
    rule: Rule,
    targets: tuple[Entity, ...],
    assigners: tuple[Entity, ...],
    assignees: tuple[Entity, ...],
    actions: tuple[Action, ...],
) -> list[Rule]:
    """One rule per (action, target, assigner, assignee); policy-level values fill the gaps."""
    rule_actions = rule.actions or actions
    if not rule_actions:
        raise PolicyError(
            "missing-action",
            f"{rule.kind} {rule.uid} has no action (neither its own nor the policy's): "
            "the rule is invalid and the policy is refused",
            rule.location,
        )
    options: Iterable[tuple[Action, Entity | None, Entity | None, Entity | None]] = itertools.product(
        rule_actions,
        rule.targets or targets or (None,),
        rule.assigners or assigners or (None,),
        rule.assignees or assignees or (None,),
    )
    combos = list(options)
    atoms = []
    for n, (action, target, assigner, assignee) in enumerate(combos):
        duties = tuple(atom for duty in rule.duties for atom in _atomize(duty, (), (), (), ()))
        atoms.append(
            Rule(
                kind=rule.kind,
                uid=rule.uid if len(combos) == 1 else f"{rule.uid}/{n}",
                actions=(action,),
                targets=(target,) if target else (),
                assigners=(assigner,) if assigner else (),
                assignees=(assignee,) if assignee else (),
                constraints=rule.constraints,
                duties=duties,
                remedies=tuple(atom for duty in rule.remedies for atom in _atomize(duty, (), (), (), ())),
                consequences=tuple(
                    atom for duty in rule.consequences for atom in _atomize(duty, (), (), (), ())
                ),
                declared_uid=rule.declared_uid,
                origin=rule.origin,
                location=rule.location,
            )
        )
    return atoms


def _resolve_parent(
    iri: str, child: str, inherit: Mapping[str, InheritSource], stack: tuple[str, ...]
) -> Policy:
    chain = (*stack, child)
    if iri in chain:
        raise PolicyError(
            "circular-inheritance",
            f"inheritFrom forms a cycle: {' -> '.join((*chain, iri))}",
            "$.inheritFrom",
        )
    if len(chain) > MAX_INHERITANCE_DEPTH:
        raise PolicyError("inheritance-too-deep", f"more than {MAX_INHERITANCE_DEPTH} inheritFrom levels")
    if iri not in inherit:
        raise PolicyError(
            "unresolved-inheritance",
            f"inheritFrom names {iri!r}, which is not among the known policies",
            "$.inheritFrom",
        )
    parent = inherit[iri]
    if isinstance(parent, Policy):
        if child in _ancestry(parent, inherit):
            raise PolicyError(
                "circular-inheritance", f"inheritFrom forms a cycle through {iri!r}", "$.inheritFrom"
            )
        return parent
    try:
        return _parse(parent, None, None, inherit, chain)
    except PolicyError as error:
        if error.code in {"circular-inheritance", "unresolved-inheritance", "inheritance-too-deep"}:
            raise
        raise PolicyError(error.code, f"in parent policy {iri!r}: {error.message}", error.location) from None


def _ancestry(policy: Policy, inherit: Mapping[str, InheritSource]) -> set[str]:
    seen: set[str] = set()
    pending = list(policy.inherit_from)
    while pending:
        iri = pending.pop()
        if iri in seen:
            continue
        seen.add(iri)
        parent = inherit.get(iri)
        if isinstance(parent, Policy):
            pending.extend(parent.inherit_from)
    return seen


_STRICTNESS: Final = {None: 0, terms.PERM: 1, terms.PROHIBIT: 2, terms.INVALID: 3}


def _stricter(child: str | None, parent: str | None) -> str | None:
    """A child and its parent with different strategies: the stricter one holds (documented)."""
    return child if _STRICTNESS[child] >= _STRICTNESS[parent] else parent
