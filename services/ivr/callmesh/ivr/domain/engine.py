"""The flow engine: runs one call through one flow version as a pure state machine.

See ``commands`` for the protocol (``start`` → command, ``resume(result)`` → next command, until
``Finish``). Inside, the run is a generator: each node's behaviour reads as straight-line code
that yields a command and receives its result, so retries, barge-in and shortcuts stay local.
Compiled expressions are cached per flow object (flows are immutable), so a step costs a dict
lookup and a tree walk.
"""

from __future__ import annotations

import json
import re
from collections.abc import Generator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from callmesh.ivr.domain.collect import Collector, Verdict
from callmesh.ivr.domain.commands import (
    AwaitKey,
    BlacklistAnswer,
    CalendarAnswer,
    CalendarState,
    CallContext,
    CheckBlacklist,
    Command,
    Enqueue,
    EnqueueAnswer,
    Finish,
    Hangup,
    HttpAnswer,
    HttpRequest,
    KeyPressed,
    LookupRow,
    Outcome,
    Play,
    Played,
    Record,
    RecordAnswer,
    Result,
    RowAnswer,
    Sound,
    TimedOut,
    TrailEntry,
    TrailKind,
    TransferAnswer,
    TransferCall,
    UnexpectedResult,
)
from callmesh.ivr.domain.expr import (
    EvalError,
    Expr,
    ExprError,
    compile_expr,
    to_number,
    to_text,
    truthy,
)
from callmesh.ivr.domain.flow import (
    BUILTIN_VARIABLES,
    BlacklistConfig,
    CollectConfig,
    ConditionConfig,
    Flow,
    HangupConfig,
    HttpConfig,
    LanguageConfig,
    LookupConfig,
    MenuConfig,
    Node,
    PlayConfig,
    Prompt,
    PromptKind,
    QueueConfig,
    SetConfig,
    SurveyConfig,
    TimeConfig,
    TransferConfig,
    TransferKind,
    VoicemailConfig,
)
from callmesh.ivr.domain.template import render
from callmesh.ivr.domain.timerules import state_at

__all__ = ["MAX_STEPS", "FlowRun"]

MAX_STEPS = 1000
_Gen = Generator[Command, Result, None]


class _Leave(Exception):
    """Leave the flow now with this finish."""

    def __init__(self, finish: Finish) -> None:
        super().__init__(finish.outcome)
        self.finish = finish


