"""mod_xml_curl for FreeSWITCH: ``POST /fs/directory`` and ``POST /fs/dialplan``.

FreeSWITCH posts form-encoded channel or request data and wants ``text/xml`` back: a
``freeswitch/xml`` document, or the standard "not found" document when we have no answer (it
then falls back to its static configuration). Answers come from admin over the bus through the
core directories (``SipDirectory``, ``NumberDirectory``), which cache them and drop what the
tenant events say changed.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import quoteattr

from fastapi import APIRouter, Request, Response

from callmesh.core import telemetry
from callmesh.core.errors import DomainError, InvalidInput
from callmesh.core.tenancy import (
    NumberDirectory,
    SipDirectory,
    check_sip_username,
    normalize_number,
    normalize_sip_domain,
)

log = logging.getLogger(__name__)

NOT_FOUND = (
    '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
    '<document type="freeswitch/xml">\n'
    '  <section name="result">\n'
    '    <result status="not found"/>\n'
    "  </section>\n"
    "</document>\n"
)
_MAX_BODY = 256 * 1024
_CONTEXT = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_UUID = re.compile(r"^[A-Za-z0-9-]{1,64}$")


@dataclass
class XmlCurlContext:
    """What the handlers need; filled in when the service starts."""

    numbers: NumberDirectory | None = None
    directory: SipDirectory | None = None
    ivr_socket: str = "127.0.0.1:8084"
    fallback_prompt: str = "ivr/ivr-technical_difficulties.wav"
    fallback_extension: str = "callmesh_fallback"
    fallback_context: str = "callmesh-fallback"
    # The contexts whose numbers belong to tenants (carriers' calls); any other context (phones
    # dialling in `default`, nodes over the trunk) is the static XML's business.
    contexts: tuple[str, ...] = ("public",)
    # Told the tenant of a channel as soon as the dialplan look-up finds it.
    on_tenant: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


class _BadForm(Exception):
    def __init__(self, field_name: str, rule: str) -> None:
        super().__init__(f"{field_name}: {rule}")
        self.field = field_name
        self.rule = rule


async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > _MAX_BODY:
        raise _BadForm("body", f"must be at most {_MAX_BODY} bytes")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError as err:
        raise _BadForm("body", "must be UTF-8 form data") from err
    form: dict[str, str] = {}
    for key, value in pairs:
        form.setdefault(key, value)
    return form


def _xml(body: str) -> Response:
    return Response(body, media_type="text/xml")


def _bad(err: _BadForm) -> Response:
    text = f"{err.field}: {err.rule}\n"
    return Response(text, status_code=400, media_type="text/plain")


def directory_document(domain: str, reply: Any) -> str:
    """The directory answer for one user of a tenant's domain."""
    variables = {
        "callmesh_tenant": reply.tenant_id,
        "callmesh_user_id": reply.user_id,
        "callmesh_site": reply.site_id,
        "callmesh_device_kind": reply.kind,
        "effective_caller_id_name": reply.display_name or reply.username,
        "effective_caller_id_number": reply.username,
    }
    var_xml = "".join(
        f"          <variable name={quoteattr(k)} value={quoteattr(v)}/>\n"
        for k, v in variables.items()
        if v
    )
    dial = (
        "{^^:sip_invite_domain=${dialed_domain}:presence_id=${dialed_user}@${dialed_domain}}"
        "${sofia_contact(*/${dialed_user}@${dialed_domain})}"
    )
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
        '<document type="freeswitch/xml">\n'
        '  <section name="directory">\n'
        f"    <domain name={quoteattr(domain)}>\n"
        f'      <params><param name="dial-string" value={quoteattr(dial)}/></params>\n'
        f"      <user id={quoteattr(reply.username)}>\n"
        f'        <params><param name="a1-hash" value={quoteattr(reply.a1_hash)}/></params>\n'
        f"        <variables>\n{var_xml}        </variables>\n"
        "      </user>\n"
        "    </domain>\n"
        "  </section>\n"
        "</document>\n"
    )


def dialplan_document(
    context: str, number: str, tenant_id: str, status: str, ctx: XmlCurlContext
) -> str:
    """The dialplan answer for a number owned by a tenant: to ivr, with a fallback."""
    actions: list[tuple[str, str]] = [
        ("export", f"callmesh_tenant={tenant_id}"),
        ("export", "callmesh_call_id=${uuid}"),
        ("set", f"callmesh_number={number}"),
        ("set", "callmesh_role=caller"),
    ]
    if status != "active":
        # A suspended tenant's callers hear the announcement and are released (TEN: suspension
        # refuses new work); they are not handed to the branch fallback.
        actions += [
            ("answer", ""),
            ("playback", ctx.fallback_prompt),
            ("hangup", "CALL_REJECTED"),
        ]
    else:
        actions += [
            ("set", "continue_on_fail=true"),
            ("socket", f"{ctx.ivr_socket} async full"),
            # Reached only when ivr cannot be reached: apologise once (the fallback context
            # skips its own apology when told so), then the node's fallback serves the caller.
            ("answer", ""),
            ("set", "callmesh_fallback_prompted=true"),
            ("playback", ctx.fallback_prompt),
            ("transfer", f"{ctx.fallback_extension} XML {ctx.fallback_context}"),
        ]
    action_xml = "".join(
        f"          <action application={quoteattr(app)}"
        + (f" data={quoteattr(data)}" if data else "")
        + "/>\n"
        for app, data in actions
    )
    expression = "^" + re.escape(number) + "$"
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
        '<document type="freeswitch/xml">\n'
        '  <section name="dialplan" description="callmesh">\n'
        f"    <context name={quoteattr(context)}>\n"
        f"      <extension name={quoteattr('callmesh-' + tenant_id)}>\n"
        f'        <condition field="destination_number" expression={quoteattr(expression)}>\n'
        f"{action_xml}"
        "        </condition>\n"
        "      </extension>\n"
        "    </context>\n"
        "  </section>\n"
        "</document>\n"
    )


