"""Identity API: ``/v1/auth/…`` (tokens), the JWKS, and operators' keys and operators.

``/v1/auth``: login, refresh, logout, API-key exchange, who-am-I, password change, JWKS (also at
``/.well-known/jwks.json``); ``/v1/operator``: signing keys and their rotation, operators.
"""

# No ``from __future__ import annotations`` here: FastAPI resolves each route's ``Annotated``
# dependencies at definition time, and they name local variables of ``routers``.
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import APIRouter, Body, Depends, FastAPI, Header, Path, Response, status
from pydantic import BaseModel, ConfigDict, Field

from callmesh.admin.api.common import After, Limit, PageOut, actor_of, problems
from callmesh.admin.domain.keys import KeyView
from callmesh.admin.domain.operators import Operator
from callmesh.admin.service.context import AdminContext
from callmesh.admin.service.identity import (
    Authenticator,
    Me,
    OperatorPatch,
    Operators,
    SigningKeys,
    TokenGrant,
)
from callmesh.core.auth import (
    Principal,
    TokenVerifier,
    get_principal,
    operator_principal,
)
from callmesh.core.errors import InvalidInput
from callmesh.core.runtime import Runtime

JWKS_PATH = "/.well-known/jwks.json"
# Verifiers cache the JWKS; a new key is published ``signing_key_publish_ahead_s`` before it
# signs, so a cache must expire well within that (and never last more than 5 minutes).
MAX_JWKS_AGE_S = 300
_TENANT_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,46}[a-z0-9])?$"
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


# ---------------------------------------------------------------------------------------------
# Schemas


class LoginIn(BaseModel):
    """Password login: a tenant's user (with ``tenant``) or an operator (without)."""

    model_config = ConfigDict(extra="forbid")

    tenant: str | None = Field(
        None, min_length=1, max_length=48, pattern=_TENANT_PATTERN, description="tenant id"
    )
    username: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=1024)


class RefreshIn(BaseModel):
    """A refresh token to rotate."""

    model_config = ConfigDict(extra="forbid")

    refresh_token: str = Field(min_length=16, max_length=256)


class LogoutIn(BaseModel):
    """Optionally, the refresh token of the session to end as well."""

    model_config = ConfigDict(extra="forbid")

    refresh_token: str | None = Field(None, min_length=16, max_length=256)


class TokenRequestIn(BaseModel):
    """An API-key exchange (the key may come in ``Authorization: ApiKey cmk_…`` instead)."""

    model_config = ConfigDict(extra="forbid")

    grant_type: Literal["api_key"]
    api_key: str | None = Field(None, min_length=1, max_length=512)


class PasswordChangeIn(BaseModel):
    """Change one's own password."""

    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


class TokenOut(BaseModel):
    """Tokens handed out by a login or a refresh."""

    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int = Field(description="seconds the access token lives")
    refresh_token: str
    refresh_expires_in: int = Field(description="seconds the refresh token lives unused")


class AccessTokenOut(BaseModel):
    """An access token from an API-key exchange (no refresh token: exchange the key again)."""

    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int


class MeOut(BaseModel):
    """Who the bearer token speaks for."""

    kind: Literal["user", "operator", "api_key"]
    subject: str
    tenant_id: str | None
    roles: list[str]
    permissions: list[str]
    expires_at: datetime
    token_id: str
    username: str | None = None
    display_name: str | None = None
    must_change_password: bool = False


class Jwk(BaseModel):
    """A public Ed25519 key (OKP) for EdDSA signatures."""

    kty: str
    crv: str
    x: str
    kid: str
    alg: str
    use: str


class JwksOut(BaseModel):
    """The token-signing public keys (pending, active and retired)."""

    keys: list[Jwk]


class SigningKeyOut(BaseModel):
    """A signing key (never its private part)."""

    kid: str
    generation: int
    state: Literal["pending", "active", "retired", "expired"]
    created_at: datetime
    activates_at: datetime
    retires_at: datetime | None
    removed_after: datetime | None
    encrypted: bool
    public_jwk: Jwk


class RotateIn(BaseModel):
    """How to rotate: ``immediate`` signs with the new key at once (a compromised key)."""

    model_config = ConfigDict(extra="forbid")

    immediate: bool = False


class OperatorOut(BaseModel):
    """An operator (never the password hash)."""

    id: str
    username: str
    display_name: str
    email: str | None
    disabled: bool
    must_change_password: bool
    locked_until: datetime | None
    last_login_at: datetime | None
    password_changed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    version: int


