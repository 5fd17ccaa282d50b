"""A tenant's users: the stored record (shared with identity), field rules, the last-admin rule."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from callmesh.admin.domain.identity import LoginState
from callmesh.core.errors import Conflict, DomainError, InvalidInput
from callmesh.core.permissions import Role

USER_PREFIX = "usr"
MAX_GROUPS = 100


def check_group_refs(groups: Sequence[str], field_name: str = "groups") -> tuple[str, ...]:
    """Group ids of a user, deduplicated in order (their existence is checked by the use case)."""
    if len(groups) > MAX_GROUPS:
        raise InvalidInput(field_name, f"must hold at most {MAX_GROUPS} groups")
    return tuple(dict.fromkeys(groups))


@dataclass(frozen=True)
class User:
    """A tenant's user as stored (identity reads the same record to log people in)."""

    user_id: str
    tenant_id: str
    username: str
    display_name: str
    created_at: datetime
    updated_at: datetime
    email: str | None = None
    roles: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    password_hash: str | None = None
    password_changed_at: datetime | None = None
    must_change_password: bool = False
    disabled: bool = False
    login: LoginState = field(default_factory=LoginState)
    last_login_at: datetime | None = None
    version: int = 1

    @property
    def active_admin(self) -> bool:
        """Whether this user is a tenant admin who can log in (counts for the last-admin rule)."""
        return not self.disabled and Role.TENANT_ADMIN.value in self.roles

    def changed(self, now: datetime, **changes: Any) -> User:
        """A new version of the user with ``changes``."""
        return replace(self, **changes, updated_at=now, version=self.version + 1)

    def record(self) -> dict[str, Any]:
        """The stored document (``users`` collection): the contract with the identity area."""
        return {
            "_id": self.user_id,
            "tenant_id": self.tenant_id,
            "username": self.username,
            "display_name": self.display_name,
            "email": self.email,
            "roles": list(self.roles),
            "groups": list(self.groups),
            "password_hash": self.password_hash,
            "password_changed_at": self.password_changed_at,
            "must_change_password": self.must_change_password,
            "disabled": self.disabled,
            "login": {
                "failures": self.login.failures,
                "first_failure_at": self.login.first_failure_at,
                "locked_until": self.login.locked_until,
            },
            "last_login_at": self.last_login_at,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "version": self.version,
        }

    @classmethod
    def from_record(cls, doc: Mapping[str, Any]) -> User:
        """Read a stored document."""
        login = doc.get("login") or {}
        return cls(
            user_id=doc["_id"],
            tenant_id=doc["tenant_id"],
            username=doc["username"],
            display_name=doc.get("display_name") or doc["username"],
            email=doc.get("email"),
            roles=tuple(doc.get("roles") or ()),
            groups=tuple(doc.get("groups") or ()),
            password_hash=doc.get("password_hash"),
            password_changed_at=doc.get("password_changed_at"),
            must_change_password=bool(doc.get("must_change_password", False)),
            disabled=bool(doc.get("disabled", False)),
            login=LoginState(
                failures=int(login.get("failures") or 0),
                first_failure_at=login.get("first_failure_at"),
                locked_until=login.get("locked_until"),
            ),
            last_login_at=doc.get("last_login_at"),
            created_at=doc["created_at"],
            updated_at=doc["updated_at"],
            version=int(doc.get("version", 1)),
        )


def check_keeps_an_admin(before: User, after: User | None, other_active_admins: int) -> None:
    """Refuse (409) a change that would leave the tenant without an active tenant admin."""
    if not before.active_admin or (after is not None and after.active_admin):
        return
    if other_active_admins == 0:
        what = "delete" if after is None else "disable" if after.disabled else "demote"
        raise Conflict(
            f"cannot {what} {before.username}: the last active tenant admin of the tenant",
            reason="last_admin",
            user_id=before.user_id,
        )


class VersionMismatch(DomainError):
    """``If-Match`` named another version than the stored one: someone changed it meanwhile."""

    code = "version_mismatch"
    status = 412


class VersionRequired(DomainError):
    """The change must name the version it was made from (``If-Match``)."""

    code = "precondition_required"
    status = 428


def check_version(expected: int | None, current: int, *, required: bool = False) -> None:
    """Refuse a change made from another version than ``current`` (412), or from none (428)."""
    if expected is None:
        if required:
            raise VersionRequired(
                "send If-Match with the ETag of the resource you changed", current=current
            )
        return
    if expected != current:
        raise VersionMismatch(
            f"the resource changed meanwhile (now version {current}, you sent {expected})",
            current=current,
        )


def parse_version(if_match: str | None) -> int | None:
    """The version an ``If-Match`` header names (``"3"``, ``W/"3"`` or ``3``); None if absent."""
    if if_match is None:
        return None
    text = if_match.strip()
    text = text.removeprefix("W/").strip('"')
    if not text.isdigit() or len(text) > 12:
        raise InvalidInput("If-Match", 'must be the ETag of the resource (e.g. "3")')
    return int(text)
