"""The gevent↔asyncio bridge: round-trips both ways with neither side blocked, errors, cancellation,
deadlock guards and close.

Every test here is a plain sync function: the gevent hub belongs to the test's main thread, and no
pytest-asyncio loop runs there; coroutines run on the bridge's own loop in its second thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable, Iterator

import gevent
import gevent.event
import pytest

from callmesh.core.bridge import Bridge, BridgeClosed, WrongThread

ROUND_TRIPS = 10_000
CALLERS = 20
PER_CALLER = 500
# Generous on purpose: it only turns a deadlock into a failure; speed is for bench/bridge.py.
PATIENCE = 120.0
# A free hub or loop ticks about once a millisecond; a blocked one never does.
MIN_TICKS = 3


class Boom(Exception):
    """An error of our own type, to see that it crosses the bridge as itself."""


@pytest.fixture
def bridge() -> Iterator[Bridge]:
    bridge = Bridge(thread_name="test-bridge-asyncio")
    try:
        yield bridge
    finally:
        bridge.close()


class GeventTicker:
    """Counts wake-ups of a greenlet that sleeps a millisecond at a time: it needs a free hub."""

    def __init__(self) -> None:
        self.ticks = 0
        self._greenlet = gevent.spawn(self._run)

    def _run(self) -> None:
        while True:
            gevent.sleep(0.001)
            self.ticks += 1

    def stop(self) -> None:
        self._greenlet.kill()


class AsyncioTicker:
    """Counts wake-ups of a task that sleeps a millisecond at a time: it needs a free loop."""

    def __init__(self, bridge: Bridge) -> None:
        self.ticks = 0
        self._future = bridge.submit_async(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(0.001)
            self.ticks += 1

    def stop(self) -> None:
        self._future.cancel()


async def echo(value: int) -> int:
    await asyncio.sleep(0)
    return value


def double_in_gevent(value: int) -> int:
    gevent.sleep(0)
    return value * 2


async def tagged_in_asyncio(caller: int, index: int) -> tuple[int, int]:
    # Uneven work so that callers' round-trips interleave and finish out of step.
    for _ in range((caller + index) % 3):
        await asyncio.sleep(0)
    return caller, index


def tagged_in_gevent(caller: int, index: int) -> tuple[int, int]:
    for _ in range((caller + index) % 3):
        gevent.sleep(0)
    return caller, index


def expected_tags() -> list[list[tuple[int, int]]]:
    return [[(caller, index) for index in range(PER_CALLER)] for caller in range(CALLERS)]


def greenlet_caller(bridge: Bridge, caller: int) -> list[tuple[int, int]]:
    return [bridge.run_async(tagged_in_asyncio(caller, index)) for index in range(PER_CALLER)]


async def task_caller(bridge: Bridge, caller: int) -> list[tuple[int, int]]:
    return [await bridge.run_gevent(tagged_in_gevent, caller, index) for index in range(PER_CALLER)]


async def all_task_callers(bridge: Bridge) -> list[list[tuple[int, int]]]:
    return list(await asyncio.gather(*(task_caller(bridge, c) for c in range(CALLERS))))


def wait_in_gevent(condition: Callable[[], bool]) -> None:
    with gevent.Timeout(PATIENCE):
        while not condition():
            gevent.sleep(0.001)


async def wait_in_asyncio(condition: Callable[[], bool]) -> None:
    # Polled: the condition may change in the gevent thread, which cannot set an asyncio.Event.
    async with asyncio.timeout(PATIENCE):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.001)


def test_ten_thousand_greenlet_to_coroutine_round_trips_leave_hub_and_loop_running(
    bridge: Bridge,
) -> None:
    hub_ticker, loop_ticker = GeventTicker(), AsyncioTicker(bridge)
    first: dict[str, int] = {}

    def drive() -> list[int]:
        results = []
        for index in range(ROUND_TRIPS):
            results.append(bridge.run_async(echo(index)))
            if index == 0:
                first.update(hub=hub_ticker.ticks, loop=loop_ticker.ticks)
        return results

    driver = gevent.spawn(drive)
    try:
        results = driver.get(timeout=PATIENCE)
        hub_ticks, loop_ticks = hub_ticker.ticks, loop_ticker.ticks
    finally:
        driver.kill()
        hub_ticker.stop()
        loop_ticker.stop()

    assert results == list(range(ROUND_TRIPS))
    assert hub_ticks - first["hub"] >= MIN_TICKS
    assert loop_ticks - first["loop"] >= MIN_TICKS


def test_ten_thousand_coroutine_to_greenlet_round_trips_leave_hub_and_loop_running(
    bridge: Bridge,
) -> None:
    hub_ticker, loop_ticker = GeventTicker(), AsyncioTicker(bridge)
    first: dict[str, int] = {}

    async def drive() -> list[int]:
        results = []
        for index in range(ROUND_TRIPS):
            results.append(await bridge.run_gevent(double_in_gevent, index))
            if index == 0:
                first.update(hub=hub_ticker.ticks, loop=loop_ticker.ticks)
        return results

    try:
        results = bridge.run_async(asyncio.wait_for(drive(), PATIENCE))
        hub_ticks, loop_ticks = hub_ticker.ticks, loop_ticker.ticks
    finally:
        hub_ticker.stop()
        loop_ticker.stop()

    assert results == [index * 2 for index in range(ROUND_TRIPS)]
    assert hub_ticks - first["hub"] >= MIN_TICKS
    assert loop_ticks - first["loop"] >= MIN_TICKS


def test_twenty_greenlets_calling_asyncio_at_once_each_get_their_own_results_in_order(
    bridge: Bridge,
) -> None:
    callers = [gevent.spawn(greenlet_caller, bridge, caller) for caller in range(CALLERS)]
    try:
        gevent.joinall(callers, timeout=PATIENCE, raise_error=True)
    finally:
        gevent.killall(callers)

    assert [caller.value for caller in callers] == expected_tags()


def test_twenty_tasks_calling_gevent_at_once_each_get_their_own_results_in_order(
    bridge: Bridge,
) -> None:
    results = bridge.run_async(asyncio.wait_for(all_task_callers(bridge), PATIENCE))

    assert results == expected_tags()


def test_both_directions_at_once_from_many_callers_keep_every_callers_results_in_order(
    bridge: Bridge,
) -> None:
    callers = [gevent.spawn(greenlet_caller, bridge, caller) for caller in range(CALLERS)]
    try:
        task_results = bridge.run_async(asyncio.wait_for(all_task_callers(bridge), PATIENCE))
        gevent.joinall(callers, timeout=PATIENCE, raise_error=True)
    finally:
        gevent.killall(callers)

    assert task_results == expected_tags()
    assert [caller.value for caller in callers] == expected_tags()


def test_each_side_runs_in_its_own_thread(bridge: Bridge) -> None:
    gevent_thread = threading.get_ident()

    async def threads() -> tuple[int, int]:
        return threading.get_ident(), await bridge.run_gevent(threading.get_ident)

    loop_thread, greenlet_thread = bridge.run_async(threads())

    assert greenlet_thread == gevent_thread
    assert loop_thread != gevent_thread


def test_an_exception_raised_in_a_coroutine_reaches_the_greenlet_as_itself(bridge: Bridge) -> None:
    async def fail() -> None:
        await asyncio.sleep(0)
        raise Boom("from asyncio")

    with pytest.raises(Boom, match="from asyncio"):
        bridge.run_async(fail())


def test_an_exception_raised_in_a_greenlet_reaches_the_task_as_itself(
    bridge: Bridge, capsys: pytest.CaptureFixture[str]
) -> None:
    def fail() -> None:
        gevent.sleep(0)
        raise Boom("from gevent")

    async def call() -> BaseException | None:
        try:
            await bridge.run_gevent(fail)
        except Boom as exc:
            return exc
        return None

    error = bridge.run_async(call())

    assert type(error) is Boom
    assert str(error) == "from gevent"
    # Handed over, not reported by the hub as a crashed greenlet.
    assert "Traceback" not in capsys.readouterr().err


def test_a_run_async_timeout_raises_timeout_error_and_cancels_the_coroutine(
    bridge: Bridge,
) -> None:
    seen: list[str] = []

    async def forever() -> None:
        seen.append("started")
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    with pytest.raises(TimeoutError, match="forever"):
        bridge.run_async(forever(), timeout=0.2)
    # The cancellation reaches the loop after the timeout: wait for it there.
    bridge.run_async(wait_in_asyncio(lambda: len(seen) == 2))

    assert seen == ["started", "cancelled"]


def test_killing_a_greenlet_waiting_on_a_coroutine_cancels_the_coroutine(bridge: Bridge) -> None:
    seen: list[str] = []

    async def forever() -> None:
        seen.append("started")
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    waiting = gevent.spawn(bridge.run_async, forever())
    wait_in_gevent(lambda: bool(seen))
    waiting.kill()
    bridge.run_async(wait_in_asyncio(lambda: len(seen) == 2))

    assert seen == ["started", "cancelled"]
    assert waiting.successful()  # GreenletExit: killed, not failed


def test_cancelling_the_task_awaiting_a_greenlet_kills_the_greenlet(bridge: Bridge) -> None:
    seen: list[str] = []

    def forever() -> None:
        seen.append("started")
        try:
            gevent.sleep(3600)
        except gevent.GreenletExit:
            seen.append("killed")
            raise

    async def cancel_while_waiting() -> bool:
        task = asyncio.create_task(bridge.run_gevent(forever))
        await wait_in_asyncio(lambda: bool(seen))
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return True
        return False

    assert bridge.run_async(cancel_while_waiting())
    wait_in_gevent(lambda: len(seen) == 2)

    assert seen == ["started", "killed"]


def test_a_greenlet_killed_on_the_gevent_side_cancels_the_task_awaiting_it(
    bridge: Bridge,
) -> None:
    running: list[gevent.Greenlet] = []

    def forever() -> None:
        running.append(gevent.getcurrent())
        gevent.sleep(3600)

    async def await_it() -> str:
        try:
            await bridge.run_gevent(forever)
        except asyncio.CancelledError:
            return "cancelled"
        return "returned"

    waiting = gevent.spawn(bridge.run_async, await_it())
    wait_in_gevent(lambda: bool(running))
    running[0].kill()

    assert waiting.get(timeout=PATIENCE) == "cancelled"


def test_run_async_from_the_asyncio_thread_raises_instead_of_deadlocking(bridge: Bridge) -> None:
    async def nested() -> str:
        with pytest.raises(RuntimeError, match="deadlock"):
            bridge.run_async(echo(1))
        return "still running"

    assert bridge.run_async(nested()) == "still running"


def test_run_gevent_awaited_in_the_gevent_thread_raises_instead_of_deadlocking(
    bridge: Bridge,
) -> None:
    # A loop in the hub's own thread, the mistake the guard is for; never set as current.
    loop = asyncio.new_event_loop()
    try:
        with pytest.raises(RuntimeError, match="deadlock"):
            loop.run_until_complete(bridge.run_gevent(double_in_gevent, 1))
    finally:
        loop.close()


def test_run_async_from_an_unrelated_thread_raises_wrong_thread(bridge: Bridge) -> None:
    errors: list[BaseException] = []

    def call() -> None:
        try:
            bridge.run_async(echo(1))
        except RuntimeError as exc:
            errors.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    thread.join()

    assert len(errors) == 1
    assert isinstance(errors[0], WrongThread)


def test_run_async_inside_the_hub_itself_raises_wrong_thread(bridge: Bridge) -> None:
    errors: list[BaseException] = []

    def in_hub_callback() -> None:
        try:
            bridge.run_async(echo(1))
        except RuntimeError as exc:
            errors.append(exc)

    gevent.get_hub().loop.run_callback(in_hub_callback)
    wait_in_gevent(lambda: bool(errors))

    assert isinstance(errors[0], WrongThread)
    assert "inside the gevent hub" in str(errors[0])


def test_a_bridge_cannot_be_created_inside_an_asyncio_loop(bridge: Bridge) -> None:
    async def create() -> None:
        Bridge()

    with pytest.raises(WrongThread, match="gevent thread"):
        bridge.run_async(create())


def test_submit_async_returns_a_future_with_the_coroutines_result(bridge: Bridge) -> None:
    future = bridge.submit_async(echo(7))

    async def outcome() -> int:
        return await asyncio.wrap_future(future)

    assert bridge.run_async(outcome()) == 7


def test_call_soon_gevent_runs_the_function_in_a_greenlet_of_the_gevent_thread(
    bridge: Bridge,
) -> None:
    ran = gevent.event.Event()
    calls: list[tuple[str, int, bool]] = []
    hub = gevent.get_hub()

    def record(tag: str) -> None:
        calls.append((tag, threading.get_ident(), gevent.getcurrent() is not hub))
        ran.set()

    async def from_asyncio() -> None:
        bridge.call_soon_gevent(record, "from asyncio")

    bridge.run_async(from_asyncio())

    assert ran.wait(PATIENCE)
    assert calls == [("from asyncio", threading.get_ident(), True)]


def test_a_failing_call_soon_gevent_function_is_logged(
    bridge: Bridge, caplog: pytest.LogCaptureFixture
) -> None:
    def fail() -> None:
        raise Boom("fire and forget")

    with caplog.at_level(logging.ERROR, logger="callmesh.core.bridge"):
        bridge.call_soon_gevent(fail)
        wait_in_gevent(lambda: bool(caplog.records))

    assert "call_soon_gevent" in caplog.records[0].getMessage()
    assert caplog.records[0].exc_info is not None
    assert caplog.records[0].exc_info[0] is Boom


def test_close_is_idempotent_and_stops_the_loop_it_started() -> None:
    bridge = Bridge(thread_name="test-bridge-close")

    bridge.close()
    bridge.close()

    assert bridge.closed
    assert bridge.loop.is_closed()
    assert "test-bridge-close" not in {thread.name for thread in threading.enumerate()}


def test_every_call_after_close_fails_with_bridge_closed() -> None:
    bridge = Bridge()
    bridge.close()
    awaitable = bridge.run_gevent(double_in_gevent, 1)

    with pytest.raises(BridgeClosed, match="closed"):
        bridge.run_async(echo(1))
    with pytest.raises(BridgeClosed, match="closed"):
        bridge.submit_async(echo(1))
    with pytest.raises(BridgeClosed, match="closed"):
        bridge.call_soon_gevent(double_in_gevent, 1)
    with pytest.raises(BridgeClosed, match="closed"):
        awaitable.send(None)
    assert issubclass(BridgeClosed, RuntimeError)


def test_close_cancels_coroutines_that_greenlets_are_still_waiting_on() -> None:
    bridge = Bridge()
    waiting = gevent.spawn(bridge.run_async, asyncio.sleep(3600))
    gevent.sleep(0)  # let it submit its coroutine

    bridge.close()

    with pytest.raises(concurrent.futures.CancelledError):
        waiting.get(timeout=PATIENCE)


def test_close_kills_greenlets_that_tasks_are_still_waiting_on() -> None:
    seen: list[str] = []

    def forever() -> None:
        seen.append("started")
        try:
            gevent.sleep(3600)
        except gevent.GreenletExit:
            seen.append("killed")
            raise

    bridge = Bridge()
    bridge.submit_async(bridge.run_gevent(forever))
    wait_in_gevent(lambda: bool(seen))

    bridge.close()
    wait_in_gevent(lambda: len(seen) == 2)

    assert seen == ["started", "killed"]


def test_a_bridge_attached_to_a_running_loop_leaves_it_running_when_closed() -> None:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="test-attached-loop", daemon=True)
    thread.start()
    try:
        bridge = Bridge(loop)

        async def round_trip() -> int:
            return await bridge.run_gevent(double_in_gevent, 21)

        assert bridge.run_async(round_trip()) == 42
        bridge.close()

        assert bridge.closed
        assert loop.is_running()
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
