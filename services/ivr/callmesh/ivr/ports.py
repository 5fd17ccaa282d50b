"""What the ivr service needs from the world, as protocols (adapters implement them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from callmesh.ivr.domain.commands import BlacklistAnswer
from callmesh.ivr.domain.flow import Flow

__all__ = [
    "Binding",
    "Blacklist",
    "DataTables",
    "Emergencies",
    "EmergencyAnnouncement",
    "FlowSource",
    "PublishedFlow",
    "Speech",
    "VoicemailBox",
]


@dataclass(frozen=True, slots=True)
class PublishedFlow:
    """One published, immutable version of a tenant's flow."""

    tenant_id: str
    flow_id: str
    version: int
    flow: Flow


@dataclass(frozen=True, slots=True)
class Binding:
    """Which flow answers a tenant's number, by time rule.

    ``flow_id`` serves by default; ``after_hours_flow_id`` when ``calendar_id``'s calendar is
    closed, ``holiday_flow_id`` on its holidays (else after hours); ``forced_flow_id`` (set by
    staff, e.g. a storm closure) overrides everything while set, until ``forced_until`` (None:
    until cleared)."""

    tenant_id: str
    number: str
    flow_id: str
    calendar_id: str = ""
    after_hours_flow_id: str = ""
    holiday_flow_id: str = ""
    forced_flow_id: str = ""
    forced_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class EmergencyAnnouncement:
    """Spoken to callers at the start of every flow (of ``numbers``, empty = all) until it
    expires."""

    tenant_id: str
    announcement_id: str
    text: Mapping[str, str]  # language -> text (spoken with TTS)
    media_id: str = ""  # or a recorded file
    numbers: tuple[str, ...] = ()
    starts_at: datetime | None = None
    expires_at: datetime | None = None
    languages: tuple[str, ...] = field(default_factory=tuple)


class FlowSource(Protocol):
    """Published flows and bindings (cached by the runner; ``IvrFlowPublished`` busts it)."""

    async def binding(self, tenant_id: str, number: str) -> Binding | None: ...

    async def published(self, tenant_id: str, flow_id: str) -> PublishedFlow | None:
        """The flow's current published version (None: none published)."""
        ...

    async def version(self, tenant_id: str, flow_id: str, version: int) -> PublishedFlow | None:
        """One given published version (a running call keeps its version)."""
        ...


class Blacklist(Protocol):
    """The tenant's blacklist."""

    async def check(self, tenant_id: str, number: str, at: datetime) -> BlacklistAnswer:
        """Whether ``number`` is blocked at ``at``; a hit is counted on the entry."""
        ...


class DataTables(Protocol):
    """The tenant's data tables for look-ups."""

    async def row(self, tenant_id: str, table: str, key: str) -> Mapping[str, str] | None: ...


class Emergencies(Protocol):
    """Active emergency announcements."""

    async def active(
        self, tenant_id: str, number: str, at: datetime
    ) -> list[EmergencyAnnouncement]: ...


class VoicemailBox(Protocol):
    """Where recorded messages are kept."""

    async def store(
        self,
        tenant_id: str,
        *,
        call_id: str,
        mailbox: str,
        caller: str,
        media_id: str,
        duration_ms: int,
        flow_id: str,
        node_id: str,
        data: Mapping[str, str],
        at: datetime,
    ) -> str:
        """Store a message; returns its id (idempotent by call_id + node_id)."""
        ...


class Speech(Protocol):
    """Text to speech, cached in the media store."""

    async def synthesize(self, tenant_id: str, text: str, language: str) -> str:
        """The media id of ``text`` spoken in ``language`` (made once, then cached)."""
        ...
