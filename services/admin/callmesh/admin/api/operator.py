"""The operator API (``/v1/operator/…``: tenants, quotas, placement, clusters, numbers, sites,
nodes) and the tenant's own view of its settings, quotas and numbers (``/v1/t/{tenant}/…``).

No ``from __future__ import annotations`` here: FastAPI reads the routes' annotations at run time,
and those naming dependencies built inside ``routers()`` only resolve when evaluated in place.
"""

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from callmesh.admin.api.common import After, Limit, PageOut, actor_of, problems
from callmesh.admin.domain.numbers import NumberAssignment
from callmesh.admin.domain.quotas import MAX_LIMIT, QuotaLine, check_limits
from callmesh.admin.domain.sites import Node, NodeStatus, Site
from callmesh.admin.domain.tenants import (
    LANGUAGES,
    Lifecycle,
    NewTenant,
    Tenant,
    TenantChanges,
    TenantPlacement,
)
from callmesh.admin.ports.operator import Cluster, NumberQuery, TenantQuery
from callmesh.admin.service.context import AdminContext
from callmesh.admin.service.operator import ClusterAdmin, NumberAdmin, SiteAdmin, TenantAdmin
from callmesh.core.auth import Principal, get_principal, operator_principal, require_permission
from callmesh.core.errors import InvalidInput
from callmesh.core.permissions import Permission
from callmesh.core.quotas import QuotaKind
from callmesh.core.ratelimit import rate_limit
from callmesh.core.tenancy import redact_uri, tenant_writable

Language = Literal["en", "zh-CN", "zh-TW"]
assert set(LANGUAGES) == {"en", "zh-CN", "zh-TW"}  # the Literal must follow the domain's list

_SLUG = r"^[a-z0-9](?:[a-z0-9-]{0,46}[a-z0-9])?$"
_TOKEN = r"^[A-Za-z0-9_-]{1,64}$"
_DATABASE = r"^[A-Za-z0-9_-]{1,63}$"
_MAX_NUMBERS = 100_000

OperatorOnly = Annotated[Principal, Depends(operator_principal)]
TenantId = Annotated[str, Path(description="tenant id (slug)", max_length=64)]


# --- schemas -------------------------------------------------------------------------------------


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlacementIO(_In):
    """Where a tenant's data lives."""

    cluster: str = Field("default", pattern=_TOKEN, description="a registered cluster")
    database: str = Field(pattern=_DATABASE)


class QuotaLimitsIO(_In):
    """Quota limits by kind; null (or absent) is unlimited."""

    agents_logged_in: int | None = Field(None, ge=0, le=MAX_LIMIT)
    calls_pstn: int | None = Field(None, ge=0, le=MAX_LIMIT)
    calls_sip: int | None = Field(None, ge=0, le=MAX_LIMIT)
    calls_web: int | None = Field(None, ge=0, le=MAX_LIMIT)
    ivr_flows: int | None = Field(None, ge=0, le=MAX_LIMIT)
    ivr_sessions: int | None = Field(None, ge=0, le=MAX_LIMIT)
    recording_bytes: int | None = Field(None, ge=0, le=MAX_LIMIT)
    calls_per_second: int | None = Field(None, ge=0, le=MAX_LIMIT)


assert set(QuotaLimitsIO.model_fields) == {k.value for k in QuotaKind}  # one field per kind


class TenantIn(_In):
    """A new tenant."""

    slug: str = Field(min_length=1, max_length=48, description="the tenant id; immutable")
    name: str = Field(min_length=1, max_length=100)
    language: Language
    time_zone: str = Field(min_length=1, max_length=64, description="IANA, e.g. Europe/Paris")
    encryption_at_rest: bool = False
    quotas: QuotaLimitsIO | None = None
    placement: PlacementIO | None = Field(
        None, description="default: the default cluster and CALLMESH_MONGODB_DATABASE"
    )


