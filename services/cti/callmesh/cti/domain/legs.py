"""The live-channel table: one row per leg, legs correlated into one call id, tenants resolved.

Rules (CONTRACTS.md): a leg's call id is ``variable_callmesh_call_id`` when set; else a B leg
takes its partner's call id (partner from ``variable_originating_leg_uuid``,
``Other-Leg-Unique-ID`` when ``Other-Type`` is ``originator``, ``Bridge-A-Unique-ID``, or
``Channel-Call-UUID`` when it differs from the leg's own id); else the leg's own ``Unique-ID``.
A leg's tenant is ``variable_callmesh_tenant``, else its partner's, else what the SIP directory
says of its domain (looked up by the service through a port and handed back with
``set_tenant``).

Events may arrive in any order (FreeSWITCH does not order events across legs), so a leg's call
events wait in the leg until its tenant is known; its call id is fixed when the first of them
leaves, by which time most hints have arrived. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from callmesh.proto.v1.common_pb2 import LegRole

ROLE_BY_NAME: Mapping[str, int] = {
    "caller": LegRole.LEG_ROLE_CUSTOMER,
    "customer": LegRole.LEG_ROLE_CUSTOMER,
    "outbound": LegRole.LEG_ROLE_CUSTOMER,
    "agent": LegRole.LEG_ROLE_AGENT,
    "supervisor": LegRole.LEG_ROLE_SUPERVISOR,
    "external": LegRole.LEG_ROLE_EXTERNAL,
    "ivr": LegRole.LEG_ROLE_IVR,
}

# Events a leg holds while its tenant is unknown; beyond this the oldest are dropped (counted).
MAX_PENDING = 256
# Ended legs remembered so late events (DESTROY after HANGUP_COMPLETE, a snapshot racing a
# hangup) resolve to the same call and never bring a ghost back to life.
MAX_ENDED = 50_000


@dataclass(slots=True)
class PendingEvent:
    """A normalized call event waiting for its leg's tenant (and call id) to be known."""

    body: str
    message: Any
    time_us: int


@dataclass(slots=True)
class Leg:
    """One channel of the switch as the link knows it."""

    uuid: str
    call_id: str = ""
    call_id_fixed: bool = False
    explicit_call_id: str = ""
    tenant_id: str = ""
    role: int = LegRole.LEG_ROLE_UNSPECIFIED
    direction: str = ""
    partner: str = ""
    sip_domain: str = ""
    sip_user: str = ""
    created_us: int = 0
    answered_us: int = 0
    bridged_to: str = ""
    transfer_source: str = ""
    hung_up: bool = False
    side: int = 0
    tenant_asked: bool = False
    pending: list[PendingEvent] = field(default_factory=list)
    dropped: int = 0
    # The table's generation when an event last named this leg (see ChannelTable.sync).
    seen_gen: int = 0


@dataclass(frozen=True, slots=True)
class EndedLeg:
    """What is left of a leg after it ended."""

    tenant_id: str
    call_id: str
    role: int
    side: int


def _partner_hint(uuid: str, headers: Mapping[str, str]) -> str:
    """The leg this one was originated from, when the headers say."""
    hint = headers.get("variable_originating_leg_uuid")
    if hint and hint != uuid:
        return hint
    if headers.get("Other-Type") == "originator":
        other = headers.get("Other-Leg-Unique-ID")
        if other and other != uuid:
            return other
    bridge_a = headers.get("Bridge-A-Unique-ID")
    if bridge_a and bridge_a != uuid and headers.get("Bridge-B-Unique-ID") == uuid:
        return bridge_a
    call_uuid = headers.get("Channel-Call-UUID")
    if call_uuid and call_uuid != uuid:
        return call_uuid
    return ""


