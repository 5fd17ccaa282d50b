"""NATS KV adapters of the operator area: the ``tenants`` and ``placement`` records admin writes
for every service (layouts in ``docs/tenancy.md``), this process's placement resolution, and the
switch nodes' heartbeats (bucket ``nodes``)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

import nats.errors
import nats.js.errors
from google.protobuf.message import DecodeError
from nats.js.kv import KV_DEL, KV_OP, KV_PURGE, KeyValue

from callmesh.admin.domain.sites import Heartbeat
from callmesh.admin.domain.tenants import Tenant, TenantPlacement
from callmesh.core.bus import Bus
from callmesh.core.errors import Unavailable
from callmesh.core.store import Placement, Store
from callmesh.core.tenancy import (
    KvPlacement,
    TenantInfo,
    TenantStatus,
    cluster_key,
    encode_cluster,
    encode_placement,
    placement_key,
)
from callmesh.proto.subjects import Bucket
from callmesh.proto.v1.node_pb2 import NodeHeartbeat

log = logging.getLogger(__name__)

_TENANT_PREFIX = "tenant."
_CLUSTER_PREFIX = "cluster."
# How long a tenant creation waits for this process's own placement mirror to catch up.
PLACEMENT_WAIT_S = 10.0
_PLACEMENT_POLL_S = 0.02
_NATS_ERRORS = (TimeoutError, nats.errors.Error)


class KvTenantMirror:
    """``TenantMirror`` on the ``tenants`` and ``placement`` buckets."""

    def __init__(self, bus: Bus) -> None:
        self._bus = bus
        self._buckets: dict[Bucket, KeyValue] = {}

    async def _kv(self, bucket: Bucket) -> KeyValue:
        kv = self._buckets.get(bucket)
        if kv is None:
            try:
                kv = self._buckets[bucket] = await self._bus.kv(bucket)
            except _NATS_ERRORS as err:
                raise Unavailable(f"open KV bucket {bucket} failed: {err!r}") from err
        return kv

    async def _put(self, bucket: Bucket, key: str, value: bytes) -> None:
        kv = await self._kv(bucket)
        try:
            await kv.put(key, value)
        except _NATS_ERRORS as err:
            raise Unavailable(f"write {bucket}/{key} failed: {err!r}") from err

    async def _delete(self, bucket: Bucket, key: str) -> None:
        kv = await self._kv(bucket)
        try:
            # A delete marker (not a purge): watchers see the key go, whenever they look.
            await kv.delete(key)
        except _NATS_ERRORS as err:
            raise Unavailable(f"delete {bucket}/{key} failed: {err!r}") from err

    async def _keys(self, bucket: Bucket) -> list[str]:
        kv = await self._kv(bucket)
        try:
            return list(await kv.keys())
        except nats.js.errors.NoKeysError:
            return []
        except _NATS_ERRORS as err:
            raise Unavailable(f"list {bucket} keys failed: {err!r}") from err

    async def put_tenant(self, tenant: Tenant) -> None:
        """Write the ``tenants`` record (the gate of every service reads it)."""
        info = TenantInfo(
            tenant_id=tenant.tenant_id,
            status=TenantStatus(tenant.status.value),
            name=tenant.name,
            language=tenant.language,
            time_zone=tenant.time_zone,
            encryption_at_rest=tenant.encryption_at_rest,
        )
        await self._put(Bucket.TENANTS, tenant.tenant_id, info.to_json(tenant.updated_at))

    async def delete_tenant(self, tenant_id: str) -> None:
        """Remove a purged tenant's record."""
        await self._delete(Bucket.TENANTS, tenant_id)

    async def put_placement(self, tenant_id: str, placement: TenantPlacement) -> None:
        """Write ``tenant.<id>``."""
        value = encode_placement(Placement(placement.database, placement.cluster))
        await self._put(Bucket.PLACEMENT, placement_key(tenant_id), value)

    async def delete_placement(self, tenant_id: str) -> None:
        """Remove ``tenant.<id>``."""
        await self._delete(Bucket.PLACEMENT, placement_key(tenant_id))

    async def put_cluster(self, name: str, uri: str) -> None:
        """Write ``cluster.<name>``."""
        await self._put(Bucket.PLACEMENT, cluster_key(name), encode_cluster(uri))

    async def delete_cluster(self, name: str) -> None:
        """Remove ``cluster.<name>``."""
        await self._delete(Bucket.PLACEMENT, cluster_key(name))

    async def tenant_keys(self) -> set[str]:
        """Tenant ids with a record."""
        return set(await self._keys(Bucket.TENANTS))

    async def placement_keys(self) -> tuple[set[str], set[str]]:
        """Tenant ids and cluster names with an entry."""
        tenants: set[str] = set()
        clusters: set[str] = set()
        for key in await self._keys(Bucket.PLACEMENT):
            if key.startswith(_TENANT_PREFIX):
                tenants.add(key[len(_TENANT_PREFIX) :])
            elif key.startswith(_CLUSTER_PREFIX):
                clusters.add(key[len(_CLUSTER_PREFIX) :])
        return tenants, clusters


