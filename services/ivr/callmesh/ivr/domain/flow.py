"""The IVR flow model: a tenant's flow as a graph of typed nodes joined by edges on named ports.

A flow document (JSON, as the API takes and stores it; ``parse.parse_flow`` turns it into these
types and names the field of anything wrong)::

    {
      "name": "Main line",
      "languages": ["en", "zh"],            # the first is the default language
      "start": "welcome",                   # the node a call starts at
      "variables": {"customer.tier": ""},   # declared variables and their initial values
      "shortcuts": {"31": "balance"},       # deep-menu shortcuts: "*31#" jumps to node balance
      "nodes": [
        {"id": "welcome", "type": "play", "label": "Welcome", "position": {"x": 0, "y": 0},
         "config": {"prompt": {"en": [{"tts": "Welcome"}], "zh": [{"media": "m-1"}]}}}
      ],
      "edges": [{"from": "welcome", "port": "next", "to": "menu"}]
    }

Each node type's ``config`` is one of the ``*Config`` classes below; ``NODE_PORTS`` says which
ports a node of each type has (a menu's ports are its option keys and ``failure``, a condition's
its branch ports and ``else``). A port with no edge ends the flow there (outcome ``completed``,
the call is hung up), except where ``REQUIRED_PORTS`` says the port needs an edge.

Variables are dotted names (``[a-z_][a-z0-9_]*(\\.[a-z_][a-z0-9_]*)*``). Built-in, always
defined: ``BUILTIN_VARIABLES``. A variable is *known* when built in, declared in ``variables``,
or set by some node (set, collect, http response mapping, lookup mapping, language, survey).
Templates (TTS text, HTTP url/headers/body strings) insert variables as ``{name}``; ``{{`` and
``}}`` are literal braces.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = [
    "BUILTIN_VARIABLES",
    "NODE_PORTS",
    "REQUIRED_PORTS",
    "VARIABLE_NAME",
    "Assignment",
    "BlacklistConfig",
    "Branch",
    "CollectConfig",
    "ConditionConfig",
    "Edge",
    "Flow",
    "HangupConfig",
    "HttpConfig",
    "LanguageConfig",
    "LookupConfig",
    "MenuConfig",
    "Node",
    "NodeConfig",
    "NodeType",
    "PlayConfig",
    "Position",
    "Prompt",
    "PromptItem",
    "PromptKind",
    "QueueConfig",
    "SetConfig",
    "SurveyConfig",
    "SurveyQuestion",
    "TimeConfig",
    "TimeRule",
    "TransferConfig",
    "TransferKind",
    "VoicemailConfig",
]

VARIABLE_NAME = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*$")

# Defined for every call before the first node runs.
BUILTIN_VARIABLES: frozenset[str] = frozenset(
    {
        "call.id",  # the call id (the caller leg's uuid)
        "call.caller",  # the caller's number as the switch gave it
        "call.caller_name",
        "call.dialled",  # the number dialled (the tenant's number)
        "call.language",  # the current language (changed by a language node)
        "call.started_at",  # ISO 8601 UTC
        "call.flow_id",
        "call.flow_version",
        "tenant.id",
        "last.input",  # the digits (or "timeout"/"invalid") of the last menu/collect node
        "http.status",  # the last http node's status code ("" before any, "0" on failure)
        "http.error",  # why the last http node failed ("" when it did not)
    }
)


class NodeType(StrEnum):
    """What a node does."""

    PLAY = "play"
    MENU = "menu"
    COLLECT = "collect"
    SET = "set"
    CONDITION = "condition"
    TIME = "time"
    LANGUAGE = "language"
    BLACKLIST = "blacklist"
    HTTP = "http"
    LOOKUP = "lookup"
    VOICEMAIL = "voicemail"
    QUEUE = "queue"
    TRANSFER = "transfer"
    SURVEY = "survey"
    HANGUP = "hangup"


class PromptKind(StrEnum):
    """Where a prompt item's sound comes from."""

    MEDIA = "media"  # an uploaded file in the tenant's media store (value: media id)
    PROMPT = "prompt"  # a prompt of the tenant's library (value: prompt id; per language)
    TTS = "tts"  # text to speech (value: a template)
    SOUND = "sound"  # a sound file on the switch (value: path such as "ivr/ivr-welcome.wav")


