"""Use cases of the cti link: switch events in, call events out; switch commands through bgapi."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid as uuidlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from callmesh.cti.domain.commands import (
    BadArgument,
    CommandLine,
    DialPlan,
    channels_acted_on,
    interpret_reply,
    to_command_line,
)
from callmesh.cti.domain.fencing import FencingTable
from callmesh.cti.domain.normalize import CallEvent, Normalizer
from callmesh.cti.ports import (
    CallEventPublisher,
    LinkObserver,
    NodeNotifier,
    RecordingArchive,
    Switch,
    SwitchNotConnected,
    SwitchTimeout,
    TenantResolver,
)
from callmesh.proto.v1.call_pb2 import RecordingStopped
from callmesh.proto.v1.switch_pb2 import SwitchCommand, SwitchErrorCode, SwitchReply

log = logging.getLogger(__name__)


class NullObserver:
    """An observer that records nothing (tests, the decode CLI)."""

    def esl_event(self, name: str, timestamp_us: int) -> None:
        """Nothing."""

    def esl_problem(self, kind: str) -> None:
        """Nothing."""

    def unknown_tenant(self, count: int) -> None:
        """Nothing."""

    def command(self, name: str, outcome: str, seconds: float) -> None:
        """Nothing."""

    def refused(self, reason: str) -> None:
        """Nothing."""

    def reconnect(self) -> None:
        """Nothing."""

    def live_channels(self, per_tenant: dict[str, int]) -> None:
        """Nothing."""


@dataclass(frozen=True)
class LinkConfig:
    """What the link's use cases need to know about their node."""

    node_id: str
    default_timeout_s: float = 10.0
    max_timeout_s: float = 120.0
    dial_plan: DialPlan = field(default_factory=DialPlan)


