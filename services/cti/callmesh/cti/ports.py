"""What the cti link's use cases need from the outside world, as protocols."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from callmesh.cti.domain.normalize import CallEvent
from callmesh.proto.v1.call_pb2 import RecordingStopped


class SwitchNotConnected(Exception):
    """The event socket is down: nothing can be sent to the switch now."""


class SwitchTimeout(Exception):
    """The switch did not answer a command in time."""


class Switch(Protocol):
    """The switch node behind the event socket."""

    @property
    def connected(self) -> bool:
        """Whether the event socket is up and authenticated."""
        ...

    async def bgapi(self, line: str, timeout_s: float) -> tuple[str, str]:
        """Run an API command in the background; (job uuid, output) or raise the errors above."""
        ...


class CallEventPublisher(Protocol):
    """Puts call events on the bus (``cm.<tenant>.call.*``)."""

    async def publish_call_events(self, events: Sequence[CallEvent]) -> None:
        """Publish in the given order (each gets its own envelope and id)."""
        ...


class NodeNotifier(Protocol):
    """Says how this switch node is doing (events ``cm.node.<node>.up|down``)."""

    async def node_up(self, esl_endpoint: str) -> None:
        """The event socket is up."""
        ...

    async def node_down(self, reason: str) -> None:
        """The event socket is lost."""
        ...


class TenantResolver(Protocol):
    """Which tenant a SIP domain's user belongs to (admin's SIP directory)."""

    async def tenant_of(self, domain: str, username: str) -> str:
        """The tenant id, or "" when the directory does not know the user."""
        ...


class RecordingArchive(Protocol):
    """Moves a finished recording into the media store."""

    async def archive(
        self, tenant_id: str, call_id: str, recording: RecordingStopped
    ) -> RecordingStopped:
        """The recording with media id and size filled in (the file is moved, not copied)."""
        ...


class LinkObserver(Protocol):
    """Where the link reports what it sees (metrics)."""

    def esl_event(self, name: str, timestamp_us: int) -> None:
        """One event from the switch (rate by name, lag from its timestamp)."""

    def esl_problem(self, kind: str) -> None:
        """A malformed frame/event or an unknown event."""

    def unknown_tenant(self, count: int) -> None:
        """Call events given up because their tenant never became known."""

    def command(self, name: str, outcome: str, seconds: float) -> None:
        """A command's latency and outcome."""

    def refused(self, reason: str) -> None:
        """A command refused before it reached the switch."""

    def reconnect(self) -> None:
        """The event socket reconnected."""

    def live_channels(self, per_tenant: dict[str, int]) -> None:
        """Live channels per tenant."""
