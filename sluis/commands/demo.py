"""``sluis demo [--dir DIR] [--keep] [--once]``: run a whole local data space and walk through it.

After the story the data space keeps running, and the URLs of its web pages are printed, until
Ctrl-C; ``--once`` exits after the story (as the tests do).

Exit 0 when every step behaved as expected (allowed reads allowed, denied reads denied, the
agreement and audit log verified), 1 otherwise, 2 on usage errors.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sluis.cli import CommandError


def _demo(args: argparse.Namespace) -> int:
    from sluis.demo import run_demo

    directory: Path | None = args.dir
    if directory is not None and directory.exists():
        if not directory.is_dir():
            raise CommandError(f"--dir {directory}: not a folder")
        if any(directory.iterdir()):
            raise CommandError(f"--dir {directory}: not empty; give a new or empty folder")
    return run_demo(directory, args.keep, sys.stdout, serve=not args.once)


def register(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = groups.add_parser(
        "demo",
        help="run a local data space (catalogue, provider, consumer) and walk through it",
        description="Start a catalogue node, a provider and a consumer connector on 127.0.0.1 with "
        "embedded storage, then publish, search, negotiate, read under policy, show denied "
        "reads and verify the audit log. Exit 0 only if every step behaved as expected.",
    )
    parser.add_argument(
        "--dir", type=Path, default=None, help="new or empty folder for the data space (kept afterwards)"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary folder (ignored with --dir: always kept)"
    )
    parser.add_argument(
        "--once",
        action="store_true",
        help="run the story and exit (by default the data space keeps running, with its pages, until Ctrl-C)",
    )
    parser.set_defaults(handler=_demo)
