"""What the ACD routers share: guards, the tenant's config admin, and talking to the owner."""

# No ``from __future__ import annotations``: FastAPI evaluates the routes' Annotated aliases.
import logging
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Path, Query, Request
from google.protobuf.message import Message

from callmesh.acd.adapters.config_admin import MAX_PAGE, AcdConfigAdmin
from callmesh.acd.api.models import ID_PATTERN, NUMBER_PATTERN
from callmesh.core.auth import Principal, require_permission
from callmesh.core.bus import Bus
from callmesh.core.errors import DomainError, RequestTimeout, Unavailable
from callmesh.core.http import PROBLEM_JSON, Problem
from callmesh.core.permissions import Permission
from callmesh.core.ratelimit import rate_limit
from callmesh.core.tenancy import tenant_writable
from callmesh.proto.subjects import AcdOp, Service
from callmesh.proto.v1.acd_pb2 import ConfigChanged, ConfigChangedReply

log = logging.getLogger(__name__)

R = TypeVar("R", bound=Message)

_PROBLEM: dict[str, Any] = {
    "model": Problem,
    "description": "a problem (problem+json): what went wrong, with its code",
    "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
}
ERRORS: dict[int | str, dict[str, Any]] = {"4XX": _PROBLEM, 503: _PROBLEM}

# How long a live view or a forced change waits for the owner; config_changed waits less.
OWNER_TIMEOUT_S = 5.0
NOTIFY_TIMEOUT_S = 2.0

limited = rate_limit()
Caller = Annotated[Principal, Depends(limited)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="page size")]
After = Annotated[
    str | None,
    Query(max_length=64, description="cursor: the `next` of the previous page"),
]
IdPath = Annotated[str, Path(pattern=ID_PATTERN, description="an id")]
NumberPath = Annotated[str, Path(pattern=NUMBER_PATTERN, description="a caller number")]


def guard(permission: Permission) -> list[Any]:
    """Who you are and that you may touch this tenant (403) within its rate, what you may do
    (403), then the tenant's state (404 unknown or deleted, 423 writes while suspended)."""
    return [
        Depends(limited),
        Depends(require_permission(permission)),
        Depends(tenant_writable),
    ]


async def admin_of(request: Request, tenant: Annotated[str, Path()]) -> AcdConfigAdmin:
    """The tenant's ACD config on the service's store."""
    return AcdConfigAdmin(await request.app.state.runtime.store.tenant(tenant))


def bus_of(request: Request) -> Bus:
    """The service's bus."""
    bus: Bus = request.app.state.runtime.bus
    return bus


Admin = Annotated[AcdConfigAdmin, Depends(admin_of)]
BusDep = Annotated[Bus, Depends(bus_of)]


async def ask_owner(bus: Bus, tenant: str, op: AcdOp, request: Message, reply: type[R]) -> R:
    """A request to the replica owning the tenant; 503 while nobody owns it or it is silent."""
    subject = bus.subjects.service_command(tenant, Service.ACD, op)
    try:
        return await bus.request(subject, request, reply, timeout=OWNER_TIMEOUT_S)
    except Unavailable:
        raise Unavailable(
            f"no acd replica serves tenant {tenant} right now; retry shortly",
            reason="no_owner",
            retry_after_s=1,
        ) from None
    except RequestTimeout:
        raise Unavailable(
            f"the acd owner of tenant {tenant} did not answer in time; retry shortly",
            reason="owner_timeout",
            retry_after_s=1,
        ) from None


async def config_changed(bus: Bus, tenant: str, *kinds: str) -> None:
    """Tell the owner to reload the tenant's config; nobody owning it is fine (it loads at
    lease gain), other failures are logged."""
    subject = bus.subjects.service_command(tenant, Service.ACD, AcdOp.CONFIG_CHANGED)
    try:
        await bus.request(
            subject, ConfigChanged(kinds=list(kinds)), ConfigChangedReply, timeout=NOTIFY_TIMEOUT_S
        )
    except Unavailable:
        log.info("config changed, no acd owner to tell", extra={"tenant_id": tenant})
    except DomainError as err:
        log.warning(
            "config changed, the acd owner was not told",
            extra={"tenant_id": tenant, "error": repr(err)},
        )
