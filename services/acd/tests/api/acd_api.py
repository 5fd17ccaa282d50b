"""The acd app as it runs in production, in-process on a real NATS and FerretDB, trusting a test
token issuer; and a tiny stand-in for the tenant's acd owner answering on its bus subjects."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from google.protobuf.message import Message

from callmesh.acd.app import AcdSettings, build
from callmesh.core.auth import StaticKeys, TokenIssuer, TokenVerifier, generate_signing_key
from callmesh.core.bus import Bus
from callmesh.core.runtime import Runtime, create_app
from callmesh.core.settings import PlatformSettings
from callmesh.core.tenancy import TenantInfo, TenantStatus
from callmesh.proto.subjects import AcdOp, Bucket, Service
from callmesh.proto.v1 import acd_pb2, agent_pb2

A, B = "acme", "globex"


@dataclass
class Acd:
    """A running acd app, an HTTP client on it, and a test token issuer."""

    http: httpx.AsyncClient
    runtime: Runtime
    issuer: TokenIssuer
    app: Any

    def headers(
        self, tenant_id: str | None = A, *roles: str, subject: str = "usr_1"
    ) -> dict[str, str]:
        """Bearer headers: an operator's (``None``) or a tenant user's with ``roles``."""
        if tenant_id is None:
            token = self.issuer.issue("op-1", operator=True)
        else:
            token = self.issuer.issue(
                subject, tenant_id=tenant_id, roles=list(roles or ("tenant_admin",))
            )
        return {"Authorization": f"Bearer {token}"}

    def url(self, path: str, tenant_id: str = A) -> str:
        """``/v1/t/<tenant>/<path>``."""
        return f"/v1/t/{tenant_id}/{path.lstrip('/')}"

    async def get(self, path: str, tenant_id: str = A, **kw: Any) -> httpx.Response:
        """GET as the tenant's admin."""
        return await self.http.get(self.url(path, tenant_id), headers=self.headers(tenant_id), **kw)

    async def post(self, path: str, body: Any, tenant_id: str = A, **kw: Any) -> httpx.Response:
        """POST as the tenant's admin."""
        return await self.http.post(
            self.url(path, tenant_id), json=body, headers=self.headers(tenant_id), **kw
        )

    async def put(self, path: str, body: Any, tenant_id: str = A, **kw: Any) -> httpx.Response:
        """PUT as the tenant's admin."""
        return await self.http.put(
            self.url(path, tenant_id), json=body, headers=self.headers(tenant_id), **kw
        )

    async def delete(self, path: str, tenant_id: str = A) -> httpx.Response:
        """DELETE as the tenant's admin."""
        return await self.http.delete(self.url(path, tenant_id), headers=self.headers(tenant_id))


def make_app(platform_settings: PlatformSettings) -> tuple[Runtime, Any, TokenIssuer]:
    """The acd app with a verifier trusting a fresh test key."""
    platform = platform_settings.model_copy(update={"api_rate_per_s": 1e6, "api_burst": 10**6})
    # The API's parts only: the acd runtime (leases, the owner's subscriptions) is left out so
    # that the stand-in owner of these tests is the only one answering the tenant's ops.
    definition = dataclasses.replace(
        build(AcdSettings(platform=platform)),
        on_start=[],
        on_stop=[],
        subscriptions=None,
        requests=None,
    )
    runtime = Runtime(definition)
    app = create_app(runtime)
    key = generate_signing_key()
    issuer = TokenIssuer(key, "test", platform.jwt_issuer, platform.jwt_audience)
    app.state.token_verifier = TokenVerifier(
        StaticKeys({"test": key.public_key()}),
        issuer=platform.jwt_issuer,
        audience=platform.jwt_audience,
        revocations=runtime.revocations,
    )
    return runtime, app, issuer


async def activate(bus: Bus, *tenants: str) -> None:
    """Write the tenants as active in the tenants bucket."""
    kv = await bus.kv(Bucket.TENANTS)
    for tenant_id in tenants:
        await kv.put(tenant_id, TenantInfo(tenant_id, TenantStatus.ACTIVE).to_json())


