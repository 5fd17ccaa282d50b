"""Flow documents (JSON) to the flow model and back, naming every field that is wrong."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from callmesh.core.errors import InvalidInput
from callmesh.ivr.domain.flow import (
    VARIABLE_NAME,
    Assignment,
    BlacklistConfig,
    Branch,
    CollectConfig,
    ConditionConfig,
    Edge,
    Flow,
    HangupConfig,
    HttpConfig,
    LanguageConfig,
    LookupConfig,
    MenuConfig,
    Node,
    NodeConfig,
    NodeType,
    PlayConfig,
    Position,
    Prompt,
    PromptItem,
    PromptKind,
    QueueConfig,
    SetConfig,
    SurveyConfig,
    SurveyQuestion,
    TimeConfig,
    TimeRule,
    TransferConfig,
    TransferKind,
    VoicemailConfig,
)

__all__ = ["FlowInvalid", "Problem", "flow_to_doc", "parse_flow"]

NODE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


@dataclass(frozen=True, slots=True)
class Problem:
    """What is wrong, where: ``node_id`` ("" for the flow), ``field`` (a dotted path), ``rule``."""

    node_id: str
    field: str
    rule: str


class FlowInvalid(InvalidInput):
    """A flow document or flow with problems; ``problems`` lists them all."""

    def __init__(self, problems: list[Problem]) -> None:
        first = problems[0]
        super().__init__(first.field, first.rule)
        self.problems = tuple(problems)
        self.details["problems"] = [
            {"node_id": p.node_id, "field": p.field, "rule": p.rule} for p in problems
        ]


class _Reader:
    """Reads typed fields out of JSON, collecting problems instead of stopping at the first."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.node_id = ""

    def bad(self, path: str, rule: str) -> None:
        self.problems.append(Problem(self.node_id, path, rule))

    def obj(self, value: Any, path: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            self.bad(path, "must be an object")
            return {}
        return value

    def text(self, m: Mapping[str, Any], key: str, path: str, default: str | None = None) -> str:
        value = m.get(key, default)
        if value is None:
            self.bad(f"{path}.{key}", "is required")
            return ""
        if not isinstance(value, str):
            self.bad(f"{path}.{key}", "must be a string")
            return default or ""
        if len(value) > 10_000:
            self.bad(f"{path}.{key}", "must be at most 10000 characters")
            return ""
        return value

    def integer(
        self, m: Mapping[str, Any], key: str, path: str, default: int, low: int, high: int
    ) -> int:
        value = m.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            self.bad(f"{path}.{key}", "must be an integer")
            return default
        if not low <= value <= high:
            self.bad(f"{path}.{key}", f"must be between {low} and {high}")
            return default
        return value

    def boolean(self, m: Mapping[str, Any], key: str, path: str, default: bool) -> bool:
        value = m.get(key, default)
        if not isinstance(value, bool):
            self.bad(f"{path}.{key}", "must be true or false")
            return default
        return value

    def items(self, value: Any, path: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.bad(path, "must be a list")
            return []
        return value

    def texts(self, m: Mapping[str, Any], key: str, path: str) -> tuple[str, ...]:
        out: list[str] = []
        for i, item in enumerate(self.items(m.get(key), f"{path}.{key}")):
            if isinstance(item, str):
                out.append(item)
            else:
                self.bad(f"{path}.{key}.{i}", "must be a string")
        return tuple(out)

    def text_map(self, m: Mapping[str, Any], key: str, path: str) -> dict[str, str]:
        raw = m.get(key)
        if raw is None:
            return {}
        out: dict[str, str] = {}
        for k, v in self.obj(raw, f"{path}.{key}").items():
            if isinstance(v, str):
                out[str(k)] = v
            else:
                self.bad(f"{path}.{key}.{k}", "must be a string")
        return out

    def variable(self, m: Mapping[str, Any], key: str, path: str) -> str:
        name = self.text(m, key, path)
        if name and not VARIABLE_NAME.match(name):
            self.bad(f"{path}.{key}", "must be a variable name such as customer.tier")
        return name

    def prompt(self, m: Mapping[str, Any], key: str, path: str) -> Prompt:
        raw = m.get(key)
        if raw is None:
            return {}
        out: dict[str, tuple[PromptItem, ...]] = {}
        for language, items in self.obj(raw, f"{path}.{key}").items():
            where = f"{path}.{key}.{language}"
            if not LANGUAGE.match(str(language)):
                self.bad(where, "must be keyed by a language code such as en or zh")
                continue
            parsed: list[PromptItem] = []
            for i, item in enumerate(self.items(items, where)):
                entry = self.obj(item, f"{where}.{i}")
                if len(entry) != 1:
                    self.bad(f"{where}.{i}", "must have exactly one of tts, media, prompt, sound")
                    continue
                ((kind, value),) = entry.items()
                if kind not in PromptKind.__members__.values():
                    self.bad(f"{where}.{i}.{kind}", "must be one of tts, media, prompt, sound")
                elif not isinstance(value, str) or not value.strip():
                    self.bad(f"{where}.{i}.{kind}", "must be a non-empty string")
                else:
                    parsed.append(PromptItem(PromptKind(kind), value))
            out[str(language)] = tuple(parsed)
        return out


def _play(r: _Reader, c: Mapping[str, Any], p: str) -> PlayConfig:
    return PlayConfig(r.prompt(c, "prompt", p), r.boolean(c, "barge_in", p, True))


def _menu(r: _Reader, c: Mapping[str, Any], p: str) -> MenuConfig:
    return MenuConfig(
        prompt=r.prompt(c, "prompt", p),
        options=r.text_map(c, "options", p),
        timeout_ms=r.integer(c, "timeout_ms", p, 5000, 500, 60_000),
        max_retries=r.integer(c, "max_retries", p, 2, 0, 10),
        invalid_prompt=r.prompt(c, "invalid_prompt", p),
        timeout_prompt=r.prompt(c, "timeout_prompt", p),
        shortcuts=r.boolean(c, "shortcuts", p, True),
    )


def _collect(r: _Reader, c: Mapping[str, Any], p: str) -> CollectConfig:
    return CollectConfig(
        prompt=r.prompt(c, "prompt", p),
        variable=r.variable(c, "variable", p),
        min_digits=r.integer(c, "min_digits", p, 1, 1, 64),
        max_digits=r.integer(c, "max_digits", p, 20, 1, 64),
        terminator=r.text(c, "terminator", p, "#"),
        reset_key=r.text(c, "reset_key", p, "*"),
        first_digit_timeout_ms=r.integer(c, "first_digit_timeout_ms", p, 5000, 500, 60_000),
        inter_digit_timeout_ms=r.integer(c, "inter_digit_timeout_ms", p, 3000, 500, 60_000),
        pattern=r.text(c, "pattern", p, ""),
        max_retries=r.integer(c, "max_retries", p, 2, 0, 10),
        invalid_prompt=r.prompt(c, "invalid_prompt", p),
        timeout_prompt=r.prompt(c, "timeout_prompt", p),
    )


def _set(r: _Reader, c: Mapping[str, Any], p: str) -> SetConfig:
    out: list[Assignment] = []
    for i, item in enumerate(r.items(c.get("assignments"), f"{p}.assignments")):
        a = r.obj(item, f"{p}.assignments.{i}")
        where = f"{p}.assignments.{i}"
        out.append(Assignment(r.variable(a, "variable", where), r.text(a, "expression", where)))
    return SetConfig(tuple(out))


def _condition(r: _Reader, c: Mapping[str, Any], p: str) -> ConditionConfig:
    out: list[Branch] = []
    for i, item in enumerate(r.items(c.get("branches"), f"{p}.branches")):
        b = r.obj(item, f"{p}.branches.{i}")
        where = f"{p}.branches.{i}"
        out.append(Branch(r.text(b, "port", where), r.text(b, "expression", where)))
    return ConditionConfig(tuple(out))


def _time(r: _Reader, c: Mapping[str, Any], p: str) -> TimeConfig:
    rules: list[TimeRule] = []
    for i, item in enumerate(r.items(c.get("rules"), f"{p}.rules")):
        t = r.obj(item, f"{p}.rules.{i}")
        where = f"{p}.rules.{i}"
        rules.append(
            TimeRule(r.texts(t, "days", where), r.text(t, "start", where), r.text(t, "end", where))
        )
    return TimeConfig(
        calendar_id=r.text(c, "calendar_id", p, ""),
        rules=tuple(rules),
        holidays=r.texts(c, "holidays", p),
        time_zone=r.text(c, "time_zone", p, ""),
    )


def _language(r: _Reader, c: Mapping[str, Any], p: str) -> LanguageConfig:
    return LanguageConfig(
        prompt=r.prompt(c, "prompt", p),
        options=r.text_map(c, "options", p),
        timeout_ms=r.integer(c, "timeout_ms", p, 5000, 500, 60_000),
        max_retries=r.integer(c, "max_retries", p, 1, 0, 10),
    )


def _blacklist(r: _Reader, c: Mapping[str, Any], p: str) -> BlacklistConfig:
    return BlacklistConfig(r.text(c, "number_expression", p, "call.caller"))


def _http(r: _Reader, c: Mapping[str, Any], p: str) -> HttpConfig:
    return HttpConfig(
        method=r.text(c, "method", p, "GET").upper(),
        url=r.text(c, "url", p),
        headers=r.text_map(c, "headers", p),
        body=c.get("body"),
        timeout_ms=r.integer(c, "timeout_ms", p, 3000, 100, 30_000),
        response=r.text_map(c, "response", p),
    )


def _lookup(r: _Reader, c: Mapping[str, Any], p: str) -> LookupConfig:
    return LookupConfig(
        r.text(c, "table", p), r.text(c, "key_expression", p), r.text_map(c, "columns", p)
    )


def _voicemail(r: _Reader, c: Mapping[str, Any], p: str) -> VoicemailConfig:
    return VoicemailConfig(
        prompt=r.prompt(c, "prompt", p),
        mailbox=r.text(c, "mailbox", p),
        max_seconds=r.integer(c, "max_seconds", p, 120, 5, 600),
        beep=r.boolean(c, "beep", p, True),
    )


def _queue(r: _Reader, c: Mapping[str, Any], p: str) -> QueueConfig:
    return QueueConfig(
        r.text(c, "queue_id", p), r.text(c, "priority_expression", p, ""), r.texts(c, "data", p)
    )


def _transfer(r: _Reader, c: Mapping[str, Any], p: str) -> TransferConfig:
    kind = r.text(c, "kind", p)
    if kind not in TransferKind.__members__.values():
        r.bad(f"{p}.kind", "must be one of flow, agent, external")
        kind = TransferKind.FLOW.value
    return TransferConfig(TransferKind(kind), r.text(c, "target", p), r.text(c, "queue_id", p, ""))


def _survey(r: _Reader, c: Mapping[str, Any], p: str) -> SurveyConfig:
    questions: list[SurveyQuestion] = []
    for i, item in enumerate(r.items(c.get("questions"), f"{p}.questions")):
        q = r.obj(item, f"{p}.questions.{i}")
        where = f"{p}.questions.{i}"
        questions.append(
            SurveyQuestion(
                id=r.text(q, "id", where),
                prompt=r.prompt(q, "prompt", where),
                min_value=r.integer(q, "min_value", where, 1, 0, 9),
                max_value=r.integer(q, "max_value", where, 5, 0, 9),
            )
        )
    return SurveyConfig(tuple(questions), r.prompt(c, "thanks", p))


def _hangup(r: _Reader, c: Mapping[str, Any], p: str) -> HangupConfig:
    cause = r.text(c, "cause", p, "NORMAL_CLEARING")
    if cause and not re.fullmatch(r"[A-Z_]{3,40}", cause):
        r.bad(f"{p}.cause", "must be a hangup cause such as NORMAL_CLEARING")
    return HangupConfig(cause, r.prompt(c, "prompt", p))


_CONFIGS: Mapping[NodeType, Callable[[_Reader, Mapping[str, Any], str], NodeConfig]] = {
    NodeType.PLAY: _play,
    NodeType.MENU: _menu,
    NodeType.COLLECT: _collect,
    NodeType.SET: _set,
    NodeType.CONDITION: _condition,
    NodeType.TIME: _time,
    NodeType.LANGUAGE: _language,
    NodeType.BLACKLIST: _blacklist,
    NodeType.HTTP: _http,
    NodeType.LOOKUP: _lookup,
    NodeType.VOICEMAIL: _voicemail,
    NodeType.QUEUE: _queue,
    NodeType.TRANSFER: _transfer,
    NodeType.SURVEY: _survey,
    NodeType.HANGUP: _hangup,
}


def parse_flow(doc: Mapping[str, Any]) -> Flow:
    """The flow of a document; FlowInvalid lists every structural problem."""
    r = _Reader()
    doc = r.obj(doc, "flow")
    name = r.text(doc, "name", "flow", "")
    start = r.text(doc, "start", "flow")
    languages = r.texts(doc, "languages", "flow") or ("en",)
    for i, language in enumerate(languages):
        if not LANGUAGE.match(language):
            r.bad(f"languages.{i}", "must be a language code such as en, zh or yue")
    if len(set(languages)) != len(languages):
        r.bad("languages", "must not repeat a language")
    variables = r.text_map(doc, "variables", "flow")
    for var in variables:
        if not VARIABLE_NAME.match(var):
            r.bad(f"variables.{var}", "must be a variable name such as customer.tier")
    shortcuts = r.text_map(doc, "shortcuts", "flow")
    nodes: dict[str, Node] = {}
    raw_nodes = r.items(doc.get("nodes"), "nodes")
    if not raw_nodes:
        r.bad("nodes", "must list at least one node")
    for i, raw in enumerate(raw_nodes):
        n = r.obj(raw, f"nodes.{i}")
        node_id = r.text(n, "id", f"nodes.{i}")
        if node_id and not NODE_ID.match(node_id):
            r.bad(f"nodes.{i}.id", "must be 1-64 letters, digits, _ or -")
            continue
        if node_id in nodes:
            r.bad(f"nodes.{i}.id", f"repeats node id {node_id!r}")
            continue
        r.node_id = node_id
        path = f"nodes.{node_id or i}"
        kind = r.text(n, "type", path)
        if kind not in NodeType.__members__.values():
            r.bad(f"{path}.type", "must be one of " + ", ".join(t.value for t in NodeType))
            r.node_id = ""
            continue
        config = _CONFIGS[NodeType(kind)](
            r, r.obj(n.get("config", {}), f"{path}.config"), f"{path}.config"
        )
        pos = r.obj(n.get("position", {}), f"{path}.position")
        x, y = pos.get("x", 0), pos.get("y", 0)
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (x, y)):
            r.bad(f"{path}.position", "x and y must be numbers")
            x = y = 0
        label = r.text(n, "label", path, "")
        nodes[node_id] = Node(node_id, NodeType(kind), config, label, Position(float(x), float(y)))
        r.node_id = ""
    edges: list[Edge] = []
    for i, raw in enumerate(r.items(doc.get("edges"), "edges")):
        e = r.obj(raw, f"edges.{i}")
        edges.append(
            Edge(
                r.text(e, "from", f"edges.{i}"),
                r.text(e, "port", f"edges.{i}"),
                r.text(e, "to", f"edges.{i}"),
            )
        )
    if r.problems:
        raise FlowInvalid(r.problems)
    return Flow(
        name=name,
        start=start,
        nodes=nodes,
        edges=tuple(edges),
        languages=tuple(languages),
        variables=variables,
        shortcuts=shortcuts,
    )


def _prompt_doc(prompt: Prompt) -> dict[str, list[dict[str, str]]]:
    return {lang: [{i.kind.value: i.value} for i in items] for lang, items in prompt.items()}


def _config_doc(config: NodeConfig) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in config.__slots__:
        value = getattr(config, name)
        if name in ("prompt", "invalid_prompt", "timeout_prompt", "thanks"):
            value = _prompt_doc(value)
        elif name == "assignments":
            value = [{"variable": a.variable, "expression": a.expression} for a in value]
        elif name == "branches":
            value = [{"port": b.port, "expression": b.expression} for b in value]
        elif name == "rules":
            value = [{"days": list(t.days), "start": t.start, "end": t.end} for t in value]
        elif name == "questions":
            value = [
                {
                    "id": q.id,
                    "prompt": _prompt_doc(q.prompt),
                    "min_value": q.min_value,
                    "max_value": q.max_value,
                }
                for q in value
            ]
        elif isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, Mapping):
            value = dict(value)
        elif isinstance(value, TransferKind):
            value = value.value
        out[name] = value
    return out


def flow_to_doc(flow: Flow) -> dict[str, Any]:
    """The document of a flow: ``parse_flow(flow_to_doc(f)) == f``."""
    return {
        "name": flow.name,
        "start": flow.start,
        "languages": list(flow.languages),
        "variables": dict(flow.variables),
        "shortcuts": dict(flow.shortcuts),
        "nodes": [
            {
                "id": n.id,
                "type": n.type.value,
                "label": n.label,
                "position": {"x": n.position.x, "y": n.position.y},
                "config": _config_doc(n.config),
            }
            for n in flow.nodes.values()
        ],
        "edges": [{"from": e.source, "port": e.port, "to": e.target} for e in flow.edges],
    }
