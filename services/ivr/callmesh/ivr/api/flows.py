"""The flow API under ``/v1/t/{tenant}/ivr/flows``: drafts, validation, publishing, versions,
rollback and dry runs.

Reads need ``ivr.read``; saving drafts ``ivr.write``; publishing and rolling back
``ivr.publish``. A draft may be saved with problems (it is a work in progress); only a flow that
validates without problems is published. Every published version is kept, immutable; a rollback
publishes an old version's document again as a new version (``rollback_of`` says which).
"""

# No ``from __future__ import annotations``: FastAPI evaluates the routes' Annotated aliases.
import logging
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, Field

from callmesh.core.auth import Principal, require_permission
from callmesh.core.bus import Bus
from callmesh.core.errors import DomainError, InvalidInput
from callmesh.core.http import PROBLEM_JSON, Problem
from callmesh.core.permissions import Permission
from callmesh.core.quotas import QuotaKind, Quotas
from callmesh.core.ratelimit import rate_limit
from callmesh.core.tenancy import tenant_writable
from callmesh.ivr.adapters.flow_store import FlowStore, StoredFlow
from callmesh.ivr.domain.commands import HttpAnswer, TrailEntry
from callmesh.ivr.domain.dryrun import DryRunInput, dry_run
from callmesh.ivr.domain.flow import Flow
from callmesh.ivr.domain.parse import FlowInvalid, parse_flow
from callmesh.ivr.domain.parse import Problem as FlowProblem
from callmesh.ivr.domain.validate import validate

__all__ = ["MAX_NODES", "routers"]

log = logging.getLogger(__name__)
MAX_NODES = 500
FLOW_ID = r"^[a-z0-9][a-z0-9_-]{0,63}$"

_PROBLEM: dict[str, Any] = {
    "model": Problem,
    "description": "a problem (problem+json): what went wrong, with its code",
    "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
}
ERRORS: dict[int | str, dict[str, Any]] = {"4XX": _PROBLEM}
limited = rate_limit()
FlowId = Annotated[str, Path(pattern=FLOW_ID, description="a flow id")]


def guard(permission: Permission) -> list[Any]:
    """Token, tenant access, permission, tenant state (as every tenant route)."""
    return [
        Depends(limited),
        Depends(require_permission(permission)),
        Depends(tenant_writable),
    ]


async def flows_of(request: Request, tenant: Annotated[str, Path()]) -> FlowStore:
    """The tenant's flows."""
    return FlowStore(await request.app.state.runtime.store.tenant(tenant))


class QuotaHandle:
    """The service's quota handle, made at the first use and closed at stop."""

    def __init__(self) -> None:
        self.quotas: Quotas | None = None

    def of(self, request: Request) -> Quotas:
        """The handle on the app's bus."""
        if self.quotas is None:
            self.quotas = Quotas(request.app.state.runtime.bus, service="ivr")
        return self.quotas

    async def close(self, _runtime: object = None) -> None:
        """Wait for give-backs still running."""
        if self.quotas is not None:
            await self.quotas.close()


Flows = Annotated[FlowStore, Depends(flows_of)]

Who = Annotated[Principal, Depends(limited)]


class ProblemOut(BaseModel):
    """One reason a flow cannot be published."""

    node_id: str
    field: str
    rule: str


class FlowIn(BaseModel):
    """A new flow."""

    flow_id: str = Field(pattern=FLOW_ID)
    document: dict[str, Any]


class DraftIn(BaseModel):
    """A draft's new document."""

    document: dict[str, Any]


class FlowOut(BaseModel):
    """A flow: its draft, its problems, which version is live."""

    flow_id: str
    name: str
    draft: dict[str, Any]
    draft_updated_at: datetime
    draft_problems: list[ProblemOut]
    published_version: int
    latest_version: int
    created_at: datetime


class ValidationOut(BaseModel):
    """Whether the draft can be published."""

    valid: bool
    problems: list[ProblemOut]


class PublishedOut(BaseModel):
    """The version now live."""

    flow_id: str
    version: int


class RollbackIn(BaseModel):
    """Which version to make live again."""

    version: int = Field(ge=1)


class HttpAnswerIn(BaseModel):
    """What an http node's service answers in a dry run."""

    status: int = Field(ge=0, le=599)
    body: str = ""
    error: str = ""


