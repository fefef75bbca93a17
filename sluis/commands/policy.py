"""``sluis policy evaluate | explain | lint``: the policy engine as a stable command-line contract.

* ``evaluate --policy FILE --request FILE [--world FILE] [--format json|turtle]`` prints the
  report (JSON with ``decision`` and ``rules``, or the compliance report graph in Turtle);
  exit 0 whatever the decision, 2 for invalid input (reason on stderr).
* ``explain`` takes the same inputs and prints the report as plain sentences.
* ``lint FILE`` prints findings; exit 0 when clean (notes of severity ``info`` allowed), 1 with
  errors or warnings, 2 when the file cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from policies import Decision, PolicyError, Request, World, evaluate, lint, parse_policy
from policies.parse import MAX_POLICY_BYTES
from policies.report import decision_graph, decision_sentences
from policies.values import ValueMismatch, parse_datetime
from sluis.cli import EXIT_FINDINGS, EXIT_OK, CommandError

# Request and world files are small JSON documents; refuse anything larger before reading.
MAX_INPUT_BYTES: Final = MAX_POLICY_BYTES
_SUFFIX_MEDIA: Final = {
    ".ttl": "text/turtle",
    ".nt": "application/n-triples",
    ".jsonld": "application/ld+json",
    ".json": "application/json",
    ".rdf": "application/rdf+xml",
}


def register(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = groups.add_parser("policy", help="evaluate, explain and lint ODRL usage policies")
    commands = group.add_subparsers(dest="policy_command", metavar="SUBCOMMAND")
    commands.required = True

    for name, handler, summary in (
        ("evaluate", _evaluate, "decide a request against a policy and print the report"),
        ("explain", _explain, "decide a request and print the report as sentences"),
    ):
        leaf = commands.add_parser(name, help=summary)
        leaf.add_argument(
            "--policy", required=True, type=Path, help="ODRL policy (JSON-LD, DSP JSON or Turtle)"
        )
        leaf.add_argument(
            "--request",
            required=True,
            type=Path,
            help='JSON {"assignee", "action", "target", "context"} or an ODRL Request',
        )
        leaf.add_argument("--world", type=Path, help='JSON {"now", "partOf", "duties", "counts"}')
        if name == "evaluate":
            leaf.add_argument("--format", choices=("json", "turtle"), default="json")
        leaf.set_defaults(handler=handler)

    leaf = commands.add_parser("lint", help="report mistakes in a policy (exit 1 if any)")
    leaf.add_argument("file", type=Path)
    leaf.add_argument("--format", choices=("text", "json"), default="text")
    leaf.set_defaults(handler=_lint)


def _read(path: Path, what: str) -> tuple[str, str | None]:
    try:
        size = path.stat().st_size
        if size > MAX_INPUT_BYTES:
            raise CommandError(f"{what} {path}: {size} bytes is more than the limit of {MAX_INPUT_BYTES}")
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise CommandError(f"cannot read {what} {path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise CommandError(f"{what} {path} is not UTF-8 text") from None
    return text, _SUFFIX_MEDIA.get(path.suffix.lower())


def _load(args: argparse.Namespace) -> Decision:
    text, media = _read(args.policy, "policy")
    try:
        policy = parse_policy(text, media_type=media)
    except PolicyError as error:
        raise CommandError(f"invalid policy {args.policy}: {error} [{error.code}]") from None
    request = _request(*_read(args.request, "request"), args.request)
    world = _world(*_read(args.world, "world"), args.world) if args.world else World()
    return evaluate(policy, request, world)


def _evaluate(args: argparse.Namespace) -> int:
    decision = _load(args)
    if args.format == "turtle":
        sys.stdout.write(decision_graph(decision).serialize(format="turtle"))
    else:
        json.dump(decision.to_json(), sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    return EXIT_OK


def _explain(args: argparse.Namespace) -> int:
    decision = _load(args)
    sys.stdout.write("\n".join(decision_sentences(decision)) + "\n")
    return EXIT_OK


def _lint(args: argparse.Namespace) -> int:
    text, media = _read(args.file, "policy")
    findings = lint(text, media_type=media)
    if args.format == "json":
        json.dump([f.to_json() for f in findings], sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif not findings:
        print(f"{args.file}: no findings")
    else:
        for finding in findings:
            where = f" [{finding.rule}]" if finding.rule else ""
            print(f"{args.file}: {finding.severity}: {finding.code}: {finding.message}{where}")
    # Notes (severity info) are printed but do not fail a script; errors and warnings do.
    return EXIT_FINDINGS if any(f.severity != "info" for f in findings) else EXIT_OK


def _request(text: str, media: str | None, path: Path) -> Request:
    document: Any = None
    if media != "text/turtle" and text.lstrip().startswith("{"):
        try:
            document = json.loads(text)
        except json.JSONDecodeError as error:
            raise CommandError(
                f"request {path}: malformed JSON at line {error.lineno}: {error.msg}"
            ) from None
        except (ValueError, RecursionError) as error:  # a too-long integer, too deep nesting
            raise CommandError(f"request {path}: unreadable JSON: {_why(error)}") from None
    if (
        isinstance(document, Mapping)
        and {"assignee", "action", "target"} <= set(document)
        and "@context" not in document
        and "permission" not in document
    ):
        return _plain_request(document, path)
    try:
        odrl_request = parse_policy(document if document is not None else text, media_type=media)
    except PolicyError as error:
        raise CommandError(f"invalid request {path}: {error} [{error.code}]") from None
    return _odrl_request(odrl_request, path)


def _plain_request(document: Mapping[str, Any], path: Path) -> Request:
    for key in ("assignee", "action", "target"):
        if not isinstance(document.get(key), str) or not document[key]:
            raise CommandError(f"request {path}: {key!r} must be a non-empty string")
    context = document.get("context", {})
    if not isinstance(context, Mapping):
        raise CommandError(f"request {path}: 'context' must be an object of operand: value")
    return Request(document["assignee"], document["action"], document["target"], dict(context))


def _odrl_request(policy: Any, path: Path) -> Request:
    """An ODRL Request: its (first) permission's assignee, action and target; eq constraints as context."""
    from policies.model import Constraint

    permissions = policy.permissions()
    if not permissions:
        raise CommandError(
            f"request {path}: an ODRL Request needs a permission naming assignee, action and target"
        )
    rule = permissions[0]
    if rule.assignee is None or rule.target is None:
        raise CommandError(f"request {path}: the Request's permission must name an assignee and a target")
    context: dict[str, object] = {}
    for node in rule.constraints:
        if isinstance(node, Constraint) and node.operator.endswith("/eq") and node.right:
            values = [v.value for v in node.right]
            context[node.left_operand] = values if node.right_is_list else values[0]
    return Request(rule.assignee.iri, rule.action.iri, rule.target.iri, context)