class TenantPatch(_In):
    """A change of a tenant (slug and placement are fixed: changing them is refused, 409)."""

    name: str | None = Field(None, min_length=1, max_length=100)
    language: Language | None = None
    time_zone: str | None = Field(None, min_length=1, max_length=64)
    encryption_at_rest: bool | None = Field(None, description="may be switched on, never off")
    slug: str | None = Field(None, max_length=64)
    placement: PlacementIO | None = None


class PlacementOut(BaseModel):
    """Where a tenant's data lives."""

    cluster: str
    database: str


class TenantOut(BaseModel):
    """A tenant as the operator sees it."""

    id: str
    slug: str
    name: str
    language: str
    time_zone: str
    encryption_at_rest: bool
    encryption_since: datetime | None
    status: Lifecycle
    status_reason: str
    quotas: dict[str, int | None]
    placement: PlacementOut
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    purge_after: datetime | None
    version: int


class SuspendIn(_In):
    """Why the tenant is suspended."""

    reason: str = Field(min_length=1, max_length=500)


class QuotaLineOut(BaseModel):
    """A quota's limit (null: unlimited) and the units in use."""

    limit: int | None
    used: int


class RangeIn(_In):
    """Numbers from ``from`` to ``to`` (same length; leading zeros kept)."""

    from_: str = Field(alias="from", min_length=1, max_length=64)
    to: str = Field(min_length=1, max_length=64)


class NumbersIn(_In):
    """Numbers named one by one, or a range."""

    numbers: list[str] | None = Field(None, min_length=1, max_length=_MAX_NUMBERS)
    range: RangeIn | None = None


class AssignIn(NumbersIn):
    """Numbers to assign, with a label."""

    label: str = Field("", max_length=100)


class NumberOut(BaseModel):
    """An assigned number."""

    number: str
    tenant_id: str
    label: str
    created_at: datetime


class NumbersChangedOut(BaseModel):
    """What an assignment added or a release removed."""

    tenant_id: str
    numbers: list[str]


class ClusterIn(_In):
    """A MongoDB deployment (the URI may hold credentials: it is never shown again unredacted)."""

    uri: str = Field(min_length=10, max_length=2048)


class ClusterOut(BaseModel):
    """A cluster, its URI redacted."""

    name: str
    uri: str
    created_at: datetime
    updated_at: datetime


class SiteIn(_In):
    """A new site."""

    site_id: str = Field(min_length=1, max_length=48)
    name: str = Field(min_length=1, max_length=100)
    description: str = Field("", max_length=500)
    region: str = Field("", max_length=100)
    address: str = Field("", max_length=500)


class SitePatch(_In):
    """A change of a site."""

    name: str | None = Field(None, min_length=1, max_length=100)
    description: str | None = Field(None, max_length=500)
    region: str | None = Field(None, max_length=100)
    address: str | None = Field(None, max_length=500)


class SiteOut(BaseModel):
    """A site."""

    site_id: str
    name: str
    description: str
    region: str
    address: str
    created_at: datetime
    updated_at: datetime


class EslEndpointIO(_In):
    """Where the node's event socket listens."""

    host: str = Field(min_length=1, max_length=253)
    port: int = Field(8021, ge=1, le=65535)


class NodeIn(_In):
    """A new switch node."""

    node_id: str = Field(min_length=1, max_length=64)
    site_id: str = Field(min_length=1, max_length=48)
    addresses: list[str] = Field(min_length=1, max_length=16)
    esl_endpoint: EslEndpointIO
    role: Literal["central", "branch"] = "central"
    description: str = Field("", max_length=500)


class NodePatch(_In):
    """A change of a node."""

    site_id: str | None = Field(None, min_length=1, max_length=48)
    addresses: list[str] | None = Field(None, min_length=1, max_length=16)
    esl_endpoint: EslEndpointIO | None = None
    role: Literal["central", "branch"] | None = None
    description: str | None = Field(None, max_length=500)


class NodeStatusOut(BaseModel):
    """A node's health from its latest heartbeat."""

    state: Literal["up", "down", "unknown"]
    reason: str
    last_heartbeat_at: datetime | None
    esl_connected: bool | None
    channels: int | None
    calls: int | None
    version: str | None
    uptime_s: int | None


