"""Schemathesis against the acd API as it serves its OpenAPI document: generated requests, valid
and invalid, to every tenant operation of a real acd app on a real port get no server error, and
every answer (status, content type, body) matches the document."""

from __future__ import annotations

import asyncio
from typing import Any

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

from callmesh.acd.adapters import config_store
from callmesh.acd.domain.config import AgentProfile, GroupConfig, QueueConfig, TenantAcdConfig
from callmesh.core.bus import Bus
from callmesh.core.servers import free_port
from callmesh.core.settings import PlatformSettings

from .acd_api import A, activate, make_app, owner_of, wait_started

EXAMPLES = 10
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Existing items, so generated requests also meet them.
PARAMETERS = {
    "tenant": A,
    "skill_id": "french",
    "queue_id": "sales",
    "agent_id": "ag-1",
    "group_id": "team-a",
    "number": "+1555",
}


def fuzz(document: dict[str, Any], base_url: str, token: str) -> tuple[int, list[str]]:
    """Every tenant operation, valid then invalid requests; how many operations, the failures."""
    schema = schemathesis.openapi.from_dict(document)
    failures: list[str] = []
    count = 0
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]
        if not operation.path.startswith("/v1/t/{tenant}/"):
            continue
        count += 1
        headers = {"Authorization": f"Bearer {token}"}
        wanted = {k: v for k, v in PARAMETERS.items() if "{" + k + "}" in operation.path}
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                examples(operation, mode, base_url, headers, wanted)()
            except Unsatisfiable:
                continue
            except Exception as err:
                failures.append(f"{operation.label} ({mode.value}): {err}")
    return count, failures


def examples(
    operation: Any,
    mode: GenerationMode,
    base_url: str,
    headers: dict[str, str],
    path_parameters: dict[str, str],
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
async def test_every_acd_operation_answers_per_its_schema_and_never_fails(
    platform_settings: PlatformSettings, bus: Bus
) -> None:
    runtime, app, issuer = make_app(platform_settings)
    await activate(bus, A)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", log_config=None)
    )
    serving = asyncio.create_task(server.serve())
    try:
        await wait_started(runtime, A)
        await owner_of(bus)
        await config_store.save_tenant_config(await runtime.store.tenant(A), existing())
        token = issuer.issue("op-1", operator=True)
        base_url = f"http://127.0.0.1:{port}"
        document = app.openapi()
        count, failures = await asyncio.to_thread(fuzz, document, base_url, token)
        assert count == 35
        assert failures == []
    finally:
        server.should_exit = True
        await serving


def existing() -> TenantAcdConfig:
    """The items the path parameters name."""
    return TenantAcdConfig(
        tenant_id=A,
        queues={"sales": QueueConfig(queue_id="sales", skill="french")},
        agents={
            "ag-1": AgentProfile(
                agent_id="ag-1", endpoint="user:1001", skills={"french": 3}, groups=("team-a",)
            )
        },
        groups={"team-a": GroupConfig("team-a", max_on_break=1)},
        vip={"+1555": 3},
        routing_table={"+1555": "ag-1"},
    )
