"""Scenario files (YAML): phones, carriers, callers, traffic, dialplan, duration, seed and speed.

Every field is checked by pydantic; a broken file raises ``ScenarioError`` whose lines each name
the field (``traffic.0.rate``) and the rule it broke.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from callmesh.fsemu.world.distributions import Dist, Exponential, Fixed, Uniform
from callmesh.fsemu.world.sip import SIP_CAUSES

_DIGITS_RE = re.compile(r"^[0-9*#A-Da-d]+$")
_RANGE_RE = re.compile(r"^(\d+)-(\d+)$")
_USER_RE = re.compile(r"^[A-Za-z0-9_.+-]{1,64}$")
_DOMAIN_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$")
_NUMBER_RE = re.compile(r"^\+?[0-9A-Za-z*#_.-]{1,64}$")
_CALLER_PATTERN_RE = re.compile(r"^\+?[0-9x]{1,32}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
# A range of extensions expands to at most this many phones, so a typo cannot eat the memory.
MAX_RANGE = 100_000

Behaviour = Literal["answer", "busy", "no_answer", "reject", "dnd"]
Outcome = Literal["human", "machine", "busy", "no_answer", "invalid"]


def _digits_as_text(value: Any) -> Any:
    """YAML reads ``5000`` as a number; numbers and extensions are text."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


Text = Annotated[str, BeforeValidator(_digits_as_text)]


class ScenarioError(ValueError):
    """A scenario broke rules; ``problems`` holds one ``field: rule`` line per broken rule."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid scenario:\n  " + "\n  ".join(problems))
        self.problems = problems


class _Strict(BaseModel):
    """Unknown fields are refused, so a misspelt key names itself instead of being ignored."""

    model_config = ConfigDict(extra="forbid")


class PhoneProfile(_Strict):
    """How a phone behaves when a leg is dialled to it."""

    behaviour: Behaviour = "answer"
    # Seconds it rings before answering (or before refusing, for busy/reject/dnd).
    ring: Dist = Fixed(value=1.0)
    early_media: bool = False
    # Seconds of talk after answering before the phone hangs up; None: it waits for the far side.
    talk: Dist | None = None
    # Calls it takes at once; one more gets USER_BUSY (486). None: call waiting, no limit.
    max_calls: int | None = Field(default=None, ge=1)
    # The SIP final response for busy (486), reject (603) and dnd (486; many phones send 480).
    sip_code: int | None = None

    @field_validator("sip_code")
    @classmethod
    def _known_code(cls, value: int | None) -> int | None:
        if value is not None and value not in SIP_CAUSES:
            raise ValueError(f"must be a SIP final response FreeSWITCH maps: {sorted(SIP_CAUSES)}")
        return value

    def refusal_code(self) -> int:
        """The SIP code the phone answers with when it refuses the call."""
        if self.sip_code is not None:
            return self.sip_code
        return 603 if self.behaviour == "reject" else 486


BUILTIN_PROFILES: dict[str, PhoneProfile] = {
    "answer": PhoneProfile(),
    "agent": PhoneProfile(ring=Uniform(min=1.0, max=3.0)),
    "busy": PhoneProfile(behaviour="busy", ring=Fixed(value=0.0)),
    "no_answer": PhoneProfile(behaviour="no_answer"),
    "reject": PhoneProfile(behaviour="reject", ring=Fixed(value=2.0)),
    "dnd": PhoneProfile(behaviour="dnd", ring=Fixed(value=0.0)),
}


def expand_users(users: list[str]) -> list[str]:
    """``["1001-1003", "2000"]`` → ``["1001", "1002", "1003", "2000"]`` (zero padding kept)."""
    out: list[str] = []
    for item in users:
        match = _RANGE_RE.match(item)
        if match:
            first, last = match.group(1), match.group(2)
            if int(last) < int(first):
                raise ValueError(f"range {item!r} must go upwards")
            if int(last) - int(first) + 1 > MAX_RANGE:
                raise ValueError(f"range {item!r} is longer than {MAX_RANGE}")
            width = len(first)
            out.extend(str(n).zfill(width) for n in range(int(first), int(last) + 1))
        elif _USER_RE.match(item):
            out.append(item)
        else:
            raise ValueError(f"{item!r} is neither a SIP user name nor a range like 1001-1050")
    return out


class PhoneGroup(_Strict):
    """Phones of one tenant domain sharing a profile."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    domain: str
    users: list[Text] = Field(min_length=1)
    profile: str | PhoneProfile = "answer"
    sip_profile: str = "internal"
    expires: int = Field(default=3600, ge=1, le=86_400)
    # Whether the phones register when the scenario loads (key ``register`` in YAML).
    registers: bool = Field(default=True, alias="register")
    user_agent: str = "callmesh-fsemu-phone/1.0"
    network_ip: str = "127.0.0.1"

    @field_validator("domain")
    @classmethod
    def _is_domain(cls, value: str) -> str:
        if not _DOMAIN_RE.match(value):
            raise ValueError("must be a host name (letters, digits, dots, hyphens)")
        return value.lower()

    @field_validator("users")
    @classmethod
    def _expandable(cls, value: list[str]) -> list[str]:
        expand_users(value)
        return value

    def extensions(self) -> list[str]:
        """Every user of the group, ranges expanded."""
        return expand_users(self.users)


