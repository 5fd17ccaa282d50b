"""Tokens end to end: issued, verified (PEM, a real JWKS server), enforced by a real FastAPI app,
revoked through the real nats-server."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Annotated, Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import Depends, FastAPI
from pydantic import BaseModel, Field

from callmesh.core.auth import (
    MAX_ACCESS_TTL,
    JwksKeys,
    OperatorPrincipal,
    Principal,
    RevocationList,
    Role,
    StaticKeys,
    TenantPrincipal,
    TokenIssuer,
    TokenVerifier,
    generate_signing_key,
    key_thumbprint,
    public_key_from_jwk,
    public_key_pem,
    require_permission,
    require_roles,
    require_tenant_permission,
    verifier_from_settings,
)
from callmesh.core.bus import Bus
from callmesh.core.errors import (
    Conflict,
    DomainError,
    InvalidInput,
    NotFound,
    QuotaExceeded,
    TenantViolation,
    Unauthenticated,
    Unavailable,
)
from callmesh.core.http import PROBLEM_JSON, install_error_handlers
from callmesh.core.permissions import ALL_PERMISSIONS, DEFAULT_ROLE_PERMISSIONS, Permission, resolve
from callmesh.core.servers import free_port, start_nats
from callmesh.core.settings import PlatformSettings
from callmesh.proto.subjects import BUCKETS, Bucket

ISSUER = "callmesh-test"
AUDIENCE = "callmesh-api"


# --- helpers -------------------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def forge(header: dict[str, Any], claims: dict[str, Any], sign: Any = None) -> str:
    """A token built by hand, as an attacker would: ``sign`` maps signing input to a signature."""
    head = b64url(json.dumps(header).encode())
    body = b64url(json.dumps(claims).encode())
    signing_input = f"{head}.{body}".encode()
    signature = b64url(sign(signing_input)) if sign else ""
    return f"{head}.{body}.{signature}"


def good_claims(**overrides: Any) -> dict[str, Any]:
    now = int(datetime.now(UTC).timestamp())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-1",
        "iat": now,
        "exp": now + 600,
        "jti": "jti-1",
        "tid": "acme",
        "roles": ["agent"],
        "typ": "access",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def names(permissions: Any) -> list[str]:
    return sorted(str(p) for p in permissions)


async def eventually(check: Callable[[], bool], timeout: float = 15.0) -> None:
    """Wait for a condition (a liveness bound, not a speed assertion)."""
    async with asyncio.timeout(timeout):
        while not check():  # noqa: ASYNC110 — conditions on plain state, not on an Event
            await asyncio.sleep(0.02)


class FakeClock:
    """A monotonic clock the test moves by hand (TTL and rate limit without sleeping)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class JwksServer:
    """A real HTTP server on a free loopback port serving a JWKS document it lets us change."""

    def __init__(self) -> None:
        self.document: dict[str, Any] = {"keys": []}
        self.status = 200
        self.requests = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with server._lock:
                    server.requests += 1
                    status, document = server.status, server.document
                body = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/.well-known/jwks.json"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


class NewThing(BaseModel):
    name: str
    size: int = Field(default=1, ge=1)


ERRORS: dict[str, DomainError] = {
    "not_found": NotFound("no such queue", queue="q1"),
    "conflict": Conflict("slug taken", slug="sales"),
    "quota": QuotaExceeded("no agent seat left", quota="agents"),
    "invalid": InvalidInput("name", "must not be blank"),
    "unauthenticated": Unauthenticated("api key revoked"),
    "bug": TenantViolation("wrote tenant b's document for tenant a"),
}


def build_app(verifier: TokenVerifier | None) -> FastAPI:
    """What a service's app.py does: set the verifier, install the handlers, guard the routes."""
    app = FastAPI()
    if verifier is not None:
        app.state.token_verifier = verifier
    install_error_handlers(app)

    @app.get("/v1/t/{tenant}/things")
    async def list_things(tenant: str, principal: TenantPrincipal) -> dict[str, Any]:
        return {"tenant": tenant, "subject": principal.subject}

    @app.post("/v1/t/{tenant}/things", status_code=201)
    async def create_thing(tenant: str, thing: NewThing, _: TenantPrincipal) -> dict[str, Any]:
        return {"tenant": tenant, "name": thing.name}

    @app.get(
        "/v1/t/{tenant}/reports",
        dependencies=[Depends(require_roles(Role.SUPERVISOR, Role.REPORT_VIEWER))],
    )
    async def reports(tenant: str, _: TenantPrincipal) -> dict[str, Any]:
        return {"tenant": tenant, "reports": []}

    @app.get(
        "/v1/t/{tenant}/recordings",
        dependencies=[
            Depends(
                require_permission(Permission.RECORDINGS_LISTEN, Permission.RECORDINGS_DOWNLOAD)
            )
        ],
    )
    async def recordings(tenant: str, _: TenantPrincipal) -> dict[str, Any]:
        return {"tenant": tenant, "recordings": []}

    @app.post("/v1/t/{tenant}/queues", status_code=201)
    async def create_queue(
        tenant: str,
        principal: Annotated[
            Principal, Depends(require_tenant_permission(Permission.QUEUES_WRITE))
        ],
    ) -> dict[str, Any]:
        return {"tenant": tenant, "by": principal.subject}

    @app.get("/v1/operator/tenants")
    async def all_tenants(principal: OperatorPrincipal) -> dict[str, Any]:
        return {"operator": principal.subject}

    @app.get("/v1/errors/{kind}")
    async def fail(kind: str) -> None:
        raise ERRORS[kind]

    return app


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def signing_key() -> Ed25519PrivateKey:
    return generate_signing_key()


@pytest.fixture
def issuer(signing_key: Ed25519PrivateKey) -> TokenIssuer:
    return TokenIssuer(signing_key, "k1", ISSUER, AUDIENCE)


@pytest.fixture
def verifier(issuer: TokenIssuer) -> TokenVerifier:
    return TokenVerifier(StaticKeys.from_jwks(issuer.jwks()), issuer=ISSUER, audience=AUDIENCE)


@pytest.fixture
async def client(verifier: TokenVerifier) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_app(verifier))
    async with httpx.AsyncClient(transport=transport, base_url="http://svc.test") as http:
        yield http


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    server = JwksServer()
    server.start()
    yield server
    server.stop()