@dataclass(frozen=True, slots=True)
class PromptItem:
    """One piece of a prompt: JSON ``{"tts": "…"}``, ``{"media": "…"}``, …, one key each."""

    kind: PromptKind
    value: str


# Language code -> the items played in order. An empty mapping means "no prompt".
Prompt = Mapping[str, tuple[PromptItem, ...]]


@dataclass(frozen=True, slots=True)
class Position:
    """Where the designer draws the node (not used when running)."""

    x: float = 0.0
    y: float = 0.0


@dataclass(frozen=True, slots=True)
class PlayConfig:
    """Play a prompt. Ports: next. ``barge_in``: a key press stops it (and is kept for the
    next menu/collect node as its first key)."""

    prompt: Prompt
    barge_in: bool = True


@dataclass(frozen=True, slots=True)
class MenuConfig:
    """Play a prompt and take one key. Ports: each key of ``options`` (``"0"``-``"9"``, ``"*"``,
    ``"#"``) and ``failure`` (retries used up). A timeout plays ``timeout_prompt`` (else the
    menu prompt again), an unlisted key ``invalid_prompt``; both count toward ``max_retries``
    (the number of tries after the first). ``options`` maps key -> label (for the designer
    and the trail). When the flow has shortcuts and ``shortcuts`` is true, ``*`` starts a
    shortcut code (``*31#``) instead of being an option."""

    prompt: Prompt
    options: Mapping[str, str]
    timeout_ms: int = 5000
    max_retries: int = 2
    invalid_prompt: Prompt = field(default_factory=dict)
    timeout_prompt: Prompt = field(default_factory=dict)
    shortcuts: bool = True


@dataclass(frozen=True, slots=True)
class CollectConfig:
    """Collect digits into ``variable``. Ports: next, failure.

    Length: ``min_digits``..``max_digits`` (equal for a fixed length). ``terminator`` (default
    ``#``, "" for none) ends input early; ``reset_key`` (default ``*``, "" for none) clears what
    was typed so far. Input also ends at ``max_digits`` or when ``inter_digit_timeout_ms``
    passes after a digit; no digit within ``first_digit_timeout_ms`` is a timeout. Input
    shorter than ``min_digits`` or not matching ``pattern`` (a full-match regex) is invalid.
    Timeouts and invalid input replay the prompt (or ``timeout_prompt``/``invalid_prompt``)
    up to ``max_retries`` more times, then take ``failure``."""

    prompt: Prompt
    variable: str
    min_digits: int = 1
    max_digits: int = 20
    terminator: str = "#"
    reset_key: str = "*"
    first_digit_timeout_ms: int = 5000
    inter_digit_timeout_ms: int = 3000
    pattern: str = ""
    max_retries: int = 2
    invalid_prompt: Prompt = field(default_factory=dict)
    timeout_prompt: Prompt = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Assignment:
    """``variable`` := value of ``expression`` (the expression language, ``expr``)."""

    variable: str
    expression: str


@dataclass(frozen=True, slots=True)
class SetConfig:
    """Set variables, in order (a later assignment sees earlier ones). Ports: next."""

    assignments: tuple[Assignment, ...]


@dataclass(frozen=True, slots=True)
class Branch:
    """Take ``port`` when ``expression`` is true."""

    port: str
    expression: str


@dataclass(frozen=True, slots=True)
class ConditionConfig:
    """The first branch whose expression is true, else port ``else``."""

    branches: tuple[Branch, ...]


