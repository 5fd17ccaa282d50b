"""Per-tenant API rate limits: token buckets on a fake clock, and 429 + Retry-After over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY

from callmesh.core.auth import StaticKeys, TokenIssuer, TokenVerifier, generate_signing_key
from callmesh.core.errors import InvalidInput
from callmesh.core.http import PROBLEM_JSON, install_error_handlers
from callmesh.core.ratelimit import (
    RateLimited,
    RateLimitedPrincipal,
    TenantRateLimiter,
    install_rate_limiter,
)

ISSUER = "callmesh-test"
AUDIENCE = "callmesh-api"


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def spend(limiter: TenantRateLimiter, tenant: str, times: int) -> None:
    for _ in range(times):
        limiter.check(tenant)


def refusal(limiter: TenantRateLimiter, tenant: str) -> RateLimited:
    with pytest.raises(RateLimited) as refused:
        limiter.check(tenant)
    return refused.value


# --- the buckets ---------------------------------------------------------------------------------


def test_a_tenant_gets_its_burst_then_is_refused_with_a_retry_after() -> None:
    limiter = TenantRateLimiter(2.0, 5, clock=FakeClock())
    spend(limiter, "acme", 5)

    err = refusal(limiter, "acme")

    assert err.status == 429
    assert err.code == "rate_limited"
    assert err.retry_after_s == 1
    assert err.details == {"retry_after_s": 1, "tenant_id": "acme", "rate_per_s": 2.0, "burst": 5}
    assert "acme" in err.message
    assert "retry in 1 s" in err.message


def test_a_refused_request_spends_nothing() -> None:
    clock = FakeClock()
    limiter = TenantRateLimiter(1.0, 1, clock=clock)
    limiter.check("acme")
    for _ in range(10):
        refusal(limiter, "acme")

    clock.advance(1.0)

    limiter.check("acme")


def test_tokens_refill_at_the_rate_up_to_the_burst() -> None:
    clock = FakeClock()
    limiter = TenantRateLimiter(4.0, 8, clock=clock)
    spend(limiter, "acme", 8)
    refusal(limiter, "acme")

    clock.advance(0.5)  # two tokens back
    spend(limiter, "acme", 2)
    refusal(limiter, "acme")

    clock.advance(3600)  # never more than the burst
    spend(limiter, "acme", 8)
    refusal(limiter, "acme")


@pytest.mark.parametrize(
    ("rate", "wait", "expected"),
    [
        (10.0, 0.0, 1),  # 0.1 s away: never less than one second
        (0.25, 0.0, 4),  # one token every 4 s
        (0.25, 1.5, 3),  # 2.5 s away, rounded up
        (0.1, 0.0, 10),
    ],
)
def test_retry_after_is_whole_seconds_rounded_up_and_at_least_one(
    rate: float, wait: float, expected: int
) -> None:
    clock = FakeClock()
    limiter = TenantRateLimiter(rate, 1, clock=clock)
    limiter.check("acme")
    clock.advance(wait)

    assert refusal(limiter, "acme").retry_after_s == expected


def test_tenants_have_buckets_of_their_own() -> None:
    limiter = TenantRateLimiter(1.0, 2, clock=FakeClock())
    spend(limiter, "acme", 2)
    refusal(limiter, "acme")

    spend(limiter, "globex", 2)


def test_an_override_gives_one_tenant_its_own_rate_and_burst() -> None:
    clock = FakeClock()
    limiter = TenantRateLimiter(1.0, 2, clock=clock, overrides={"bigco": (100.0, 50)})
    assert limiter.limits("bigco") == (100.0, 50)
    assert limiter.limits("acme") == (1.0, 2)
    spend(limiter, "bigco", 50)
    refusal(limiter, "bigco")

    limiter.set_override("acme", 10.0, 3)
    spend(limiter, "acme", 3)
    assert refusal(limiter, "acme").details["rate_per_s"] == 10.0

    limiter.clear_override("bigco")
    clock.advance(60)
    spend(limiter, "bigco", 2)
    refusal(limiter, "bigco")


def test_lowering_a_tenants_burst_applies_to_its_bucket_at_once() -> None:
    limiter = TenantRateLimiter(1.0, 10, clock=FakeClock())
    limiter.check("acme")  # 9 tokens left

    limiter.set_override("acme", 1.0, 2)

    spend(limiter, "acme", 2)
    refusal(limiter, "acme")


def test_idle_buckets_are_swept_once_they_have_refilled() -> None:
    clock = FakeClock()
    limiter = TenantRateLimiter(1.0, 5, clock=clock, sweep_every_s=60)
    for n in range(100):
        limiter.check(f"t{n}")
    spend(limiter, "busy", 5)
    assert len(limiter) == 101

    clock.advance(4.0)  # t0..t99 are full again (4 of 5 tokens back); busy still is not
    assert limiter.sweep() == 100
    assert len(limiter) == 1

    clock.advance(61.0)  # the next check sweeps by itself
    limiter.check("acme")
    assert len(limiter) == 1


def test_the_number_of_buckets_is_bounded_least_recently_used_out_first() -> None:
    limiter = TenantRateLimiter(1.0, 1, clock=FakeClock(), max_tenants=3)
    for tenant in ("a", "b", "c"):
        limiter.check(tenant)
    refusal(limiter, "a")  # a is now the most recently used

    limiter.check("d")  # evicts b

    assert len(limiter) == 3
    refusal(limiter, "a")
    refusal(limiter, "c")
    limiter.check("b")  # a fresh bucket


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"rate_per_s": 0, "burst": 1}, "rate_per_s"),
        ({"rate_per_s": -1.0, "burst": 1}, "rate_per_s"),
        ({"rate_per_s": float("inf"), "burst": 1}, "rate_per_s"),
        ({"rate_per_s": 1.0, "burst": 0}, "burst"),
        ({"rate_per_s": 1.0, "burst": 2.5}, "burst"),
        ({"rate_per_s": 1.0, "burst": 1, "max_tenants": 0}, "max_tenants"),
        ({"rate_per_s": 1.0, "burst": 1, "overrides": {"Bad!": (1.0, 1)}}, "tenant_id"),
        ({"rate_per_s": 1.0, "burst": 1, "overrides": {"acme": (1.0, 0)}}, "burst"),
    ],
)
def test_bad_settings_are_refused_naming_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        TenantRateLimiter(**kwargs)

    assert refused.value.field == field


# --- over HTTP -----------------------------------------------------------------------------------


@pytest.fixture
def issuer() -> TokenIssuer:
    return TokenIssuer(generate_signing_key(), "k1", ISSUER, AUDIENCE)


def build_app(issuer: TokenIssuer, limiter: TenantRateLimiter | None) -> FastAPI:
    """What a service's app.py does: verifier, error handlers, the limiter; guarded routes."""
    app = FastAPI()
    app.state.token_verifier = TokenVerifier(
        StaticKeys.from_jwks(issuer.jwks()), issuer=ISSUER, audience=AUDIENCE
    )
    install_error_handlers(app)
    if limiter is not None:
        install_rate_limiter(app, limiter)

    @app.get("/v1/t/{tenant}/queues")
    async def queues(tenant: str, principal: RateLimitedPrincipal) -> dict[str, Any]:
        return {"tenant": tenant, "subject": principal.subject}

    return app


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def client(issuer: TokenIssuer, clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    limiter = TenantRateLimiter(0.5, 3, clock=clock)
    transport = httpx.ASGITransport(app=build_app(issuer, limiter))
    async with httpx.AsyncClient(transport=transport, base_url="http://svc.test") as http:
        yield http


def bearer(issuer: TokenIssuer, tenant: str | None) -> dict[str, str]:
    token = (
        issuer.issue("op1", operator=True)
        if tenant is None
        else issuer.issue(f"u-{tenant}", tenant_id=tenant, roles=["supervisor"])
    )
    return {"Authorization": f"Bearer {token}"}


async def test_a_tenant_over_its_rate_gets_429_with_retry_after_while_another_is_served(
    client: httpx.AsyncClient, issuer: TokenIssuer, clock: FakeClock
) -> None:
    acme, globex = bearer(issuer, "acme"), bearer(issuer, "globex")
    before = REGISTRY.get_sample_value("callmesh_api_rate_limited_total", {"tenant": "acme"}) or 0
    for _ in range(3):
        assert (await client.get("/v1/t/acme/queues", headers=acme)).status_code == 200

    refused = await client.get("/v1/t/acme/queues", headers=acme)

    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "2"  # one token every 2 s
    assert refused.headers["content-type"].startswith(PROBLEM_JSON)
    body = refused.json()
    assert body["code"] == "rate_limited"
    assert body["type"] == "urn:callmesh:problem:rate_limited"
    assert body["status"] == 429
    assert body["details"]["retry_after_s"] == 2
    assert "acme" in body["detail"]
    assert REGISTRY.get_sample_value("callmesh_api_rate_limited_total", {"tenant": "acme"}) == (
        before + 1
    )
    # Another tenant is unaffected.
    served = await client.get("/v1/t/globex/queues", headers=globex)
    assert served.status_code == 200
    assert served.json() == {"tenant": "globex", "subject": "u-globex"}

    clock.advance(2.0)
    assert (await client.get("/v1/t/acme/queues", headers=acme)).status_code == 200


async def test_requests_without_a_valid_token_for_the_tenant_spend_none_of_its_budget(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    intruder = bearer(issuer, "globex")
    for _ in range(10):
        assert (await client.get("/v1/t/acme/queues")).status_code == 401
        assert (await client.get("/v1/t/acme/queues", headers=intruder)).status_code == 403

    acme = bearer(issuer, "acme")
    for _ in range(3):
        assert (await client.get("/v1/t/acme/queues", headers=acme)).status_code == 200


async def test_an_operator_acting_on_a_tenant_spends_that_tenants_budget(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    operator = bearer(issuer, None)
    for _ in range(3):
        assert (await client.get("/v1/t/acme/queues", headers=operator)).status_code == 200

    refused = await client.get("/v1/t/acme/queues", headers=bearer(issuer, "acme"))

    assert refused.status_code == 429


async def test_an_app_without_a_rate_limiter_refuses_with_503_rather_than_letting_requests_in(
    issuer: TokenIssuer,
) -> None:
    transport = httpx.ASGITransport(app=build_app(issuer, None))
    async with httpx.AsyncClient(transport=transport, base_url="http://svc.test") as http:
        response = await http.get("/v1/t/acme/queues", headers=bearer(issuer, "acme"))

    assert response.status_code == 503
    assert response.json()["details"] == {"reason": "no_rate_limiter"}
