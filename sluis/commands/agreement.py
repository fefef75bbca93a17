"""``sluis agreement``: package and check signed contract agreements offline.

``verify FILE`` exits 0 when the provider's signature and the consumer's counter-signature both
verify against the DID documents captured in the bundle, 1 when they do not (the reason is
printed), 2 when the file cannot be read as JSON. ``bundle`` makes such a file from a signed
agreement and the two parties' DID documents (given as files, or resolved now over did:web).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from connector.identity import DidResolver, IdentityError, make_agreement_bundle, verify_agreement
from connector.identity.agreements import agreement_parties, is_agreement_bundle
from sluis.cli import EXIT_FINDINGS, EXIT_OK, CommandError
from vocab.jsonobjects import unique_keys

# A bundle is an agreement plus two DID documents: tens of KB at most.
MAX_BUNDLE_BYTES = 4 * 1024 * 1024


def _read_json(path: Path) -> dict[str, Any]:
    try:
        if path.stat().st_size > MAX_BUNDLE_BYTES:
            raise CommandError(f"{path}: larger than {MAX_BUNDLE_BYTES} bytes")
        document = json.loads(path.read_bytes(), object_pairs_hook=unique_keys)
    except OSError as error:
        raise CommandError(f"{path}: cannot read ({error.strerror})") from None
    except ValueError as error:
        raise CommandError(f"{path}: not JSON ({error})") from None
    except RecursionError:
        raise CommandError(f"{path}: not JSON (it nests too deeply)") from None
    if not isinstance(document, dict):
        raise CommandError(f"{path}: not a JSON object")
    return document


def _verify(args: argparse.Namespace) -> int:
    result = verify_agreement(_read_json(args.file))
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    elif result.valid:
        print(f"valid: {result.reason}")
        for method in result.signed_by:
            print(f"  signed by {method}")
    else:
        print(f"invalid: {result.reason} [{result.code}]")
    return EXIT_OK if result.valid else EXIT_FINDINGS


def _bundle(args: argparse.Namespace) -> int:
    agreement = _read_json(args.agreement)
    if is_agreement_bundle(agreement):
        raise CommandError(f"{args.agreement}: already a signed agreement bundle")
    documents = [_read_json(path) for path in args.did_document or []]
    try:
        parties = agreement_parties(agreement)
        known = {document.get("id") for document in documents}
        missing = [did for did in dict.fromkeys((parties.assigner, parties.assignee)) if did not in known]
        if missing and not args.resolve:
            raise CommandError(
                f"no DID document for {', '.join(missing)}: pass --did-document FILE or --resolve"
            )
        if missing:
            with DidResolver() as resolver:
                documents += [resolver.resolve(did) for did in missing]
        bundle = make_agreement_bundle(agreement, documents)
    except IdentityError as error:
        raise CommandError(error.message) from None
    result = verify_agreement(bundle)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    temporary = args.out.with_name(f".{args.out.name}.tmp")
    temporary.write_text(json.dumps(bundle, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(temporary, args.out)
    print(f"{'valid' if result.valid else 'invalid'}: {result.reason}; bundle written to {args.out}")
    return EXIT_OK if result.valid else EXIT_FINDINGS


def register(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = groups.add_parser("agreement", help="contract agreements: bundle and verify offline")
    commands = group.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    verify = commands.add_parser("verify", help="check both signatures of a signed agreement bundle")
    verify.add_argument("file", type=Path, help="signed agreement bundle (JSON)")
    verify.add_argument("--json", action="store_true", help="print the result as JSON")
    verify.set_defaults(handler=_verify)

    bundle = commands.add_parser("bundle", help="package a signed agreement with both DID documents")
    bundle.add_argument("agreement", type=Path, help="the signed agreement JSON (with its proofs)")
    bundle.add_argument(
        "--did-document", type=Path, action="append", help="a party's DID document (repeat for both)"
    )
    bundle.add_argument(
        "--resolve", action="store_true", help="resolve missing DID documents over did:web now"
    )
    bundle.add_argument("--out", type=Path, required=True, help="where to write the bundle")
    bundle.set_defaults(handler=_bundle)
