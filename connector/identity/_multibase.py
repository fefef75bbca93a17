"""Multibase base58btc and the Multikey headers for Ed25519, with no third-party codec.

Multikey (W3C Controlled Identifiers) prefixes the raw key with its multicodec varint:
``0xed 0x01`` for an Ed25519 public key, ``0x80 0x26`` for an Ed25519 private key (seed). The
multibase prefix ``z`` says "base58btc" (the Bitcoin alphabet).
"""

from __future__ import annotations

from connector.identity.errors import IdentityError

_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX = {char: value for value, char in enumerate(_ALPHABET)}

ED25519_PUBLIC_HEADER = b"\xed\x01"
ED25519_PRIVATE_HEADER = b"\x80\x26"
ED25519_KEY_BYTES = 32

# Longest multibase string we decode: a proof value is 64 bytes (~88 chars), a key 34 bytes.
# Base58 decoding is quadratic, so an attacker-sized string must be refused before work starts.
MAX_MULTIBASE_CHARS = 256


def b58encode(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    chars: list[str] = []
    while number:
        number, remainder = divmod(number, 58)
        chars.append(_ALPHABET[remainder])
    leading_zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * leading_zeros + "".join(reversed(chars))


def b58decode(text: str) -> bytes:
    number = 0
    for char in text:
        value = _INDEX.get(char)
        if value is None:
            raise IdentityError("bad_multibase", f"{char!r} is not a base58btc character")
        number = number * 58 + value
    leading_ones = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\0" * leading_ones + body


def multibase_encode(data: bytes) -> str:
    """``z`` + base58btc: the only multibase encoding we emit."""
    return "z" + b58encode(data)


def multibase_decode(text: str) -> bytes:
    if not isinstance(text, str) or not text.startswith("z"):
        raise IdentityError(
            "bad_multibase", "a multibase value must be a string starting with 'z' (base58btc)"
        )
    if len(text) > MAX_MULTIBASE_CHARS:
        raise IdentityError("bad_multibase", f"multibase value longer than {MAX_MULTIBASE_CHARS} characters")
    return b58decode(text[1:])


def public_key_bytes_from_multikey(text: str) -> bytes:
    raw = multibase_decode(text)
    if not raw.startswith(ED25519_PUBLIC_HEADER) or len(raw) != 2 + ED25519_KEY_BYTES:
        raise IdentityError(
            "bad_key", "publicKeyMultibase is not an Ed25519 Multikey (header 0xed01 + 32 bytes)"
        )
    return raw[2:]


def private_key_bytes_from_multikey(text: str) -> bytes:
    raw = multibase_decode(text)
    if not raw.startswith(ED25519_PRIVATE_HEADER) or len(raw) != 2 + ED25519_KEY_BYTES:
        raise IdentityError(
            "bad_key", "secretKeyMultibase is not an Ed25519 Multikey (header 0x8026 + 32 bytes)"
        )
    return raw[2:]
