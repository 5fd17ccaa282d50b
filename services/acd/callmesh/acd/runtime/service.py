"""Partition ownership: this replica contends for ``acd.<tenant>`` of every tenant admin lists
and runs a ``Partition`` for each lease it holds.

- Tenants come from the ``tenants`` KV bucket (the runtime's ``TenantGate``): every tenant not
  deleted is claimed; a deleted (or vanished) tenant's claim is dropped. A **suspended** tenant
  stays owned — calls already queued or connected finish, agents can go not-ready and log out,
  supervisors see it live — but new calls and logins are refused until it is resumed.
- Lease gained → the partition starts (config, snapshot, events from the snapshot's stream
  sequence, then requests). Lease lost → it stops at once (nothing more is sent). A partition
  that finds itself fenced off (a stale-token reply, a snapshot written by someone else) stops,
  gives the lease up and contends again.
- A clean stop (``on_stopping``, while the bus is still up) stops every partition with a final
  snapshot, then releases the leases so another replica takes over without waiting for the TTL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from callmesh.acd.domain.config import TenantAcdConfig
from callmesh.acd.runtime.metrics import metrics
from callmesh.acd.runtime.options import RuntimeOptions
from callmesh.acd.runtime.partition import Partition, PartitionContext
from callmesh.acd.runtime.prompts import PromptResolver
from callmesh.core.leases import LeaseGrant, LeaseManager
from callmesh.core.quotas import Quotas
from callmesh.core.runtime import Runtime
from callmesh.core.tenancy import TenantInfo, TenantStatus

log = logging.getLogger(__name__)

ConfigLoader = Callable[[Runtime, str], Awaitable[TenantAcdConfig]]
_RETRY_S = 2.0


def lease_key(tenant_id: str) -> str:
    """The lease of a tenant's ACD partition."""
    return f"acd.{tenant_id}"


