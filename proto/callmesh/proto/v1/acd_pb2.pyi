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
    __slots__ = ("agent_id", "reason", "requested_by", "forced", "endpoint", "skills", "ready")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_BY_FIELD_NUMBER: _ClassVar[int]
    FORCED_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    SKILLS_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    reason: str
    requested_by: str
    forced: bool
    endpoint: str
    skills: _containers.RepeatedCompositeFieldContainer[_agent_pb2.Skill]
    ready: bool
    def __init__(self, agent_id: _Optional[str] = ..., reason: _Optional[str] = ..., requested_by: _Optional[str] = ..., forced: _Optional[bool] = ..., endpoint: _Optional[str] = ..., skills: _Optional[_Iterable[_Union[_agent_pb2.Skill, _Mapping]]] = ..., ready: _Optional[bool] = ...) -> None: ...

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
