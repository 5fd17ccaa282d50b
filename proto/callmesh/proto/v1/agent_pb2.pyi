from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AgentState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AGENT_STATE_UNSPECIFIED: _ClassVar[AgentState]
    AGENT_STATE_LOGGED_OUT: _ClassVar[AgentState]
    AGENT_STATE_NOT_READY: _ClassVar[AgentState]
    AGENT_STATE_READY: _ClassVar[AgentState]
    AGENT_STATE_RESERVED: _ClassVar[AgentState]
    AGENT_STATE_RINGING: _ClassVar[AgentState]
    AGENT_STATE_ON_CALL: _ClassVar[AgentState]
    AGENT_STATE_AFTER_CALL_WORK: _ClassVar[AgentState]
    AGENT_STATE_BREAK: _ClassVar[AgentState]

class NoAnswerReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NO_ANSWER_REASON_UNSPECIFIED: _ClassVar[NoAnswerReason]
    NO_ANSWER_REASON_TIMEOUT: _ClassVar[NoAnswerReason]
    NO_ANSWER_REASON_REJECTED: _ClassVar[NoAnswerReason]
    NO_ANSWER_REASON_BUSY: _ClassVar[NoAnswerReason]
    NO_ANSWER_REASON_UNREACHABLE: _ClassVar[NoAnswerReason]
    NO_ANSWER_REASON_SWITCH_ERROR: _ClassVar[NoAnswerReason]
AGENT_STATE_UNSPECIFIED: AgentState
AGENT_STATE_LOGGED_OUT: AgentState
AGENT_STATE_NOT_READY: AgentState
AGENT_STATE_READY: AgentState
AGENT_STATE_RESERVED: AgentState
AGENT_STATE_RINGING: AgentState
AGENT_STATE_ON_CALL: AgentState
AGENT_STATE_AFTER_CALL_WORK: AgentState
AGENT_STATE_BREAK: AgentState
NO_ANSWER_REASON_UNSPECIFIED: NoAnswerReason
NO_ANSWER_REASON_TIMEOUT: NoAnswerReason
NO_ANSWER_REASON_REJECTED: NoAnswerReason
NO_ANSWER_REASON_BUSY: NoAnswerReason
NO_ANSWER_REASON_UNREACHABLE: NoAnswerReason
NO_ANSWER_REASON_SWITCH_ERROR: NoAnswerReason

class Skill(_message.Message):
    __slots__ = ("name", "level")
    NAME_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    name: str
    level: int
    def __init__(self, name: _Optional[str] = ..., level: _Optional[int] = ...) -> None: ...

class AgentLoggedIn(_message.Message):
    __slots__ = ("agent_id", "endpoint", "skills", "groups", "site")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    SKILLS_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    SITE_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    endpoint: str
    skills: _containers.RepeatedCompositeFieldContainer[Skill]
    groups: _containers.RepeatedScalarFieldContainer[str]
    site: str
    def __init__(self, agent_id: _Optional[str] = ..., endpoint: _Optional[str] = ..., skills: _Optional[_Iterable[_Union[Skill, _Mapping]]] = ..., groups: _Optional[_Iterable[str]] = ..., site: _Optional[str] = ...) -> None: ...

class AgentLoggedOut(_message.Message):
    __slots__ = ("agent_id", "reason", "forced_by")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    FORCED_BY_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    reason: str
    forced_by: str
    def __init__(self, agent_id: _Optional[str] = ..., reason: _Optional[str] = ..., forced_by: _Optional[str] = ...) -> None: ...

class AgentStateChanged(_message.Message):
    __slots__ = ("agent_id", "from_state", "to_state", "reason", "changed_by")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_STATE_FIELD_NUMBER: _ClassVar[int]
    TO_STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CHANGED_BY_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    from_state: AgentState
    to_state: AgentState
    reason: str
    changed_by: str
    def __init__(self, agent_id: _Optional[str] = ..., from_state: _Optional[_Union[AgentState, str]] = ..., to_state: _Optional[_Union[AgentState, str]] = ..., reason: _Optional[str] = ..., changed_by: _Optional[str] = ...) -> None: ...

class AgentOffered(_message.Message):
    __slots__ = ("agent_id", "queue_id", "timeout_ms", "attempt")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    QUEUE_ID_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    queue_id: str
    timeout_ms: int
    attempt: int
    def __init__(self, agent_id: _Optional[str] = ..., queue_id: _Optional[str] = ..., timeout_ms: _Optional[int] = ..., attempt: _Optional[int] = ...) -> None: ...

class AgentAnswered(_message.Message):
    __slots__ = ("agent_id", "queue_id", "ring_ms")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    QUEUE_ID_FIELD_NUMBER: _ClassVar[int]
    RING_MS_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    queue_id: str
    ring_ms: int
    def __init__(self, agent_id: _Optional[str] = ..., queue_id: _Optional[str] = ..., ring_ms: _Optional[int] = ...) -> None: ...

class AgentNoAnswer(_message.Message):
    __slots__ = ("agent_id", "queue_id", "reason", "ring_ms")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    QUEUE_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    RING_MS_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    queue_id: str
    reason: NoAnswerReason
    ring_ms: int
    def __init__(self, agent_id: _Optional[str] = ..., queue_id: _Optional[str] = ..., reason: _Optional[_Union[NoAnswerReason, str]] = ..., ring_ms: _Optional[int] = ...) -> None: ...
