"""Speed of the shared ESL wire codec (callmesh.core.esl): framing, event parsing, serializing."""

# Run: .tools/uv/bin/uv run --frozen --all-packages python bench/esl_codec.py [--mb 12]
#      [--headers 120] [--repeat 3] [--json bench/results/esl_codec.json]
#
# The transcript is what an `event plain ALL` listener reads: outer frames (Content-Length,
# Content-Type: text/event-plain) around serialized events of ``--headers`` headers each
# (channel data, caller profile and variable_* values, about a fifth of them with characters
# FreeSWITCH URL-encodes), repeated until it holds ``--mb`` MiB. Each case is timed ``--repeat``
# times; the table and the JSON give the best run.

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from callmesh.core.esl import (
    FrameParser,
    event_frame,
    parse_event_plain,
    serialize_event_plain,
)

DEFAULT_JSON = Path(__file__).parent / "results" / "esl_codec.json"


def make_headers(n: int, seq: int) -> list[tuple[str, str]]:
    """A channel event of ``n`` headers, like CHANNEL_HANGUP_COMPLETE with variables."""
    uid = str(uuid.UUID(int=seq))
    headers = [
        ("Event-Name", "CHANNEL_HANGUP_COMPLETE"),
        ("Core-UUID", "0f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"),
        ("FreeSWITCH-Hostname", "fs1"),
        ("FreeSWITCH-Switchname", "fs1"),
        ("FreeSWITCH-IPv4", "10.0.0.5"),
        ("FreeSWITCH-IPv6", "::1"),
        ("Event-Date-Local", "2026-11-22 08:00:00"),
        ("Event-Date-GMT", "Sun, 22 Nov 2026 08:00:00 GMT"),
        ("Event-Date-Timestamp", str(1795334400000000 + seq)),
        ("Event-Calling-File", "switch_core_state_machine.c"),
        ("Event-Calling-Function", "switch_core_session_reporting_state"),
        ("Event-Calling-Line-Number", "946"),
        ("Event-Sequence", str(seq)),
        ("Unique-ID", uid),
        ("Channel-Name", f"sofia/external/+1555{seq % 10000:04d}@10.0.0.9:5060"),
    ]
    i = 0
    while len(headers) < n:
        if i % 5 == 0:
            headers.append((f"variable_sip_h_X-{i}", f"<sip:{seq}@carrier.example;tag={i}>"))
        else:
            headers.append((f"variable_field_{i}", f"value-{i}-{seq % 97}"))
        i += 1
    return headers


def make_transcript(mb: float, n_headers: int) -> tuple[bytes, int]:
    """Outer frames until ``mb`` MiB; returns the bytes and the number of events."""
    frames: list[bytes] = []
    size = 0
    seq = 0
    while size < mb * 1024 * 1024:
        payload = serialize_event_plain(make_headers(n_headers, seq))
        frame = event_frame(payload)
        frames.append(frame)
        size += len(frame)
        seq += 1
    return b"".join(frames), seq


def best_of(repeat: int, fn: Callable[[int], int]) -> tuple[float, int]:
    """Best wall time of ``repeat`` runs of fn(run), and what it returned."""
    best = float("inf")
    result = 0
    for run in range(repeat):
        t0 = time.perf_counter()
        result = fn(run)
        best = min(best, time.perf_counter() - t0)
    return best, result


def main() -> None:
    """Run every case, print a table and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=float, default=12.0)
    parser.add_argument("--headers", type=int, default=120)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--label", default="")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()

    transcript, events = make_transcript(args.mb, args.headers)

    def feed_all(_run: int) -> int:
        return len(FrameParser().feed(transcript))

    def feed_chunks(size: int) -> Callable[[int], int]:
        def run(_run: int) -> int:
            fp = FrameParser()
            n = 0
            for i in range(0, len(transcript), size):
                n += len(fp.feed(transcript[i : i + size]))
            return n

        return run

    # Each run parses and serializes events it has not seen (the codec caches repeated values,
    # as a live stream repeats them; these numbers are for values seen for the first time).
    fresh = [
        [make_headers(args.headers, 10_000_000 * (run + 1) + i) for i in range(2000)]
        for run in range(args.repeat * 2)
    ]
    fresh_payloads = [[serialize_event_plain(h) for h in run] for run in fresh[: args.repeat]]

    def parse_all(run: int) -> int:
        for p in fresh_payloads[run]:
            parse_event_plain(p)
        return len(fresh_payloads[run])

    def serialize_all(run: int) -> int:
        headers = fresh[args.repeat + run]
        for h in headers:
            serialize_event_plain(h)
        return len(headers)

    cases: list[tuple[str, Callable[[int], int]]] = [
        ("FrameParser.feed, whole transcript in one call", feed_all),
        ("FrameParser.feed, 64 KiB reads", feed_chunks(65536)),
        ("FrameParser.feed, 1 KiB reads", feed_chunks(1024)),
        (f"parse_event_plain ({args.headers} headers)", parse_all),
        (f"serialize_event_plain ({args.headers} headers)", serialize_all),
    ]
    rows = []
    for name, fn in cases:
        seconds, count = best_of(args.repeat, fn)
        rows.append(
            {
                "case": name,
                "items": count,
                "seconds": seconds,
                "us_per_item": seconds / count * 1e6,
                "per_second": count / seconds,
            }
        )
    print(
        f"transcript: {len(transcript) / 1024 / 1024:.1f} MiB, {events} events of "
        f"{args.headers} headers ({len(transcript) // events} bytes per frame)"
    )
    print(f"{'case':52} {'items':>7} {'µs/item':>10} {'items/s':>12}")
    for row in rows:
        print(
            f"{row['case']:52} {row['items']:>7} {row['us_per_item']:>10.1f} "
            f"{row['per_second']:>12,.0f}"
        )
    result = {
        "benchmark": "esl_codec",
        "label": args.label,
        "command": "python " + " ".join(sys.argv),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "transcript_bytes": len(transcript),
        "events": events,
        "headers_per_event": args.headers,
        "repeat": args.repeat,
        "rows": rows,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