class StorePlacementMap:
    """``PlacementMap``: this process's store and its ``KvPlacement`` resolver."""

    def __init__(
        self, store: Store, resolver: KvPlacement, *, wait_s: float = PLACEMENT_WAIT_S
    ) -> None:
        self._store = store
        self._resolver = resolver
        self._wait_s = wait_s

    def register_cluster(self, name: str, uri: str) -> None:
        """The store may open the cluster at once (the resolver learns it from KV shortly)."""
        self._store.add_cluster(name, uri)

    async def wait_placed(self, tenant_id: str, placement: TenantPlacement) -> None:
        """Wait until the resolver (a KV watcher, so a moment behind) answers ``placement``."""
        wanted = Placement(placement.database, placement.cluster)
        deadline = time.monotonic() + self._wait_s
        while True:
            try:
                if await self._resolver.resolve(tenant_id) == wanted:
                    return
            except Unavailable:
                pass  # not loaded yet, or the cluster not seen yet: both pass in a moment
            if time.monotonic() > deadline:
                raise Unavailable(
                    f"placement of tenant {tenant_id} not visible after {self._wait_s:g} s: "
                    "retry (the tenant stays provisioning until then)",
                    tenant_id=tenant_id,
                )
            await asyncio.sleep(_PLACEMENT_POLL_S)


class KvHeartbeats:
    """``Heartbeats``: ``NodeHeartbeat`` protobuf values under the node id in bucket ``nodes``."""

    def __init__(self, bus: Bus) -> None:
        self._bus = bus

    async def latest(self, node_ids: Sequence[str]) -> dict[str, Heartbeat | None]:
        """Each node's latest heartbeat, with the time the bucket stored it."""
        name = self._bus.subjects.bucket(Bucket.NODES)
        beats = await asyncio.gather(*(self._one(name, node_id) for node_id in node_ids))
        return dict(zip(node_ids, beats, strict=True))

    async def _one(self, bucket: str, node_id: str) -> Heartbeat | None:
        try:
            # The stream API (not the KV get) returns the message's time: the heartbeat's.
            msg = await self._bus.js.get_msg(f"KV_{bucket}", subject=f"$KV.{bucket}.{node_id}")
        except nats.js.errors.NotFoundError:
            return None
        except _NATS_ERRORS as err:
            raise Unavailable(f"heartbeats unreadable: {err!r}") from err
        if msg.headers and msg.headers.get(KV_OP) in (KV_DEL, KV_PURGE):
            return None
        try:
            beat = NodeHeartbeat.FromString(msg.data or b"")
        except DecodeError:
            log.warning("nodes bucket: unreadable heartbeat", extra={"node_id": node_id})
            return None
        return Heartbeat(
            node_id=beat.node_id or node_id,
            site=beat.site,
            version=beat.version,
            esl_connected=beat.esl_connected,
            channels=beat.channels,
            calls=beat.calls,
            uptime_s=beat.uptime_s,
            at=msg.time,
        )
