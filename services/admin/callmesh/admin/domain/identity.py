"""Identity rules: usernames, password strength, login lockout."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from callmesh.core.errors import InvalidInput

USERNAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$")
MAX_DISPLAY_NAME = 128
# Deliberately loose: one '@', something on each side, a dot in the domain. Mail delivery is
# the only real check of an address.
_EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")

# The most common passwords that pass the length rule; refused whatever else they contain.
_COMMON = frozenset(
    {
        "password1234", "password12345", "password123456", "123456789012", "1234567890123",
        "qwertyuiop12", "iloveyou1234", "administrator", "welcome12345", "changeme1234",
        "letmein12345", "passw0rd1234", "p@ssw0rd1234", "qwerty123456", "abc123456789",
        "callmesh1234", "trustno12345",
    }
)  # fmt: skip


def check_username(value: str, field: str = "username") -> str:
    """A username: 1-64 lowercase letters, digits, ``.``, ``_``, ``-`` (not at the ends)."""
    if not USERNAME_RE.match(value):
        raise InvalidInput(
            field, "must be 1-64 lowercase letters, digits, '.', '_' or '-', not at the ends"
        )
    return value


def check_display_name(value: str, field_name: str = "display_name") -> str:
    """A display name: 1-128 printable characters once trimmed."""
    text = value.strip()
    if not text:
        raise InvalidInput(field_name, "must not be empty")
    if len(text) > MAX_DISPLAY_NAME:
        raise InvalidInput(field_name, f"must be at most {MAX_DISPLAY_NAME} characters")
    if not text.isprintable():
        raise InvalidInput(field_name, "must not contain control characters")
    return text


def check_email(value: str | None, field_name: str = "email") -> str | None:
    """An e-mail address (domain lowercased), or None."""
    if value is None:
        return None
    text = value.strip()
    if len(text) > 254 or not _EMAIL_RE.match(text):
        raise InvalidInput(field_name, "must be an e-mail address (name@domain)")
    local, _, domain = text.rpartition("@")
    return f"{local}@{domain.lower()}"


@dataclass(frozen=True)
class PasswordPolicy:
    """How strong a password must be."""

    min_length: int = 12
    max_length: int = 256
    # Of lowercase, uppercase, digits and symbols, how many kinds a password must mix.
    min_classes: int = 3

    def check(self, password: str, *, username: str = "", field: str = "password") -> None:
        """Refuse a weak password with the rule it breaks (never echoing the password)."""
        if len(password) < self.min_length:
            raise InvalidInput(field, f"must be at least {self.min_length} characters")
        if len(password) > self.max_length:
            raise InvalidInput(field, f"must be at most {self.max_length} characters")
        classes = sum(
            (
                any(c.islower() for c in password),
                any(c.isupper() for c in password),
                any(c.isdigit() for c in password),
                any(not c.isalnum() for c in password),
            )
        )
        if classes < self.min_classes:
            raise InvalidInput(
                field,
                f"must mix at least {self.min_classes} of lowercase, uppercase, digits, symbols",
            )
        lowered = password.lower()
        if username and len(username) >= 3 and username.lower() in lowered:
            raise InvalidInput(field, "must not contain the username")
        if lowered in _COMMON:
            raise InvalidInput(field, "is a commonly used password")


@dataclass(frozen=True)
class LockoutPolicy:
    """After ``max_failures`` failed logins within ``window``, the account locks for ``lockout``."""

    max_failures: int = 5
    window: timedelta = timedelta(minutes=15)
    lockout: timedelta = timedelta(minutes=15)


@dataclass(frozen=True)
class LoginState:
    """The lockout bookkeeping of one account."""

    failures: int = 0
    first_failure_at: datetime | None = None
    locked_until: datetime | None = None

    def locked(self, now: datetime) -> bool:
        """Whether the account is locked now."""
        return self.locked_until is not None and now < self.locked_until

    def failed(self, now: datetime, policy: LockoutPolicy) -> LoginState:
        """The state after a failed login (locks on the ``max_failures``-th in the window)."""
        if self.first_failure_at is None or now - self.first_failure_at > policy.window:
            failures, first = 1, now
        else:
            failures, first = self.failures + 1, self.first_failure_at
        locked_until = now + policy.lockout if failures >= policy.max_failures else None
        return LoginState(failures, first, locked_until)

    @staticmethod
    def succeeded() -> LoginState:
        """The state after a successful login."""
        return LoginState()
