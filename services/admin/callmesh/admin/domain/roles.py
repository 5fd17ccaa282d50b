"""Roles in a tenant: which roles exist, what each grants after overrides, who may grant which."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from callmesh.admin.domain.common import Actor, ActorKind
from callmesh.core.errors import Forbidden, InvalidInput, NotFound
from callmesh.core.permissions import (
    DEFAULT_ROLE_PERMISSIONS,
    TENANT_ROLES,
    Permission,
    Role,
    parse_permissions,
)

TENANT_ROLE_NAMES: frozenset[str] = frozenset(r.value for r in TENANT_ROLES)
# A tenant_admin must keep these: without them nobody in the tenant could give them back, and
# only an operator could repair the tenant's administration.
ADMIN_KEEPS: frozenset[Permission] = frozenset({Permission.ROLES_WRITE, Permission.USERS_WRITE})


def tenant_role(name: str) -> Role:
    """The tenant role of that name; NotFound for anything else (``operator`` included)."""
    if name not in TENANT_ROLE_NAMES:
        raise NotFound(f"no role {name[:64]!r}", role=name[:64])
    return Role(name)


def parse_tenant_roles(names: Iterable[str], field: str = "roles") -> tuple[Role, ...]:
    """Roles a tenant's user or key may hold, deduplicated in order; errors name ``field[i]``."""
    if isinstance(names, str | bytes):
        raise InvalidInput(field, "must be a list of role names, not a single string")
    rule = f"must be one of: {', '.join(r.value for r in TENANT_ROLES)}"
    seen: list[Role] = []
    for index, name in enumerate(names):
        if name == Role.OPERATOR:
            raise InvalidInput(
                f"{field}[{index}]", "operator is not a tenant role (operators are not users)"
            )
        if not isinstance(name, str) or name not in TENANT_ROLE_NAMES:
            shown = repr(name[:64]) if isinstance(name, str) else "(not a string)"
            raise InvalidInput(
                f"{field}[{index}]", rule, f"{field}[{index}]: unknown role {shown}; {rule}"
            )
        if Role(name) not in seen:
            seen.append(Role(name))
    return tuple(seen)


def check_override(
    role: Role, names: Iterable[str], field: str = "permissions"
) -> frozenset[Permission]:
    """The permission set a tenant gives a role, checked; tenant_admin must keep ``ADMIN_KEEPS``."""
    permissions = parse_permissions(names, field)
    if role is Role.TENANT_ADMIN:
        missing = sorted(p.value for p in ADMIN_KEEPS - permissions)
        if missing:
            raise InvalidInput(
                field,
                f"tenant_admin must keep {', '.join(sorted(p.value for p in ADMIN_KEEPS))}",
                f"{field}: tenant_admin must keep {', '.join(missing)} "
                "(the tenant would lock itself out of its own administration)",
            )
    return permissions


@dataclass(frozen=True)
class RoleOverride:
    """A tenant's own permission set for one role (replacing the role's default set)."""

    tenant_id: str
    role: Role
    permissions: frozenset[Permission]
    updated_at: datetime

    @property
    def record_id(self) -> str:
        """The document id: per tenant, since every tenant may override the same role names."""
        return f"{self.tenant_id}:{self.role.value}"

    def record(self) -> dict[str, Any]:
        """The stored document (``roles`` collection)."""
        return {
            "_id": self.record_id,
            "tenant_id": self.tenant_id,
            "role": self.role.value,
            "permissions": sorted(p.value for p in self.permissions),
            "updated_at": self.updated_at,
        }

    @classmethod
    def from_record(cls, doc: Mapping[str, Any]) -> RoleOverride:
        """Read a stored document (unknown permission names, from a newer admin, are skipped)."""
        known = {p.value for p in Permission}
        return cls(
            tenant_id=doc["tenant_id"],
            role=Role(doc["role"]),
            permissions=frozenset(Permission(p) for p in doc["permissions"] if p in known),
            updated_at=doc["updated_at"],
        )


@dataclass(frozen=True)
class RoleView:
    """A role as a tenant sees it: what it grants now, and whether the tenant changed that."""

    role: Role
    permissions: frozenset[Permission]
    defaults: frozenset[Permission]
    overridden: bool
    updated_at: datetime | None = None


def role_views(overrides: Mapping[Role, RoleOverride]) -> list[RoleView]:
    """Every tenant role with its effective permissions, in the vocabulary's order."""
    views: list[RoleView] = []
    for role in TENANT_ROLES:
        override = overrides.get(role)
        defaults = DEFAULT_ROLE_PERMISSIONS[role]
        views.append(
            RoleView(
                role=role,
                permissions=override.permissions if override else defaults,
                defaults=defaults,
                overridden=override is not None,
                updated_at=override.updated_at if override else None,
            )
        )
    return views


def grantable_roles(actor: Actor) -> frozenset[Role]:
    """Roles an actor may give to users and keys: all for operators and tenant admins, else its own.

    Without this, anyone given ``users.write`` or ``api_keys.write`` by a role override could
    mint themselves a tenant_admin.
    """
    if actor.kind is ActorKind.OPERATOR or actor.kind is ActorKind.SYSTEM:
        return frozenset(TENANT_ROLES)
    if Role.TENANT_ADMIN.value in actor.roles:
        return frozenset(TENANT_ROLES)
    return frozenset(Role(r) for r in actor.roles if r in TENANT_ROLE_NAMES)


def check_grant(actor: Actor, roles: Iterable[Role], field: str = "roles") -> None:
    """Refuse (403) roles the actor may not grant, naming the first one."""
    allowed = grantable_roles(actor)
    for index, role in enumerate(roles):
        if role not in allowed:
            raise Forbidden(
                f"{field}[{index}]: you cannot grant the role {role.value} (you do not hold it)",
                field=f"{field}[{index}]",
                role=role.value,
            )


def check_may_manage(actor: Actor, held: Iterable[str], what: str) -> None:
    """Refuse (403) changing a user or key that holds a role the actor could not grant."""
    allowed = {r.value for r in grantable_roles(actor)}
    above = sorted(set(held) - allowed)
    if above:
        raise Forbidden(
            f"you cannot change {what}: it holds roles you cannot grant ({', '.join(above)})",
            roles=above,
        )
