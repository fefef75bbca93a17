"""The connector's configuration: one typed, validated object loaded from one TOML file.

``sluis participant init`` writes the file, ``sluis connector serve --config FILE`` reads it.
Relative paths (the key, credentials, the SQLite database, the data folder) are resolved against
the folder holding the config file, so a participant directory can be moved as a whole. Every
error names the section and key that is wrong.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from connector.addresses import AddressPolicy, parse_networks
from connector.identity import (
    IdentityError,
    KeyPair,
    TrustedAuthority,
    check_host_pattern,
    parse_did_web,
    public_key_from_multibase,
)

# A config file is a few hundred bytes; refuse anything that is clearly not one.
MAX_CONFIG_BYTES = 256 * 1024
# A credential is ~1-2 KB; a token carries at most 8 of them.
MAX_CREDENTIAL_FILE_BYTES = 256 * 1024
MAX_CREDENTIAL_FILES = 8
# A guessable management token would open the whole management API.
MIN_MANAGEMENT_TOKEN_CHARS = 24
MAX_ALLOW_LIST_ENTRIES = 256
CONFIG_FILE_MODE = 0o600

SQLITE_PREFIX = "sqlite:///"


class ConfigError(ValueError):
    """The configuration is unusable; ``key`` names the offending ``section.key``."""

    def __init__(self, key: str, message: str, code: str = "invalid_config") -> None:
        super().__init__(f"{key}: {message}" if key else message)
        self.key = key
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ParticipantConfig:
    id: str
    key_file: Path
    credentials: tuple[Path, ...] = ()


@dataclass(frozen=True)
class ServerConfig:
    host: str
    port: int
    public_url: str


@dataclass(frozen=True)
class StorageConfig:
    url: str


@dataclass(frozen=True)
class AuthorityConfig:
    did: str
    public_key_multibase: str


@dataclass(frozen=True)
class ManagementConfig:
    token: str = field(repr=False)


@dataclass(frozen=True)
class DataplaneConfig:
    """``flight_port``: where the Arrow Flight read endpoint listens (on ``server.host``);
    ``None`` leaves it off, so a connector opens no port its operator did not ask for."""

    data_root: Path
    flight_port: int | None = None
    #: ``read_timeout_seconds`` and ``reads_per_consumer``: the watchdog's limit of one read and
    #: the reads one consumer runs at once (``None``: the data plane's defaults, 120 s and 2).
    read_timeout_seconds: float | None = None
    reads_per_consumer: int | None = None


@dataclass(frozen=True)
class SecurityConfig:
    """What the connector may contact when a peer chose the address (connector/addresses.py).

    ``callback_allow_list``: callback base URLs the operator pins (besides those the authority
    binds to a member). ``did_hosts``: the data space's trust list of hosts whose did:web
    documents we fetch (``host``, ``host:port`` or ``*.domain``); empty means none.
    ``allow_loopback``: a development setting letting loopback addresses through (the demo
    and the tests run every participant on 127.0.0.1). ``allowed_networks``: CIDR ranges of a
    private network the data space runs on, allowed despite not being globally routable.
    """

    callback_allow_list: tuple[str, ...] = ()
    did_hosts: tuple[str, ...] = ()
    allow_loopback: bool = False
    allowed_networks: tuple[str, ...] = ()

    def address_policy(self) -> AddressPolicy:
        return AddressPolicy(self.allow_loopback, parse_networks(self.allowed_networks))


@dataclass(frozen=True)
class TuningConfig:
    """``fast_paths = false`` switches the negotiation fast paths off: a new connection per DSP
    message, no DID documents kept between messages (the peer's is fetched for every token)
    and outbox messages found by the worker instead of leased at commit. It exists so
    ``bench/bench_negotiation.py`` can measure the per-message baseline in the same run; it is
    never faster and never needed in production."""

    fast_paths: bool = True


@dataclass(frozen=True)
class ObservabilityConfig:
    """``tracing = true`` records OpenTelemetry spans (DSP requests, state transitions, outbox
    sends, data-plane reads) with the correlation id and propagates W3C ``traceparent`` to the
    peer (:mod:`connector.observability.tracing`). Off by default; it needs the ``tracing``
    extra (``opentelemetry-sdk``) unless the process already set a tracer provider.
    ``trace_exporter``: ``"none"`` (spans reach only processors the host process added) or
    ``"console"`` (one JSON object per span on stderr)."""

    tracing: bool = False
    trace_exporter: str = "none"


@dataclass(frozen=True)
class ConnectorConfig:
    participant: ParticipantConfig
    server: ServerConfig
    storage: StorageConfig
    authority: AuthorityConfig
    management: ManagementConfig
    dataplane: DataplaneConfig
    security: SecurityConfig = SecurityConfig()
    tuning: TuningConfig = TuningConfig()
    observability: ObservabilityConfig = ObservabilityConfig()

    @property
    def participant_id(self) -> str:
        return self.participant.id

    @property
    def dsp_base_url(self) -> str:
        return self.server.public_url.rstrip("/") + "/dsp"

    @property
    def trusted_authority(self) -> TrustedAuthority:
        return TrustedAuthority(self.authority.did, self.authority.public_key_multibase)

    def load_key(self) -> KeyPair:
        try:
            return KeyPair.load(self.participant.key_file)
        except IdentityError as error:
            raise ConfigError("participant.key_file", error.message, error.code) from None

    def load_credentials(self) -> list[dict[str, Any]]:
        """The participant's credentials as JSON objects, in the order the config lists them."""
        loaded: list[dict[str, Any]] = []
        for index, path in enumerate(self.participant.credentials):
            key = f"participant.credentials[{index}]"
            try:
                if path.stat().st_size > MAX_CREDENTIAL_FILE_BYTES:
                    raise ConfigError(key, f"{path} is larger than {MAX_CREDENTIAL_FILE_BYTES} bytes")
                credential = json.loads(path.read_bytes())
            except OSError as error:
                raise ConfigError(key, f"cannot read {path}: {error.strerror}") from None
            except ValueError:
                raise ConfigError(key, f"{path} is not JSON") from None
            if not isinstance(credential, dict):
                raise ConfigError(key, f"{path} does not hold a credential object")
            loaded.append(credential)
        return loaded


# --- reading -------------------------------------------------------------------------------

_SECTIONS: dict[str, frozenset[str]] = {
    "participant": frozenset({"id", "key_file", "credentials"}),
    "server": frozenset({"host", "port", "public_url"}),
    "storage": frozenset({"url"}),
    "authority": frozenset({"did", "public_key_multibase"}),
    "management": frozenset({"token"}),
    "dataplane": frozenset({"data_root", "flight_port", "read_timeout_seconds", "reads_per_consumer"}),
    "security": frozenset({"callback_allow_list", "did_hosts", "allow_loopback", "allowed_networks"}),
    "tuning": frozenset({"fast_paths"}),
    "observability": frozenset({"tracing", "trace_exporter"}),
}
#: What ``observability.trace_exporter`` may name.
TRACE_EXPORTERS = ("none", "console")
_REQUIRED_SECTIONS = ("participant", "storage", "authority", "management")


def _string(section: Mapping[str, Any], name: str, key: str, default: str | None = None) -> str:
    value = section.get(name, default)
    if value is None:
        raise ConfigError(key, "is required")
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(key, "must be a non-empty string")
    return value


def _path(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base / path).resolve()


def _http_url(value: str, key: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(key, f"{value!r} must be an http(s) URL with a host")
    if parts.query or parts.fragment:
        raise ConfigError(key, f"{value!r} must not have a query or fragment")
    return value.rstrip("/")


def _did(value: str, key: str) -> str:
    try:
        parse_did_web(value)
    except IdentityError as error:
        raise ConfigError(key, error.message) from None
    return value


def _storage_url(value: str, base: Path, key: str) -> str:
    if value.startswith(SQLITE_PREFIX):
        location = value[len(SQLITE_PREFIX) :]
        if not location:
            raise ConfigError(key, "a sqlite URL needs a file path: sqlite:///connector.db")
        if location == ":memory:" or location.startswith("/"):
            return value
        return SQLITE_PREFIX + str(_path(base, location))
    if value.startswith(("postgresql://", "postgres://")):
        return value
    raise ConfigError(
        key, f"{value.split(':', 1)[0]!r} storage is not supported (use sqlite:/// or postgresql://)"
    )


def _participant(section: Mapping[str, Any], base: Path) -> ParticipantConfig:
    participant_id = _did(_string(section, "id", "participant.id"), "participant.id")
    key_file = _path(base, _string(section, "key_file", "participant.key_file"))
    if not key_file.is_file():
        raise ConfigError("participant.key_file", f"{key_file} does not exist")
    listed = section.get("credentials", [])
    if not isinstance(listed, list) or not all(isinstance(item, str) and item for item in listed):
        raise ConfigError("participant.credentials", "must be a list of file paths")
    if len(listed) > MAX_CREDENTIAL_FILES:
        raise ConfigError("participant.credentials", f"at most {MAX_CREDENTIAL_FILES} credentials")
    credentials = tuple(_path(base, item) for item in listed)
    for index, path in enumerate(credentials):
        if not path.is_file():
            raise ConfigError(f"participant.credentials[{index}]", f"{path} does not exist")
    return ParticipantConfig(participant_id, key_file, credentials)


def _server(section: Mapping[str, Any]) -> ServerConfig:
    host = _string(section, "host", "server.host", "127.0.0.1")
    port = section.get("port", 9191)
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        raise ConfigError("server.port", "must be an integer in 0..65535")
    default_url = f"http://{host}:{port}"
    public_url = _http_url(
        _string(section, "public_url", "server.public_url", default_url), "server.public_url"
    )
    return ServerConfig(host, port, public_url)


def _authority(section: Mapping[str, Any]) -> AuthorityConfig:
    did = _did(_string(section, "did", "authority.did"), "authority.did")
    multibase = _string(section, "public_key_multibase", "authority.public_key_multibase")
    try:
        public_key_from_multibase(multibase)
    except IdentityError as error:
        raise ConfigError("authority.public_key_multibase", error.message) from None
    return AuthorityConfig(did, multibase)


def _management(section: Mapping[str, Any]) -> ManagementConfig:
    token = _string(section, "token", "management.token")
    if len(token) < MIN_MANAGEMENT_TOKEN_CHARS:
        raise ConfigError("management.token", f"must be at least {MIN_MANAGEMENT_TOKEN_CHARS} characters")
    return ManagementConfig(token)


def _string_list(section: Mapping[str, Any], name: str, what: str) -> list[str]:
    listed = section.get(name, [])
    if not isinstance(listed, list) or len(listed) > MAX_ALLOW_LIST_ENTRIES:
        raise ConfigError(f"security.{name}", f"must be a list of at most {MAX_ALLOW_LIST_ENTRIES} {what}")
    for index, item in enumerate(listed):
        if not isinstance(item, str) or not item:
            raise ConfigError(f"security.{name}[{index}]", f"must be a non-empty string ({what})")
    return listed


def _security(section: Mapping[str, Any]) -> SecurityConfig:
    urls = [
        _http_url(item, f"security.callback_allow_list[{index}]")
        for index, item in enumerate(_string_list(section, "callback_allow_list", "URLs"))
    ]
    hosts = _string_list(section, "did_hosts", "host names")
    for index, item in enumerate(hosts):
        try:
            check_host_pattern(item)
        except IdentityError as error:
            raise ConfigError(f"security.did_hosts[{index}]", error.message) from None
    networks = _string_list(section, "allowed_networks", "CIDR networks")
    for index, item in enumerate(networks):
        try:
            parse_networks([item])
        except ValueError as error:
            raise ConfigError(f"security.allowed_networks[{index}]", str(error)) from None
    loopback = section.get("allow_loopback", False)
    if not isinstance(loopback, bool):
        raise ConfigError("security.allow_loopback", "must be true or false")
    return SecurityConfig(tuple(urls), tuple(hosts), loopback, tuple(networks))


def config_from_mapping(data: Mapping[str, Any], base: Path) -> ConnectorConfig:
    """Validate parsed TOML; ``base`` is the folder relative paths are resolved against."""
    for name, value in data.items():
        if name not in _SECTIONS:
            raise ConfigError(name, f"unknown section (known: {', '.join(_SECTIONS)})")
        if not isinstance(value, dict):
            raise ConfigError(name, "must be a table ([section])")
        unknown = sorted(set(value) - _SECTIONS[name])
        if unknown:
            raise ConfigError(
                f"{name}.{unknown[0]}", f"unknown key (known: {', '.join(sorted(_SECTIONS[name]))})"
            )
    for name in _REQUIRED_SECTIONS:
        if name not in data:
            raise ConfigError(name, "section is required")
    dataplane = data.get("dataplane", {})
    return ConnectorConfig(
        participant=_participant(data["participant"], base),
        server=_server(data.get("server", {})),
        storage=StorageConfig(
            _storage_url(_string(data["storage"], "url", "storage.url"), base, "storage.url")
        ),
        authority=_authority(data["authority"]),
        management=_management(data["management"]),
        dataplane=DataplaneConfig(
            _path(base, _string(dataplane, "data_root", "dataplane.data_root", "data")),
            _flight_port(dataplane),
            _bounded_number(dataplane, "read_timeout_seconds", 1, 3600),
            _bounded_int(dataplane, "reads_per_consumer", 1, 64),
        ),
        security=_security(data.get("security", {})),
        tuning=TuningConfig(_flag(data.get("tuning", {}), "fast_paths", "tuning.fast_paths", True)),
        observability=_observability(data.get("observability", {})),
    )


def _flag(section: Mapping[str, Any], name: str, key: str, default: bool) -> bool:
    value = section.get(name, default)
    if not isinstance(value, bool):
        raise ConfigError(key, "must be true or false")
    return value


def _observability(section: Mapping[str, Any]) -> ObservabilityConfig:
    exporter = _string(section, "trace_exporter", "observability.trace_exporter", "none")
    if exporter not in TRACE_EXPORTERS:
        raise ConfigError("observability.trace_exporter", f"must be one of {', '.join(TRACE_EXPORTERS)}")
    return ObservabilityConfig(_flag(section, "tracing", "observability.tracing", False), exporter)


def _flight_port(section: Mapping[str, Any]) -> int | None:
    port = section.get("flight_port")
    if port is None:
        return None
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise ConfigError("dataplane.flight_port", "must be an integer in 1..65535")
    return port


def _bounded_number(section: Mapping[str, Any], name: str, low: float, high: float) -> float | None:
    value = section.get(name)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool) or not low <= value <= high:
        raise ConfigError(f"dataplane.{name}", f"must be a number in {low:g}..{high:g}")
    return float(value)


def _bounded_int(section: Mapping[str, Any], name: str, low: int, high: int) -> int | None:
    value = section.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ConfigError(f"dataplane.{name}", f"must be an integer in {low}..{high}")
    return value


def load_config(path: str | os.PathLike[str]) -> ConnectorConfig:
    file = Path(path)
    try:
        if file.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError("", f"{file} is larger than {MAX_CONFIG_BYTES} bytes")
        raw = file.read_bytes()
    except OSError as error:
        raise ConfigError("", f"cannot read {file}: {error.strerror}", "config_unreadable") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError("", f"{file} is not valid TOML: {error}", "config_unreadable") from None
    return config_from_mapping(data, file.resolve().parent)


# --- writing -------------------------------------------------------------------------------


def _toml_string(value: str) -> str:
    escaped = []
    for char in value:
        if char == '"':
            escaped.append('\\"')
        elif char == "\\":
            escaped.append("\\\\")
        elif char == "\n":
            escaped.append("\\n")
        elif char == "\t":
            escaped.append("\\t")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            escaped.append(f"\\u{ord(char):04x}")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'


def _toml_value(value: str | int | bool | list[str]) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_string(item) for item in value) + "]"
    return _toml_string(value)