def _world(text: str, media: str | None, path: Path) -> World:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise CommandError(f"world {path}: malformed JSON at line {error.lineno}: {error.msg}") from None
    except (ValueError, RecursionError) as error:  # a too-long integer, too deep nesting
        raise CommandError(f"world {path}: unreadable JSON: {_why(error)}") from None
    if not isinstance(document, Mapping):
        raise CommandError(f"world {path}: expected a JSON object")
    unknown = set(document) - {"now", "partOf", "duties", "counts"}
    if unknown:
        raise CommandError(
            f"world {path}: unknown keys {sorted(unknown)} (allowed: now, partOf, duties, counts)"
        )
    now: datetime | None = None
    if document.get("now") is not None:
        if not isinstance(document["now"], str):
            raise CommandError(f"world {path}: 'now' must be an xsd:dateTime string")
        try:
            now = parse_datetime(document["now"])
        except ValueMismatch as error:
            raise CommandError(f"world {path}: 'now': {error}") from None
    part_of = document.get("partOf", {})
    if not isinstance(part_of, Mapping) or not all(
        isinstance(v, list) and all(isinstance(i, str) for i in v) for v in part_of.values()
    ):
        raise CommandError(f"world {path}: 'partOf' must map IRIs to lists of collection IRIs")
    duties = document.get("duties", {})
    if not isinstance(duties, Mapping) or not all(v in ("fulfilled", "violated") for v in duties.values()):
        raise CommandError(f'world {path}: \'duties\' must map duty IRIs to "fulfilled" or "violated"')
    counts = document.get("counts", {})
    if not isinstance(counts, Mapping) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in counts.values()
    ):
        raise CommandError(f"world {path}: 'counts' must map IRIs to non-negative integers")
    return World(now=now, part_of=dict(part_of), duties=dict(duties), counts=dict(counts))


def _why(error: Exception) -> str:
    return "it nests too deeply" if isinstance(error, RecursionError) else str(error)[:200]
