"""Compile a policy into predicates once; decide fast, or decide and explain.

``compile_policy`` turns every atomic rule into small objects whose right operands are
already typed and whose hierarchy questions (``isA research``, ``isPartOf EU``) are
pre-answered as sets of every narrower term. ``CompiledPolicy.decide`` walks them without
building an explanation; ``CompiledPolicy.explain`` walks the *same* objects and records
every premise, so the fast path and the explained path cannot disagree.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone
from typing import Final

from policies import terms
from policies.explanation import Decision, DutyReport, Premise, RuleReport, State, all_of, holds
from policies.model import Action, Constraint, ConstraintNode, Entity, LogicalConstraint, Policy, Rule
from policies.operands import DEFERRED, Env, Missing, Operand, lookup
from policies.request import Request, World
from policies.values import (
    Comparable,
    Kind,
    ValueMismatch,
    coerce_left,
    coerce_right,
    display,
    kind_from_right,
    unsupported_datatype,
)

# Profiles whose terms this engine implements; any other profile makes the policy fail closed.
SLUIS_PROFILE: Final = "https://w3id.org/sluis/odrl-profile"
DSP_PROFILE: Final = "https://w3id.org/dspace/2025/1/odrl-profile"
SUPPORTED_PROFILES: Final = frozenset({SLUIS_PROFILE, DSP_PROFILE})
# Set-valued context values larger than this are refused (a request states a handful).
MAX_SET_SIZE: Final = 10_000

_SAT, _UNSAT, _UNKNOWN, _DEFERRED, _SKIPPED = (
    State.SATISFIED,
    State.UNSATISFIED,
    State.UNKNOWN,
    State.DEFERRED,
    State.SKIPPED,
)
_OP = {terms.odrl(name): name for name in terms.OPERATOR_NAMES}


def _hierarchy_terms() -> list[tuple[Callable[[str, str], bool], frozenset[str]]]:
    from vocab.hierarchy import places, purposes

    return [(h.is_a, h.terms()) for h in (purposes(), places())]


def _narrower(iri: str) -> frozenset[str]:
    """``iri`` and every term below it in the purpose and place hierarchies."""
    found = {iri}
    for is_a, known in _hierarchy_terms():
        if iri in known:
            found.update(term for term in known if is_a(term, iri))
    return frozenset(found)


def _normalise_iri(value: str, credential: bool) -> str:
    expanded = terms.expand_term(value) if ":" in value else value
    if credential and ":" not in expanded:
        return terms.SLUIS_NS + expanded  # "EHDSDataPermit" names sluis:EHDSDataPermit
    return expanded


# --- constraints ----------------------------------------------------------------------------
class _Atom:
    """A compiled atomic constraint."""

    __slots__ = (
        "constraint",
        "kind",
        "narrower",
        "op",
        "operand",
        "reason",
        "right_shown",
        "rights",
        "set_left",
        "shortcut",
        "static",
        "unknown_term",
        "zoneless",
    )

    def __init__(self, constraint: Constraint) -> None:
        self.constraint = constraint
        self.operand: Operand | None = lookup(constraint.left_operand)
        self.op = _OP.get(constraint.operator, "")
        self.static: State | None = None
        self.reason = ""
        self.unknown_term: str | None = None
        self.zoneless = False
        self.rights: tuple[Comparable, ...] = ()
        self.narrower: tuple[frozenset[str], ...] = ()
        self.kind = Kind.TEXT
        self.set_left = False
        self.shortcut: _Shortcut | None = None
        self.right_shown: object = (
            [v.value for v in constraint.right]
            if constraint.right_is_list
            else (constraint.right[0].value if constraint.right else None)
        )
        if self.operand is None:
            self._fail(
                constraint.left_operand,
                f"unknown left operand {terms.compact_term(constraint.left_operand)!r}",
            )
            return
        if not self.op:
            self._fail(constraint.operator, f"unknown operator {terms.compact_term(constraint.operator)!r}")
            return
        if constraint.right_reference is not None:
            self._fail(
                constraint.right_reference,
                "rightOperandReference is not supported (the engine does not dereference values)",
            )
            return
        if constraint.unit is not None:
            self._fail(
                constraint.unit,
                f"unit {terms.compact_term(constraint.unit)} is not supported "
                "(the engine does not convert units)",
            )
            return
        self.kind = self.operand.kind or kind_from_right(constraint.right)
        if constraint.datatype and not any(v.datatype for v in constraint.right):
            self.kind = self.operand.kind or kind_from_right(
                tuple(v.__class__(v.value, constraint.datatype) for v in constraint.right)
            )
        for datatype in (constraint.datatype, *(v.datatype for v in constraint.right)):
            why = unsupported_datatype(datatype, self.kind)
            if why is not None:
                assert datatype is not None
                self._fail(datatype, why)
                return
        self.set_left = self.operand.set_valued
        credential = self.operand.iri == terms.CREDENTIAL
        try:
            rights = [coerce_right(value, self.kind) for value in constraint.right]
        except ValueMismatch as error:
            self.static = _UNKNOWN
            self.reason = f"the right operand cannot be read: {error}"
            return
        if self.kind in (Kind.IRI, Kind.TEXT):
            rights = [_normalise_iri(str(r), credential) if self.kind is Kind.IRI else r for r in rights]
        self.rights = tuple(rights)
        if self.op in ("lt", "lteq", "gt", "gteq") and (len(self.rights) != 1 or self.kind in (Kind.IRI,)):
            self.static = _UNKNOWN
            self.reason = f"{self.op} needs one ordered value (a number, date-time or duration)"
            return
        if self.op in ("isA", "isPartOf", "hasPart"):
            self.narrower = tuple(_narrower(str(r)) for r in self.rights)
        # xsd:dateTime without a zone is a local time somewhere between -14:00 and +14:00;
        # within 14 hours of it the order is indeterminate (XSD 1.1, 3.3.7.3), not UTC.
        self.zoneless = self.kind is Kind.DATETIME and any(
            isinstance(v.value, str) and _ZONELESS_RE.match(v.value.strip()) for v in constraint.right
        )
        self.shortcut = None if self.zoneless else _shortcut(self)

    def _fail(self, term: str, reason: str) -> None:
        self.static = _UNKNOWN
        self.unknown_term = term
        self.reason = reason

    def evaluate(self, env: Env) -> tuple[State, object, str]:
        """The general path (no shortcut): state, the value compared, and a reason if any."""
        if self.static is not None:
            return self.static, None, self.reason
        assert self.operand is not None
        raw = self.operand.resolve(env)
        if raw is DEFERRED:
            return _DEFERRED, None, "enforced by the data plane on every read"
        if isinstance(raw, Missing):
            return _UNKNOWN, None, raw.reason
        return self._general(raw, env)

    def _general(self, raw: object, env: Env) -> tuple[State, object, str]:
        assert self.operand is not None
        try:
            if self.set_left or isinstance(raw, list | tuple | set | frozenset):
                items = raw if isinstance(raw, list | tuple | set | frozenset) else [raw]
                if len(items) > MAX_SET_SIZE:
                    return _UNKNOWN, None, f"more than {MAX_SET_SIZE} values"
                credential = self.operand.iri == terms.CREDENTIAL
                left_set = frozenset(self._left(item, credential) for item in items)
                self._check_known(left_set, env)
                return (_SAT if self._test_set(left_set, env) else _UNSAT), left_set, ""
            left = self._left(raw, False)
            self._check_known((left,), env)
            return (_SAT if self._test(left, env) else _UNSAT), left, ""
        except ValueMismatch as error:
            return _UNKNOWN, raw, str(error)

    def _check_known(self, values: Iterable[Comparable], env: Env) -> None:
        """Refuse (as unknown) an IRI that looks like one of ours but is no term we know."""
        if self.kind is not Kind.IRI:
            return
        for value in values:
            why = _doubtful(str(value), env)
            if why is not None:
                raise ValueMismatch(why)

    def state(self, env: Env) -> State:
        """The fast path: the same answer as ``evaluate`` without building a report."""
        if self.static is not None:
            return self.static
        assert self.operand is not None
        raw = self.operand.resolve(env)
        if raw is DEFERRED:
            return _DEFERRED
        if isinstance(raw, Missing):
            return _UNKNOWN
        if self.shortcut is not None:
            quick = self.shortcut(raw, env)
            if quick is not None:
                return quick
        return self._general(raw, env)[0]

    def _left(self, raw: object, credential: bool) -> Comparable:
        value = coerce_left(raw, self.kind)
        if self.kind is Kind.IRI and isinstance(value, str):
            return _normalise_iri(value, credential)
        return value

    def _related(self, term: str, index: int, env: Env) -> bool:
        """Whether ``term`` is (part of / a kind of) right value ``index``."""
        if term in self.narrower[index]:
            return True
        if not env.world.part_of:
            return False
        narrower = self.narrower[index]
        return any(collection in narrower for collection in env.world.collections_of(term))

    def _test(self, left: Comparable, env: Env) -> bool:
        op, rights = self.op, self.rights
        if op == "eq":
            return any(_same(left, r) for r in rights)
        if op == "neq":
            return all(not _same(left, r) for r in rights)
        if op in ("lt", "lteq", "gt", "gteq"):
            from policies.values import order

            sign = order(left, rights[0])
            if self.zoneless and isinstance(left, datetime) and isinstance(rights[0], datetime):
                signs = {order(left, rights[0].replace(tzinfo=zone)) for zone in _EXTREME_ZONES}
                if len(signs) > 1:
                    raise ValueMismatch(
                        f"{display(rights[0].replace(tzinfo=None))} has no time zone and "
                        f"{display(left)} is within 14 hours of it: the order is indeterminate"
                    )
            return {"lt": sign < 0, "lteq": sign <= 0, "gt": sign > 0, "gteq": sign >= 0}[op]
        if op == "isAnyOf":
            return any(_same(left, r) for r in rights)
        if op == "isNoneOf":
            return all(not _same(left, r) for r in rights)
        if op == "isAllOf":
            return all(_same(left, r) for r in rights)
        if op in ("isA", "isPartOf"):
            return any(self._related(str(left), i, env) for i in range(len(rights)))
        if op == "hasPart":
            return any(_contains(str(left), str(r), env) for r in rights)
        raise ValueMismatch(f"operator {op} is not implemented")  # pragma: no cover - guarded at compile

    def _test_set(self, left: frozenset[Comparable], env: Env) -> bool:
        op, rights = self.op, self.rights
        right_set = frozenset(rights)
        if self.operand is not None and self.operand.iri == terms.COLUMNS:
            if op in ("isPartOf", "isAnyOf", "isAllOf"):
                return left <= right_set
            if op == "isNoneOf":
                return not (left & right_set)
        if op == "eq":
            return (
                (rights[0] in left)
                if len(rights) == 1 and not self.constraint.right_is_list
                else left == right_set
            )
        if op == "neq":
            return (
                (rights[0] not in left)
                if len(rights) == 1 and not self.constraint.right_is_list
                else left != right_set
            )
        if op == "isAnyOf":
            return bool(left & right_set)
        if op == "isAllOf":
            return right_set <= left
        if op == "isNoneOf":
            return not (left & right_set)
        if op in ("isA", "isPartOf"):
            return all(any(self._related(str(x), i, env) for i in range(len(rights))) for x in left)
        if op == "hasPart":
            return all(any(_contains(str(x), str(r), env) for x in left) for r in rights)
        raise ValueMismatch(f"{op} does not compare a set of values")

    def premise(self, env: Env, kind: str) -> Premise:
        """The explained path: like ``state`` but keeps the value; the sentence is made on output."""
        c = self.constraint
        quick = None
        if self.static is None and self.shortcut is not None:
            assert self.operand is not None
            raw = self.operand.resolve(env)
            if raw is not DEFERRED and not isinstance(raw, Missing):
                quick = self.shortcut(raw, env)
        if quick is not None:
            state, value, reason = quick, raw, ""
        else:
            state, value, reason = self.evaluate(env)
        right = self.right_shown
        return Premise(
            kind=kind,
            state=state,
            reason=reason,
            left_operand=c.left_operand,
            operator=c.operator,
            right_operand=right,
            value=value,
            unknown_term=self.unknown_term,
            uid=c.uid,
        )


_ZONELESS_RE: Final = re.compile(r"^-?\d{4,}-\d{2}-\d{2}T[\d:.]+$")
_EXTREME_ZONES: Final = (timezone(timedelta(hours=14)), timezone(timedelta(hours=-14)))
_HIERARCHY_BASES: Final = ("https://w3id.org/sluis/purpose/", "https://w3id.org/sluis/place/")


def _doubtful(iri: str, env: Env) -> str | None:
    """Why a requested IRI cannot be compared, or None.

    A purpose or place in our namespaces that the hierarchies do not know, or any IRI with
    non-ASCII characters that no hierarchy or world fact knows, is a misspelling or a look-alike
    (``commercіal-use`` with a Cyrillic ``і``): compared as it is, it would escape a prohibition
    on the real term. It is unknown instead (a permission does not grant, a prohibition holds).
    """
    why = _doubtful_term(iri)
    if why is None or (env.world.part_of and env.world.collections_of(iri)):
        return None
    return why


def _doubtful_term(iri: str) -> str | None:
    """``_doubtful`` without the world's facts."""
    if iri.isascii() and not iri.startswith(_HIERARCHY_BASES):
        return None
    from vocab.hierarchy import places, purposes

    if purposes().knows(iri) or places().knows(iri):
        return None
    if not iri.isascii():
        return f"{iri} has non-ASCII characters and is no term we know (a look-alike?)"
    return f"{iri} is not a term of our purpose or place hierarchy (a misspelling?)"