class ChannelTable:
    """Every live leg of one switch node, by Unique-ID."""

    def __init__(self, max_ended: int = MAX_ENDED) -> None:
        self._legs: dict[str, Leg] = {}
        self._ended: OrderedDict[str, EndedLeg] = OrderedDict()
        self._max_ended = max_ended
        # Which legs name each other as partners or bridge peers (both directions).
        self._links: dict[str, set[str]] = {}
        # Bumped when a snapshot of the switch's channels is requested: a leg seen since then
        # may be missing from the snapshot only because it was taken before the leg existed.
        self.generation = 0

    def __len__(self) -> int:
        return len(self._legs)

    def __contains__(self, uuid: object) -> bool:
        return uuid in self._legs

    def get(self, uuid: str) -> Leg | None:
        """The live leg, or None."""
        return self._legs.get(uuid)

    def ended(self, uuid: str) -> EndedLeg | None:
        """What is remembered of an ended leg, or None."""
        return self._ended.get(uuid)

    def legs(self) -> list[Leg]:
        """Every live leg."""
        return list(self._legs.values())

    def calls(self) -> int:
        """How many distinct calls the live legs make."""
        return len({self.call_id_of(leg) for leg in self._legs.values()})

    def live_by_tenant(self) -> Counter[str]:
        """Live legs per tenant ("" for legs whose tenant is not known yet)."""
        return Counter(leg.tenant_id for leg in self._legs.values())

    def observe(self, uuid: str, headers: Mapping[str, str]) -> Leg | None:
        """Update (or create) the leg an event is about; None for an ended leg's late event."""
        leg = self._legs.get(uuid)
        if leg is None:
            if uuid in self._ended:
                return None
            leg = Leg(uuid)
            self._legs[uuid] = leg
        leg.seen_gen = self.generation
        self._learn(leg, headers)
        return leg

    def _learn(self, leg: Leg, headers: Mapping[str, str]) -> None:
        explicit = headers.get("variable_callmesh_call_id")
        if explicit and not leg.explicit_call_id:
            leg.explicit_call_id = explicit
        tenant = headers.get("variable_callmesh_tenant")
        if tenant and not leg.tenant_id:
            leg.tenant_id = tenant
        role = headers.get("variable_callmesh_role")
        if role:
            leg.role = ROLE_BY_NAME.get(role.lower(), leg.role)
        if not leg.direction:
            direction = headers.get("Call-Direction") or headers.get("Caller-Direction") or ""
            leg.direction = direction
            if leg.role == LegRole.LEG_ROLE_UNSPECIFIED and direction == "inbound":
                leg.role = LegRole.LEG_ROLE_CUSTOMER
        if not leg.partner:
            leg.partner = _partner_hint(leg.uuid, headers)
            if leg.partner:
                self.link(leg.uuid, leg.partner)
        if not leg.sip_domain:
            leg.sip_domain = (
                headers.get("variable_domain_name")
                or headers.get("variable_sip_to_host")
                or headers.get("variable_sip_from_host")
                or ""
            )
        if not leg.sip_user:
            leg.sip_user = (
                headers.get("variable_user_name")
                or headers.get("variable_sip_from_user")
                or headers.get("variable_sip_to_user")
                or ""
            )
        if not leg.created_us:
            created = headers.get("Caller-Channel-Created-Time")
            if created and created.isdigit():
                leg.created_us = int(created)

    def call_id_of(self, leg: Leg) -> str:
        """The leg's call id now (fixed once its first event left)."""
        if leg.call_id_fixed:
            return leg.call_id
        if leg.explicit_call_id:
            return leg.explicit_call_id
        seen = {leg.uuid}
        current = leg
        while current.partner and current.partner not in seen:
            seen.add(current.partner)
            partner = self._legs.get(current.partner)
            if partner is None:
                ended = self._ended.get(current.partner)
                # A partner not seen yet: its own id is what its call id will most likely be.
                return ended.call_id if ended is not None else current.partner
            if partner.call_id_fixed:
                return partner.call_id
            if partner.explicit_call_id:
                return partner.explicit_call_id
            current = partner
        return current.uuid

    def tenant_of(self, leg: Leg) -> str:
        """The leg's tenant, its own or its partners' (empty when nobody knows yet)."""
        if leg.tenant_id:
            return leg.tenant_id
        seen = {leg.uuid}
        current = leg
        while current.partner and current.partner not in seen:
            seen.add(current.partner)
            partner = self._legs.get(current.partner)
            if partner is None:
                ended = self._ended.get(current.partner)
                return ended.tenant_id if ended is not None else ""
            if partner.tenant_id:
                return partner.tenant_id
            current = partner
        # A leg may know its tenant through a leg that names it (e.g. originate {vars}).
        for other in self.linked(leg.uuid):
            if other.tenant_id:
                return other.tenant_id
        return ""

    def owner(self, uuid: str) -> str:
        """The tenant of a live or ended leg ("" when the leg or its tenant is not known)."""
        leg = self._legs.get(uuid)
        if leg is not None:
            return self.tenant_of(leg)
        ended = self._ended.get(uuid)
        return ended.tenant_id if ended is not None else ""

    def link(self, a: str, b: str) -> None:
        """Remember that two legs belong together (partner hint, bridge)."""
        self._links.setdefault(a, set()).add(b)
        self._links.setdefault(b, set()).add(a)

    def linked(self, uuid: str) -> list[Leg]:
        """The live legs linked to this one, directly or through others."""
        seen = {uuid}
        todo = [uuid]
        out: list[Leg] = []
        while todo:
            for other in self._links.get(todo.pop(), ()):
                if other in seen:
                    continue
                seen.add(other)
                todo.append(other)
                leg = self._legs.get(other)
                if leg is not None:
                    out.append(leg)
        return out

    def set_tenant(self, uuid: str, tenant_id: str) -> Leg | None:
        """Record a tenant learnt outside the events (SIP directory, dialplan look-up)."""
        leg = self._legs.get(uuid)
        if leg is not None and not leg.tenant_id and tenant_id:
            leg.tenant_id = tenant_id
        return leg

    def fix(self, leg: Leg) -> tuple[str, str]:
        """The (tenant, call id) to publish the leg's events with; the call id is fixed now."""
        tenant = self.tenant_of(leg)
        if tenant and not leg.tenant_id:
            leg.tenant_id = tenant
        if not leg.call_id_fixed:
            leg.call_id = self.call_id_of(leg)
            leg.call_id_fixed = True
        return tenant, leg.call_id

    def end(self, uuid: str) -> Leg | None:
        """Forget a live leg (remembering its tenant and call id); None if it was not live."""
        leg = self._legs.get(uuid)
        if leg is None:
            return None
        tenant = self.tenant_of(leg)
        call_id = leg.call_id if leg.call_id_fixed else self.call_id_of(leg)
        del self._legs[uuid]
        for other in self._links.pop(uuid, ()):
            peers = self._links.get(other)
            if peers is not None:
                peers.discard(uuid)
                if not peers:
                    del self._links[other]
        self._ended[uuid] = EndedLeg(tenant, call_id, leg.role, leg.side)
        while len(self._ended) > self._max_ended:
            self._ended.popitem(last=False)
        return leg

    def begin_snapshot(self) -> int:
        """A snapshot of the switch's channels is being taken now; returns its generation."""
        self.generation += 1
        return self.generation

    def sync(
        self, live: Mapping[str, str], since: int | None = None
    ) -> tuple[list[Leg], list[Leg]]:
        """Match the table to the switch's live channels (after a (re)connect).

        ``live`` maps each live channel to its partner hint (its ``call_uuid``, "" if none);
        ``since`` is the generation of ``begin_snapshot`` when the snapshot was asked for (legs
        events named after that are kept even if the snapshot does not list them). Returns the
        legs the table did not know (created now, unless known to have ended) and the legs the
        switch no longer has (removed).
        """
        generation = self.generation + 1 if since is None else since
        live_set = set(live)
        added: list[Leg] = []
        for uuid in sorted(live_set):
            if uuid in self._legs or uuid in self._ended:
                continue
            partner = live[uuid]
            leg = Leg(uuid, partner=partner if partner != uuid else "", seen_gen=self.generation)
            self._legs[uuid] = leg
            if leg.partner:
                self.link(uuid, leg.partner)
            added.append(leg)
        gone = [
            leg
            for uuid, leg in list(self._legs.items())
            if uuid not in live_set and leg.seen_gen < generation
        ]
        for leg in gone:
            self.end(leg.uuid)
        return added, gone