class NodeOut(BaseModel):
    """A node and its health."""

    node_id: str
    site_id: str
    addresses: list[str]
    esl_endpoint: EslEndpointIO
    role: Literal["central", "branch"]
    description: str
    created_at: datetime
    updated_at: datetime
    status: NodeStatusOut


class SettingsOut(BaseModel):
    """The tenant's settings, as its own admins see them."""

    tenant_id: str
    name: str
    language: str
    time_zone: str
    encryption_at_rest: bool
    status: Lifecycle


class SettingsPatch(_In):
    """A change of the tenant's own settings."""

    language: Language | None = None
    time_zone: str | None = Field(None, min_length=1, max_length=64)


# --- conversions ---------------------------------------------------------------------------------


def tenant_out(tenant: Tenant) -> TenantOut:
    """The API shape of a tenant."""
    record = tenant.record()
    return TenantOut(
        id=tenant.tenant_id,
        slug=tenant.tenant_id,
        name=tenant.name,
        language=tenant.language,
        time_zone=tenant.time_zone,
        encryption_at_rest=tenant.encryption_at_rest,
        encryption_since=tenant.encryption_since,
        status=tenant.status,
        status_reason=tenant.status_reason,
        quotas=record["quotas"],
        placement=PlacementOut(
            cluster=tenant.placement.cluster, database=tenant.placement.database
        ),
        created_at=tenant.created_at,
        updated_at=tenant.updated_at,
        deleted_at=tenant.deleted_at,
        purge_after=tenant.purge_after,
        version=tenant.version,
    )


def quotas_out(lines: dict[QuotaKind, QuotaLine]) -> dict[str, QuotaLineOut]:
    """The usage report's API shape: ``{kind: {limit, used}}``."""
    return {
        kind.value: QuotaLineOut(limit=line.limit, used=line.used) for kind, line in lines.items()
    }


def number_out(number: NumberAssignment) -> NumberOut:
    """The API shape of an assigned number."""
    return NumberOut(
        number=number.number,
        tenant_id=number.tenant_id,
        label=number.label,
        created_at=number.created_at,
    )


def cluster_out(cluster: Cluster) -> ClusterOut:
    """A cluster, its URI redacted (never shown as stored)."""
    return ClusterOut(
        name=cluster.name,
        uri=redact_uri(cluster.uri),
        created_at=cluster.created_at,
        updated_at=cluster.updated_at,
    )


def site_out(site: Site) -> SiteOut:
    """The API shape of a site."""
    return SiteOut(**site.record())


def node_out(node: Node, health: NodeStatus) -> NodeOut:
    """The API shape of a node with its health."""
    return NodeOut(
        node_id=node.node_id,
        site_id=node.site_id,
        addresses=list(node.addresses),
        esl_endpoint=EslEndpointIO(host=node.esl_endpoint.host, port=node.esl_endpoint.port),
        role=node.role.value,
        description=node.description,
        created_at=node.created_at,
        updated_at=node.updated_at,
        status=NodeStatusOut(
            state=health.state.value,
            reason=health.reason,
            last_heartbeat_at=health.last_heartbeat_at,
            esl_connected=health.esl_connected,
            channels=health.channels,
            calls=health.calls,
            version=health.version,
            uptime_s=health.uptime_s,
        ),
    )


def settings_out(tenant: Tenant) -> SettingsOut:
    """The tenant's own view of its settings."""
    return SettingsOut(
        tenant_id=tenant.tenant_id,
        name=tenant.name,
        language=tenant.language,
        time_zone=tenant.time_zone,
        encryption_at_rest=tenant.encryption_at_rest,
        status=tenant.status,
    )


def _placement(value: PlacementIO | None) -> TenantPlacement | None:
    return TenantPlacement(value.cluster, value.database) if value is not None else None


def _limits(value: QuotaLimitsIO | None) -> dict[QuotaKind, int | None]:
    return check_limits(value.model_dump() if value is not None else {})


