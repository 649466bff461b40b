"""Encryption at rest for personal data, with key rotation (MultiFernet)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class DecryptionError(Exception):
    """Stored data could not be decrypted with any configured key."""


class Vault:
    """Encrypts with the first key, decrypts with any; `rotate` re-encrypts with the first."""

    def __init__(self, keys: Sequence[str]) -> None:
        """Build from Fernet keys, newest first."""
        if not keys:
            raise ValueError("at least one key is required")
        self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])

    def encrypt(self, plaintext: bytes) -> bytes:
        """Encrypt bytes with the current key."""
        return self._fernet.encrypt(plaintext)

    def decrypt(self, token: bytes) -> bytes:
        """Decrypt bytes encrypted with any configured key."""
        try:
            return self._fernet.decrypt(token)
        except InvalidToken:
            raise DecryptionError("no configured key decrypts this value") from None

    def encrypt_json(self, value: Any) -> bytes:
        """Serialise to compact JSON and encrypt."""
        return self.encrypt(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())

    def decrypt_json(self, token: bytes) -> Any:
        """Decrypt and parse JSON."""
        return json.loads(self.decrypt(token))

    def rotate(self, token: bytes) -> bytes:
        """Re-encrypt a value with the current key (for key rotation)."""
        try:
            return self._fernet.rotate(token)
        except InvalidToken:
            raise DecryptionError("no configured key decrypts this value") from None


def generate_key() -> str:
    """A new random Fernet key."""
    return Fernet.generate_key().decode()
