"""Whether a flow can be published: its graph, its prompts, its expressions and its variables."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from zoneinfo import ZoneInfo

from callmesh.ivr.domain.expr import ExprError, compile_expr
from callmesh.ivr.domain.flow import (
    BUILTIN_VARIABLES,
    REQUIRED_PORTS,
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
    NodeType,
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
from callmesh.ivr.domain.parse import Problem
from callmesh.ivr.domain.template import template_names

__all__ = ["DTMF_KEYS", "WAITING_TYPES", "set_variables", "validate"]

DTMF_KEYS = frozenset("0123456789*#")
# Nodes that wait for the caller (or leave the flow): a cycle without one would spin forever.
WAITING_TYPES = frozenset(
    {
        NodeType.PLAY,
        NodeType.MENU,
        NodeType.COLLECT,
        NodeType.LANGUAGE,
        NodeType.SURVEY,
        NodeType.VOICEMAIL,
        NodeType.QUEUE,
        NodeType.TRANSFER,
        NodeType.HANGUP,
        NodeType.HTTP,
    }
)
_DAYS = frozenset({"mon", "tue", "wed", "thu", "fri", "sat", "sun"})
_CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")
_DATE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$")
_HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})


def set_variables(node: Node) -> Iterator[str]:
    """The variables a node sets."""
    config = node.config
    if isinstance(config, SetConfig):
        yield from (a.variable for a in config.assignments)
    elif isinstance(config, CollectConfig):
        yield config.variable
    elif isinstance(config, HttpConfig | LookupConfig):
        yield from config.response if isinstance(config, HttpConfig) else config.columns
    elif isinstance(config, SurveyConfig):
        yield from (f"survey.{q.id}" for q in config.questions)


class _Check:
    def __init__(self, flow: Flow) -> None:
        self.flow = flow
        self.problems: list[Problem] = []
        self.known = set(BUILTIN_VARIABLES) | set(flow.variables)
        for node in flow.nodes.values():
            self.known.update(set_variables(node))

    def bad(self, node_id: str, field: str, rule: str) -> None:
        self.problems.append(Problem(node_id, field, rule))

    def names(self, node_id: str, field: str, names: Collection[str]) -> None:
        for name in sorted(names):
            if name not in self.known:
                self.bad(node_id, field, f"uses unknown variable {name!r}")

    def expression(self, node_id: str, field: str, text: str) -> None:
        try:
            expr = compile_expr(text)
        except ExprError as err:
            self.bad(node_id, field, f"bad expression: {err}")
            return
        self.names(node_id, field, expr.names)

    def template(self, node_id: str, field: str, text: str) -> None:
        try:
            names = template_names(text)
        except ExprError as err:
            self.bad(node_id, field, f"bad template: {err}")
            return
        self.names(node_id, field, names)

    def prompt(
        self, node: Node, field: str, prompt: Prompt, prompt_ids: Collection[str] | None
    ) -> None:
        if not prompt:
            return
        where = f"nodes.{node.id}.config.{field}"
        for language in self.flow.languages:
            if not prompt.get(language):
                self.bad(node.id, f"{where}.{language}", "is missing: every flow language needs it")
        for language, items in prompt.items():
            if language not in self.flow.languages:
                self.bad(node.id, f"{where}.{language}", "is not one of the flow's languages")
            for i, item in enumerate(items):
                path = f"{where}.{language}.{i}"
                if item.kind is PromptKind.TTS:
                    self.template(node.id, path, item.value)
                elif item.kind is PromptKind.PROMPT and prompt_ids is not None:
                    if item.value not in prompt_ids:
                        self.bad(node.id, path, f"names unknown prompt {item.value!r}")
                elif item.kind is PromptKind.SOUND and (
                    ".." in item.value or item.value.startswith("/")
                ):
                    self.bad(node.id, path, "must be a relative path inside the sounds directory")

    def keys(self, node_id: str, field: str, options: Collection[str]) -> None:
        if not options:
            self.bad(node_id, field, "must offer at least one key")
        for key in options:
            if key not in DTMF_KEYS:
                self.bad(node_id, f"{field}.{key}", "must be a key 0-9, * or #")


def validate(
    flow: Flow,
    *,
    prompt_ids: Collection[str] | None = None,
    tables: Collection[str] | None = None,
    queues: Collection[str] | None = None,
    flow_ids: Collection[str] | None = None,
    max_nodes: int = 500,
) -> list[Problem]:
    """Every problem that keeps the flow from being published (empty: it can be)."""
    c = _Check(flow)
    nodes = flow.nodes
    if len(nodes) > max_nodes:
        c.bad("", "nodes", f"has {len(nodes)} nodes; the tenant's limit is {max_nodes}")
    if flow.start not in nodes:
        c.bad("", "start", f"names unknown node {flow.start!r}")
    # Edges: known ends, real ports, one edge per port.
    taken: set[tuple[str, str]] = set()
    for i, edge in enumerate(flow.edges):
        source = nodes.get(edge.source)
        if source is None:
            c.bad("", f"edges.{i}.from", f"names unknown node {edge.source!r}")
            continue
        if edge.target not in nodes:
            c.bad(edge.source, f"edges.{i}.to", f"names unknown node {edge.target!r}")
        if edge.port not in flow.ports(source):
            ports = ", ".join(flow.ports(source)) or "none"
            c.bad(
                edge.source, f"edges.{i}.port", f"is not a port of {source.type} (ports: {ports})"
            )
        if (edge.source, edge.port) in taken:
            c.bad(edge.source, f"edges.{i}.port", "already has an edge")
        taken.add((edge.source, edge.port))
    for node in nodes.values():
        required: tuple[str, ...] = REQUIRED_PORTS.get(node.type, ())
        if isinstance(node.config, MenuConfig):
            required = tuple(node.config.options)
        elif isinstance(node.config, ConditionConfig):
            required = tuple(b.port for b in node.config.branches)
        for port in required:
            if (node.id, port) not in taken:
                c.bad(node.id, f"nodes.{node.id}.ports.{port}", "needs an edge")
        _node(c, node, prompt_ids, tables, queues, flow_ids)
    # Shortcuts.
    for code, target in flow.shortcuts.items():
        if not code.isdigit() or len(code) > 10:
            c.bad("", f"shortcuts.{code}", "must be 1-10 digits")
        if target not in nodes:
            c.bad("", f"shortcuts.{code}", f"names unknown node {target!r}")
    # Reachability from the start and the shortcuts.
    if flow.start in nodes:
        seen = {flow.start}
        todo = [flow.start, *(t for t in flow.shortcuts.values() if t in nodes)]
        seen.update(todo)
        while todo:
            at = todo.pop()
            for edge in flow.edges:
                if edge.source == at and edge.target in nodes and edge.target not in seen:
                    seen.add(edge.target)
                    todo.append(edge.target)
        for node_id in nodes:
            if node_id not in seen:
                c.bad(node_id, f"nodes.{node_id}", "cannot be reached from the start")
    _loops(c, flow)
    return c.problems


def _node(
    c: _Check,
    node: Node,
    prompt_ids: Collection[str] | None,
    tables: Collection[str] | None,
    queues: Collection[str] | None,
    flow_ids: Collection[str] | None,
) -> None:
    cfg = node.config
    p = f"nodes.{node.id}.config"
    nid = node.id
    if isinstance(cfg, PlayConfig):
        if not cfg.prompt:
            c.bad(nid, f"{p}.prompt", "is required")
        c.prompt(node, "prompt", cfg.prompt, prompt_ids)
    elif isinstance(cfg, MenuConfig):
        if not cfg.prompt:
            c.bad(nid, f"{p}.prompt", "is required")
        c.keys(nid, f"{p}.options", cfg.options)
        for field in ("prompt", "invalid_prompt", "timeout_prompt"):
            c.prompt(node, field, getattr(cfg, field), prompt_ids)
    elif isinstance(cfg, CollectConfig):
        if not cfg.prompt:
            c.bad(nid, f"{p}.prompt", "is required")
        if cfg.min_digits > cfg.max_digits:
            c.bad(nid, f"{p}.min_digits", "must not exceed max_digits")
        for field in ("terminator", "reset_key"):
            key = getattr(cfg, field)
            if key and key not in DTMF_KEYS - set("0123456789"):
                c.bad(nid, f"{p}.{field}", "must be * or # (or empty for none)")
        if cfg.terminator and cfg.terminator == cfg.reset_key:
            c.bad(nid, f"{p}.reset_key", "must differ from the terminator")
        if cfg.pattern:
            try:
                re.compile(cfg.pattern)
            except re.error as err:
                c.bad(nid, f"{p}.pattern", f"is not a regular expression: {err}")
        for field in ("prompt", "invalid_prompt", "timeout_prompt"):
            c.prompt(node, field, getattr(cfg, field), prompt_ids)
    elif isinstance(cfg, SetConfig):
        if not cfg.assignments:
            c.bad(nid, f"{p}.assignments", "must set at least one variable")
        for i, a in enumerate(cfg.assignments):
            c.expression(nid, f"{p}.assignments.{i}.expression", a.expression)
    elif isinstance(cfg, ConditionConfig):
        if not cfg.branches:
            c.bad(nid, f"{p}.branches", "must have at least one branch")
        ports = [b.port for b in cfg.branches]
        for i, b in enumerate(cfg.branches):
            if not re.fullmatch(r"[a-z][a-z0-9_]{0,31}", b.port) or b.port == "else":
                c.bad(nid, f"{p}.branches.{i}.port", "must be a port name (a-z, 0-9, _), not else")
            elif ports.count(b.port) > 1:
                c.bad(nid, f"{p}.branches.{i}.port", "repeats another branch's port")
            c.expression(nid, f"{p}.branches.{i}.expression", b.expression)
    elif isinstance(cfg, TimeConfig):
        _time(c, nid, p, cfg)
    elif isinstance(cfg, LanguageConfig):
        c.keys(nid, f"{p}.options", cfg.options)
        for key, language in cfg.options.items():
            if language not in c.flow.languages:
                c.bad(nid, f"{p}.options.{key}", f"{language!r} is not one of the flow's languages")
        c.prompt(node, "prompt", cfg.prompt, prompt_ids)
    elif isinstance(cfg, BlacklistConfig):
        c.expression(nid, f"{p}.number_expression", cfg.number_expression)
    elif isinstance(cfg, HttpConfig):
        if cfg.method not in _HTTP_METHODS:
            c.bad(nid, f"{p}.method", "must be GET, POST, PUT, PATCH or DELETE")
        if not re.match(r"^https?://", cfg.url):
            c.bad(nid, f"{p}.url", "must be an http:// or https:// URL")
        c.template(nid, f"{p}.url", cfg.url)
        for name, value in cfg.headers.items():
            c.template(nid, f"{p}.headers.{name}", value)
        for path, text in _strings(cfg.body, f"{p}.body"):
            c.template(nid, path, text)
        for var, path in cfg.response.items():
            if not path:
                c.bad(nid, f"{p}.response.{var}", "must be a JSON path, $status or $body")
    elif isinstance(cfg, LookupConfig):
        if not cfg.table:
            c.bad(nid, f"{p}.table", "is required")
        elif tables is not None and cfg.table not in tables:
            c.bad(nid, f"{p}.table", f"names unknown data table {cfg.table!r}")
        c.expression(nid, f"{p}.key_expression", cfg.key_expression)
    elif isinstance(cfg, VoicemailConfig):
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", cfg.mailbox):
            c.bad(nid, f"{p}.mailbox", "must be 1-64 letters, digits, _ . or -")
        c.prompt(node, "prompt", cfg.prompt, prompt_ids)
    elif isinstance(cfg, QueueConfig):
        if not cfg.queue_id:
            c.bad(nid, f"{p}.queue_id", "is required")
        elif queues is not None and cfg.queue_id not in queues:
            c.bad(nid, f"{p}.queue_id", f"names unknown queue {cfg.queue_id!r}")
        if cfg.priority_expression:
            c.expression(nid, f"{p}.priority_expression", cfg.priority_expression)
        c.names(nid, f"{p}.data", cfg.data)
    elif isinstance(cfg, TransferConfig):
        if not cfg.target:
            c.bad(nid, f"{p}.target", "is required")
        elif cfg.kind is TransferKind.FLOW and flow_ids is not None and cfg.target not in flow_ids:
            c.bad(nid, f"{p}.target", f"names unknown flow {cfg.target!r}")
        elif cfg.kind is TransferKind.EXTERNAL:
            c.template(nid, f"{p}.target", cfg.target)
        if cfg.kind is TransferKind.AGENT and not cfg.queue_id:
            c.bad(nid, f"{p}.queue_id", "is required to reach an agent")
    elif isinstance(cfg, SurveyConfig):
        if not cfg.questions:
            c.bad(nid, f"{p}.questions", "must ask at least one question")
        for i, q in enumerate(cfg.questions):
            if not re.fullmatch(r"[a-z_][a-z0-9_]{0,31}", q.id):
                c.bad(nid, f"{p}.questions.{i}.id", "must be a name (a-z, 0-9, _)")
            if q.min_value > q.max_value:
                c.bad(nid, f"{p}.questions.{i}.min_value", "must not exceed max_value")
            if not q.prompt:
                c.bad(nid, f"{p}.questions.{i}.prompt", "is required")
            c.prompt(node, f"questions.{i}.prompt", q.prompt, prompt_ids)
        c.prompt(node, "thanks", cfg.thanks, prompt_ids)
    elif isinstance(cfg, HangupConfig):
        c.prompt(node, "prompt", cfg.prompt, prompt_ids)


def _time(c: _Check, nid: str, p: str, cfg: TimeConfig) -> None:
    if not cfg.calendar_id and not cfg.rules:
        c.bad(nid, f"{p}.rules", "needs rules or a calendar_id")
    for i, rule in enumerate(cfg.rules):
        for day in rule.days:
            if day not in _DAYS:
                c.bad(nid, f"{p}.rules.{i}.days", f"{day!r} is not one of mon..sun")
        for field in ("start", "end"):
            if not _CLOCK.match(getattr(rule, field)):
                c.bad(nid, f"{p}.rules.{i}.{field}", "must be HH:MM")
    for i, day in enumerate(cfg.holidays):
        if not _DATE.match(day):
            c.bad(nid, f"{p}.holidays.{i}", "must be YYYY-MM-DD")
    if cfg.time_zone:
        try:
            ZoneInfo(cfg.time_zone)
        except (ValueError, KeyError, OSError):
            c.bad(nid, f"{p}.time_zone", "is not an IANA time zone such as Asia/Shanghai")


def _strings(value: object, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, f"{path}.{i}")


def _loops(c: _Check, flow: Flow) -> None:
    """Report each cycle made only of nodes that never wait for the caller."""
    quick = {n.id for n in flow.nodes.values() if n.type not in WAITING_TYPES}
    graph: dict[str, list[str]] = {n: [] for n in quick}
    for edge in flow.edges:
        if edge.source in quick and edge.target in quick:
            graph[edge.source].append(edge.target)
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    reported: set[str] = set()
    for root in sorted(graph):
        if root in state:
            continue
        stack: list[tuple[str, Iterator[str]]] = [(root, iter(graph[root]))]
        state[root] = 1
        path = [root]
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
                path.pop()
            elif state.get(child) == 1:
                cycle = path[path.index(child) :]
                if not reported.intersection(cycle):
                    reported.update(cycle)
                    c.bad(
                        child,
                        f"nodes.{child}",
                        "is in a loop that never waits for the caller: " + " > ".join(cycle),
                    )
            elif child not in state:
                state[child] = 1
                stack.append((child, iter(graph[child])))
                path.append(child)
