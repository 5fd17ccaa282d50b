"""A small process supervisor for ``callmesh up``: children, prefixed logs, restarts, stop."""

from __future__ import annotations

import collections
import contextlib
import signal
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TextIO

import click

# Colours for name prefixes, in registration order; red is kept for the supervisor's warnings.
_COLOURS = (
    "cyan",
    "green",
    "yellow",
    "magenta",
    "blue",
    "bright_cyan",
    "bright_green",
    "bright_yellow",
    "bright_magenta",
    "bright_blue",
)
SUPERVISOR = "up"


@dataclass(frozen=True)
class ProcessSpec:
    """One child process ``up`` runs: how to start it, where it answers, how to tell it is ready."""

    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str]
    url: str
    # GET answering 200 means ready; None means ready as soon as the process runs.
    ready_url: str | None = None
    metrics_url: str | None = None
    # How long the process may take to stop after SIGTERM before it is killed.
    grace_s: float = 20.0
    log_path: Path | None = None


class Output:
    """The one writer every line goes through, so lines never interleave mid-line."""

    def __init__(self, stream: TextIO, names: Iterable[str] = (), *, colour: bool = False) -> None:
        self._stream = stream
        self._colour = colour
        self._lock = threading.Lock()
        self._styles: dict[str, str] = {}
        self._width = len(SUPERVISOR)
        for name in names:
            self.register(name)

    def register(self, name: str) -> None:
        """Make room for ``name`` in the prefix column and give it a colour."""
        if name not in self._styles and name != SUPERVISOR:
            self._styles[name] = _COLOURS[len(self._styles) % len(_COLOURS)]
        self._width = max(self._width, len(name))

    def line(self, name: str, text: str) -> None:
        """One line of a child's output, as ``[name] text``."""
        prefix = f"[{name}]".ljust(self._width + 2)
        if self._colour:
            prefix = click.style(prefix, fg=self._styles.get(name, "white"))
        self._write(f"{prefix} {text}")

    def say(self, text: str, *, warn: bool = False) -> None:
        """A line from the supervisor itself; warnings stand out in red on a terminal."""
        prefix = f"[{SUPERVISOR}]".ljust(self._width + 2)
        if self._colour:
            prefix = click.style(prefix, bold=True, fg="red" if warn else None)
            if warn:
                text = click.style(text, fg="red")
        self._write(f"{prefix} {text}")

    def plain(self, text: str = "") -> None:
        """Lines without a prefix (the summary table)."""
        self._write(text)

    def _write(self, text: str) -> None:
        # A closed or broken stdout (``up | head``) must not take the platform down with it.
        with self._lock, contextlib.suppress(OSError, ValueError):
            self._stream.write(text + "\n")
            self._stream.flush()


