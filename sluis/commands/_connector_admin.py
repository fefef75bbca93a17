"""``sluis connector assets|policies|offers|negotiations|agreements|transfers ...``.

What the management API does, as commands an operator types: every body is built from options
(no JSON by hand), every listing pages and filters, every answer is a table (``--json`` for the
raw answer). The connector is named by its ``connector.toml`` (``--config``: public URL and
management token) or by ``--url`` with the token in ``--token`` / ``SLUIS_MANAGEMENT_TOKEN``.
A problem answer is printed with its reason and field errors, exit code 2.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from sluis.cli import CommandError

#: Columns shown per listing (the ``--json`` answer has every field).
COLUMNS: dict[str, tuple[str, ...]] = {
    "assets": ("id", "title"),
    "policies": ("id",),
    "contract-definitions": ("id", "access_policy_id", "contract_policy_id", "asset_ids"),
    "negotiations": ("id", "role", "state", "counterparty_id", "agreement_id"),
    "agreements": ("id", "asset_id", "consumer_id", "terminated"),
    "transfers": ("id", "role", "state", "format", "agreement_id", "error"),
}
FORMATS = {"pull": "HttpData-PULL", "push": "HttpData-PUSH"}
MEDIA = {"arrow": "application/vnd.apache.arrow.stream", "parquet": "application/vnd.apache.parquet"}


class Management:
    """A small client of one connector's management API."""

    def __init__(self, base: str, token: str) -> None:
        self.client = httpx.Client(
            base_url=base.rstrip("/") + "/management",
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
            trust_env=False,
        )

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise CommandError(f"the connector could not be reached: {error}") from None
        if response.status_code >= 400:
            raise CommandError(_problem_text(response))
        return response

    def close(self) -> None:
        self.client.close()


def _problem_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:500]}"
    if not isinstance(body, dict):
        return f"HTTP {response.status_code}"
    lines = [f"HTTP {response.status_code}: {body.get('detail') or body.get('title') or ''}".rstrip()]
    for error in body.get("errors", []) or []:
        if isinstance(error, dict):
            lines.append(f"  {error.get('field')}: {error.get('reason')}")
    return "\n".join(lines)


def _connect(args: argparse.Namespace) -> Management:
    url, token = args.url, args.token or os.environ.get("SLUIS_MANAGEMENT_TOKEN")
    if args.config:
        from connector.config import ConfigError, load_config

        try:
            config = load_config(args.config)
        except ConfigError as error:
            raise CommandError(f"{args.config}: {error}") from None
        url = url or config.server.public_url
        token = token or config.management.token
    if not url or not token:
        raise CommandError("name the connector: --config connector.toml, or --url with --token")
    return Management(url, token)


def _cell(value: object) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return "" if value is None else str(value)


def _table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], total: str | None) -> str:
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    if total is not None and total != str(len(rows)):
        lines.append(f"({len(rows)} of {total}; page with --limit/--offset)")
    return "\n".join(lines)


def _show(args: argparse.Namespace, body: Any) -> None:
    sys.stdout.write(json.dumps(body, indent=2, ensure_ascii=False) + "\n")


def _listing(kind: str, filters: Sequence[str] = ()) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        params: dict[str, Any] = {"limit": args.limit, "offset": args.offset}
        if args.q:
            params["q"] = args.q
        for name in filters:
            value = getattr(args, name, None)
            if value is not None:
                params[name] = str(value).lower() if isinstance(value, bool) else value
        api = _connect(args)
        try:
            response = api.call("GET", f"/{kind}", params=params)
        finally:
            api.close()
        if args.json:
            _show(args, response.json())
        else:
            sys.stdout.write(
                _table(response.json(), COLUMNS[kind], response.headers.get("x-total-count")) + "\n"
            )
        return 0

    return run


def _request(
    method: str,
    path: Callable[[argparse.Namespace], str],
    body: Callable[[argparse.Namespace], Any] | None = None,
) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        api = _connect(args)
        try:
            payload = body(args) if body is not None else None
            response = (
                api.call(method, path(args), json=payload)
                if payload is not None
                else api.call(method, path(args))
            )
        finally:
            api.close()
        _show(args, response.json())
        return 0

    return run