class OperatorCreateIn(BaseModel):
    """A new operator."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    display_name: str | None = Field(None, min_length=1, max_length=128)
    email: str | None = Field(None, min_length=3, max_length=254)
    password: str = Field(min_length=1, max_length=1024)
    must_change_password: bool = False


class OperatorPatchIn(BaseModel):
    """Changes to an operator (absent fields stay; ``email: null`` removes the address)."""

    model_config = ConfigDict(extra="forbid")

    display_name: str | None = Field(None, min_length=1, max_length=128)
    email: str | None = Field(None, min_length=3, max_length=254)
    password: str | None = Field(None, min_length=1, max_length=1024)
    disabled: bool | None = None
    must_change_password: bool | None = None
    unlock: bool = Field(False, description="clear failed logins and any lockout")


# ---------------------------------------------------------------------------------------------
# Mapping


def token_out(grant: TokenGrant) -> TokenOut:
    """The API shape of a login or refresh grant."""
    assert grant.refresh_token is not None
    assert grant.refresh_expires_in is not None
    return TokenOut(
        access_token=grant.access_token,
        expires_in=grant.expires_in,
        refresh_token=grant.refresh_token,
        refresh_expires_in=grant.refresh_expires_in,
    )


def me_out(me: Me) -> MeOut:
    """The API shape of who-am-I."""
    return MeOut(
        kind=me.kind.value,
        subject=me.subject,
        tenant_id=me.tenant_id,
        roles=list(me.roles),
        permissions=list(me.permissions),
        expires_at=me.expires_at,
        token_id=me.token_id,
        username=me.username,
        display_name=me.display_name,
        must_change_password=me.must_change_password,
    )


def key_out(view: KeyView) -> SigningKeyOut:
    """The API shape of a signing key."""
    key = view.key
    return SigningKeyOut(
        kid=key.kid,
        generation=key.generation,
        state=view.state.value,
        created_at=key.created_at,
        activates_at=key.activates_at,
        retires_at=view.retires_at,
        removed_after=view.removed_after,
        encrypted=key.encrypted,
        public_jwk=Jwk.model_validate(dict(key.public_jwk)),
    )


def operator_out(operator: Operator, now: datetime) -> OperatorOut:
    """The API shape of an operator."""
    login = operator.login
    return OperatorOut(
        id=operator.operator_id,
        username=operator.username,
        display_name=operator.display_name,
        email=operator.email,
        disabled=operator.disabled,
        must_change_password=operator.must_change_password,
        locked_until=login.locked_until if login.locked(now) else None,
        last_login_at=operator.last_login_at,
        password_changed_at=operator.password_changed_at,
        created_at=operator.created_at,
        updated_at=operator.updated_at,
        version=operator.version,
    )


def parse_if_match(value: str | None) -> int | None:
    """The version an ``If-Match`` header names (``"3"``, ``W/"3"`` or ``3``); None if absent."""
    if value is None:
        return None
    text = value.strip().removeprefix("W/").strip('"')
    if not text.isdigit() or len(text) > 12:
        raise InvalidInput("If-Match", 'must be the ETag of the resource (e.g. "3")')
    return int(text)


def api_key_of(authorization: str | None, body: TokenRequestIn | None) -> str:
    """The API key of an exchange: from the body or from ``Authorization: ApiKey …``."""
    from_header: str | None = None
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() == "apikey" and value.strip():
            from_header = value.strip()
    from_body = body.api_key if body is not None else None
    if from_header and from_body:
        raise InvalidInput("api_key", "give the key in the body or in the header, not both")
    key = from_body or from_header
    if not key:
        raise InvalidInput("api_key", "required (in the body, or as 'Authorization: ApiKey cmk_…')")
    return key


# ---------------------------------------------------------------------------------------------
# Routers


def routers(ctx: AdminContext) -> list[APIRouter]:
    """The identity routers."""
    authenticator = ctx.dependency(Authenticator)
    signing_keys = ctx.dependency(SigningKeys)
    operators = ctx.dependency(Operators)
    publish_ahead = int(ctx.settings.signing_key_publish_ahead_s)
    jwks_max_age = max(0, min(MAX_JWKS_AGE_S, publish_ahead // 2))

    auth = APIRouter(prefix="/v1/auth", tags=["auth"])
    well_known = APIRouter(tags=["auth"])
    operator = APIRouter(prefix="/v1/operator", tags=["operator: identity"])

    @auth.post("/login", response_model=TokenOut, responses=problems(400, 401, 422, 503))
    async def login(
        body: LoginIn,
        response: Response,
        service: Annotated[Authenticator, Depends(authenticator)],
    ) -> TokenOut:
        """Password login → access token (EdDSA JWT) and refresh token.

        Any wrong detail (tenant, username, password, disabled account) is one 401
        `invalid credentials`. A locked account whose right password was given gets 401
        `account_locked` with `Retry-After`.
        """
        response.headers.update(_NO_STORE)
        grant = await service.login(body.tenant, body.username, body.password)
        return token_out(grant)

    @auth.post("/refresh", response_model=TokenOut, responses=problems(400, 401, 422, 503))
    async def refresh(
        body: RefreshIn,
        response: Response,
        service: Annotated[Authenticator, Depends(authenticator)],
    ) -> TokenOut:
        """Rotate a refresh token: new access and refresh tokens; the old one is used up.

        A used-up refresh token presented again revokes its whole session family.
        """
        response.headers.update(_NO_STORE)
        return token_out(await service.refresh(body.refresh_token))

    @auth.post(
        "/logout",
        status_code=status.HTTP_204_NO_CONTENT,
        responses=problems(400, 401, 422, 503),
    )
    async def logout(
        principal: Annotated[Principal, Depends(get_principal)],
        service: Annotated[Authenticator, Depends(authenticator)],
        body: Annotated[LogoutIn | None, Body()] = None,
    ) -> Response:
        """Revoke the bearer token (for every service) and its session family."""
        await service.logout(principal, body.refresh_token if body is not None else None)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @auth.post("/token", response_model=AccessTokenOut, responses=problems(400, 401, 422, 503))
    async def token(
        response: Response,
        service: Annotated[Authenticator, Depends(authenticator)],
        body: Annotated[TokenRequestIn | None, Body()] = None,
        authorization: Annotated[
            str | None,
            Header(max_length=1024, description="`ApiKey cmk_…` (instead of `api_key`)"),
        ] = None,
    ) -> AccessTokenOut:
        """Exchange a tenant's API key for an access token (`grant_type: api_key`)."""
        response.headers.update(_NO_STORE)
        grant = await service.exchange_api_key(api_key_of(authorization, body))
        return AccessTokenOut(access_token=grant.access_token, expires_in=grant.expires_in)

    @auth.get("/me", response_model=MeOut, responses=problems(401, 503))
    async def me(
        principal: Annotated[Principal, Depends(get_principal)],
        service: Annotated[Authenticator, Depends(authenticator)],
    ) -> MeOut:
        """Who the token speaks for: subject, tenant, roles, permissions, expiry."""
        return me_out(await service.me(principal))

    @auth.post(
        "/password",
        status_code=status.HTTP_204_NO_CONTENT,
        responses=problems(400, 401, 403, 409, 422, 503),
    )
    async def change_password(
        body: PasswordChangeIn,
        principal: Annotated[Principal, Depends(get_principal)],
        service: Annotated[Authenticator, Depends(authenticator)],
    ) -> Response:
        """Change one's own password (the account's other sessions are revoked)."""
        await service.change_password(principal, body.current_password, body.new_password)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    async def jwks_document(
        response: Response, keys: Annotated[SigningKeys, Depends(signing_keys)]
    ) -> JwksOut:
        """The public keys tokens are signed with: pending, active and retired."""
        response.headers["Cache-Control"] = f"public, max-age={jwks_max_age}"
        return JwksOut.model_validate(await keys.jwks())

    auth.add_api_route(
        "/jwks", jwks_document, methods=["GET"], response_model=JwksOut, responses=problems(503)
    )
    well_known.add_api_route(
        JWKS_PATH,
        jwks_document,
        methods=["GET"],
        response_model=JwksOut,
        responses=problems(503),
        name="jwks_well_known",
    )

    @operator.get(
        "/signing-keys", response_model=list[SigningKeyOut], responses=problems(401, 403, 503)
    )
    async def list_signing_keys(
        _: Annotated[Principal, Depends(operator_principal)],
        keys: Annotated[SigningKeys, Depends(signing_keys)],
    ) -> list[SigningKeyOut]:
        """The token-signing keys, newest first, with their states (no private material)."""
        return [key_out(v) for v in await keys.views()]

    @operator.post(
        "/signing-keys/rotate",
        response_model=SigningKeyOut,
        status_code=status.HTTP_201_CREATED,
        responses=problems(400, 401, 403, 409, 422, 503),
    )
    async def rotate_signing_key(
        principal: Annotated[Principal, Depends(operator_principal)],
        keys: Annotated[SigningKeys, Depends(signing_keys)],
        body: Annotated[RotateIn | None, Body()] = None,
    ) -> SigningKeyOut:
        """Create the next signing key: published now, signing after the publish-ahead time
        (or at once with `immediate`). 409 while a rotation is pending."""
        immediate = body.immediate if body is not None else False
        return key_out(await keys.rotate(actor_of(principal), immediate=immediate))

    @operator.get(
        "/operators", response_model=PageOut[OperatorOut], responses=problems(401, 403, 422, 503)
    )
    async def list_operators(
        _: Annotated[Principal, Depends(operator_principal)],
        service: Annotated[Operators, Depends(operators)],
        limit: Limit = 50,
        after: After = None,
    ) -> PageOut[OperatorOut]:
        """The platform's operators, oldest first."""
        page = await service.page(limit, after)
        now = ctx.clock()
        return PageOut(items=[operator_out(o, now) for o in page.items], next=page.next)

    @operator.post(
        "/operators",
        response_model=OperatorOut,
        status_code=status.HTTP_201_CREATED,
        responses=problems(400, 401, 403, 409, 422, 503),
    )
    async def create_operator(
        body: OperatorCreateIn,
        response: Response,
        principal: Annotated[Principal, Depends(operator_principal)],
        service: Annotated[Operators, Depends(operators)],
    ) -> OperatorOut:
        """A new operator (409 if the username is taken)."""
        created = await service.create(
            actor_of(principal),
            username=body.username,
            password=body.password,
            display_name=body.display_name,
            email=body.email,
            must_change_password=body.must_change_password,
        )
        response.headers["ETag"] = f'"{created.version}"'
        response.headers["Location"] = f"/v1/operator/operators/{created.operator_id}"
        return operator_out(created, ctx.clock())

    OperatorId = Annotated[str, Path(max_length=64, description="operator id (opr_…)")]
    IfMatch = Annotated[
        str | None, Header(max_length=32, description="the ETag read (refused if it changed)")
    ]

    @operator.get(
        "/operators/{operator_id}",
        response_model=OperatorOut,
        responses=problems(401, 403, 404, 422, 503),
    )
    async def get_operator(
        operator_id: OperatorId,
        response: Response,
        _: Annotated[Principal, Depends(operator_principal)],
        service: Annotated[Operators, Depends(operators)],
    ) -> OperatorOut:
        """One operator (its ETag is its version)."""
        found = await service.get(operator_id)
        response.headers["ETag"] = f'"{found.version}"'
        return operator_out(found, ctx.clock())

    @operator.patch(
        "/operators/{operator_id}",
        response_model=OperatorOut,
        responses=problems(400, 401, 403, 404, 409, 412, 422, 503),
    )
    async def update_operator(
        operator_id: OperatorId,
        body: OperatorPatchIn,
        response: Response,
        principal: Annotated[Principal, Depends(operator_principal)],
        service: Annotated[Operators, Depends(operators)],
        if_match: IfMatch = None,
    ) -> OperatorOut:
        """Change an operator; 409 if that would disable the last active operator."""
        patch = OperatorPatch(
            display_name=body.display_name,
            email=body.email,
            email_given="email" in body.model_fields_set,
            password=body.password,
            disabled=body.disabled,
            must_change_password=body.must_change_password,
            unlock=body.unlock,
        )
        updated = await service.update(
            actor_of(principal), operator_id, patch, parse_if_match(if_match)
        )
        response.headers["ETag"] = f'"{updated.version}"'
        return operator_out(updated, ctx.clock())

    @operator.delete(
        "/operators/{operator_id}",
        status_code=status.HTTP_204_NO_CONTENT,
        responses=problems(401, 403, 404, 409, 412, 422, 503),
    )
    async def delete_operator(
        operator_id: OperatorId,
        principal: Annotated[Principal, Depends(operator_principal)],
        service: Annotated[Operators, Depends(operators)],
        if_match: IfMatch = None,
    ) -> Response:
        """Delete an operator (never the last active one: 409)."""
        await service.delete(actor_of(principal), operator_id, parse_if_match(if_match))
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    return [auth, well_known, operator]


class ContextKeys:
    """A ``KeySource`` reading admin's own signing keys (once the identity area has started)."""

    def __init__(self, ctx: AdminContext) -> None:
        self._ctx = ctx

    async def keys_for(self, kid: str | None) -> Sequence[Ed25519PublicKey]:
        """The public key a token names (503 while admin is starting)."""
        return await self._ctx.get(SigningKeys).keys_for(kid)


def configure_app(app: FastAPI, runtime: Runtime, ctx: AdminContext) -> None:
    """Install what the app needs from identity (the admin verifies tokens with its own keys)."""
    platform = runtime.platform
    app.state.token_verifier = TokenVerifier(
        ContextKeys(ctx),
        issuer=platform.jwt_issuer,
        audience=platform.jwt_audience,
        revocations=runtime.revocations,
    )