class CarrierOutcomes(_Strict):
    """Relative chances of what happens to a number dialled out through the carrier."""

    human: float = Field(default=1.0, ge=0)
    machine: float = Field(default=0.0, ge=0)
    busy: float = Field(default=0.0, ge=0)
    no_answer: float = Field(default=0.0, ge=0)
    invalid: float = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _some_chance(self) -> CarrierOutcomes:
        if self.total() <= 0:
            raise ValueError("at least one outcome must have a chance above 0")
        return self

    def total(self) -> float:
        """Sum of the weights."""
        return self.human + self.machine + self.busy + self.no_answer + self.invalid

    def weights(self) -> list[tuple[Outcome, float]]:
        """The outcomes with their weights, in a fixed order (so a seed replays)."""
        return [
            ("human", self.human),
            ("machine", self.machine),
            ("busy", self.busy),
            ("no_answer", self.no_answer),
            ("invalid", self.invalid),
        ]


class CarrierSpec(_Strict):
    """A simulated carrier behind ``sofia/gateway/<gateway>/<number>``."""

    gateway: str
    outcomes: CarrierOutcomes = CarrierOutcomes()
    # Numbers with a fixed outcome (tests, demos); the others draw from ``outcomes``.
    numbers: dict[Text, Outcome] = {}
    ring: Dist = Uniform(min=2.0, max=6.0)
    early_media: bool = True
    # Talk time of a human before they hang up; None: they wait for the platform to hang up.
    talk: Dist | None = Exponential(mean=60.0)
    # An answering machine: greeting length before the beep, then how long it records.
    greeting: Dist = Uniform(min=3.0, max=8.0)
    message: Dist = Fixed(value=30.0)
    # Seconds before a busy or invalid number is refused.
    refuse_after: Dist = Fixed(value=0.5)

    @field_validator("gateway")
    @classmethod
    def _is_name(cls, value: str) -> str:
        if not _NAME_RE.match(value):
            raise ValueError("must be 1-64 letters, digits, '_', '.' or '-'")
        return value


class DigitStep(_Strict):
    """Digits a caller presses: at a moment of the call, or when the n-th prompt starts."""

    digits: Text
    # Seconds after the call is created.
    at: float | None = Field(default=None, ge=0)
    # The n-th prompt (PLAYBACK_START on the caller's channel), counting from 1.
    on_prompt: int | None = Field(default=None, ge=1)
    # Seconds after that prompt starts (the caller may barge in before it ends).
    delay: float = Field(default=0.0, ge=0)

    @field_validator("digits")
    @classmethod
    def _dtmf(cls, value: str) -> str:
        if not _DIGITS_RE.match(value):
            raise ValueError("must be DTMF digits: 0-9, *, #, A-D")
        return value.upper()

    @model_validator(mode="after")
    def _one_trigger(self) -> DigitStep:
        if (self.at is None) == (self.on_prompt is None):
            raise ValueError("set exactly one of 'at' and 'on_prompt'")
        return self


class CallerSpec(_Strict):
    """One scripted inbound caller."""

    # Scenario second at which the caller dials.
    at: float = Field(default=0.0, ge=0)
    number: Text
    caller: Text = "+15550100000"
    caller_name: str = ""
    digits: list[DigitStep] = []
    # How long the caller waits to reach someone (a bridge) before hanging up; None: forever.
    patience: Dist | None = Fixed(value=120.0)
    # Talk time once bridged, then the caller hangs up; None: waits for the far side.
    talk: Dist | None = Fixed(value=30.0)
    network_addr: str = "127.0.0.1"
    variables: dict[str, str] = {}

    @field_validator("number", "caller")
    @classmethod
    def _is_number(cls, value: str) -> str:
        if not _NUMBER_RE.match(value):
            raise ValueError("must be a dialable number (digits, optional leading +)")
        return value


class DigitScript(_Strict):
    """A weighted digit script a traffic generator picks for each call."""

    weight: float = Field(default=1.0, gt=0)
    steps: list[DigitStep] = []


class TrafficSpec(_Strict):
    """Poisson arrivals of inbound callers at ``rate`` calls per (simulated) second."""

    name: str
    rate: float = Field(gt=0, le=100_000)
    numbers: list[Text] = Field(min_length=1)
    # Caller numbers: each 'x' becomes a random digit.
    callers: str = "+1555xxxxxxx"
    holding: Dist = Exponential(mean=120.0)
    patience: Dist | None = Exponential(mean=90.0)
    scripts: list[DigitScript] = []
    # Scenario seconds the generator starts and stops (None: until stopped).
    start: float = Field(default=0.0, ge=0)
    stop: float | None = Field(default=None, gt=0)
    max_calls: int | None = Field(default=None, ge=1)
    variables: dict[str, str] = {}

    @field_validator("name")
    @classmethod
    def _is_name(cls, value: str) -> str:
        if not _NAME_RE.match(value):
            raise ValueError("must be 1-64 letters, digits, '_', '.' or '-'")
        return value

    @field_validator("numbers")
    @classmethod
    def _are_numbers(cls, value: list[str]) -> list[str]:
        for number in value:
            if not _NUMBER_RE.match(number):
                raise ValueError(f"{number!r} is not a dialable number")
        return value

    @field_validator("callers")
    @classmethod
    def _is_pattern(cls, value: str) -> str:
        if not _CALLER_PATTERN_RE.match(value):
            raise ValueError("must be digits and 'x' (a random digit), optional leading +")
        return value

    @model_validator(mode="after")
    def _stops_after_start(self) -> TrafficSpec:
        if self.stop is not None and self.stop <= self.start:
            raise ValueError("stop must be later than start")
        return self


