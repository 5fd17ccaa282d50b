"""Fencing: per tenant and lease, the newest token seen; an older one is refused.

A partition owner (acd for a tenant) acts under a lease whose fencing token grows with every
new owner. A deposed owner that has not noticed yet still sends commands with its old token;
the link refuses them so a call is never offered twice.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FencingVerdict:
    """Whether a command may run, and if not why."""

    admitted: bool
    reason: str = ""  # "" | "stale" | "missing_token"
    newest: int = 0


class FencingTable:
    """The newest fencing token seen per (tenant, lease)."""

    def __init__(self) -> None:
        self._newest: dict[tuple[str, str], int] = {}

    def check(self, tenant_id: str, lease: str, token: int) -> FencingVerdict:
        """Admit (and remember) a token at least as new as any seen; refuse older ones.

        Commands sent under no lease (ivr, desk) are not fenced; a lease without a token is
        refused, since it could never be told apart from a stale owner's.
        """
        if not lease:
            return FencingVerdict(True)
        if token <= 0:
            return FencingVerdict(False, "missing_token")
        key = (tenant_id, lease)
        newest = self._newest.get(key, 0)
        if token < newest:
            return FencingVerdict(False, "stale", newest)
        self._newest[key] = token
        return FencingVerdict(True, "", token)

    def newest(self, tenant_id: str, lease: str) -> int:
        """The newest token seen (0 when none)."""
        return self._newest.get((tenant_id, lease), 0)
