"""``sluis participant init``: everything a new participant needs to run a connector.

Creates, in one folder: an Ed25519 key (``participant-key.pem``, 0600), a data folder, a random
management token, optionally a membership credential issued by the authority, and
``connector.toml`` — a config ``sluis connector serve --config`` accepts as it is.
``sluis participant add-credential`` later adds a credential (an EHDS data permit) after checking
it against the pinned authority and that it is about this participant.
"""

from __future__ import annotations

import argparse
import json
import secrets
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from connector.config import (
    MAX_CREDENTIAL_FILE_BYTES,
    MAX_CREDENTIAL_FILES,
    AuthorityConfig,
    ConfigError,
    ConnectorConfig,
    DataplaneConfig,
    ManagementConfig,
    ParticipantConfig,
    SecurityConfig,
    ServerConfig,
    StorageConfig,
    load_config,
    write_config,
)
from connector.identity import (
    MEMBERSHIP_CREDENTIAL,
    IdentityError,
    KeyPair,
    check_host_pattern,
    credential_subject,
    credential_types,
    did_to_url,
    issue_credential,
    parse_did_web,
    public_key_from_multibase,
    utc_now,
    verify_credential,
)
from connector.identity.did import LOOPBACK_HOSTS
from sluis.cli import CommandError
from sluis.commands.authority import DEFAULT_VALID_DAYS, MAX_VALID_DAYS, load_authority

CONFIG_FILE = "connector.toml"
KEY_FILE = "participant-key.pem"
MEMBERSHIP_FILE = "credentials/membership.json"
DATABASE_FILE = "connector.db"
DATA_FOLDER = "data"
DEFAULT_PORT = 9191
# 32 random bytes: the management token guards asset and contract administration.
MANAGEMENT_TOKEN_BYTES = 32


def _endpoint(did: str, host: str | None, port: int | None, public_url: str | None) -> ServerConfig:
    """Where the connector listens and how peers reach it, derived from the did:web by default."""
    try:
        did_host, did_port, path = parse_did_web(did)
    except IdentityError as error:
        raise CommandError(f"--id: {error.message}") from None
    if path:
        raise CommandError(
            "--id: a participant's did:web has no path (its connector serves /.well-known/did.json)"
        )
    bare_host = did_host.strip("[]")
    loopback = bare_host.lower() in LOOPBACK_HOSTS
    listen_host = host or (bare_host if loopback else "127.0.0.1")
    listen_port = port if port is not None else (did_port or DEFAULT_PORT)
    if public_url is None:
        scheme = "http" if loopback else "https"
        public_url = f"{scheme}://{did_host}" + (f":{did_port}" if did_port else "")
    return ServerConfig(listen_host, listen_port, public_url.rstrip("/"))


def _authority(args: argparse.Namespace) -> tuple[AuthorityConfig, KeyPair | None]:
    if args.authority_dir is not None:
        if args.authority_did or args.authority_key_multibase:
            raise CommandError(
                "give either --authority-dir or --authority-did with --authority-key-multibase"
            )
        authority = load_authority(args.authority_dir)
        return AuthorityConfig(authority.did, authority.public_key_multibase), authority.key
    if not (args.authority_did and args.authority_key_multibase):
        raise CommandError(
            "the trusted authority is required: --authority-dir, "
            "or --authority-did with --authority-key-multibase"
        )
    try:
        parse_did_web(args.authority_did)
    except IdentityError as error:
        raise CommandError(f"--authority-did: {error.message}") from None
    try:
        public_key_from_multibase(args.authority_key_multibase)
    except IdentityError as error:
        raise CommandError(f"--authority-key-multibase: {error.message}") from None
    return AuthorityConfig(args.authority_did, args.authority_key_multibase), None


def _same_origin(first: str, second: str) -> bool:
    a, b = urlsplit(first), urlsplit(second)
    return (a.scheme, a.netloc.lower()) == (b.scheme, b.netloc.lower())


def _security(args: argparse.Namespace, server: ServerConfig) -> SecurityConfig:
    """The data space's trust list; on loopback, the development setting that allows loopback.

    A participant whose own DID is on a loopback host is a development setup (the demo, the
    tests): its peers are on loopback too, so the config allows loopback addresses and trusts
    loopback DID hosts, visibly, in ``[security]``. Elsewhere nothing private is allowed and the
    operator lists the data space's DID hosts with ``--did-host``.
    """
    hosts = list(args.did_host or [])
    loopback = urlsplit(server.public_url).hostname in LOOPBACK_HOSTS
    if loopback:
        hosts = list(dict.fromkeys([*hosts, "127.0.0.1", "localhost"]))
    for host in hosts:
        try:
            check_host_pattern(host)
        except IdentityError as error:
            raise CommandError(f"--did-host: {error.message}") from None
    return SecurityConfig(did_hosts=tuple(hosts), allow_loopback=loopback)