class DryRunIn(BaseModel):
    """An imagined call."""

    version: int | Literal["draft"] = "draft"
    caller: str = Field("+10000000000", max_length=32)
    dialled: str = Field("", max_length=32)
    at: datetime | None = None
    inputs: list[str] = Field(default_factory=list, max_length=200)
    http: dict[str, HttpAnswerIn] = Field(default_factory=dict)
    rows: dict[str, dict[str, dict[str, str]]] = Field(default_factory=dict)
    blacklisted: list[str] = Field(default_factory=list)
    calendars: dict[str, str] = Field(default_factory=dict)
    language: str = ""
    variables: dict[str, str] = Field(default_factory=dict)
    time_zone: str = "UTC"
    enqueue_accepted: bool = True


class TrailOut(BaseModel):
    """One step of the trail."""

    seq: int
    kind: str
    node_id: str
    node_type: str
    detail: dict[str, str]


class DryRunOut(BaseModel):
    """What the imagined call met."""

    path: list[str]
    prompts: list[dict[str, Any]]
    variables: dict[str, str]
    outcome: str
    detail: str
    last_node_id: str
    hangup_cause: str
    commands: list[str]
    trail: list[TrailOut]
    unused_inputs: list[str]


def _problems(items: list[FlowProblem] | tuple[FlowProblem, ...]) -> list[ProblemOut]:
    return [ProblemOut(node_id=p.node_id, field=p.field, rule=p.rule) for p in items]


def _check(document: dict[str, Any]) -> tuple[Flow | None, list[ProblemOut]]:
    try:
        flow = parse_flow(document)
    except FlowInvalid as err:
        return None, _problems(err.problems)
    return flow, _problems(validate(flow, max_nodes=MAX_NODES))


def _unpublishable(what: str, problems: list[ProblemOut]) -> InvalidInput:
    """The 422 for a flow with problems: the first names field and rule, all are listed."""
    first = problems[0]
    return InvalidInput(
        first.field,
        first.rule,
        f"the {what} has {len(problems)} problem(s); first: {first.field}: {first.rule}",
        problems=[p.model_dump() for p in problems],
    )


def _out(head: StoredFlow) -> FlowOut:
    _, problems = _check(head.draft)
    return FlowOut(
        flow_id=head.flow_id,
        name=head.name,
        draft=head.draft,
        draft_updated_at=head.draft_updated_at,
        draft_problems=problems,
        published_version=head.published_version,
        latest_version=head.latest_version,
        created_at=head.created_at,
    )


def _size(document: dict[str, Any]) -> dict[str, Any]:
    nodes = document.get("nodes")
    if isinstance(nodes, list) and len(nodes) > MAX_NODES:
        raise InvalidInput("document.nodes", f"must have at most {MAX_NODES} nodes")
    return document


async def _announce(
    request: Request, tenant: str, flow_id: str, version: int, by: str, rollback: bool
) -> None:
    bus: Bus = request.app.state.runtime.bus
    event = bus.new_event(tenant)
    body = event.ivr_flow_published
    body.flow_id, body.version, body.published_by, body.rollback = flow_id, version, by, rollback
    try:
        await bus.publish(event)
    except DomainError as err:  # the version is live; replicas' caches expire on their own
        log.warning("flow published but not announced: %s", err, extra={"tenant_id": tenant})


def _trail(entries: list[TrailEntry]) -> list[TrailOut]:
    return [
        TrailOut(
            seq=e.seq,
            kind=e.kind.value,
            node_id=e.node_id,
            node_type=e.node_type,
            detail=dict(e.detail),
        )
        for e in entries
    ]


