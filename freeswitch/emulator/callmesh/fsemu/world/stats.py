"""Counters of what the emulator did (events, calls, CPS), for /stats and Prometheus /metrics."""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

# Calls per second is averaged over this many whole seconds.
CPS_WINDOW_S = 10


class Stats:
    """Plain counters updated from every fired event; read by /stats and the collector."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.events: Counter[str] = Counter()
        self.calls_started = 0
        self.calls_answered = 0
        self.calls_ended = 0
        self.hangup_causes: Counter[str] = Counter()
        self._created_per_second: deque[list[int]] = deque(maxlen=CPS_WINDOW_S + 1)

    def count(self, name: str, subclass: str | None = None, cause: str | None = None) -> None:
        """Count one fired event (CUSTOM by subclass)."""
        self.events[f"CUSTOM {subclass}" if name == "CUSTOM" and subclass else name] += 1
        if name == "CHANNEL_CREATE":
            self.calls_started += 1
            now = int(self.clock())
            if self._created_per_second and self._created_per_second[-1][0] == now:
                self._created_per_second[-1][1] += 1
            else:
                self._created_per_second.append([now, 1])
        elif name == "CHANNEL_ANSWER":
            self.calls_answered += 1
        elif name == "CHANNEL_HANGUP_COMPLETE":
            self.calls_ended += 1
            if cause:
                self.hangup_causes[cause] += 1

    def cps(self) -> float:
        """Channels created per second over the last whole seconds (the current one excluded)."""
        now = int(self.clock())
        total = sum(
            n for second, n in self._created_per_second if now - CPS_WINDOW_S <= second < now
        )
        return total / CPS_WINDOW_S

    @property
    def events_total(self) -> int:
        """Every event fired so far."""
        return sum(self.events.values())

    def snapshot(self, live_channels: int) -> dict[str, object]:
        """The JSON body of /stats."""
        return {
            "calls_started": self.calls_started,
            "calls_answered": self.calls_answered,
            "calls_ended": self.calls_ended,
            "live_channels": live_channels,
            "events_fired": self.events_total,
            "events": dict(self.events),
            "hangup_causes": dict(self.hangup_causes),
            "cps": self.cps(),
        }


class StatsCollector(Collector):
    """Exposes Stats to prometheus-client at scrape time (no per-event metric call)."""

    def __init__(self, stats: Stats, live_channels: Callable[[], int]) -> None:
        self.stats = stats
        self.live_channels = live_channels

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        """Yield the metric families."""
        events = CounterMetricFamily(
            "fsemu_events", "Events fired by the emulated switch", labels=["event"]
        )
        for name, n in sorted(self.stats.events.items()):
            events.add_metric([name], n)
        yield events
        calls = CounterMetricFamily("fsemu_calls", "Channels by milestone", labels=["stage"])
        calls.add_metric(["started"], self.stats.calls_started)
        calls.add_metric(["answered"], self.stats.calls_answered)
        calls.add_metric(["ended"], self.stats.calls_ended)
        yield calls
        causes = CounterMetricFamily("fsemu_hangups", "Hang-ups by cause", labels=["cause"])
        for cause, n in sorted(self.stats.hangup_causes.items()):
            causes.add_metric([cause], n)
        yield causes
        yield GaugeMetricFamily("fsemu_live_channels", "Channels alive now", self.live_channels())
        yield GaugeMetricFamily(
            "fsemu_calls_per_second", "Channels created per second (10 s)", self.stats.cps()
        )
