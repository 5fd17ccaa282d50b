"""Quota limits of a tenant: which kinds exist, what a valid limit is, and the usage report.

A limit is a count of 0 or more, or None for unlimited. The counters themselves live in NATS KV
(``callmesh.core.quotas``); admin keeps the limits in the tenant document and mirrors them there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from callmesh.core.errors import InvalidInput
from callmesh.core.quotas import QuotaKind

# Limits travel as JSON: keep them exact in every client (2**53 - 1 bytes is 8 PiB of recordings).
MAX_LIMIT = 2**53 - 1

Limits = dict[QuotaKind, int | None]


def unlimited() -> Limits:
    """Every quota unlimited."""
    return dict.fromkeys(QuotaKind)


def check_limits(values: Mapping[str, object], field: str = "quotas") -> Limits:
    """Limits for every kind (absent ones unlimited); refuses unknown kinds and bad counts."""
    limits = unlimited()
    for name, value in values.items():
        try:
            kind = QuotaKind(name)
        except ValueError:
            raise InvalidInput(
                f"{field}.{name}", f"is not a quota kind (one of {', '.join(QuotaKind)})"
            ) from None
        limits[kind] = check_limit(value, f"{field}.{kind.value}")
    return limits


def check_limit(value: object, field: str) -> int | None:
    """One limit: None (unlimited) or an integer from 0 to MAX_LIMIT."""
    if value is None:
        return None
    # bool is an int subclass: JSON true is not a count.
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(field, "must be an integer or null (unlimited)")
    if value < 0:
        raise InvalidInput(field, "must be ≥ 0")
    if value > MAX_LIMIT:
        raise InvalidInput(field, f"must be ≤ {MAX_LIMIT}")
    return value


def limits_record(limits: Mapping[QuotaKind, int | None]) -> dict[str, int | None]:
    """Limits as stored: by kind name, every kind present."""
    return {kind.value: limits.get(kind) for kind in QuotaKind}


def limits_from_record(record: Mapping[str, object]) -> Limits:
    """Limits from their stored form (unknown names, from a newer admin, are ignored)."""
    limits = unlimited()
    for kind in QuotaKind:
        value = record.get(kind.value)
        limits[kind] = value if isinstance(value, int) and not isinstance(value, bool) else None
    return limits


@dataclass(frozen=True)
class QuotaLine:
    """One quota: its limit (None: unlimited) and the units in use now."""

    limit: int | None
    used: int


def report(
    limits: Mapping[QuotaKind, int | None], used: Mapping[QuotaKind, int]
) -> dict[QuotaKind, QuotaLine]:
    """Current usage next to each limit, for every kind."""
    return {kind: QuotaLine(limits.get(kind), used.get(kind, 0)) for kind in QuotaKind}
