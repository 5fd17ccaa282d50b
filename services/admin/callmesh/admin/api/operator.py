"""The operator API (being built)."""

from __future__ import annotations

from fastapi import APIRouter

from callmesh.admin.service.context import AdminContext


def routers(ctx: AdminContext) -> list[APIRouter]:
    """This area's routers."""
    return []
