"""The ``sluis`` command: a stable contract that scripts and CI call.

Exit codes are part of the contract: 0 success, 1 a negative finding (invalid record, lint
findings, failed verification), 2 invalid input or usage (reason on stderr).
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence

from sluis import __version__
from sluis import commands as _commands
from sluis.logs import configure_logging

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2


class CommandError(Exception):
    """A user-facing failure of a command: printed on stderr, exit code 2 unless given."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sluis",
        description="Sluis: governed data spaces for AI Factories.",
    )
    parser.add_argument("--version", action="version", version=f"sluis {__version__}")
    parser.add_argument(
        "--log-level", default="WARNING", help="DEBUG, INFO, WARNING or ERROR (logs are JSON on stderr)"
    )
    groups = parser.add_subparsers(dest="group", metavar="COMMAND")
    groups.required = True
    for module_info in sorted(pkgutil.iter_modules(_commands.__path__), key=lambda m: m.name):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{_commands.__name__}.{module_info.name}")
        module.register(groups)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        result = handler(args)
    except CommandError as error:
        print(f"sluis: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (``sluis … | head``): stop quietly, as Unix tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    return int(result or EXIT_OK)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
