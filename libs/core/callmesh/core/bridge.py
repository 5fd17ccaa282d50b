"""The one bridge between the gevent hub (greenswitch's ESL) and asyncio (bus, store, HTTP).

How a process that speaks ESL (the cti link, the ivr call runner) is laid out::

    main thread    gevent hub, never monkey-patched: greenswitch's greenlets (InboundESL or
                   OutboundESLServer and its sessions), the greenlets this bridge spawns, and
                   the bridge's one async watcher that wakes the hub from other threads.
    second thread  one asyncio loop (daemon thread started by the bridge, or a loop it is
                   attached to): nats-py, PyMongo's AsyncMongoClient, uvicorn/FastAPI and the
                   service's use cases.

Rules:

- Never monkey-patch (no ``gevent.monkey`` at all): the asyncio thread needs real sockets, locks
  and sleeps, and greenswitch does not need them patched.
- Never touch gevent or greenswitch from the asyncio thread: a second hub appears and the call
  dies with ``LoopExit``. Use ``await bridge.run_gevent(fn, ...)`` or
  ``bridge.call_soon_gevent(fn, ...)``.
- Never block the hub on a cross-thread future (``concurrent.futures.Future.result()`` in a
  greenlet freezes every greenlet): use ``bridge.run_async(coro)`` or ``bridge.submit_async``.
- ``run_async`` from the asyncio thread and ``run_gevent`` from the gevent thread raise
  ``WrongThread`` instead of deadlocking: each would wait on the thread that is waiting.
- Create and close the bridge in the gevent thread; cancelling either side's waiter cancels the
  work on the other side (a task's cancellation kills its greenlet, a killed or timed-out
  greenlet cancels its coroutine).

Mechanics: asyncio wakes the hub by appending a callable to a deque and calling the watcher's
``send()``; the watcher's callback drains the deque inside the hub. gevent wakes asyncio with
``loop.call_soon_threadsafe``. Nothing else crosses the threads.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import functools
import logging
import threading
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, Generic, ParamSpec, TypeVar, TypeVarTuple

import gevent
import gevent.event

__all__ = ["Bridge", "BridgeClosed", "WrongThread"]

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")
Ts = TypeVarTuple("Ts")


class BridgeClosed(RuntimeError):
    """The bridge is closed: nothing crosses it any more."""


class WrongThread(RuntimeError):
    """A bridge call was made where waiting would deadlock or reach the wrong gevent hub."""


class Bridge:
    """An asyncio loop beside the gevent hub, and the calls and results that cross between them."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop | None = None,
        *,
        thread_name: str = "callmesh-asyncio",
    ) -> None:
        """Bind to this thread's gevent hub; start a loop in a daemon thread unless given one."""
        if asyncio._get_running_loop() is not None:
            raise WrongThread(
                "Bridge() must be created in the gevent thread, not inside a running asyncio loop"
            )
        self._gevent_thread = threading.get_ident()
        self._hub: Any = gevent.get_hub()
        self._calls: collections.deque[Callable[[], object]] = collections.deque()
        # Guards the watcher's lifetime against send() from other threads, and _pending.
        self._lock = threading.Lock()
        self._pending: set[concurrent.futures.Future[Any]] = set()
        self._closing = False
        self._closed = False
        self._closed_event: Any = gevent.event.Event()
        # Ref'ed: while the bridge is open, a greenlet waiting on asyncio must not make the hub
        # think nothing can ever wake it (LoopExit).
        self._watcher: Any = self._hub.loop.async_(ref=True)
        self._watcher.start(self._drain)
        self._loop = asyncio.new_event_loop() if loop is None else loop
        self._loop_stopped: Any = gevent.event.Event()
        # Only a loop the bridge started is stopped by close(); an attached one is its owner's.
        self._thread: threading.Thread | None = None
        if loop is None:
            self._thread = threading.Thread(target=self._run_loop, name=thread_name, daemon=True)
            self._thread.start()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The asyncio loop on the other side of the bridge."""
        return self._loop

    @property
    def closed(self) -> bool:
        """Whether close() has finished."""
        return self._closed

    def __enter__(self) -> Bridge:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # gevent -> asyncio

    def run_async(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """From a greenlet: run ``coro`` on the loop, yielding to the hub; cancelled on timeout."""
        try:
            self._check_gevent_waiter("run_async")
        except BaseException:
            coro.close()  # it will never run; closing it spares a "never awaited" warning
            raise
        done: Any = gevent.event.Event()
        future = self._submit(coro)
        # The event is set inside the hub: gevent objects are not for other threads to touch.
        future.add_done_callback(lambda _: self._post(done.set))
        try:
            finished = done.wait(timeout)
        except BaseException:
            # This greenlet was killed: nobody will read the result, so stop the work.
            future.cancel()
            raise
        if not finished:
            future.cancel()
            raise TimeoutError(f"{_name(coro)} did not finish within {timeout} s; cancelled it")
        return future.result()

    def submit_async(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """From any thread: schedule ``coro`` on the loop; greenlets must not block on it."""
        if self._closing:
            coro.close()
            raise BridgeClosed("submit_async(): the bridge is closed")
        return self._submit(coro)

    # asyncio -> gevent

    async def run_gevent(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """From asyncio: run ``fn(*args, **kwargs)`` in a new greenlet and await its result."""
        if self._closing:
            raise BridgeClosed("run_gevent(): the bridge is closed")
        if threading.get_ident() == self._gevent_thread:
            raise WrongThread(
                "run_gevent() awaited in the gevent thread would deadlock: this thread's asyncio "
                "loop blocks the hub that has to run the greenlet; call the function directly"
            )
        call = _GeventCall(functools.partial(fn, *args, **kwargs), asyncio.get_running_loop())
        if not self._post(call.start):
            raise BridgeClosed("run_gevent(): the bridge is closed")
        try:
            return await call.future
        except asyncio.CancelledError:
            self._post(call.kill)
            raise

    def call_soon_gevent(self, fn: Callable[[*Ts], object], *args: *Ts) -> None:
        """From any thread: run ``fn(*args)`` in a new greenlet, unawaited; failures are logged."""
        if self._closing or not self._post(functools.partial(gevent.spawn, _run_logged, fn, args)):
            raise BridgeClosed("call_soon_gevent(): the bridge is closed")

    # lifecycle

    def close(self) -> None:
        """Cancel what is in flight, stop the loop this bridge started, close the watcher."""
        if self._closed:
            return
        if threading.get_ident() != self._gevent_thread:
            raise WrongThread("Bridge.close() must be called from the gevent thread")
        in_hub = gevent.getcurrent() is self._hub
        if self._closing:
            if not in_hub:
                self._closed_event.wait()
            return
        self._closing = True
        with self._lock:
            pending = list(self._pending)
        for future in pending:
            # Wakes the greenlets waiting on them (CancelledError) and cancels the coroutines.
            future.cancel()
        if self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            if not in_hub:
                # Keep the hub running meanwhile: the loop's tasks may be killing greenlets.
                self._loop_stopped.wait()
            self._thread.join()
        self._drain()
        with self._lock:
            self._closed = True
            self._watcher.stop()
            self._watcher.close()
        self._drain()
        self._closed_event.set()

    # internals

    def _check_gevent_waiter(self, what: str) -> None:
        if self._closing:
            raise BridgeClosed(f"{what}(): the bridge is closed")
        # _get_running_loop() answers None instead of raising: cheap enough for every call.
        if asyncio._get_running_loop() is self._loop:
            raise WrongThread(
                f"{what}() called from the asyncio loop's own thread would deadlock (the loop "
                "would wait on itself); await the coroutine instead"
            )
        if threading.get_ident() != self._gevent_thread:
            raise WrongThread(f"{what}() must be called from a greenlet in the gevent thread")
        if gevent.getcurrent() is self._hub:
            raise WrongThread(f"{what}() cannot wait inside the gevent hub; spawn a greenlet")

    def _submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        try:
            future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        except BaseException:
            coro.close()
            raise
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._forget)
        return future

    def _forget(self, future: concurrent.futures.Future[Any]) -> None:
        with self._lock:
            self._pending.discard(future)

    def _post(self, call: Callable[[], object]) -> bool:
        """Queue ``call`` to run inside the hub; False once the watcher is closed."""
        with self._lock:
            if self._closed:
                return False
            self._calls.append(call)
            self._watcher.send()
        return True

    def _drain(self) -> None:
        # Runs in the hub (the watcher's callback) or in close(); the hub is the only consumer,
        # and a send() after our last popleft() schedules another drain.
        calls = self._calls
        while calls:
            call = calls.popleft()
            try:
                call()
            except Exception:
                logger.exception("bridge: %r failed in the gevent hub", call)

    def _run_loop(self) -> None:
        loop = self._loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            try:
                _cancel_all_tasks(loop)
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                asyncio.set_event_loop(None)
                loop.close()
                self._post(self._loop_stopped.set)


class _GeventCall(Generic[T]):
    """One run_gevent call: its greenlet is touched only in the hub, its future only in the loop."""

    __slots__ = ("_fn", "_loop", "future", "greenlet", "killed")

    def __init__(self, fn: Callable[[], T], loop: asyncio.AbstractEventLoop) -> None:
        self._fn = fn
        self._loop = loop
        self.future: asyncio.Future[T] = loop.create_future()
        self.greenlet: Any = None
        self.killed = False

    def start(self) -> None:
        if not self.killed:
            self.greenlet = gevent.spawn(self._run)

    def kill(self) -> None:
        self.killed = True
        if self.greenlet is not None:
            self.greenlet.kill(block=False)

    def _run(self) -> None:
        try:
            value = self._fn()
        except Exception as exc:  # noqa: BLE001 - handed to the awaiting task, which raises it
            self._resolve(_set_exception, exc)
        except BaseException:
            # Killed (GreenletExit) or exiting: the awaiting task sees a cancellation, and the
            # exception goes on to mean what it means to gevent.
            self._resolve(_cancel, None)
            raise
        else:
            self._resolve(_set_result, value)

    def _resolve(self, outcome: Callable[[asyncio.Future[T], Any], None], value: object) -> None:
        try:
            self._loop.call_soon_threadsafe(outcome, self.future, value)
        except RuntimeError:
            # The loop is closed: nobody is awaiting this any more.
            logger.debug("bridge: result of %r dropped, its loop is closed", self._fn)


def _set_result(future: asyncio.Future[T], value: T) -> None:
    if not future.done():
        future.set_result(value)


def _set_exception(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


def _cancel(future: asyncio.Future[Any], _: object) -> None:
    future.cancel("the greenlet was killed")


def _run_logged(fn: Callable[[*Ts], object], args: tuple[*Ts]) -> None:
    try:
        fn(*args)
    except Exception:
        logger.exception("bridge: call_soon_gevent(%r) failed", fn)


def _cancel_all_tasks(loop: asyncio.AbstractEventLoop) -> None:
    # What asyncio.run() does on the way out, so tasks awaiting greenlets kill them.
    tasks = asyncio.all_tasks(loop)
    if not tasks:
        return
    for task in tasks:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            loop.call_exception_handler(
                {
                    "message": "bridge: task failed while the loop was shutting down",
                    "exception": task.exception(),
                    "task": task,
                }
            )


def _name(coro: Coroutine[Any, Any, Any]) -> str:
    return getattr(coro, "__qualname__", repr(coro))
