"""MongoDB adapters of the identity area.

Platform collections (``OperatorStore``): ``signing_keys``, ``sessions``, ``operators``. Tenants'
``users``, ``roles`` and ``api_keys`` belong to the tenant area; identity reads them through the
tenant wall (``TenantStore``) and writes only login bookkeeping and password hashes of users.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError, PyMongoError

from callmesh.admin.domain.common import Page
from callmesh.admin.domain.identity import LoginState
from callmesh.admin.domain.keys import SigningKey
from callmesh.admin.domain.operators import (
    Operator,
    login_from_record,
    login_record,
)
from callmesh.admin.domain.tokens import (
    LAST_USED_RESOLUTION,
    Account,
    AccountKind,
    ApiKeyRecord,
    Session,
)
from callmesh.core.errors import Conflict, Unavailable
from callmesh.core.store import CollectionSpec, IndexSpec, OperatorStore, Store, TenantCollection

SIGNING_KEYS = "signing_keys"
SESSIONS = "sessions"
OPERATORS = "operators"
# The tenant area's collections (document shapes agreed in the admin's design).
USERS = "users"
ROLES = "roles"
API_KEYS = "api_keys"

# FerretDB 1.24 has neither TTL nor partial indexes: expired sessions are purged by the service,
# and uniqueness holds on whole fields.
COLLECTIONS: tuple[CollectionSpec, ...] = (
    CollectionSpec(
        SIGNING_KEYS,
        # One key per generation: two replicas creating "the next key" at once cannot both win.
        (IndexSpec((("generation", 1),), unique=True, name="generation_unique"),),
        tenant_scoped=False,
    ),
    CollectionSpec(
        SESSIONS,
        (
            IndexSpec((("family", 1),), name="family"),
            IndexSpec((("sub", 1), ("tenant_id", 1)), name="subject"),
            IndexSpec((("access_jti", 1),), name="access_jti"),
            IndexSpec((("expires_at", 1),), name="expires_at"),
        ),
        tenant_scoped=False,
    ),
    CollectionSpec(
        OPERATORS,
        (IndexSpec((("username", 1),), unique=True, name="username_unique"),),
        tenant_scoped=False,
    ),
)

Document = dict[str, Any]


@contextlib.contextmanager
def _database(what: str) -> Iterator[None]:
    """PyMongo failures at this edge become ``Unavailable`` (503: retry), saying what failed."""
    try:
        yield
    except DuplicateKeyError:
        raise
    except PyMongoError as err:
        raise Unavailable(f"{what}: the database cannot be reached now", reason="database") from err


# ---------------------------------------------------------------------------------------------
# Signing keys


def _key_doc(key: SigningKey) -> Document:
    return {
        "_id": key.kid,
        "generation": key.generation,
        "created_at": key.created_at,
        "activates_at": key.activates_at,
        "created_by": key.created_by,
        "public_jwk": dict(key.public_jwk),
        # Named so the audit log would redact it, should a record ever reach it.
        "private_key": dict(key.sealed),
    }


def _key_from(doc: Mapping[str, Any]) -> SigningKey:
    return SigningKey(
        kid=doc["_id"],
        generation=int(doc["generation"]),
        created_at=doc["created_at"],
        activates_at=doc["activates_at"],
        public_jwk={str(k): str(v) for k, v in doc["public_jwk"].items()},
        sealed={str(k): str(v) for k, v in doc["private_key"].items()},
        created_by=doc.get("created_by", ""),
    )


class MongoSigningKeys:
    """``SigningKeyStore`` on the platform database."""

    def __init__(self, platform: OperatorStore) -> None:
        self._col = platform.collection(SIGNING_KEYS)

    async def all(self) -> list[SigningKey]:
        """Every stored key."""
        with _database("signing keys"):
            return [_key_from(doc) async for doc in self._col.find({})]

    async def insert(self, key: SigningKey) -> None:
        """Store a new key; Conflict if its generation exists."""
        try:
            with _database("signing keys"):
                await self._col.insert_one(_key_doc(key))
        except DuplicateKeyError as err:
            raise Conflict(
                f"a signing key of generation {key.generation} exists already",
                reason="generation_taken",
            ) from err

    async def delete(self, kid: str) -> bool:
        """Remove a key."""
        with _database("signing keys"):
            result = await self._col.delete_one({"_id": kid})
        return result.deleted_count == 1


# ---------------------------------------------------------------------------------------------
# Accounts


def _user_account(doc: Mapping[str, Any]) -> Account:
    return Account(
        kind=AccountKind.USER,
        account_id=doc["_id"],
        tenant_id=doc["tenant_id"],
        username=doc["username"],
        display_name=doc.get("display_name") or doc["username"],
        roles=tuple(str(r) for r in doc.get("roles") or ()),
        password_hash=doc.get("password_hash"),
        disabled=bool(doc.get("disabled", False)),
        must_change_password=bool(doc.get("must_change_password", False)),
        login=login_from_record(doc.get("login")),
        version=int(doc.get("version", 1)),
    )


def _login_filter(account: Account) -> Document:
    """Matches the account only while its lockout bookkeeping is what we read."""
    state = account.login
    return {
        "_id": account.account_id,
        # A fresh record may carry no failures field at all.
        "login.failures": {"$in": [0, None]} if state.failures == 0 else state.failures,
        "login.first_failure_at": state.first_failure_at,
        "login.locked_until": state.locked_until,
    }


def _override_role(doc: Mapping[str, Any]) -> str:
    # ``role`` names it; ids are per tenant (``<tenant>:<role>``) since tenants share databases.
    role = doc.get("role")
    if isinstance(role, str):
        return role
    return str(doc["_id"]).rpartition(":")[2]


class MongoAccounts:
    """``AccountStore``: tenants' users (through the tenant wall) and the platform's operators."""

    def __init__(self, store: Store, platform: OperatorStore) -> None:
        self._store = store
        self._operators = platform.collection(OPERATORS)

    async def _users(self, tenant_id: str) -> TenantCollection:
        return (await self._store.tenant(tenant_id)).collection(USERS)

    async def find(self, tenant_id: str | None, username: str) -> Account | None:
        """The user of a tenant, or the operator, with this username."""
        with _database("accounts"):
            if tenant_id is None:
                doc = await self._operators.find_one({"username": username})
                return Operator.from_record(doc).account() if doc is not None else None
            found = await (await self._users(tenant_id)).find_one({"username": username})
        return _user_account(found) if found is not None else None

    async def get(
        self, kind: AccountKind, tenant_id: str | None, account_id: str
    ) -> Account | None:
        """The account with this id."""
        with _database("accounts"):
            if kind is AccountKind.OPERATOR:
                doc = await self._operators.find_one({"_id": account_id})
                return Operator.from_record(doc).account() if doc is not None else None
            if kind is not AccountKind.USER or tenant_id is None:
                return None
            found = await (await self._users(tenant_id)).find_one({"_id": account_id})
        return _user_account(found) if found is not None else None

    async def record_login(
        self, account: Account, state: LoginState, now: datetime, *, succeeded: bool
    ) -> bool:
        """Compare-and-set of the lockout bookkeeping (no new version: not an edit)."""
        fields: Document = {"login": login_record(state)}
        if succeeded:
            fields["last_login_at"] = now
        with _database("accounts"):
            if account.kind is AccountKind.OPERATOR:
                result = await self._operators.update_one(_login_filter(account), {"$set": fields})
            else:
                assert account.tenant_id is not None
                users = await self._users(account.tenant_id)
                result = await users.update_one(_login_filter(account), {"$set": fields})
        return result.matched_count == 1

    async def store_password_hash(
        self, account: Account, password_hash: str, now: datetime, *, rehash: bool
    ) -> bool:
        """A rehash (same password) or a password change (a new version)."""
        flt: Document
        update: Document
        if rehash:
            flt = {"_id": account.account_id, "password_hash": account.password_hash}
            update = {"$set": {"password_hash": password_hash}}
        else:
            flt = {"_id": account.account_id, "version": account.version}
            update = {
                "$set": {
                    "password_hash": password_hash,
                    "password_changed_at": now,
                    "must_change_password": False,
                    "updated_at": now,
                    # The current password was proven: earlier failures no longer count.
                    "login": login_record(LoginState.succeeded()),
                },
                "$inc": {"version": 1},
            }
        with _database("accounts"):
            if account.kind is AccountKind.OPERATOR:
                result = await self._operators.update_one(flt, update)
            else:
                assert account.tenant_id is not None
                result = await (await self._users(account.tenant_id)).update_one(flt, update)
        return result.matched_count == 1

    async def role_overrides(self, tenant_id: str) -> dict[str, list[str]]:
        """The tenant's per-role permission sets (``roles``)."""
        with _database("roles"):
            roles = (await self._store.tenant(tenant_id)).collection(ROLES)
            docs = await roles.find_list({})
        return {_override_role(doc): [str(p) for p in doc.get("permissions") or ()] for doc in docs}