class DialplanStep(_Strict):
    """One application of the emulator's dialplan: ``{app: playback, data: /x.wav}``."""

    app: str = Field(min_length=1)
    data: str = ""


class Scenario(_Strict):
    """A whole simulated world, loaded from YAML."""

    name: str = "scenario"
    seed: int | None = None
    speed: float = Field(default=1.0, gt=0, le=10_000)
    # Simulated seconds the traffic runs; None: until stopped.
    duration: float | None = Field(default=None, gt=0)
    profiles: dict[str, PhoneProfile] = {}
    phones: list[PhoneGroup] = []
    carriers: list[CarrierSpec] = []
    callers: list[CallerSpec] = []
    traffic: list[TrafficSpec] = []
    # Destination number → applications; absent: the switch's own dialplan is kept.
    dialplan: dict[str, list[DialplanStep]] | None = None

    @field_validator("dialplan", mode="before")
    @classmethod
    def _short_steps(cls, value: Any) -> Any:
        """Allow ``- playback /x.wav`` as shorthand for ``- {app: playback, data: /x.wav}``."""
        if not isinstance(value, dict):
            return value
        out: dict[Any, Any] = {}
        for number, steps in value.items():
            if isinstance(steps, list):
                steps = [
                    dict(zip(("app", "data"), s.split(" ", 1), strict=False))
                    if isinstance(s, str)
                    else s
                    for s in steps
                ]
            out[str(number)] = steps
        return out

    @model_validator(mode="after")
    def _references(self) -> Scenario:
        for index, group in enumerate(self.phones):
            if isinstance(group.profile, str) and group.profile not in self.profile_names():
                raise ValueError(
                    f"phones.{index}.profile: unknown profile {group.profile!r}; "
                    f"known: {sorted(self.profile_names())}"
                )
        seen: set[str] = set()
        for index, carrier in enumerate(self.carriers):
            if carrier.gateway in seen:
                raise ValueError(f"carriers.{index}.gateway: {carrier.gateway!r} is defined twice")
            seen.add(carrier.gateway)
        phones: set[str] = set()
        for index, group in enumerate(self.phones):
            for user in group.extensions():
                key = f"{user}@{group.domain}"
                if key in phones:
                    raise ValueError(f"phones.{index}.users: {key} is defined twice")
                phones.add(key)
        names = [t.name for t in self.traffic]
        for index, name in enumerate(names):
            if names.index(name) != index:
                raise ValueError(f"traffic.{index}.name: {name!r} is defined twice")
        return self

    def profile_names(self) -> set[str]:
        """Built-in profile names plus the scenario's own."""
        return set(BUILTIN_PROFILES) | set(self.profiles)

    def profile(self, ref: str | PhoneProfile) -> PhoneProfile:
        """The profile a phone group refers to (by name or inline)."""
        if isinstance(ref, PhoneProfile):
            return ref
        return self.profiles.get(ref) or BUILTIN_PROFILES[ref]

    def phone_groups(self) -> Iterator[tuple[PhoneGroup, PhoneProfile]]:
        """Each phone group with its resolved profile."""
        for group in self.phones:
            yield group, self.profile(group.profile)


def format_errors(err: ValidationError) -> list[str]:
    """One ``field: rule`` line per pydantic error."""
    lines = []
    for error in err.errors():
        message = error["msg"].removeprefix("Value error, ")
        field = ".".join(str(part) for part in error["loc"])
        # Cross-field rules name their own field (``phones.0.profile: …``) in the message.
        lines.append(f"{field}: {message}" if field else message)
    return lines


def parse_scenario(data: Any) -> Scenario:
    """A scenario from already-parsed YAML/JSON data; ScenarioError names every broken rule."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ScenarioError([f"(top level): must be a mapping, not {type(data).__name__}"])
    try:
        return Scenario.model_validate(data)
    except ValidationError as err:
        raise ScenarioError(format_errors(err)) from err


def parse_scenario_text(text: str) -> Scenario:
    """A scenario from YAML text."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "?"
        raise ScenarioError([f"(yaml) {where}: {getattr(err, 'problem', err)}"]) from err
    return parse_scenario(data)


def load_scenario(path: Path) -> Scenario:
    """A scenario from a YAML file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ScenarioError([f"(file) {path}: {err.strerror or err}"]) from err
    return parse_scenario_text(text)