def parse_directory_form(form: dict[str, str]) -> tuple[str, str] | None:
    """(domain, user) of a directory request; None when it asks for no user."""
    if form.get("section", "directory") != "directory":
        raise _BadForm("section", "must be 'directory'")
    user = form.get("user") or ""
    domain = form.get("domain") or form.get("key_value") or ""
    if not user:
        # Sofia asks for gateways and domain lists without a user: the static conf answers.
        return None
    if not domain:
        raise _BadForm("domain", "is required with a user")
    try:
        return normalize_sip_domain(domain), check_sip_username(user)
    except InvalidInput as err:
        raise _BadForm("user" if err.field == "username" else err.field, err.rule) from err


def parse_dialplan_form(form: dict[str, str]) -> tuple[str, str, str, str]:
    """(dialled number as sent, normalized number, context, channel uuid) of a dialplan request."""
    if form.get("section", "dialplan") != "dialplan":
        raise _BadForm("section", "must be 'dialplan'")
    raw = form.get("Hunt-Destination-Number") or form.get("Caller-Destination-Number")
    if not raw:
        raise _BadForm("Caller-Destination-Number", "is required")
    try:
        number = normalize_number(raw)
    except InvalidInput as err:
        raise _BadForm("Caller-Destination-Number", err.rule) from err
    context = form.get("Hunt-Context") or form.get("Caller-Context") or "public"
    if not _CONTEXT.match(context):
        raise _BadForm("Caller-Context", "must be a context name")
    uuid = form.get("Unique-ID") or form.get("Channel-Unique-ID") or ""
    if uuid and not _UUID.match(uuid):
        raise _BadForm("Unique-ID", "must be a channel UUID")
    return raw, number, context, uuid


def routers(ctx: XmlCurlContext) -> list[APIRouter]:
    """The mod_xml_curl endpoints."""
    router = APIRouter(prefix="/fs", tags=["freeswitch"])
    requests = telemetry.counter(
        "callmesh_cti_xml_curl_requests_total",
        "mod_xml_curl requests by section and outcome (found, not_found, bad_request, error)",
        ["section", "outcome"],
    )
    seconds = telemetry.histogram(
        "callmesh_cti_xml_curl_seconds", "mod_xml_curl answer time", ["section"]
    )

    def done(section: str, outcome: str, began: float, response: Response) -> Response:
        requests.labels(section, outcome).inc()
        seconds.labels(section).observe(time.perf_counter() - began)
        return response

    @router.post("/directory", include_in_schema=False)
    async def directory(request: Request) -> Response:
        """FreeSWITCH's directory: a tenant's SIP user with its a1-hash."""
        began = time.perf_counter()
        try:
            wanted = parse_directory_form(await _form(request))
        except _BadForm as err:
            return done("directory", "bad_request", began, _bad(err))
        if wanted is None:
            return done("directory", "not_found", began, _xml(NOT_FOUND))
        domain, user = wanted
        if ctx.directory is None:
            return done("directory", "error", began, Response(status_code=503))
        try:
            reply = await ctx.directory.lookup(domain, user)
        except DomainError as err:
            log.warning("directory look-up failed: %s", err)
            return done("directory", "error", began, _xml(NOT_FOUND))
        if not reply.found:
            return done("directory", "not_found", began, _xml(NOT_FOUND))
        return done("directory", "found", began, _xml(directory_document(domain, reply)))

    @router.post("/dialplan", include_in_schema=False)
    async def dialplan(request: Request) -> Response:
        """FreeSWITCH's dialplan: the dialled number's tenant, handed to ivr."""
        began = time.perf_counter()
        try:
            raw, number, context, uuid = parse_dialplan_form(await _form(request))
        except _BadForm as err:
            return done("dialplan", "bad_request", began, _bad(err))
        if context not in ctx.contexts:
            return done("dialplan", "other_context", began, _xml(NOT_FOUND))
        if ctx.numbers is None:
            return done("dialplan", "error", began, Response(status_code=503))
        try:
            reply = await ctx.numbers.lookup(number)
        except DomainError as err:
            log.warning("number look-up failed: %s", err)
            return done("dialplan", "error", began, _xml(NOT_FOUND))
        if not reply.found or not reply.tenant_id:
            return done("dialplan", "not_found", began, _xml(NOT_FOUND))
        if uuid and ctx.on_tenant is not None:
            ctx.on_tenant(uuid, reply.tenant_id)
        document = dialplan_document(
            context, raw, reply.tenant_id, reply.tenant_status or "active", ctx
        )
        return done("dialplan", "found", began, _xml(document))

    return [router]