# ---------------------------------------------------------------------------------------------
# API keys


class MongoApiKeys:
    """``ApiKeyStore``: the tenant area's ``api_keys``, through the tenant wall."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def _keys(self, tenant_id: str) -> TenantCollection:
        return (await self._store.tenant(tenant_id)).collection(API_KEYS)

    async def get(self, tenant_id: str, key_id: str) -> ApiKeyRecord | None:
        """The key, or None."""
        with _database("API keys"):
            doc = await (await self._keys(tenant_id)).find_one({"_id": key_id})
        if doc is None:
            return None
        return ApiKeyRecord(
            key_id=doc["_id"],
            tenant_id=doc["tenant_id"],
            name=str(doc.get("name", "")),
            roles=tuple(str(r) for r in doc.get("roles") or ()),
            secret_hash=str(doc.get("secret_hash", "")),
            expires_at=doc.get("expires_at"),
            revoked_at=doc.get("revoked_at"),
            last_used_at=doc.get("last_used_at"),
        )

    async def touch(self, tenant_id: str, key_id: str, now: datetime) -> None:
        """Set ``last_used_at`` unless it is recent (conditional: one write a minute at most)."""
        stale = now - LAST_USED_RESOLUTION
        with _database("API keys"):
            await (await self._keys(tenant_id)).update_one(
                {
                    "_id": key_id,
                    "$or": [{"last_used_at": None}, {"last_used_at": {"$lte": stale}}],
                },
                {"$set": {"last_used_at": now}},
            )


# ---------------------------------------------------------------------------------------------
# Sessions


def _session_doc(session: Session) -> Document:
    return {
        "_id": session.session_id,
        "family": session.family,
        "sub": session.subject,
        "tenant_id": session.tenant_id,
        "kind": session.kind.value,
        "created_at": session.created_at,
        "expires_at": session.expires_at,
        "rotated_at": session.rotated_at,
        "revoked_at": session.revoked_at,
        "access_jti": session.access_jti,
        "access_expires_at": session.access_expires_at,
    }


def _session_from(doc: Mapping[str, Any]) -> Session:
    return Session(
        session_id=doc["_id"],
        family=doc["family"],
        subject=doc["sub"],
        tenant_id=doc.get("tenant_id"),
        kind=AccountKind(doc["kind"]),
        created_at=doc["created_at"],
        expires_at=doc["expires_at"],
        access_jti=doc["access_jti"],
        access_expires_at=doc["access_expires_at"],
        rotated_at=doc.get("rotated_at"),
        revoked_at=doc.get("revoked_at"),
    )


class MongoSessions:
    """``SessionStore`` on the platform database (refresh tokens only by their hashes)."""

    def __init__(self, platform: OperatorStore) -> None:
        self._col: AsyncCollection[Document] = platform.collection(SESSIONS)

    async def insert(self, session: Session) -> None:
        """Store a session."""
        with _database("sessions"):
            await self._col.insert_one(_session_doc(session))

    async def get(self, session_id: str) -> Session | None:
        """The session of a refresh token's hash."""
        with _database("sessions"):
            doc = await self._col.find_one({"_id": session_id})
        return _session_from(doc) if doc is not None else None

    async def by_access_jti(self, jti: str) -> Session | None:
        """The session an access token was issued with."""
        with _database("sessions"):
            doc = await self._col.find_one({"access_jti": jti})
        return _session_from(doc) if doc is not None else None

    async def mark_rotated(self, session_id: str, now: datetime) -> bool:
        """Atomically use up a live refresh token."""
        with _database("sessions"):
            result = await self._col.update_one(
                {"_id": session_id, "rotated_at": None, "revoked_at": None},
                {"$set": {"rotated_at": now}},
            )
        return result.matched_count == 1

    async def revoke_family(self, family: str, now: datetime) -> list[Session]:
        """Revoke every session of a family."""
        with _database("sessions"):
            docs = [doc async for doc in self._col.find({"family": family})]
            await self._col.update_many(
                {"family": family, "revoked_at": None}, {"$set": {"revoked_at": now}}
            )
        return [_session_from(doc) for doc in docs]

    async def families(self, subject: str, tenant_id: str | None) -> list[str]:
        """Families of a subject with a session not revoked yet."""
        with _database("sessions"):
            docs = self._col.find(
                {"sub": subject, "tenant_id": tenant_id, "revoked_at": None},
                projection={"family": 1},
            )
            return sorted({doc["family"] async for doc in docs})

    async def purge(self, before: datetime) -> int:
        """Delete expired sessions."""
        with _database("sessions"):
            result = await self._col.delete_many({"expires_at": {"$lt": before}})
        return result.deleted_count


