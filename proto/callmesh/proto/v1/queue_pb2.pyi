import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class QueueLeaveReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    QUEUE_LEAVE_REASON_UNSPECIFIED: _ClassVar[QueueLeaveReason]
    QUEUE_LEAVE_REASON_ANSWERED: _ClassVar[QueueLeaveReason]
    QUEUE_LEAVE_REASON_ABANDONED: _ClassVar[QueueLeaveReason]
    QUEUE_LEAVE_REASON_OVERFLOWED: _ClassVar[QueueLeaveReason]
    QUEUE_LEAVE_REASON_TIMEOUT: _ClassVar[QueueLeaveReason]
    QUEUE_LEAVE_REASON_TRANSFERRED: _ClassVar[QueueLeaveReason]
    QUEUE_LEAVE_REASON_REJECTED: _ClassVar[QueueLeaveReason]
    QUEUE_LEAVE_REASON_ERROR: _ClassVar[QueueLeaveReason]

class OverflowReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OVERFLOW_REASON_UNSPECIFIED: _ClassVar[OverflowReason]
    OVERFLOW_REASON_MAX_WAIT: _ClassVar[OverflowReason]
    OVERFLOW_REASON_MAX_LENGTH: _ClassVar[OverflowReason]
    OVERFLOW_REASON_NO_AGENTS_LOGGED_IN: _ClassVar[OverflowReason]
    OVERFLOW_REASON_NO_AGENTS_READY: _ClassVar[OverflowReason]
    OVERFLOW_REASON_CLOSED: _ClassVar[OverflowReason]

class OverflowTarget(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OVERFLOW_TARGET_UNSPECIFIED: _ClassVar[OverflowTarget]
    OVERFLOW_TARGET_QUEUE: _ClassVar[OverflowTarget]
    OVERFLOW_TARGET_IVR_FLOW: _ClassVar[OverflowTarget]
    OVERFLOW_TARGET_VOICEMAIL: _ClassVar[OverflowTarget]
    OVERFLOW_TARGET_ANNOUNCEMENT: _ClassVar[OverflowTarget]
QUEUE_LEAVE_REASON_UNSPECIFIED: QueueLeaveReason
QUEUE_LEAVE_REASON_ANSWERED: QueueLeaveReason
QUEUE_LEAVE_REASON_ABANDONED: QueueLeaveReason
QUEUE_LEAVE_REASON_OVERFLOWED: QueueLeaveReason
QUEUE_LEAVE_REASON_TIMEOUT: QueueLeaveReason
QUEUE_LEAVE_REASON_TRANSFERRED: QueueLeaveReason
QUEUE_LEAVE_REASON_REJECTED: QueueLeaveReason
QUEUE_LEAVE_REASON_ERROR: QueueLeaveReason
OVERFLOW_REASON_UNSPECIFIED: OverflowReason
OVERFLOW_REASON_MAX_WAIT: OverflowReason
OVERFLOW_REASON_MAX_LENGTH: OverflowReason
OVERFLOW_REASON_NO_AGENTS_LOGGED_IN: OverflowReason
OVERFLOW_REASON_NO_AGENTS_READY: OverflowReason
OVERFLOW_REASON_CLOSED: OverflowReason
OVERFLOW_TARGET_UNSPECIFIED: OverflowTarget
OVERFLOW_TARGET_QUEUE: OverflowTarget
OVERFLOW_TARGET_IVR_FLOW: OverflowTarget
OVERFLOW_TARGET_VOICEMAIL: OverflowTarget
OVERFLOW_TARGET_ANNOUNCEMENT: OverflowTarget

class QueueEntered(_message.Message):
    __slots__ = ("queue_id", "priority", "position", "enqueued_at", "data")
    class DataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    QUEUE_ID_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    ENQUEUED_AT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    queue_id: str
    priority: int
    position: int
    enqueued_at: _timestamp_pb2.Timestamp
    data: _containers.ScalarMap[str, str]
    def __init__(self, queue_id: _Optional[str] = ..., priority: _Optional[int] = ..., position: _Optional[int] = ..., enqueued_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., data: _Optional[_Mapping[str, str]] = ...) -> None: ...

class QueuePositionChanged(_message.Message):
    __slots__ = ("queue_id", "position", "estimated_wait_s")
    QUEUE_ID_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_WAIT_S_FIELD_NUMBER: _ClassVar[int]
    queue_id: str
    position: int
    estimated_wait_s: int
    def __init__(self, queue_id: _Optional[str] = ..., position: _Optional[int] = ..., estimated_wait_s: _Optional[int] = ...) -> None: ...

class QueueLeft(_message.Message):
    __slots__ = ("queue_id", "reason", "wait_ms", "agent_id")
    QUEUE_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    WAIT_MS_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    queue_id: str
    reason: QueueLeaveReason
    wait_ms: int
    agent_id: str
    def __init__(self, queue_id: _Optional[str] = ..., reason: _Optional[_Union[QueueLeaveReason, str]] = ..., wait_ms: _Optional[int] = ..., agent_id: _Optional[str] = ...) -> None: ...

class QueueOverflowed(_message.Message):
    __slots__ = ("queue_id", "reason", "target", "target_id", "wait_ms")
    QUEUE_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    TARGET_ID_FIELD_NUMBER: _ClassVar[int]
    WAIT_MS_FIELD_NUMBER: _ClassVar[int]
    queue_id: str
    reason: OverflowReason
    target: OverflowTarget
    target_id: str
    wait_ms: int
    def __init__(self, queue_id: _Optional[str] = ..., reason: _Optional[_Union[OverflowReason, str]] = ..., target: _Optional[_Union[OverflowTarget, str]] = ..., target_id: _Optional[str] = ..., wait_ms: _Optional[int] = ...) -> None: ...