def _same(left: Comparable, right: Comparable) -> bool:
    if isinstance(left, str) or isinstance(right, str):
        return left == right
    from policies.values import order

    try:
        return order(left, right) == 0
    except ValueMismatch:
        return False


def _contains(whole: str, part: str, env: Env) -> bool:
    """Whether ``part`` lies inside ``whole`` (hierarchies, then the world's partOf facts)."""
    if whole == part or whole in _ancestors_cached(part):
        return True
    if not env.world.part_of:
        return False
    return any(whole == c or whole in _ancestors_cached(c) for c in env.world.collections_of(part))


# Ancestor sets of terms met in hasPart questions; bounded so hostile input cannot grow it.
_ANCESTOR_CACHE: dict[str, frozenset[str]] = {}
_ANCESTOR_CACHE_SIZE: Final = 10_000


def _ancestors_cached(part: str) -> frozenset[str]:
    """Every term above ``part`` in the purpose and place hierarchies."""
    cached = _ANCESTOR_CACHE.get(part)
    if cached is None:
        from vocab.hierarchy import places, purposes

        cached = purposes().ancestors(part) | places().ancestors(part)
        if len(_ANCESTOR_CACHE) < _ANCESTOR_CACHE_SIZE:
            _ANCESTOR_CACHE[part] = cached
    return cached


