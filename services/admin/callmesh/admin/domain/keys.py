"""Token-signing keys: their life (pending → active → retired → removed), derived from time.

A key's state is never stored: it follows from the keys' generations and activation times, so
every admin replica computes the same answer from the same documents, with no transition to
write at the right moment (and none to lose). Key ``n`` is

- ``pending`` before its ``activates_at`` (published in the JWKS, not signing yet),
- ``active`` from then until key ``n + 1`` activates (the newest key active by now signs),
- ``retired`` after that, while a token it signed may still be alive (published, not signing),
- ``expired`` afterwards: no longer published, and deleted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from callmesh.core.errors import Conflict


class KeyState(StrEnum):
    """Where a signing key is in its life."""

    PENDING = "pending"
    ACTIVE = "active"
    RETIRED = "retired"
    EXPIRED = "expired"


@dataclass(frozen=True)
class SigningKey:
    """A stored signing key: its public half, and its private half sealed by the key vault."""

    kid: str
    generation: int
    created_at: datetime
    activates_at: datetime
    # The public key as an OKP JWK (kid, kty, crv, x, alg, use): what the JWKS publishes.
    public_jwk: Mapping[str, str]
    # The private key as the vault sealed it (opaque here; never leaves the service).
    sealed: Mapping[str, str]
    created_by: str = ""

    @property
    def encrypted(self) -> bool:
        """Whether the private key is stored encrypted (under the master key)."""
        return self.sealed.get("alg", "none") != "none"


@dataclass(frozen=True)
class KeyView:
    """A key with its state at some moment and the times that decide it."""

    key: SigningKey
    state: KeyState
    # When the next key took (or takes) over; None while no newer key exists.
    retires_at: datetime | None
    # When the key leaves the JWKS; None while it is not retiring.
    removed_after: datetime | None

    @property
    def published(self) -> bool:
        """Whether verifiers must know this key now."""
        return self.state is not KeyState.EXPIRED


def timeline(keys: Sequence[SigningKey], now: datetime, token_lifetime: timedelta) -> list[KeyView]:
    """Every key with its state at ``now``, newest generation first.

    ``token_lifetime`` is the longest a token can live plus the verifiers' leeway: a retired key
    stays published that long after it stopped signing.
    """
    ordered = sorted(keys, key=lambda k: k.generation)
    # The active key is the newest one whose activation has come; a key activating later than a
    # newer generation (impossible unless written by hand) never signs.
    signer: SigningKey | None = None
    for key in ordered:
        if key.activates_at <= now and (signer is None or key.generation > signer.generation):
            signer = key
    views: list[KeyView] = []
    for index, key in enumerate(ordered):
        successor = ordered[index + 1] if index + 1 < len(ordered) else None
        retires_at = successor.activates_at if successor is not None else None
        removed_after = retires_at + token_lifetime if retires_at is not None else None
        if key.activates_at > now:
            state = KeyState.PENDING
        elif signer is not None and key.kid == signer.kid:
            state = KeyState.ACTIVE
        elif removed_after is not None and now >= removed_after:
            state = KeyState.EXPIRED
        else:
            state = KeyState.RETIRED
        views.append(KeyView(key, state, retires_at, removed_after))
    views.reverse()
    return views


def active_key(views: Sequence[KeyView]) -> SigningKey | None:
    """The key that signs now (None before the first key exists)."""
    for view in views:
        if view.state is KeyState.ACTIVE:
            return view.key
    return None


@dataclass(frozen=True)
class RotationPlan:
    """The generation and activation time of the next key."""

    generation: int
    activates_at: datetime


def plan_rotation(
    views: Sequence[KeyView], now: datetime, publish_ahead: timedelta, *, immediate: bool = False
) -> RotationPlan:
    """When the next key signs: after ``publish_ahead`` (verifiers' caches learn it first), or at
    once when ``immediate`` (a compromised key; verifiers fetch an unknown kid on first sight).

    One rotation at a time: while a key is pending, another is refused (409), since the pending
    key would otherwise sign for a moment only, or never.
    """
    pending = [v for v in views if v.state is KeyState.PENDING]
    if pending:
        first = pending[-1]
        raise Conflict(
            f"a rotation is under way: key {first.key.kid} becomes active at "
            f"{first.key.activates_at.isoformat()}",
            reason="rotation_pending",
            kid=first.key.kid,
        )
    generation = max((v.key.generation for v in views), default=0) + 1
    return RotationPlan(generation, now if immediate else now + publish_ahead)
