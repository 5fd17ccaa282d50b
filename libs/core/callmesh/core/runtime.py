"""The runtime every service shares: clients, health and metrics endpoints, start-up and stop.

A service's ``app.py`` builds a ``ServiceDefinition`` (its name, settings, collections,
subscription table, request handlers, routers and hooks) and ``__main__`` hands it to
``run_service``. The HTTP server comes up first, so ``/healthz`` answers at once and ``/readyz``
tells the truth while NATS or MongoDB are still being reached; SIGTERM stops taking work, lets
in-flight handlers finish, then closes the clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import uvicorn
from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import JSONResponse
from google.protobuf.message import Message
from starlette.types import ASGIApp, Receive, Scope, Send

from callmesh.core import telemetry
from callmesh.core.auth import RevocationList, verifier_from_settings
from callmesh.core.bus import Bus, RequestHandler, Subscription
from callmesh.core.http import STANDARD_PROBLEMS, install_error_handlers
from callmesh.core.logging import configure_logging
from callmesh.core.ratelimit import TenantRateLimiter, install_rate_limiter
from callmesh.core.settings import ServiceSettings
from callmesh.core.store import CollectionSpec, Placement, Store
from callmesh.core.tenancy import KvPlacement, TenantGate

log = logging.getLogger(__name__)

Hook = Callable[["Runtime"], Awaitable[None]]


@dataclass(frozen=True)
class RequestRoute:
    """A request/reply subject a service answers (``Bus.serve``)."""

    subject: Callable[[Bus], str]
    request_type: type[Message]
    handler: RequestHandler[Any]


@dataclass
class ServiceDefinition:
    """Everything the runtime needs to run one service."""

    name: str
    settings: ServiceSettings
    # Said in /readyz details while (part of) the service's domain is not built yet.
    domain_status: str | None = None
    collections: Sequence[CollectionSpec] = ()
    subscriptions: Callable[[Runtime], Sequence[Subscription]] | None = None
    requests: Callable[[Runtime], Sequence[RequestRoute]] | None = None
    routers: Sequence[APIRouter] = ()
    on_start: list[Hook] = field(default_factory=list)
    # Run when stopping begins, while the bus is still connected (e.g. hand partitions over).
    on_stopping: list[Hook] = field(default_factory=list)
    on_stop: list[Hook] = field(default_factory=list)
    operator_access: bool = False
    # Last word on the FastAPI app before it serves (e.g. admin verifies tokens with its own keys).
    configure_app: Callable[[FastAPI, Runtime], None] | None = None


def _package_version() -> str:
    try:
        return version("callmesh-core")
    except PackageNotFoundError:
        return "0+unknown"


class Runtime:
    """One service's live clients and lifecycle."""

    def __init__(self, definition: ServiceDefinition) -> None:
        self.definition = definition
        self.name = definition.name
        self.settings = definition.settings
        self.platform = definition.settings.platform
        self.bus = Bus(self.platform, definition.name)
        # Every service refuses revoked (logged-out) tokens and knows suspended tenants without
        # asking admin: both are KV buckets watched into memory.
        self.revocations = RevocationList(self.bus)
        self.tenant_gate = TenantGate(self.bus)
        self.store = Store(
            self.platform,
            collections=definition.collections,
            operator_access=definition.operator_access,
        )
        # Where each tenant's data lives comes from admin's placement bucket, for every service.
        self.placement = KvPlacement(
            self.bus, Placement(self.platform.mongodb_database), self.store
        )
        self.store.placement = self.placement
        self.started = asyncio.Event()
        self.stopping = False
        self.start_error: str | None = None
        self._ready = telemetry.gauge(
            "callmesh_service_ready", "1 while the service reports ready", ["service"]
        )
        telemetry.gauge(
            "callmesh_service_info",
            "Service build and instance",
            ["service", "instance", "version"],
        ).labels(definition.name, self.platform.instance, _package_version()).set(1)

    async def start(self) -> None:
        """Reach NATS and MongoDB (retrying until reached), provision, then start taking work."""
        await self.bus.connect()
        await self.bus.provision()
        await self.revocations.start()
        await self.tenant_gate.start()
        await self.placement.start()
        # Until loaded, verifiers answer 503 and the gate refuses: nothing slips through meanwhile.
        await self.revocations.ready.wait()
        await self.tenant_gate.ready.wait()
        await self.placement.ready.wait()
        delay = 0.2
        while not await self.store.ping():
            log.warning("MongoDB not reachable, retrying", extra={"uri": self.platform.mongodb_uri})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
        await self.store.provision()
        for hook in self.definition.on_start:
            await hook(self)
        if self.definition.requests is not None:
            for route in self.definition.requests(self):
                await self.bus.serve(route.subject(self.bus), route.request_type, route.handler)
        if self.definition.subscriptions is not None:
            await self.bus.start(self.definition.subscriptions(self))
        self.started.set()
        log.info("service started", extra={"http_port": self.settings.http_port})

    async def stop(self) -> None:
        """Stop taking work, finish what is in flight (up to the grace period), close clients."""
        self.stopping = True
        self._ready.labels(self.name).set(0)
        grace = self.settings.shutdown_grace_s
        for hook in self.definition.on_stopping:
            try:
                await hook(self)
            except Exception:  # the stop goes on whatever a hook did
                log.exception("stopping hook failed")
        await self.revocations.stop()
        await self.tenant_gate.stop()
        await self.placement.stop()
        with contextlib.suppress(Exception):
            await self.bus.drain(grace_s=grace)
        for hook in reversed(self.definition.on_stop):
            try:
                await hook(self)
            except Exception:  # every hook gets its turn, whatever the one before did
                log.exception("stop hook failed")
        await self.store.close()
        log.info("service stopped")

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Whether the service can do its work now, with each check's result."""
        checks: dict[str, Any] = {
            "started": {
                "ok": self.started.is_set(),
                **({"error": self.start_error} if self.start_error else {}),
            },
            "nats": {"ok": self.bus.connected},
            "revocations": {"ok": self.revocations.ready.is_set()},
            "tenants": {"ok": self.tenant_gate.ready.is_set()},
            "placement": {"ok": self.placement.ready.is_set()},
        }
        began = time.perf_counter()
        try:
            mongo_ok = await asyncio.wait_for(self.store.ping(), timeout=1.0)
        except TimeoutError:
            mongo_ok = False
        checks["mongodb"] = {
            "ok": mongo_ok,
            "latency_ms": round((time.perf_counter() - began) * 1000, 1),
        }
        ready = not self.stopping and all(c["ok"] for c in checks.values())
        self._ready.labels(self.name).set(1 if ready else 0)
        body: dict[str, Any] = {"service": self.name, "ready": ready, "checks": checks}
        if self.definition.domain_status:
            body["details"] = {"domain": self.definition.domain_status}
        if self.stopping:
            body["details"] = {**body.get("details", {}), "stopping": True}
        return ready, body


