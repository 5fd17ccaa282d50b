"""The admin's run-time composition: use cases by type, provided once the runtime connects."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from callmesh.core.errors import Unavailable

T = TypeVar("T")


def utc_now() -> datetime:
    """The admin's clock (use cases take it as a parameter so tests can pass their own)."""
    return datetime.now(UTC)


class AdminContext:
    """A registry of the admin's use-case objects, keyed by their type.

    Routers are built before the service connects to NATS and MongoDB; the objects they call are
    provided by each area's start hook once it has. Until then a request gets 503, not a crash.
    """

    def __init__(self, settings: Any, clock: Callable[[], datetime] = utc_now) -> None:
        self.settings = settings
        self.clock = clock
        self._things: dict[type[Any], object] = {}

    def provide(self, thing: object) -> None:
        """Make an object reachable by its type."""
        self._things[type(thing)] = thing

    def get(self, kind: type[T]) -> T:
        """The object of a type (503 Unavailable while the service is starting)."""
        thing = self._things.get(kind)
        if thing is None:
            raise Unavailable(f"admin is starting: {kind.__name__} is not ready yet")
        return cast(T, thing)

    def dependency(self, kind: type[T]) -> Callable[[], T]:
        """A FastAPI dependency returning the object of a type."""

        def get() -> T:
            return self.get(kind)

        get.__name__ = f"get_{kind.__name__}"
        return get
