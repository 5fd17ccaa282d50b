import datetime

from callmesh.proto.v1 import agent_pb2 as _agent_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AcdErrorCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACD_ERROR_CODE_UNSPECIFIED: _ClassVar[AcdErrorCode]
    ACD_ERROR_CODE_INVALID_ARGUMENT: _ClassVar[AcdErrorCode]
    ACD_ERROR_CODE_UNKNOWN_QUEUE: _ClassVar[AcdErrorCode]
    ACD_ERROR_CODE_UNKNOWN_AGENT: _ClassVar[AcdErrorCode]
    ACD_ERROR_CODE_REFUSED: _ClassVar[AcdErrorCode]
    ACD_ERROR_CODE_QUOTA_EXCEEDED: _ClassVar[AcdErrorCode]
    ACD_ERROR_CODE_OVERFLOWED: _ClassVar[AcdErrorCode]
ACD_ERROR_CODE_UNSPECIFIED: AcdErrorCode
ACD_ERROR_CODE_INVALID_ARGUMENT: AcdErrorCode
ACD_ERROR_CODE_UNKNOWN_QUEUE: AcdErrorCode
ACD_ERROR_CODE_UNKNOWN_AGENT: AcdErrorCode
ACD_ERROR_CODE_REFUSED: AcdErrorCode
ACD_ERROR_CODE_QUOTA_EXCEEDED: AcdErrorCode
ACD_ERROR_CODE_OVERFLOWED: AcdErrorCode

class EnqueueRequest(_message.Message):
    __slots__ = ("call_id", "queue_id", "channel_uuid", "node_id", "caller_number", "called_number", "priority", "language", "data", "enqueued_at", "preferred_agent_id")
    class DataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    QUEUE_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_UUID_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    CALLER_NUMBER_FIELD_NUMBER: _ClassVar[int]
    CALLED_NUMBER_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    ENQUEUED_AT_FIELD_NUMBER: _ClassVar[int]
    PREFERRED_AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    queue_id: str
    channel_uuid: str
    node_id: str
    caller_number: str
    called_number: str
    priority: int
    language: str
    data: _containers.ScalarMap[str, str]
    enqueued_at: _timestamp_pb2.Timestamp
    preferred_agent_id: str
    def __init__(self, call_id: _Optional[str] = ..., queue_id: _Optional[str] = ..., channel_uuid: _Optional[str] = ..., node_id: _Optional[str] = ..., caller_number: _Optional[str] = ..., called_number: _Optional[str] = ..., priority: _Optional[int] = ..., language: _Optional[str] = ..., data: _Optional[_Mapping[str, str]] = ..., enqueued_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., preferred_agent_id: _Optional[str] = ...) -> None: ...

class EnqueueReply(_message.Message):
    __slots__ = ("ok", "error_code", "message", "queue_id", "position", "estimated_wait_s")
    OK_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    QUEUE_ID_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_WAIT_S_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    error_code: AcdErrorCode
    message: str
    queue_id: str
    position: int
    estimated_wait_s: int
    def __init__(self, ok: _Optional[bool] = ..., error_code: _Optional[_Union[AcdErrorCode, str]] = ..., message: _Optional[str] = ..., queue_id: _Optional[str] = ..., position: _Optional[int] = ..., estimated_wait_s: _Optional[int] = ...) -> None: ...

class AgentCommand(_message.Message):
    __slots__ = ("agent_id", "reason", "requested_by", "forced", "endpoint", "skills", "ready", "temporary")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_BY_FIELD_NUMBER: _ClassVar[int]
    FORCED_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    SKILLS_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    TEMPORARY_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    reason: str
    requested_by: str
    forced: bool
    endpoint: str
    skills: _containers.RepeatedCompositeFieldContainer[_agent_pb2.Skill]
    ready: bool
    temporary: bool
    def __init__(self, agent_id: _Optional[str] = ..., reason: _Optional[str] = ..., requested_by: _Optional[str] = ..., forced: _Optional[bool] = ..., endpoint: _Optional[str] = ..., skills: _Optional[_Iterable[_Union[_agent_pb2.Skill, _Mapping]]] = ..., ready: _Optional[bool] = ..., temporary: _Optional[bool] = ...) -> None: ...

class AgentCommandReply(_message.Message):
    __slots__ = ("ok", "error_code", "message", "state", "reason")
    OK_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    error_code: AcdErrorCode
    message: str
    state: _agent_pb2.AgentState
    reason: str
    def __init__(self, ok: _Optional[bool] = ..., error_code: _Optional[_Union[AcdErrorCode, str]] = ..., message: _Optional[str] = ..., state: _Optional[_Union[_agent_pb2.AgentState, str]] = ..., reason: _Optional[str] = ...) -> None: ...

class LiveRequest(_message.Message):
    __slots__ = ("queue_ids", "include_agents", "include_calls")
    QUEUE_IDS_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_AGENTS_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_CALLS_FIELD_NUMBER: _ClassVar[int]
    queue_ids: _containers.RepeatedScalarFieldContainer[str]
    include_agents: bool
    include_calls: bool
    def __init__(self, queue_ids: _Optional[_Iterable[str]] = ..., include_agents: _Optional[bool] = ..., include_calls: _Optional[bool] = ...) -> None: ...

