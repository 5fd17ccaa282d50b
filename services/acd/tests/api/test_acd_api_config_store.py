"""The config store on a real FerretDB: save then load gives the same config, expired VIP entries
are left out, a save replaces what was there, and one tenant never sees another's config."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from callmesh.acd.adapters import config_store
from callmesh.acd.adapters.config_store import VIP, VipEntry, vip_doc
from callmesh.acd.domain.config import (
    AgentProfile,
    AgentStrategy,
    Announcements,
    CallOrder,
    GroupConfig,
    OverflowKind,
    OverflowReason,
    OverflowTarget,
    QueueConfig,
    RequirementStep,
    RingMode,
    StickyConfig,
    TenantAcdConfig,
)
from callmesh.core.store import Store


def full_config(tenant_id: str = "acme") -> TenantAcdConfig:
    """A config using every field, with values away from the defaults."""
    sales = QueueConfig(
        queue_id="sales",
        name="Sales",
        priority=3,
        skill="french",
        agents=("ag-1",),
        groups=("team-a",),
        steps=(RequirementStep(0.0, 4), RequirementStep(20.0, 2), RequirementStep(40.0, None)),
        call_order=(CallOrder.LONGEST_WAIT, CallOrder.PRIORITY),
        aging_per_s=0.5,
        strategies=(AgentStrategy.HIGHEST_SKILL, AgentStrategy.FEWEST_CALLS),
        ring=RingMode.PROGRESSIVE,
        progressive_step_s=3.0,
        sticky=StickyConfig(within_s=3600.0, wait_s=10.0),
        use_routing_table=True,
        no_answer_timeout_s=12.0,
        no_answer_reason="rona",
        wrap_up_s=15.0,
        max_wait_s=300.0,
        max_length=25,
        no_agents_ready_s=60.0,
        service_level_s=30.0,
        calendar_id="cal-1",
        overflow={
            OverflowReason.MAX_WAIT: OverflowTarget(OverflowKind.QUEUE, "support"),
            OverflowReason.CLOSED: OverflowTarget(OverflowKind.ANNOUNCEMENT, "closed"),
        },
        announcements=Announcements(
            moh="moh/jazz",
            entry="welcome",
            periodic="still-waiting",
            periodic_every_s=30.0,
            position=True,
            estimated_wait=True,
            agent_id_greeting=True,
            languages=("fr", "en"),
        ),
    )
    support = QueueConfig(queue_id="support")
    return TenantAcdConfig(
        tenant_id=tenant_id,
        queues={"sales": sales, "support": support},
        agents={
            "ag-1": AgentProfile(
                agent_id="ag-1",
                user_id="usr_1",
                display_name="Ann",
                endpoint="user:1001",
                skills={"french": 5, "billing.v2": 2},
                groups=("team-a",),
                capacity={"voice": 1, "chat": 3},
                site="paris",
                order=2,
            ),
            "ag-2": AgentProfile(agent_id="ag-2", endpoint="gateway:gw1:+33100000000"),
        },
        groups={"team-a": GroupConfig("team-a", "Team A", 2)},
        vip={"+33611111111": 10},
        routing_table={"+33622222222": "ag-1"},
        priority_data_key="prio",
    )


async def test_save_then_load_gives_the_same_config(store: Store) -> None:
    tenant = await store.tenant("acme")
    config = full_config()
    await config_store.save_tenant_config(tenant, config)
    assert await config_store.load_tenant_config(tenant) == config


async def test_a_save_replaces_the_previous_config(store: Store) -> None:
    tenant = await store.tenant("acme")
    await config_store.save_tenant_config(tenant, full_config())
    smaller = TenantAcdConfig(tenant_id="acme", queues={"q": QueueConfig(queue_id="q")})
    await config_store.save_tenant_config(tenant, smaller)
    assert await config_store.load_tenant_config(tenant) == smaller
    # the skills named before stay in the catalog
    skills = await tenant[config_store.SKILLS].distinct("skill_id")
    assert set(skills) == {"french", "billing.v2"}


async def test_expired_vip_entries_are_left_out(store: Store) -> None:
    tenant = await store.tenant("acme")
    now = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    for entry in (
        VipEntry("+1", 5),
        VipEntry("+2", 6, now + timedelta(hours=1)),
        VipEntry("+3", 7, now - timedelta(seconds=1)),
    ):
        await tenant[VIP].insert_one(vip_doc(entry))
    config = await config_store.load_tenant_config(tenant, now=now)
    assert config.vip == {"+1": 5, "+2": 6}
    later = await config_store.load_tenant_config(tenant, now=now + timedelta(hours=2))
    assert later.vip == {"+1": 5}


async def test_one_tenant_never_sees_another_tenants_config(store: Store) -> None:
    acme, globex = await store.tenant("acme"), await store.tenant("globex")
    await config_store.save_tenant_config(acme, full_config("acme"))
    assert await config_store.load_tenant_config(globex) == TenantAcdConfig(tenant_id="globex")
    await config_store.save_tenant_config(globex, TenantAcdConfig(tenant_id="globex"))
    assert await config_store.load_tenant_config(acme) == full_config("acme")


async def test_a_config_of_another_tenant_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="globex"):
        await config_store.save_tenant_config(
            await store.tenant("acme"), TenantAcdConfig(tenant_id="globex")
        )
