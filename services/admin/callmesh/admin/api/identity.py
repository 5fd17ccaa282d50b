"""The identity API (being built)."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from callmesh.admin.service.context import AdminContext
from callmesh.core.runtime import Runtime


def routers(ctx: AdminContext) -> list[APIRouter]:
    """This area's routers."""
    return []


def configure_app(app: FastAPI, runtime: Runtime, ctx: AdminContext) -> None:
    """Install what the app needs from identity (the admin verifies tokens with its own keys)."""
