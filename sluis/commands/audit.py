"""``sluis audit``: check and export the data plane's tamper-evident audit log, offline.

* ``sluis audit verify FILE [--key KEY]``: check an export (exit 0 intact, 1 tampered, naming the
  first bad entry);
* ``sluis audit verify --storage URL --key KEY`` (or ``--config FILE``): check the live chain;
* ``sluis audit export --config FILE --out FILE [--consumer DID]``: write the export a
  compliance officer keeps; with ``--consumer`` other consumers' entries are redacted.

``KEY`` is the provider's public key as a Multikey (``z6Mk...``) or a PEM key file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from connector.audit import AuditError, AuditLog, ChainReport, export_log, verify_export
from connector.audit.export import public_key_verifier
from connector.database import Database, StoreError, sqlite_path
from connector.identity import KeyPair, public_key_from_multibase, public_key_to_multibase
from sluis.cli import EXIT_FINDINGS, EXIT_OK, CommandError


def _public_multibase(text: str) -> str:
    """A Multikey string as given, or the public key of a PEM file (private or public)."""
    if text.startswith("z6Mk"):
        try:
            public_key_from_multibase(text)
        except Exception as error:
            raise CommandError(f"--key: not an Ed25519 Multikey ({error})") from None
        return text
    path = Path(text)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise CommandError(f"--key: cannot read {path}: {error.strerror}") from None
    if b"PRIVATE KEY" in data:
        return KeyPair.from_pem(data).public_multibase
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as error:
        raise CommandError(f"--key: {path} is not a PEM key ({error})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise CommandError(f"--key: {path} is not an Ed25519 key")
    return public_key_to_multibase(key)


def _load_config(path: str) -> Any:
    from connector.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as error:
        raise CommandError(f"--config: {error}") from None


def _print_report(report: ChainReport, what: str) -> int:
    if report.intact:
        head = f"head seq {report.head[0]} {report.head[1]}" if report.head else "empty log"
        print(f"intact: {report.checked} entries checked in {what}; {head}")
        return EXIT_OK
    assert report.problem is not None
    print(f"TAMPERED: {what}: {report.problem} ({report.checked} entries before it verified)")
    return EXIT_FINDINGS


def _verify(args: argparse.Namespace) -> int:
    try:
        if args.file:
            key = _public_multibase(args.key) if args.key else None
            result = verify_export(Path(args.file), key)
            for note in result.notes:
                print(f"note: {note}", file=sys.stderr)
            if not args.key:
                print("note: key taken from the export header; pin the provider's key with --key",
                      file=sys.stderr)
            if result.redacted:
                print(f"note: {result.redacted} entries are redacted (a consumer's export)", file=sys.stderr)
            return _print_report(result.report, args.file)
        if args.config:
            config = _load_config(args.config)
            storage = args.storage or config.storage.url
            key_text = args.key or config.load_key().public_multibase
        else:
            storage, key_text = args.storage, args.key
        if not storage or not key_text:
            raise CommandError("give an export FILE, or --storage URL with --key (or --config FILE)")
        public = public_key_from_multibase(_public_multibase(key_text))
        if storage.startswith("sqlite:") and not Path(sqlite_path(storage)).is_file():
            raise CommandError(f"--storage: no database at {sqlite_path(storage)}")
        log = AuditLog(Database(storage))
        return _print_report(log.verify(public_key_verifier(public)), storage)
    except (AuditError, StoreError) as error:
        raise CommandError(str(error)) from None


def _export(args: argparse.Namespace) -> int:
    config = _load_config(args.config)
    key = config.load_key()
    from connector.identity import verification_method_id

    storage = args.storage or config.storage.url
    try:
        if storage.startswith("sqlite:") and not Path(sqlite_path(storage)).is_file():
            raise CommandError(f"storage: no database at {sqlite_path(storage)}")
        log = AuditLog(Database(storage))
    except (AuditError, StoreError) as error:
        raise CommandError(str(error)) from None
    out_path = Path(args.out)
    try:
        with out_path.open("w", encoding="utf-8") as out:
            signer = verification_method_id(config.participant_id)
            summary = export_log(log, out, key, key.public_multibase, signer, consumer_id=args.consumer)
    except OSError as error:
        raise CommandError(f"--out: cannot write {out_path}: {error.strerror}") from None
    except AuditError as error:
        raise CommandError(str(error)) from None
    scope = f"consumer {args.consumer}" if args.consumer else "provider"
    print(f"exported {summary.entries} entries ({summary.redacted} redacted) for the {scope} to {out_path}")
    return EXIT_OK


def register(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = groups.add_parser("audit", help="verify and export the data plane's audit log")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    verify = commands.add_parser("verify", help="detect changed, removed or reordered audit entries")
    verify.add_argument("file", nargs="?", help="an export written by 'sluis audit export'")
    verify.add_argument("--storage", help="the connector's storage URL (sqlite:///... or postgresql://...)")
    verify.add_argument("--key", help="the provider's public key: Multikey z6Mk... or a PEM file")
    verify.add_argument("--config", help="the provider connector's config (storage URL and key)")
    verify.set_defaults(handler=_verify)

    export = commands.add_parser("export", help="write a signed JSON Lines export for a compliance officer")
    export.add_argument("--config", required=True, help="the provider connector's config (storage and key)")
    export.add_argument("--storage", help="override the storage URL of the config")
    export.add_argument("--out", required=True, help="the file to write")
    export.add_argument("--consumer", help="export for this consumer DID: others' entries are redacted")
    export.set_defaults(handler=_export)
