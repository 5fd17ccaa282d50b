"""Schemathesis against the operator area's endpoints of the real admin (served by uvicorn on a
port): no 500s, and every response matches the OpenAPI schema."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import hypothesis
import schemathesis
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.openapi.utils import get_openapi
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from callmesh.admin.api import operator as api_operator
from callmesh.admin.app import AdminSettings, build
from callmesh.admin.service.context import AdminContext
from callmesh.core.auth import StaticKeys, TokenIssuer, TokenVerifier
from callmesh.core.runtime import Runtime, create_app
from callmesh.core.servers import free_port
from callmesh.core.settings import PlatformSettings

EXAMPLES = 15
KID = "schema-test"


def fuzz(schema: dict[str, Any], base_url: str, token: str) -> list[str]:
    """Run generated requests (valid, then invalid) against every operation; the failures."""
    loaded = schemathesis.openapi.from_dict(schema)
    failures: list[str] = []
    # An operator token passes every guard (operators hold every permission on every tenant),
    # so the generated requests reach the handlers.
    headers = {"Authorization": f"Bearer {token}"}
    for result in loaded.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                examples(operation, mode, base_url, headers)()
            except Exception as err:
                failures.append(f"{operation.label} ({mode.value}): {err}")
    return failures


def examples(operation: Any, mode: GenerationMode, base_url: str, headers: dict[str, str]) -> Any:
    """A hypothesis test sending one operation's generated requests."""

    @hypothesis.settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        case.call_and_validate(
            base_url=base_url,
            headers=headers,
            checks=[
                not_a_server_error,
                status_code_conformance,
                content_type_conformance,
                response_schema_conformance,
            ],
        )

    return run


async def test_operator_endpoints_never_fail_and_always_answer_per_their_schema(
    platform_settings: PlatformSettings,
) -> None:
    runtime = Runtime(build(AdminSettings(platform=platform_settings)))
    app = create_app(runtime)
    key = Ed25519PrivateKey.generate()
    issuer = TokenIssuer(key, KID, platform_settings.jwt_issuer, platform_settings.jwt_audience)
    app.state.token_verifier = TokenVerifier(
        StaticKeys({KID: key.public_key()}),
        issuer=platform_settings.jwt_issuer,
        audience=platform_settings.jwt_audience,
        revocations=runtime.revocations,
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", log_config=None)
    )
    serving = asyncio.create_task(server.serve())
    try:
        deadline = time.monotonic() + 60
        while not runtime.started.is_set():
            assert runtime.start_error is None, runtime.start_error
            assert time.monotonic() < deadline, "admin did not start"
            await asyncio.sleep(0.05)
        token = issuer.issue("op-1", operator=True)
        base_url = f"http://127.0.0.1:{port}"
        # One real tenant, site and node, so generated requests also meet existing things.
        async with httpx.AsyncClient(
            base_url=base_url, headers={"Authorization": f"Bearer {token}"}
        ) as http:
            created = await http.post(
                "/v1/operator/tenants",
                json={"slug": "acme", "name": "Acme", "language": "en", "time_zone": "UTC"},
            )
            assert created.status_code == 201, created.text
            await http.post("/v1/operator/sites", json={"site_id": "paris", "name": "Paris"})
        routers = api_operator.routers(AdminContext(runtime.settings))
        routes = [route for router in routers for route in router.routes]
        schema = get_openapi(title="callmesh admin: operator", version="1", routes=routes)
        assert len(schema["paths"]) == 22

        failures = await asyncio.to_thread(fuzz, schema, base_url, token)
        assert failures == []
    finally:
        server.should_exit = True
        await serving