class FlowRun:
    """One call's run through one flow version."""

    def __init__(
        self,
        flow: Flow,
        flow_id: str,
        version: int,
        context: CallContext,
        *,
        preamble: tuple[Sound, ...] = (),
    ) -> None:
        self.flow, self.flow_id, self.version, self.context = flow, flow_id, version, context
        self.preamble = preamble
        self.language = (
            context.language if context.language in flow.languages else flow.languages[0]
        )
        self.node_id = ""
        self.finished: Finish | None = None
        self.path: list[str] = []
        self.keys: list[str] = []
        self._vars: dict[str, str] = dict.fromkeys(BUILTIN_VARIABLES, "")
        self._vars.update(flow.variables)
        self._vars.update(context.variables)
        self._vars.update(
            {
                "call.id": context.call_id,
                "call.caller": context.caller,
                "call.caller_name": context.caller_name,
                "call.dialled": context.dialled,
                "call.language": self.language,
                "call.started_at": context.now.isoformat(),
                "call.flow_id": flow_id,
                "call.flow_version": str(version),
                "tenant.id": context.tenant_id,
            }
        )
        self._trail: list[TrailEntry] = []
        self._seq = 0
        self._pending_key = ""  # a key pressed during a prompt, owed to the next input node
        self._gen: _Gen | None = None
        self._exprs = flow.compiled

    # -- the protocol -------------------------------------------------------------------------

    @property
    def variables(self) -> Mapping[str, str]:
        """The call's variables now."""
        return self._vars

    def start(self) -> Command:
        """The first command."""
        if self._gen is not None:
            raise UnexpectedResult("the run has already started")
        self._gen = self._run()
        return self._step(None)

    def resume(self, result: Result) -> Command:
        """The next command, given the result of the last one."""
        if self._gen is None:
            raise UnexpectedResult("the run has not started")
        if self.finished is not None:
            return self.finished
        return self._step(result)

    def caller_hung_up(self) -> Finish:
        """The caller left: the run ends where it is."""
        if self.finished is None:
            if self._gen is not None:
                self._gen.close()
            self._finish(Finish(Outcome.CALLER_HUNG_UP, self.node_id))
        assert self.finished is not None
        return self.finished

    def drain_trail(self) -> list[TrailEntry]:
        """The trail entries since the last drain."""
        out, self._trail = self._trail, []
        return out

    # -- plumbing -----------------------------------------------------------------------------

    def _step(self, result: Result | None) -> Command:
        assert self._gen is not None
        try:
            command = self._gen.send(result) if result is not None else next(self._gen)
        except StopIteration:  # pragma: no cover - _run always yields a Finish last
            command = self._finish(Finish(Outcome.COMPLETED, self.node_id))
        if isinstance(command, Finish):
            self._gen.close()
        return command

    def _finish(self, finish: Finish) -> Finish:
        self.finished = finish
        self._note(
            TrailKind.FLOW_LEFT,
            {
                "outcome": finish.outcome.value,
                "detail": finish.detail,
                "last_node_id": finish.last_node_id,
                "path": ">".join(self.path),
            },
        )
        return finish

    def _note(self, kind: TrailKind, detail: Mapping[str, str], node: Node | None = None) -> None:
        self._seq += 1
        node_id = node.id if node else self.node_id
        node_type = node.type.value if node else ""
        if node is None and self.node_id in self.flow.nodes:
            node_type = self.flow.nodes[self.node_id].type.value
        self._trail.append(TrailEntry(self._seq, kind, node_id, node_type, detail))

    def _set(self, name: str, value: str) -> None:
        had = name in self._vars
        previous = self._vars.get(name, "")
        self._vars[name] = value
        if previous != value or not had:
            self._note(TrailKind.VARIABLE_SET, {"name": name, "value": value, "previous": previous})

    def _expr(self, text: str) -> Expr:
        found = self._exprs.get(text)
        if not isinstance(found, Expr):
            found = compile_expr(text)
            self._exprs[text] = found
        return found

    def _eval(self, text: str) -> str:
        return to_text(self._expr(text).evaluate(self._vars))

    def _sounds(self, prompt: Prompt) -> tuple[Sound, ...]:
        items = prompt.get(self.language) or prompt.get(self.flow.languages[0]) or ()
        if not items and prompt:
            items = next(iter(prompt.values()))
        out: list[Sound] = []
        for item in items:
            value = render(item.value, self._vars) if item.kind is PromptKind.TTS else item.value
            out.append(Sound(item.kind, value, self.language))
        return tuple(out)

    def _play(
        self, node: Node, prompt: Prompt, *, interruptible: bool = True
    ) -> Generator[Command, Result, str]:
        """Play a prompt; the key that interrupted it ("" if none)."""
        if self._pending_key and interruptible:
            return self._pending_key  # typed ahead: the caller does not need this prompt
        sounds = self._sounds(prompt)
        if not sounds:
            return self._pending_key if interruptible else ""
        self._note(
            TrailKind.PROMPT_PLAYED,
            {
                "sounds": "|".join(f"{s.kind.value}:{s.value}" for s in sounds),
                "language": self.language,
            },
            node,
        )
        result = yield Play(node.id, sounds, interruptible)
        if isinstance(result, KeyPressed) and interruptible:
            return result.key
        if not isinstance(result, Played | KeyPressed):
            raise UnexpectedResult(f"Play answered with {type(result).__name__}")
        return ""

    def _key(self, node: Node, timeout_ms: int) -> Generator[Command, Result, str | None]:
        """One key, or None on timeout (a key owed from a prompt comes first)."""
        if self._pending_key:
            key, self._pending_key = self._pending_key, ""
            return key
        result = yield AwaitKey(node.id, timeout_ms)
        if isinstance(result, KeyPressed):
            return result.key
        if isinstance(result, TimedOut):
            return None
        raise UnexpectedResult(f"AwaitKey answered with {type(result).__name__}")

    def _input(self, node: Node, value: str, kind: str, attempt: int) -> None:
        self._note(
            TrailKind.INPUT_RECEIVED,
            {"input": value, "kind": kind, "attempt": str(attempt)},
            node,
        )
        self._set("last.input", value if kind == "dtmf" else kind)

    # -- the run ------------------------------------------------------------------------------

    def _run(self) -> _Gen:
        node_id: str | None = self.flow.start
        steps = 0
        try:
            if self.preamble:
                result = yield Play("", self.preamble, False)
                if not isinstance(result, Played | KeyPressed):
                    raise UnexpectedResult(f"Play answered with {type(result).__name__}")
            while node_id is not None:
                steps += 1
                if steps > MAX_STEPS:
                    yield self._finish(
                        Finish(
                            Outcome.ERROR,
                            self.node_id,
                            f"more than {MAX_STEPS} steps: the flow loops",
                            "NORMAL_TEMPORARY_FAILURE",
                        )
                    )
                    return
                node = self.flow.nodes[node_id]
                self.node_id = node_id
                self.path.append(node_id)
                self._note(TrailKind.NODE_ENTERED, {}, node)
                try:
                    port = yield from self._node(node)
                except (EvalError, ExprError) as err:
                    if "failure" in self.flow.ports(node) and self.flow.next_node(
                        node.id, "failure"
                    ):
                        self._set("last.error", f"{node.id}: {err}")
                        port = "failure"
                    else:
                        raise _Leave(
                            Finish(
                                Outcome.ERROR,
                                node.id,
                                f"node {node.id}: {err}",
                                "NORMAL_TEMPORARY_FAILURE",
                            )
                        ) from err
                if isinstance(port, _Jump):
                    node_id = port.target
                    continue
                node_id = self.flow.next_node(node.id, port)
                if node_id is None:
                    yield self._finish(self._end_of(node, port))
                    return
        except _Leave as leave:
            yield self._finish(leave.finish)
            return
        yield self._finish(Finish(Outcome.COMPLETED, self.node_id, "", "NORMAL_CLEARING"))

    def _end_of(self, node: Node, port: str) -> Finish:
        """How the flow ends when ``port`` of ``node`` has no edge."""
        if isinstance(node.config, BlacklistConfig) and port == "blocked":
            return Finish(Outcome.BLOCKED, node.id, "caller blacklisted", "CALL_REJECTED")
        if isinstance(node.config, VoicemailConfig):
            return Finish(Outcome.VOICEMAIL, node.id, node.config.mailbox, "NORMAL_CLEARING")
        if port == "failure":
            return Finish(Outcome.ERROR, node.id, f"{node.id}: failure", "NORMAL_TEMPORARY_FAILURE")
        return Finish(Outcome.COMPLETED, node.id, "", "NORMAL_CLEARING")

    def _node(self, node: Node) -> Generator[Command, Result, str | _Jump]:
        cfg = node.config
        if isinstance(cfg, PlayConfig):
            key = yield from self._play(node, cfg.prompt, interruptible=cfg.barge_in)
            self._pending_key = key or self._pending_key
            return "next"
        if isinstance(cfg, MenuConfig):
            return (yield from self._menu(node, cfg))
        if isinstance(cfg, CollectConfig):
            return (yield from self._collect(node, cfg))
        if isinstance(cfg, SetConfig):
            for a in cfg.assignments:
                self._set(a.variable, self._eval(a.expression))
            return "next"
        if isinstance(cfg, ConditionConfig):
            for branch in cfg.branches:
                if truthy(self._expr(branch.expression).evaluate(self._vars)):
                    return branch.port
            return "else"
        if isinstance(cfg, TimeConfig):
            return (yield from self._time(node, cfg))
        if isinstance(cfg, LanguageConfig):
            return (yield from self._language(node, cfg))
        if isinstance(cfg, BlacklistConfig):
            number = self._eval(cfg.number_expression)
            answer = yield CheckBlacklist(node.id, number)
            if not isinstance(answer, BlacklistAnswer):
                raise UnexpectedResult(f"CheckBlacklist answered with {type(answer).__name__}")
            return "blocked" if answer.blocked else "clear"
        if isinstance(cfg, HttpConfig):
            return (yield from self._http(node, cfg))
        if isinstance(cfg, LookupConfig):
            key = self._eval(cfg.key_expression)
            answer = yield LookupRow(node.id, cfg.table, key)
            if not isinstance(answer, RowAnswer):
                raise UnexpectedResult(f"LookupRow answered with {type(answer).__name__}")
            if answer.row is None:
                return "not_found"
            for var, column in cfg.columns.items():
                self._set(var, str(answer.row.get(column, "")))
            return "found"
        if isinstance(cfg, VoicemailConfig):
            yield from self._play(node, cfg.prompt, interruptible=False)
            answer = yield Record(node.id, cfg.mailbox, cfg.max_seconds, cfg.beep, self._package())
            if not isinstance(answer, RecordAnswer):
                raise UnexpectedResult(f"Record answered with {type(answer).__name__}")
            self._set("voicemail.id", answer.voicemail_id)
            return "next"
        if isinstance(cfg, QueueConfig):
            priority = (
                int(to_number(self._expr(cfg.priority_expression).evaluate(self._vars)))
                if cfg.priority_expression
                else 0
            )
            return (yield from self._enqueue(node, cfg.queue_id, priority, cfg.data, ""))
        if isinstance(cfg, TransferConfig):
            return (yield from self._transfer(node, cfg))
        if isinstance(cfg, SurveyConfig):
            for q in cfg.questions:
                key = yield from self._play(node, q.prompt)
                self._pending_key = key or self._pending_key
                got = yield from self._key(node, 5000)
                ok = got is not None and got.isdigit() and q.min_value <= int(got) <= q.max_value
                self._input(
                    node, got or "", "dtmf" if ok else ("timeout" if got is None else "invalid"), 1
                )
                self._set(f"survey.{q.id}", got if ok and got is not None else "")
            yield from self._play(node, cfg.thanks, interruptible=False)
            return "next"
        assert isinstance(cfg, HangupConfig)
        yield from self._play(node, cfg.prompt, interruptible=False)
        yield Hangup(node.id, cfg.cause)
        raise _Leave(Finish(Outcome.COMPLETED, node.id, f"hung up: {cfg.cause}", ""))

    # -- input nodes ----------------------------------------------------------------------------

    def _menu(self, node: Node, cfg: MenuConfig) -> Generator[Command, Result, str | _Jump]:
        prompt = cfg.prompt
        use_shortcuts = cfg.shortcuts and bool(self.flow.shortcuts)
        for attempt in range(1, cfg.max_retries + 2):
            key = yield from self._play(node, prompt)
            self._pending_key = key or self._pending_key
            got = yield from self._key(node, cfg.timeout_ms)
            if got is None:
                self._input(node, "", "timeout", attempt)
                prompt = cfg.timeout_prompt or cfg.prompt
                continue
            if got == "*" and use_shortcuts:
                code = yield from self._shortcut(node, cfg.timeout_ms)
                target = self.flow.shortcuts.get(code) if code is not None else None
                if target is not None:
                    self._input(node, f"*{code}#", "dtmf", attempt)
                    self._set("ivr.shortcut", code or "")
                    return _Jump(target)
                self._input(node, f"*{code or ''}", "invalid", attempt)
                prompt = cfg.invalid_prompt or cfg.prompt
                continue
            if got in cfg.options:
                self.keys.append(got)
                self._input(node, got, "dtmf", attempt)
                return got
            self._input(node, got, "invalid", attempt)
            prompt = cfg.invalid_prompt or cfg.prompt
        return "failure"

    def _shortcut(self, node: Node, timeout_ms: int) -> Generator[Command, Result, str | None]:
        """The digits of a ``*code#`` shortcut after the ``*`` (None: timed out or cut)."""
        digits: list[str] = []
        while len(digits) <= 10:
            got = yield from self._key(node, timeout_ms)
            if got is None:
                return None
            if got == "#":
                return "".join(digits)
            if not got.isdigit():
                return None
            digits.append(got)
        return None

    def _collect(self, node: Node, cfg: CollectConfig) -> Generator[Command, Result, str | _Jump]:
        prompt = cfg.prompt
        for attempt in range(1, cfg.max_retries + 2):
            key = yield from self._play(node, prompt)
            self._pending_key = key or self._pending_key
            collector = Collector(
                min_digits=cfg.min_digits,
                max_digits=cfg.max_digits,
                terminator=cfg.terminator,
                reset_key=cfg.reset_key,
                pattern=cfg.pattern,
            )
            verdict = Verdict.MORE
            while verdict is Verdict.MORE:
                timeout = (
                    cfg.inter_digit_timeout_ms if collector.digits else cfg.first_digit_timeout_ms
                )
                got = yield from self._key(node, timeout)
                verdict = collector.timeout() if got is None else collector.feed(got)
            if verdict is Verdict.DONE:
                value = collector.value
                self.keys.append(value)
                self._input(node, value, "dtmf", attempt)
                self._set(cfg.variable, value)
                return "next"
            if verdict is Verdict.TIMEOUT:
                self._input(node, "", "timeout", attempt)
                prompt = cfg.timeout_prompt or cfg.prompt
            else:
                self._input(node, collector.typed, "invalid", attempt)
                prompt = cfg.invalid_prompt or cfg.prompt
        return "failure"

    def _language(self, node: Node, cfg: LanguageConfig) -> Generator[Command, Result, str]:
        for attempt in range(1, cfg.max_retries + 2):
            key = yield from self._play(node, cfg.prompt)
            self._pending_key = key or self._pending_key
            got = yield from self._key(node, cfg.timeout_ms)
            if got is not None and got in cfg.options:
                self._input(node, got, "dtmf", attempt)
                self.language = cfg.options[got]
                self._set("call.language", self.language)
                return "next"
            self._input(node, got or "", "timeout" if got is None else "invalid", attempt)
        return "next"

    # -- look-ups and hand-overs ------------------------------------------------------------

    def _time(self, node: Node, cfg: TimeConfig) -> Generator[Command, Result, str]:
        if cfg.calendar_id:
            answer = yield CalendarState(node.id, cfg.calendar_id, self.context.now)
            if not isinstance(answer, CalendarAnswer):
                raise UnexpectedResult(f"CalendarState answered with {type(answer).__name__}")
            state = answer.state if answer.state in ("open", "closed", "holiday") else "closed"
        else:
            state = state_at(cfg, self.context.now, self.context.time_zone)
        if state == "holiday" and self.flow.next_node(node.id, "holiday") is None:
            state = "closed"
        self._set("time.state", state)
        return state

    def _http(self, node: Node, cfg: HttpConfig) -> Generator[Command, Result, str]:
        url = render(cfg.url, self._vars, escape=lambda v: quote(v, safe=""))
        headers = {name: render(value, self._vars) for name, value in cfg.headers.items()}
        body: bytes | None = None
        if cfg.body is not None:
            body = json.dumps(_fill(cfg.body, self._vars), ensure_ascii=False).encode()
            headers.setdefault("Content-Type", "application/json")
        answer = yield HttpRequest(node.id, cfg.method, url, headers, body, cfg.timeout_ms)
        if not isinstance(answer, HttpAnswer):
            raise UnexpectedResult(f"HttpRequest answered with {type(answer).__name__}")
        parts = urlsplit(url)
        self._note(
            TrailKind.HTTP_CALLED,
            {
                "method": cfg.method,
                "url": urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")),
                "status": str(answer.status),
                "error": answer.error,
                "duration_ms": str(answer.duration_ms),
            },
            node,
        )
        self._set("http.status", str(answer.status))
        ok = 200 <= answer.status < 300
        error = answer.error if answer.status == 0 else ("" if ok else f"status {answer.status}")
        parsed: Any = None
        if ok and any(not p.startswith("$") for p in cfg.response.values()):
            try:
                parsed = json.loads(answer.body or b"null")
            except ValueError:
                ok, error = False, "the response is not JSON"
        self._set("http.error", error)
        if not ok:
            return "failure"
        for var, path in cfg.response.items():
            if path == "$status":
                value = str(answer.status)
            elif path == "$body":
                value = answer.body.decode("utf-8", "replace")[:10_000]
            else:
                value = _at_path(parsed, path)
            self._set(var, value)
        return "next"

    def _package(self, names: Iterable[str] = ()) -> dict[str, str]:
        chosen = list(names) or [
            n for n in self._vars if n not in BUILTIN_VARIABLES and not n.startswith("ivr.")
        ]
        data = {n: self._vars.get(n, "") for n in chosen}
        data["ivr.path"] = ">".join(self.path)
        data["ivr.keys"] = "".join(self.keys)
        data["ivr.flow"] = f"{self.flow_id}@{self.version}"
        data["ivr.language"] = self.language
        return data

    def _enqueue(
        self, node: Node, queue_id: str, priority: int, names: Iterable[str], agent: str
    ) -> Generator[Command, Result, str]:
        answer = yield Enqueue(
            node.id, queue_id, priority, self.language, self._package(names), agent
        )
        if not isinstance(answer, EnqueueAnswer):
            raise UnexpectedResult(f"Enqueue answered with {type(answer).__name__}")
        if answer.accepted:
            raise _Leave(Finish(Outcome.QUEUED, node.id, queue_id))
        self._set("last.error", answer.reason)
        return "failure"

    def _transfer(self, node: Node, cfg: TransferConfig) -> Generator[Command, Result, str]:
        if cfg.kind is TransferKind.AGENT:
            return (yield from self._enqueue(node, cfg.queue_id, 0, (), cfg.target))
        target = render(cfg.target, self._vars) if cfg.kind is TransferKind.EXTERNAL else cfg.target
        answer = yield TransferCall(node.id, cfg.kind.value, target, self._package())
        if not isinstance(answer, TransferAnswer):
            raise UnexpectedResult(f"TransferCall answered with {type(answer).__name__}")
        if answer.done:
            raise _Leave(Finish(Outcome.TRANSFERRED, node.id, f"{cfg.kind.value}:{target}"))
        self._set("last.error", answer.reason)
        return "failure"


@dataclass(frozen=True, slots=True)
class _Jump:
    """Go straight to a node (a deep-menu shortcut)."""

    target: str


def _fill(value: Any, variables: Mapping[str, str]) -> Any:
    """A JSON body with every string rendered as a template."""
    if isinstance(value, str):
        return render(value, variables)
    if isinstance(value, dict):
        return {k: _fill(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, variables) for v in value]
    return value


_INDEX = re.compile(r"^\d+$")


def _at_path(value: Any, path: str) -> str:
    """The text at a dotted path of parsed JSON ("" when absent)."""
    for part in path.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and _INDEX.match(part) and int(part) < len(value):
            value = value[int(part)]
        else:
            return ""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False)[:10_000]
