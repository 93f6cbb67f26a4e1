"""Encryption at rest of resident ID numbers and phones: AES-256-GCM plus an HMAC search key.

The 32-byte master key lives in a file, never in the database: the ``register_key_file``
setting, else ``instance/register.key`` (generated with mode 0600 on first use, for the
demo; production deployments point the setting at a managed key file). Two sub-keys are
derived with HKDF: one for AES-GCM (each value gets a fresh 96-bit nonce and is bound to
its field name as associated data, so values cannot be swapped between columns), one for
HMAC-SHA256 (the keyed hash for exact search: equal inputs, equal hashes, not reversible
without the key).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from api.config import read_or_create

__all__ = ["RegisterKeyError", "RegisterCipher", "load_key", "cipher_for"]

_NONCE = 12


class RegisterKeyError(RuntimeError):
    """The key file is missing, unreadable or not a 32-byte key."""


def _derive(master: bytes, label: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"wangge-register:" + label).derive(master)


@dataclass(frozen=True)
class RegisterCipher:
    """Encrypt / decrypt / hash register fields with keys derived from one master key."""

    aead: AESGCM
    mac_key: bytes

    @classmethod
    def from_master(cls, master: bytes) -> RegisterCipher:
        """Derive the AES-GCM and HMAC keys from the 32-byte *master* key."""
        if len(master) != 32:
            raise RegisterKeyError(f"register key must be 32 bytes, got {len(master)}; regenerate the key file")
        return cls(AESGCM(_derive(master, b"aead")), _derive(master, b"hmac"))

    def encrypt(self, value: str, field: str) -> bytes:
        """Nonce + ciphertext + tag of *value*, bound to *field*."""
        nonce = os.urandom(_NONCE)
        return nonce + self.aead.encrypt(nonce, value.encode("utf-8"), field.encode("ascii"))

    def decrypt(self, blob: bytes, field: str) -> str:
        """The clear text of *blob*; raises :class:`RegisterKeyError` if it was tampered with or keyed otherwise."""
        try:
            return self.aead.decrypt(blob[:_NONCE], blob[_NONCE:], field.encode("ascii")).decode("utf-8")
        except InvalidTag:
            raise RegisterKeyError(f"cannot decrypt {field}: wrong key or altered data; check register_key_file") from None

    def search_hash(self, value: str, field: str) -> str:
        """Keyed hash (HMAC-SHA256, hex) of *value* for exact search within *field*."""
        mac = self._mac.copy()  # the keyed inner/outer state is computed once per cipher
        mac.update(f"{field}\x00{value}".encode())
        return mac.hexdigest()

    @property
    def _mac(self) -> hmac.HMAC:
        base = self.__dict__.get("_mac_base")
        if base is None:
            base = hmac.new(self.mac_key, digestmod=hashlib.sha256)
            object.__setattr__(self, "_mac_base", base)
        return base

    def encrypt_many(self, values: list[str], field: str) -> list[bytes]:
        """:meth:`encrypt` of every value (one call for the random nonces)."""
        pool = os.urandom(_NONCE * len(values))
        aad = field.encode("ascii")
        enc = self.aead.encrypt
        return [pool[i * _NONCE:(i + 1) * _NONCE] + enc(pool[i * _NONCE:(i + 1) * _NONCE], v.encode("utf-8"), aad)
                for i, v in enumerate(values)]


def load_key(path: Path, *, create: bool) -> bytes:
    """The master key in *path* (base64); generated there (mode 0600) when missing and *create*."""
    if not path.exists() and not create:
        raise RegisterKeyError(f"register key file {path} does not exist; set register_key_file to the key file")
    # several web workers may touch the register first at once: one key wins, all read it
    text = read_or_create(path, lambda: base64.b64encode(AESGCM.generate_key(bit_length=256)).decode("ascii"))
    try:
        return base64.b64decode(text.strip(), validate=True)
    except ValueError:
        raise RegisterKeyError(f"register key file {path} is not base64; restore it from backup") from None


_CACHE: dict[str, RegisterCipher] = {}


def cipher_for(instance_path: str, settings: dict[str, object]) -> RegisterCipher:
    """The cipher of an app: key from ``register_key_file`` or ``<instance>/register.key`` (created)."""
    configured = str(settings.get("register_key_file") or "")
    path = Path(configured) if configured else Path(instance_path) / "register.key"
    key = str(path.resolve())
    if key not in _CACHE:
        _CACHE[key] = RegisterCipher.from_master(load_key(path, create=not configured))
    return _CACHE[key]
