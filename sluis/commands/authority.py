"""``sluis authority``: run the data space's governance authority from a folder.

The authority has a did:web and an Ed25519 key; it issues the verifiable credentials that
connectors demand (a ``MembershipCredential``, an ``EHDSDataPermit`` for restricted health data).
Its folder holds ``authority-key.pem`` (0600), ``authority.json`` (its DID and public key, what
participants pin as their trusted authority) and ``did.json`` (its DID document, to publish).
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from connector.identity import (
    EHDS_DATA_PERMIT,
    MEMBERSHIP_CREDENTIAL,
    IdentityError,
    KeyPair,
    did_document,
    issue_credential,
    parse_did_web,
    utc_now,
)
from connector.identity.credentials import CLAIM_TYPES
from sluis.cli import CommandError

AUTHORITY_KEY_FILE = "authority-key.pem"
AUTHORITY_FILE = "authority.json"
AUTHORITY_DID_DOCUMENT = "did.json"
PURPOSE_BASE = "https://w3id.org/sluis/purpose/"
DEFAULT_VALID_DAYS = 365
# Credentials are re-issued, not kept forever: ten years is the longest validity we sign.
MAX_VALID_DAYS = 3650
MAX_CLAIM_ARGUMENTS = 256


@dataclass(frozen=True)
class Authority:
    did: str
    key: KeyPair

    @property
    def public_key_multibase(self) -> str:
        return self.key.public_multibase


def load_authority(directory: Path) -> Authority:
    """The authority kept in ``directory`` by ``sluis authority init``."""
    description = directory / AUTHORITY_FILE
    try:
        data = json.loads(description.read_text(encoding="utf-8"))
    except OSError as error:
        raise CommandError(
            f"{description}: cannot read ({error.strerror}); run 'sluis authority init'"
        ) from None
    except ValueError:
        raise CommandError(f"{description}: not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("did"), str):
        raise CommandError(f"{description}: has no 'did'")
    try:
        key = KeyPair.load(directory / AUTHORITY_KEY_FILE)
    except IdentityError as error:
        raise CommandError(error.message) from None
    if data.get("public_key_multibase") != key.public_multibase:
        raise CommandError(f"{description}: public_key_multibase does not match {AUTHORITY_KEY_FILE}")
    return Authority(data["did"], key)


def _write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def _check_did(did: str, option: str) -> None:
    try:
        parse_did_web(did)
    except IdentityError as error:
        raise CommandError(f"{option}: {error.message}") from None


def _init(args: argparse.Namespace) -> int:
    directory: Path = args.dir
    _check_did(args.id, "--id")
    if (directory / AUTHORITY_KEY_FILE).exists():
        raise CommandError(f"{directory / AUTHORITY_KEY_FILE} already exists; refusing to replace a key")
    key = KeyPair.generate()
    key.save(directory / AUTHORITY_KEY_FILE)
    summary = {"did": args.id, "public_key_multibase": key.public_multibase, "key_file": AUTHORITY_KEY_FILE}
    _write_json(directory / AUTHORITY_FILE, summary)
    _write_json(directory / AUTHORITY_DID_DOCUMENT, did_document(args.id, key))
    print(json.dumps({**summary, "directory": str(directory)}, indent=2))
    return 0


def parse_claims(credential_type: str, assignments: list[str]) -> dict[str, object]:
    """``key=value`` arguments as claims: list-valued claims collect repeats; purposes may be slugs."""
    if len(assignments) > MAX_CLAIM_ARGUMENTS:
        raise CommandError(f"--claim: at most {MAX_CLAIM_ARGUMENTS} claims")
    known = CLAIM_TYPES.get(credential_type, {})
    claims: dict[str, object] = {}
    for assignment in assignments:
        name, separator, value = assignment.partition("=")
        name, value = name.strip(), value.strip()
        if not separator or not name or not value:
            raise CommandError(f"--claim {assignment!r}: expected key=value")
        if name not in known:
            raise CommandError(
                f"--claim {name}: {credential_type} has no such claim (known: {', '.join(sorted(known))})"
            )
        if name == "purposes" and ":" not in value:
            value = PURPOSE_BASE + value
        if known[name] == "string":
            if name in claims:
                raise CommandError(f"--claim {name}: given twice, but it holds one value")
            claims[name] = value
        else:
            listed = claims.setdefault(name, [])
            assert isinstance(listed, list)
            listed.append(value)
    return claims


def _issue(args: argparse.Namespace) -> int:
    authority = load_authority(args.authority_dir)
    _check_did(args.subject, "--subject")
    if not 0 < args.valid_days <= MAX_VALID_DAYS:
        raise CommandError(f"--valid-days: must be 1..{MAX_VALID_DAYS}")
    claims = parse_claims(args.type, args.claim or [])
    now = utc_now()
    try:
        credential = issue_credential(
            authority.key,
            authority.did,
            args.subject,
            args.type,
            claims,
            valid_from=now,
            valid_until=now + timedelta(days=args.valid_days),
        )
    except IdentityError as error:
        raise CommandError(error.message) from None
    _write_json(args.out, credential)
    print(
        json.dumps(
            {"credential": credential["id"], "type": args.type, "subject": args.subject, "out": str(args.out)}
        )
    )
    return 0


def register(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = groups.add_parser("authority", help="the governance authority: keys and credentials")
    commands = group.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    init = commands.add_parser("init", help="create an authority: key, authority.json, did.json")
    init.add_argument(
        "--id", required=True, help="the authority's did:web, e.g. did:web:authority.example.eu"
    )
    init.add_argument("--dir", required=True, type=Path, help="folder to create the authority in")
    init.set_defaults(handler=_init)

    issue = commands.add_parser("issue", help="issue a signed verifiable credential to a participant")
    issue.add_argument(
        "--authority-dir", required=True, type=Path, help="folder made by 'sluis authority init'"
    )
    issue.add_argument("--subject", required=True, help="the participant's did:web")
    issue.add_argument("--type", required=True, choices=[MEMBERSHIP_CREDENTIAL, EHDS_DATA_PERMIT])
    issue.add_argument(
        "--claim",
        action="append",
        metavar="KEY=VALUE",
        help="a claim; repeat for lists (purposes=scientific-research --claim datasets=urn:...)",
    )
    issue.add_argument(
        "--valid-days", type=int, default=DEFAULT_VALID_DAYS, help="validity in days (default 365)"
    )
    issue.add_argument("--out", required=True, type=Path, help="file to write the credential JSON to")
    issue.set_defaults(handler=_issue)