def routers(quota_handle: QuotaHandle | None = None) -> list[APIRouter]:
    """The flow routes."""
    handle = quota_handle or QuotaHandle()
    QuotasDep = Annotated[Quotas, Depends(handle.of)]
    router = APIRouter(prefix="/v1/t/{tenant}/ivr/flows", tags=["ivr flows"], responses=ERRORS)
    read = guard(Permission.IVR_READ)
    write = guard(Permission.IVR_WRITE)
    publish = guard(Permission.IVR_PUBLISH)

    @router.post("", dependencies=write, status_code=201)
    async def create_flow(
        body: FlowIn,
        flows: Flows,
        who: Who,
        response: Response,
        quotas: QuotasDep,
        tenant: Annotated[str, Path()],
    ) -> FlowOut:
        """Create a flow; its document becomes the draft (problems are reported, not refused).
        Counts toward the tenant's ``ivr_flows`` quota (429 when none is left)."""
        document = _size(body.document)
        await quotas.take(tenant, QuotaKind.IVR_FLOWS)
        try:
            head = await flows.create(body.flow_id, document, who.subject)
        except BaseException:
            await quotas.release(tenant, QuotaKind.IVR_FLOWS)
            raise
        response.headers["Location"] = f"flows/{head.flow_id}"
        return _out(head)

    @router.get("", dependencies=read)
    async def list_flows(flows: Flows) -> list[FlowOut]:
        """The tenant's flows."""
        return [_out(h) for h in await flows.all()]

    @router.get("/{flow_id}", dependencies=read)
    async def get_flow(flow_id: FlowId, flows: Flows) -> FlowOut:
        """One flow with its draft and the draft's problems."""
        return _out(await flows.get(flow_id))

    @router.put("/{flow_id}/draft", dependencies=write)
    async def save_draft(flow_id: FlowId, body: DraftIn, flows: Flows, who: Who) -> FlowOut:
        """Replace the draft."""
        return _out(await flows.save_draft(flow_id, _size(body.document), who.subject))

    @router.post("/{flow_id}/validate", dependencies=read)
    async def validate_flow(flow_id: FlowId, flows: Flows) -> ValidationOut:
        """Every problem keeping the draft from being published."""
        _, problems = _check((await flows.get(flow_id)).draft)
        return ValidationOut(valid=not problems, problems=problems)

    @router.post("/{flow_id}/publish", dependencies=publish)
    async def publish_flow(
        flow_id: FlowId, flows: Flows, who: Who, request: Request, tenant: Annotated[str, Path()]
    ) -> PublishedOut:
        """Publish the draft as the next version (422 listing the problems if it has any)."""
        draft = (await flows.get(flow_id)).draft
        flow, problems = _check(draft)
        if flow is None or problems:
            raise _unpublishable("draft", problems)
        version = await flows.publish(flow_id, draft, who.subject)
        await _announce(request, tenant, flow_id, version, who.subject, False)
        return PublishedOut(flow_id=flow_id, version=version)

    @router.get("/{flow_id}/versions", dependencies=read)
    async def list_versions(flow_id: FlowId, flows: Flows) -> list[dict[str, Any]]:
        """Published versions, newest first."""
        return await flows.versions_of(flow_id)

    @router.get("/{flow_id}/versions/{version}", dependencies=read)
    async def get_version(flow_id: FlowId, version: int, flows: Flows) -> dict[str, Any]:
        """One published version with its document."""
        return await flows.version(flow_id, version)

    @router.post("/{flow_id}/rollback", dependencies=publish)
    async def rollback(
        flow_id: FlowId,
        body: RollbackIn,
        flows: Flows,
        who: Who,
        request: Request,
        tenant: Annotated[str, Path()],
    ) -> PublishedOut:
        """Make an old version live again, as a new version."""
        old = await flows.version(flow_id, body.version)
        version = await flows.publish(
            flow_id, old["document"], who.subject, rollback_of=body.version
        )
        await _announce(request, tenant, flow_id, version, who.subject, True)
        return PublishedOut(flow_id=flow_id, version=version)

    @router.delete("/{flow_id}", dependencies=write, status_code=204)
    async def delete_flow(
        flow_id: FlowId, flows: Flows, quotas: QuotasDep, tenant: Annotated[str, Path()]
    ) -> Response:
        """Delete the flow and all its versions (its quota unit is given back)."""
        await flows.delete(flow_id)
        await quotas.release(tenant, QuotaKind.IVR_FLOWS)
        return Response(status_code=204)

    @router.post("/{flow_id}/dry-run", dependencies=read)
    async def dry_run_flow(
        flow_id: FlowId, body: DryRunIn, flows: Flows, tenant: Annotated[str, Path()]
    ) -> DryRunOut:
        """Run the draft (or a published version) for an imagined call."""
        if body.version == "draft":
            document, version = (await flows.get(flow_id)).draft, 0
        else:
            document, version = (
                (await flows.version(flow_id, body.version))["document"],
                body.version,
            )
        flow, problems = _check(document)
        if flow is None or problems:
            raise _unpublishable("flow", problems)
        at = body.at or datetime.now(UTC)
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        given = DryRunInput(
            caller=body.caller,
            dialled=body.dialled,
            at=at,
            inputs=body.inputs,
            http={
                node: HttpAnswer(a.status, a.body.encode(), a.error)
                for node, a in body.http.items()
            },
            rows=body.rows,
            blacklisted=set(body.blacklisted),
            calendars=body.calendars,
            language=body.language,
            variables=body.variables,
            time_zone=body.time_zone,
            enqueue_accepted=body.enqueue_accepted,
        )
        got = dry_run(flow, flow_id, version, tenant, given)
        return DryRunOut(
            path=got.path,
            prompts=got.prompts,
            variables=got.variables,
            outcome=got.outcome.outcome.value,
            detail=got.outcome.detail,
            last_node_id=got.outcome.last_node_id,
            hangup_cause=got.outcome.hangup_cause,
            commands=got.commands,
            trail=_trail(got.trail),
            unused_inputs=got.unused_inputs,
        )

    return [router]
