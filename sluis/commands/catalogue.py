"""``sluis catalogue``: run a catalogue node, issue publisher tokens, publish and validate records.

Stable contracts scripts rely on:

* ``sluis catalogue serve --data DIR [--host 127.0.0.1] [--port 8080] [--store URL] [--index URL]``
  (store and index default to embedded storage in DIR; see :mod:`catalogue.backends`);
* ``sluis catalogue migrate --from-data DIR --to-data DIR [--from-store/--from-index/--to-store/
  --to-index URL]``: copy every record (all versions) and rebuild the index (exit 1 on conflicts);
* ``sluis catalogue token create --data DIR --publisher IRI`` prints the token and nothing else;
* ``sluis catalogue publish FILE... (--data DIR | --url URL --token T)``: exit 0 when every file
  was published, 1 when some were rejected (each reason printed), 2 on usage errors;
* ``sluis catalogue validate FILE...``: exit 0 when every record is valid, 1 otherwise;
* ``sluis catalogue init --data DIR --public-url URL`` writes ``DIR/node.toml`` (the node's
  did:web identity and operator token hash) and prints the operator token and nothing else;
* ``sluis catalogue harvest SOURCE --data DIR`` harvests a configured source (by id) or a URL
  into a stopped node; ``--url URL --token T`` asks a running node to harvest a source it knows
  and follows the run. Progress on stderr, one summary line on stdout; exit 0 when the run
  completed, 1 when it stopped early or rejected records (the reasons printed), 2 on usage errors.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sluis.cli import EXIT_FINDINGS, EXIT_OK, CommandError
from sluis.progress import Progress

# A bulk publish reads files one by one; anything past the document limit is refused anyway.
HTTP_TIMEOUT_SECONDS = 60.0


def register(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = groups.add_parser("catalogue", help="run and feed a DCAT-AP catalogue node")
    commands = group.add_subparsers(dest="catalogue_command", metavar="COMMAND")
    commands.required = True

    serve = commands.add_parser("serve", help="run a catalogue node on embedded storage in DIR")
    serve.add_argument("--data", required=True, type=Path, help="folder holding the node's store and index")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--public-url", help="URL clients reach the node at (default http://HOST:PORT)")
    serve.add_argument(
        "--lenient-publishing",
        action="store_true",
        help="store published records that violate their shapes (with their conformance as quality) "
        "instead of refusing them with 422; a token can still ask for either mode",
    )
    from sluis.commands import _catalogue_scale

    _catalogue_scale.add_backend_options(serve)
    serve.set_defaults(handler=_serve)
    _catalogue_scale.register(commands)

    init = commands.add_parser("init", help="write the node's node.toml (identity, operator token)")
    init.add_argument("--data", required=True, type=Path)
    init.add_argument("--public-url", required=True, help="URL the node is reached at (its did:web)")
    init.set_defaults(handler=_init)

    harvest = commands.add_parser("harvest", help="harvest a source (DCAT-AP endpoint, dump, DSP catalog)")
    harvest.add_argument("source", metavar="SOURCE", help="a source id from node.toml, or a URL")
    where = harvest.add_mutually_exclusive_group(required=True)
    where.add_argument("--data", type=Path, help="the node's folder (node stopped)")
    where.add_argument("--url", help="a running node (DSP sources need one: connectors resolve its DID)")
    harvest.add_argument("--token", help="the operator token (with --url)")
    harvest.add_argument("--kind", choices=("dcat", "dsp"), default="dcat", help="for a URL: its kind")
    harvest.add_argument("--did", help="for a URL: the source's DID (needed for dsp)")
    harvest.add_argument("--id", dest="source_id", help="for a URL: the source id to keep it under")
    harvest.set_defaults(handler=_harvest)

    token = commands.add_parser("token", help="publisher API tokens")
    token_commands = token.add_subparsers(dest="token_command", metavar="COMMAND")
    token_commands.required = True
    create = token_commands.add_parser("create", help="print a new token for a publisher")
    create.add_argument("--data", required=True, type=Path)
    create.add_argument("--publisher", required=True, help="the publisher's IRI (its records' dct:publisher)")
    create.add_argument(
        "--publishing",
        choices=("strict", "lenient"),
        help="this token's publishing mode (default: the node's): strict refuses records with "
        "SHACL violations (422), lenient stores them with their conformance in their quality",
    )
    create.set_defaults(handler=_token_create)

    publish = commands.add_parser("publish", help="publish DCAT-AP records (one dataset per file)")
    publish.add_argument("files", nargs="+", type=Path, metavar="FILE")
    target = publish.add_mutually_exclusive_group(required=True)
    target.add_argument("--data", type=Path, help="publish straight into a node's storage (node stopped)")
    target.add_argument("--url", help="publish to a running node, e.g. http://127.0.0.1:8080")
    publish.add_argument("--token", help="publisher token (with --url)")
    publish.set_defaults(handler=_publish)

    validate = commands.add_parser("validate", help="validate records against their DCAT-AP profiles")
    validate.add_argument("files", nargs="+", type=Path, metavar="FILE")
    validate.add_argument("--json", action="store_true", help="print the reports as JSON")
    validate.set_defaults(handler=_validate)


def _media_type(path: Path) -> str:
    from vocab.errors import VocabError
    from vocab.rdfio import media_type_for_path

    try:
        return media_type_for_path(path)
    except VocabError as error:
        raise CommandError(str(error)) from None


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise CommandError(f"cannot read {path}: {error.strerror}") from None


def _settings(data_dir: Path) -> Any:
    from catalogue.harvest import NODE_CONFIG_FILE, ConfigError, load_settings

    path = data_dir / NODE_CONFIG_FILE
    if not path.exists():
        return None
    try:
        return load_settings(path)
    except ConfigError as error:
        raise CommandError(f"{path}: {error}") from None


def _serve(args: argparse.Namespace) -> int:
    import psycopg
    import uvicorn

    from catalogue.api import create_catalogue_app
    from catalogue.config import CatalogueConfig
    from catalogue.store import StoreError

    settings = _settings(args.data)
    public_url = args.public_url or (settings.public_url if settings else f"http://{args.host}:{args.port}")
    config = CatalogueConfig(
        public_url=public_url,
        store_url=args.store,
        index_url=args.index,
        strict_publishing=not args.lenient_publishing,
    )
    try:
        app = create_catalogue_app(args.data, config)
    except (ValueError, StoreError, psycopg.Error) as error:
        raise CommandError(f"cannot open the node's storage: {error}") from None
    federation = app.state.federation
    federation.start_scheduler()  # harvests sources whose interval (or the node's) is set
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return EXIT_OK


def _init(args: argparse.Namespace) -> int:
    import secrets

    from catalogue.harvest import NODE_CONFIG_FILE, ConfigError, parse_source, token_digest
    from catalogue.harvest.config import did_for_url
    from catalogue.signing import load_node_key

    path = args.data / NODE_CONFIG_FILE
    if path.exists():
        raise CommandError(f"{path} exists; edit it, or remove it to start again")
    try:
        parse_source({"id": "self", "url": args.public_url}, "--public-url")
        did = did_for_url(args.public_url)
    except ConfigError as error:
        raise CommandError(str(error)) from None
    args.data.mkdir(parents=True, exist_ok=True)
    load_node_key(args.data)
    token = "sluis_op_" + secrets.token_urlsafe(32)
    path.write_text(
        "# The catalogue node's identity, harvest sources and trusted keys (docs/catalogue.md).\n"
        "[node]\n"
        f'public_url = "{args.public_url}"\n'
        f'did = "{did}"\n'
        f'operator_token_sha256 = "{token_digest(token)}"\n'
        "harvest_interval_seconds = 0\n"
        "# Sources on loopback or private networks are refused unless allowed here (a node whose\n"
        "# public_url is on loopback allows loopback sources):\n"
        "# allow_loopback = true\n"
        '# allowed_networks = ["10.20.0.0/16"]\n',
        encoding="utf-8",
    )
    path.chmod(0o600)
    print(token)
    return EXIT_OK


def _harvest(args: argparse.Namespace) -> int:
    if args.url:
        return _harvest_remote(args)
    return _harvest_local(args)


#: How often a remote harvest's status is read while it runs.
POLL_SECONDS = 0.5


def _harvest_remote(args: argparse.Namespace) -> int:
    """Ask a running node to harvest a source it knows (by id), and follow the run to its end."""
    import time

    import httpx

    if not args.token:
        raise CommandError("--url needs --token (the operator token `sluis catalogue init` printed)")
    base = args.url.rstrip("/")
    auth = {"Authorization": f"Bearer {args.token}"}
    try:
        with httpx.Client(timeout=HTTP_TIMEOUT_SECONDS, headers=auth) as client:
            started = client.post(f"{base}/catalogue/sources/{args.source}/harvest")
            if started.status_code != 202:
                raise CommandError(f"the node refused: {_problem_text(_json_or_text(started))}")
            with Progress(None, f"harvesting {args.source}") as progress:
                while True:
                    status = client.get(f"{base}/catalogue/sources/{args.source}").json()
                    run = status.get("last_run") or {}
                    progress.advance(int(run.get("counts", {}).get("seen", 0)) - progress.done)
                    if status.get("status") != "running":
                        break
                    time.sleep(POLL_SECONDS)
    except httpx.HTTPError as error:
        raise CommandError(f"cannot reach {base}: {error}") from None
    counts = run.get("counts", {})
    print(f"{args.source}\t{status.get('status')}\t" + " ".join(f"{k}={v}" for k, v in counts.items()))
    for item in status.get("rejected", []):
        print(f"{item['item']}\trejected\t{item['reason']}", file=sys.stderr)
    for item in status.get("quarantined", []):
        print(f"{item['dataset']}\tquarantined\t{item['reason']}", file=sys.stderr)
    if status.get("last_error"):
        print(f"{args.source}\t{status['last_error']}", file=sys.stderr)
    clean = status.get("status") in ("done", "unchanged") and not counts.get("rejected")
    return EXIT_OK if clean else EXIT_FINDINGS


def _json_or_text(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return f"HTTP {response.status_code}"


def _harvest_local(args: argparse.Namespace) -> int:
    import hashlib

    from catalogue.api import open_node
    from catalogue.harvest import (
        ConfigError,
        Federation,
        HarvestError,
        Run,
        RunState,
        parse_source,
        settings_for,
    )

    try:
        settings = settings_for(args.data)
    except ConfigError as error:
        raise CommandError(str(error)) from None
    try:
        node = open_node(args.data)
    except OSError as error:
        raise CommandError(f"cannot open the node in {args.data} (is it being served?): {error}") from None
    federation = Federation(node.publisher, args.data, settings)
    try:
        source_id = args.source
        if federation.ledger.source(source_id) is None:
            if "://" not in args.source:
                raise CommandError(f"no source {args.source!r} in {args.data}/node.toml, and not a URL")
            source_id = args.source_id or "url-" + hashlib.sha256(args.source.encode()).hexdigest()[:12]
            raw: dict[str, Any] = {"id": source_id, "url": args.source, "kind": args.kind}
            if args.did:
                raw["did"] = args.did
            try:
                federation.add_source(parse_source(raw, "SOURCE"))
            except ConfigError as error:
                raise CommandError(str(error)) from None
        with Progress(None, f"harvesting {source_id}") as progress:

            def advance(run: Run) -> None:
                progress.advance(run.counts.get("seen", 0) - progress.done)

            try:
                run = federation.harvest(source_id, progress=advance)
            except HarvestError as error:
                raise CommandError(error.message) from None
        counts = run.to_json()["counts"]
        print(
            f"{source_id}\t{run.state}\t"
            + " ".join(f"{name}={value}" for name, value in counts.items())
        )
        for item in federation.ledger.rejections(run.id, 1000):
            print(f"{item['item']}\trejected\t{item['reason']}", file=sys.stderr)
        for item in federation.ledger.quarantined(source_id, 1000):
            print(f"{item['dataset']}\tquarantined\t{item['reason']}", file=sys.stderr)
        if run.error:
            print(f"{source_id}\t{run.error}", file=sys.stderr)
        clean = run.state in (RunState.DONE, RunState.UNCHANGED) and not counts["rejected"]
        return EXIT_OK if clean else EXIT_FINDINGS
    finally:
        federation.close()
        node.close()


def _token_create(args: argparse.Namespace) -> int:
    from catalogue.tokens import TOKENS_FILE, TokenError, TokenStore

    store = TokenStore(args.data / TOKENS_FILE)
    try:
        mode = {"strict": True, "lenient": False}.get(args.publishing or "")
        issued = store.create(args.publisher, strict=mode)
    except TokenError as error:
        raise CommandError(str(error)) from None
    finally:
        store.close()
    print(issued.token)
    return EXIT_OK


def _problem_text(body: Any) -> str:
    if not isinstance(body, dict):
        return str(body)
    reasons = [
        f"{item.get('field')}: {item.get('reason')}"
        for item in body.get("errors", [])
        if isinstance(item, dict)
    ]
    return f"{body.get('title', 'rejected')} ({body.get('status')}): " + (
        "; ".join(reasons) or body.get("detail", "")
    )


def _publish(args: argparse.Namespace) -> int:
    for path in args.files:
        if not path.is_file():
            raise CommandError(f"{path} is not a file")
        _media_type(path)
    if args.url:
        if not args.token:
            raise CommandError("--url needs --token (create one with: sluis catalogue token create)")
        return _publish_remote(args.files, args.url.rstrip("/"), args.token)
    return _publish_local(args.files, args.data)


def _publish_remote(files: list[Path], url: str, token: str) -> int:
    import httpx

    failures = 0
    with (
        httpx.Client(timeout=HTTP_TIMEOUT_SECONDS) as client,
        Progress(len(files), "publishing") as progress,
    ):
        for path in files:
            try:
                response = client.post(
                    f"{url}/catalogue/datasets",
                    content=_read(path),
                    headers={"Content-Type": _media_type(path), "Authorization": f"Bearer {token}"},
                )
            except httpx.HTTPError as error:
                raise CommandError(f"cannot reach {url}: {error}") from None
            if response.status_code == 201:
                print(f"{path}\t{response.headers.get('location', '')}")
            else:
                failures += 1
                try:
                    detail = _problem_text(response.json())
                except ValueError:
                    detail = f"HTTP {response.status_code}"
                print(f"{path}\trejected\t{detail}", file=sys.stderr)
            progress.advance()
    return EXIT_FINDINGS if failures else EXIT_OK


def _publish_local(files: list[Path], data_dir: Path) -> int:
    from catalogue.api import open_node
    from catalogue.pipeline import Document, DocumentResult, IngestMode
    from catalogue.publish import PublishError

    try:
        node = open_node(data_dir)
    except OSError as error:
        raise CommandError(f"cannot open the node in {data_dir} (is it being served?): {error}") from None
    failures = 0

    def documents() -> Iterator[Document]:
        for path in files:
            yield Document(str(path), _read(path), _media_type(path))

    try:
        with Progress(len(files), "publishing") as progress:

            def rejected(name: str, error: PublishError) -> None:
                nonlocal failures
                failures += 1
                reasons = "; ".join(f"{field}: {reason}" for field, reason in error.errors)
                print(f"{name}\trejected\t{error.title}: {reasons or error.detail}", file=sys.stderr)

            def done(result: DocumentResult) -> None:
                if result.error is not None:
                    rejected(result.name, result.error)
                for record in result.records:
                    if record.error is not None:
                        rejected(record.name, record.error)
                    else:
                        print(f"{record.name}\t{record.record_id}")
                progress.advance()

            node.pipeline.ingest(documents(), mode=IngestMode.STRICT, on_document=done)
    finally:
        node.close()
    return EXIT_FINDINGS if failures else EXIT_OK


def _validate(args: argparse.Namespace) -> int:
    from catalogue.publish import PublishError, extract_record, find_record_subject, result_json
    from catalogue.validation import validate_record
    from vocab.errors import VocabError
    from vocab.rdfio import parse_rdf

    invalid = 0
    reports: list[dict[str, Any]] = []
    for path in args.files:
        if not path.is_file():
            raise CommandError(f"{path} is not a file")
        entry: dict[str, Any] = {"file": str(path)}
        try:
            graph = parse_rdf(_read(path), _media_type(path), path.resolve().as_uri())
            subject = find_record_subject(graph)
            report = validate_record(extract_record(graph, subject))
        except (VocabError, PublishError) as error:
            invalid += 1
            entry.update({"valid": False, "error": str(error)})
            reports.append(entry)
            if not args.json:
                print(f"{path}: INVALID — {error}")
            continue
        violations, warnings = report.violations, report.warnings
        entry.update(
            {
                "dataset": str(subject),
                "valid": not violations,
                "violations": [result_json(result) for result in violations],
                "warnings": [result_json(result) for result in warnings],
            }
        )
        reports.append(entry)
        if violations:
            invalid += 1
        if not args.json:
            verdict = "valid" if not violations else "INVALID"
            print(f"{path}: {verdict} ({len(violations)} violation(s), {len(warnings)} warning(s))")
            for result in [*violations, *warnings]:
                where = f" {result.path}" if result.path else ""
                print(f"  {result.severity}: {result.focus_node}{where}: {result.message}")
    if args.json:
        print(json.dumps(reports, indent=2))
    return EXIT_FINDINGS if invalid else EXIT_OK