_Shortcut = Callable[[object, Env], "State | None"]
_ORDER: Final = {
    "lt": operator.lt,
    "lteq": operator.le,
    "gt": operator.gt,
    "gteq": operator.ge,
    "eq": operator.eq,
    "neq": operator.ne,
}


def _spellings(iri: str, credential: bool) -> set[str]:
    """Every way a request may write ``iri`` (full, prefixed, or bare for our credentials)."""
    forms = {iri}
    for prefix, namespace in terms.PREFIXES.items():
        if iri.startswith(namespace):
            forms.add(f"{prefix}:{iri[len(namespace) :]}")
    if credential and iri.startswith(terms.SLUIS_NS):
        forms.add(iri[len(terms.SLUIS_NS) :])
    return forms


def _shortcut(atom: _Atom) -> _Shortcut | None:
    """A specialised test for the common shapes; ``None`` from it means "take the general path".

    Each shortcut answers only when its answer is certainly the general path's answer; the
    property tests compare both paths on generated policies.
    """
    op, rights, kind = atom.op, atom.rights, atom.kind
    single = len(rights) == 1 and not atom.constraint.right_is_list
    if kind is Kind.DATETIME and single and op in _ORDER and isinstance(rights[0], datetime):
        compare, bound = _ORDER[op], rights[0]

        def on_time(raw: object, env: Env) -> State | None:
            if type(raw) is datetime and raw.tzinfo is not None:
                return _SAT if compare(raw, bound) else _UNSAT
            return None

        return on_time
    if kind is Kind.NUMBER and single and op in _ORDER and not atom.set_left:
        compare, number = _ORDER[op], rights[0]

        def on_number(raw: object, env: Env) -> State | None:
            if type(raw) is int:
                return _SAT if compare(raw, number) else _UNSAT
            return None

        return on_number
    if kind is Kind.IRI and not atom.set_left and op in ("isA", "isPartOf"):
        union: frozenset[str] = frozenset(
            term for term in frozenset().union(*atom.narrower) if _doubtful_term(term) is None
        )

        def on_hierarchy(raw: object, env: Env) -> State | None:
            if type(raw) is str:
                if raw in union:
                    return _SAT
                if (
                    not env.world.part_of
                    and raw.partition(":")[0] not in terms.PREFIXES
                    and _doubtful_term(raw) is None
                ):
                    return _UNSAT
            return None

        return on_hierarchy
    if kind in (Kind.IRI, Kind.TEXT) and not atom.set_left and op in ("eq", "isAnyOf", "neq", "isNoneOf"):
        members = frozenset(str(r) for r in rights)
        positive = op in ("eq", "isAnyOf")

        safe = frozenset(member for member in members if kind is Kind.TEXT or _doubtful_term(member) is None)

        def on_member(raw: object, env: Env) -> State | None:
            if type(raw) is str and (
                kind is Kind.TEXT
                or (
                    raw.partition(":")[0] not in terms.PREFIXES
                    and (raw in safe or _doubtful_term(raw) is None)
                )
            ):
                return _SAT if (raw in members) is positive else _UNSAT
            return None

        return on_member
    credential = atom.operand is not None and atom.operand.iri == terms.CREDENTIAL
    if credential and ((op == "eq" and single) or op == "isAnyOf"):
        forms: frozenset[str] = frozenset().union(*(_spellings(str(r), True) for r in rights))

        def on_credential(raw: object, env: Env) -> State | None:
            if type(raw) is list and len(raw) <= MAX_SET_SIZE and all(type(item) is str for item in raw):
                return _SAT if any(item in forms for item in raw) else _UNSAT
            return None

        return on_credential
    return None