# ---------------------------------------------------------------------------------------------
# Operators


class MongoOperators:
    """``OperatorRepository`` on the platform database."""

    def __init__(self, platform: OperatorStore) -> None:
        self._col: AsyncCollection[Document] = platform.collection(OPERATORS)

    async def page(self, limit: int, after: str | None) -> Page[Operator]:
        """Operators by id."""
        flt: Document = {"_id": {"$gt": after}} if after else {}
        with _database("operators"):
            cursor = self._col.find(flt).sort([("_id", 1)]).limit(limit + 1)
            docs = [doc async for doc in cursor]
        items = [Operator.from_record(doc) for doc in docs[:limit]]
        more = len(docs) > limit
        return Page(items, items[-1].operator_id if more and items else None)

    async def get(self, operator_id: str) -> Operator | None:
        """One operator."""
        with _database("operators"):
            doc = await self._col.find_one({"_id": operator_id})
        return Operator.from_record(doc) if doc is not None else None

    async def insert(self, operator: Operator) -> None:
        """Store a new operator; Conflict if the username is taken."""
        try:
            with _database("operators"):
                await self._col.insert_one(operator.record())
        except DuplicateKeyError as err:
            raise Conflict(
                f"username {operator.username!r} is taken by another operator",
                reason="username_taken",
                field="username",
            ) from err

    async def replace(self, operator: Operator, expected_version: int) -> bool:
        """Store a new version over ``expected_version``."""
        with _database("operators"):
            result = await self._col.replace_one(
                {"_id": operator.operator_id, "version": expected_version}, operator.record()
            )
        return result.matched_count == 1

    async def delete(self, operator_id: str, expected_version: int) -> bool:
        """Delete if still at ``expected_version``."""
        with _database("operators"):
            result = await self._col.delete_one({"_id": operator_id, "version": expected_version})
        return result.deleted_count == 1

    async def restore(self, operator: Operator) -> None:
        """Put a deleted operator back."""
        with contextlib.suppress(DuplicateKeyError), _database("operators"):
            await self._col.insert_one(operator.record())

    async def count_active(self) -> int:
        """Operators that can log in."""
        with _database("operators"):
            return await self._col.count_documents(
                {"disabled": {"$ne": True}, "password_hash": {"$ne": None}}
            )

    async def exists(self) -> bool:
        """Whether any operator exists."""
        with _database("operators"):
            return await self._col.find_one({}, projection={"_id": 1}) is not None
