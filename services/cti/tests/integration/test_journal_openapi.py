"""Schemathesis against cti's call journal API as it serves its OpenAPI document: generated
requests, valid and invalid, to the calls operations of a real cti on a real port get no server
error, and every answer (status, content type, body) matches the document."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import hypothesis
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, Phase
from hypothesis.errors import Unsatisfiable
from prometheus_client import REGISTRY
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from callmesh.core.auth import StaticKeys, TokenIssuer, TokenVerifier, generate_signing_key
from callmesh.core.bus import Bus
from callmesh.core.runtime import Runtime, create_app
from callmesh.core.servers import free_port
from callmesh.core.settings import PlatformSettings
from callmesh.core.tenancy import TenantInfo, TenantStatus
from callmesh.cti.adapters.journal_store import MongoCallJournal
from callmesh.cti.app import CtiSettings, build
from callmesh.cti.domain.journal import Fact, FactKind
from callmesh.proto.subjects import Bucket

EXAMPLES = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def fuzz(document: dict[str, Any], base_url: str, token: str) -> tuple[int, list[str]]:
    """Every calls operation, valid then invalid requests; how many operations, the failures."""
    schema = schemathesis.openapi.from_dict(document)
    failures: list[str] = []
    count = 0
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]
        if not operation.path.startswith("/v1/t/{tenant}/calls"):
            continue
        count += 1
        headers = {"Authorization": f"Bearer {token}"}
        for params in ({"tenant": "acme"}, {"tenant": "acme", "call_id": "c-1"}):
            wanted = {k: v for k, v in params.items() if "{" + k + "}" in operation.path}
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                try:
                    examples(operation, mode, base_url, headers, wanted)()
                except Unsatisfiable:
                    continue
                except Exception as err:
                    failures.append(f"{operation.label} ({mode.value}, {wanted}): {err}")
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
async def test_every_calls_operation_answers_per_its_schema_and_never_fails(
    platform_settings: PlatformSettings, bus: Bus
) -> None:
    platform = platform_settings.model_copy(update={"api_rate_per_s": 1e6, "api_burst": 10**6})
    runtime = Runtime(build(CtiSettings(platform=platform, esl_enabled=False)))
    app = create_app(runtime)
    key = generate_signing_key()
    issuer = TokenIssuer(key, "test", platform.jwt_issuer, platform.jwt_audience)
    app.state.token_verifier = TokenVerifier(
        StaticKeys({"test": key.public_key()}),
        issuer=platform.jwt_issuer,
        audience=platform.jwt_audience,
        revocations=runtime.revocations,
    )
    kv = await bus.kv(Bucket.TENANTS)
    await kv.put("acme", TenantInfo("acme", TenantStatus.ACTIVE).to_json())
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", log_config=None)
    )
    serving = asyncio.create_task(server.serve())
    try:
        deadline = time.monotonic() + 60
        while not (runtime.started.is_set() and runtime.tenant_gate.is_active("acme")):
            assert runtime.start_error is None, runtime.start_error
            assert time.monotonic() < deadline, "cti did not start"
            await asyncio.sleep(0.05)
        # A real call, so generated requests also meet an existing one.
        journal = MongoCallJournal(runtime.store)
        for fact in a_call():
            await journal.apply("acme", "c-1", fact)
        document = app.openapi()
        token = issuer.issue("op-1", operator=True)
        count, failures = await asyncio.to_thread(fuzz, document, f"http://127.0.0.1:{port}", token)
        assert count == 2
        assert failures == []
        assert served("/v1/t/{tenant}/calls") >= EXAMPLES
        assert served("/v1/t/{tenant}/calls/{call_id}") >= EXAMPLES
    finally:
        server.should_exit = True
        await serving


def served(route: str) -> float:
    """How many requests the app answered on a route template."""
    total = 0.0
    for metric in REGISTRY.collect():
        if metric.name == "callmesh_http_requests":
            for sample in metric.samples:
                if sample.name.endswith("_total") and sample.labels["route"] == route:
                    total += sample.value
    return total


def a_call() -> list[Fact]:
    """An answered inbound call with a queue stay, an offer, a hold and a recording."""
    t0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    rows: list[tuple[float, FactKind, dict[str, Any]]] = [
        (0, FactKind.CALL_CREATED, {"channel_uuid": "a", "direction": "inbound",
                                    "role": "customer", "caller_number": "+1555",
                                    "variables": {"callmesh_tenant": "acme"}}),
        (0, FactKind.CALL_ANSWERED, {"channel_uuid": "a"}),
        (1, FactKind.IVR_NODE_ENTERED, {"flow_id": "main", "node_id": "menu"}),
        (2, FactKind.IVR_VARIABLE_SET, {"flow_id": "main", "name": "x.y", "value": "1"}),
        (3, FactKind.QUEUE_ENTERED, {"queue_id": "sales", "data": {"k": "v"}}),
        (4, FactKind.AGENT_OFFERED, {"agent_id": "ag-1", "queue_id": "sales", "attempt": 1}),
        (6, FactKind.AGENT_ANSWERED, {"agent_id": "ag-1", "queue_id": "sales"}),
        (6, FactKind.QUEUE_LEFT, {"queue_id": "sales", "reason": "answered"}),
        (7, FactKind.CALL_BRIDGED, {"a_channel_uuid": "a", "b_channel_uuid": "b"}),
        (8, FactKind.CALL_HELD, {"channel_uuid": "a"}),
        (9, FactKind.RECORDING_STARTED, {"channel_uuid": "a", "recording_id": "r"}),
        (10, FactKind.CALL_TRANSFERRED, {"channel_uuid": "b", "kind": "blind"}),
        (20, FactKind.CALL_HUNG_UP, {"channel_uuid": "a", "cause": "NORMAL_CLEARING"}),
    ]  # fmt: skip
    return [
        Fact(f"e{i}", t0 + timedelta(seconds=s), kind, data)
        for i, (s, kind, data) in enumerate(rows)
    ]