@dataclass(frozen=True, slots=True)
class TimeRule:
    """Open on ``days`` (``mon``..``sun``) from ``start`` to ``end`` (``HH:MM``, end exclusive;
    ``end`` before ``start`` runs past midnight)."""

    days: tuple[str, ...]
    start: str
    end: str


@dataclass(frozen=True, slots=True)
class TimeConfig:
    """Working hours. Ports: open, closed, holiday.

    With ``calendar_id``, the tenant's business calendar in admin decides (it knows holidays).
    Otherwise ``rules`` in ``time_zone`` (IANA; default the tenant's) decide, with ``holidays``
    (``YYYY-MM-DD`` dates, closed all day, port ``holiday``)."""

    calendar_id: str = ""
    rules: tuple[TimeRule, ...] = ()
    holidays: tuple[str, ...] = ()
    time_zone: str = ""


@dataclass(frozen=True, slots=True)
class LanguageConfig:
    """Ask for a language: ``options`` maps key -> language code (one of the flow's
    languages). Sets ``call.language``. Timeout or retries used up keep the current
    language. Ports: next."""

    prompt: Prompt
    options: Mapping[str, str]
    timeout_ms: int = 5000
    max_retries: int = 1


@dataclass(frozen=True, slots=True)
class BlacklistConfig:
    """Is the caller (or the value of ``number_expression``) on the tenant's blacklist?
    Ports: blocked, clear. A hit is counted on the entry."""

    number_expression: str = "call.caller"