class AcdPartitions:
    """Every tenant partition of one replica."""

    def __init__(self, options: RuntimeOptions, load_config: ConfigLoader) -> None:
        self.options = options
        self._load_config = load_config
        self.runtime: Runtime | None = None
        self.leases: LeaseManager | None = None
        self.partitions: dict[str, Partition] = {}
        self._claimed: set[str] = set()
        self._locks: dict[str, asyncio.Lock] = {}
        self._ctx: PartitionContext | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._stopping = False
        self._retries: set[asyncio.Task[None]] = set()

    # -- hooks -----------------------------------------------------------------------------------

    async def start(self, runtime: Runtime) -> None:
        """Claim every tenant's partition and follow the tenants bucket."""
        self.runtime = runtime
        bus = runtime.bus
        self.leases = LeaseManager(bus, self.options.replica_id, ttl_s=self.options.lease_ttl_s)
        self._ctx = PartitionContext(
            bus=bus,
            options=self.options,
            quotas=Quotas(bus, service="acd"),
            prompts=PromptResolver(
                prefix=self.options.media_prefix,
                default_language=self.options.default_language,
                say_macro=self.options.say_macro,
            ),
            metrics=metrics(),
            load_config=lambda tenant: self._load_config(runtime, tenant),
            tenant_active=runtime.tenant_gate.is_active,
            on_fenced=self._fenced,
        )
        self._unsubscribe = runtime.tenant_gate.on_change(self._tenant_changed)
        for info in list(runtime.tenant_gate.tenants().values()):
            if info.status is not TenantStatus.DELETED:
                self._claim(info.tenant_id)

    async def stop(self, _runtime: Runtime | None = None) -> None:
        """Final snapshots, then give every lease up (the next owner need not wait)."""
        if self._stopping:
            return
        self._stopping = True
        if self._unsubscribe is not None:
            self._unsubscribe()
        for task in list(self._retries):
            task.cancel()
        for tenant in list(self.partitions):
            async with self._lock(tenant):
                partition = self.partitions.pop(tenant, None)
                if partition is not None:
                    await partition.stop(final_snapshot=True)
        if self.leases is not None:
            with contextlib.suppress(Exception):
                await self.leases.stop()
        if self._ctx is not None:
            with contextlib.suppress(Exception):
                await self._ctx.quotas.close()

    # -- tenants ---------------------------------------------------------------------------------

    async def _tenant_changed(self, old: TenantInfo | None, new: TenantInfo | None) -> None:
        if self._stopping:
            return
        about = new or old
        if about is None:
            return
        tenant = about.tenant_id
        if new is None or new.status is TenantStatus.DELETED:
            await self._drop(tenant)
        else:
            self._claim(tenant)

    def _claim(self, tenant: str) -> None:
        if self._stopping or tenant in self._claimed or self.leases is None:
            return
        self._claimed.add(tenant)
        self.leases.claim(lease_key(tenant), self._gained, self._lost)

    async def _drop(self, tenant: str) -> None:
        if tenant not in self._claimed or self.leases is None:
            return
        self._claimed.discard(tenant)
        await self.leases.release(lease_key(tenant))
        async with self._lock(tenant):
            partition = self.partitions.pop(tenant, None)
            if partition is not None:
                await partition.stop(final_snapshot=False)
        log.info("tenant dropped", extra={"tenant_id": tenant})

    # -- leases ----------------------------------------------------------------------------------

    def _lock(self, tenant: str) -> asyncio.Lock:
        lock = self._locks.get(tenant)
        if lock is None:
            lock = self._locks[tenant] = asyncio.Lock()
        return lock

    async def _gained(self, grant: LeaseGrant) -> None:
        tenant = grant.key.removeprefix("acd.")
        assert self._ctx is not None
        assert self.leases is not None
        async with self._lock(tenant):
            if self._stopping:
                return
            old = self.partitions.pop(tenant, None)
            if old is not None:
                await old.stop(final_snapshot=False)
            partition = Partition(self._ctx, tenant, grant)
            try:
                await partition.start()
            except Exception:
                log.exception(
                    "partition did not start; giving the lease up", extra={"tenant_id": tenant}
                )
                await partition.stop(final_snapshot=False)
                self._retry(tenant)
                return
            current = self.leases.grant(grant.key)
            if current is None or current.token != grant.token:
                await partition.stop(final_snapshot=False)
                return
            self.partitions[tenant] = partition
            log.info("partition owned", extra={"tenant_id": tenant, "token": grant.token})

    async def _lost(self, grant: LeaseGrant, why: str) -> None:
        tenant = grant.key.removeprefix("acd.")
        async with self._lock(tenant):
            partition = self.partitions.get(tenant)
            if partition is None or partition.grant.token != grant.token:
                return
            del self.partitions[tenant]
            await partition.stop(final_snapshot=False)
            log.warning("partition lost: %s", why, extra={"tenant_id": tenant})

    async def _fenced(self, tenant: str, why: str) -> None:
        async with self._lock(tenant):
            partition = self.partitions.pop(tenant, None)
            if partition is not None:
                await partition.stop(final_snapshot=False)
        log.warning("partition fenced off, contending again: %s", why, extra={"tenant_id": tenant})
        self._retry(tenant)

    def _retry(self, tenant: str) -> None:
        """Give the lease up and contend again a little later (another replica may do better)."""

        async def again() -> None:
            assert self.leases is not None
            self._claimed.discard(tenant)
            await self.leases.release(lease_key(tenant))
            await asyncio.sleep(_RETRY_S)
            runtime = self.runtime
            if runtime is not None and not self._stopping:
                info = runtime.tenant_gate.tenants().get(tenant)
                if info is not None and info.status is not TenantStatus.DELETED:
                    self._claim(tenant)

        task = asyncio.create_task(again(), name=f"acd-retry:{tenant}")
        self._retries.add(task)
        task.add_done_callback(self._retries.discard)
