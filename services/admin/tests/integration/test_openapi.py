"""Schemathesis against the whole admin API as it serves its OpenAPI document: generated
requests, valid and invalid, to every operation of a real admin on a real port get no server
error, and every answer (status, content type, body) matches the document."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, Phase
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from callmesh.admin.adapters.keys import Argon2Passwords
from callmesh.admin.adapters.store_audit import MongoAuditLog
from callmesh.admin.adapters.store_identity import MongoOperators
from callmesh.admin.app import AdminSettings, build
from callmesh.admin.domain.common import Actor
from callmesh.admin.domain.identity import PasswordPolicy
from callmesh.admin.service.audit import Auditor
from callmesh.admin.service.context import utc_now
from callmesh.admin.service.identity import Operators
from callmesh.core.runtime import Runtime, create_app
from callmesh.core.servers import free_port
from callmesh.core.settings import PlatformSettings

PASSWORD = "Operator-Pass-99"
EXAMPLES = 10
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Sent without our token: logging out would revoke it for the rest of the run.
ANONYMOUS = {"/v1/auth/logout"}


def fuzz(document: dict[str, Any], base_url: str, token: str) -> tuple[int, list[str]]:
    """Every operation, valid then invalid requests; how many operations, and the failures."""
    schema = schemathesis.openapi.from_dict(document)
    failures: list[str] = []
    count = 0
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]
        count += 1
        headers = None if operation.path in ANONYMOUS else {"Authorization": f"Bearer {token}"}
        # Tenant routes on a tenant that exists (an operator passes every tenant's guards), so
        # generated requests reach the handlers rather than stopping at "unknown tenant".
        path_parameters = {"tenant": "acme"} if operation.path.startswith("/v1/t/") else None
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                examples(operation, mode, base_url, headers, path_parameters)()
            except Unsatisfiable:
                continue  # nothing of the request can be made invalid (no parameters, no body)
            except Exception as err:
                failures.append(f"{operation.label} ({mode.value}): {err}")
    return count, failures


def examples(
    operation: Any,
    mode: GenerationMode,
    base_url: str,
    headers: dict[str, str] | None,
    path_parameters: dict[str, str] | None,
) -> Any:
    """A hypothesis test sending one operation's generated requests."""
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)

    @hypothesis.settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis.given(case=strategy)
    def run(case: Any) -> None:
        case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS)

    return run


@pytest.mark.slow
async def test_every_admin_operation_answers_per_its_schema_and_never_fails(
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
        operator_store = runtime.store.operator()
        await Operators(
            MongoOperators(operator_store),
            Argon2Passwords(),
            Auditor(MongoAuditLog(operator_store), utc_now),
            utc_now,
            PasswordPolicy(),
        ).create(Actor.system("test"), username="root", password=PASSWORD)
        base_url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
            login = await http.post(
                "/v1/auth/login", json={"username": "root", "password": PASSWORD}
            )
            assert login.status_code == 200, login.text
            token = login.json()["access_token"]
            auth = {"Authorization": f"Bearer {token}"}
            # Real things, so generated requests also meet existing ones.
            created = await http.post(
                "/v1/operator/tenants",
                json={"slug": "acme", "name": "Acme", "language": "en", "time_zone": "UTC"},
                headers=auth,
            )
            assert created.status_code == 201, created.text
            for path, body in (
                ("/v1/operator/sites", {"site_id": "paris", "name": "Paris"}),
                ("/v1/t/acme/users", {"username": "ann"}),
                ("/v1/t/acme/devices", {"username": "1001"}),
            ):
                made = await http.post(path, json=body, headers=auth)
                assert made.status_code == 201, made.text
            document = (await http.get("/openapi.json")).json()
        count, failures = await asyncio.to_thread(fuzz, document, base_url, token)
        assert count >= 80, f"the document lists only {count} operations"
        assert failures == []
    finally:
        server.should_exit = True
        await serving