def _fetch_received(args: argparse.Namespace) -> int:
    """Stream a push's received data to ``--out``, checking it against the ``Content-Digest`` the
    connector sends; the file appears only once complete and checked."""
    api = _connect(args)
    target = Path(args.out)
    partial = target.with_name(f".{target.name}.part")
    digest = hashlib.sha256()
    try:
        with api.client.stream("GET", f"/received/{quote(args.id, safe='')}") as response:
            if response.status_code >= 400:
                response.read()
                raise CommandError(_problem_text(response))
            announced = response.headers.get("content-digest", "")
            with partial.open("wb") as out:
                for chunk in response.iter_bytes():
                    out.write(chunk)
                    digest.update(chunk)
    except httpx.HTTPError as error:
        partial.unlink(missing_ok=True)
        raise CommandError(f"the connector could not be reached: {error}") from None
    finally:
        api.close()
    if announced != f"sha-256=:{base64.b64encode(digest.digest()).decode()}:":
        partial.unlink(missing_ok=True)
        raise CommandError("the data received does not match its Content-Digest; nothing written")
    os.replace(partial, target)
    print(f"{target} ({target.stat().st_size} bytes, sha256 {digest.hexdigest()})")
    return 0


def _delete_received(args: argparse.Namespace) -> int:
    api = _connect(args)
    try:
        api.call("DELETE", f"/received/{quote(args.id, safe='')}")
    finally:
        api.close()
    print(f"deleted the data received for {args.id}")
    return 0


def _read_json(path: str, what: str) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CommandError(f"{what} {path}: {error}") from None


def _start_negotiation(args: argparse.Namespace) -> int:
    """Fetch the provider's dataset, take the offer named (or its only one) and negotiate it."""
    api = _connect(args)
    try:
        dataset = api.call(
            "POST",
            "/catalog/dataset",
            json={
                "counterparty_address": args.provider,
                "counterparty_id": args.provider_id,
                "dataset_id": args.dataset,
            },
        ).json()
        offers = [o for o in dataset.get("hasPolicy", []) if isinstance(o, dict)]
        if args.offer:
            offers = [o for o in offers if o.get("@id") == args.offer]
        if len(offers) != 1:
            known = ", ".join(str(o.get("@id")) for o in dataset.get("hasPolicy", []))
            raise CommandError(f"name one offer with --offer (the dataset offers: {known or 'none'})")
        body: dict[str, Any] = {
            "counterparty_address": args.provider,
            "counterparty_id": args.provider_id,
            "dataset_id": args.dataset,
            "offer": offers[0],
            "auto_accept": args.auto_accept,
        }
        for key, value in (
            ("purpose", args.purpose),
            ("compute_site", args.compute_site),
        ):
            if value:
                body[key] = value
        response = api.call("POST", "/negotiations", json=body)
    finally:
        api.close()
    _show(args, response.json())
    return 0


def _transfer_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {
        "agreement_id": args.agreement,
        "counterparty_address": args.provider,
        "format": FORMATS[args.format],
    }
    job = {
        k: v
        for k, v in (("id", args.job_id), ("purpose", args.purpose), ("compute_site", args.compute_site))
        if v
    }
    if job:
        body["job"] = job
    if args.destination:
        if args.format != "push":
            raise CommandError("--destination is for --format push")
        destination: dict[str, Any] = {"endpoint": args.destination, "media_type": MEDIA[args.media_type]}
        secret = os.environ.get(args.destination_secret_env) if args.destination_secret_env else None
        if args.destination_secret_env and not secret:
            raise CommandError(f"${args.destination_secret_env} is empty")
        if secret:
            destination["authorization"] = secret
            destination["auth_type"] = args.destination_auth_type
        body["destination"] = destination
    return body


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="the connector's connector.toml (URL and management token)")
    parser.add_argument("--url", help="the connector's public URL (instead of --config)")
    parser.add_argument("--token", help="management token (default: $SLUIS_MANAGEMENT_TOKEN)")
    parser.add_argument("--json", action="store_true", help="print the API's answer as JSON")


def _paging(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=int, default=100, help="items per page (1-1000)")
    parser.add_argument("--offset", type=int, default=0, help="items to skip")
    parser.add_argument("--q", default=None, help="id (or asset title) contains")