def if_match_version(value: str | None) -> int | None:
    """The tenant version an ``If-Match`` header names (``3``, ``"3"`` or ``W/"3"``)."""
    if value is None:
        return None
    text = value.strip().removeprefix("W/").strip('"')
    if not text.isdigit() or len(text) > 18:
        raise InvalidInput("If-Match", "must be a tenant version (its ETag)")
    return int(text)


def _with_etag(response: Response, tenant: Tenant) -> TenantOut:
    response.headers["ETag"] = f'"{tenant.version}"'
    return tenant_out(tenant)


# --- routers -------------------------------------------------------------------------------------


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    # Every operator route may answer these besides its own (400: a body that is not JSON).
    return problems(400, 401, 403, 422, 503, *codes)


def _own_errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    # Tenant routes: also 404 (unknown or deleted tenant, another tenant's id) and 429 (rate).
    return problems(400, 401, 403, 404, 422, 429, 503, *codes)


def routers(ctx: AdminContext) -> list[APIRouter]:
    """This area's routers."""
    return [
        _tenant_routes(ctx),
        _number_routes(ctx),
        _cluster_routes(ctx),
        _site_routes(ctx),
        _own_routes(ctx),
    ]


def _tenant_routes(ctx: AdminContext) -> APIRouter:
    admin = ctx.dependency(TenantAdmin)
    Admin = Annotated[TenantAdmin, Depends(admin)]
    router = APIRouter(prefix="/v1/operator/tenants", tags=["operator: tenants"])

    @router.post(
        "", status_code=status.HTTP_201_CREATED, response_model=TenantOut, responses=_errors(409)
    )
    async def create_tenant(
        body: TenantIn, principal: OperatorOnly, tenants: Admin, response: Response
    ) -> TenantOut:
        """Create a tenant (409 if the slug is taken, deleted tenants included until purged)."""
        spec = NewTenant(
            slug=body.slug,
            name=body.name,
            language=body.language,
            time_zone=body.time_zone,
            encryption_at_rest=body.encryption_at_rest,
            quotas=_limits(body.quotas),
            placement=_placement(body.placement),
        )
        tenant = await tenants.create(actor_of(principal), spec)
        response.headers["Location"] = f"/v1/operator/tenants/{tenant.tenant_id}"
        return _with_etag(response, tenant)

    @router.get("", response_model=PageOut[TenantOut], responses=_errors())
    async def list_tenants(
        _: OperatorOnly,
        tenants: Admin,
        limit: Limit = 50,
        after: After = None,
        status_: Annotated[Lifecycle | None, Query(alias="status")] = None,
        q: Annotated[
            str | None, Query(max_length=100, description="part of the name or the slug")
        ] = None,
    ) -> PageOut[TenantOut]:
        """Tenants in slug order; filter by status and by a piece of the name or slug."""
        page = await tenants.search(TenantQuery(status=status_, search=q, limit=limit, after=after))
        return PageOut(items=[tenant_out(t) for t in page.items], next=page.next)

    @router.get("/{tenant}", response_model=TenantOut, responses=_errors(404))
    async def get_tenant(
        tenant: TenantId, _: OperatorOnly, tenants: Admin, response: Response
    ) -> TenantOut:
        """A tenant in any state (its ETag is its version, for If-Match)."""
        return _with_etag(response, await tenants.get(tenant))

    @router.patch("/{tenant}", response_model=TenantOut, responses=_errors(404, 409, 412))
    async def update_tenant(
        tenant: TenantId,
        body: TenantPatch,
        principal: OperatorOnly,
        tenants: Admin,
        response: Response,
        if_match: Annotated[str | None, Header(max_length=64)] = None,
    ) -> TenantOut:
        """Change name, language, time zone, or switch encryption on; 412 if If-Match is stale."""
        changes = TenantChanges(
            name=body.name,
            language=body.language,
            time_zone=body.time_zone,
            encryption_at_rest=body.encryption_at_rest,
            slug=body.slug,
            placement=_placement(body.placement),
        )
        updated = await tenants.update(
            actor_of(principal), tenant, changes, if_match_version(if_match)
        )
        return _with_etag(response, updated)

    @router.delete("/{tenant}", response_model=TenantOut, responses=_errors(404, 409))
    async def delete_tenant(
        tenant: TenantId, principal: OperatorOnly, tenants: Admin, response: Response
    ) -> TenantOut:
        """Soft-delete: gone for everyone at once, purged after the retention period."""
        return _with_etag(response, await tenants.delete(actor_of(principal), tenant))

    @router.post("/{tenant}/restore", response_model=TenantOut, responses=_errors(404, 409))
    async def restore_tenant(
        tenant: TenantId, principal: OperatorOnly, tenants: Admin, response: Response
    ) -> TenantOut:
        """Bring a soft-deleted tenant back as it was, within its retention period."""
        return _with_etag(response, await tenants.restore(actor_of(principal), tenant))

    @router.post("/{tenant}/suspend", response_model=TenantOut, responses=_errors(404, 409))
    async def suspend_tenant(
        tenant: TenantId,
        body: SuspendIn,
        principal: OperatorOnly,
        tenants: Admin,
        response: Response,
    ) -> TenantOut:
        """Suspend: services refuse new work, the tenant API becomes read-only."""
        return _with_etag(response, await tenants.suspend(actor_of(principal), tenant, body.reason))

    @router.post("/{tenant}/resume", response_model=TenantOut, responses=_errors(404, 409))
    async def resume_tenant(
        tenant: TenantId, principal: OperatorOnly, tenants: Admin, response: Response
    ) -> TenantOut:
        """Resume a suspended tenant."""
        return _with_etag(response, await tenants.resume(actor_of(principal), tenant))

    @router.get("/{tenant}/quotas", response_model=dict[str, QuotaLineOut], responses=_errors(404))
    async def get_quotas(
        tenant: TenantId, _: OperatorOnly, tenants: Admin
    ) -> dict[str, QuotaLineOut]:
        """Each quota's limit (null: unlimited) next to its current use."""
        return quotas_out(await tenants.quotas(tenant))

    @router.put(
        "/{tenant}/quotas", response_model=dict[str, QuotaLineOut], responses=_errors(404, 409)
    )
    async def put_quotas(
        tenant: TenantId, body: QuotaLimitsIO, principal: OperatorOnly, tenants: Admin
    ) -> dict[str, QuotaLineOut]:
        """Replace every limit (absent or null: unlimited); answers the usage report."""
        lines = await tenants.set_quotas(actor_of(principal), tenant, _limits(body))
        return quotas_out(lines)

    @router.get("/{tenant}/placement", response_model=PlacementOut, responses=_errors(404))
    async def get_placement(tenant: TenantId, _: OperatorOnly, tenants: Admin) -> PlacementOut:
        """Where the tenant's data lives."""
        found = (await tenants.get(tenant)).placement
        return PlacementOut(cluster=found.cluster, database=found.database)

    @router.put("/{tenant}/placement", response_model=PlacementOut, responses=_errors(404, 409))
    async def put_placement(
        tenant: TenantId, body: PlacementIO, principal: OperatorOnly, tenants: Admin
    ) -> PlacementOut:
        """Placement is fixed at creation: only the same one is accepted (409: not migrated)."""
        placed = await tenants.set_placement(
            actor_of(principal), tenant, TenantPlacement(body.cluster, body.database)
        )
        return PlacementOut(cluster=placed.cluster, database=placed.database)

    return router


