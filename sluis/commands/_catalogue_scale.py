"""``sluis catalogue`` past one node: store and index options, and ``migrate`` between deployments.

* ``serve --store URL --index URL`` (or ``SLUIS_CATALOGUE_STORE`` / ``SLUIS_CATALOGUE_INDEX``):
  records in a SPARQL 1.1 endpoint, the search index in PostgreSQL, shared by every replica;
* ``migrate --from-data DIR --to-data DIR [--from-store URL] [--from-index URL] [--to-store URL]
  [--to-index URL]``: every version of every record copied, the target's index rebuilt, the node
  key and publisher tokens carried over; resumable. Exit 0 when done, 1 when records conflicted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from sluis.cli import EXIT_FINDINGS, EXIT_OK, CommandError
from sluis.progress import Progress

STORE_VARIABLE = "SLUIS_CATALOGUE_STORE"
INDEX_VARIABLE = "SLUIS_CATALOGUE_INDEX"


def add_backend_options(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    """``--store`` and ``--index`` (``--{prefix}store`` …), defaulting to the environment."""
    environment = not prefix
    parser.add_argument(
        f"--{prefix}store",
        default=os.environ.get(STORE_VARIABLE) if environment else None,
        help="SPARQL 1.1 endpoint holding the records, e.g. sparql+http://127.0.0.1:8890/sparql "
        f"(default: embedded Oxigraph in the data folder{f'; or ${STORE_VARIABLE}' if environment else ''})",
    )
    parser.add_argument(
        f"--{prefix}index",
        default=os.environ.get(INDEX_VARIABLE) if environment else None,
        help="PostgreSQL database holding the search index, e.g. postgresql://sluis@127.0.0.1/sluis "
        f"(default: embedded SQLite in the data folder{f'; or ${INDEX_VARIABLE}' if environment else ''})",
    )


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    migrate = commands.add_parser(
        "migrate", help="copy a catalogue between embedded and shared (SPARQL + PostgreSQL) storage"
    )
    migrate.add_argument("--from-data", required=True, type=Path, help="the source node's folder")
    migrate.add_argument("--to-data", required=True, type=Path, help="the target node's folder")
    add_backend_options(migrate, "from-")
    add_backend_options(migrate, "to-")
    migrate.set_defaults(handler=_migrate)


def _migrate(args: argparse.Namespace) -> int:
    import psycopg

    from catalogue.api import INDEX_FILE, STORE_DIR
    from catalogue.backends import describe, open_index, open_store
    from catalogue.migrate import migrate, record_ids
    from catalogue.signing import NODE_KEY_FILE
    from catalogue.store import StoreError
    from catalogue.tokens import TOKENS_FILE

    source_dir: Path = args.from_data
    target_dir: Path = args.to_data
    if source_dir.resolve() == target_dir.resolve() and (args.from_store, args.from_index) == (
        args.to_store,
        args.to_index,
    ):
        raise CommandError("source and target are the same storage")
    if not args.from_store and not (source_dir / STORE_DIR).is_dir():
        raise CommandError(f"{source_dir} holds no embedded store ({STORE_DIR}/); name it with --from-store")
    target_dir.mkdir(parents=True, exist_ok=True)
    # The node keeps its identity: same signing key, same publisher tokens.
    for name in (NODE_KEY_FILE, TOKENS_FILE):
        if (source_dir / name).exists() and not (target_dir / name).exists():
            shutil.copy2(source_dir / name, target_dir / name)
    try:
        source = open_store(args.from_store, source_dir / STORE_DIR)
        target = open_store(args.to_store, target_dir / STORE_DIR)
        index = open_index(args.to_index, target_dir / INDEX_FILE)
    except (ValueError, OSError, StoreError, psycopg.Error) as error:
        raise CommandError(f"cannot open the storage: {error}") from None
    try:
        total = sum(1 for _ in record_ids(source))
        print(
            f"migrating {total} records from {describe(args.from_store)} to {describe(args.to_store)} "
            f"(index: {describe(args.to_index)})",
            file=sys.stderr,
        )
        with Progress(total, "migrating") as progress:
            report = migrate(source, target, index, on_record=progress.advance)
    except (StoreError, psycopg.Error) as error:
        raise CommandError(f"migration stopped (run it again to resume): {error}", EXIT_FINDINGS) from None
    finally:
        index.close()
        target.close()
        source.close()
    print(
        f"{report.records} records: {report.versions_copied} versions copied, "
        f"{report.versions_present} already there, {report.indexed} indexed"
    )
    for conflict in report.conflicts:
        print(f"conflict\t{conflict}", file=sys.stderr)
    return EXIT_FINDINGS if report.conflicts else EXIT_OK
