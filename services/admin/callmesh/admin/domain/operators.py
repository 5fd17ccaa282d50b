"""Operators: the platform's administrators, their stored record and the last-operator rule."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from callmesh.admin.domain.identity import LoginState
from callmesh.admin.domain.tokens import Account, AccountKind
from callmesh.core.errors import Conflict, DomainError
from callmesh.core.permissions import Role

OPERATOR_PREFIX = "opr"


class VersionMismatch(DomainError):
    """``If-Match`` named a version the operator no longer has (changed meanwhile)."""

    code = "version_mismatch"
    status = 412


def check_version(expected: int | None, current: int) -> None:
    """Refuse (412) a change made from another version than the stored one."""
    if expected is not None and expected != current:
        raise VersionMismatch(
            f"the operator changed meanwhile (now version {current}, you sent {expected})",
            current=current,
        )


@dataclass(frozen=True)
class Operator:
    """An operator as stored (platform collection ``operators``): a user of no tenant."""

    operator_id: str
    username: str
    display_name: str
    created_at: datetime
    updated_at: datetime
    email: str | None = None
    password_hash: str | None = None
    password_changed_at: datetime | None = None
    must_change_password: bool = False
    disabled: bool = False
    login: LoginState = field(default_factory=LoginState)
    last_login_at: datetime | None = None
    version: int = 1

    @property
    def active(self) -> bool:
        """Whether this operator can log in (counts for the last-operator rule)."""
        return not self.disabled and self.password_hash is not None

    def changed(self, now: datetime, **changes: Any) -> Operator:
        """A new version with ``changes``."""
        return replace(self, **changes, updated_at=now, version=self.version + 1)

    def account(self) -> Account:
        """The operator as login sees it."""
        return Account(
            kind=AccountKind.OPERATOR,
            account_id=self.operator_id,
            tenant_id=None,
            username=self.username,
            display_name=self.display_name,
            roles=(Role.OPERATOR.value,),
            password_hash=self.password_hash,
            disabled=self.disabled,
            must_change_password=self.must_change_password,
            login=self.login,
            version=self.version,
        )

    def record(self) -> dict[str, Any]:
        """The stored document: the fields of a tenant's user, minus tenant and groups."""
        return {
            "_id": self.operator_id,
            "username": self.username,
            "display_name": self.display_name,
            "email": self.email,
            "roles": [Role.OPERATOR.value],
            "password_hash": self.password_hash,
            "password_changed_at": self.password_changed_at,
            "must_change_password": self.must_change_password,
            "disabled": self.disabled,
            "login": login_record(self.login),
            "last_login_at": self.last_login_at,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "version": self.version,
        }

    @classmethod
    def from_record(cls, doc: Mapping[str, Any]) -> Operator:
        """Read a stored document."""
        return cls(
            operator_id=doc["_id"],
            username=doc["username"],
            display_name=doc.get("display_name") or doc["username"],
            email=doc.get("email"),
            password_hash=doc.get("password_hash"),
            password_changed_at=doc.get("password_changed_at"),
            must_change_password=bool(doc.get("must_change_password", False)),
            disabled=bool(doc.get("disabled", False)),
            login=login_from_record(doc.get("login")),
            last_login_at=doc.get("last_login_at"),
            created_at=doc["created_at"],
            updated_at=doc["updated_at"],
            version=int(doc.get("version", 1)),
        )


def login_record(state: LoginState) -> dict[str, Any]:
    """The ``login`` sub-document of a user or operator."""
    return {
        "failures": state.failures,
        "first_failure_at": state.first_failure_at,
        "locked_until": state.locked_until,
    }


def login_from_record(doc: Mapping[str, Any] | None) -> LoginState:
    """Read a ``login`` sub-document (absent: no failures)."""
    doc = doc or {}
    return LoginState(
        failures=int(doc.get("failures") or 0),
        first_failure_at=doc.get("first_failure_at"),
        locked_until=doc.get("locked_until"),
    )


def check_keeps_an_operator(before: Operator, after: Operator | None, others_active: int) -> None:
    """Refuse (409) a change that would leave the platform without an active operator.

    Nobody could then create one through the API (operators create operators): recovery would
    need database access and ``callmesh admin create-operator --force-additional``.
    """
    if not before.active or (after is not None and after.active):
        return
    if others_active == 0:
        what = "delete" if after is None else "disable"
        raise Conflict(
            f"cannot {what} {before.username}: the last active operator of the platform",
            reason="last_operator",
            operator_id=before.operator_id,
        )