class QueueLive(_message.Message):
    __slots__ = ("queue_id", "waiting", "longest_wait_s", "agents_logged_in", "agents_ready", "agents_busy", "estimated_wait_s", "offered", "answered", "abandoned", "overflowed", "no_answers", "service_level", "open")
    QUEUE_ID_FIELD_NUMBER: _ClassVar[int]
    WAITING_FIELD_NUMBER: _ClassVar[int]
    LONGEST_WAIT_S_FIELD_NUMBER: _ClassVar[int]
    AGENTS_LOGGED_IN_FIELD_NUMBER: _ClassVar[int]
    AGENTS_READY_FIELD_NUMBER: _ClassVar[int]
    AGENTS_BUSY_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_WAIT_S_FIELD_NUMBER: _ClassVar[int]
    OFFERED_FIELD_NUMBER: _ClassVar[int]
    ANSWERED_FIELD_NUMBER: _ClassVar[int]
    ABANDONED_FIELD_NUMBER: _ClassVar[int]
    OVERFLOWED_FIELD_NUMBER: _ClassVar[int]
    NO_ANSWERS_FIELD_NUMBER: _ClassVar[int]
    SERVICE_LEVEL_FIELD_NUMBER: _ClassVar[int]
    OPEN_FIELD_NUMBER: _ClassVar[int]
    queue_id: str
    waiting: int
    longest_wait_s: float
    agents_logged_in: int
    agents_ready: int
    agents_busy: int
    estimated_wait_s: float
    offered: int
    answered: int
    abandoned: int
    overflowed: int
    no_answers: int
    service_level: float
    open: bool
    def __init__(self, queue_id: _Optional[str] = ..., waiting: _Optional[int] = ..., longest_wait_s: _Optional[float] = ..., agents_logged_in: _Optional[int] = ..., agents_ready: _Optional[int] = ..., agents_busy: _Optional[int] = ..., estimated_wait_s: _Optional[float] = ..., offered: _Optional[int] = ..., answered: _Optional[int] = ..., abandoned: _Optional[int] = ..., overflowed: _Optional[int] = ..., no_answers: _Optional[int] = ..., service_level: _Optional[float] = ..., open: _Optional[bool] = ...) -> None: ...

class AgentLive(_message.Message):
    __slots__ = ("agent_id", "state", "reason", "since", "endpoint", "skills", "groups", "call_id", "queue_id", "calls_today", "talk_s_today", "no_answers_today")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    SKILLS_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    QUEUE_ID_FIELD_NUMBER: _ClassVar[int]
    CALLS_TODAY_FIELD_NUMBER: _ClassVar[int]
    TALK_S_TODAY_FIELD_NUMBER: _ClassVar[int]
    NO_ANSWERS_TODAY_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    state: _agent_pb2.AgentState
    reason: str
    since: _timestamp_pb2.Timestamp
    endpoint: str
    skills: _containers.RepeatedCompositeFieldContainer[_agent_pb2.Skill]
    groups: _containers.RepeatedScalarFieldContainer[str]
    call_id: str
    queue_id: str
    calls_today: int
    talk_s_today: float
    no_answers_today: int
    def __init__(self, agent_id: _Optional[str] = ..., state: _Optional[_Union[_agent_pb2.AgentState, str]] = ..., reason: _Optional[str] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., endpoint: _Optional[str] = ..., skills: _Optional[_Iterable[_Union[_agent_pb2.Skill, _Mapping]]] = ..., groups: _Optional[_Iterable[str]] = ..., call_id: _Optional[str] = ..., queue_id: _Optional[str] = ..., calls_today: _Optional[int] = ..., talk_s_today: _Optional[float] = ..., no_answers_today: _Optional[int] = ...) -> None: ...

class WaitingCallLive(_message.Message):
    __slots__ = ("call_id", "queue_id", "position", "priority", "waited_s", "caller_number", "language", "offered_to")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    QUEUE_ID_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    WAITED_S_FIELD_NUMBER: _ClassVar[int]
    CALLER_NUMBER_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    OFFERED_TO_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    queue_id: str
    position: int
    priority: float
    waited_s: float
    caller_number: str
    language: str
    offered_to: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, call_id: _Optional[str] = ..., queue_id: _Optional[str] = ..., position: _Optional[int] = ..., priority: _Optional[float] = ..., waited_s: _Optional[float] = ..., caller_number: _Optional[str] = ..., language: _Optional[str] = ..., offered_to: _Optional[_Iterable[str]] = ...) -> None: ...

class LiveReply(_message.Message):
    __slots__ = ("queues", "agents", "calls", "owner", "fencing_token")
    QUEUES_FIELD_NUMBER: _ClassVar[int]
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    CALLS_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    FENCING_TOKEN_FIELD_NUMBER: _ClassVar[int]
    queues: _containers.RepeatedCompositeFieldContainer[QueueLive]
    agents: _containers.RepeatedCompositeFieldContainer[AgentLive]
    calls: _containers.RepeatedCompositeFieldContainer[WaitingCallLive]
    owner: str
    fencing_token: int
    def __init__(self, queues: _Optional[_Iterable[_Union[QueueLive, _Mapping]]] = ..., agents: _Optional[_Iterable[_Union[AgentLive, _Mapping]]] = ..., calls: _Optional[_Iterable[_Union[WaitingCallLive, _Mapping]]] = ..., owner: _Optional[str] = ..., fencing_token: _Optional[int] = ...) -> None: ...

class ConfigChanged(_message.Message):
    __slots__ = ("kinds",)
    KINDS_FIELD_NUMBER: _ClassVar[int]
    kinds: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, kinds: _Optional[_Iterable[str]] = ...) -> None: ...

class ConfigChangedReply(_message.Message):
    __slots__ = ("applied",)
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    applied: bool
    def __init__(self, applied: _Optional[bool] = ...) -> None: ...