def _number_routes(ctx: AdminContext) -> APIRouter:
    numbers = ctx.dependency(NumberAdmin)
    Numbers = Annotated[NumberAdmin, Depends(numbers)]
    router = APIRouter(prefix="/v1/operator", tags=["operator: numbers"])

    def named(admin: NumberAdmin, body: NumbersIn) -> list[str]:
        first, last = (body.range.from_, body.range.to) if body.range else (None, None)
        return admin.requested(body.numbers, first, last)

    @router.post(
        "/tenants/{tenant}/numbers",
        status_code=status.HTTP_201_CREATED,
        response_model=NumbersChangedOut,
        responses=_errors(404, 409),
    )
    async def assign_numbers(
        tenant: TenantId, body: AssignIn, principal: OperatorOnly, admin: Numbers
    ) -> NumbersChangedOut:
        """Assign numbers (a list or a range) to a tenant: all, or none (409 naming the taken)."""
        wanted = named(admin, body)
        added = await admin.assign(actor_of(principal), tenant, wanted, body.label)
        return NumbersChangedOut(tenant_id=tenant, numbers=[a.number for a in added])

    @router.post(
        "/tenants/{tenant}/numbers/release",
        response_model=NumbersChangedOut,
        responses=_errors(404),
    )
    async def release_numbers(
        tenant: TenantId, body: NumbersIn, principal: OperatorOnly, admin: Numbers
    ) -> NumbersChangedOut:
        """Release several numbers (a list or a range): all must be the tenant's, or none goes."""
        released = await admin.release(actor_of(principal), tenant, named(admin, body))
        return NumbersChangedOut(tenant_id=tenant, numbers=released)

    @router.delete(
        "/tenants/{tenant}/numbers/{number}",
        status_code=status.HTTP_204_NO_CONTENT,
        responses=_errors(404),
    )
    async def release_number(
        tenant: TenantId,
        number: Annotated[str, Path(max_length=64)],
        principal: OperatorOnly,
        admin: Numbers,
    ) -> Response:
        """Release one number of a tenant."""
        await admin.release_one(actor_of(principal), tenant, number)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @router.get("/numbers", response_model=PageOut[NumberOut], responses=_errors())
    async def list_numbers(
        _: OperatorOnly,
        admin: Numbers,
        limit: Limit = 50,
        after: After = None,
        tenant: Annotated[str | None, Query(max_length=64)] = None,
        prefix: Annotated[str | None, Query(max_length=21, description="e.g. +3312")] = None,
    ) -> PageOut[NumberOut]:
        """Assigned numbers in number order; filter by tenant and by prefix."""
        page = await admin.search(
            NumberQuery(tenant_id=tenant, prefix=prefix, limit=limit, after=after)
        )
        return PageOut(items=[number_out(n) for n in page.items], next=page.next)

    @router.get("/numbers/{number}", response_model=NumberOut, responses=_errors(404))
    async def get_number(
        number: Annotated[str, Path(max_length=64)], _: OperatorOnly, admin: Numbers
    ) -> NumberOut:
        """Who owns a number."""
        return number_out(await admin.get(number))

    return router