def describe_exit(code: int) -> str:
    """An exit status in words: ``exit code 1`` or ``killed by SIGKILL``."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class Child:
    """A supervised process: its spec, the running process, its log pump and last lines."""

    def __init__(self, spec: ProcessSpec, output: Output, *, tail_lines: int = 20) -> None:
        self.spec = spec
        self.name = spec.name
        self.output = output
        self.proc: subprocess.Popen[bytes] | None = None
        self.tail: collections.deque[str] = collections.deque(maxlen=tail_lines)
        self.started_at = 0.0
        self.restarts = 0
        self.backoff_s = 1.0
        self.restart_at: float | None = None
        # Exited unexpectedly and not restarted: reported once, left alone afterwards.
        self.failed = False
        self._pump: threading.Thread | None = None

    def start(self) -> None:
        """Start the process, and a thread copying its output to the screen and its log file."""
        log: IO[bytes] | None = None
        if self.spec.log_path is not None:
            self.spec.log_path.parent.mkdir(parents=True, exist_ok=True)
            log = self.spec.log_path.open("ab")
        self.proc = subprocess.Popen(
            list(self.spec.argv),
            env=dict(self.spec.env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            # Its own process group: a Ctrl-C at the terminal reaches only ``up``, which then
            # stops the children in order instead of all of them racing to exit at once.
            process_group=0,
        )
        self.started_at = time.monotonic()
        self.failed = False
        assert self.proc.stdout is not None
        self._pump = threading.Thread(
            target=self._copy_output,
            args=(self.proc.stdout, log),
            name=f"output-{self.name}",
            daemon=True,
        )
        self._pump.start()

    def _copy_output(self, pipe: IO[bytes], log: IO[bytes] | None) -> None:
        try:
            for raw in iter(pipe.readline, b""):
                text = raw.decode("utf-8", "replace").rstrip("\r\n")
                self.tail.append(text)
                self.output.line(self.name, text)
                if log is not None:
                    with contextlib.suppress(OSError):
                        log.write(raw if raw.endswith(b"\n") else raw + b"\n")
                        log.flush()
        finally:
            pipe.close()
            if log is not None:
                log.close()

    def poll(self) -> int | None:
        """The exit status if the process ended, else None."""
        return self.proc.poll() if self.proc is not None else None

    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc is not None and self.proc.poll() is None

    def terminate(self) -> None:
        """Ask the process to stop (SIGTERM)."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the process to end; True if it did."""
        if self.proc is None:
            return True
        try:
            self.proc.wait(max(0.0, timeout))
        except subprocess.TimeoutExpired:
            return False
        return True

    def kill(self) -> None:
        """SIGKILL the process (used when it ignored SIGTERM, or on a forced stop)."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()

    def finish_output(self, timeout: float = 2.0) -> None:
        """Let the pump copy what the process wrote before it ended."""
        if self._pump is not None:
            self._pump.join(timeout)


class Supervisor:
    """Runs children, notices unexpected exits (restarting with backoff if asked), stops them."""

    # A child that ran this long before failing gets the shortest backoff again.
    STABLE_AFTER_S = 30.0
    MAX_BACKOFF_S = 30.0

    def __init__(self, output: Output, *, restart: bool = False) -> None:
        self.output = output
        self.restart = restart
        self.children: list[Child] = []
        self._stopping = False

    def add(self, spec: ProcessSpec) -> Child:
        """Register a child (not started yet)."""
        self.output.register(spec.name)
        child = Child(spec, self.output)
        self.children.append(child)
        return child

    def start_all(self) -> None:
        """Start every registered child not started yet."""
        for child in self.children:
            if child.proc is None:
                child.start()

    def check(self) -> list[Child]:
        """Report children that exited on their own; restart those due; return the newly failed."""
        if self._stopping:
            return []
        failed: list[Child] = []
        now = time.monotonic()
        for child in self.children:
            if child.failed or child.proc is None:
                continue
            if child.restart_at is not None:
                if now >= child.restart_at:
                    child.restart_at = None
                    child.restarts += 1
                    self.output.say(f"restarting {child.name} (restart {child.restarts})")
                    child.start()
                continue
            code = child.poll()
            if code is None:
                continue
            child.finish_output()
            self.output.say(
                f"{child.name} exited unexpectedly ({describe_exit(code)}); its last lines:",
                warn=True,
            )
            for text in list(child.tail)[-10:]:
                self.output.say(f"  | {text}", warn=True)
            if self.restart:
                if now - child.started_at >= self.STABLE_AFTER_S:
                    child.backoff_s = 1.0
                delay = child.backoff_s
                child.backoff_s = min(child.backoff_s * 2, self.MAX_BACKOFF_S)
                child.restart_at = now + delay
                self.output.say(f"{child.name} will restart in {delay:g} s")
            else:
                child.failed = True
                failed.append(child)
        return failed

    def stop(self) -> bool:
        """SIGTERM every child, wait up to its grace, then SIGKILL; True if all stopped cleanly."""
        self._stopping = True
        running = [child for child in self.children if child.alive()]
        for child in running:
            child.restart_at = None
            child.terminate()
        began = time.monotonic()
        clean = True
        for child in running:
            if not child.wait(child.spec.grace_s - (time.monotonic() - began)):
                self.output.say(
                    f"{child.name} did not stop within {child.spec.grace_s:g} s: killing it",
                    warn=True,
                )
                child.kill()
                child.wait(5.0)
                clean = False
            code = child.poll()
            if code not in (0, None) and code != -signal.SIGKILL:
                self.output.say(f"{child.name} stopped with {describe_exit(code)}", warn=True)
                clean = False
        for child in self.children:
            child.finish_output()
        return clean

    def kill_all(self) -> None:
        """SIGKILL every child now (a forced stop); safe to call from a signal handler."""
        self._stopping = True
        for child in self.children:
            child.kill()