class _Logical:
    __slots__ = ("children", "constraint", "name", "unknown_term")

    def __init__(self, constraint: LogicalConstraint) -> None:
        self.constraint = constraint
        self.name = terms.local_name(constraint.operator)
        self.children = tuple(_compile_constraint(c) for c in constraint.operands)
        # A term the engine does not understand inside a disjunction is not a branch that
        # merely fails: the author may have meant it to narrow the others. The disjunction is
        # undecidable (fail closed) rather than decided by the branches that are understood.
        self.unknown_term: str | None = next(
            (c.unknown_term for c in self.children if c.unknown_term is not None), None
        )

    def _combine(self, states: list[State]) -> State:
        if self.unknown_term is not None and self.name in ("or", "xone"):
            return _UNKNOWN
        if self.name in ("or", "xone"):
            # a row filter cannot be one branch of a disjunction: the data plane filters
            # rows with a conjunction only, so such a branch is unknown (fail closed)
            states = [_UNKNOWN if s is _DEFERRED else s for s in states]
        if self.name == "and":
            return all_of(states)
        if self.name == "or":
            if _SAT in states:
                return _SAT
            return _UNKNOWN if _UNKNOWN in states else _UNSAT
        if self.name == "xone":
            satisfied = states.count(_SAT)
            if satisfied > 1:
                return _UNSAT
            if _UNKNOWN in states:
                return _UNKNOWN
            return _SAT if satisfied == 1 else _UNSAT
        return all_of(states)  # andSequence, evaluated in order by the callers

    def evaluate(self, env: Env) -> State:
        if self.name == "andSequence":
            for child in self.children:
                state = _state(child, env)
                if not holds(state):
                    return state
            return all_of([_state(c, env) for c in self.children])
        return self._combine([_state(c, env) for c in self.children])

    def premise(self, env: Env, kind: str) -> Premise:
        children: list[Premise] = []
        stopped = False
        for child in self.children:
            if stopped:
                children.append(
                    Premise(kind="constraint", state=_SKIPPED, reason="an earlier member did not hold")
                )
                continue
            premise = child.premise(env, kind)
            children.append(premise)
            if self.name == "andSequence" and not holds(premise.state):
                stopped = True
        state = self.evaluate(env)
        if self.unknown_term is not None and self.name in ("or", "xone"):
            reason = (
                f"{self.name} has a member with the unknown term "
                f"{terms.compact_term(self.unknown_term)}: it cannot be decided (fails closed)"
            )
        elif self.name in ("or", "xone") and any(p.state is _DEFERRED for p in children):
            reason = (
                f"{self.name} over a row filter is not supported: "
                "the data plane only filters rows by a conjunction"
            )
        else:
            reason = f"{self.name} of {len(children)} constraints is {state.value}"
        return Premise(
            kind=self.name, state=state, reason=reason, uid=self.constraint.uid, premises=tuple(children)
        )


