"""Per-tenant API rate limits: a token bucket per tenant, refusing with 429 and ``Retry-After``.

Each tenant has a bucket of ``burst`` tokens refilled at ``rate_per_s``; a request spends one, and
a request that finds less than one is refused with ``RateLimited`` (``retry_after_s``: whole
seconds until a token is back, at least 1). Operators may give a tenant its own rate and burst.

The buckets live in the memory of each replica, so the effective limit of a tenant is the limit
times the replicas serving it. That is accepted on purpose: a service runs few replicas behind a
load balancer that spreads a tenant's requests over them, and a platform-wide limit would cost a
NATS KV round trip (and a hot key per tenant) on every request. Set the numbers per replica.

Memory stays bounded: a bucket idle long enough to have refilled is the same as a fresh one and
is dropped by a periodic sweep; past ``max_tenants`` buckets the least recently used goes first
(a tenant evicted while not full gets a fresh burst: only possible with more active tenants than
``max_tenants`` in one sweep period).

HTTP: the composition root calls ``install_rate_limiter(app, limiter)`` (after
``install_error_handlers``) and tenant routes depend on ``rate_limit()`` in place of
``tenant_principal``: the request is authenticated first, so nobody can spend a tenant's budget
without a token for that tenant. (A flood of bad tokens is for the ingress to limit, per client.)
The limiter is not thread-safe: one per event loop, which is what a service has.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Request

from callmesh.core import telemetry
from callmesh.core.auth import Principal, tenant_principal
from callmesh.core.errors import DomainError, InvalidInput, Unavailable
from callmesh.proto.subjects import check_tenant_id

Clock = Callable[[], float]


class RateLimited(DomainError):
    """A tenant sent more API requests than its rate allows; retry after ``retry_after_s``."""

    code = "rate_limited"
    status = 429

    def __init__(self, message: str, *, retry_after_s: int, **details: Any) -> None:
        super().__init__(message, retry_after_s=retry_after_s, **details)
        self.retry_after_s = retry_after_s


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float
    rate: float
    burst: int


def _check_limits(rate_per_s: float, burst: int) -> tuple[float, int]:
    if not (isinstance(rate_per_s, int | float) and math.isfinite(rate_per_s) and rate_per_s > 0):
        raise InvalidInput("rate_per_s", "must be a positive number", f"rate_per_s: {rate_per_s!r}")
    if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
        raise InvalidInput("burst", "must be an integer of at least 1", f"burst: {burst!r}")
    return float(rate_per_s), burst


def _check_tenant(tenant_id: str) -> str:
    try:
        return check_tenant_id(tenant_id)
    except ValueError as err:
        raise InvalidInput("tenant_id", "must be a tenant id", str(err)) from err


class TenantRateLimiter:
    """Token buckets per tenant, in this replica's memory (see the module docstring)."""

    def __init__(
        self,
        rate_per_s: float,
        burst: int,
        *,
        clock: Clock = time.monotonic,
        overrides: Mapping[str, tuple[float, int]] | None = None,
        max_tenants: int = 10_000,
        sweep_every_s: float = 60.0,
    ) -> None:
        self.rate_per_s, self.burst = _check_limits(rate_per_s, burst)
        if max_tenants < 1:
            raise InvalidInput("max_tenants", "must be at least 1")
        if sweep_every_s <= 0:
            raise InvalidInput("sweep_every_s", "must be positive")
        self.max_tenants = max_tenants
        self.sweep_every_s = sweep_every_s
        self._clock = clock
        # Least recently used first: eviction pops from the front.
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._overrides: dict[str, tuple[float, int]] = {}
        for tenant_id, (rate, tenant_burst) in (overrides or {}).items():
            self.set_override(tenant_id, rate, tenant_burst)
        self._next_sweep = clock() + sweep_every_s
        self._refused = telemetry.counter(
            "callmesh_api_rate_limited_total",
            "API requests refused by a tenant rate limit",
            ["tenant"],
        )

    def __len__(self) -> int:
        """How many tenants have a bucket in memory now."""
        return len(self._buckets)

    def limits(self, tenant_id: str) -> tuple[float, int]:
        """The (rate per second, burst) a tenant gets: its override, or the default."""
        return self._overrides.get(tenant_id, (self.rate_per_s, self.burst))

    def set_override(self, tenant_id: str, rate_per_s: float, burst: int) -> None:
        """Give a tenant its own rate and burst (applies at once to its current bucket)."""
        tenant_id = _check_tenant(tenant_id)
        rate, checked_burst = _check_limits(rate_per_s, burst)
        self._overrides[tenant_id] = (rate, checked_burst)
        self._apply(tenant_id, rate, checked_burst)

    def clear_override(self, tenant_id: str) -> None:
        """Put a tenant back on the default rate and burst."""
        if self._overrides.pop(tenant_id, None) is not None:
            self._apply(tenant_id, self.rate_per_s, self.burst)

    def _apply(self, tenant_id: str, rate: float, burst: int) -> None:
        bucket = self._buckets.get(tenant_id)
        if bucket is not None:
            self._refill(bucket, self._clock())
            bucket.rate, bucket.burst = rate, burst
            # A lowered burst takes effect now; a raised one fills up at the rate.
            bucket.tokens = min(bucket.tokens, float(burst))

    @staticmethod
    def _refill(bucket: _Bucket, now: float) -> None:
        elapsed = max(0.0, now - bucket.updated)
        bucket.tokens = min(float(bucket.burst), bucket.tokens + elapsed * bucket.rate)
        bucket.updated = now

    def check(self, tenant_id: str) -> None:
        """Spend one of the tenant's tokens, or raise ``RateLimited`` saying when to retry."""
        now = self._clock()
        if now >= self._next_sweep:
            self.sweep(now)
        bucket = self._buckets.get(tenant_id)
        if bucket is None:
            rate, burst = self.limits(tenant_id)
            bucket = _Bucket(float(burst), now, rate, burst)
            self._buckets[tenant_id] = bucket
            if len(self._buckets) > self.max_tenants:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(tenant_id)
            self._refill(bucket, now)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return
        retry_after = max(1, math.ceil((1.0 - bucket.tokens) / bucket.rate))
        self._refused.labels(tenant_id).inc()
        raise RateLimited(
            f"tenant {tenant_id} exceeded its API rate of {bucket.rate:g} requests/s "
            f"(burst {bucket.burst}); retry in {retry_after} s",
            retry_after_s=retry_after,
            tenant_id=tenant_id,
            rate_per_s=bucket.rate,
            burst=bucket.burst,
        )

    def sweep(self, now: float | None = None) -> int:
        """Drop the buckets that have refilled (they equal fresh ones); returns how many."""
        now = self._clock() if now is None else now
        self._next_sweep = now + self.sweep_every_s
        full = [
            tenant_id
            for tenant_id, bucket in self._buckets.items()
            if bucket.tokens + max(0.0, now - bucket.updated) * bucket.rate >= bucket.burst
        ]
        for tenant_id in full:
            del self._buckets[tenant_id]
        return len(full)


