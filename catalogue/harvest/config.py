"""The catalogue node's own configuration file (TOML): its identity, its harvest sources, the
keys it trusts, the operator's token and the harvest limits.

One typed object (:class:`NodeSettings`), loaded once by the composition root. The file holds no
secret in the clear: the operator token is stored as its SHA-256 (a 256-bit random token needs
no slow hash), and the node's private key stays in ``node-key.pem`` beside the store.

```toml
[node]
public_url = "http://127.0.0.1:8081"
did = "did:web:127.0.0.1%3A8081"          # optional: derived from public_url
operator_token_sha256 = "…"                # `sluis catalogue init` writes it
harvest_interval_seconds = 300             # scheduled harvests in `sluis catalogue serve` (0: off)
allow_loopback = true                      # harvest loopback sources (default: only a loopback node)
allowed_networks = ["10.20.0.0/16"]        # private networks sources may be on (default: none)

[limits]                                   # every one optional; defaults in HarvestLimits
max_pages = 10000
max_records = 200000

[[sources]]
id = "node-b"
url = "http://127.0.0.1:8082/catalogue/catalog"
kind = "dcat"                              # or "dsp" (a connector's catalog; url = its DSP base)
did = "did:web:127.0.0.1%3A8082"           # trusted when listed under [[trusted]]
incremental = true                         # modified_since once a complete run has a watermark

[[trusted]]
did = "did:web:127.0.0.1%3A8082"
keys = ["z6Mk…"]                           # Multikey (Ed25519) of the DID's record-signing key
```
"""

from __future__ import annotations

import hashlib
import hmac
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from catalogue.harvest._fetch import FetchError, check_source_url
from catalogue.harvest.ledger import Source
from connector.addresses import AddressPolicy, parse_networks
from connector.identity import IdentityError, did_web_for, public_key_from_multibase

NODE_CONFIG_FILE = "node.toml"
SOURCE_KINDS = ("dcat", "dsp")
_SOURCE_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
MAX_SOURCES = 1000
MAX_PUBLISHERS_PER_SOURCE = 1000
MAX_KEYS_PER_DID = 16
MIN_INTERVAL_SECONDS = 10


class ConfigError(ValueError):
    """A configuration value that is wrong; ``field`` names it (``sources[2].url``)."""

    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(f"{field_name}: {reason}")
        self.field = field_name
        self.reason = reason


@dataclass(frozen=True)
class HarvestLimits:
    """Caps on one harvest run; a run that meets one stops, keeps what it stored and says why."""

    timeout_seconds: float = 10.0
    """Connect / read timeout of one request."""
    deadline_seconds: float = 60.0
    """A whole page must arrive within this time (a trickling peer ends here)."""
    max_page_bytes: int = 32 * 1024 * 1024
    """One page or dump (a page of 1,000 Sluis records is a few MB)."""
    max_pages: int = 10_000
    """Pages (or files of a listing) per run; also ends a listing that never stops."""
    max_listing_pages: int = 100_000
    """Pages of one listing, over the runs that carry it on: a source that never ends (every page
    links to a new one) is listed again from its first page after this many, instead of growing
    the node without bound one capped run after another."""
    max_records: int = 200_000
    """Records stored, quarantined or rejected per run (checked between pages): a peer serving a
    million records adds at most about this many per run; the next run skips what is unchanged
    and goes on."""
    max_run_bytes: int = 2 * 1024 * 1024 * 1024
    max_run_seconds: float = 3600.0
    batch_size: int = 200
    """Records prepared and written together (the writer lock is held for one batch at a time,
    so local publishing waits at most one batch)."""


