"""Password hashing with argon2id (argon2-cffi), off the event loop."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# argon2-cffi's defaults (RFC 9106 low-memory profile: t=3, m=64 MiB, p=4) cost ~50 ms a hash on
# these machines: slow enough for an attacker, fast enough for logins; hashing runs in a thread.
_HASHER = PasswordHasher()


async def hash_password(password: str) -> str:
    """An argon2id hash of the password."""
    return await asyncio.to_thread(_HASHER.hash, password)


async def verify_password(password_hash: str, password: str) -> bool:
    """Whether the password matches the hash (False, never an error, for a mismatch)."""
    try:
        return await asyncio.to_thread(_HASHER.verify, password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether a stored hash used weaker parameters than today's (rehash at the next login)."""
    return _HASHER.check_needs_rehash(password_hash)


# A real hash of a random password: verifying against it when the user does not exist makes
# "no such user" cost the same time as "wrong password" (no user enumeration by timing).
DUMMY_HASH = _HASHER.hash("callmesh-no-such-user-0f9e7a")
