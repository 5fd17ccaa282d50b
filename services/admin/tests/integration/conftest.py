"""The admin as it runs in production, in-process, for the integration tests of every area."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI

from callmesh.admin.app import AdminSettings, build
from callmesh.admin.service.context import AdminContext, utc_now
from callmesh.core.auth import StaticKeys, TokenIssuer, TokenVerifier
from callmesh.core.runtime import Runtime, create_app

TEST_KID = "test"


@dataclass
class RunningAdmin:
    """A started admin: its app, runtime, context, an HTTP client, and a test token issuer."""

    app: FastAPI
    runtime: Runtime
    ctx: AdminContext
    http: httpx.AsyncClient
    issuer: TokenIssuer | None


@contextlib.asynccontextmanager
async def running_admin(
    settings: AdminSettings,
    *,
    clock: Callable[[], datetime] = utc_now,
    trust: Ed25519PrivateKey | None = None,
    base_url: str = "http://admin",
) -> AsyncIterator[RunningAdmin]:
    """Start the admin app (lifespan and all) and serve it over ASGI until the block ends.

    With ``trust``, the app verifies tokens signed by that key (a test issuer) instead of the
    identity area's own keys, so a test can mint any principal it needs.
    """
    runtime = Runtime(build(settings, clock=clock))
    app = create_app(runtime)
    ctx: AdminContext = app.state.admin_context
    issuer = None
    if trust is not None:
        platform = settings.platform
        issuer = TokenIssuer(trust, TEST_KID, platform.jwt_issuer, platform.jwt_audience)
        app.state.token_verifier = TokenVerifier(
            StaticKeys({TEST_KID: trust.public_key()}),
            issuer=platform.jwt_issuer,
            audience=platform.jwt_audience,
            revocations=runtime.revocations,
        )
    async with app.router.lifespan_context(app):
        deadline = time.monotonic() + 60
        while not runtime.started.is_set():
            assert runtime.start_error is None, runtime.start_error
            assert time.monotonic() < deadline, "admin did not start"
            await asyncio.sleep(0.02)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as http:
            yield RunningAdmin(app, runtime, ctx, http, issuer)


@pytest.fixture
def run_admin() -> Any:
    """``running_admin`` for the tests (conftest functions are reached through fixtures)."""
    return running_admin
