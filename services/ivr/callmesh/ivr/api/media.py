"""The signed media route FreeSWITCH fetches: ``GET /media/{tenant}/{media_id}.wav?exp=…&sig=…``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from callmesh.core.errors import DomainError, InvalidInput
from callmesh.core.http import domain_error_response
from callmesh.core.media import (
    CACHE_CONTROL,
    MediaStore,
    MediaUrlSigner,
    RangeNotSatisfiable,
    check_media_id,
    parse_byte_range,
)
from callmesh.proto.subjects import check_tenant_id

__all__ = ["media_router"]


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def media_router(store: MediaStore, signer: MediaUrlSigner) -> APIRouter:
    """GET/HEAD of a tenant's media file: no bearer token, a valid signature instead."""
    router = APIRouter()

    async def get_signed_media(
        request: Request,
        tenant: str,
        media_id: str,
        exp: Annotated[str, Query(description="expiry, unix seconds")] = "",
        sig: Annotated[str, Query(description="hex HMAC-SHA256")] = "",
    ) -> Response:
        try:
            try:
                check_tenant_id(tenant)
            except (TypeError, ValueError) as err:
                raise InvalidInput("tenant", "must be a tenant slug") from err
            check_media_id(media_id)
            signer.verify(tenant, media_id, exp, sig)
            info = await store.info(tenant, media_id)
            headers = {
                "ETag": f'"{info.sha256}"',
                "Cache-Control": CACHE_CONTROL,
                "Accept-Ranges": "bytes",
                "Content-Type": info.content_type,
                "X-Content-Type-Options": "nosniff",
            }
            status, start, end = 200, 0, info.size - 1
            range_header = request.headers.get("range")
            if request.method == "GET" and range_header is not None:
                try:
                    byte_range = parse_byte_range(range_header, info.size)
                except RangeNotSatisfiable as err:
                    response = domain_error_response(err)
                    response.headers["Content-Range"] = f"bytes */{info.size}"
                    return _no_store(response)
                if byte_range is not None:
                    status, start, end = 206, byte_range.start, byte_range.end
                    headers["Content-Range"] = f"bytes {start}-{end}/{info.size}"
            headers["Content-Length"] = str(end - start + 1)
            if request.method == "HEAD" or info.size == 0:
                return Response(status_code=status, headers=headers)
            return StreamingResponse(
                store.open_range(tenant, media_id, start, end), status_code=status, headers=headers
            )
        except DomainError as err:
            return _no_store(domain_error_response(err))

    router.add_api_route(
        "/media/{tenant}/{media_id}.wav",
        get_signed_media,
        methods=["GET", "HEAD"],
        response_class=Response,
        name="get_signed_media",
        summary="A media file for the switch (signed URL), whole or a byte range",
    )
    return router