async def assert_problem(
    response: httpx.Response, status: int, code: str, detail_has: str = ""
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"urn:callmesh:problem:{code}"
    assert body["title"]
    assert detail_has in body["detail"]
    return body


# --- the claims model ----------------------------------------------------------------------------


def test_a_tenant_principal_grants_only_its_tenant_and_holds_only_its_roles() -> None:
    principal = Principal(
        "u1", "acme", frozenset({"agent"}), False, "j1", datetime.now(UTC) + timedelta(minutes=5)
    )
    assert principal.grants_tenant("acme")
    assert not principal.grants_tenant("globex")
    assert principal.has_any_role(Role.SUPERVISOR, Role.AGENT)
    assert not principal.has_any_role(Role.SUPERVISOR)


def test_an_operator_principal_grants_every_tenant_and_holds_every_role() -> None:
    principal = Principal("op1", None, frozenset(), True, "j1", datetime.now(UTC))
    assert principal.grants_tenant("acme")
    assert principal.has_any_role(Role.QA)
    assert principal.has_permission(Permission.ROLES_WRITE)
    assert principal.has_permission("a.permission_added_later")


def test_a_principal_holds_exactly_its_permissions() -> None:
    principal = Principal(
        "u1",
        "acme",
        frozenset({"tenant_admin"}),
        False,
        "j1",
        datetime.now(UTC),
        frozenset({"desk.use", "queues.read"}),
    )
    assert principal.has_permission(Permission.DESK_USE)
    assert not principal.has_permission(Permission.QUEUES_WRITE), "roles alone grant nothing"
    assert principal.has_any_permission(Permission.QUEUES_WRITE, Permission.QUEUES_READ)
    assert not principal.has_any_permission()


# --- issuing -------------------------------------------------------------------------------------


async def test_an_issued_token_carries_the_documented_claims(
    issuer: TokenIssuer, verifier: TokenVerifier
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    token = issuer.issue("user-7", tenant_id="acme", roles=[Role.SUPERVISOR], now=now)
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert header["alg"] == "EdDSA"
    assert header["kid"] == "k1"
    assert claims["iss"] == ISSUER
    assert claims["aud"] == AUDIENCE
    assert claims["sub"] == "user-7"
    assert claims["tid"] == "acme"
    assert claims["roles"] == ["supervisor"]
    assert claims["perms"] == names(DEFAULT_ROLE_PERMISSIONS[Role.SUPERVISOR])
    assert claims["typ"] == "access"
    assert claims["exp"] - claims["iat"] == 15 * 60
    assert "op" not in claims
    assert claims["jti"]

    principal = await verifier.verify(token)
    assert principal == Principal(
        "user-7",
        "acme",
        frozenset({"supervisor"}),
        False,
        claims["jti"],
        now + timedelta(minutes=15),
        frozenset(claims["perms"]),
    )


async def test_an_operator_token_has_no_tenant_and_the_operator_role(
    issuer: TokenIssuer, verifier: TokenVerifier
) -> None:
    token = issuer.issue("op-1", operator=True)
    principal = await verifier.verify(token)
    assert principal.is_operator
    assert principal.tenant_id is None
    assert Role.OPERATOR in principal.roles
    assert "perms" not in jwt.decode(token, options={"verify_signature": False})
    assert principal.permissions == ALL_PERMISSIONS


async def test_resolved_permissions_travel_in_the_perms_claim_and_back(
    issuer: TokenIssuer, verifier: TokenVerifier
) -> None:
    # What admin does: the tenant lets its agents listen to recordings and nothing else.
    granted = resolve(["agent"], {"agent": ["desk.use", "recordings.listen"]})
    token = issuer.issue("user-1", tenant_id="acme", roles=["agent"], permissions=granted)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["perms"] == ["desk.use", "recordings.listen"]
    principal = await verifier.verify(token)
    assert principal.permissions == {"desk.use", "recordings.listen"}
    assert principal.has_permission(Permission.RECORDINGS_LISTEN)
    assert not principal.has_permission(Permission.QUEUES_READ)


async def test_the_default_permissions_of_several_roles_are_issued_when_none_are_given(
    issuer: TokenIssuer, verifier: TokenVerifier
) -> None:
    token = issuer.issue("user-1", tenant_id="acme", roles=["agent", "qa"])
    principal = await verifier.verify(token)
    assert principal.permissions == resolve(["agent", "qa"])
    assert principal.has_permission(Permission.RECORDINGS_DOWNLOAD)
    assert principal.has_permission(Permission.DESK_USE)


async def test_an_empty_perms_claim_grants_nothing_whatever_the_roles(
    issuer: TokenIssuer, verifier: TokenVerifier
) -> None:
    token = issuer.issue("user-1", tenant_id="acme", roles=["tenant_admin"], permissions=[])
    assert jwt.decode(token, options={"verify_signature": False})["perms"] == []
    principal = await verifier.verify(token)
    assert principal.permissions == frozenset()
    assert not principal.has_permission(Permission.SETTINGS_READ)


async def test_an_older_token_without_perms_gets_its_roles_defaults(
    verifier: TokenVerifier, signing_key: Ed25519PrivateKey
) -> None:
    # Roles a newer admin invented grant nothing here rather than failing the request.
    claims = good_claims(roles=["supervisor", "night_shift"])
    token = jwt.encode(claims, signing_key, algorithm="EdDSA", headers={"kid": "k1"})
    principal = await verifier.verify(token)
    assert principal.permissions == DEFAULT_ROLE_PERMISSIONS[Role.SUPERVISOR]
    assert principal.roles == {"supervisor", "night_shift"}


async def test_permissions_this_service_does_not_know_are_kept_as_they_are(
    verifier: TokenVerifier, signing_key: Ed25519PrivateKey
) -> None:
    claims = good_claims(perms=["desk.use", "sms.send"])
    token = jwt.encode(claims, signing_key, algorithm="EdDSA", headers={"kid": "k1"})
    principal = await verifier.verify(token)
    assert principal.permissions == {"desk.use", "sms.send"}
    assert principal.has_permission("sms.send")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"tenant_id": "acme", "operator": True}, "tid"),
        ({}, "tid"),
        ({"tenant_id": "Not A Tenant"}, "tid"),
        ({"tenant_id": "operator"}, "tid"),
        ({"tenant_id": "acme", "roles": ["god"]}, "roles"),
        ({"tenant_id": "acme", "roles": [Role.OPERATOR]}, "roles"),
        ({"tenant_id": "acme", "ttl": timedelta(0)}, "ttl"),
        ({"tenant_id": "acme", "ttl": MAX_ACCESS_TTL + timedelta(seconds=1)}, "ttl"),
        ({"tenant_id": "acme", "permissions": ["desk.use", "desk.abuse"]}, "perms[1]"),
        ({"tenant_id": "acme", "permissions": "desk.use"}, "perms"),
        ({"operator": True, "permissions": ["desk.use"]}, "perms"),
        ({"operator": True, "permissions": []}, "perms"),
        ({"tenant_id": "acme", "token_id": "has.dots"}, "jti"),
        ({"tenant_id": "acme", "token_id": ""}, "jti"),
        ({"tenant_id": "acme", "token_id": "x" * 129}, "jti"),
        ({"tenant_id": "acme", "token_id": "ok\n"}, "jti"),
    ],
)
def test_the_issuer_refuses_tokens_that_break_a_rule(
    issuer: TokenIssuer, kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        issuer.issue("user-1", **kwargs)
    assert caught.value.field == field


def test_a_ttl_above_the_maximum_is_refused_saying_why(issuer: TokenIssuer) -> None:
    with pytest.raises(InvalidInput) as caught:
        issuer.issue("user-1", tenant_id="acme", ttl=timedelta(hours=2))
    assert caught.value.rule == "must be at most 1 h (MAX_ACCESS_TTL)"
    assert "outlive its logout" in caught.value.message
    token = issuer.issue("user-1", tenant_id="acme", ttl=MAX_ACCESS_TTL)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 3600


def test_access_tokens_never_outlive_the_revocations_bucket() -> None:
    (bucket,) = [spec for spec in BUCKETS if spec.bucket is Bucket.REVOCATIONS]
    assert bucket.ttl_s is not None
    assert MAX_ACCESS_TTL.total_seconds() <= bucket.ttl_s


async def test_a_given_token_id_becomes_the_jti(
    issuer: TokenIssuer, verifier: TokenVerifier
) -> None:
    token = issuer.issue("user-1", tenant_id="acme", token_id="session-42_a")
    assert (await verifier.verify(token)).token_id == "session-42_a"
    assert issuer.issue("user-1", tenant_id="acme") != issuer.issue("user-1", tenant_id="acme")


def test_the_jwk_is_an_okp_ed25519_signature_key(issuer: TokenIssuer) -> None:
    jwk = issuer.jwk()
    assert {k: jwk[k] for k in ("kty", "crv", "kid", "alg", "use")} == {
        "kty": "OKP",
        "crv": "Ed25519",
        "kid": "k1",
        "alg": "EdDSA",
        "use": "sig",
    }
    assert "d" not in jwk
    assert len(base64.urlsafe_b64decode(jwk["x"] + "=")) == 32


def test_the_thumbprint_matches_rfc_8037_appendix_a() -> None:
    # RFC 8037 A.3: the thumbprint of the example Ed25519 key.
    key = public_key_from_jwk(
        {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
    )
    assert key_thumbprint(key) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


# --- HTTP: tenants, operators, roles -------------------------------------------------------------


async def test_a_valid_token_for_a_tenant_reads_that_tenant(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    token = issuer.issue("user-1", tenant_id="acme", roles=[Role.AGENT])
    response = await client.get("/v1/t/acme/things", headers=bearer(token))
    assert response.status_code == 200
    assert response.json() == {"tenant": "acme", "subject": "user-1"}


async def test_a_token_for_one_tenant_is_refused_on_another(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    token = issuer.issue("user-1", tenant_id="acme", roles=[Role.TENANT_ADMIN])
    response = await client.get("/v1/t/globex/things", headers=bearer(token))
    await assert_problem(response, 403, "forbidden", "token does not grant tenant globex")


async def test_an_operator_token_reads_any_tenant(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    token = issuer.issue("op-1", operator=True)
    for tenant in ("acme", "globex"):
        response = await client.get(f"/v1/t/{tenant}/things", headers=bearer(token))
        assert response.status_code == 200
        assert response.json()["tenant"] == tenant


async def test_a_malformed_tenant_in_the_path_is_not_found_and_says_nothing_more(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    token = issuer.issue("user-1", tenant_id="acme")
    response = await client.get("/v1/t/Bad_Tenant/things", headers=bearer(token))
    body = await assert_problem(response, 404, "not_found")
    assert "Bad_Tenant" not in response.text
    assert "details" not in body


async def test_the_operator_route_refuses_a_tenant_admin_and_admits_an_operator(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    admin = issuer.issue("user-1", tenant_id="acme", roles=[Role.TENANT_ADMIN])
    response = await client.get("/v1/operator/tenants", headers=bearer(admin))
    await assert_problem(response, 403, "forbidden", "operator")

    operator = issuer.issue("op-1", operator=True)
    response = await client.get("/v1/operator/tenants", headers=bearer(operator))
    assert response.status_code == 200
    assert response.json() == {"operator": "op-1"}


async def test_a_role_protected_route_names_the_roles_it_needs(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    agent = issuer.issue("user-1", tenant_id="acme", roles=[Role.AGENT])
    response = await client.get("/v1/t/acme/reports", headers=bearer(agent))
    body = await assert_problem(response, 403, "forbidden", "supervisor, report_viewer")
    assert body["details"] == {"roles": ["supervisor", "report_viewer"]}


@pytest.mark.parametrize(
    ("roles", "operator"),
    [([Role.SUPERVISOR], False), ([Role.AGENT, Role.REPORT_VIEWER], False), ([], True)],
)
async def test_a_role_protected_route_admits_any_one_of_its_roles_or_an_operator(
    client: httpx.AsyncClient, issuer: TokenIssuer, roles: list[Role], operator: bool
) -> None:
    tenant = None if operator else "acme"
    token = issuer.issue("user-1", tenant_id=tenant, roles=roles, operator=operator)
    response = await client.get("/v1/t/acme/reports", headers=bearer(token))
    assert response.status_code == 200


async def test_a_role_held_in_another_tenant_does_not_open_this_one(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    token = issuer.issue("user-1", tenant_id="globex", roles=[Role.SUPERVISOR])
    response = await client.get("/v1/t/acme/reports", headers=bearer(token))
    await assert_problem(response, 403, "forbidden", "tenant acme")


# --- HTTP: permissions ---------------------------------------------------------------------------


async def test_a_permission_protected_route_names_the_permissions_it_needs(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    agent = issuer.issue("user-1", tenant_id="acme", roles=[Role.AGENT])
    response = await client.get("/v1/t/acme/recordings", headers=bearer(agent))
    body = await assert_problem(
        response,
        403,
        "forbidden",
        "requires one of the permissions: recordings.listen, recordings.download",
    )
    assert body["details"] == {"permissions": ["recordings.listen", "recordings.download"]}

    response = await client.post("/v1/t/acme/queues", headers=bearer(agent))
    body = await assert_problem(response, 403, "forbidden", "requires permission queues.write")
    assert body["details"] == {"permissions": ["queues.write"]}


@pytest.mark.parametrize(
    ("roles", "permissions", "operator"),
    [
        ([Role.SUPERVISOR], None, False),  # listens by default
        ([Role.QA], None, False),  # downloads (and listens) by default
        ([Role.REPORT_VIEWER, Role.AGENT], ["recordings.download"], False),  # by override
        ([], None, True),
    ],
)
async def test_a_permission_protected_route_admits_any_one_of_its_permissions_or_an_operator(
    client: httpx.AsyncClient,
    issuer: TokenIssuer,
    roles: list[Role],
    permissions: list[str] | None,
    operator: bool,
) -> None:
    tenant = None if operator else "acme"
    token = issuer.issue(
        "user-1", tenant_id=tenant, roles=roles, permissions=permissions, operator=operator
    )
    response = await client.get("/v1/t/acme/recordings", headers=bearer(token))
    assert response.status_code == 200, response.text


async def test_permissions_decide_not_roles_when_a_tenant_overrides_them(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    # This tenant took recordings away from its supervisors: the role no longer opens the route.
    granted = resolve(["supervisor"], {"supervisor": ["reports.read", "agents.supervise"]})
    token = issuer.issue("user-1", tenant_id="acme", roles=["supervisor"], permissions=granted)
    response = await client.get("/v1/t/acme/recordings", headers=bearer(token))
    await assert_problem(response, 403, "forbidden", "recordings.listen")


async def test_a_tenant_permission_route_admits_holders_in_their_own_tenant_only(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    admin = issuer.issue("user-1", tenant_id="acme", roles=[Role.TENANT_ADMIN])
    response = await client.post("/v1/t/acme/queues", headers=bearer(admin))
    assert response.status_code == 201
    assert response.json() == {"tenant": "acme", "by": "user-1"}

    response = await client.post("/v1/t/globex/queues", headers=bearer(admin))
    await assert_problem(response, 403, "forbidden", "token does not grant tenant globex")

    operator = issuer.issue("op-1", operator=True)
    response = await client.post("/v1/t/globex/queues", headers=bearer(operator))
    assert response.status_code == 201

    response = await client.post("/v1/t/acme/queues")
    await assert_problem(response, 401, "unauthenticated", "missing Authorization header")


@pytest.mark.parametrize(
    ("permissions", "says"),
    [((), "name at least one permission"), (("queues.write", "queue.write"), "queue.write")],
)
def test_a_route_guard_with_no_or_unknown_permissions_is_refused_when_declared(
    permissions: tuple[str, ...], says: str
) -> None:
    for factory in (require_permission, require_tenant_permission):
        with pytest.raises(ValueError, match=says):
            factory(*permissions)


# --- HTTP: tokens that must not pass -------------------------------------------------------------


async def test_a_missing_authorization_header_is_401_with_www_authenticate(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/v1/t/acme/things")
    await assert_problem(response, 401, "unauthenticated", "missing Authorization header")
    assert response.headers["www-authenticate"] == "Bearer"


async def test_a_non_bearer_authorization_header_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/t/acme/things", headers={"Authorization": "Basic dTpw"})
    await assert_problem(response, 401, "unauthenticated", "Bearer")
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "garbage",
    ["not-a-jwt", "a.b.c", "x" * 9000, "...", "e30.e30.e30.e30", b64url(b"[" * 5000) + ".e30.x"],
)
async def test_a_garbage_token_is_401_malformed(client: httpx.AsyncClient, garbage: str) -> None:
    response = await client.get("/v1/t/acme/things", headers=bearer(garbage))
    body = await assert_problem(response, 401, "unauthenticated", "malformed")
    assert body["details"] == {"reason": "malformed"}


async def test_an_expired_token_is_401_saying_expired(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    token = issuer.issue("user-1", tenant_id="acme", now=an_hour_ago)
    response = await client.get("/v1/t/acme/things", headers=bearer(token))
    body = await assert_problem(response, 401, "unauthenticated", "expired")
    assert body["details"] == {"reason": "expired"}
    assert response.headers["www-authenticate"] == "Bearer"


async def test_a_token_expired_within_the_leeway_still_passes(
    issuer: TokenIssuer, verifier: TokenVerifier
) -> None:
    issued = datetime.now(UTC) - timedelta(minutes=15, seconds=5)
    principal = await verifier.verify(issuer.issue("user-1", tenant_id="acme", now=issued))
    assert principal.subject == "user-1"


async def test_a_token_not_yet_valid_is_401(
    client: httpx.AsyncClient, issuer: TokenIssuer, signing_key: Ed25519PrivateKey
) -> None:
    later = int(datetime.now(UTC).timestamp()) + 600
    token = jwt.encode(
        good_claims(nbf=later, exp=later + 600),
        signing_key,
        algorithm="EdDSA",
        headers={"kid": "k1"},
    )
    response = await client.get("/v1/t/acme/things", headers=bearer(token))
    await assert_problem(response, 401, "unauthenticated", "not yet valid")


async def test_a_token_signed_with_another_key_is_401_signature_invalid(
    client: httpx.AsyncClient,
) -> None:
    impostor = TokenIssuer(generate_signing_key(), "k1", ISSUER, AUDIENCE)
    token = impostor.issue("user-1", tenant_id="acme")
    response = await client.get("/v1/t/acme/things", headers=bearer(token))
    await assert_problem(response, 401, "unauthenticated", "signature invalid")


async def test_a_token_with_an_unknown_key_id_is_401(client: httpx.AsyncClient) -> None:
    stranger = TokenIssuer(generate_signing_key(), "k-unknown", ISSUER, AUDIENCE)
    response = await client.get(
        "/v1/t/acme/things", headers=bearer(stranger.issue("user-1", tenant_id="acme"))
    )
    await assert_problem(response, 401, "unauthenticated", "unknown key id")


async def test_an_alg_none_forgery_is_401(client: httpx.AsyncClient) -> None:
    token = forge({"alg": "none", "typ": "JWT", "kid": "k1"}, good_claims(op=True, tid=None))
    response = await client.get("/v1/t/acme/things", headers=bearer(token))
    await assert_problem(response, 401, "unauthenticated", "algorithm not allowed")


async def test_an_hs256_forgery_keyed_with_the_public_key_is_401(
    client: httpx.AsyncClient, issuer: TokenIssuer, signing_key: Ed25519PrivateKey
) -> None:
    # The classic alg-confusion attack: HMAC with the (public) verification key as the secret.
    for secret in (public_key_pem(signing_key).encode(), issuer.jwk()["x"].encode()):
        token = forge(
            {"alg": "HS256", "typ": "JWT", "kid": "k1"},
            good_claims(),
            lambda data, secret=secret: hmac.new(secret, data, hashlib.sha256).digest(),
        )
        response = await client.get("/v1/t/acme/things", headers=bearer(token))
        await assert_problem(response, 401, "unauthenticated", "algorithm not allowed")


async def test_an_rs256_token_is_401(client: httpx.AsyncClient) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(good_claims(), rsa_key, algorithm="RS256", headers={"kid": "k1"})
    response = await client.get("/v1/t/acme/things", headers=bearer(token))
    await assert_problem(response, 401, "unauthenticated", "algorithm not allowed")


@pytest.mark.parametrize(
    ("token_issuer", "token_audience", "says"),
    [
        (ISSUER, "some-other-api", "audience wrong"),
        ("evil-issuer", AUDIENCE, "issuer wrong"),
    ],
)
async def test_a_token_with_the_wrong_issuer_or_audience_is_401(
    client: httpx.AsyncClient,
    issuer: TokenIssuer,
    signing_key: Ed25519PrivateKey,
    token_issuer: str,
    token_audience: str,
    says: str,
) -> None:
    # Same key, so only the claim can be what fails.
    other = TokenIssuer(signing_key, "k1", token_issuer, token_audience)
    token = other.issue("user-1", tenant_id="acme")
    response = await client.get("/v1/t/acme/things", headers=bearer(token))
    await assert_problem(response, 401, "unauthenticated", says)


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"typ": "refresh"}, "not an access token"),
        ({"typ": None}, "claim 'typ' missing"),
        ({"jti": None}, "claim 'jti' missing"),
        ({"roles": "agent"}, "'roles' must be a list"),
        ({"tid": None}, "claim 'tid' missing"),
        ({"tid": "Not-A-Slug!"}, "'tid' is not a tenant id"),
        ({"op": True}, "operator token must not carry 'tid'"),
        ({"op": "yes", "tid": None}, "'op' must be a boolean"),
        ({"roles": ["operator"]}, "role 'operator' on a token without 'op'"),
        ({"exp": "tomorrow"}, "malformed"),
        ({"sub": 42}, "'sub' must be a string"),
        ({"perms": "desk.use"}, "claim 'perms' must be a list of strings"),
        ({"perms": ["desk.use", 7]}, "claim 'perms' must be a list of strings"),
        ({"perms": {"desk.use": True}}, "claim 'perms' must be a list of strings"),
        ({"op": True, "tid": None, "perms": []}, "operator token must not carry 'perms'"),
    ],
)
async def test_a_validly_signed_token_with_bad_claims_is_401_naming_the_claim(
    client: httpx.AsyncClient,
    issuer: TokenIssuer,
    signing_key: Ed25519PrivateKey,
    overrides: dict[str, Any],
    says: str,
) -> None:
    token = jwt.encode(
        good_claims(**overrides), signing_key, algorithm="EdDSA", headers={"kid": "k1"}
    )
    response = await client.get("/v1/t/acme/things", headers=bearer(token))
    await assert_problem(response, 401, "unauthenticated", says)


async def test_an_app_without_a_verifier_refuses_with_503_rather_than_letting_requests_in(
    issuer: TokenIssuer,
) -> None:
    transport = httpx.ASGITransport(app=build_app(None))
    async with httpx.AsyncClient(transport=transport, base_url="http://svc.test") as http:
        token = issuer.issue("user-1", tenant_id="acme")
        response = await http.get("/v1/t/acme/things", headers=bearer(token))
        await assert_problem(response, 503, "unavailable", "token verification is not configured")


def test_the_openapi_document_declares_bearer_auth_and_the_tenant_path(
    verifier: TokenVerifier,
) -> None:
    document = build_app(verifier).openapi()
    assert document["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "callmesh access token",
    }
    operation = document["paths"]["/v1/t/{tenant}/things"]["get"]
    assert operation["security"] == [{"HTTPBearer": []}]
    assert [p["name"] for p in operation["parameters"]] == ["tenant"]


# --- HTTP: errors as problem+json ----------------------------------------------------------------


async def test_a_body_missing_a_field_is_422_naming_the_field_and_the_rule(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    token = issuer.issue("user-1", tenant_id="acme")
    response = await client.post(
        "/v1/t/acme/things", headers=bearer(token), json={"size": 0, "secret": "hunter2"}
    )
    body = await assert_problem(response, 422, "invalid_input", "body.name")
    fields = {error["field"]: error for error in body["errors"]}
    assert fields["body.name"]["rule"] == "missing"
    assert fields["body.size"]["rule"] == "greater_than_equal"
    assert "greater than or equal to 1" in fields["body.size"]["message"]
    assert "hunter2" not in response.text


async def test_a_valid_body_is_accepted(client: httpx.AsyncClient, issuer: TokenIssuer) -> None:
    token = issuer.issue("user-1", tenant_id="acme")
    response = await client.post("/v1/t/acme/things", headers=bearer(token), json={"name": "x"})
    assert response.status_code == 201


@pytest.mark.parametrize(
    ("kind", "status", "code", "details"),
    [
        ("not_found", 404, "not_found", {"queue": "q1"}),
        ("conflict", 409, "conflict", {"slug": "sales"}),
        ("quota", 429, "quota_exceeded", {"quota": "agents"}),
        ("invalid", 422, "invalid_input", {"field": "name", "rule": "must not be blank"}),
        ("unauthenticated", 401, "unauthenticated", None),
    ],
)
async def test_a_domain_error_maps_to_its_status_and_code(
    client: httpx.AsyncClient,
    kind: str,
    status: int,
    code: str,
    details: dict[str, Any] | None,
) -> None:
    response = await client.get(f"/v1/errors/{kind}")
    body = await assert_problem(response, status, code, ERRORS[kind].message)
    assert body.get("details") == details
    assert ("www-authenticate" in response.headers) == (status == 401)


async def test_an_internal_domain_error_hides_its_message(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/errors/bug")
    await assert_problem(response, 500, "tenant_violation", "internal error")
    assert "tenant b" not in response.text


async def test_an_unknown_route_is_a_problem_too(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/nowhere")
    await assert_problem(response, 404, "not_found")


# --- key sources and settings --------------------------------------------------------------------


async def test_a_pem_key_verifies_tokens_whatever_their_kid(
    issuer: TokenIssuer, signing_key: Ed25519PrivateKey
) -> None:
    verifier = TokenVerifier(
        StaticKeys.from_pem(public_key_pem(signing_key)), issuer=ISSUER, audience=AUDIENCE
    )
    principal = await verifier.verify(issuer.issue("user-1", tenant_id="acme"))
    assert principal.tenant_id == "acme"


@pytest.mark.parametrize("form", ["pem", "pem_file", "jwks_json", "jwk_file"])
async def test_the_settings_key_may_be_pem_or_jwks_text_or_a_file(
    issuer: TokenIssuer, signing_key: Ed25519PrivateKey, tmp_path: Path, form: str
) -> None:
    pem = public_key_pem(signing_key)
    value = {
        "pem": pem,
        "pem_file": str(tmp_path / "key.pem"),
        "jwks_json": json.dumps(issuer.jwks()),
        "jwk_file": str(tmp_path / "key.jwk"),
    }[form]
    (tmp_path / "key.pem").write_text(pem)
    (tmp_path / "key.jwk").write_text(json.dumps(issuer.jwk()))
    settings = PlatformSettings(
        jwt_public_key=value, jwt_issuer=ISSUER, jwt_audience=AUDIENCE, jwks_url=None
    )
    verifier = verifier_from_settings(settings)
    assert (await verifier.verify(issuer.issue("user-1", tenant_id="acme"))).subject == "user-1"


def test_settings_without_a_key_source_are_refused() -> None:
    with pytest.raises(ValueError, match="CALLMESH_JWKS_URL or CALLMESH_JWT_PUBLIC_KEY"):
        verifier_from_settings(PlatformSettings(jwks_url=None, jwt_public_key=None))


def test_a_private_key_is_refused_as_a_verification_key(issuer: TokenIssuer) -> None:
    private_jwk = {**issuer.jwk(), "d": "AAAA"}
    with pytest.raises(ValueError, match="private key"):
        StaticKeys.from_jwks(private_jwk)


# --- JWKS over HTTP ------------------------------------------------------------------------------


async def test_keys_are_fetched_from_the_jwks_url_once_and_then_served_from_cache(
    jwks_server: JwksServer, issuer: TokenIssuer
) -> None:
    jwks_server.document = issuer.jwks()
    settings = PlatformSettings(
        jwks_url=jwks_server.url, jwt_public_key=None, jwt_issuer=ISSUER, jwt_audience=AUDIENCE
    )
    app = build_app(verifier_from_settings(settings))
    token = issuer.issue("user-1", tenant_id="acme")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://svc.test"
    ) as http:
        for _ in range(5):
            response = await http.get("/v1/t/acme/things", headers=bearer(token))
            assert response.status_code == 200
    assert jwks_server.requests == 1


async def test_concurrent_first_requests_share_one_jwks_fetch(
    jwks_server: JwksServer, issuer: TokenIssuer
) -> None:
    jwks_server.document = issuer.jwks()
    verifier = TokenVerifier(JwksKeys(jwks_server.url), issuer=ISSUER, audience=AUDIENCE)
    tokens = [issuer.issue(f"user-{n}", tenant_id="acme") for n in range(20)]
    principals = await asyncio.gather(*(verifier.verify(token) for token in tokens))
    assert {p.subject for p in principals} == {f"user-{n}" for n in range(20)}
    assert jwks_server.requests == 1


async def test_a_rotated_key_is_picked_up_with_one_refetch(
    jwks_server: JwksServer, issuer: TokenIssuer
) -> None:
    jwks_server.document = issuer.jwks()
    clock = FakeClock()
    keys = JwksKeys(jwks_server.url, ttl_s=300, min_refetch_interval_s=10, clock=clock)
    verifier = TokenVerifier(keys, issuer=ISSUER, audience=AUDIENCE)
    await verifier.verify(issuer.issue("user-1", tenant_id="acme"))
    assert jwks_server.requests == 1

    rotated = TokenIssuer(generate_signing_key(), "k2", ISSUER, AUDIENCE)
    jwks_server.document = {"keys": [issuer.jwk(), rotated.jwk()]}
    clock.now += 11
    principal = await verifier.verify(rotated.issue("user-2", tenant_id="acme"))
    assert principal.subject == "user-2"
    assert jwks_server.requests == 2
    # Both keys are cached now: no more fetches for either.
    await verifier.verify(issuer.issue("user-1", tenant_id="acme"))
    await verifier.verify(rotated.issue("user-2", tenant_id="acme"))
    assert jwks_server.requests == 2


async def test_unknown_kids_cause_at_most_one_refetch_per_interval(
    jwks_server: JwksServer, issuer: TokenIssuer
) -> None:
    jwks_server.document = issuer.jwks()
    clock = FakeClock()
    keys = JwksKeys(jwks_server.url, ttl_s=300, min_refetch_interval_s=10, clock=clock)
    verifier = TokenVerifier(keys, issuer=ISSUER, audience=AUDIENCE)
    await verifier.verify(issuer.issue("user-1", tenant_id="acme"))
    clock.now += 11

    for n in range(20):
        attacker = TokenIssuer(generate_signing_key(), f"random-{n}", ISSUER, AUDIENCE)
        with pytest.raises(Unauthenticated, match="unknown key id"):
            await verifier.verify(attacker.issue("user-1", tenant_id="acme"))
        clock.now += 0.1
    assert jwks_server.requests == 2

    clock.now += 10
    attacker = TokenIssuer(generate_signing_key(), "random-late", ISSUER, AUDIENCE)
    with pytest.raises(Unauthenticated, match="unknown key id"):
        await verifier.verify(attacker.issue("user-1", tenant_id="acme"))
    assert jwks_server.requests == 3
    # The genuine key never stopped working.
    assert (await verifier.verify(issuer.issue("user-1", tenant_id="acme"))).tenant_id == "acme"
    assert jwks_server.requests == 3


async def test_the_key_set_is_refetched_after_its_ttl_and_a_dropped_key_stops_verifying(
    jwks_server: JwksServer, issuer: TokenIssuer
) -> None:
    jwks_server.document = issuer.jwks()
    clock = FakeClock()
    keys = JwksKeys(jwks_server.url, ttl_s=300, min_refetch_interval_s=10, clock=clock)
    verifier = TokenVerifier(keys, issuer=ISSUER, audience=AUDIENCE)
    token = issuer.issue("user-1", tenant_id="acme")
    await verifier.verify(token)

    successor = TokenIssuer(generate_signing_key(), "k2", ISSUER, AUDIENCE)
    jwks_server.document = successor.jwks()
    clock.now += 301
    with pytest.raises(Unauthenticated, match="unknown key id"):
        await verifier.verify(token)
    assert jwks_server.requests == 2


async def test_a_failing_jwks_endpoint_keeps_the_cached_keys_working(
    jwks_server: JwksServer, issuer: TokenIssuer
) -> None:
    jwks_server.document = issuer.jwks()
    clock = FakeClock()
    keys = JwksKeys(jwks_server.url, ttl_s=300, min_refetch_interval_s=10, clock=clock)
    verifier = TokenVerifier(keys, issuer=ISSUER, audience=AUDIENCE)
    token = issuer.issue("user-1", tenant_id="acme")
    await verifier.verify(token)

    jwks_server.status = 500
    clock.now += 301
    assert (await verifier.verify(token)).subject == "user-1"
    clock.now += 1
    assert (await verifier.verify(token)).subject == "user-1"
    assert jwks_server.requests == 2  # and not one per request while the endpoint is down


async def test_an_unreachable_jwks_endpoint_is_503_not_401(
    jwks_server: JwksServer, issuer: TokenIssuer
) -> None:
    jwks_server.status = 503
    verifier = TokenVerifier(JwksKeys(jwks_server.url), issuer=ISSUER, audience=AUDIENCE)
    with pytest.raises(Unavailable):
        await verifier.verify(issuer.issue("user-1", tenant_id="acme"))

    app = build_app(verifier)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://svc.test"
    ) as http:
        response = await http.get(
            "/v1/t/acme/things", headers=bearer(issuer.issue("user-1", tenant_id="acme"))
        )
    await assert_problem(response, 503, "unavailable", "cannot be fetched")
    assert jwks_server.requests == 1  # the second try fell inside the refetch interval


async def test_a_jwks_refresh_at_startup_fails_early_on_a_bad_document(
    jwks_server: JwksServer,
) -> None:
    jwks_server.document = {"keys": "nope"}
    with pytest.raises(Unavailable):
        await JwksKeys(jwks_server.url).refresh()


@pytest.mark.parametrize("url", ["ftp://admin/jwks.json", "admin:8080/jwks.json"])
def test_a_jwks_url_that_is_not_http_is_refused_at_startup(url: str) -> None:
    with pytest.raises(ValueError, match="must be http"):
        JwksKeys(url)


async def test_a_null_perms_claim_is_malformed_not_taken_for_the_defaults(
    client: httpx.AsyncClient, signing_key: Ed25519PrivateKey
) -> None:
    claims = {**good_claims(roles=["tenant_admin"]), "perms": None}
    token = jwt.encode(claims, signing_key, algorithm="EdDSA", headers={"kid": "k1"})
    response = await client.get("/v1/t/acme/things", headers=bearer(token))
    body = await assert_problem(response, 401, "unauthenticated", "'perms' must be a list")
    assert body["details"] == {"reason": "malformed"}


# --- revocation through the real nats-server -----------------------------------------------------


class WallClock:
    """Seconds since the epoch that the test moves by hand (token expiries without waiting)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def service_bus(bus: Bus, platform_settings: PlatformSettings) -> AsyncIterator[Bus]:
    """A second connection, as another service (acd) would have: ``bus`` plays admin."""
    other = Bus(platform_settings, "acd")
    await other.connect(attempts=3)
    yield other
    await other.close()


async def started(revocations: RevocationList) -> RevocationList:
    await revocations.start()
    await asyncio.wait_for(revocations.ready.wait(), 15)
    return revocations


async def test_a_token_revoked_by_admin_is_refused_by_another_service_once_it_has_seen_it(
    bus: Bus, service_bus: Bus, issuer: TokenIssuer
) -> None:
    admin = RevocationList(bus)
    seen = await started(RevocationList(service_bus, check_interval_s=0.1))
    verifier = TokenVerifier(
        StaticKeys.from_jwks(issuer.jwks()), issuer=ISSUER, audience=AUDIENCE, revocations=seen
    )
    app = build_app(verifier)
    token = issuer.issue("user-1", tenant_id="acme", roles=[Role.AGENT])
    other = issuer.issue("user-2", tenant_id="acme", roles=[Role.AGENT])
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://svc.test"
        ) as http:
            assert (await http.get("/v1/t/acme/things", headers=bearer(token))).status_code == 200
            principal = await verifier.verify(token)

            await admin.revoke(principal.token_id, principal.expires_at)  # logout
            await eventually(lambda: seen.is_revoked(principal.token_id))

            response = await http.get("/v1/t/acme/things", headers=bearer(token))
            body = await assert_problem(response, 401, "unauthenticated", "token has been revoked")
            assert body["details"] == {"reason": "revoked"}
            assert response.headers["www-authenticate"] == "Bearer"
            # Only that token: the same user's other sessions and other users are untouched.
            assert (await http.get("/v1/t/acme/things", headers=bearer(other))).status_code == 200
    finally:
        await seen.stop()


async def test_the_revoking_service_refuses_the_token_at_once(
    bus: Bus, issuer: TokenIssuer
) -> None:
    admin = await started(RevocationList(bus))
    verifier = TokenVerifier(
        StaticKeys.from_jwks(issuer.jwks()), issuer=ISSUER, audience=AUDIENCE, revocations=admin
    )
    token = issuer.issue("user-1", tenant_id="acme")
    principal = await verifier.verify(token)
    try:
        await admin.revoke(principal.token_id, principal.expires_at.timestamp())
        # No waiting for the watcher's echo: the service that revoked knows at once.
        assert admin.is_revoked(principal.token_id)
        with pytest.raises(Unauthenticated, match="revoked"):
            await verifier.verify(token)
    finally:
        await admin.stop()


async def test_a_verifier_answers_503_until_its_revocations_are_loaded(
    bus: Bus, issuer: TokenIssuer
) -> None:
    revocations = RevocationList(bus)
    verifier = TokenVerifier(
        StaticKeys.from_jwks(issuer.jwks()),
        issuer=ISSUER,
        audience=AUDIENCE,
        revocations=revocations,
    )
    token = issuer.issue("user-1", tenant_id="acme")
    # Not started: a revoked token would look valid, so nothing passes (fail closed).
    with pytest.raises(Unavailable, match="revocations are not loaded"):
        await verifier.verify(token)
    await started(revocations)
    try:
        assert (await verifier.verify(token)).subject == "user-1"
    finally:
        await revocations.stop()


async def test_a_restarted_list_loads_what_changed_while_it_was_stopped(
    bus: Bus, service_bus: Bus
) -> None:
    admin = RevocationList(bus)
    exp = time.time() + 600
    await admin.revoke("before", exp)
    seen = await started(RevocationList(service_bus, check_interval_s=0.1))
    assert seen.is_revoked("before"), "revocations made before start are loaded on start"
    assert seen.loads == 1

    await seen.stop()
    await admin.revoke("while-stopped", exp)
    kv = await bus.kv(Bucket.REVOCATIONS)
    await kv.delete("before")  # an operator taking a revocation back
    assert not seen.is_revoked("while-stopped")

    await seen.start()
    try:
        await eventually(lambda: seen.loads == 2)
        assert seen.is_revoked("while-stopped")
        assert not seen.is_revoked("before")
        assert len(seen) == 1
        # And it follows changes again after the reload.
        await admin.revoke("after", exp)
        await eventually(lambda: seen.is_revoked("after"))
    finally:
        await seen.stop()


async def test_the_list_reloads_after_nats_restarts(
    platform_settings: PlatformSettings, tmp_path: Path
) -> None:
    port = free_port()
    server = start_nats(tmp_path / "nats", port=port)
    settings = platform_settings.model_copy(update={"nats_url": server.url})
    own, admin_bus = Bus(settings, "acd"), Bus(settings, "admin")
    seen = RevocationList(own, check_interval_s=0.1)
    try:
        await own.connect(attempts=3)
        await own.provision()
        await admin_bus.connect(attempts=3)
        admin = RevocationList(admin_bus)
        await started(seen)
        await admin.revoke("before-restart", time.time() + 600)
        await eventually(lambda: seen.is_revoked("before-restart"))

        server.stop()
        await eventually(lambda: not own.connected)
        server = start_nats(tmp_path / "nats", port=port)
        await eventually(lambda: own.connected and admin_bus.connected, timeout=30)
        await eventually(lambda: seen.loads == 2, timeout=30)
        assert seen.is_revoked("before-restart")

        await eventually(lambda: admin_bus.connected, timeout=30)
        await admin.revoke("after-restart", time.time() + 600)
        await eventually(lambda: seen.is_revoked("after-restart"), timeout=30)
    finally:
        await seen.stop()
        await own.close()
        await admin_bus.close()
        server.stop()


async def test_entries_of_dead_tokens_are_dropped(bus: Bus, service_bus: Bus) -> None:
    clock = WallClock()
    seen = await started(
        RevocationList(service_bus, check_interval_s=0.05, prune_interval_s=0.05, clock=clock)
    )
    kv = await bus.kv(Bucket.REVOCATIONS)
    try:
        # Written late, for a token already dead: never taken in.
        await kv.put("long-dead", str(int(clock.now) - 3600).encode())
        await RevocationList(bus).revoke("alive", clock.now + 600)
        await eventually(lambda: seen.is_revoked("alive"))  # the watcher is past "long-dead"
        assert not seen.is_revoked("long-dead")
        assert len(seen) == 1

        # Past exp the token is refused as expired anyway; past the grace the entry goes.
        clock.now += 600 + seen.grace_s / 2
        assert seen.prune() == 0
        assert seen.is_revoked("alive"), "kept through the verifiers' leeway"
        clock.now += seen.grace_s
        await eventually(lambda: len(seen) == 0)
        assert not seen.is_revoked("alive")
    finally:
        await seen.stop()


async def test_a_revocation_without_a_readable_exp_is_kept_failing_closed(
    bus: Bus, service_bus: Bus
) -> None:
    clock = WallClock()
    seen = await started(RevocationList(service_bus, check_interval_s=0.1, clock=clock))
    kv = await bus.kv(Bucket.REVOCATIONS)
    try:
        await kv.put("garbled", b"next tuesday")
        await kv.put("far-future", str(int(clock.now) + 10 * 86400).encode())
        await eventually(lambda: seen.is_revoked("garbled") and seen.is_revoked("far-future"))
        # Kept no longer than the bucket keeps them, whatever the value claims.
        clock.now += MAX_ACCESS_TTL.total_seconds() + seen.grace_s + 1
        assert seen.prune() == 2
    finally:
        await seen.stop()


@pytest.mark.parametrize(
    ("jti", "exp", "field"),
    [
        ("has.dots", 0.0, "jti"),
        ("", 0.0, "jti"),
        ("has space", 0.0, "jti"),
        ("ok", float("nan"), "exp"),
        ("ok", float("inf"), "exp"),
    ],
)
async def test_revoke_refuses_what_cannot_be_a_revocation(
    bus: Bus, jti: str, exp: float, field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        await RevocationList(bus).revoke(jti, exp)
    assert caught.value.field == field


def test_a_verifier_refuses_revocations_forgotten_before_its_leeway_ends(bus: Bus) -> None:
    keys = StaticKeys(any_kid=[generate_signing_key().public_key()])
    with pytest.raises(ValueError, match="grace_s must be at least"):
        TokenVerifier(
            keys,
            issuer=ISSUER,
            audience=AUDIENCE,
            leeway_s=30,
            revocations=RevocationList(bus, grace_s=10),
        )
