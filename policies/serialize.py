"""Write policies back out: DSP 2025-1 compact JSON and ODRL JSON-LD; build agreements.

``to_dsp_json`` writes the shape DSP messages embed (no ``@context``; ``"action": "use"``,
``"leftOperand": "purpose"``; plain strings for IRIs, ``{"@value", "@type"}`` objects for typed
literals, since the DSP schema allows only strings, objects and arrays as right operands).
``to_odrl_jsonld`` writes the same policy compacted with the ODRL context. Both keep the
declared (possibly compact) rules, add inherited rules as atomic rules and drop
``inheritFrom``, so the output stands alone. Parsing either output gives the same decisions.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from policies import terms
from policies.errors import PolicyError
from policies.model import Action, Constraint, ConstraintNode, Entity, LogicalConstraint, Policy, Rule, Value

_XSD_INTEGER = terms.XSD_NS + "integer"
_XSD_DECIMAL = terms.XSD_NS + "decimal"
_XSD_BOOLEAN = terms.XSD_NS + "boolean"


def _xsd(iri: str) -> str:
    return "xsd:" + iri[len(terms.XSD_NS) :] if iri.startswith(terms.XSD_NS) else iri


class _Writer:
    def __init__(self, iri_values_as_objects: bool) -> None:
        self.iri_objects = iri_values_as_objects

    def value(self, value: Value) -> Any:
        if value.is_iri:
            return {"@id": value.value} if self.iri_objects else value.value
        raw = value.value
        if value.datatype and value.datatype != terms.XSD_NS + "string":
            return {"@value": raw, "@type": _xsd(value.datatype)}
        if isinstance(raw, bool):
            return {"@value": raw, "@type": _xsd(_XSD_BOOLEAN)}
        if isinstance(raw, int):
            return {"@value": raw, "@type": _xsd(_XSD_INTEGER)}
        if isinstance(raw, float):
            return {"@value": raw, "@type": _xsd(_XSD_DECIMAL)}
        return raw

    def constraint(self, node: ConstraintNode) -> dict[str, Any]:
        if isinstance(node, LogicalConstraint):
            body: dict[str, Any] = {
                terms.local_name(node.operator): [self.constraint(c) for c in node.operands]
            }
            if node.uid:
                body["@id"] = node.uid
            return body
        assert isinstance(node, Constraint)
        body = {
            "leftOperand": terms.compact_term(node.left_operand),
            "operator": terms.compact_term(node.operator),
        }
        if node.right:
            values = [self.value(v) for v in node.right]
            body["rightOperand"] = values if node.right_is_list else values[0]
        if node.right_reference:
            body["rightOperandReference"] = node.right_reference
        if node.datatype:
            body["dataType"] = node.datatype
        if node.unit:
            body["unit"] = node.unit
        if node.uid:
            body["@id"] = node.uid
        return body

    def action(self, action: Action) -> Any:
        name = terms.compact_term(action.iri)
        if not action.refinements:
            return name
        return {
            "rdf:value": {"@id": action.iri},
            "refinement": [self.constraint(c) for c in action.refinements],
        }

    def entity(self, entity: Entity) -> Any:
        if not entity.collection:
            return entity.iri
        body: dict[str, Any] = {"source": entity.iri}
        if entity.refinements:
            body["refinement"] = [self.constraint(c) for c in entity.refinements]
        return body

    def rules(
        self, rule: Rule, policy_level: dict[str, tuple[Entity, ...]], *, emit_uid: bool
    ) -> list[dict[str, Any]]:
        """One entry per action (DSP allows one action per rule)."""
        out = []
        for index, action in enumerate(rule.actions):
            body: dict[str, Any] = {}
            if emit_uid and rule.declared_uid:
                body["@id"] = rule.uid if len(rule.actions) == 1 else f"{rule.uid}/{index}"
            body["action"] = self.action(action)
            for name in ("target", "assigner", "assignee"):
                entities: tuple[Entity, ...] = getattr(rule, name + "s")
                if entities and entities != policy_level.get(name):
                    values = [self.entity(e) for e in entities]
                    body[name] = values[0] if len(values) == 1 else values
            if rule.constraints:
                body["constraint"] = [self.constraint(c) for c in rule.constraints]
            for key, duties in (
                ("duty", rule.duties),
                ("remedy", rule.remedies),
                ("consequence", rule.consequences),
            ):
                if duties:
                    body[key] = [d for duty in duties for d in self.rules(duty, {}, emit_uid=True)]
            out.append(body)
        return out

    def policy(self, policy: Policy, *, uid_key: str) -> dict[str, Any]:
        body: dict[str, Any] = {uid_key: policy.uid, "@type": policy.type_name}
        if policy.profiles:
            body["profile"] = list(policy.profiles) if len(policy.profiles) > 1 else policy.profiles[0]
        if policy.conflict:
            body["conflict"] = terms.local_name(policy.conflict)
        level: dict[str, tuple[Entity, ...]] = {}
        for name in ("target", "assigner", "assignee"):
            entities: tuple[Entity, ...] = getattr(policy, name + "s")
            if entities:
                level[name] = entities
                values = [self.entity(e) for e in entities]
                body[name] = values[0] if len(values) == 1 else values
        if policy.timestamp:
            body["timestamp"] = policy.timestamp
        actions = policy.actions
        for kind in ("permission", "prohibition", "obligation"):
            entries = []
            for rule in policy.rules:
                if rule.kind == kind:
                    declared = rule if rule.actions else _with_actions(rule, actions)
                    entries.extend(self.rules(declared, level, emit_uid=True))
            for rule in policy.inherited_rules:
                if rule.kind == kind:
                    entries.extend(self.rules(rule, {}, emit_uid=True))
            if entries:
                body[kind] = entries
        return body


def _with_actions(rule: Rule, actions: tuple[Action, ...]) -> Rule:
    from dataclasses import replace

    return replace(rule, actions=actions)


def to_dsp_json(policy: Policy) -> dict[str, Any]:
    """The policy in DSP 2025-1 compact form, as embedded in DSP messages and catalogs."""
    return _Writer(iri_values_as_objects=False).policy(policy, uid_key="@id")


def to_odrl_jsonld(policy: Policy) -> dict[str, Any]:
    """The policy as JSON-LD compacted with the ODRL context (plus our prefixes)."""
    from vocab.jsonld import ODRL_CONTEXT, SLUIS_CONTEXT

    body = _Writer(iri_values_as_objects=True).policy(policy, uid_key="uid")
    return {"@context": [ODRL_CONTEXT, SLUIS_CONTEXT], **body}


def make_agreement(
    offer: Policy, assigner: str, assignee: str, target: str, timestamp: datetime, uid: str
) -> Policy:
    """The Agreement a provider signs for an accepted offer: the offer's rules, bound to parties.

    The agreement names ``assigner`` (provider), ``assignee`` (consumer) and ``target`` (the
    dataset) at policy level, carries ``timestamp`` (UTC, whole seconds, as DSP requires) and
    holds every rule of the offer, inherited ones included, so it stands alone.
    """
    if offer.type not in (terms.OFFER, terms.SET, terms.AGREEMENT, terms.REQUEST):
        raise PolicyError("not-an-offer", f"an agreement is made from an Offer, not a {offer.type_name}")
    for name, value in (("assigner", assigner), ("assignee", assignee), ("target", target), ("uid", uid)):
        if not value or not isinstance(value, str):
            raise PolicyError(f"missing-{name}", f"an agreement needs a {name}")
    moment = timestamp if timestamp.tzinfo else timestamp.replace(tzinfo=UTC)
    stamp = moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    document = to_dsp_json(offer)
    document.update(
        {
            "@id": uid,
            "@type": "Agreement",
            "assigner": assigner,
            "assignee": assignee,
            "target": target,
            "timestamp": stamp,
        }
    )
    from policies.parse import parse_policy

    return parse_policy(document)
