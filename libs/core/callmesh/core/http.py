"""HTTP errors as problem+json (RFC 9457): one set of exception handlers every service installs.

Every error body has the same shape, so clients (and the generated TypeScript client) handle them
in one place::

    {"type": "urn:callmesh:problem:<code>", "title": "<HTTP reason>", "status": 404,
     "code": "<code>", "detail": "<what went wrong>", "details": {...}}

``details`` appears only when the error carries some; a validation error (422) adds ``errors``,
one entry per broken rule: ``{"field": "body.name", "rule": "missing", "message": "..."}``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from callmesh.core.errors import DomainError, InvalidInput

PROBLEM_JSON = "application/problem+json"

log = logging.getLogger(__name__)


class Problem(BaseModel):
    """An error (RFC 9457 problem+json): what every error response of every service carries."""

    type: str
    title: str
    status: int
    code: str
    detail: str
    details: dict[str, Any] | None = None
    errors: list[dict[str, str]] | None = None


def problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for error statuses answered as problem+json (for ``responses=``)."""
    ref = {"$ref": "#/components/schemas/Problem"}
    return {
        code: {
            "model": Problem,
            "description": HTTPStatus(code).phrase,
            "content": {PROBLEM_JSON: {"schema": ref}},
        }
        for code in codes
    }


# Every service's app documents these on every route (the runtime passes them to FastAPI): any
# route can be refused for auth, rate, a suspended tenant, bad input or a dependency down.
STANDARD_PROBLEMS = problem_responses(400, 401, 403, 404, 409, 412, 422, 423, 428, 429, 503)

# Codes for the errors Starlette raises itself (unknown route, wrong method, …).
_HTTP_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}


class ProblemResponse(JSONResponse):
    """A JSON response served as ``application/problem+json``."""

    media_type = PROBLEM_JSON


def problem_type(code: str) -> str:
    """The problem ``type`` URI of an error code (a URN: stable, and never dereferenced)."""
    return f"urn:callmesh:problem:{code}"


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    details: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> ProblemResponse:
    """A problem+json response; ``extra`` adds extension members (``errors`` for 422)."""
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    body: dict[str, Any] = {
        "type": problem_type(code),
        "title": title,
        "status": status,
        "code": code,
        "detail": detail,
    }
    if details:
        body["details"] = jsonable_encoder(dict(details))
    body.update(jsonable_encoder(extra))
    out_headers = dict(headers or {})
    # RFC 9110: a 401 must say which scheme would be accepted.
    if status == HTTPStatus.UNAUTHORIZED:
        out_headers.setdefault("WWW-Authenticate", "Bearer")
    return ProblemResponse(body, status_code=status, headers=out_headers)


def domain_error_response(err: DomainError) -> ProblemResponse:
    """The problem+json response for a DomainError (500s hide their message: they are bugs)."""
    if err.status == HTTPStatus.INTERNAL_SERVER_ERROR:
        log.error("internal error %r", err, exc_info=err)
        return problem_response(err.status, err.code, "internal error")
    headers: dict[str, str] | None = None
    retry_after = err.details.get("retry_after_s")
    if isinstance(retry_after, int) and not isinstance(retry_after, bool) and retry_after >= 0:
        # RFC 9110 10.2.3: tell a refused client (429, 503) when to come back.
        headers = {"Retry-After": str(retry_after)}
    extra: dict[str, Any] = {}
    if isinstance(err, InvalidInput):
        # One shape for every bad input: the same ``errors`` list request validation gives.
        extra["errors"] = [{"field": err.field, "rule": err.rule, "message": err.message}]
    return problem_response(
        err.status, err.code, err.message, details=err.details, headers=headers, **extra
    )


def validation_errors(errors: Sequence[Any]) -> list[dict[str, str]]:
    """Pydantic/FastAPI errors as ``{field, rule, message}``; the offending input is not echoed."""
    out: list[dict[str, str]] = []
    for error in errors:
        loc = error.get("loc", ()) if isinstance(error, Mapping) else ()
        out.append(
            {
                "field": ".".join(str(part) for part in loc) or "request",
                "rule": str(error.get("type", "invalid")),
                "message": str(error.get("msg", "invalid value")),
            }
        )
    return out


async def _on_domain_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    return domain_error_response(exc)


async def _on_validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = validation_errors(exc.errors())
    summary = "; ".join(f"{e['field']}: {e['message']} ({e['rule']})" for e in errors)
    return problem_response(
        HTTPStatus.UNPROCESSABLE_ENTITY, "invalid_input", summary or "invalid input", errors=errors
    )


async def _on_http_exception(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code < 200 or exc.status_code in (204, 205, 304):
        # These statuses must not carry a body.
        return Response(status_code=exc.status_code, headers=exc.headers)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return problem_response(exc.status_code, code, str(exc.detail), headers=exc.headers)


def install_error_handlers(app: FastAPI) -> None:
    """Map DomainError, request validation errors and Starlette's HTTP errors to problem+json."""
    app.add_exception_handler(DomainError, _on_domain_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
