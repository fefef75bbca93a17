"""Ed25519 key pairs: generation, PEM files, Multikey and JWK forms.

One participant (or authority) has one signing key. The private half lives in a PKCS#8 PEM file
readable only by its owner (mode 0600); the public half is published in the DID document as a
Multikey (``publicKeyMultibase``) and, for JOSE tooling, as an OKP JWK.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from connector.identity._multibase import (
    ED25519_PRIVATE_HEADER,
    ED25519_PUBLIC_HEADER,
    multibase_encode,
    private_key_bytes_from_multikey,
    public_key_bytes_from_multikey,
)
from connector.identity.errors import IdentityError

# A PEM key file is a few hundred bytes; anything larger is not one of ours.
MAX_KEY_FILE_BYTES = 16 * 1024
KEY_FILE_MODE = 0o600
# Distinct peer keys remembered in decoded form; a data space has far fewer participants.
PUBLIC_KEY_CACHE_SIZE = 4096


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@lru_cache(maxsize=PUBLIC_KEY_CACHE_SIZE)
def public_key_from_multibase(text: str) -> Ed25519PublicKey:
    """The Ed25519 public key in a Multikey ``publicKeyMultibase`` value (``z6Mk...``).

    Cached: every DSP request names the same few peer keys, and base58 decoding is not free.
    """
    return Ed25519PublicKey.from_public_bytes(public_key_bytes_from_multikey(text))


def public_key_to_multibase(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return multibase_encode(ED25519_PUBLIC_HEADER + raw)


def public_key_to_jwk(key: Ed25519PublicKey) -> dict[str, str]:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": _b64url(raw)}


def verify_signature(public_key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    try:
        public_key.verify(signature, message)
    except InvalidSignature:
        return False
    return True


@dataclass(frozen=True, eq=False)
class KeyPair:
    """An Ed25519 signing key with its public half in the encodings peers expect."""

    private_key: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> KeyPair:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> KeyPair:
        """Rebuild a key from its 32-byte seed (test vectors publish keys this way)."""
        if len(seed) != 32:
            raise IdentityError("bad_key", "an Ed25519 seed is exactly 32 bytes")
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def from_secret_multibase(cls, text: str) -> KeyPair:
        return cls.from_seed(private_key_bytes_from_multikey(text))

    @classmethod
    def from_pem(cls, data: bytes) -> KeyPair:
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as error:
            raise IdentityError("bad_key", f"not an unencrypted PEM private key: {error}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise IdentityError("bad_key", "the PEM key is not an Ed25519 key")
        return cls(key)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> KeyPair:
        file = Path(path)
        try:
            size = file.stat().st_size
            if size > MAX_KEY_FILE_BYTES:
                raise IdentityError("bad_key", f"{file} is larger than {MAX_KEY_FILE_BYTES} bytes")
            data = file.read_bytes()
        except OSError as error:
            raise IdentityError("key_unreadable", f"cannot read key file {file}: {error.strerror}") from None
        return cls.from_pem(data)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the private key as PKCS#8 PEM, created with mode 0600 (never world-readable)."""
        file = Path(path)
        file.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        descriptor = os.open(file, flags, KEY_FILE_MODE)
        try:
            os.fchmod(descriptor, KEY_FILE_MODE)
            os.write(descriptor, self.to_pem())
        finally:
            os.close(descriptor)

    def to_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    @property
    def public_bytes(self) -> bytes:
        return self.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    @property
    def public_multibase(self) -> str:
        return multibase_encode(ED25519_PUBLIC_HEADER + self.public_bytes)

    @property
    def secret_multibase(self) -> str:
        seed = self.private_key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        return multibase_encode(ED25519_PRIVATE_HEADER + seed)

    @property
    def public_jwk(self) -> dict[str, str]:
        return public_key_to_jwk(self.public_key)

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message)

    def __repr__(self) -> str:  # never print key material
        return f"KeyPair(public={self.public_multibase})"