@dataclass(frozen=True, slots=True)
class HttpConfig:
    """Call a web service. Ports: next (2xx), failure (other status, timeout, refused, bad JSON
    where ``response`` needs it).

    ``url``, header values and every string inside ``body`` are templates. ``body`` is JSON
    (None: no body). ``response`` maps variable -> a path into the JSON response
    (``data.items.0.name``; ``$status`` for the status code, ``$body`` for the raw text).
    Only http and https URLs; ``timeout_ms`` at most 30000."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: object = None
    timeout_ms: int = 3000
    response: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LookupConfig:
    """Find a row of the tenant's data table ``table`` whose key column equals the value of
    ``key_expression``; copy columns into variables (``columns``: variable -> column).
    Ports: found, not_found."""

    table: str
    key_expression: str
    columns: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class VoicemailConfig:
    """Play ``prompt``, beep, record up to ``max_seconds`` into ``mailbox``; the message is
    stored, listed for the tenant and announced on the bus. Ports: next (after recording;
    without an edge the call ends, outcome voicemail)."""

    prompt: Prompt
    mailbox: str
    max_seconds: int = 120
    beep: bool = True


@dataclass(frozen=True, slots=True)
class QueueConfig:
    """Hand the call to acd's ``queue_id``: priority from ``priority_expression`` (an integer
    expression; "" = 0), the data package = the variables named in ``data`` (empty = every
    non-built-in variable) plus the trail summary. Leaves the flow (outcome queued).
    Ports: failure (acd refused or unreachable after retries)."""

    queue_id: str
    priority_expression: str = ""
    data: tuple[str, ...] = ()


class TransferKind(StrEnum):
    """Where a transfer node sends the call."""

    FLOW = "flow"  # another flow of the tenant (its published version)
    AGENT = "agent"  # one agent, through acd (a queue request with a preferred agent)
    EXTERNAL = "external"  # an outside number (through the tenant's carrier gateway)


@dataclass(frozen=True, slots=True)
class TransferConfig:
    """Transfer the call. ``target``: flow id, agent id (+ ``queue_id`` to queue through) or
    external number (a template). Ports: failure."""

    kind: TransferKind
    target: str
    queue_id: str = ""


@dataclass(frozen=True, slots=True)
class SurveyQuestion:
    """One question: a key ``min_value``..``max_value`` stored in ``survey.<id>``."""

    id: str
    prompt: Prompt
    min_value: int = 1
    max_value: int = 5


@dataclass(frozen=True, slots=True)
class SurveyConfig:
    """Ask each question once (timeout or a key out of range leaves the answer empty);
    ``thanks`` plays at the end. Ports: next."""

    questions: tuple[SurveyQuestion, ...]
    thanks: Prompt = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HangupConfig:
    """Play ``prompt`` (if any) and hang up with ``cause`` (a FreeSWITCH hangup cause)."""

    cause: str = "NORMAL_CLEARING"
    prompt: Prompt = field(default_factory=dict)


NodeConfig = (
    PlayConfig
    | MenuConfig
    | CollectConfig
    | SetConfig
    | ConditionConfig
    | TimeConfig
    | LanguageConfig
    | BlacklistConfig
    | HttpConfig
    | LookupConfig
    | VoicemailConfig
    | QueueConfig
    | TransferConfig
    | SurveyConfig
    | HangupConfig
)

# Fixed ports per type; menu adds its option keys, condition its branch ports.
NODE_PORTS: Mapping[NodeType, tuple[str, ...]] = {
    NodeType.PLAY: ("next",),
    NodeType.MENU: ("failure",),
    NodeType.COLLECT: ("next", "failure"),
    NodeType.SET: ("next",),
    NodeType.CONDITION: ("else",),
    NodeType.TIME: ("open", "closed", "holiday"),
    NodeType.LANGUAGE: ("next",),
    NodeType.BLACKLIST: ("blocked", "clear"),
    NodeType.HTTP: ("next", "failure"),
    NodeType.LOOKUP: ("found", "not_found"),
    NodeType.VOICEMAIL: ("next",),
    NodeType.QUEUE: ("failure",),
    NodeType.TRANSFER: ("failure",),
    NodeType.SURVEY: ("next",),
    NodeType.HANGUP: (),
}

# Ports that must have an edge (validation error otherwise).
REQUIRED_PORTS: Mapping[NodeType, tuple[str, ...]] = {
    NodeType.MENU: (),  # every option key must have an edge (checked per option)
    NodeType.CONDITION: (),  # every branch port must have an edge (checked per branch)
    NodeType.BLACKLIST: ("blocked", "clear"),
    NodeType.LOOKUP: ("found", "not_found"),
    NodeType.TIME: ("open", "closed"),
}


@dataclass(frozen=True, slots=True)
class Node:
    """One step of a flow."""

    id: str
    type: NodeType
    config: NodeConfig
    label: str = ""
    position: Position = Position()


@dataclass(frozen=True, slots=True)
class Edge:
    """From ``source``'s ``port`` to node ``target`` (JSON keys ``from``, ``port``, ``to``)."""

    source: str
    port: str
    target: str


@dataclass(frozen=True, slots=True)
class Flow:
    """A flow (one version of it: versions are immutable once published)."""

    name: str
    start: str
    nodes: Mapping[str, Node]
    edges: tuple[Edge, ...]
    languages: tuple[str, ...] = ("en",)
    variables: Mapping[str, str] = field(default_factory=dict)
    shortcuts: Mapping[str, str] = field(default_factory=dict)
    # Compiled expressions by source, filled by the engine (a flow version never changes).
    compiled: dict[str, object] = field(default_factory=dict, compare=False, repr=False)

    def next_node(self, node_id: str, port: str) -> str | None:
        """The node an edge leads to from ``node_id``'s ``port`` (None: the flow ends)."""
        for edge in self.edges:
            if edge.source == node_id and edge.port == port:
                return edge.target
        return None

    def ports(self, node: Node) -> tuple[str, ...]:
        """Every port of ``node``."""
        fixed = NODE_PORTS[node.type]
        if isinstance(node.config, MenuConfig):
            return (*node.config.options.keys(), *fixed)
        if isinstance(node.config, ConditionConfig):
            return (*(b.port for b in node.config.branches), *fixed)
        return fixed