class _HttpMetrics:
    """Pure ASGI middleware: request count and latency by route template, status and tenant."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service
        self.requests = telemetry.counter(
            "callmesh_http_requests_total",
            "HTTP requests by route template, method, status and tenant",
            ["service", "route", "method", "status", "tenant"],
        )
        self.seconds = telemetry.histogram(
            "callmesh_http_request_seconds", "HTTP request duration", ["service", "route", "method"]
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = 500

        async def capture(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            tenant = str((scope.get("path_params") or {}).get("tenant", "-"))
            method = scope.get("method", "-")
            self.requests.labels(self.service, template, method, str(status), tenant).inc()
            self.seconds.labels(self.service, template, method).observe(time.perf_counter() - began)


def create_app(runtime: Runtime) -> FastAPI:
    """The service's FastAPI app: health, readiness, metrics, its routers, the lifespan."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        starter = asyncio.create_task(runtime.start(), name=f"{runtime.name}-start")

        def reported(task: asyncio.Task[None]) -> None:
            if not task.cancelled() and task.exception() is not None:
                runtime.start_error = repr(task.exception())
                log.error("service failed to start", exc_info=task.exception())

        starter.add_done_callback(reported)
        try:
            yield
        finally:
            if not starter.done():
                starter.cancel()
                await asyncio.gather(starter, return_exceptions=True)
            await runtime.stop()

    app = FastAPI(
        title=f"callmesh {runtime.name}",
        version=_package_version(),
        lifespan=lifespan,
        responses=STANDARD_PROBLEMS,
    )
    app.state.runtime = runtime
    platform = runtime.platform
    app.state.tenant_gate = runtime.tenant_gate
    install_rate_limiter(app, TenantRateLimiter(platform.api_rate_per_s, platform.api_burst))
    if platform.jwks_url or platform.jwt_public_key:
        app.state.token_verifier = verifier_from_settings(platform, revocations=runtime.revocations)
    install_error_handlers(app)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok", "service": runtime.name}

    @app.get("/readyz", tags=["health"])
    async def readyz() -> JSONResponse:
        """Readiness: ready only when NATS and MongoDB are reachable and start-up is done."""
        ready, body = await runtime.readiness()
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics", tags=["health"], include_in_schema=False)
    async def metrics() -> Response:
        """Prometheus exposition."""
        payload, content_type = telemetry.render_metrics()
        return Response(payload, media_type=content_type)

    for router in runtime.definition.routers:
        app.include_router(router)
    app.add_middleware(_HttpMetrics, service=runtime.name)
    if runtime.definition.configure_app is not None:
        runtime.definition.configure_app(app, runtime)
    return app


class _Server(uvicorn.Server):
    """uvicorn's server, except that a graceful stop on SIGTERM/SIGINT exits 0 (no re-raise)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        originals = {
            sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            yield
        finally:
            for sig, handler in originals.items():
                signal.signal(sig, handler)


def run_service(definition: ServiceDefinition) -> None:
    """Run a service until SIGTERM/SIGINT: logging, tracing, HTTP server, graceful stop."""
    platform = definition.settings.platform
    configure_logging(definition.name, platform.log_level, platform.log_format)
    telemetry.configure_tracing(definition.name, platform.instance, platform.otlp_endpoint)
    runtime = Runtime(definition)
    app = create_app(runtime)
    config = uvicorn.Config(
        app,
        host=definition.settings.http_host,
        port=definition.settings.http_port,
        lifespan="on",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(definition.settings.shutdown_grace_s),
    )
    _Server(config).run()
