"""The service runtime in-process: readiness follows the clients, HTTP metrics, request routes."""

from __future__ import annotations

import httpx
from fastapi import APIRouter

from callmesh.core.bus import Bus
from callmesh.core.runtime import RequestRoute, Runtime, ServiceDefinition, create_app
from callmesh.core.settings import PlatformSettings, ServiceSettings
from callmesh.proto.subjects import Service
from callmesh.proto.v1.switch_pb2 import SwitchCommand, SwitchReply


def definition(settings: PlatformSettings, **kwargs: object) -> ServiceDefinition:
    return ServiceDefinition(
        name="probe",
        settings=ServiceSettings(platform=settings),
        **kwargs,  # type: ignore[arg-type]
    )


async def test_readiness_is_false_until_started_and_names_each_check(
    platform_settings: PlatformSettings,
) -> None:
    runtime = Runtime(definition(platform_settings, domain_status="not built yet: probing"))
    ready, body = await runtime.readiness()
    assert ready is False
    assert body["checks"]["nats"] == {"ok": False}
    assert body["checks"]["started"] == {"ok": False}
    assert body["details"] == {"domain": "not built yet: probing"}
    await runtime.start()
    try:
        ready, body = await runtime.readiness()
        assert ready is True
        assert body["checks"]["mongodb"]["ok"] is True
    finally:
        await runtime.stop()
    ready, body = await runtime.readiness()
    assert ready is False
    assert body["details"]["stopping"] is True


async def test_request_routes_are_served_once_started(
    platform_settings: PlatformSettings, bus: Bus
) -> None:
    async def echo(cmd: SwitchCommand) -> SwitchReply:
        return SwitchReply(command_id=cmd.command_id, ok=True)

    def routes(_runtime: Runtime) -> list[RequestRoute]:
        subject = bus.subjects.service_command("acme", Service.ACD, "probe")
        return [RequestRoute(lambda _bus: subject, SwitchCommand, echo)]

    runtime = Runtime(definition(platform_settings, requests=routes))
    await runtime.start()
    try:
        subject = bus.subjects.service_command("acme", Service.ACD, "probe")
        reply = await bus.request(subject, SwitchCommand(command_id="k"), SwitchReply)
        assert reply.ok is True
    finally:
        await runtime.stop()


async def test_http_metrics_are_labelled_by_route_template_status_and_tenant(
    platform_settings: PlatformSettings,
) -> None:
    router = APIRouter()

    @router.get("/v1/t/{tenant}/ping")
    async def ping(tenant: str) -> dict[str, str]:
        return {"tenant": tenant}

    app = create_app(Runtime(definition(platform_settings, routers=[router])))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as http:
        assert (await http.get("/v1/t/acme/ping")).status_code == 200
        assert (await http.get("/nowhere")).status_code == 404
        metrics = (await http.get("/metrics")).text
    assert (
        'callmesh_http_requests_total{method="GET",route="/v1/t/{tenant}/ping",'
        'service="probe",status="200",tenant="acme"}'
    ) in metrics
    assert 'route="unmatched",service="probe",status="404"' in metrics
