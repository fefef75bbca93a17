"""``sluis agreement verify FILE``: check a signed agreement bundle offline.

Exit 0 when the provider's signature and the consumer's counter-signature both verify against
the DID documents captured in the bundle, 1 when they do not (the reason is printed), 2 when the
file cannot be read as JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from connector.identity import verify_agreement
from sluis.cli import EXIT_FINDINGS, EXIT_OK, CommandError

# A bundle is an agreement plus two DID documents: tens of KB at most.
MAX_BUNDLE_BYTES = 4 * 1024 * 1024


def _verify(args: argparse.Namespace) -> int:
    path: Path = args.file
    try:
        if path.stat().st_size > MAX_BUNDLE_BYTES:
            raise CommandError(f"{path}: larger than {MAX_BUNDLE_BYTES} bytes")
        document = json.loads(path.read_bytes())
    except OSError as error:
        raise CommandError(f"{path}: cannot read ({error.strerror})") from None
    except ValueError as error:
        raise CommandError(f"{path}: not JSON ({error})") from None
    if not isinstance(document, dict):
        raise CommandError(f"{path}: not a JSON object")
    result = verify_agreement(document)
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    elif result.valid:
        print(f"valid: {result.reason}")
        for method in result.signed_by:
            print(f"  signed by {method}")
    else:
        print(f"invalid: {result.reason} [{result.code}]")
    return EXIT_OK if result.valid else EXIT_FINDINGS


def register(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = groups.add_parser("agreement", help="contract agreements: offline verification")
    commands = group.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    verify = commands.add_parser("verify", help="check both signatures of a signed agreement bundle")
    verify.add_argument("file", type=Path, help="signed agreement bundle (JSON)")
    verify.add_argument("--json", action="store_true", help="print the result as JSON")
    verify.set_defaults(handler=_verify)