def _relative(path: Path, base: Path) -> str:
    try:
        return path.resolve().relative_to(base).as_posix()
    except ValueError:
        return str(path)


def config_to_toml(config: ConnectorConfig, base: Path) -> str:
    """The TOML text for ``config``, with paths inside ``base`` written relative to it."""
    storage_url = config.storage.url
    if storage_url.startswith(SQLITE_PREFIX) and storage_url != SQLITE_PREFIX + ":memory:":
        storage_url = SQLITE_PREFIX + _relative(Path(storage_url[len(SQLITE_PREFIX) :]), base)
    sections: dict[str, dict[str, str | int | bool | list[str]]] = {
        "participant": {
            "id": config.participant.id,
            "key_file": _relative(config.participant.key_file, base),
            "credentials": [_relative(path, base) for path in config.participant.credentials],
        },
        "server": {
            "host": config.server.host,
            "port": config.server.port,
            "public_url": config.server.public_url,
        },
        "storage": {"url": storage_url},
        "authority": {
            "did": config.authority.did,
            "public_key_multibase": config.authority.public_key_multibase,
        },
        "management": {"token": config.management.token},
        "dataplane": {
            "data_root": _relative(config.dataplane.data_root, base),
            **({} if config.dataplane.flight_port is None else {"flight_port": config.dataplane.flight_port}),
            **{name: value for name in ("read_timeout_seconds", "reads_per_consumer")
               if (value := getattr(config.dataplane, name)) is not None},
        },
        "security": {
            "callback_allow_list": list(config.security.callback_allow_list),
            "did_hosts": list(config.security.did_hosts),
            "allow_loopback": config.security.allow_loopback,
            "allowed_networks": list(config.security.allowed_networks),
        },
        "tuning": {"fast_paths": config.tuning.fast_paths},
        "observability": {
            "tracing": config.observability.tracing,
            "trace_exporter": config.observability.trace_exporter,
        },
    }
    lines: list[str] = []
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in values.items())
        lines.append("")
    return "\n".join(lines)


def write_config(config: ConnectorConfig, path: str | os.PathLike[str]) -> None:
    """Write ``config`` as TOML (mode 0600: it holds the management token), atomically."""
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    text = config_to_toml(config, file.resolve().parent)
    temporary = file.with_name(f".{file.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, CONFIG_FILE_MODE)
    try:
        os.fchmod(descriptor, CONFIG_FILE_MODE)
        os.write(descriptor, text.encode("utf-8"))
    finally:
        os.close(descriptor)
    os.replace(temporary, file)