def _cluster_routes(ctx: AdminContext) -> APIRouter:
    clusters = ctx.dependency(ClusterAdmin)
    Clusters = Annotated[ClusterAdmin, Depends(clusters)]
    Name = Annotated[str, Path(max_length=64)]
    router = APIRouter(prefix="/v1/operator/clusters", tags=["operator: placement"])

    @router.get("", response_model=list[ClusterOut], responses=_errors())
    async def list_clusters(_: OperatorOnly, admin: Clusters) -> list[ClusterOut]:
        """Registered MongoDB deployments (URIs redacted); ``default`` is the configured one."""
        return [cluster_out(c) for c in await admin.all()]

    @router.get("/{name}", response_model=ClusterOut, responses=_errors(404))
    async def get_cluster(name: Name, _: OperatorOnly, admin: Clusters) -> ClusterOut:
        """A cluster (URI redacted)."""
        return cluster_out(await admin.get(name))

    @router.put("/{name}", response_model=ClusterOut, responses=_errors())
    async def put_cluster(
        name: Name, body: ClusterIn, principal: OperatorOnly, admin: Clusters, response: Response
    ) -> ClusterOut:
        """Register a cluster or change its URI."""
        cluster, created = await admin.put(actor_of(principal), name, body.uri)
        if created:
            response.status_code = status.HTTP_201_CREATED
        return cluster_out(cluster)

    @router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT, responses=_errors(404, 409))
    async def delete_cluster(name: Name, principal: OperatorOnly, admin: Clusters) -> Response:
        """Forget a cluster (409 while any tenant, deleted ones included, is placed on it)."""
        await admin.delete(actor_of(principal), name)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    return router