_Compiled = _Atom | _Logical


def _compile_constraint(node: ConstraintNode) -> _Compiled:
    return _Atom(node) if isinstance(node, Constraint) else _Logical(node)


def _state(compiled: _Compiled, env: Env) -> State:
    if isinstance(compiled, _Atom):
        return compiled.state(env)
    return compiled.evaluate(env)


# --- rules ----------------------------------------------------------------------------------
class _Match:
    """A target or party premise: the request's IRI is the rule's, or part of its collection."""

    __slots__ = ("entity", "kind", "refinements")

    def __init__(self, entity: Entity | None, kind: str) -> None:
        self.entity = entity
        self.kind = kind
        self.refinements = tuple(_compile_constraint(c) for c in entity.refinements) if entity else ()

    def _base(self, requested: str, env: Env) -> tuple[State, str]:
        if self.entity is None:
            what = (
                "target: the policy applies to the asset it is attached to"
                if self.kind == "target"
                else ("party: any party")
            )
            return _SAT, f"the rule names no {what}"
        iri = self.entity.iri
        if requested == iri:
            return _SAT, f"{requested} is the rule's {self.kind}"
        if env.world.part_of and iri in env.world.collections_of(requested):
            return _SAT, f"{requested} is part of {iri}"
        return _UNSAT, f"{requested} is not {iri} and not part of it"

    def evaluate(self, requested: str, env: Env) -> State:
        entity = self.entity
        outside = entity is not None and requested != entity.iri
        if outside and not (env.world.part_of and entity is not None and self._within(requested, env)):
            return _UNSAT
        state = _SAT
        if not self.refinements:
            return state
        return all_of([state, *(_state(r, env) for r in self.refinements)])

    def _within(self, requested: str, env: Env) -> bool:
        return self.entity is not None and self.entity.iri in env.world.collections_of(requested)

    def premise(self, requested: str, env: Env) -> Premise:
        state, reason = self._base(requested, env)
        children = tuple(r.premise(env, "refinement") for r in self.refinements)
        if children:
            state = all_of([state, *(c.state for c in children)])
        return Premise(
            kind=self.kind,
            state=state,
            reason=reason,
            value=requested,
            right_operand=self.entity.iri if self.entity else None,
            premises=children,
        )


# Distinct requested actions remembered per rule; the action vocabulary is small.
_ACTION_CACHE_SIZE: Final = 256


class _ActionMatch:
    __slots__ = ("action", "explained", "known", "refinements")

    def __init__(self, action: Action) -> None:
        self.action = action
        self.refinements = tuple(_compile_constraint(c) for c in action.refinements)
        self.known: dict[str, State] = {}
        self.explained: dict[str, tuple[State, str, str | None]] = {}

    def _base(self, requested: str) -> tuple[State, str, str | None]:
        granted = self.action.iri
        if not terms.is_known_action(granted):
            return _UNKNOWN, f"unknown action {terms.compact_term(granted)!r}", granted
        if not terms.is_known_action(requested):
            return _UNKNOWN, f"unknown requested action {terms.compact_term(requested)!r}", requested
        if terms.action_included_in(requested, granted):
            return _SAT, f"{terms.compact_term(requested)} is included in {terms.compact_term(granted)}", None
        return (
            _UNSAT,
            f"{terms.compact_term(requested)} is not included in {terms.compact_term(granted)}",
            None,
        )

    def evaluate(self, requested: str, env: Env) -> State:
        state = self.known.get(requested)
        if state is None:
            state = self._base(requested)[0]
            if len(self.known) < _ACTION_CACHE_SIZE:
                self.known[requested] = state
        if not self.refinements or state is _UNSAT:
            return state
        return all_of([state, *(_state(r, env) for r in self.refinements)])

    def premise(self, requested: str, env: Env) -> Premise:
        found = self.explained.get(requested)
        if found is None:
            found = self._base(requested)
            if len(self.explained) < _ACTION_CACHE_SIZE:
                self.explained[requested] = found
        state, reason, unknown = found
        children = tuple(r.premise(env, "refinement") for r in self.refinements)
        if children:
            state = all_of([state, *(c.state for c in children)])
        return Premise(
            kind="action",
            state=state,
            reason=reason,
            value=requested,
            right_operand=self.action.iri,
            unknown_term=unknown,
            premises=children,
        )


