"""The tenant wall of the store, proven against a real MongoDB-wire server (FerretDB)."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo.errors import DuplicateKeyError

from callmesh.core.errors import Forbidden, TenantViolation
from callmesh.core.settings import PlatformSettings
from callmesh.core.store import (
    CollectionSpec,
    DeleteMany,
    DeleteOne,
    IndexSpec,
    InsertOne,
    Placement,
    ReplaceOne,
    StaticPlacement,
    Store,
    TenantCollection,
    UpdateMany,
    UpdateOne,
)

AGENTS = CollectionSpec(
    "agents",
    (IndexSpec((("tenant_id", 1), ("login", 1)), unique=True, name="login_per_tenant"),),
)


@pytest.fixture
async def walled(store: Store) -> tuple[TenantCollection, TenantCollection, dict[str, Any]]:
    """Tenants acme and globex with two agents each; returns both views and globex's first doc."""
    acme = (await store.tenant("acme")).collection("agents")
    globex = (await store.tenant("globex")).collection("agents")
    await acme.insert_many([{"login": "ann", "skill": 3}, {"login": "al", "skill": 1}])
    await globex.insert_many([{"login": "gus", "skill": 5}, {"login": "gail", "skill": 2}])
    victim = await globex.find_one({"login": "gus"})
    assert victim is not None
    return acme, globex, victim


async def globex_untouched(globex: TenantCollection) -> None:
    docs = await globex.find_list({}, sort=[("login", 1)], projection={"_id": 0})
    assert docs == [
        {"tenant_id": "globex", "login": "gail", "skill": 2},
        {"tenant_id": "globex", "login": "gus", "skill": 5},
    ]


async def test_reads_never_return_another_tenants_documents(walled: Any) -> None:
    acme, _globex, victim = walled
    assert await acme.find_one({"_id": victim["_id"]}) is None
    assert await acme.count_documents({}) == 2
    everything = await acme.find_list({"$or": [{"tenant_id": "globex"}, {"skill": {"$gte": 0}}]})
    assert {d["login"] for d in everything} == {"ann", "al"}
    nested = await acme.find_list({"$and": [{"$or": [{"login": "gus"}, {"login": "ann"}]}]})
    assert [d["login"] for d in nested] == ["ann"]
    assert sorted(await acme.distinct("login")) == ["al", "ann"]
    assert await acme.distinct("tenant_id") == ["acme"]


async def test_a_filter_naming_another_tenant_is_refused(walled: Any) -> None:
    acme, _, _ = walled
    with pytest.raises(TenantViolation, match="outside tenant 'acme'"):
        await acme.find_one({"tenant_id": "globex"})
    with pytest.raises(TenantViolation):
        await acme.count_documents({"tenant_id": {"$in": ["acme", "globex"]}})
    with pytest.raises(TenantViolation):
        await acme.delete_many({"tenant_id": {"$ne": "acme"}})


async def test_updates_and_deletes_cannot_reach_another_tenant(walled: Any) -> None:
    acme, globex, victim = walled
    assert (
        await acme.update_one({"_id": victim["_id"]}, {"$set": {"skill": 0}})
    ).matched_count == 0
    assert (await acme.update_many({}, {"$inc": {"skill": 1}})).modified_count == 2
    assert (await acme.delete_one({"_id": victim["_id"]})).deleted_count == 0
    assert (await acme.delete_many({"login": {"$in": ["gus", "gail"]}})).deleted_count == 0
    assert await acme.find_one_and_update({"_id": victim["_id"]}, {"$set": {"x": 1}}) is None
    assert await acme.find_one_and_replace({"_id": victim["_id"]}, {"login": "evil"}) is None
    assert await acme.find_one_and_delete({"_id": victim["_id"]}) is None
    await globex_untouched(globex)


@pytest.mark.parametrize(
    "update",
    [
        {"$set": {"tenant_id": "globex"}},
        {"$unset": {"tenant_id": ""}},
        {"$rename": {"tenant_id": "was"}},
        {"$rename": {"login": "tenant_id"}},
        {"$setOnInsert": {"tenant_id": "globex"}},
        {"$set": {"tenant_id.x": 1}},
    ],
)
async def test_an_update_cannot_move_rename_or_unset_the_tenant(
    walled: Any, update: dict[str, Any]
) -> None:
    acme, globex, _ = walled
    with pytest.raises(TenantViolation):
        await acme.update_many({}, update)
    with pytest.raises(TenantViolation):
        await acme.find_one_and_update({"login": "ann"}, update)
    assert await acme.count_documents({}) == 2
    await globex_untouched(globex)


async def test_an_upsert_creates_the_document_for_this_tenant_only(walled: Any) -> None:
    acme, globex, _ = walled
    result = await acme.update_one({"login": "gus"}, {"$set": {"skill": 4}}, upsert=True)
    assert result.upserted_id is not None
    created = await acme.find_one({"login": "gus"})
    assert created is not None
    assert created["tenant_id"] == "acme"
    assert created["skill"] == 4
    doc = await acme.find_one_and_update(
        {"login": "zed"}, {"$setOnInsert": {"skill": 1}}, upsert=True
    )
    assert doc is not None
    assert doc["tenant_id"] == "acme"
    await globex_untouched(globex)


async def test_inserts_and_replacements_are_stamped_and_foreign_ones_refused(walled: Any) -> None:
    acme, globex, _ = walled
    with pytest.raises(TenantViolation):
        await acme.insert_one({"tenant_id": "globex", "login": "mole"})
    with pytest.raises(TenantViolation):
        await acme.insert_many([{"login": "ok"}, {"tenant_id": "globex", "login": "mole"}])
    assert await acme.count_documents({"login": "ok"}) == 0, "nothing half-written"
    with pytest.raises(TenantViolation):
        await acme.replace_one({"login": "ann"}, {"tenant_id": "globex", "login": "ann"})
    await acme.replace_one({"login": "ann"}, {"login": "ann", "skill": 5})
    ann = await acme.find_one({"login": "ann"}, projection={"_id": 0})
    assert ann == {"login": "ann", "skill": 5, "tenant_id": "acme"}
    await globex_untouched(globex)


