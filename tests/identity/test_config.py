"""The connector config: TOML in, one validated object out, errors that name the key."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from connector.config import ConfigError, load_config, write_config
from connector.identity import KeyPair

AUTHORITY_KEY = KeyPair.generate()


def _participant_dir(tmp_path: Path, **overrides: str) -> Path:
    KeyPair.generate().save(tmp_path / "participant-key.pem")
    (tmp_path / "credentials").mkdir()
    (tmp_path / "credentials" / "membership.json").write_text('{"type": ["VerifiableCredential"]}')
    sections = {
        "participant": 'id = "did:web:127.0.0.1%3A9191"\nkey_file = "participant-key.pem"\n'
        'credentials = ["credentials/membership.json"]',
        "server": 'host = "127.0.0.1"\nport = 9191\npublic_url = "http://127.0.0.1:9191"',
        "storage": 'url = "sqlite:///state/connector.db"',
        "authority": 'did = "did:web:127.0.0.1%3A9000"\n'
        f'public_key_multibase = "{AUTHORITY_KEY.public_multibase}"',
        "management": 'token = "a-management-token-of-enough-length"',
        "dataplane": 'data_root = "data"',
        "security": 'callback_allow_list = ["https://callbacks.example.eu/dsp"]',
    }
    sections.update(overrides)
    text = "\n\n".join(f"[{name}]\n{body}" for name, body in sections.items() if body)
    (tmp_path / "connector.toml").write_text(text + "\n")
    return tmp_path / "connector.toml"


def test_a_config_loads_with_paths_resolved_against_its_folder(tmp_path: Path) -> None:
    config = load_config(_participant_dir(tmp_path))
    assert config.participant_id == "did:web:127.0.0.1%3A9191"
    assert config.participant.key_file == tmp_path / "participant-key.pem"
    assert config.participant.credentials == (tmp_path / "credentials" / "membership.json",)
    assert config.storage.url == f"sqlite:///{tmp_path}/state/connector.db"
    assert config.dataplane.data_root == tmp_path / "data"
    assert config.dsp_base_url == "http://127.0.0.1:9191/dsp"
    assert config.trusted_authority.public_multibase == AUTHORITY_KEY.public_multibase
    assert config.security.callback_allow_list == ("https://callbacks.example.eu/dsp",)
    assert config.load_key().public_multibase.startswith("z6Mk")
    assert config.load_credentials() == [{"type": ["VerifiableCredential"]}]


def test_the_management_token_is_never_printed(tmp_path: Path) -> None:
    config = load_config(_participant_dir(tmp_path))
    assert "a-management-token" not in repr(config)


def test_written_config_loads_back_identically_and_is_private(tmp_path: Path) -> None:
    config = load_config(_participant_dir(tmp_path))
    copy_path = tmp_path / "copy.toml"
    write_config(config, copy_path)
    assert stat.S_IMODE(copy_path.stat().st_mode) == 0o600
    assert load_config(copy_path) == config
    text = copy_path.read_text()
    assert 'key_file = "participant-key.pem"' in text
    assert 'url = "sqlite:///state/connector.db"' in text


def test_a_moved_participant_folder_still_works(tmp_path: Path) -> None:
    original = _participant_dir(tmp_path / "a")
    moved = tmp_path / "b"
    original.parent.rename(moved)
    config = load_config(moved / "connector.toml")
    assert config.participant.key_file == moved / "participant-key.pem"


def test_postgresql_storage_urls_pass_through(tmp_path: Path) -> None:
    config = load_config(_participant_dir(tmp_path, storage='url = "postgresql://sluis@db/sluis"'))
    assert config.storage.url == "postgresql://sluis@db/sluis"


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"participant": 'id = "https://example.org"\nkey_file = "participant-key.pem"'}, "participant.id"),
        ({"participant": 'id = "did:web:a.example"\nkey_file = "missing.pem"'}, "participant.key_file"),
        (
            {
                "participant": 'id = "did:web:a.example"\nkey_file = "participant-key.pem"\n'
                'credentials = ["x.json"]'
            },
            "participant.credentials[0]",
        ),
        ({"server": 'port = "9191"'}, "server.port"),
        ({"server": "port = 70000"}, "server.port"),
        ({"server": 'public_url = "ftp://example.org"'}, "server.public_url"),
        ({"storage": 'url = "mysql://db"'}, "storage.url"),
        ({"storage": ""}, "storage"),
        (
            {"authority": 'did = "did:web:a.example"\npublic_key_multibase = "z123"'},
            "authority.public_key_multibase",
        ),
        ({"management": 'token = "short"'}, "management.token"),
        ({"security": 'callback_allow_list = ["not a url"]'}, "security.callback_allow_list[0]"),
        ({"server": 'hots = "127.0.0.1"'}, "server.hots"),
        ({"extras": 'a = "b"'}, "extras"),
    ],
)
def test_invalid_settings_are_reported_by_key(tmp_path: Path, overrides: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(_participant_dir(tmp_path, **overrides))
    assert caught.value.key == key
    assert str(caught.value).startswith(f"{key}: ")


def test_an_unreadable_or_broken_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as missing:
        load_config(tmp_path / "absent.toml")
    assert missing.value.code == "config_unreadable"
    broken = tmp_path / "broken.toml"
    broken.write_text("[participant\nid=")
    with pytest.raises(ConfigError) as syntax:
        load_config(broken)
    assert syntax.value.code == "config_unreadable"