def _is_deadline(node: ConstraintNode) -> bool:
    """``dateTime lt/lteq T`` or ``elapsedTime lt/lteq D`` on a duty: perform it by then."""
    return (
        isinstance(node, Constraint)
        and node.left_operand in (terms.DATE_TIME, terms.ELAPSED_TIME)
        and node.operator in (terms.odrl("lt"), terms.odrl("lteq"))
    )


class _Duty:
    """A duty (of a permission), obligation, remedy or consequence.

    Its constraints say when it is in force, except a *deadline* (``dateTime`` or
    ``elapsedTime`` with ``lt``/``lteq``), which says by when it must be performed. A duty
    without a deadline is a pre-condition: while in force and not fulfilled it blocks its
    permission. A duty with a deadline is performed after use: it blocks only once it is
    violated - recorded so, or its deadline passed unfulfilled. An obligation never blocks
    while pending, only when violated.
    """

    __slots__ = ("action", "consequences", "constraints", "deadlines", "party", "role", "rule")

    def __init__(self, rule: Rule, role: str) -> None:
        self.rule = rule
        self.role = role
        self.action = rule.action.iri
        refinements = rule.action.refinements
        self.deadlines = tuple(_compile_constraint(c) for c in rule.constraints if _is_deadline(c))
        self.constraints = tuple(
            _compile_constraint(c) for c in (*rule.constraints, *refinements) if not _is_deadline(c)
        )
        self.party = _Match(rule.assignee, "party") if role == "obligation" else None
        self.consequences = tuple(_Duty(c, "consequence") for c in rule.consequences)

    def _activation(self, env: Env) -> State:
        states = [_state(c, env) for c in self.constraints]
        if self.party is not None:
            states.insert(0, self.party.evaluate(env.request.assignee, env))
        if not terms.is_known_action(self.action):
            states.append(_UNKNOWN)
        return all_of(states)

    def _outcome(self, activation: State, deadline: State | None, env: Env) -> tuple[str, bool]:
        """(state, blocking): whether this duty stands in the way of the use."""
        if activation is _UNSAT:
            return "inactive", False
        if activation is _UNKNOWN:
            return "unknown", True
        recorded = env.world.duty_state(self.rule.uid)
        if recorded == "fulfilled":
            return "fulfilled", False
        if recorded == "violated" or deadline is _UNSAT:
            if self.consequences and all(
                env.world.duty_state(c.rule.uid) == "fulfilled" for c in self.consequences
            ):
                return "violated", False  # made good by its consequences
            return "violated", True
        if deadline is _UNKNOWN:
            return "unknown", True  # cannot tell whether the deadline passed (fail closed)
        if deadline is not None:
            return "pending", False  # due by its deadline, not before the use
        return "pending", self.role != "obligation"

    def blocking(self, env: Env) -> bool:
        deadline = all_of([_state(d, env) for d in self.deadlines]) if self.deadlines else None
        return self._outcome(self._activation(env), deadline, env)[1]

    def report(self, env: Env) -> DutyReport:
        premises = [c.premise(env, "constraint") for c in self.constraints]
        if self.party is not None:
            premises.insert(0, self.party.premise(env.request.assignee, env))
        if not terms.is_known_action(self.action):
            premises.append(
                Premise(
                    kind="action",
                    state=_UNKNOWN,
                    reason=f"unknown action {terms.compact_term(self.action)!r}",
                    unknown_term=self.action,
                )
            )
        activation = all_of([p.state for p in premises])
        deadline_premises = [d.premise(env, "deadline") for d in self.deadlines]
        deadline = all_of([p.state for p in deadline_premises]) if deadline_premises else None
        state, blocking = self._outcome(activation, deadline, env)
        overdue = deadline is _UNSAT and env.world.duty_state(self.rule.uid) is None
        reasons = {
            "inactive": "not in force: its constraints do not hold",
            "unknown": "cannot tell whether it is in force or overdue; treated as unfulfilled (fail closed)",
            "fulfilled": "fulfilled",
            "pending": "in force and not yet fulfilled"
            + (
                "; due by its deadline"
                if deadline is not None
                else ("" if self.role == "obligation" else "; a permission's duty must be fulfilled first")
            ),
            "violated": ("violated: its deadline passed unfulfilled" if overdue else "violated")
            + (", made good by its consequences" if not blocking else ""),
        }
        return DutyReport(
            rule=self.rule.uid,
            role=self.role,
            action=self.action,
            active=holds(activation),
            state=state,
            blocking=blocking,
            reason=reasons[state],
            premises=tuple(premises + deadline_premises),
            consequences=tuple(c.report(env) for c in self.consequences),
        )


