"""Secrets at rest: private signing keys sealed under the master key, and password hashing.

Private keys are encrypted with AES-256-GCM under a key derived from
``CALLMESH_ADMIN_MASTER_KEY`` by HKDF-SHA256 (info names the purpose, so the same master key
can derive other keys, e.g. tenants' data keys, that never collide with this one). The key id is
the associated data: a sealed key copied onto another key's record does not decrypt. Without a
master key the PEM is stored in clear (development only; the service warns at start).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import SecretStr

from callmesh.admin.adapters import passwords
from callmesh.core.errors import Unavailable

ALG_CLEAR = "none"
ALG_AES_GCM = "A256GCM"
KDF = "HKDF-SHA256"
_INFO = b"callmesh/admin/signing-keys/v1"
_NONCE_BYTES = 12
# A master key is a secret of the operator's choosing; shorter ones are too easy to guess.
MIN_MASTER_KEY_LENGTH = 16


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def derive_key(master_key: str, info: bytes = _INFO) -> bytes:
    """A 256-bit key for one purpose (``info``) derived from the master key."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(
        master_key.encode("utf-8")
    )


def _open_clear(kid: str, sealed: Mapping[str, str]) -> str:
    pem = sealed.get("pem")
    if not isinstance(pem, str):
        raise Unavailable(f"signing key {kid}: stored key has no PEM", kid=kid)
    return pem


class ClearVault:
    """Stores private keys in clear (no master key configured)."""

    @property
    def encrypts(self) -> bool:
        """Never."""
        return False

    def seal(self, kid: str, private_pem: str) -> dict[str, str]:
        """The PEM as it is."""
        return {"alg": ALG_CLEAR, "pem": private_pem}

    def open(self, kid: str, sealed: Mapping[str, str]) -> str:
        """The PEM; an encrypted key cannot be opened without the master key."""
        if sealed.get("alg", ALG_CLEAR) != ALG_CLEAR:
            raise Unavailable(
                f"signing key {kid} is encrypted, but CALLMESH_ADMIN_MASTER_KEY is not set",
                kid=kid,
            )
        return _open_clear(kid, sealed)


class AesGcmVault:
    """Encrypts private keys with AES-256-GCM under a key derived from the master key."""

    def __init__(self, master_key: str) -> None:
        if len(master_key) < MIN_MASTER_KEY_LENGTH:
            raise ValueError(
                f"CALLMESH_ADMIN_MASTER_KEY: must be at least {MIN_MASTER_KEY_LENGTH} characters"
            )
        self._aead = AESGCM(derive_key(master_key))

    @property
    def encrypts(self) -> bool:
        """Always."""
        return True

    def seal(self, kid: str, private_pem: str) -> dict[str, str]:
        """The PEM encrypted, bound to ``kid``."""
        nonce = os.urandom(_NONCE_BYTES)
        ciphertext = self._aead.encrypt(nonce, private_pem.encode("ascii"), kid.encode("utf-8"))
        return {
            "alg": ALG_AES_GCM,
            "kdf": KDF,
            "nonce": _b64(nonce),
            "ciphertext": _b64(ciphertext),
        }

    def open(self, kid: str, sealed: Mapping[str, str]) -> str:
        """The PEM back (a key stored in clear before a master key was set is read as it is)."""
        alg = sealed.get("alg", ALG_CLEAR)
        if alg == ALG_CLEAR:
            return _open_clear(kid, sealed)
        if alg != ALG_AES_GCM:
            raise Unavailable(f"signing key {kid}: unknown sealing {alg!r}", kid=kid)
        try:
            nonce = _unb64(sealed["nonce"])
            ciphertext = _unb64(sealed["ciphertext"])
            plain = self._aead.decrypt(nonce, ciphertext, kid.encode("utf-8"))
        except (KeyError, ValueError, InvalidTag) as err:
            # Never say more: a wrong master key and a tampered record look the same.
            raise Unavailable(
                f"signing key {kid} cannot be decrypted: is CALLMESH_ADMIN_MASTER_KEY the one "
                "it was sealed with?",
                kid=kid,
            ) from err
        return plain.decode("ascii")


def vault_for(master_key: SecretStr | None) -> ClearVault | AesGcmVault:
    """The vault the settings ask for."""
    if master_key is None or not master_key.get_secret_value():
        return ClearVault()
    return AesGcmVault(master_key.get_secret_value())


class Argon2Passwords:
    """``PasswordHasher`` with argon2id (``adapters.passwords``), hashing off the event loop."""

    @property
    def dummy_hash(self) -> str:
        """A real hash of a random password."""
        return passwords.DUMMY_HASH

    async def hash(self, password: str) -> str:
        """An argon2id hash."""
        return await passwords.hash_password(password)

    async def verify(self, password_hash: str, password: str) -> bool:
        """Whether the password matches."""
        return await passwords.verify_password(password_hash, password)

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether the hash is weaker than today's parameters."""
        try:
            return passwords.needs_rehash(password_hash)
        except ValueError:
            # Not an argon2 hash at all (imported from elsewhere): replace it at login.
            return True
