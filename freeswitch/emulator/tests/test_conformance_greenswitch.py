"""greenswitch 0.0.19, unchanged and not monkey-patched, works against the emulator.

The emulator runs on an asyncio loop in a background thread; greenswitch runs on the gevent hub
of the test's main thread.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import gevent
import greenswitch
import pytest

from callmesh.fsemu.esl_inbound import EslServer, start_esl_server
from callmesh.fsemu.events import Event
from callmesh.fsemu.switch import Switch

from .conftest import make_wav

T = TypeVar("T")


class Emulator:
    """A switch and its ESL server on a loop in another thread."""

    def __init__(self, media_dir: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.switch = self.call(self._make_switch(media_dir))
        self.server: EslServer = self.call(start_esl_server(self.switch, port=0))

    async def _make_switch(self, media_dir: Path) -> Switch:
        return Switch(speed=20, seed=3, media_dir=media_dir, hostname="fsemu-gs")

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the emulator's loop and wait (cooperatively) for its result."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        deadline = time.monotonic() + 10
        while not future.done():
            if time.monotonic() > deadline:
                raise TimeoutError("emulator call timed out")
            gevent.sleep(0.005)
        return future.result()

    def soon(self, func: Callable[[], object]) -> None:
        """Run a callback on the emulator's loop."""
        self.loop.call_soon_threadsafe(func)

    def close(self) -> None:
        self.call(self.server.close())
        self.call(self.switch.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Emulator]:
    make_wav(tmp_path / "welcome.wav", 1.0)
    emu = Emulator(tmp_path)
    yield emu
    emu.close()


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Yield to the gevent hub until predicate() holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        gevent.sleep(0.01)


def test_inbound_esl_connects_subscribes_and_runs_api_and_bgapi(emulator: Emulator) -> None:
    esl = greenswitch.InboundESL("127.0.0.1", emulator.server.port, "ClueCon")
    esl.connect()
    try:
        events: list[dict[str, str]] = []
        esl.register_handle("*", lambda event: events.append(event.headers))
        reply = esl.send("event plain ALL")
        assert reply.data == "+OK event listener enabled plain"
        status = esl.send("api status")
        assert status.data.startswith("UP ")
        assert "is ready" in status.data
        unknown = esl.send("api nonsense")
        assert unknown.data == "-ERR nonsense Command not found!\n"
        job = esl.send("bgapi originate {origination_uuid=gs-leg}loopback/1 &park()")
        job_uuid = job.headers["Job-UUID"]
        assert job.data == f"+OK Job-UUID: {job_uuid}"
        wait_until(
            lambda: any(
                e.get("Event-Name") == "BACKGROUND_JOB" and e.get("Job-UUID") == job_uuid
                for e in events
            )
        )
        wait_until(lambda: any(e.get("Event-Name") == "CHANNEL_PARK" for e in events))
        park = next(e for e in events if e.get("Event-Name") == "CHANNEL_PARK")
        assert park["Unique-ID"] == "gs-leg"
        assert park["Channel-Name"] == "loopback/1-a"
        channels = esl.send("api show channels as json").data
        assert '"uuid":"gs-leg"' in channels
        assert esl.send("api uuid_kill gs-leg").data == "+OK\n"
        wait_until(
            lambda: any(
                e.get("Event-Name") == "CHANNEL_DESTROY" and e.get("Unique-ID") == "gs-leg"
                for e in events
            )
        )
    finally:
        esl.stop()


def test_inbound_esl_receives_custom_sofia_register(emulator: Emulator) -> None:
    esl = greenswitch.InboundESL("127.0.0.1", emulator.server.port, "ClueCon")
    esl.connect()
    try:
        seen: list[dict[str, str]] = []
        esl.register_handle("sofia::register", lambda event: seen.append(event.headers))
        esl.send("event plain CUSTOM sofia::register sofia::unregister")
        emulator.soon(lambda: emulator.switch.registrations.register("1001", "acme.example"))
        wait_until(lambda: bool(seen))
        assert seen[0]["from-user"] == "1001"
        assert seen[0]["contact"].startswith('"1001" <sip:1001@')
    finally:
        esl.stop()


class IvrApplication:
    """An OutboundESLServer application: answer, playback, collect digits, hang up."""

    results: list[object] = []

    def __init__(self, session: greenswitch.esl.OutboundSession) -> None:
        self.session = session

    def run(self) -> None:
        session = self.session
        try:
            session.myevents()
            session.answer()
            session.playback("welcome.wav")
            digits = session.play_and_get_digits(
                min_digits=1,
                max_digits=4,
                max_attempts=1,
                timeout=3000,
                terminators="#",
                prompt_file="welcome.wav",
                error_file="silence_stream://250",
                variable="choice",
                digits_regex="\\d+",
                digit_timeout=2000,
                transfer_on_fail="none",
            )
            IvrApplication.results.append(("digits", digits))
            IvrApplication.results.append(("uuid", session.uuid))
            session.hangup()
        except Exception as err:  # the greenlet must report, not die silently
            IvrApplication.results.append(("error", repr(err)))


def test_outbound_esl_server_drives_an_inbound_call(emulator: Emulator) -> None:
    IvrApplication.results = []
    # greenswitch treats port 0 as "no port": pick a free one first.
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    server = greenswitch.OutboundESLServer(
        bind_address="127.0.0.1", bind_port=port, application=IvrApplication
    )
    listener = gevent.spawn(server.listen)
    wait_until(lambda: server.server is not None and server._running)
    seen: list[Event] = []

    def on_event(event: Event) -> None:
        seen.append(event)
        if event.name == "CHANNEL_EXECUTE" and event.get("Application") == "play_and_get_digits":
            ch = emulator.switch.channel(event.get("Unique-ID") or "")
            if ch is not None:
                ch.spawn(ch.far_dtmf("42#"))

    emulator.soon(lambda: emulator.switch.subscribe(on_event))
    emulator.switch.set_dialplan({"5000": [("socket", f"127.0.0.1:{port} async full")]})
    ch = emulator.call(
        emulator.switch.inbound_call(caller_number="1000", destination_number="5000")
    )
    try:
        wait_until(lambda: len(IvrApplication.results) >= 2)
        assert IvrApplication.results[0] == ("digits", "42")
        assert IvrApplication.results[1] == ("uuid", ch.uuid)
        cause = emulator.call(ch.wait_hangup())
        assert cause == "NORMAL_CLEARING"
        emulator.call(ch.wait_destroyed())
    finally:
        server.stop()
        listener.join(timeout=5)
    names = [e.name for e in seen if e.get("Unique-ID") == ch.uuid]
    apps = [
        (e.get("Application"), e.get("Application-Response"))
        for e in seen
        if e.name == "CHANNEL_EXECUTE_COMPLETE" and e.get("Unique-ID") == ch.uuid
    ]
    assert ("answer", "_none_") in apps
    assert ("playback", "FILE PLAYED") in apps
    assert names.index("CHANNEL_ANSWER") < names.index("PLAYBACK_START")
    assert names.count("DTMF") == 3
    assert names[-1] == "CHANNEL_DESTROY"