class _Rule:
    __slots__ = ("action", "constraints", "duties", "kind", "party", "remedies", "rule", "target")

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.kind = rule.kind
        self.target = _Match(rule.target, "target")
        self.party = _Match(rule.assignee, "party")
        self.action = _ActionMatch(rule.action)
        self.constraints = tuple(_compile_constraint(c) for c in rule.constraints)
        self.duties = tuple(_Duty(d, "duty") for d in rule.duties)
        self.remedies = tuple(_Duty(d, "remedy") for d in rule.remedies)

    def _premise_state(self, env: Env) -> State:
        """All premises in conjunction, stopping at the first that fails (the fast path)."""
        request = env.request
        unknown = False
        for state in (
            self.target.evaluate(request.target, env),
            self.party.evaluate(request.assignee, env),
            self.action.evaluate(request.action_iri, env),
        ):
            if state is _UNSAT:
                return _UNSAT
            unknown = unknown or state is _UNKNOWN
        for constraint in self.constraints:
            state = _state(constraint, env)
            if state is _UNSAT:
                return _UNSAT
            unknown = unknown or state is _UNKNOWN
        return _UNKNOWN if unknown else _SAT

    def grants(self, env: Env) -> bool:
        """A permission is exercisable: every premise holds and no duty stands in the way."""
        env.rule_uid = self.rule.uid
        return holds(self._premise_state(env)) and not any(d.blocking(env) for d in self.duties)

    def forbids(self, env: Env) -> bool:
        """A prohibition is in force: no premise is known to fail (unknown counts as holding)."""
        env.rule_uid = self.rule.uid
        return self._premise_state(env) is not _UNSAT

    def report(self, env: Env) -> RuleReport:
        env.rule_uid = self.rule.uid
        request = env.request
        premises = [
            self.target.premise(request.target, env),
            self.party.premise(request.assignee, env),
            self.action.premise(request.action_iri, env),
            *(c.premise(env, "constraint") for c in self.constraints),
        ]
        state = all_of([p.state for p in premises])
        duties = tuple(d.report(env) for d in (*self.duties, *self.remedies))
        cause: Premise | None = None
        suffix = ""
        if self.kind == "permission":
            blocking = [d for d in duties if d.blocking and d.role == "duty"]
            active = holds(state) and not blocking
            if not holds(state):
                note, cause = "is not active", _first_failure(premises)
            elif blocking:
                duty = blocking[0]
                action = terms.compact_term(duty.action)
                note = f"is not exercisable: its duty {duty.rule} ({action}) is {duty.state}"
            else:
                note = "every premise holds and no duty is outstanding: grants the request"
        else:
            active = state is not _UNSAT
            if state is _UNSAT:
                note, cause = "is not in force", _first_failure(premises)
            elif state is _UNKNOWN:
                note, cause = "may be in force", _first_failure(premises)
                suffix = "; treated as in force (fail closed)"
            else:
                note = "every premise holds: forbids the request"
        target = self.rule.target.iri if self.rule.target else None
        return RuleReport(
            rule=self.rule.uid,
            kind=self.kind,
            action=self.rule.action.iri,
            target=target,
            active=active,
            state=state,
            note=note,
            premises=tuple(premises),
            duties=duties,
            origin=self.rule.origin if self.rule.origin and self.rule.origin != env.policy.uid else "",
            cause=cause,
            suffix=suffix,
        )


def _first_failure(premises: list[Premise]) -> Premise | None:
    """The innermost premise that fails (unsatisfied first, then unknown)."""
    for wanted in (_UNSAT, _UNKNOWN):
        for premise in premises:
            found = _find(premise, wanted)
            if found is not None:
                return found
    return None


def _find(premise: Premise, wanted: State) -> Premise | None:
    if premise.state is not wanted:
        return None
    for child in premise.premises:
        deeper = _find(child, wanted)
        if deeper is not None:
            return deeper
    return premise