def _site_routes(ctx: AdminContext) -> APIRouter:
    sites = ctx.dependency(SiteAdmin)
    Sites = Annotated[SiteAdmin, Depends(sites)]
    SiteId = Annotated[str, Path(max_length=64)]
    NodeId = Annotated[str, Path(max_length=64)]
    router = APIRouter(prefix="/v1/operator", tags=["operator: sites and nodes"])

    @router.post(
        "/sites",
        status_code=status.HTTP_201_CREATED,
        response_model=SiteOut,
        responses=_errors(409),
    )
    async def create_site(body: SiteIn, principal: OperatorOnly, admin: Sites) -> SiteOut:
        """Register a site (409 if its id is taken)."""
        site = await admin.create_site(
            actor_of(principal), body.site_id, body.name, body.description, body.region,
            body.address,
        )  # fmt: skip
        return site_out(site)

    @router.get("/sites", response_model=PageOut[SiteOut], responses=_errors())
    async def list_sites(
        _: OperatorOnly, admin: Sites, limit: Limit = 50, after: After = None
    ) -> PageOut[SiteOut]:
        """Sites in id order."""
        page = await admin.list_sites(limit, after)
        return PageOut(items=[site_out(s) for s in page.items], next=page.next)

    @router.get("/sites/{site}", response_model=SiteOut, responses=_errors(404))
    async def get_site(site: SiteId, _: OperatorOnly, admin: Sites) -> SiteOut:
        """A site."""
        return site_out(await admin.get_site(site))

    @router.patch("/sites/{site}", response_model=SiteOut, responses=_errors(404))
    async def update_site(
        site: SiteId, body: SitePatch, principal: OperatorOnly, admin: Sites
    ) -> SiteOut:
        """Change a site."""
        changed = await admin.update_site(actor_of(principal), site, body.model_dump())
        return site_out(changed)

    @router.delete(
        "/sites/{site}", status_code=status.HTTP_204_NO_CONTENT, responses=_errors(404, 409)
    )
    async def delete_site(site: SiteId, principal: OperatorOnly, admin: Sites) -> Response:
        """Forget a site (409 while it has nodes)."""
        await admin.delete_site(actor_of(principal), site)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    async def with_status(admin: SiteAdmin, nodes: list[Node]) -> list[NodeOut]:
        health = await admin.statuses(nodes)
        return [node_out(n, health[n.node_id]) for n in nodes]

    @router.post(
        "/nodes",
        status_code=status.HTTP_201_CREATED,
        response_model=NodeOut,
        responses=_errors(409),
    )
    async def create_node(body: NodeIn, principal: OperatorOnly, admin: Sites) -> NodeOut:
        """Register a switch node at a site (409 if its id is taken)."""
        node = await admin.create_node(
            actor_of(principal), body.node_id, body.site_id, body.addresses,
            body.esl_endpoint.host, body.esl_endpoint.port, body.role, body.description,
        )  # fmt: skip
        return (await with_status(admin, [node]))[0]

    @router.get("/nodes", response_model=PageOut[NodeOut], responses=_errors())
    async def list_nodes(
        _: OperatorOnly,
        admin: Sites,
        limit: Limit = 50,
        after: After = None,
        site: Annotated[str | None, Query(max_length=64)] = None,
    ) -> PageOut[NodeOut]:
        """Nodes in id order with their health; filter by site."""
        page = await admin.list_nodes(site, limit, after)
        return PageOut(items=await with_status(admin, page.items), next=page.next)

    @router.get("/nodes/{node}", response_model=NodeOut, responses=_errors(404))
    async def get_node(node: NodeId, _: OperatorOnly, admin: Sites) -> NodeOut:
        """A node with its health (up, down, unknown) from its latest heartbeat."""
        return (await with_status(admin, [await admin.get_node(node)]))[0]

    @router.patch("/nodes/{node}", response_model=NodeOut, responses=_errors(404))
    async def update_node(
        node: NodeId, body: NodePatch, principal: OperatorOnly, admin: Sites
    ) -> NodeOut:
        """Change a node (moving it to another site included)."""
        esl = body.esl_endpoint
        changed = await admin.update_node(
            actor_of(principal), node, site_id=body.site_id, addresses=body.addresses,
            esl_host=esl.host if esl else None, esl_port=esl.port if esl else None,
            role=body.role, description=body.description,
        )  # fmt: skip
        return (await with_status(admin, [changed]))[0]

    @router.delete("/nodes/{node}", status_code=status.HTTP_204_NO_CONTENT, responses=_errors(404))
    async def delete_node(node: NodeId, principal: OperatorOnly, admin: Sites) -> Response:
        """Forget a node."""
        await admin.delete_node(actor_of(principal), node)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    return router


