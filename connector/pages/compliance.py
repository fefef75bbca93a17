"""Pages for compliance officers: the audit log (integrity checked when shown), its export, a
policy lint and decision explainer, and the lineage of jobs as the audit log records it.

The audit chain is verified against this connector's own public key every time the page is
opened, over the whole chain (not only the entries shown), so the page can say "intact" only
when every link and signature checks out. Policy checks run the engine itself: the page shows
its decision tree, not a paraphrase of it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from io import StringIO
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from connector.audit import AuditEntry, AuditLog, ChainReport, export_log
from connector.audit.export import public_key_verifier
from connector.pages.context import ConnectorPages
from connector.pages.web import PAGES
from policies import PolicyError, World, evaluate, lint, parse_policy
from policies import Request as PolicyRequest
from policies.sentences import policy_sentences
from policies.values import ValueMismatch, parse_datetime

# Entries shown on one audit page (the whole chain is verified regardless).
AUDIT_PAGE_SIZE: Final = 100
MAX_FILTER_CHARS: Final = 512
# A pasted policy or request is a few KB; refuse what cannot be one.
MAX_PASTED_CHARS: Final = 256 * 1024
# Jobs shown on the lineage page, most recent first.
MAX_JOBS: Final = 200


def _verify(log: AuditLog, pages: ConnectorPages) -> ChainReport:
    return log.verify(public_key_verifier(pages.key.public_key))


def _entry_json(entry: AuditEntry) -> dict[str, Any]:
    body = entry.body or {}
    return {
        "seq": entry.seq,
        "at": body.get("at"),
        "kind": body.get("kind"),
        "decision": body.get("decision"),
        "code": body.get("code"),
        "agreement_id": body.get("agreement_id"),
        "consumer_id": body.get("consumer_id"),
        "job_id": body.get("job_id"),
        "rows": body.get("rows"),
        "reason": body.get("reason") or body.get("summary") or body.get("detail"),
        "entry_hash": entry.entry_hash,
    }


def _filtered(log: AuditLog, agreement: str, job: str) -> list[AuditEntry]:
    if agreement:
        entries = log.entries_for(agreement_id=agreement, limit=10 * AUDIT_PAGE_SIZE)
    else:
        entries = list(log.entries())
    if job:
        entries = [entry for entry in entries if (entry.body or {}).get("job_id") == job]
    return entries[-AUDIT_PAGE_SIZE:][::-1]


def _request_from(text: str) -> PolicyRequest:
    document = _json_object(text, "request")
    for key in ("assignee", "action", "target"):
        if not isinstance(document.get(key), str) or not document[key]:
            raise ValueError(f"request: {key!r} must be a non-empty string")
    context = document.get("context", {})
    if not isinstance(context, Mapping):
        raise ValueError("request: 'context' must be an object")
    return PolicyRequest(document["assignee"], document["action"], document["target"], dict(context))


def _world_from(text: str) -> World:
    if not text.strip():
        return World()
    document = _json_object(text, "world")
    unknown = set(document) - {"now", "partOf", "duties", "counts"}
    if unknown:
        raise ValueError(f"world: unknown keys {sorted(unknown)} (allowed: now, partOf, duties, counts)")
    now: datetime | None = None
    if document.get("now") is not None:
        try:
            now = parse_datetime(str(document["now"]))
        except ValueMismatch as error:
            raise ValueError(f"world: 'now' {error}") from None
    counts = document.get("counts", {})
    if not isinstance(counts, Mapping) or not all(
        isinstance(value, int) and not isinstance(value, bool) and value >= 0 for value in counts.values()
    ):
        raise ValueError("world: 'counts' maps rule or policy ids to whole numbers")
    part_of = document.get("partOf", {})
    duties = document.get("duties", {})
    if not isinstance(part_of, Mapping) or not isinstance(duties, Mapping):
        raise ValueError("world: 'partOf' and 'duties' must be objects")
    try:
        return World(
            now=now,
            part_of={str(k): list(v) for k, v in part_of.items()},
            duties={str(k): str(v) for k, v in duties.items()},
            counts=dict(counts),
        )
    except PolicyError as error:
        raise ValueError(f"world: {error}") from None


def _json_object(text: str, name: str) -> dict[str, Any]:
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise ValueError(f"{name}: not JSON ({error})") from None
    if not isinstance(document, dict):
        raise ValueError(f"{name}: must be a JSON object")
    return document


def _policy_document(text: str) -> dict[str, Any] | str:
    stripped = text.strip()
    if stripped.startswith("{"):
        return _json_object(stripped, "policy")
    return stripped  # Turtle: the parser says what is wrong with it


def compliance_router(pages: ConnectorPages) -> APIRouter:
    router = APIRouter(prefix=PAGES, include_in_schema=False)
    log = pages.audit

    @router.get("/audit")
    async def audit(request: Request, agreement: str = "", job: str = "") -> Response:
        if (refusal := pages.denied(request)) is not None:
            return refusal
        agreement, job = agreement[:MAX_FILTER_CHARS], job[:MAX_FILTER_CHARS]
        if log is None:
            return pages.kit.error(
                request, 404, "No audit log", "This connector has no data plane, so no audit log."
            )

        def gather() -> tuple[ChainReport, list[AuditEntry]]:
            return _verify(log, pages), _filtered(log, agreement, job)

        report, entries = await run_in_threadpool(gather)
        shown = [_entry_json(entry) for entry in entries]
        integrity = {
            "intact": report.intact,
            "checked": report.checked,
            "problem": str(report.problem) if report.problem else None,
            "head": list(report.head) if report.head else None,
        }
        return pages.answer(
            request,
            "audit.html",
            {
                "title": "Audit log",
                "integrity": integrity,
                "entries": shown,
                "filters": {"agreement": agreement, "job": job},
            },
            {"integrity": integrity, "entries": shown},
        )

    @router.get("/audit/export")
    async def audit_export(request: Request) -> Response:
        if (refusal := pages.denied(request)) is not None:
            return refusal
        if log is None:
            return pages.kit.error(
                request, 404, "No audit log", "This connector has no data plane, so no audit log."
            )

        def write() -> str:
            out = StringIO()
            export_log(log, out, pages.key, pages.key.public_multibase, pages.verification_method)
            return out.getvalue()

        body = await run_in_threadpool(write)
        return Response(
            body,
            media_type="application/jsonl",
            headers={
                "Content-Disposition": 'attachment; filename="audit-export.jsonl"',
                "Cache-Control": "no-store",
            },
        )

    @router.get("/policy-check")
    async def policy_check_form(request: Request) -> Response:
        if (refusal := pages.denied(request)) is not None:
            return refusal
        return pages.kit.render(
            request,
            "policy_check.html",
            {"title": "Check a policy", "values": {}, "errors": {}, "result": None},
        )

    @router.post("/policy-check")
    async def policy_check(request: Request) -> Response:
        form = await pages.posted(request)
        if isinstance(form, Response):
            return form
        values = {name: str(form.get(name) or "") for name in ("policy", "request", "world")}
        errors: dict[str, list[str]] = {}
        for name, value in values.items():
            if len(value) > MAX_PASTED_CHARS:
                errors[name] = [f"longer than {MAX_PASTED_CHARS} characters"]
        result: dict[str, Any] | None = None
        if not errors:
            result, errors = _check(values)
        status = 400 if errors else 200
        return pages.kit.render(
            request,
            "policy_check.html",
            {"title": "Check a policy", "values": values, "errors": errors, "result": result},
            status,
        )

    @router.get("/lineage")
    async def lineage(request: Request) -> Response:
        if (refusal := pages.denied(request)) is not None:
            return refusal
        jobs = await run_in_threadpool(lambda: _jobs(log) if log is not None else [])
        return pages.answer(request, "lineage.html", {"title": "Lineage", "jobs": jobs}, jobs)

    return router


def _check(values: dict[str, str]) -> tuple[dict[str, Any] | None, dict[str, list[str]]]:
    errors: dict[str, list[str]] = {}
    if not values["policy"].strip():
        return None, {"policy": ["paste a policy (ODRL JSON-LD or Turtle)"]}
    try:
        document = _policy_document(values["policy"])
        policy = parse_policy(document, None if isinstance(document, dict) else "text/turtle")
    except (PolicyError, ValueError) as error:
        return None, {"policy": [str(error)]}
    result: dict[str, Any] = {
        "sentences": policy_sentences(policy),
        "findings": [finding.to_json() for finding in lint(policy)],
        "decision": None,
    }
    if values["request"].strip():
        try:
            asked = _request_from(values["request"])
        except (ValueError, PolicyError) as error:
            errors["request"] = [str(error)]
        try:
            world = _world_from(values["world"])
        except ValueError as error:
            errors["world"] = [str(error)]
        if not errors:
            result["decision"] = evaluate(policy, asked, world).to_json()
    return result, errors


def _jobs(log: AuditLog) -> list[dict[str, Any]]:
    """Per job: the agreement, purpose and place it declared, and each read or denial it caused."""
    jobs: dict[str, dict[str, Any]] = {}
    for entry in log.entries():
        body = entry.body or {}
        job_id = body.get("job_id")
        if not isinstance(job_id, str) or not job_id:
            continue
        job = jobs.setdefault(
            job_id,
            {
                "job_id": job_id,
                "consumer_id": body.get("consumer_id"),
                "agreements": [],
                "purposes": [],
                "sites": [],
                "reads": 0,
                "denials": 0,
                "rows": 0,
                "events": [],
            },
        )
        for key, field in (
            ("agreements", "agreement_id"),
            ("purposes", "purpose"),
            ("sites", "compute_site"),
        ):
            value = body.get(field)
            if value and value not in job[key]:
                job[key].append(value)
        if body.get("decision") == "deny":
            job["denials"] += 1
        elif body.get("decision") == "permit" and isinstance(body.get("rows"), int):
            job["reads"] += 1
            job["rows"] += body["rows"]
        job["events"].append(
            {
                "seq": entry.seq,
                "at": body.get("at"),
                "decision": body.get("decision"),
                "rows": body.get("rows"),
                "query_hash": body.get("query_hash"),
            }
        )
    ordered = sorted(jobs.values(), key=lambda item: item["events"][-1]["seq"], reverse=True)
    return ordered[:MAX_JOBS]