class CompiledPolicy:
    """A policy compiled to predicates: ``decide`` is the fast path, ``explain`` the full one."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.unsupported_profiles = tuple(p for p in policy.profiles if p not in SUPPORTED_PROFILES)
        self.permissions = tuple(_Rule(r) for r in policy.atomic_rules if r.kind == "permission")
        self.prohibitions = tuple(_Rule(r) for r in policy.atomic_rules if r.kind == "prohibition")
        self.obligations = tuple(
            _Duty(r, "obligation") for r in policy.atomic_rules if r.kind == "obligation"
        )
        self.strategy = policy.conflict_strategy

    def decide(self, request: Request, world: World) -> bool:
        """Whether ``request`` is permitted, without recording why (the hot path)."""
        return self._permit(request, world) is not None

    def permit_summary(self, request: Request, world: World) -> str | None:
        """The summary ``explain`` would give a permit, or ``None`` when the request is denied.

        A permit is the common answer at every step of a negotiation, and its summary needs
        only the granting permission (and the overridden prohibition under ``perm``), so the
        explanation tree is not built for it; a denial's reasons come from ``explain``.
        """
        found = self._permit(request, world)
        if found is None:
            return None
        granting, forbidding = found
        if forbidding is None:
            return f"permit: permission {granting.rule.uid} grants {terms.compact_term(request.action_iri)}"
        return (
            f"permit: permission {granting.rule.uid} and prohibition {forbidding.rule.uid} conflict; "
            "the conflict strategy perm lets the permission win"
        )

    def _permit(self, request: Request, world: World) -> tuple[_Rule, _Rule | None] | None:
        """(the first granting permission, the first prohibition in force) of a permit, or ``None``.

        The same order as ``explain`` (rules in policy order, first match named), so the fast
        summary is the explained one; ``tests/policies/test_policy_fast_decisions.py`` checks it.
        """
        if self.unsupported_profiles:
            return None
        env = Env(request, world, self.policy)
        for obligation in self.obligations:
            env.rule_uid = obligation.rule.uid
            if obligation.blocking(env):
                return None
        granting = next((p for p in self.permissions if p.grants(env)), None)
        if granting is None:
            return None
        forbidding = next((q for q in self.prohibitions if q.forbids(env)), None)
        if forbidding is None:
            return granting, None
        return (granting, forbidding) if self.strategy == terms.PERM else None

    def explain(self, request: Request, world: World) -> Decision:
        env = Env(request, world, self.policy)
        permission_reports = [p.report(env) for p in self.permissions]
        prohibition_reports = [q.report(env) for q in self.prohibitions]
        obligation_reports = []
        for obligation in self.obligations:
            env.rule_uid = obligation.rule.uid
            obligation_reports.append(obligation.report(env))
        rules = [
            *permission_reports,
            *prohibition_reports,
            *(_obligation_rule(o) for o in obligation_reports),
        ]
        granted = [r for r in permission_reports if r.active]
        forbidding = [r for r in prohibition_reports if r.active]
        blocking = [o for o in obligation_reports if o.blocking]
        conflict = bool(granted and forbidding)
        if self.unsupported_profiles or blocking or not granted:
            permitted = False
        elif not forbidding:
            permitted = True
        else:
            permitted = self.strategy == terms.PERM

        def summary() -> str:
            return self._summary(request, permission_reports, granted, forbidding, blocking, conflict)

        return Decision(
            permitted=permitted,
            summary_text=summary,
            policy=self.policy,
            request=request,
            world=world,
            conflict=self.strategy,
            rules=tuple(rules),
            unsupported_profiles=self.unsupported_profiles,
            conflict_found=conflict,
        )

    def _summary(
        self,
        request: Request,
        permissions: list[RuleReport],
        granted: list[RuleReport],
        forbidding: list[RuleReport],
        blocking: list[DutyReport],
        conflict: bool,
    ) -> str:
        """The one sentence that says what decided (made only when someone reads it)."""
        if self.unsupported_profiles:
            profile = self.unsupported_profiles[0]
            return f"deny: the policy uses the profile {profile}, which this engine does not support"
        if blocking:
            duty = blocking[0]
            return f"deny: obligation {duty.rule} ({terms.compact_term(duty.action)}) is {duty.state}"
        if not granted:
            return "deny: " + _why_no_permission(permissions)
        if not forbidding:
            return f"permit: permission {granted[0].rule} grants {terms.compact_term(request.action_iri)}"
        if self.strategy == terms.PERM:
            return (
                f"permit: permission {granted[0].rule} and prohibition {forbidding[0].rule} conflict; "
                "the conflict strategy perm lets the permission win"
            )
        if conflict and self.strategy == terms.INVALID:
            return (
                f"deny: permission {granted[0].rule} and prohibition {forbidding[0].rule} conflict and the "
                "conflict strategy is invalid (the default), so the policy is void for this request"
            )
        return f"deny: prohibition {forbidding[0].rule} {forbidding[0].reason}"


def _obligation_rule(report: DutyReport) -> RuleReport:
    return RuleReport(
        rule=report.rule,
        kind="obligation",
        action=report.action,
        target=None,
        active=report.active,
        state=State.SATISFIED if report.active else State.UNSATISFIED,
        note=f"obligation {report.reason}" + ("; it blocks the request" if report.blocking else ""),
        premises=report.premises,
        duties=(report,) if report.consequences else (),
    )


def _why_no_permission(reports: list[RuleReport]) -> str:
    if not reports:
        return "the policy has no permission, so nothing is permitted"

    # Prefer a permission that matches target, party and action: its constraints decided.
    def matched(report: RuleReport) -> bool:
        return all(p.state is not _UNSAT for p in report.premises[:3])

    best = next((r for r in reports if matched(r)), reports[0])
    return f"permission {best.rule} {best.reason}"


def compile_policy(policy: Policy) -> CompiledPolicy:
    """The policy's compiled form, built once per policy object and reused."""
    cached = policy.__dict__.get("_compiled")
    if isinstance(cached, CompiledPolicy):
        return cached
    compiled = CompiledPolicy(policy)
    object.__setattr__(policy, "_compiled", compiled)
    return compiled