async def wait_started(runtime: Runtime, *tenants: str) -> None:
    """Until the runtime has started and knows the tenants."""
    deadline = time.monotonic() + 60
    while not (runtime.started.is_set() and all(runtime.tenant_gate.is_active(t) for t in tenants)):
        assert runtime.start_error is None, runtime.start_error
        assert time.monotonic() < deadline, "acd did not start"
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def running_acd(settings: PlatformSettings, bus: Bus) -> AsyncIterator[Acd]:
    """The acd app in-process with tenants A and B active."""
    runtime, app, issuer = make_app(settings)
    await activate(bus, A, B)
    async with app.router.lifespan_context(app):
        await wait_started(runtime, A, B)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://acd") as http:
            yield Acd(http, runtime, issuer, app)


@dataclass
class Owner:
    """A stand-in for the tenant's acd owner: answers ops with canned replies, records requests."""

    bus: Bus
    tenant_id: str
    received: list[tuple[str, Message]] = field(default_factory=list)
    replies: dict[str, Callable[[Message], Awaitable[Message]]] = field(default_factory=dict)

    async def serve(
        self, op: AcdOp, request_type: type[Message], answer: Callable[[Any], Message]
    ) -> None:
        """Answer ``op`` with ``answer(request)``."""

        async def handler(request: Message) -> Message:
            self.received.append((str(op), request))
            return answer(request)

        subject = self.bus.subjects.service_command(self.tenant_id, Service.ACD, op)
        await self.bus.serve(subject, request_type, handler)

    def of(self, op: AcdOp) -> list[Any]:
        """The requests received for ``op``."""
        return [r for o, r in self.received if o == str(op)]


async def config_owner(bus: Bus, tenant_id: str) -> Owner:
    """An owner that only acknowledges config_changed."""
    owner = Owner(bus, tenant_id)
    await owner.serve(
        AcdOp.CONFIG_CHANGED,
        acd_pb2.ConfigChanged,
        lambda _r: acd_pb2.ConfigChangedReply(applied=True),
    )
    return owner


READY = agent_pb2.AGENT_STATE_READY


def live_reply(request: acd_pb2.LiveRequest) -> acd_pb2.LiveReply:
    """Two queues, a waiting call each, one agent; filtered as the owner does."""
    reply = acd_pb2.LiveReply(owner="acd-1", fencing_token=7)
    for queue_id, waiting in (("sales", 2), ("support", 0)):
        if request.queue_ids and queue_id not in request.queue_ids:
            continue
        reply.queues.add(queue_id=queue_id, waiting=waiting, longest_wait_s=12.5, open=True)
    if request.include_calls:
        reply.calls.add(call_id="c-2", queue_id="sales", position=2, waited_s=3.0)
        reply.calls.add(call_id="c-1", queue_id="sales", position=1, waited_s=12.5)
    if request.include_agents:
        agent = reply.agents.add(agent_id="ag-1", state=READY, endpoint="user:1001")
        agent.skills.add(name="french", level=4)
        agent.since.FromDatetime(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))
    return reply


def command_reply(request: acd_pb2.AgentCommand) -> acd_pb2.AgentCommandReply:
    """Refuse a break, accept anything else."""
    if request.agent_id == "busy":
        return acd_pb2.AgentCommandReply(
            ok=False,
            error_code=acd_pb2.ACD_ERROR_CODE_REFUSED,
            message="too many agents of team-a on break",
            state=READY,
        )
    return acd_pb2.AgentCommandReply(ok=True, state=agent_pb2.AGENT_STATE_NOT_READY, reason="x")


async def owner_of(bus: Bus, tenant_id: str = A) -> Owner:
    """A stand-in owner answering live views and agent commands (it refuses agent ``busy``)."""
    owner = Owner(bus, tenant_id)
    await owner.serve(AcdOp.LIVE, acd_pb2.LiveRequest, live_reply)
    for op in (
        AcdOp.AGENT_READY,
        AcdOp.AGENT_NOT_READY,
        AcdOp.AGENT_BREAK,
        AcdOp.AGENT_LOGOUT,
        AcdOp.AGENT_SKILLS,
    ):
        await owner.serve(op, acd_pb2.AgentCommand, command_reply)
    return owner
