from __future__ import annotations

import stat

import pytest

from connector.identity import IdentityError, KeyPair, public_key_from_multibase, public_key_to_multibase
from connector.identity._multibase import b58decode, b58encode

# The Ed25519 test key published with the W3C vc-di-eddsa specification.
SPEC_SECRET = "z3u2en7t5LR2WtQH5PfFqMqwVHBeXouLzo6haApm8XHqvjxq"
SPEC_PUBLIC = "z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"


def test_spec_secret_key_yields_the_spec_public_multikey() -> None:
    key = KeyPair.from_secret_multibase(SPEC_SECRET)
    assert key.public_multibase == SPEC_PUBLIC
    assert key.secret_multibase == SPEC_SECRET


def test_public_multikey_round_trips_and_starts_like_every_ed25519_multikey() -> None:
    key = KeyPair.generate()
    assert key.public_multibase.startswith("z6Mk")
    decoded = public_key_from_multibase(key.public_multibase)
    assert public_key_to_multibase(decoded) == key.public_multibase


def test_base58_keeps_leading_zero_bytes() -> None:
    for data in (b"", b"\0", b"\0\0\x01", b"\xff" * 40, bytes(range(34))):
        assert b58decode(b58encode(data)) == data


def test_key_file_is_private_and_loads_back(tmp_path) -> None:
    key = KeyPair.generate()
    path = tmp_path / "keys" / "participant-key.pem"
    key.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert KeyPair.load(path).public_multibase == key.public_multibase


def test_jwk_is_an_okp_ed25519_key() -> None:
    jwk = KeyPair.from_secret_multibase(SPEC_SECRET).public_jwk
    assert jwk["kty"] == "OKP"
    assert jwk["crv"] == "Ed25519"
    assert len(jwk["x"]) == 43  # 32 bytes in unpadded base64url


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2", "bad_multibase"),  # no multibase prefix
        ("z0OIl", "bad_multibase"),  # not base58 characters
        (SPEC_SECRET, "bad_key"),  # a private key where a public key belongs
        ("z" + "2" * 300, "bad_multibase"),  # oversized input refused before decoding
    ],
)
def test_malformed_public_multikeys_are_refused(value: str, code: str) -> None:
    with pytest.raises(IdentityError) as caught:
        public_key_from_multibase(value)
    assert caught.value.code == code


def test_a_non_key_file_is_refused_with_a_clear_code(tmp_path) -> None:
    path = tmp_path / "key.pem"
    path.write_text("not a key")
    with pytest.raises(IdentityError) as caught:
        KeyPair.load(path)
    assert caught.value.code == "bad_key"
    with pytest.raises(IdentityError) as missing:
        KeyPair.load(tmp_path / "absent.pem")
    assert missing.value.code == "key_unreadable"