class CtiLink:
    """The link of one switch node: its channel table, its fencing table, its use cases."""

    def __init__(
        self,
        config: LinkConfig,
        *,
        publisher: CallEventPublisher,
        notifier: NodeNotifier | None = None,
        resolver: TenantResolver | None = None,
        archive: RecordingArchive | None = None,
        observer: LinkObserver | None = None,
    ) -> None:
        self.config = config
        self.normalizer = Normalizer()
        self.fencing = FencingTable()
        self.switch: Switch | None = None
        self._publisher = publisher
        self._notifier = notifier
        self._resolver = resolver
        self._archive = archive
        self._observer: LinkObserver = observer or NullObserver()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.esl_connected = False
        self.events_seen = 0
        self._snapshot_gen: int | None = None

    # -- events -----------------------------------------------------------------------------

    async def on_events(self, batch: Sequence[Mapping[str, str]]) -> None:
        """A batch of switch events (URL-decoded headers, in arrival order)."""
        observer = self._observer
        normalizer = self.normalizer
        out: list[CallEvent] = []
        dropped = 0
        self.events_seen += len(batch)
        # The lag is sampled once a batch, on its first (oldest) event; every event is counted.
        lag_of = batch[0] if batch else None
        for headers in batch:
            name = headers.get("Event-Name") or "?"
            if headers is lag_of:
                stamp = headers.get("Event-Date-Timestamp")
                observer.esl_event(name, int(stamp) if stamp and stamp.isdigit() else 0)
            else:
                observer.esl_event(name, 0)
            outcome = normalizer.feed(headers)
            if outcome.kind in ("malformed", "unknown"):
                observer.esl_problem(outcome.kind)
                log.debug("switch event not used: %s (%s)", outcome.kind, outcome.reason)
                continue
            dropped += outcome.dropped
            for event in outcome.events:
                if event.body == "recording_stopped":
                    # Published after its file is in the media store; the rest go on meanwhile.
                    if out:
                        await self._publish(out)
                        out = []
                    self._spawn(self._archive_and_publish(event))
                else:
                    out.append(event)
            if outcome.ask_tenant is not None:
                leg = outcome.ask_tenant
                self._spawn(self._resolve_tenant(leg.uuid, leg.sip_domain, leg.sip_user))
        if dropped:
            observer.unknown_tenant(dropped)
        if out:
            await self._publish(out)

    async def _publish(self, events: list[CallEvent]) -> None:
        try:
            await self._publisher.publish_call_events(events)
        except Exception:  # the link keeps running whatever the bus does
            log.exception("could not publish %d call events", len(events))

    async def _resolve_tenant(self, uuid: str, domain: str, user: str) -> None:
        if self._resolver is None:
            return
        try:
            tenant = await self._resolver.tenant_of(domain, user)
        except Exception:  # admin down or a bad domain: the events wait for a variable instead
            log.warning("tenant of %s@%s could not be looked up", user, domain, exc_info=True)
            return
        if tenant:
            events = self.normalizer.tenant_found(uuid, tenant)
            if events:
                await self._publish(events)

    async def _archive_and_publish(self, event: CallEvent) -> None:
        recording: RecordingStopped = event.message
        if self._archive is not None and recording.path:
            try:
                event.message = await self._archive.archive(
                    event.tenant_id, event.call_id, recording
                )
            except Exception:  # the event still goes out, without a media id
                log.exception("recording %s could not be archived", recording.path)
        await self._publish([event])

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def on_snapshot_begin(self) -> None:
        """The switch is about to be asked for its live channels (events before this are older)."""
        self._snapshot_gen = self.normalizer.table.begin_snapshot()

    async def on_connected(
        self, live: Mapping[str, str] | None, esl_endpoint: str, *, reconnect: bool
    ) -> None:
        """The socket is up: match the table to the switch's live channels (when it said)."""
        self.esl_connected = True
        if reconnect:
            self._observer.reconnect()
        since, self._snapshot_gen = self._snapshot_gen, None
        if live is not None:
            added, events = self.normalizer.sync(live, int(time.time() * 1_000_000), since)
            if added or events:
                log.info(
                    "channel table rebuilt from the switch",
                    extra={"adopted": len(added), "vanished": len(events), "live": len(live)},
                )
            if events:
                await self._publish(events)
        if self._notifier is not None:
            try:
                await self._notifier.node_up(esl_endpoint)
            except Exception:
                log.exception("NodeUp could not be published")
        self.report_channels()

    async def on_disconnected(self, reason: str) -> None:
        """The event socket is lost."""
        was = self.esl_connected
        self.esl_connected = False
        if was and self._notifier is not None:
            try:
                await self._notifier.node_down(reason)
            except Exception:
                log.exception("NodeDown could not be published")

    def report_channels(self) -> None:
        """Live channels per tenant to the observer."""
        self._observer.live_channels(dict(self.normalizer.table.live_by_tenant()))

    def channels(self) -> int:
        """Live channels."""
        return len(self.normalizer.table)

    def calls(self) -> int:
        """Live calls."""
        return self.normalizer.table.calls()

    def hint_tenant(self, uuid: str, tenant_id: str) -> None:
        """The dialplan look-up learnt a channel's tenant before its events say it."""
        self._spawn(self._hinted(uuid, tenant_id))

    async def _hinted(self, uuid: str, tenant_id: str) -> None:
        events = self.normalizer.tenant_found(uuid, tenant_id)
        if events:
            await self._publish(events)

    # -- commands ---------------------------------------------------------------------------

    async def execute(self, cmd: SwitchCommand) -> SwitchReply:
        """Check, fence and run one switch command; every outcome is a reply, never a raise."""
        began = time.perf_counter()
        reply = SwitchReply(command_id=cmd.command_id)
        which = cmd.WhichOneof("command") or "none"
        if which in ("originate", "eavesdrop"):
            self._fill_uuid(cmd)
        try:
            line = to_command_line(cmd, self.config.dial_plan)
        except BadArgument as err:
            self._observer.refused("invalid_argument")
            return self._fail(reply, SwitchErrorCode.SWITCH_ERROR_CODE_INVALID_ARGUMENT, str(err))
        # The tenant wall: a command may only act on its own tenant's channels (the node command
        # subject is shared by every tenant). Answered as "no such channel" so it tells nothing.
        table = self.normalizer.table
        for name, channel in channels_acted_on(cmd):
            owner = table.owner(channel)
            if owner and owner != cmd.tenant_id:
                self._observer.refused("other_tenant")
                return self._fail(
                    reply,
                    SwitchErrorCode.SWITCH_ERROR_CODE_NO_SUCH_CHANNEL,
                    f"{name}: no channel {channel} of tenant {cmd.tenant_id!r}",
                )
        verdict = self.fencing.check(cmd.tenant_id, cmd.lease, cmd.fencing_token)
        if not verdict.admitted:
            self._observer.refused(verdict.reason)
            if verdict.reason == "stale":
                message = (
                    f"fencing_token: {cmd.fencing_token} is older than {verdict.newest}, the "
                    f"newest seen for lease {cmd.lease!r}"
                )
                code = SwitchErrorCode.SWITCH_ERROR_CODE_STALE_FENCING_TOKEN
            else:
                message = "fencing_token: required (> 0) when a lease is named"
                code = SwitchErrorCode.SWITCH_ERROR_CODE_INVALID_ARGUMENT
            return self._fail(reply, code, message)
        switch = self.switch
        if switch is None or not switch.connected:
            self._observer.refused("not_connected")
            return self._fail(
                reply, SwitchErrorCode.SWITCH_ERROR_CODE_NOT_CONNECTED, "the event socket is down"
            )
        timeout = cmd.timeout_ms / 1000 if cmd.timeout_ms else self.config.default_timeout_s
        timeout = min(timeout, self.config.max_timeout_s)
        if line.recording is not None:
            self.normalizer.recording_ids[line.recording[0]] = line.recording[1]
        reply.channel_uuid = line.channel_uuid
        try:
            job_uuid, output = await self._run(switch, line, timeout)
        except SwitchTimeout:
            self._observer.command(line.name, "timeout", time.perf_counter() - began)
            return self._fail(
                reply,
                SwitchErrorCode.SWITCH_ERROR_CODE_TIMEOUT,
                f"no answer from the switch within {timeout:g} s",
            )
        except SwitchNotConnected:
            self._observer.command(line.name, "not_connected", time.perf_counter() - began)
            return self._fail(
                reply, SwitchErrorCode.SWITCH_ERROR_CODE_NOT_CONNECTED, "the event socket is down"
            )
        result = interpret_reply(output, line)
        reply.job_uuid = job_uuid
        reply.output = output.strip()
        reply.ok = result.ok
        reply.channel_uuid = result.channel_uuid
        if not result.ok:
            reply.error_code = result.code  # type: ignore[assignment]
            reply.message = result.message
        self._observer.command(
            line.name, "ok" if result.ok else "error", time.perf_counter() - began
        )
        return reply

    async def _run(self, switch: Switch, line: CommandLine, timeout: float) -> tuple[str, str]:
        """Run a command line; a recording that did not start forgets its id (no leak)."""
        ok = False
        try:
            job_uuid, output = await switch.bgapi(line.line, timeout)
            ok = output.lstrip().startswith("+OK")
            return job_uuid, output
        finally:
            if line.recording is not None and not ok:
                self.normalizer.recording_ids.pop(line.recording[0], None)

    @staticmethod
    def _fill_uuid(cmd: SwitchCommand) -> None:
        if cmd.HasField("originate") and not cmd.originate.channel_uuid:
            cmd.originate.channel_uuid = str(uuidlib.uuid4())
        if cmd.HasField("eavesdrop") and not cmd.eavesdrop.supervisor_channel_uuid:
            cmd.eavesdrop.supervisor_channel_uuid = str(uuidlib.uuid4())

    @staticmethod
    def _fail(reply: SwitchReply, code: int, message: str) -> SwitchReply:
        reply.ok = False
        reply.error_code = code  # type: ignore[assignment]
        reply.message = message
        return reply

    async def settle(self, timeout_s: float = 10.0) -> None:
        """Let look-ups and archive moves in flight finish (up to ``timeout_s``)."""
        while self._tasks:
            _, pending = await asyncio.wait(list(self._tasks), timeout=timeout_s)
            if pending:
                return

    async def stop(self) -> None:
        """Cancel look-ups and archive moves still running."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
