"""Schemathesis against the identity endpoints of the real admin (served by uvicorn on a port):
no 500s, and every response matches the OpenAPI schema."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import hypothesis
import schemathesis
import uvicorn
from fastapi.openapi.utils import get_openapi
from hypothesis import HealthCheck, Phase
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Ok

from callmesh.admin.adapters.keys import Argon2Passwords
from callmesh.admin.adapters.store_audit import MongoAuditLog
from callmesh.admin.adapters.store_identity import MongoOperators
from callmesh.admin.api import identity as api_identity
from callmesh.admin.app import AdminSettings, build
from callmesh.admin.domain.common import Actor
from callmesh.admin.domain.identity import PasswordPolicy
from callmesh.admin.service.audit import Auditor
from callmesh.admin.service.context import AdminContext, utc_now
from callmesh.admin.service.identity import Operators
from callmesh.core.runtime import Runtime, create_app
from callmesh.core.servers import free_port
from callmesh.core.settings import PlatformSettings
from callmesh.core.tenancy import TenantInfo, TenantStatus
from callmesh.proto.subjects import Bucket

PASSWORD = "Operator-Pass-99"
EXAMPLES = 20


def fuzz(schema: dict[str, Any], base_url: str, operator_token: str) -> list[str]:
    """Run generated requests against every operation; the failures, described."""
    loaded = schemathesis.openapi.from_dict(schema)
    failures: list[str] = []
    for result in loaded.get_all_operations():
        if not isinstance(result, Ok):
            failures.append(f"an operation cannot be read: {result.err()}")
            continue
        operation = result.ok()
        # Operator routes get a real operator token (their checks must be passed to be tested
        # at all); the others get whatever the generator makes.
        headers = (
            {"Authorization": f"Bearer {operator_token}"}
            if operation.path.startswith("/v1/operator")
            else None
        )
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                examples(operation, mode, base_url, headers)()
            except Unsatisfiable:
                continue  # nothing to get wrong in a request without parameters (the JWKS)
            except Exception as err:
                failures.append(f"{operation.label} ({mode.value}): {err}")
    return failures


def examples(
    operation: Any, mode: GenerationMode, base_url: str, headers: dict[str, str] | None
) -> Any:
    """A hypothesis test sending one operation's generated requests (valid, or invalid)."""

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


async def test_identity_endpoints_never_fail_and_always_answer_per_their_schema(
    platform_settings: PlatformSettings,
) -> None:
    runtime = Runtime(build(AdminSettings(platform=platform_settings)))
    app = create_app(runtime)
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
        kv = await runtime.bus.kv(Bucket.TENANTS)
        await kv.put("acme", TenantInfo("acme", TenantStatus.ACTIVE).to_json())
        platform = runtime.store.operator()
        await Operators(
            MongoOperators(platform),
            Argon2Passwords(),
            Auditor(MongoAuditLog(platform), utc_now),
            utc_now,
            PasswordPolicy(),
        ).create(Actor.system("test"), username="root", password=PASSWORD)
        base_url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base_url) as http:
            login = await http.post(
                "/v1/auth/login", json={"username": "root", "password": PASSWORD}
            )
            assert login.status_code == 200, login.text
        token = login.json()["access_token"]
        # The identity routers as the app has them (built afresh: only their schema is used).
        routers = api_identity.routers(AdminContext(runtime.settings))
        routes = [route for router in routers for route in router.routes]
        schema = get_openapi(title="callmesh admin: identity", version="1", routes=routes)
        assert len(schema["paths"]) == 12

        failures = await asyncio.to_thread(fuzz, schema, base_url, token)
        assert failures == []
    finally:
        server.should_exit = True
        await serving