async def test_aggregation_sees_only_the_tenant(walled: Any) -> None:
    acme, _, _ = walled
    # One accumulator per $group: FerretDB 1.24 computes only the first of several (docs/store.md).
    rows = await acme.aggregate([{"$group": {"_id": "$tenant_id", "skills": {"$sum": "$skill"}}}])
    assert rows == [{"_id": "acme", "skills": 4}]
    assert await acme.aggregate([{"$count": "n"}]) == [{"n": 2}]
    # A $match for the other tenant inside the pipeline is ANDed with ours: nothing comes back.
    assert await acme.aggregate([{"$match": {"tenant_id": "globex"}}]) == []


@pytest.mark.parametrize(
    "stage",
    [
        {"$lookup": {"from": "agents", "pipeline": [], "as": "x"}},
        {"$unionWith": {"coll": "agents"}},
        {"$graphLookup": {"from": "agents"}},
        {"$out": "stolen"},
        {"$merge": {"into": "stolen"}},
        {"$collStats": {}},
        {"$facet": {"a": [{"$unionWith": "agents"}]}},
    ],
)
async def test_aggregation_stages_reaching_elsewhere_are_refused(
    walled: Any, stage: dict[str, Any]
) -> None:
    acme, _, _ = walled
    with pytest.raises(TenantViolation, match="aggregation stage"):
        await acme.aggregate([{"$match": {}}, stage])


async def test_bulk_writes_are_walled_and_all_or_nothing_on_a_violation(walled: Any) -> None:
    acme, globex, victim = walled
    with pytest.raises(TenantViolation):
        await acme.bulk_write(
            [InsertOne({"login": "new"}), UpdateOne({"login": "ann"}, {"$set": {"tenant_id": "x"}})]
        )
    assert await acme.count_documents({"login": "new"}) == 0
    result = await acme.bulk_write(
        [
            InsertOne({"login": "bea"}),
            UpdateOne({"_id": victim["_id"]}, {"$set": {"skill": 0}}),
            UpdateMany({}, {"$set": {"team": "red"}}),
            ReplaceOne({"login": "gail"}, {"login": "gail", "skill": 9}, upsert=True),
            DeleteOne({"_id": victim["_id"]}),
            DeleteMany({"login": "gus"}),
        ]
    )
    assert result.inserted_count == 1
    assert result.deleted_count == 0
    assert result.upserted_count == 1
    gail = await acme.find_one({"login": "gail"})
    assert gail is not None
    assert gail["tenant_id"] == "acme"
    await globex_untouched(globex)


async def test_indexes_start_with_the_tenant_and_uniqueness_is_per_tenant(
    platform_settings: PlatformSettings,
) -> None:
    with pytest.raises(ValueError, match="must start with tenant_id"):
        CollectionSpec("bad", (IndexSpec((("login", 1),)),))
    store = Store(platform_settings, collections=[AGENTS])
    try:
        await store.provision()
        acme = (await store.tenant("acme")).collection("agents")
        globex = (await store.tenant("globex")).collection("agents")
        await acme.insert_one({"login": "sam"})
        await globex.insert_one({"login": "sam"})
        with pytest.raises(DuplicateKeyError):
            await acme.insert_one({"login": "sam"})
        names = [ix["name"] async for ix in await acme._col.list_indexes()]
        assert "login_per_tenant" in names
    finally:
        await store.close()


async def test_a_tenant_placed_on_its_own_database_is_stored_there(
    platform_settings: PlatformSettings,
) -> None:
    own = f"{platform_settings.mongodb_database}_vip"
    placement = StaticPlacement(
        Placement(platform_settings.mongodb_database), {"vip": Placement(own)}
    )
    store = Store(platform_settings, placement=placement, collections=[AGENTS])
    try:
        await (await store.tenant("vip")).collection("agents").insert_one({"login": "v"})
        await (await store.tenant("acme")).collection("agents").insert_one({"login": "a"})
        raw_own = store.client()[own]["agents"]
        raw_default = store.client()[platform_settings.mongodb_database]["agents"]
        assert [d["login"] async for d in raw_own.find({})] == ["v"]
        assert [d["login"] async for d in raw_default.find({})] == ["a"]
        assert "login_per_tenant" in [ix["name"] async for ix in await raw_own.list_indexes()]
    finally:
        await store.client().drop_database(own)
        await store.close()


async def test_operator_access_is_only_for_the_admin_store(
    platform_settings: PlatformSettings, store: Store
) -> None:
    with pytest.raises(Forbidden, match="reserved to the admin service"):
        store.operator()
    admin = Store(platform_settings, operator_access=True)
    try:
        await admin.operator().collection("tenants").insert_one({"_id": "acme"})
        assert await admin.operator().collection("tenants").count_documents({}) == 1
    finally:
        await admin.close()


async def test_a_bad_tenant_id_never_reaches_the_database(store: Store) -> None:
    with pytest.raises(ValueError, match="tenant_id"):
        await store.tenant("Acme; drop")


async def test_ping_says_whether_the_server_answers(
    store: Store, platform_settings: PlatformSettings
) -> None:
    assert await store.ping() is True
    dead = Store(
        platform_settings.model_copy(update={"mongodb_uri": "mongodb://127.0.0.1:1/"}),
        server_selection_timeout_ms=200,
    )
    try:
        assert await dead.ping() is False
    finally:
        await dead.close()
