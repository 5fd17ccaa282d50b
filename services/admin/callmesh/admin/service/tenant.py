"""The tenant use cases (being built)."""

from __future__ import annotations

from callmesh.admin.service.context import AdminContext
from callmesh.core.runtime import Runtime


async def start(ctx: AdminContext, runtime: Runtime) -> None:
    """Build this area's use cases on the connected runtime and provide them in ``ctx``."""