def _own_routes(ctx: AdminContext) -> APIRouter:
    """The tenant's own view: ``/v1/t/{tenant}/settings``, ``quotas`` and ``numbers``."""
    tenants = ctx.dependency(TenantAdmin)
    numbers = ctx.dependency(NumberAdmin)
    Admin = Annotated[TenantAdmin, Depends(tenants)]
    Numbers = Annotated[NumberAdmin, Depends(numbers)]
    # Authentication and the tenant's API rate first (401/403/429), then the permission (403),
    # then the tenant's state (404 unknown or deleted; 423 for writes while suspended).
    within_rate = Depends(rate_limit())

    def guarded(permission: Permission) -> list[Any]:
        return [within_rate, Depends(require_permission(permission)), Depends(tenant_writable)]

    Caller = Annotated[Principal, Depends(get_principal)]
    router = APIRouter(prefix="/v1/t/{tenant}", tags=["tenant: settings, quotas, numbers"])

    @router.get(
        "/settings",
        response_model=SettingsOut,
        dependencies=guarded(Permission.SETTINGS_READ),
        responses=_own_errors(),
    )
    async def get_settings(tenant: str, admin: Admin) -> SettingsOut:
        """The tenant's name, language, time zone and status."""
        return settings_out(await admin.settings(tenant))

    @router.patch(
        "/settings",
        response_model=SettingsOut,
        dependencies=guarded(Permission.SETTINGS_WRITE),
        responses=_own_errors(423),
    )
    async def update_settings(
        tenant: str, body: SettingsPatch, principal: Caller, admin: Admin
    ) -> SettingsOut:
        """Change the tenant's language or time zone."""
        updated = await admin.update_settings(
            actor_of(principal), tenant, body.language, body.time_zone
        )
        return settings_out(updated)

    @router.get(
        "/quotas",
        response_model=dict[str, QuotaLineOut],
        dependencies=guarded(Permission.QUOTAS_READ),
        responses=_own_errors(),
    )
    async def get_own_quotas(tenant: str, admin: Admin) -> dict[str, QuotaLineOut]:
        """Each quota's limit next to its current use."""
        return quotas_out(await admin.own_quotas(tenant))

    @router.get(
        "/numbers",
        response_model=PageOut[NumberOut],
        dependencies=guarded(Permission.NUMBERS_READ),
        responses=_own_errors(),
    )
    async def list_own_numbers(
        tenant: str,
        admin: Numbers,
        limit: Limit = 50,
        after: After = None,
        prefix: Annotated[str | None, Query(max_length=21)] = None,
    ) -> PageOut[NumberOut]:
        """The tenant's access numbers."""
        page = await admin.search_own(tenant, NumberQuery(prefix=prefix, limit=limit, after=after))
        return PageOut(items=[number_out(n) for n in page.items], next=page.next)

    @router.get(
        "/numbers/{number}",
        response_model=NumberOut,
        dependencies=guarded(Permission.NUMBERS_READ),
        responses=_own_errors(),
    )
    async def get_own_number(
        tenant: str, number: Annotated[str, Path(max_length=64)], admin: Numbers
    ) -> NumberOut:
        """One of the tenant's numbers (404 for any other, whoever owns it)."""
        return number_out(await admin.get_own(tenant, number))

    return router
