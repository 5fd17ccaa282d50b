"""The emulated switch: channels with FreeSWITCH's states, events and applications."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
import re
import shutil
import tempfile
import time
import uuid as uuidlib
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from callmesh.core.esl import serialize_header_lines
from callmesh.fsemu.events import VARIABLE_EVENTS, Clock, Event, EventFactory
from callmesh.fsemu.media import MediaResolver
from callmesh.fsemu.model import (
    CALL_STATE_NUMBER,
    STATE_INDEX,
    STATE_NUMBER,
    CallerProfile,
    DialTarget,
    normalize_cause,
    parse_dial_string,
    q850,
    split_dial_legs,
)
from callmesh.fsemu.xml_curl import XmlCurlDialplan

__all__ = [
    "Channel",
    "DialHandler",
    "DialTarget",
    "Dialplan",
    "Registration",
    "Registrations",
    "Switch",
]

log = logging.getLogger("callmesh.fsemu")

DialHandler = Callable[["Channel", DialTarget], Awaitable[None]]
Extension = Sequence[tuple[str, str]]
Dialplan = (
    Callable[["Channel"], Extension | Awaitable[Extension | None] | None] | Mapping[str, Extension]
)
Listener = Callable[[Event], None]

# switch_version_full() / switch_version_revision_human() / switch_version_full_human().
VERSION = "1.10.12-release+git~20240712T161717Z~1f7d1e0ea8~64bit"
VERSION_REVISION = "git 1f7d1e0 2024-07-12 16:17:17Z 64bit"
VERSION_HUMAN = "1.10.12-release git 1f7d1e0 2024-07-12 16:17:17Z 64bit"


class AppError(Exception):
    """An application that cannot run (unknown name, bad arguments)."""


@dataclass(slots=True)
class Message:
    """A private event queued to a session (sendmsg / uuid_broadcast)."""

    command: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None


class Channel:
    """One call leg with FreeSWITCH's channel and call states."""

    def __init__(
        self,
        switch: Switch,
        *,
        direction: str,
        name: str,
        profile_name: str,
        caller_number: str,
        caller_name: str,
        destination_number: str,
        network_addr: str,
        context: str,
        uuid: str | None = None,
    ) -> None:
        self.switch = switch
        self.uuid = uuid or str(uuidlib.uuid4())
        self.name = name
        self.direction = direction
        self.sofia_profile = profile_name
        self.state = "CS_NEW"
        self.running_state = "CS_NEW"
        self.call_state = "DOWN"
        self.answered = False
        self.early = False
        self.ring_ready = False
        self.hangup_cause: str | None = None
        self._hangup_disposition = "send_bye"
        self.hit_dialplan = direction == "inbound"
        # Codec headers appear once media is negotiated: after CREATE for SIP inbound (the
        # INVITE carried SDP), after 183/200 for outbound legs.
        self.media_ready = False
        self.variables: dict[str, str] = {}
        now = switch.now_us()
        self.created_us = now
        self.profile = CallerProfile(
            direction=direction,
            uuid=self.uuid,
            chan_name=name,
            caller_id_name=caller_name,
            caller_id_number=caller_number,
            orig_caller_id_name=caller_name,
            orig_caller_id_number=caller_number,
            destination_number=destination_number,
            username=caller_number if direction == "inbound" else "",
            network_addr=network_addr,
            ani=caller_number,
            context=context,
            times={"profile_created": now, "created": now},
        )
        self.other: tuple[str, Channel] | None = None
        self.partner: Channel | None = None
        self.bridge_originator = False
        self.held = False
        self.parked = False
        self.controlled = False
        self.eavesdrop_mode: str | None = None
        self.conference: str | None = None
        self.dtmf_buffer: list[str] = []
        self.sent_dtmf: list[str] = []
        self.nolocal_exports: dict[str, str] = {}
        self.recordings: dict[str, tuple[float, float | None]] = {}
        self._queue: asyncio.Queue[Message] = asyncio.Queue()
        self._wake = asyncio.Event()
        self._break = False
        self._hangup_evt = asyncio.Event()
        self._answer_evt = asyncio.Event()
        self._progress_evt = asyncio.Event()
        self._destroyed = asyncio.Event()
        self._transfer: tuple[str, str, str] | None = None
        self._unpark = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._var_cache: list[tuple[str, str]] | None = None
        self._var_text: str | None = None  # _var_cache serialized (plain), once per change
        self._app_depth = 0
        self.current_app: tuple[str, str] | None = None
        self.socket_listeners: list[Any] = []
        self._assignment: Extension | str | None = None
        self._assigned = asyncio.Event()
        self._bridge_request: tuple[Channel, bool] | None = None

    # ------------------------------------------------------------------ properties
    @property
    def caller_number(self) -> str:
        """The Caller-Caller-ID-Number."""
        return self.profile.caller_id_number

    @property
    def destination_number(self) -> str:
        """The Caller-Destination-Number."""
        return self.profile.destination_number

    @property
    def ready(self) -> bool:
        """True until the channel is hung up."""
        return self.hangup_cause is None

    @property
    def answer_state(self) -> str:
        """Answer-State header value."""
        if self.hangup_cause is not None:
            return "hangup"
        if self.answered:
            return "answered"
        if self.early:
            return "early"
        return "ringing"

    def __repr__(self) -> str:
        return f"<Channel {self.uuid} {self.name} {self.running_state} {self.call_state}>"

    # ------------------------------------------------------------------ variables
    def set_var(self, name: str, value: str | None) -> None:
        """Set (or with None, unset) a channel variable."""
        if value is None:
            if self.variables.pop(name, None) is not None:
                self._var_cache = self._var_text = None
            return
        self.variables[name] = value
        self._var_cache = self._var_text = None

    def get_var(self, name: str, default: str | None = None) -> str | None:
        """A channel variable (a few built-ins are computed, as FreeSWITCH does)."""
        value = self.variables.get(name)
        if value is not None:
            return value
        if name == "uuid":
            return self.uuid
        if name == "destination_number":
            return self.destination_number
        if name == "caller_id_number":
            return self.caller_number
        if name == "caller_id_name":
            return self.profile.caller_id_name
        if name == "state":
            return self.running_state
        if name == "channel_name":
            return self.name
        return default

    def expand(self, text: str) -> str:
        """Expand ${var} references (unknown variables become empty)."""
        if "${" not in text:
            return text
        return re.sub(r"\$\{([^}]+)\}", lambda m: self.get_var(m.group(1), "") or "", text)

    def var_true(self, name: str, default: bool = False) -> bool:
        """switch_true on a variable."""
        value = self.variables.get(name)
        if value is None:
            return default
        return value.lower() in ("true", "yes", "on", "1", "enabled", "active", "allow")

    # ------------------------------------------------------------------ events
    def _variable_headers(self) -> list[tuple[str, str]]:
        cached = self._var_cache
        if cached is None:
            cached = [("variable_" + k, v) for k, v in self.variables.items()]
            self._var_cache = cached
        return cached

    def _variable_text(self) -> str:
        text = self._var_text
        if text is None:
            text = self._var_text = serialize_header_lines(self._variable_headers())
        return text

    def event_data(
        self,
        headers: list[tuple[str, str]],
        variables: bool,
        blocks: list[tuple[int, int, str]] | None = None,
    ) -> None:
        """switch_channel_event_set_data: basic data, then variable_* when `variables`.

        With `blocks`, the header ranges that are channel-constant are recorded with their
        serialized text, so the event's plain form reuses it (see Event.serialize).
        """
        headers.append(("Channel-State", self.running_state))
        headers.append(("Channel-Call-State", self.call_state))
        headers.append(("Channel-State-Number", STATE_NUMBER[self.state]))
        headers.append(("Channel-Name", self.name))
        headers.append(("Unique-ID", self.uuid))
        headers.append(("Call-Direction", self.direction))
        headers.append(("Presence-Call-Direction", self.direction))
        headers.append(("Channel-HIT-Dialplan", "true" if self.hit_dialplan else "false"))
        presence = self.variables.get("presence_id")
        if presence:
            headers.append(("Channel-Presence-ID", presence))
        headers.append(("Channel-Call-UUID", self.variables.get("call_uuid") or self.uuid))
        headers.append(("Answer-State", self.answer_state))
        if self.hangup_cause is not None:
            headers.append(("Hangup-Cause", self.hangup_cause))
        if self.media_ready:
            headers.extend(_CODEC_HEADERS)
        start = len(headers)
        headers.extend(self.profile.headers("Caller"))
        if blocks is not None:
            blocks.append((start, len(headers), self.profile.headers_text("Caller")))
        if self.other is not None:
            other_type, other = self.other
            headers.append(("Other-Type", other_type))
            start = len(headers)
            headers.extend(other.profile.headers("Other-Leg"))
            if blocks is not None:
                blocks.append((start, len(headers), other.profile.headers_text("Other-Leg")))
        if variables:
            start = len(headers)
            headers.extend(self._variable_headers())
            if blocks is not None:
                blocks.append((start, len(headers), self._variable_text()))

    def make_event(
        self,
        name: str,
        pre: Sequence[tuple[str, str]] = (),
        post: Sequence[tuple[str, str]] = (),
        body: str | None = None,
        subclass: str | None = None,
        calling: tuple[str, str, str] | None = None,
    ) -> Event:
        """A channel event: common headers, `pre`, channel data, `post`."""
        event = self.switch.events.create(name, subclass, calling)
        headers = event.headers
        if pre:
            headers.extend(pre)
        blocks: list[tuple[int, int, str]] = []
        variables = name in VARIABLE_EVENTS or self.var_true("verbose_events", False)
        self.event_data(headers, variables, blocks)
        if post:
            headers.extend(post)
        event.add_blocks(blocks)
        event.body = body
        event.route = self.uuid
        return event

    def fire(
        self,
        name: str,
        pre: Sequence[tuple[str, str]] = (),
        post: Sequence[tuple[str, str]] = (),
        body: str | None = None,
        subclass: str | None = None,
    ) -> Event:
        """Build and fire a channel event."""
        event = self.make_event(name, pre, post, body, subclass)
        self.switch.fire(event)
        return event

    # ------------------------------------------------------------------ states
    def set_running_state(self, state: str, next_state: str | None = None) -> None:
        """switch_channel_perform_set_running_state: CALLSTATE (inbound) then CHANNEL_STATE.

        Channel-State-Number is channel->state, which may already be ahead of the running state
        (a hangup sets CS_HANGUP while the app still runs); `next_state` is what the state
        handler moves the channel to after the event (CS_INIT's on_init → CS_ROUTING).
        """
        self.running_state = state
        if STATE_INDEX[state] > STATE_INDEX[self.state]:
            self.state = state
        if self.direction == "inbound" and state in _PRE_HANGUP:
            if state == "CS_ROUTING":
                self.set_call_state("RINGING")
            elif self.answered:
                self.set_call_state("ACTIVE")
            elif self.early:
                self.set_call_state("EARLY")
        self.fire("CHANNEL_STATE")
        if next_state is not None:
            self.state = next_state

    def set_call_state(self, call_state: str) -> None:
        """switch_channel_perform_set_callstate: fires CHANNEL_CALLSTATE on change."""
        old = self.call_state
        if old == call_state or old == "HANGUP":
            return
        self.call_state = call_state
        self.fire(
            "CHANNEL_CALLSTATE",
            pre=(
                ("Original-Channel-Call-State", old),
                ("Channel-Call-State-Number", CALL_STATE_NUMBER[call_state]),
            ),
        )

    def _stamp(self, prefix: str, now_us: int) -> None:
        self.set_var(prefix + "_stamp", _local_stamp(now_us))
        self.set_var(prefix + "_epoch", str(now_us // 1_000_000))
        self.set_var(prefix + "_uepoch", str(now_us))

    # ------------------------------------------------------------------ signalling
    def mark_ring_ready(self) -> None:
        """180 Ringing: CHANNEL_PROGRESS."""
        if self.ring_ready or not self.ready:
            return
        self.ring_ready = True
        self._signal("progress", "progress", "CHANNEL_PROGRESS", "RINGING")

    def mark_pre_answered(self) -> None:
        """183 Session Progress: CHANNEL_PROGRESS_MEDIA."""
        if self.early or self.answered or not self.ready:
            return
        self.early = True
        self.media_ready = True
        self._signal("progress_media", "progress_media", "CHANNEL_PROGRESS_MEDIA", "EARLY")

    def mark_answered(self) -> None:
        """200 OK: CHANNEL_ANSWER, then callstate ACTIVE."""
        if self.answered or not self.ready:
            return
        self.answered = True
        self.media_ready = True
        self.set_var("endpoint_disposition", "ANSWER")
        self._signal("answered", "answer", "CHANNEL_ANSWER", "ACTIVE")
        self._answer_evt.set()
        if self.other is not None and self.other[0] == "originator":
            self.other[1].wake()

    def _signal(self, time_key: str, stamp: str, event: str, call_state: str) -> None:
        """Progress, early media or answer: stamp it, fire it, then move the call state."""
        now = self.switch.now_us()
        self.profile.times[time_key] = now
        self.profile.touch()
        self._stamp(stamp, now)
        # FreeSWITCH fires the event before the call state changes (switch_channel.c).
        self.fire(event)
        self.set_call_state(call_state)
        self._progress_evt.set()

    def wake(self) -> None:
        """Wake whatever the session is waiting on."""
        self._wake.set()

    def hangup(self, cause: str = "NORMAL_CLEARING", *, far: bool = False) -> bool:
        """switch_channel_perform_hangup; returns False when already hung up.

        ``far``: the other end hung up (mod_sofia then says recv_bye/recv_cancel/recv_refuse in
        ``sip_hangup_disposition``), not this switch (send_bye/send_cancel/send_refuse).
        """
        if self.hangup_cause is not None:
            return False
        cause = normalize_cause(cause)
        now = self.switch.now_us()
        self.state = "CS_HANGUP"
        self.hangup_cause = cause
        self.profile.times["hungup"] = now
        self.profile.touch()
        self._hangup_disposition = self._disposition(far)
        partner = self.partner
        if partner is not None:
            partner.set_var("last_bridge_hangup_cause", cause)
        if self.bridge_originator:
            self.set_var("last_bridge_role", "originator")
        elif partner is not None:
            self.set_var("last_bridge_role", "originatee")
        self.fire("CHANNEL_HANGUP")
        self._hangup_evt.set()
        self._answer_evt.set()
        self._progress_evt.set()
        self._assigned.set()
        self._wake.set()
        self.switch._on_hangup(self)
        return True

    # ------------------------------------------------------------------ far end
    async def far_ring(self, early_media: bool = False) -> None:
        """The far end rings (180) or sends early media (183)."""
        if early_media:
            self.mark_pre_answered()
        else:
            self.mark_ring_ready()

    async def far_answer(self) -> None:
        """The far end answers."""
        self.mark_answered()

    async def far_hangup(self, cause: str = "NORMAL_CLEARING") -> None:
        """The far end hangs up (or rejects with `cause`)."""
        self.hangup(cause, far=True)

    def _disposition(self, far: bool) -> str:
        """mod_sofia's ``sip_hangup_disposition``: who ended the dialog, and with what."""
        if self.answered:
            return "recv_bye" if far else "send_bye"
        if self.direction == "inbound":
            # An unanswered caller cancels; the switch refuses it with a final response.
            return "recv_cancel" if far else "send_refuse"
        # An unanswered outbound leg: the callee refuses it, or the switch cancels it.
        return "recv_refuse" if far else "send_cancel"

    async def far_dtmf(self, digits: str, duration_ms: int = 100) -> None:
        """The far end sends RFC 2833 digits."""
        for digit in digits:
            if not self.ready:
                return
            if digit not in "0123456789*#ABCDabcd":
                continue
            self.receive_dtmf(digit.upper(), duration_ms, "RTP")
            await self.switch.sleep(duration_ms / 1000.0)

    def receive_dtmf(self, digit: str, duration_ms: int = 100, source: str = "RTP") -> None:
        """Queue one digit for the session and fire DTMF."""
        self.fire(
            "DTMF",
            post=(
                ("DTMF-Digit", digit),
                ("DTMF-Duration", str(duration_ms * 8)),
                ("DTMF-Source", source),
            ),
        )
        if self.eavesdrop_mode is not None and self.var_true("eavesdrop_enable_dtmf", True):
            mode = _EAVESDROP_DTMF.get(digit)
            if mode is not None:
                self.eavesdrop_mode = mode
                return
        if len(self.dtmf_buffer) < 128:
            self.dtmf_buffer.append(digit)
        self._wake.set()

    async def wait_hangup(self) -> str:
        """Wait until the channel is hung up; return the cause."""
        await self._hangup_evt.wait()
        return self.hangup_cause or "NORMAL_CLEARING"

    async def wait_destroyed(self) -> None:
        """Wait until CHANNEL_DESTROY has been fired."""
        await self._destroyed.wait()

    async def wait_answer(self, timeout: float | None = None) -> bool:
        """Wait until answered (True) or hung up / timed out (False)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._answer_evt.wait(), timeout)
        return self.answered and self.ready

    # ------------------------------------------------------------------ session
    def spawn(self, coro: Awaitable[Any], name: str = "") -> asyncio.Task[Any]:
        """Run a coroutine tied to this channel's life."""
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("channel %s task failed", self.uuid, exc_info=task.exception())

    def queue_message(self, message: Message) -> None:
        """Queue a private event (sendmsg); hangups and breaks act at once."""
        if message.command == "hangup":
            self.hangup(message.headers.get("hangup-cause", "NORMAL_CLEARING"))
            return
        self._queue.put_nowait(message)
        self._wake.set()

    def media_break(self, all_: bool = False) -> None:
        """uuid_break [all]: stop the current media; `all` also drops queued messages."""
        self._break = True
        if all_:
            while not self._queue.empty():
                self._queue.get_nowait()
        self._wake.set()

    def request_transfer(self, dest: str, dialplan: str = "XML", context: str = "") -> None:
        """Leave whatever runs now and route `dest` again (uuid_transfer / transfer app)."""
        self._transfer = (dest, dialplan or "XML", context or self.profile.context)
        self._break = True
        self._unpark = True
        self._wake.set()
        self._leave_bridge("BLIND_TRANSFER")

    def _leave_bridge(self, cause: str) -> None:
        """Break this leg's bridge now; the peer is hung up with `cause`."""
        from callmesh.fsemu.apps import unbridge_pair

        self._bridge_request = None
        partner = self.partner
        if partner is None:
            return
        if self.bridge_originator:
            unbridge_pair(self, partner)
        else:
            unbridge_pair(partner, self)
        if partner.var_true("park_after_bridge") and cause != "BLIND_TRANSFER":
            partner.wake()
        else:
            partner.hangup(cause)

    def request_park(self) -> None:
        """uuid_park: leave the current app (or bridge) and park."""
        if self.parked and self.partner is None:
            return
        self._transfer = (_PARK, "", "")
        self._break = True
        self._unpark = True
        self._wake.set()
        self._leave_bridge("NORMAL_CLEARING")

    async def media_wait(
        self,
        seconds: float | None,
        stop_on_digit: Callable[[], bool] | None = None,
    ) -> str:
        """Wait out media time; returns done|break|dtmf|hangup|transfer."""
        loop = asyncio.get_running_loop()
        deadline = None if seconds is None else loop.time() + seconds / self.switch.speed
        while True:
            if not self.ready:
                return "hangup"
            if self._break:
                self._break = False
                return "transfer" if self._transfer is not None else "break"
            if stop_on_digit is not None and stop_on_digit():
                return "dtmf"
            self._wake.clear()
            if deadline is None:
                await self._wake.wait()
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                return "done"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), remaining)

    async def execute(
        self,
        app: str,
        arg: str = "",
        app_uuid: str | None = None,
        app_uuid_name: str | None = None,
    ) -> str:
        """switch_core_session_exec: EXECUTE, the app, EXECUTE_COMPLETE; returns the response."""
        from callmesh.fsemu.apps import APPLICATIONS

        func = APPLICATIONS.get(app.lower())
        if func is None:
            log.warning("%s: invalid application %s", self.name, app)
            return "-ERR invalid application"
        expanded = self.expand(arg)
        self.set_var("current_application", app)
        self.set_var("current_application_data", expanded)
        self.set_var("current_application_response", None)
        # switch_core_session_exec: every run has an Application-UUID (generated when the
        # sendmsg gave no event-uuid); Application-UUID-Name only when event-uuid-name was given.
        app_uuid = app_uuid or str(uuidlib.uuid4())
        post = [
            ("Application", app),
            ("Application-Data", expanded),
            ("Application-UUID", app_uuid),
        ]
        if app_uuid_name:
            post.append(("Application-UUID-Name", app_uuid_name))
        self.fire("CHANNEL_EXECUTE", post=post)
        if self._transfer is None:
            # CF_BREAK is cleared as every application starts (switch_core_session_exec).
            self._break = False
        self.current_app = (app, expanded)
        self._app_depth += 1
        try:
            response = await func(self, expanded)
        except AppError as err:
            log.warning("%s: %s(%s): %s", self.name, app, expanded, err)
            response = None
        finally:
            self._app_depth -= 1
            self.current_app = None
        if response is not None:
            self.set_var("current_application_response", response)
        self.set_var("last_app", app)
        self.set_var("last_arg", expanded)
        done = [
            ("Application", app),
            ("Application-Data", expanded),
            ("Application-Response", response if response is not None else "_none_"),
            ("Application-UUID", app_uuid),
        ]
        if app_uuid_name:
            done.append(("Application-UUID-Name", app_uuid_name))
        self.fire("CHANNEL_EXECUTE_COMPLETE", post=done)
        return response or ""

    async def run_message(self, message: Message) -> None:
        """switch_ivr_parse_event for one queued message."""
        headers = message.headers
        command = message.command
        if command == "execute":
            app = headers.get("execute-app-name", "")
            arg = headers.get("execute-app-arg", "")
            if not arg and message.body and headers.get("content-type", "") == "text/plain":
                arg = message.body
            loops = headers.get("loops", "1")
            count = int(loops) if loops.isdigit() else 1
            app_uuid = headers.get("event-uuid")
            app_uuid_name = headers.get("event-uuid-name")
            for _ in range(max(1, count)):
                if not self.ready:
                    break
                await self.execute(app, arg, app_uuid, app_uuid_name)
        elif command == "unicast" or command == "nomedia":
            return
        elif command == "xferext":
            apps: list[tuple[str, str]] = []
            for key, value in headers.items():
                if key.lower() == "application":
                    name, _, data = value.partition(" ")
                    apps.append((name, data))
            for name, data in apps:
                if not self.ready:
                    break
                await self.execute(name, data)

    async def parse_all_events(self) -> None:
        """Run every queued message (switch_ivr_parse_all_events)."""
        while not self._queue.empty() and self.ready:
            message = self._queue.get_nowait()
            await self.run_message(message)

    def release_control(self) -> None:
        """An outbound socket went away: CF_CONTROLLED cleared, park returns."""
        self.controlled = False
        self._wake.set()

    def assign(self, what: Extension | str) -> None:
        """Tell an originated leg what to do once answered: an extension, "bridge" or "park"."""
        self._assignment = what
        self._assigned.set()

    async def _session(self, extension: Extension | None, route: bool = True) -> None:
        """The session thread: routing, execute, then hangup/reporting/destroy."""
        await self._guarded(self._session_body(extension, route), "session")

    async def _leg_main(self) -> None:
        """An originated leg: wait for its assignment, then run it; teardown at the end."""
        await self._guarded(self._leg_body(), "leg")

    async def _guarded(self, body: Coroutine[Any, Any, None], what: str) -> None:
        """Run a channel's thread: a crash or shutdown hangs it up; teardown always follows."""
        try:
            await body
        except asyncio.CancelledError:
            self.hangup("SYSTEM_SHUTDOWN")
            raise
        except Exception:
            log.exception("%s %s crashed", what, self.uuid)
            self.hangup("CRASH")
        finally:
            await self._finish()

    async def _leg_body(self) -> None:
        await self._assigned.wait()
        what = self._assignment
        if not self.ready or what is None:
            return
        if what == "route" and self._transfer is not None:
            extension = self._apply_transfer()
            await self._session_body(extension, extension is None)
        elif what == "bridge":
            await self._bridged_leg()
            if self.ready and self._transfer is not None:
                extension = self._apply_transfer()
                await self._session_body(extension, extension is None)
            elif self.ready and self.var_true("park_after_bridge"):
                self.state = "CS_EXECUTE"
                self.set_running_state("CS_EXECUTE")
                await self.execute("park", "")
            elif self.ready:
                self.hangup("NORMAL_CLEARING")
        elif isinstance(what, str):
            await self._session_body([(what, "")], False)
        else:
            await self._session_body(what, False)

    async def _bridged_leg(self) -> None:
        """The originatee side of a bridge: CS_EXCHANGE_MEDIA until unbridged or hung up."""
        while self.ready and self.partner is not None and self._transfer is None:
            self._wake.clear()
            await self._wake.wait()
            if self._bridge_request is not None:
                break

    async def _session_body(self, extension: Extension | None, route: bool) -> None:
        while self.ready:
            if route:
                self.state = "CS_ROUTING"
                self.set_running_state("CS_ROUTING", "CS_EXECUTE")
                if extension is None:
                    try:
                        extension = await self.switch.lookup_dialplan(self)
                    except Exception:
                        log.exception("dialplan lookup failed for %s", self.name)
                        extension = None
                if extension is None:
                    self.hangup("NO_ROUTE_DESTINATION")
                    break
                self.hit_dialplan = True
            self.state = "CS_EXECUTE"
            self.set_running_state("CS_EXECUTE")
            for app, arg in extension or ():
                if not self.ready or self._transfer is not None:
                    break
                await self.execute(app, arg)
                if self._transfer is None:
                    await self.parse_all_events()
            extension = None
            if self._transfer is not None and self.ready:
                extension = self._apply_transfer()
                route = extension is None
                continue
            if self.ready:
                self.hangup("NORMAL_CLEARING")

    def _apply_transfer(self) -> Extension | None:
        assert self._transfer is not None
        dest, dialplan, context = self._transfer
        self._transfer = None
        self._break = False
        if dest == _PARK:
            return [("park", "")]
        now = self.switch.now_us()
        old = self.profile
        source = f"{now // 1_000_000}:{self.uuid}:uuid_br:{dest}/{context}/{dialplan}"
        self.profile = CallerProfile(
            direction=old.direction,
            uuid=self.uuid,
            chan_name=self.name,
            caller_id_name=old.caller_id_name,
            caller_id_number=old.caller_id_number,
            orig_caller_id_name=old.orig_caller_id_name,
            orig_caller_id_number=old.orig_caller_id_number,
            destination_number=dest,
            username=old.username,
            dialplan=dialplan,
            context=context,
            network_addr=old.network_addr,
            ani=old.ani,
            rdnis=old.destination_number,
            source=old.source,
            transfer_source=source,
            profile_index=str(int(old.profile_index) + 1),
            times=dict(old.times, profile_created=now, transferred=now),
        )
        self.set_var("transfer_source", source)
        history = self.variables.get("transfer_history")
        self.set_var("transfer_history", f"{history}|:{source}" if history else source)
        self.set_var("max_forwards", self.variables.get("max_forwards", "70"))
        return None

    async def _finish(self) -> None:
        """CS_HANGUP → CS_REPORTING (HANGUP_COMPLETE) → CS_DESTROY (DESTROY)."""
        if self._destroyed.is_set():
            return
        cause = self.hangup_cause or "NORMAL_CLEARING"
        # switch_core_session_hangup_state: media bugs go (RECORD_STOP), the cause variables and
        # mod_sofia's disposition are set, callstate HANGUP, then the CS_HANGUP state change.
        await self.switch._before_teardown(self)
        self.set_var("hangup_cause", cause)
        self.set_var("hangup_cause_q850", str(q850(cause)))
        self.set_var("sip_hangup_disposition", self._hangup_disposition)
        self.set_call_state("HANGUP")
        self.set_running_state("CS_HANGUP", "CS_REPORTING")
        self._set_end_variables()
        self.set_running_state("CS_REPORTING")
        self.fire("CHANNEL_HANGUP_COMPLETE", pre=(("Hangup-Cause", cause),))
        self.state = "CS_DESTROY"
        self.set_running_state("CS_DESTROY")
        self.fire("CHANNEL_DESTROY")
        self._destroyed.set()
        self.switch._remove(self)
        for task in list(self._tasks):
            if task is not asyncio.current_task():
                task.cancel()

    def _set_end_variables(self) -> None:
        now = self.switch.now_us()
        times = self.profile.times
        self._stamp("end", now)
        start = self.created_us
        answered = times.get("answered", 0)
        self.set_var("start_stamp", _local_stamp(start))
        self.set_var("start_epoch", str(start // 1_000_000))
        self.set_var("start_uepoch", str(start))
        duration_us = max(0, now - start)
        bill_us = max(0, now - answered) if answered else 0
        self.set_var("duration", str(duration_us // 1_000_000))
        self.set_var("billsec", str(bill_us // 1_000_000))
        self.set_var("progresssec", str(_since(times.get("progress", 0), start) // 1_000_000))
        self.set_var("answersec", str(_since(answered, start) // 1_000_000))
        self.set_var("waitsec", str(_since(answered, start) // 1_000_000))
        self.set_var("mduration", str(duration_us // 1000))
        self.set_var("billmsec", str(bill_us // 1000))
        self.set_var("uduration", str(duration_us))
        self.set_var("billusec", str(bill_us))


_PARK = "\x00park"
_CODEC_HEADERS = (
    ("Channel-Read-Codec-Name", "PCMU"),
    ("Channel-Read-Codec-Rate", "8000"),
    ("Channel-Read-Codec-Bit-Rate", "64000"),
    ("Channel-Write-Codec-Name", "PCMU"),
    ("Channel-Write-Codec-Rate", "8000"),
    ("Channel-Write-Codec-Bit-Rate", "64000"),
)
_PRE_HANGUP = frozenset(
    {"CS_NEW", "CS_INIT", "CS_ROUTING", "CS_SOFT_EXECUTE", "CS_EXECUTE", "CS_EXCHANGE_MEDIA"}
    | {"CS_PARK", "CS_CONSUME_MEDIA", "CS_HIBERNATE", "CS_RESET"}
)
# Eavesdrop DTMF controls (switch_ivr_eavesdrop_session).
_EAVESDROP_DTMF = {"0": "listen", "1": "whisper-bleg", "2": "whisper-aleg", "3": "barge"}


def _since(t: int, start: int) -> int:
    return max(0, t - start) if t else 0


def _local_stamp(us: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(us // 1_000_000))


@dataclass(slots=True)
class Registration:
    """One SIP registration (a row of `show registrations`)."""

    user: str
    domain: str
    contact: str
    expires_at: float
    network_ip: str
    network_port: str
    user_agent: str
    profile: str
    call_id: str
    token: str


class Registrations:
    """The registrations table; register/unregister/expire fire sofia::* CUSTOM events."""

    def __init__(self, switch: Switch) -> None:
        self._switch = switch
        self._rows: dict[str, Registration] = {}

    def register(
        self,
        user: str,
        domain: str,
        contact: str = "",
        *,
        expires: int = 3600,
        network_ip: str = "127.0.0.1",
        network_port: str = "5060",
        user_agent: str = "callmesh-fsemu-phone",
        profile: str = "internal",
        call_id: str | None = None,
    ) -> Registration:
        """Add or refresh a registration and fire CUSTOM sofia::register."""
        contact = contact or f"sip:{user}@{network_ip}:{network_port}"
        call_id = call_id or uuidlib.uuid4().hex
        reg = Registration(
            user,
            domain,
            contact,
            self._switch.clock() + expires,
            network_ip,
            network_port,
            user_agent,
            profile,
            call_id,
            uuidlib.uuid4().hex[:22],
        )
        self._rows[f"{user}@{domain}".lower()] = reg
        self._fire("sofia::register", reg, expires, status="Registered(UDP)")
        return reg

    def unregister(self, user: str, domain: str) -> bool:
        """REGISTER with expires=0: drop the row and fire sofia::unregister."""
        reg = self._rows.pop(f"{user}@{domain}".lower(), None)
        if reg is None:
            return False
        self._fire("sofia::unregister", reg, 0, status="Unregistered(UDP)")
        return True

    def expire(self, user: str, domain: str) -> bool:
        """The registration timed out: drop it and fire sofia::expire."""
        reg = self._rows.pop(f"{user}@{domain}".lower(), None)
        if reg is None:
            return False
        self._fire("sofia::expire", reg, 0, status="Expired(UDP)")
        return True

    def expire_due(self) -> int:
        """Expire every registration past its time; returns how many."""
        now = self._switch.clock()
        due = [r for r in self._rows.values() if r.expires_at <= now]
        for reg in due:
            self.expire(reg.user, reg.domain)
        return len(due)

    def lookup(self, user: str, domain: str = "") -> Registration | None:
        """The live registration of user@domain (any domain when none is given).

        One past its time is expired here (sofia::expire), as mod_sofia's periodic check would
        have done, so a row nobody refreshes or unregisters does not stay forever.
        """
        if domain:
            found = self._rows.get(f"{user}@{domain}".lower())
        else:
            found = next((reg for reg in self._rows.values() if reg.user == user), None)
        if found is not None and found.expires_at <= self._switch.clock():
            self.expire(found.user, found.domain)
            return None
        return found

    def all(self) -> list[Registration]:
        """Every live registration, oldest first (expiring those past their time)."""
        self.expire_due()
        return list(self._rows.values())

    def _fire(self, subclass: str, reg: Registration, expires: int, status: str) -> None:
        # Header sets and order of mod_sofia/sofia_reg.c: REGISTER (handle_register_token),
        # UNREGISTER (expires 0 on the same path) and EXPIRE (sofia_reg_del_callback).
        contact = f'"{reg.user}" <{reg.contact}>'
        if subclass == "sofia::register":
            headers = [
                ("profile-name", reg.profile),
                ("from-user", reg.user),
                ("from-host", reg.domain),
                ("presence-hosts", reg.domain),
                ("contact", contact),
                ("call-id", reg.call_id),
                ("rpid", "unknown"),
                ("status", status),
                ("expires", str(expires)),
                ("to-user", reg.user),
                ("to-host", reg.domain),
                ("network-ip", reg.network_ip),
                ("network-port", reg.network_port),
                ("username", reg.user),
                ("realm", reg.domain),
                ("user-agent", reg.user_agent),
            ]
        elif subclass == "sofia::unregister":
            headers = [
                ("profile-name", reg.profile),
                ("username", reg.user),
                ("from-user", reg.user),
                ("from-host", reg.domain),
                ("contact", contact),
                ("call-id", reg.call_id),
                ("rpid", "unknown"),
                ("realm", reg.domain),
                ("network-ip", reg.network_ip),
                ("network-port", reg.network_port),
                ("user-agent", reg.user_agent),
                ("expires", "0"),
            ]
        else:
            headers = [
                ("profile-name", reg.profile),
                ("call-id", reg.call_id),
                ("user", reg.user),
                ("username", reg.user),
                ("host", reg.domain),
                ("contact", contact),
                ("expires", str(int(reg.expires_at))),
                ("user-agent", reg.user_agent),
                ("realm", reg.domain),
                ("network-ip", reg.network_ip),
                ("network-port", reg.network_port),
            ]
        self._switch.fire_custom(subclass, headers)


class Switch:
    """The emulated FreeSWITCH core: channels, events, api commands and the dialplan."""

    def __init__(
        self,
        *,
        hostname: str = "fsemu",
        ipv4: str = "127.0.0.1",
        speed: float = 1.0,
        seed: int | None = None,
        media_dir: Path | None = None,
        clock: Clock | None = None,
        recordings_dir: Path | None = None,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed: must be > 0")
        self.core_uuid = str(uuidlib.uuid4())
        self.hostname = hostname
        self.ipv4 = ipv4
        self.speed = speed
        self.rng = random.Random(seed)
        self.clock: Clock = clock or time.time
        self.media_dir = media_dir
        self._tmp = Path(tempfile.mkdtemp(prefix="fsemu-"))
        self.recordings_dir = recordings_dir or self._tmp / "recordings"
        self.media = MediaResolver(media_dir, self._tmp / "http_cache")
        self.events = EventFactory(self.core_uuid, hostname, ipv4, self.clock)
        self.registrations = Registrations(self)
        self.started = self.clock()
        self.sessions_since_startup = 0
        self.peak_sessions = 0
        self._channels: dict[str, Channel] = {}
        self._listeners: list[Listener] = []
        self._session_listeners: dict[str, list[Listener]] = {}
        self._dial_handler: DialHandler | None = None
        self.xml_curl: XmlCurlDialplan | None = None
        self._dialplan: Dialplan | None = None
        self.conferences: dict[str, Any] = {}
        self.calls: dict[str, tuple[str, str, int]] = {}
        self.gateways: dict[str, str] = {}
        self._bg_tasks: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------------ basics
    def now_us(self) -> int:
        """The clock in microseconds."""
        return int(self.clock() * 1_000_000)

    async def sleep(self, seconds: float) -> None:
        """Sleep `seconds` of emulated time (divided by speed)."""
        if seconds > 0:
            await asyncio.sleep(seconds / self.speed)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` with every fired event; returns the unsubscribe function."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return unsubscribe

    def subscribe_session(self, uuid: str, listener: Listener) -> Callable[[], None]:
        """Call `listener` only with events of one session (its Unique-ID or Job-Owner-UUID)."""
        self._session_listeners.setdefault(uuid, []).append(listener)

        def unsubscribe() -> None:
            listeners = self._session_listeners.get(uuid)
            if listeners is not None:
                with contextlib.suppress(ValueError):
                    listeners.remove(listener)
                if not listeners:
                    self._session_listeners.pop(uuid, None)

        return unsubscribe

    def fire(self, event: Event) -> None:
        """Deliver an event to every listener (a failing listener never stops the others)."""
        for listener in tuple(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("event listener failed on %s", event.name)
        if event.route is not None and self._session_listeners:
            for listener in tuple(self._session_listeners.get(event.route, ())):
                try:
                    listener(event)
                except Exception:
                    log.exception("session listener failed on %s", event.name)

    def fire_custom(
        self, subclass: str, headers: Sequence[tuple[str, str]], body: str | None = None
    ) -> Event:
        """Fire a CUSTOM event with the given subclass and headers."""
        event = self.events.create("CUSTOM", subclass)
        event.headers.extend(headers)
        event.body = body
        self.fire(event)
        return event

    def fire_plain(
        self,
        name: str,
        headers: Sequence[tuple[str, str]],
        body: str | None = None,
        route: str | None = None,
    ) -> Event:
        """Fire a non-channel event (BACKGROUND_JOB, HEARTBEAT, …); `route` names its session."""
        event = self.events.create(name)
        event.headers.extend(headers)
        event.body = body
        event.route = route or None
        self.fire(event)
        return event

    def uptime_text(self) -> str:
        """switch_core_measure_time as status and HEARTBEAT print it."""
        total_us = max(0, self.now_us() - int(self.started * 1_000_000))
        ms_total, us = divmod(total_us, 1000)
        seconds, ms = divmod(ms_total, 1000)
        minutes, seconds = divmod(seconds, 60)
        hours, minutes = divmod(minutes, 60)
        days, hours = divmod(hours, 24)
        years, days = divmod(days, 365)
        parts = (
            (years, "year"),
            (days, "day"),
            (hours, "hour"),
            (minutes, "minute"),
            (seconds, "second"),
            (ms, "millisecond"),
            (us, "microsecond"),
        )
        return ", ".join(f"{n} {word}{'' if n == 1 else 's'}" for n, word in parts)

    def fire_heartbeat(self) -> Event:
        """HEARTBEAT with send_heartbeat's headers (src/switch_core.c)."""
        uptime_ms = max(0, self.now_us() // 1000 - int(self.started * 1000))
        return self.fire_plain(
            "HEARTBEAT",
            [
                ("Event-Info", "System Ready"),
                ("Up-Time", self.uptime_text()),
                ("FreeSWITCH-Version", VERSION),
                ("Uptime-msec", str(uptime_ms)),
                ("Session-Count", str(len(self._channels))),
                ("Max-Sessions", "1000"),
                ("Session-Per-Sec", "30"),
                ("Session-Per-Sec-Last", "0"),
                ("Session-Per-Sec-Max", "0"),
                ("Session-Per-Sec-FiveMin", "0"),
                ("Session-Since-Startup", str(self.sessions_since_startup)),
                ("Session-Peak-Max", str(self.peak_sessions)),
                ("Session-Peak-FiveMin", str(self.peak_sessions)),
                ("Idle-CPU", "100.000000"),
            ],
        )

    def start_heartbeat(self, interval: float = 20.0) -> asyncio.Task[Any]:
        """Fire HEARTBEAT now and every `interval` real seconds (event-heartbeat-interval, 20).

        The interval is wall time whatever the speed: it is the switch's own timer, not a
        simulated duration. Cancel the task (or close the switch) to stop it.
        """
        if interval <= 0:
            raise ValueError(f"heartbeat interval: must be > 0 seconds, got {interval}")

        async def beat() -> None:
            while True:
                self.fire_heartbeat()
                await asyncio.sleep(interval)

        return self.spawn(beat())

    def channel(self, uuid: str) -> Channel | None:
        """The live channel with that UUID."""
        return self._channels.get(uuid)

    def channels(self) -> list[Channel]:
        """Every live channel, oldest first."""
        return list(self._channels.values())

    def spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        """Run a background coroutine owned by the switch."""
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._bg_tasks.add(task)
        task.add_done_callback(self._bg_done)
        return task

    def _bg_done(self, task: asyncio.Task[Any]) -> None:
        self._bg_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("switch task failed", exc_info=task.exception())

    async def close(self) -> None:
        """Hang up every channel and stop background work."""
        for ch in self.channels():
            ch.hangup("SYSTEM_SHUTDOWN")
        for ch in self.channels():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ch.wait_destroyed(), 2)
        for task in list(self._bg_tasks):
            task.cancel()
        for task in list(self._bg_tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.media.close()
        if self.xml_curl is not None:
            await self.xml_curl.close()
        # The switch's own scratch directory (default recordings, http_cache downloads).
        shutil.rmtree(self._tmp, ignore_errors=True)

    # ------------------------------------------------------------------ config
    def set_dial_handler(self, handler: DialHandler | None) -> None:
        """Install the far-end driver for outbound legs."""
        self._dial_handler = handler

    def set_dialplan(self, dialplan: Dialplan | None) -> None:
        """Install the dialplan: a mapping destination → extension, or a (sync or async)
        callable(channel) → extension (None: no route, the call fails NO_ROUTE_DESTINATION)."""
        self._dialplan = dialplan

    def set_xml_curl(self, binding: XmlCurlDialplan | None) -> None:
        """Fetch every routing's dialplan over HTTP first, as mod_xml_curl does; "not found"
        or an error falls back to the static dialplan (set_dialplan)."""
        self.xml_curl = binding

    async def lookup_dialplan(self, channel: Channel) -> Extension | None:
        """The extension for the channel's destination (default: park)."""
        if self.xml_curl is not None:
            handled, extension = await self.xml_curl.hunt(channel)
            if handled:
                return extension
        dialplan = self._dialplan
        if dialplan is None:
            return [("park", "")]
        if callable(dialplan):
            found = dialplan(channel)
            if inspect.isawaitable(found):
                return await found
            return found
        dest = channel.destination_number
        if dest in dialplan:
            return dialplan[dest]
        for key, extension in dialplan.items():
            if key.startswith("^") and re.match(key, dest):
                return extension
        return dialplan.get("*")

    # ------------------------------------------------------------------ channels
    def _add(self, ch: Channel) -> None:
        self._channels[ch.uuid] = ch
        self.sessions_since_startup += 1
        self.peak_sessions = max(self.peak_sessions, len(self._channels))
        ch.set_var("session_id", str(self.sessions_since_startup))

    def _remove(self, ch: Channel) -> None:
        self._channels.pop(ch.uuid, None)
        self.calls.pop(ch.uuid, None)

    def _on_hangup(self, ch: Channel) -> None:
        partner = ch.partner
        if partner is not None and partner.ready:
            partner.wake()

    async def _before_teardown(self, ch: Channel) -> None:
        from callmesh.fsemu.apps import stop_recordings

        await stop_recordings(ch)

    async def inbound_call(
        self,
        *,
        caller_number: str,
        destination_number: str,
        caller_name: str = "",
        profile: str = "external",
        network_addr: str = "127.0.0.1",
        variables: Mapping[str, str] | None = None,
        context: str = "public",
        domain: str | None = None,
        uuid: str | None = None,
    ) -> Channel:
        """A call arrives from SIP: create the A leg and run the dialplan for it."""
        host = domain or self.ipv4
        name = f"sofia/{profile}/{caller_number}@{host}"
        ch = Channel(
            self,
            direction="inbound",
            name=name,
            profile_name=profile,
            caller_number=caller_number,
            caller_name=caller_name or caller_number,
            destination_number=destination_number,
            network_addr=network_addr,
            context=context,
            uuid=uuid,
        )
        ch.set_var("direction", "inbound")
        ch.set_var("uuid", ch.uuid)
        self._add(ch)
        port = str(5060 + self.rng.randrange(1, 2000))
        for key, value in (
            ("sip_from_user", caller_number),
            ("sip_from_uri", f"{caller_number}@{host}"),
            ("sip_from_host", host),
            ("channel_name", name),
            ("sip_call_id", uuidlib.uuid4().hex),
            ("sip_local_network_addr", self.ipv4),
            ("sip_network_ip", network_addr),
            ("sip_network_port", port),
            ("sip_received_ip", network_addr),
            ("sip_received_port", port),
            ("sip_via_protocol", "udp"),
            ("sofia_profile_name", profile),
            ("recovery_profile_name", profile),
            ("sip_req_user", destination_number),
            ("sip_req_uri", f"{destination_number}@{host}"),
            ("sip_req_host", host),
            ("sip_to_user", destination_number),
            ("sip_to_uri", f"{destination_number}@{host}"),
            ("sip_to_host", host),
            ("sip_contact_user", caller_number),
            ("sip_contact_host", network_addr),
            ("max_forwards", "70"),
            ("call_uuid", ch.uuid),
        ):
            ch.set_var(key, value)
        if domain:
            ch.set_var("domain_name", domain)
        for key, value in (variables or {}).items():
            ch.set_var(key, value)
        ch.set_running_state("CS_INIT", "CS_ROUTING")
        ch.fire("CHANNEL_CREATE")
        ch.media_ready = True
        ch.spawn(ch._session(None))
        return ch

    def new_outbound_channel(
        self,
        target: DialTarget,
        *,
        variables: Mapping[str, str],
        caller_name: str,
        caller_number: str,
        originator: Channel | None = None,
    ) -> Channel:
        """Create an outbound leg: (OUTGOING,) STATE CS_INIT, CREATE, ORIGINATE."""
        if target.kind == "user":
            reg = self.registrations.lookup(target.user, target.domain)
            where = reg.contact.split("@", 1)[-1] if reg else (target.domain or self.ipv4)
            name = f"sofia/internal/{target.user}@{where.split(';', 1)[0]}"
            profile = reg.profile if reg else "internal"
        elif target.kind == "gateway":
            name = f"sofia/gateway/{target.gateway}/{target.number}"
            profile = "external"
        elif target.kind == "loopback":
            name = f"loopback/{target.number}-a"
            profile = "loopback"
        else:
            name = target.raw
            profile = target.profile or "external"
        ch = Channel(
            self,
            direction="outbound",
            name=name,
            profile_name=profile,
            caller_number=caller_number,
            caller_name=caller_name,
            destination_number=target.number,
            network_addr="",
            context=variables.get("context", "default"),
            uuid=variables.get("origination_uuid") or None,
        )
        ch.profile.callee_id_name = "Outbound Call"
        ch.profile.callee_id_number = target.number
        ch.profile.username = ""
        ch.set_var("direction", "outbound")
        ch.set_var("uuid", ch.uuid)
        self._add(ch)
        for key, value in variables.items():
            if key != "origination_uuid":
                ch.set_var(key, value)
        ch.set_var("channel_name", name)
        if target.kind == "user":
            ch.set_var("dialed_user", target.user)
            ch.set_var("dialed_domain", target.domain)
        if originator is not None:
            ch.set_var("originating_leg_uuid", originator.uuid)
            ch.set_var("call_uuid", originator.variables.get("call_uuid", originator.uuid))
            ch.other = ("originator", originator)
            originator.other = ("originatee", ch)
            originator.profile.callee_id_name = "Outbound Call"
            originator.profile.callee_id_number = target.number
            originator.profile.touch()
        else:
            ch.set_var("call_uuid", ch.uuid)
        # switch_core_session_outgoing_channel: the endpoint already set CS_INIT, the session
        # thread has not run yet (running state CS_NEW).
        ch.state = "CS_INIT"
        ch.fire("CHANNEL_OUTGOING")
        ch.set_running_state("CS_INIT", "CS_ROUTING")
        ch.fire("CHANNEL_CREATE")
        ch.fire("CHANNEL_ORIGINATE")
        ch.set_running_state("CS_ROUTING", "CS_CONSUME_MEDIA")
        ch.set_running_state("CS_CONSUME_MEDIA")
        handler = self._dial_handler or default_dial_handler
        ch.spawn(_drive(handler, ch, target))
        ch.spawn(ch._leg_main())
        return ch

    async def originate_leg(
        self,
        dial: str,
        *,
        originator: Channel | None = None,
        extra_vars: Mapping[str, str] | None = None,
        timeout: float | None = None,
        caller_name: str | None = None,
        caller_number: str | None = None,
    ) -> tuple[Channel | None, str]:
        """Dial a dial string; returns (answered leg, "SUCCESS") or (None, cause)."""
        global_vars, groups = split_dial_legs(dial)
        if not groups:
            return None, "INVALID_URL"
        cause = "NO_ANSWER"
        for group in groups:
            legs: list[Channel] = []
            for leg_text in group:
                target = parse_dial_string(leg_text)
                variables = dict(extra_vars or {})
                variables.update(global_vars)
                variables.update(target.variables)
                target.variables = variables
                if target.kind == "error":
                    cause = normalize_cause(target.number)
                    continue
                if (
                    target.kind == "user"
                    and self.registrations.lookup(target.user, target.domain) is None
                ):
                    # mod_dptools user_outgoing_channel: ${sofia_contact()} of an unregistered
                    # user is error/user_not_registered; no channel is created, whatever
                    # drives the far ends.
                    cause = "USER_NOT_REGISTERED"
                    continue
                if (
                    target.kind == "gateway"
                    and self.gateways
                    and target.gateway not in self.gateways
                ):
                    cause = "INVALID_GATEWAY"
                    continue
                name = variables.get("origination_caller_id_name") or caller_name
                number = variables.get("origination_caller_id_number") or caller_number
                legs.append(
                    self.new_outbound_channel(
                        target,
                        variables=variables,
                        caller_name=name or "FreeSWITCH",
                        caller_number=number or "0000000000",
                        originator=originator,
                    )
                )
            if not legs:
                continue
            # switch_ivr_originate: call_timeout (the caller's), overridden by originate_timeout
            # ({} or exported variables); default 60 s. leg_timeout is per leg (see _race).
            limit = timeout
            sources = [legs[0].variables, originator.variables if originator else {}]
            for key in ("originate_timeout", "call_timeout"):
                value = next((v[key] for v in sources if v.get(key)), "")
                if value.isdigit() and int(value) > 0:
                    limit = float(value)
                    break
            winner, cause = await self._race(legs, limit or 60.0, originator)
            if winner is not None:
                return winner, "SUCCESS"
        return None, cause

    async def _race(
        self, legs: list[Channel], timeout: float, originator: Channel | None
    ) -> tuple[Channel | None, str]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        deadline = start + timeout / self.speed
        # check_per_channel_timeouts: leg_timeout ends that leg with ALLOTTED_TIMEOUT,
        # leg_progress_timeout one that has neither rung nor answered with PROGRESS_TIMEOUT.
        leg_limits: list[tuple[Channel, float | None, float | None]] = []
        for leg in legs:
            limits: list[float | None] = []
            for key in ("leg_timeout", "leg_progress_timeout"):
                value = leg.variables.get(key, "")
                seconds = int(value) if value.isdigit() else 0
                limits.append(start + seconds / self.speed if seconds > 0 else None)
            leg_limits.append((leg, limits[0], limits[1]))
        force_reason: str | None = None
        waiter = asyncio.Event()

        def poke() -> None:
            waiter.set()

        watchers = [asyncio.ensure_future(_watch(leg, poke)) for leg in legs]
        if originator is not None:
            watchers.append(asyncio.ensure_future(_poke_on_hangup(originator, poke)))
        try:
            while True:
                for leg in legs:
                    if leg.answered and leg.ready:
                        for other in legs:
                            if other is not leg:
                                other.hangup("LOSE_RACE")
                        return leg, "SUCCESS"
                    if originator is not None and leg.ring_ready and not originator.answered:
                        originator.mark_ring_ready()
                    if originator is not None and leg.early and not originator.answered:
                        originator.mark_pre_answered()
                now = loop.time()
                wake = deadline
                for leg, leg_limit, progress_limit in leg_limits:
                    if not leg.ready or leg.answered:
                        continue
                    if progress_limit is not None and not (leg.ring_ready or leg.early):
                        if now >= progress_limit:
                            leg.hangup("PROGRESS_TIMEOUT")
                            force_reason = "PROGRESS_TIMEOUT"
                            continue
                        wake = min(wake, progress_limit)
                    if leg_limit is not None:
                        if now >= leg_limit:
                            leg.hangup("ALLOTTED_TIMEOUT")
                        else:
                            wake = min(wake, leg_limit)
                if all(not leg.ready for leg in legs):
                    return None, force_reason or legs[-1].hangup_cause or "NORMAL_CLEARING"
                if originator is not None and not originator.ready:
                    for leg in legs:
                        leg.hangup("ORIGINATOR_CANCEL")
                    return None, "ORIGINATOR_CANCEL"
                remaining = deadline - loop.time()
                if remaining <= 0:
                    for leg in legs:
                        leg.hangup("NO_ANSWER")
                    return None, "NO_ANSWER"
                waiter.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(waiter.wait(), max(0.0, min(remaining, wake - now)))
        finally:
            for w in watchers:
                w.cancel()

    async def api(self, command_line: str) -> str:
        """Run an api command and return its output, as `api` over ESL would."""
        from callmesh.fsemu.api import run_api

        return await run_api(self, command_line)


async def _watch(ch: Channel, poke: Callable[[], None]) -> None:
    while True:
        await ch._progress_evt.wait()
        poke()
        ch._progress_evt.clear()
        if not ch.ready:
            poke()
            return


async def _poke_on_hangup(ch: Channel, poke: Callable[[], None]) -> None:
    await ch._hangup_evt.wait()
    poke()


async def _drive(handler: DialHandler, ch: Channel, target: DialTarget) -> None:
    try:
        await handler(ch, target)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("dial handler failed for %s", ch.name)
        ch.hangup("NORMAL_TEMPORARY_FAILURE")


async def default_dial_handler(ch: Channel, target: DialTarget) -> None:
    """Without a handler: user/* needs a registration; everything else rings then answers."""
    if target.kind == "user" and ch.switch.registrations.lookup(target.user, target.domain) is None:
        ch.hangup("USER_NOT_REGISTERED")
        return
    if target.kind == "loopback":
        ch.mark_answered()
        return
    ch.mark_ring_ready()
    await ch.switch.sleep(0.2)
    ch.mark_answered()
