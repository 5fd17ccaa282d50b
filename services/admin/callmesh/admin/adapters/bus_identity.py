"""Bus adapters of the identity area: none on purpose.

Other services need nothing from identity over the bus: they verify tokens locally with the
keys of the JWKS endpoint (``callmesh.core.auth.JwksKeys``) and learn of logouts from the
``revocations`` KV bucket (``RevocationList``), which identity writes. A deleted tenant's
sessions die at their next refresh (the tenant gate is consulted there), so no tenant event is
consumed either.
"""

from __future__ import annotations

from callmesh.admin.service.context import AdminContext
from callmesh.core.bus import Subscription
from callmesh.core.runtime import RequestRoute, Runtime


def requests(ctx: AdminContext, runtime: Runtime) -> list[RequestRoute]:
    """Request/reply subjects this area answers (none)."""
    return []


def subscriptions(ctx: AdminContext, runtime: Runtime) -> list[Subscription]:
    """Events this area consumes (none)."""
    return []
