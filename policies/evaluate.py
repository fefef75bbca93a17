"""Evaluate a request against a policy: the decision with its full explanation.

The semantics (which rules apply, three-valued constraints, duties, conflict strategies) live
with the compiled predicates in ``policies.compile`` so that the fast path and this explained
path share one implementation; ``docs/policies.md`` states every choice.
"""

from __future__ import annotations

from policies.compile import compile_policy
from policies.explanation import Decision
from policies.model import Policy
from policies.request import Request, World


def evaluate(policy: Policy, request: Request, world: World | None = None) -> Decision:
    """Decide ``request`` against ``policy`` in ``world`` (empty facts when omitted)."""
    return compile_policy(policy).explain(request, world or World())