def _init(args: argparse.Namespace) -> int:
    directory: Path = args.dir.resolve()
    config_path = directory / CONFIG_FILE
    for existing in (config_path, directory / KEY_FILE):
        if existing.exists():
            raise CommandError(f"{existing} already exists; refusing to overwrite a participant")
    server = _endpoint(args.id, args.host, args.port, args.public_url)
    authority, authority_key = _authority(args)
    if not 0 < args.valid_days <= MAX_VALID_DAYS:
        raise CommandError(f"--valid-days: must be 1..{MAX_VALID_DAYS}")

    key = KeyPair.generate()
    key.save(directory / KEY_FILE)
    (directory / DATA_FOLDER).mkdir(parents=True, exist_ok=True)
    credentials: tuple[Path, ...] = ()
    if authority_key is not None:
        now = utc_now()
        # the authority binds the connector's address to the member when it is not the DID's
        # own host: peers accept callbacks only to addresses the authority or operator bound
        claims = {} if _same_origin(server.public_url, did_to_url(args.id)) else {
            "dspEndpoints": [server.public_url]
        }
        membership = issue_credential(
            authority_key,
            authority.did,
            args.id,
            MEMBERSHIP_CREDENTIAL,
            claims,
            valid_from=now,
            valid_until=now + timedelta(days=args.valid_days),
        )
        membership_path = directory / MEMBERSHIP_FILE
        membership_path.parent.mkdir(parents=True, exist_ok=True)
        membership_path.write_text(json.dumps(membership, indent=2) + "\n", encoding="utf-8")
        credentials = (membership_path,)

    config = ConnectorConfig(
        participant=ParticipantConfig(args.id, directory / KEY_FILE, credentials),
        server=server,
        storage=StorageConfig("sqlite:///" + str(directory / DATABASE_FILE)),
        authority=authority,
        management=ManagementConfig(secrets.token_urlsafe(MANAGEMENT_TOKEN_BYTES)),
        dataplane=DataplaneConfig(directory / DATA_FOLDER),
        security=_security(args, server),
    )
    write_config(config, config_path)
    try:
        load_config(config_path)  # what serve will do: fail here, not at first start
    except ConfigError as error:
        raise CommandError(f"{config_path}: {error}") from None
    print(
        json.dumps(
            {
                "participant": args.id,
                "config": str(config_path),
                "public_url": server.public_url,
                "public_key_multibase": key.public_multibase,
                "credentials": [str(path) for path in credentials],
            },
            indent=2,
        )
    )
    return 0


def _add_credential(args: argparse.Namespace) -> int:
    """Check a credential against the pinned authority, copy it next to the config, list it."""
    try:
        config = load_config(args.config)
    except ConfigError as error:
        raise CommandError(f"{args.config}: {error}") from None
    if len(config.participant.credentials) >= MAX_CREDENTIAL_FILES:
        raise CommandError(f"{args.config}: already lists {MAX_CREDENTIAL_FILES} credentials")
    source: Path = args.credential
    try:
        if source.stat().st_size > MAX_CREDENTIAL_FILE_BYTES:
            raise CommandError(f"{source}: larger than {MAX_CREDENTIAL_FILE_BYTES} bytes")
        credential = json.loads(source.read_bytes())
    except OSError as error:
        raise CommandError(f"{source}: cannot read ({error.strerror})") from None
    except ValueError:
        raise CommandError(f"{source}: not JSON") from None
    try:
        verify_credential(credential, config.trusted_authority, utc_now())
        subject = credential_subject(credential)["id"]
    except IdentityError as error:
        raise CommandError(f"{source}: {error.message}") from None
    if subject != config.participant_id:
        raise CommandError(f"{source}: the credential is about {subject}, not {config.participant_id}")
    folder = Path(args.config).resolve().parent / "credentials"
    folder.mkdir(parents=True, exist_ok=True)
    kind = "-".join(sorted(credential_types(credential))).lower() or "credential"
    target = folder / f"{kind}-{str(credential.get('id', '')).rsplit(':', 1)[-1][:36] or 'unnamed'}.json"
    if target in config.participant.credentials:
        raise CommandError(f"{target} is already listed in {args.config}")
    target.write_text(json.dumps(credential, indent=2) + "\n", encoding="utf-8")
    updated = replace(
        config, participant=replace(config.participant, credentials=(*config.participant.credentials, target))
    )
    write_config(updated, args.config)
    print(
        json.dumps(
            {
                "config": str(args.config),
                "credential": str(target),
                "types": sorted(credential_types(credential)),
            }
        )
    )
    return 0


def register(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = groups.add_parser("participant", help="data space participants: create one, add credentials")
    commands = group.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    init = commands.add_parser("init", help="create a participant: key, credentials, connector.toml")
    init.add_argument("--id", required=True, help="the participant's did:web, e.g. did:web:127.0.0.1%%3A9191")
    init.add_argument("--dir", required=True, type=Path, help="folder to create the participant in")
    init.add_argument(
        "--authority-dir", type=Path, help="authority folder: pins it and issues a membership credential"
    )
    init.add_argument(
        "--authority-did", help="the trusted authority's did:web (with --authority-key-multibase)"
    )
    init.add_argument("--authority-key-multibase", help="the trusted authority's public key (z6Mk...)")
    init.add_argument(
        "--host", help="address to listen on (default: the DID's loopback host, else 127.0.0.1)"
    )
    init.add_argument("--port", type=int, help="port to listen on (default: the DID's port, else 9191)")
    init.add_argument("--public-url", help="base URL peers reach the connector at (default: from the DID)")
    init.add_argument(
        "--did-host",
        action="append",
        metavar="HOST",
        help="the data space's trust list: a host (host, host:port or *.domain) whose did:web "
        "documents the connector may fetch; repeat for each (loopback hosts are added for a "
        "loopback participant)",
    )
    init.add_argument(
        "--valid-days",
        type=int,
        default=DEFAULT_VALID_DAYS,
        help="membership credential validity (default 365)",
    )
    init.set_defaults(handler=_init)

    add = commands.add_parser("add-credential", help="verify a credential and list it in connector.toml")
    add.add_argument("--config", required=True, type=Path, help="the participant's connector.toml")
    add.add_argument(
        "--credential", required=True, type=Path, help="credential JSON from 'sluis authority issue'"
    )
    add.set_defaults(handler=_add_credential)