# --- HTTP ----------------------------------------------------------------------------------------


def install_rate_limiter(app: FastAPI, limiter: TenantRateLimiter) -> None:
    """Put the limiter in ``app.state.rate_limiter``.

    Refusals become 429 problem+json with ``Retry-After`` through ``callmesh.core.http``'s
    error handlers (``install_error_handlers``), which the runtime installs on every app.
    """
    app.state.rate_limiter = limiter


def app_rate_limiter(request: Request) -> TenantRateLimiter:
    """The limiter the composition root installed (503 if it forgot: fail closed, and say so)."""
    limiter = getattr(request.app.state, "rate_limiter", None)
    if isinstance(limiter, TenantRateLimiter):
        return limiter
    raise Unavailable(
        "API rate limiting is not configured: call install_rate_limiter(app, limiter)",
        reason="no_rate_limiter",
    )


def rate_limit(
    limiter: TenantRateLimiter | None = None,
) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency for ``/v1/t/{tenant}/…`` routes: the tenant principal, within its rate.

    With no ``limiter`` it uses the one in ``app.state.rate_limiter``.
    """

    async def within_rate(
        request: Request,
        tenant: Annotated[str, Path(description="tenant id")],
        principal: Annotated[Principal, Depends(tenant_principal)],
    ) -> Principal:
        # tenant_principal has checked the tenant id and that the token grants it.
        (limiter or app_rate_limiter(request)).check(tenant)
        return principal

    return within_rate


# For routes: ``principal: RateLimitedPrincipal`` in place of ``TenantPrincipal``.
RateLimitedPrincipal = Annotated[Principal, Depends(rate_limit())]
