"""Composition root of the admin service: settings, clients, the areas and their wiring.

The admin is built in areas, each with its domain, use cases (``service/``), adapters and API:
``audit`` (every change, searchable), ``operator`` (tenants, quotas, suspension, placement,
numbers, sites and nodes), ``identity`` (login, tokens, keys, JWKS, API-key exchange) and
``tenant`` (users, roles, groups, devices, API keys, settings, calendars).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from fastapi import FastAPI

from callmesh.admin.adapters import (
    bus_identity,
    bus_operator,
    bus_tenant,
    store_audit,
    store_identity,
    store_operator,
    store_tenant,
)
from callmesh.admin.api import audit as api_audit
from callmesh.admin.api import identity as api_identity
from callmesh.admin.api import operator as api_operator
from callmesh.admin.api import tenant as api_tenant
from callmesh.admin.service import identity as service_identity
from callmesh.admin.service import operator as service_operator
from callmesh.admin.service import tenant as service_tenant
from callmesh.admin.service.audit import Auditor
from callmesh.admin.service.context import AdminContext, utc_now
from callmesh.admin.settings import AdminSettings
from callmesh.core.bus import Subscription
from callmesh.core.runtime import RequestRoute, Runtime, ServiceDefinition

__all__ = ["AdminSettings", "build"]


def build(settings: AdminSettings, *, clock: Callable[[], datetime] = utc_now) -> ServiceDefinition:
    """The service as the runtime runs it (tests pass their own clock)."""
    ctx = AdminContext(settings, clock)
    calendar_state: list[bus_tenant.CalendarStateServer] = []

    async def start(runtime: Runtime) -> None:
        ctx.provide(runtime)
        ctx.provide(Auditor(store_audit.MongoAuditLog(runtime.store.operator()), ctx.clock))
        await service_operator.start(ctx, runtime)
        await service_identity.start(ctx, runtime)
        await service_tenant.start(ctx, runtime)
        server = bus_tenant.CalendarStateServer(ctx, runtime)
        calendar_state.append(server)
        await server.start(runtime)

    async def stop(runtime: Runtime) -> None:
        for server in calendar_state:
            await server.stop(runtime)

    def requests(runtime: Runtime) -> list[RequestRoute]:
        return [
            *bus_operator.requests(ctx, runtime),
            *bus_identity.requests(ctx, runtime),
            *bus_tenant.requests(ctx, runtime),
        ]

    def subscriptions(runtime: Runtime) -> list[Subscription]:
        return [
            *bus_operator.subscriptions(ctx, runtime),
            *bus_identity.subscriptions(ctx, runtime),
            *bus_tenant.subscriptions(ctx, runtime),
        ]

    def configure(app: FastAPI, runtime: Runtime) -> None:
        app.state.admin_context = ctx
        api_identity.configure_app(app, runtime, ctx)

    return ServiceDefinition(
        name="admin",
        settings=settings,
        collections=(
            *store_audit.COLLECTIONS,
            *store_operator.COLLECTIONS,
            *store_identity.COLLECTIONS,
            *store_tenant.COLLECTIONS,
        ),
        routers=(
            *api_audit.routers(ctx),
            *api_operator.routers(ctx),
            *api_identity.routers(ctx),
            *api_tenant.routers(ctx),
        ),
        on_start=[start],
        on_stop=[stop],
        requests=requests,
        subscriptions=subscriptions,
        operator_access=True,
        configure_app=configure,
    )