@dataclass(frozen=True)
class NodeSettings:
    public_url: str = "http://127.0.0.1:8080"
    did: str | None = None
    operator_token_sha256: str | None = None
    harvest_interval_seconds: int = 0
    sources: tuple[Source, ...] = ()
    trusted: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Trusted DIDs -> the Multikey public keys their record proofs must use."""
    limits: HarvestLimits = HarvestLimits()
    allow_loopback: bool | None = None
    """Whether sources may be on loopback; None: only when the node itself is (development)."""
    allowed_networks: tuple[str, ...] = ()
    """Private networks (CIDR) sources may be on; every other non-global address is refused."""

    @property
    def address_policy(self) -> AddressPolicy:
        """Where harvest fetches may connect: global addresses, plus what the operator allowed."""
        loopback = self.allow_loopback
        if loopback is None:
            host = (urlsplit(self.public_url).hostname or "").lower()
            loopback = host in ("localhost", "::1") or host.startswith("127.")
        return AddressPolicy(loopback, parse_networks(self.allowed_networks))

    @property
    def node_did(self) -> str:
        return self.did or did_for_url(self.public_url)

    def operator_token_ok(self, token: str) -> bool:
        if not self.operator_token_sha256 or not token or len(token) > 256:
            return False
        digest = hashlib.sha256(token.encode("utf-8")).hexdigest()
        return hmac.compare_digest(digest, self.operator_token_sha256)


def did_for_url(url: str) -> str:
    """The did:web of a node reached at ``url`` (host and port; the path is not part of it)."""
    parts = urlsplit(url)
    try:
        return did_web_for(parts.hostname or "", parts.port)
    except IdentityError as error:
        raise ConfigError("node.public_url", error.message) from None


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def parse_source(raw: Mapping[str, Any], where: str) -> Source:
    """One source from the config file or the sources API; ``ConfigError`` names the bad field."""
    known = {"id", "url", "kind", "did", "publishers", "incremental", "interval_seconds"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}", f"unknown setting; known: {', '.join(sorted(known))}")
    source_id = raw.get("id")
    if not isinstance(source_id, str) or not _SOURCE_ID.fullmatch(source_id):
        raise ConfigError(f"{where}.id", "must be 1-63 lower-case letters, digits, - or _")
    if source_id == "local":  # the name of records published on this node (urn:sluis:source:local)
        raise ConfigError(f"{where}.id", "'local' names this node's own records; choose another id")
    url = raw.get("url")
    if not isinstance(url, str) or len(url) > 2048:
        raise ConfigError(f"{where}.url", "must be an http(s) URL of at most 2048 characters")
    try:
        check_source_url(url)
    except FetchError as error:
        raise ConfigError(f"{where}.url", error.message) from None
    kind = raw.get("kind", "dcat")
    if kind not in SOURCE_KINDS:
        raise ConfigError(f"{where}.kind", f"must be one of {', '.join(SOURCE_KINDS)}")
    did = raw.get("did")
    if did is not None and (not isinstance(did, str) or not did.startswith("did:") or len(did) > 512):
        raise ConfigError(f"{where}.did", "must be a DID (did:web:… or did:key:…)")
    if kind == "dsp" and did is None:
        raise ConfigError(f"{where}.did", "a DSP source needs the connector's DID (the token's audience)")
    publishers = raw.get("publishers", [])
    if (
        not isinstance(publishers, list)
        or len(publishers) > MAX_PUBLISHERS_PER_SOURCE
        or not all(isinstance(p, str) and ":" in p and len(p) <= 2048 for p in publishers)
    ):
        raise ConfigError(f"{where}.publishers", "must be a list of publisher IRIs")
    incremental = raw.get("incremental", False)
    if not isinstance(incremental, bool):
        raise ConfigError(f"{where}.incremental", "must be true or false")
    interval = raw.get("interval_seconds")
    if interval is not None and (
        isinstance(interval, bool) or not isinstance(interval, int) or interval < MIN_INTERVAL_SECONDS
    ):
        raise ConfigError(
            f"{where}.interval_seconds", f"must be an integer of at least {MIN_INTERVAL_SECONDS}"
        )
    return Source(source_id, url, kind, did, tuple(publishers), incremental, interval)


def _limits(raw: Any) -> HarvestLimits:
    if raw is None:
        return HarvestLimits()
    if not isinstance(raw, dict):
        raise ConfigError("limits", "must be a table")
    names = {item.name: item for item in fields(HarvestLimits)}
    values: dict[str, Any] = {}
    for name, value in raw.items():
        if name not in names:
            raise ConfigError(f"limits.{name}", f"unknown limit; known: {', '.join(sorted(names))}")
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ConfigError(f"limits.{name}", "must be a positive number")
        values[name] = type(getattr(HarvestLimits(), name))(value)
    return HarvestLimits(**values)


def _trusted(raw: Any) -> dict[str, tuple[str, ...]]:
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise ConfigError("trusted", "must be an array of tables ([[trusted]])")
    trusted: dict[str, tuple[str, ...]] = {}
    for number, entry in enumerate(raw):
        where = f"trusted[{number}]"
        if not isinstance(entry, dict):
            raise ConfigError(where, "must be a table")
        did = entry.get("did")
        if not isinstance(did, str) or not did.startswith("did:"):
            raise ConfigError(f"{where}.did", "must be a DID")
        keys = entry.get("keys")
        if not isinstance(keys, list) or not keys or len(keys) > MAX_KEYS_PER_DID:
            raise ConfigError(f"{where}.keys", f"must list 1-{MAX_KEYS_PER_DID} Multikey public keys")
        for key in keys:
            try:
                public_key_from_multibase(str(key))
            except (IdentityError, ValueError):
                raise ConfigError(f"{where}.keys", f"{str(key)[:80]!r} is not an Ed25519 Multikey") from None
        trusted[did] = tuple(str(key) for key in keys)
    return trusted


def parse_settings(raw: Mapping[str, Any]) -> NodeSettings:
    unknown = sorted(set(raw) - {"node", "limits", "sources", "trusted"})
    if unknown:
        raise ConfigError(unknown[0], "unknown section; known: node, limits, sources, trusted")
    node = raw.get("node", {})
    if not isinstance(node, dict):
        raise ConfigError("node", "must be a table")
    public_url = node.get("public_url", NodeSettings.public_url)
    if not isinstance(public_url, str):
        raise ConfigError("node.public_url", "must be a URL")
    try:
        check_source_url(public_url)
    except FetchError as error:
        raise ConfigError("node.public_url", error.message) from None
    did = node.get("did")
    if did is not None and (not isinstance(did, str) or not did.startswith("did:web:")):
        raise ConfigError("node.did", "must be a did:web")
    token = node.get("operator_token_sha256")
    if token is not None and (not isinstance(token, str) or not re.fullmatch(r"[0-9a-f]{64}", token)):
        raise ConfigError("node.operator_token_sha256", "must be 64 lower-case hex digits")
    interval = node.get("harvest_interval_seconds", 0)
    if isinstance(interval, bool) or not isinstance(interval, int) or interval < 0:
        raise ConfigError("node.harvest_interval_seconds", "must be a non-negative integer")
    loopback = node.get("allow_loopback")
    if loopback is not None and not isinstance(loopback, bool):
        raise ConfigError("node.allow_loopback", "must be true or false")
    networks = node.get("allowed_networks", [])
    if not isinstance(networks, list) or not all(isinstance(item, str) for item in networks):
        raise ConfigError("node.allowed_networks", "must be a list of networks in CIDR form")
    try:
        parse_networks(networks)
    except ValueError as error:
        raise ConfigError("node.allowed_networks", str(error)) from None
    sources_raw = raw.get("sources", [])
    if not isinstance(sources_raw, list) or len(sources_raw) > MAX_SOURCES:
        raise ConfigError("sources", f"must be an array of at most {MAX_SOURCES} tables")
    sources = tuple(
        parse_source(entry if isinstance(entry, dict) else {}, f"sources[{n}]")
        for n, entry in enumerate(sources_raw)
    )
    if len({source.id for source in sources}) != len(sources):
        raise ConfigError("sources", "two sources share an id")
    return NodeSettings(
        public_url=public_url,
        did=did,
        operator_token_sha256=token,
        harvest_interval_seconds=interval,
        sources=sources,
        trusted=_trusted(raw.get("trusted")),
        limits=_limits(raw.get("limits")),
        allow_loopback=loopback,
        allowed_networks=tuple(networks),
    )


def load_settings(path: Path) -> NodeSettings:
    """Read and check the node's TOML file; ``ConfigError`` names the bad setting."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(str(path), f"cannot read: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(str(path), f"not valid TOML: {error}") from None
    return parse_settings(raw)