def _verb(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    help_text: str,
    handler: Callable[[argparse.Namespace], int],
) -> argparse.ArgumentParser:
    parser = commands.add_parser(name, help=help_text)
    _common(parser)
    parser.set_defaults(handler=handler)
    return parser


def _group(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], name: str, help_text: str
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    group = commands.add_parser(name, help=help_text).add_subparsers(dest="verb", metavar="VERB")
    group.required = True
    return group


def _terminate_body(args: argparse.Namespace) -> dict[str, str] | None:
    return {"reason": args.reason} if args.reason else None


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the management verbs to ``sluis connector``."""
    # assets
    assets = _group(commands, "assets", "the assets this connector offers")
    _paging(_verb(assets, "list", "list assets", _listing("assets")))
    show = _verb(assets, "show", "one asset", _request("GET", lambda a: f"/assets/{a.id}"))
    show.add_argument("id")
    add = _verb(
        assets,
        "add",
        "register an asset (data file relative to the data root)",
        _request(
            "POST",
            lambda a: "/assets",
            lambda a: {
                "id": a.id,
                "title": a.title,
                "dataset": _read_json(a.dataset, "DCAT record") if a.dataset else {},
                "data": {"kind": a.kind, "path": a.path, "table": a.table},
            },
        ),
    )
    add.add_argument("id")
    add.add_argument("--title", required=True)
    add.add_argument("--kind", choices=("parquet", "csv", "duckdb"), required=True)
    add.add_argument("--path", required=True, help="the data file, relative to the data root")
    add.add_argument("--table", default=None, help="table name (duckdb files)")
    add.add_argument("--dataset", default=None, help="a DCAT JSON-LD file describing the dataset")
    # policies
    policies = _group(commands, "policies", "policy definitions (ODRL)")
    _paging(_verb(policies, "list", "list policies", _listing("policies")))
    show = _verb(policies, "show", "one policy", _request("GET", lambda a: f"/policies/{a.id}"))
    show.add_argument("id")
    add = _verb(
        policies,
        "add",
        "register a policy from an ODRL file (e.g. made with `sluis policy`)",
        _request(
            "POST", lambda a: "/policies", lambda a: {"id": a.id, "policy": _read_json(a.file, "policy")}
        ),
    )
    add.add_argument("id")
    add.add_argument("--file", required=True, help="the ODRL policy (JSON-LD)")
    # offers (contract definitions)
    offers = _group(commands, "offers", "contract definitions: which assets, under which policies")
    _paging(_verb(offers, "list", "list contract definitions", _listing("contract-definitions")))
    add = _verb(
        offers,
        "add",
        "offer assets: an access policy (who sees them) and a contract policy (what they get)",
        _request(
            "POST",
            lambda a: "/contract-definitions",
            lambda a: {
                "id": a.id,
                "access_policy_id": a.access,
                "contract_policy_id": a.contract,
                "asset_ids": a.asset,
            },
        ),
    )
    add.add_argument("id")
    add.add_argument("--access", required=True, help="the access policy's id")
    add.add_argument("--contract", required=True, help="the contract (usage) policy's id")
    add.add_argument("--asset", action="append", required=True, help="an asset id (repeat for more)")
    # negotiations
    negotiations = _group(commands, "negotiations", "contract negotiations")
    listing = _verb(
        negotiations,
        "list",
        "list negotiations",
        _listing("negotiations", ("state", "role", "counterparty_id", "agreement_id")),
    )
    _paging(listing)
    listing.add_argument("--state", type=str.upper, default=None)
    listing.add_argument("--role", choices=("provider", "consumer"), default=None)
    listing.add_argument("--counterparty-id", dest="counterparty_id", default=None)
    listing.add_argument("--agreement-id", dest="agreement_id", default=None)
    show = _verb(negotiations, "show", "one negotiation", _request("GET", lambda a: f"/negotiations/{a.id}"))
    show.add_argument("id")
    start = _verb(negotiations, "start", "negotiate one of a provider's offers", _start_negotiation)
    start.add_argument("--provider", required=True, help="the provider's DSP URL (…/dsp)")
    start.add_argument("--provider-id", dest="provider_id", required=True, help="the provider's DID")
    start.add_argument("--dataset", required=True, help="the dataset id")
    start.add_argument("--offer", default=None, help="the offer id (needed when there are several)")
    start.add_argument("--purpose", default=None, help="the purpose IRI the job declares")
    start.add_argument("--compute-site", dest="compute_site", default=None)
    start.add_argument("--auto-accept", dest="auto_accept", action="store_true")
    for verb, help_text in (("accept", "accept the provider's current offer"), ("terminate", "terminate")):
        command = _verb(
            negotiations,
            verb,
            help_text,
            _request(
                "POST",
                (lambda v: lambda a: f"/negotiations/{a.id}/{v}")(verb),
                _terminate_body if verb == "terminate" else None,
            ),
        )
        command.add_argument("id")
        if verb == "terminate":
            command.add_argument("--reason", default=None)
    # agreements
    agreements = _group(commands, "agreements", "contract agreements")
    listing = _verb(
        agreements,
        "list",
        "list agreements",
        _listing("agreements", ("asset_id", "consumer_id", "provider_id", "terminated")),
    )
    _paging(listing)
    listing.add_argument("--asset-id", dest="asset_id", default=None)
    listing.add_argument("--consumer-id", dest="consumer_id", default=None)
    listing.add_argument("--provider-id", dest="provider_id", default=None)
    listing.add_argument("--terminated", action=argparse.BooleanOptionalAction, default=None)
    show = _verb(
        agreements, "show", "one agreement as signed", _request("GET", lambda a: f"/agreements/{a.id}")
    )
    show.add_argument("id")
    end = _verb(
        agreements,
        "terminate",
        "revoke an agreement (its transfers end; the counter-party is told)",
        _request("POST", lambda a: f"/agreements/{a.id}/terminate", _terminate_body),
    )
    end.add_argument("id")
    end.add_argument("--reason", default=None)
    # transfers
    transfers = _group(commands, "transfers", "transfer processes")
    listing = _verb(
        transfers,
        "list",
        "list transfers",
        _listing("transfers", ("state", "role", "counterparty_id", "agreement_id")),
    )
    _paging(listing)
    listing.add_argument("--state", type=str.upper, default=None)
    listing.add_argument("--role", choices=("provider", "consumer"), default=None)
    listing.add_argument("--counterparty-id", dest="counterparty_id", default=None)
    listing.add_argument("--agreement-id", dest="agreement_id", default=None)
    show = _verb(transfers, "show", "one transfer", _request("GET", lambda a: f"/transfers/{a.id}"))
    show.add_argument("id")
    start = _verb(
        transfers,
        "start",
        "start a transfer under an agreement",
        _request("POST", lambda a: "/transfers", _transfer_body),
    )
    start.add_argument("--agreement", required=True)
    start.add_argument("--provider", required=True, help="the provider's DSP URL (…/dsp)")
    start.add_argument("--format", choices=sorted(FORMATS), default="pull")
    start.add_argument("--job-id", dest="job_id", default=None)
    start.add_argument("--purpose", default=None)
    start.add_argument("--compute-site", dest="compute_site", default=None)
    start.add_argument(
        "--destination", default=None, help="push: where the provider writes (default: our /push)"
    )
    start.add_argument("--media-type", dest="media_type", choices=sorted(MEDIA), default="arrow")
    start.add_argument(
        "--destination-secret-env",
        dest="destination_secret_env",
        default=None,
        help="push: environment variable holding the destination's credential (not on the command line)",
    )
    start.add_argument("--destination-auth-type", dest="destination_auth_type", default="Bearer")
    received = _verb(transfers, "received", "save the data a push delivered to us", _fetch_received)
    received.add_argument("id")
    received.add_argument("--out", required=True, help="file to write (only once complete and checked)")
    forget = _verb(
        transfers,
        "delete-received",
        "delete the data a push delivered to us",
        _delete_received,
    )
    forget.add_argument("id")
    for verb in ("suspend", "resume", "complete", "terminate"):
        command = _verb(
            transfers,
            verb,
            f"{verb} a transfer",
            _request(
                "POST",
                (lambda v: lambda a: f"/transfers/{a.id}/{v}")(verb),
                _terminate_body if verb in ("suspend", "terminate") else None,
            ),
        )
        command.add_argument("id")
        if verb in ("suspend", "terminate"):
            command.add_argument("--reason", default=None)
