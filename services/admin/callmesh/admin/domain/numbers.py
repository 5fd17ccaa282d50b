"""Access numbers (DIDs): one owner per number, ranges, and what a conflict says.

Numbers arrive already normalized (``callmesh.core.tenancy.normalize_number``: digits with an
optional leading ``+``): this module expands ranges and decides what an assignment may do.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from callmesh.core.errors import Conflict, InvalidInput

LABEL_MAX = 100
# How many numbers a conflict message names (the details carry up to DETAILS_MAX).
MESSAGE_MAX = 10
DETAILS_MAX = 1000
_PREFIX_RE = re.compile(r"\+?[0-9]{1,20}|\+")


@dataclass(frozen=True)
class NumberAssignment:
    """A number owned by a tenant."""

    number: str
    tenant_id: str
    label: str
    created_at: datetime


def _split(number: str) -> tuple[str, str]:
    return ("+", number[1:]) if number.startswith("+") else ("", number)


def expand_range(first: str, last: str, max_count: int, field: str = "range") -> list[str]:
    """Every number from ``first`` to ``last`` (normalized, same length), at most ``max_count``.

    Leading zeros are kept: ``0100`` to ``0102`` are ``0100``, ``0101``, ``0102``.
    """
    plus_a, digits_a = _split(first)
    plus_b, digits_b = _split(last)
    if plus_a != plus_b:
        raise InvalidInput(f"{field}.to", "must start with '+' exactly when range.from does")
    if len(digits_a) != len(digits_b):
        raise InvalidInput(f"{field}.to", "must have as many digits as range.from")
    low, high = int(digits_a), int(digits_b)
    if high < low:
        raise InvalidInput(f"{field}.to", "must not be below range.from")
    count = high - low + 1
    if count > max_count:
        raise InvalidInput(field, f"must hold at most {max_count} numbers (holds {count})")
    width = len(digits_a)
    return [f"{plus_a}{value:0{width}d}" for value in range(low, high + 1)]


def unique(numbers: Iterable[str], max_count: int, field: str = "numbers") -> list[str]:
    """The numbers without repeats (first occurrence kept), at most ``max_count``, at least one."""
    seen = list(dict.fromkeys(numbers))
    if not seen:
        raise InvalidInput(field, "must name at least one number")
    if len(seen) > max_count:
        raise InvalidInput(field, f"must hold at most {max_count} numbers")
    return seen


def check_label(value: str, field: str = "label") -> str:
    """A free label (``main line``, ``sales FR``): 0-100 characters, no control characters."""
    text = value.strip()
    if len(text) > LABEL_MAX:
        raise InvalidInput(field, f"must be at most {LABEL_MAX} characters")
    if any(unicodedata.category(ch).startswith("C") for ch in text):
        raise InvalidInput(field, "must not contain control characters")
    return text


def check_prefix(value: str, field: str = "prefix") -> str:
    """A number prefix for searches: digits with an optional leading '+'."""
    if not _PREFIX_RE.fullmatch(value):
        raise InvalidInput(field, "must be up to 20 digits with an optional leading '+'")
    return value


@dataclass(frozen=True)
class AssignmentPlan:
    """What an assignment writes: the numbers new to the tenant (the others it owns already)."""

    new: list[str]
    already_owned: list[str]


def plan_assignment(
    tenant_id: str, numbers: list[str], owners: Mapping[str, str]
) -> AssignmentPlan:
    """Decide an assignment: refused (409, naming them) if another tenant owns any number.

    Numbers the tenant already owns are not an error: assigning is idempotent, so a retried
    request succeeds.
    """
    taken = {n: owner for n, owner in owners.items() if owner != tenant_id}
    if taken:
        raise already_owned(taken)
    new = [n for n in numbers if n not in owners]
    return AssignmentPlan(new=new, already_owned=[n for n in numbers if n in owners])


def already_owned(taken: Mapping[str, str]) -> Conflict:
    """The refusal of numbers owned by other tenants (operator API: owners may be named)."""
    ordered = sorted(taken)
    named = ", ".join(f"{n} ({taken[n]})" for n in ordered[:MESSAGE_MAX])
    more = f" and {len(ordered) - MESSAGE_MAX} more" if len(ordered) > MESSAGE_MAX else ""
    return Conflict(
        f"numbers already owned by another tenant: {named}{more}; nothing was assigned",
        reason="number_owned",
        numbers=ordered[:DETAILS_MAX],
        count=len(ordered),
    )


def not_assigned(tenant_id: str, numbers: list[str], field: str = "numbers") -> InvalidInput:
    """The refusal of a release naming numbers the tenant does not own."""
    shown = ", ".join(numbers[:MESSAGE_MAX])
    more = f" and {len(numbers) - MESSAGE_MAX} more" if len(numbers) > MESSAGE_MAX else ""
    return InvalidInput(
        field,
        f"must all be assigned to tenant {tenant_id}",
        f"{field}: not assigned to tenant {tenant_id}: {shown}{more}; nothing was released",
        numbers=numbers[:DETAILS_MAX],
    )


def describe(numbers: list[str]) -> str:
    """An audit target id for a set of numbers: the number, or ``first..last (n)``."""
    if len(numbers) == 1:
        return numbers[0]
    ordered = sorted(numbers)
    return f"{ordered[0]}..{ordered[-1]} ({len(ordered)})"
