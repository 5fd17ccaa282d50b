"""Bus adapters of the tenant area (being built): requests answered, events consumed."""

from __future__ import annotations

from callmesh.admin.service.context import AdminContext
from callmesh.core.bus import Subscription
from callmesh.core.runtime import RequestRoute, Runtime


def requests(ctx: AdminContext, runtime: Runtime) -> list[RequestRoute]:
    """Request/reply subjects this area answers."""
    return []


def subscriptions(ctx: AdminContext, runtime: Runtime) -> list[Subscription]:
    """Events this area consumes."""
    return []
