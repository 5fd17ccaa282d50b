"""Digit collection, key by key: lengths, terminator, reset key and pattern."""

from __future__ import annotations

import re
from enum import Enum

__all__ = ["Collector", "Verdict"]


class Verdict(Enum):
    """What the collector makes of the input so far."""

    MORE = "more"  # keep waiting for keys
    DONE = "done"  # complete and valid: ``value``
    INVALID = "invalid"  # complete but too short or not matching the pattern
    TIMEOUT = "timeout"  # nothing typed in time


class Collector:
    """Collects one answer: ``feed`` each key, ``timeout`` when the wait ran out."""

    def __init__(
        self,
        *,
        min_digits: int = 1,
        max_digits: int = 20,
        terminator: str = "#",
        reset_key: str = "*",
        pattern: str = "",
    ) -> None:
        self.min_digits, self.max_digits = min_digits, max_digits
        self.terminator, self.reset_key = terminator, reset_key
        self.pattern = re.compile(pattern) if pattern else None
        self.digits: list[str] = []
        self.typed = ""  # everything pressed, for the trail

    @property
    def value(self) -> str:
        """The digits collected."""
        return "".join(self.digits)

    def feed(self, key: str) -> Verdict:
        """Take one key."""
        self.typed += key
        if self.reset_key and key == self.reset_key:
            self.digits.clear()
            return Verdict.MORE
        if self.terminator and key == self.terminator:
            return self._judge()
        self.digits.append(key)
        if len(self.digits) >= self.max_digits:
            return self._judge()
        return Verdict.MORE

    def timeout(self) -> Verdict:
        """The wait for the next key ran out."""
        if not self.digits:
            return Verdict.TIMEOUT
        return self._judge()

    def _judge(self) -> Verdict:
        value = self.value
        if len(value) < self.min_digits or not value.isdigit():
            return Verdict.INVALID
        if self.pattern is not None and self.pattern.fullmatch(value) is None:
            return Verdict.INVALID
        return Verdict.DONE
