from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class IvrInputKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    IVR_INPUT_KIND_UNSPECIFIED: _ClassVar[IvrInputKind]
    IVR_INPUT_KIND_DTMF: _ClassVar[IvrInputKind]
    IVR_INPUT_KIND_TIMEOUT: _ClassVar[IvrInputKind]
    IVR_INPUT_KIND_INVALID: _ClassVar[IvrInputKind]
    IVR_INPUT_KIND_SPEECH: _ClassVar[IvrInputKind]

class IvrOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    IVR_OUTCOME_UNSPECIFIED: _ClassVar[IvrOutcome]
    IVR_OUTCOME_QUEUED: _ClassVar[IvrOutcome]
    IVR_OUTCOME_TRANSFERRED: _ClassVar[IvrOutcome]
    IVR_OUTCOME_CALLER_HUNG_UP: _ClassVar[IvrOutcome]
    IVR_OUTCOME_COMPLETED: _ClassVar[IvrOutcome]
    IVR_OUTCOME_VOICEMAIL: _ClassVar[IvrOutcome]
    IVR_OUTCOME_BLOCKED: _ClassVar[IvrOutcome]
    IVR_OUTCOME_ERROR: _ClassVar[IvrOutcome]
IVR_INPUT_KIND_UNSPECIFIED: IvrInputKind
IVR_INPUT_KIND_DTMF: IvrInputKind
IVR_INPUT_KIND_TIMEOUT: IvrInputKind
IVR_INPUT_KIND_INVALID: IvrInputKind
IVR_INPUT_KIND_SPEECH: IvrInputKind
IVR_OUTCOME_UNSPECIFIED: IvrOutcome
IVR_OUTCOME_QUEUED: IvrOutcome
IVR_OUTCOME_TRANSFERRED: IvrOutcome
IVR_OUTCOME_CALLER_HUNG_UP: IvrOutcome
IVR_OUTCOME_COMPLETED: IvrOutcome
IVR_OUTCOME_VOICEMAIL: IvrOutcome
IVR_OUTCOME_BLOCKED: IvrOutcome
IVR_OUTCOME_ERROR: IvrOutcome

class IvrNodeEntered(_message.Message):
    __slots__ = ("flow_id", "flow_version", "node_id", "node_type")
    FLOW_ID_FIELD_NUMBER: _ClassVar[int]
    FLOW_VERSION_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_TYPE_FIELD_NUMBER: _ClassVar[int]
    flow_id: str
    flow_version: int
    node_id: str
    node_type: str
    def __init__(self, flow_id: _Optional[str] = ..., flow_version: _Optional[int] = ..., node_id: _Optional[str] = ..., node_type: _Optional[str] = ...) -> None: ...

class IvrInputReceived(_message.Message):
    __slots__ = ("flow_id", "node_id", "input", "kind", "attempt")
    FLOW_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    flow_id: str
    node_id: str
    input: str
    kind: IvrInputKind
    attempt: int
    def __init__(self, flow_id: _Optional[str] = ..., node_id: _Optional[str] = ..., input: _Optional[str] = ..., kind: _Optional[_Union[IvrInputKind, str]] = ..., attempt: _Optional[int] = ...) -> None: ...

class IvrVariableSet(_message.Message):
    __slots__ = ("flow_id", "node_id", "name", "value", "previous")
    FLOW_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    flow_id: str
    node_id: str
    name: str
    value: str
    previous: str
    def __init__(self, flow_id: _Optional[str] = ..., node_id: _Optional[str] = ..., name: _Optional[str] = ..., value: _Optional[str] = ..., previous: _Optional[str] = ...) -> None: ...

class IvrFlowLeft(_message.Message):
    __slots__ = ("flow_id", "flow_version", "outcome", "detail", "duration_ms", "last_node_id")
    FLOW_ID_FIELD_NUMBER: _ClassVar[int]
    FLOW_VERSION_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    LAST_NODE_ID_FIELD_NUMBER: _ClassVar[int]
    flow_id: str
    flow_version: int
    outcome: IvrOutcome
    detail: str
    duration_ms: int
    last_node_id: str
    def __init__(self, flow_id: _Optional[str] = ..., flow_version: _Optional[int] = ..., outcome: _Optional[_Union[IvrOutcome, str]] = ..., detail: _Optional[str] = ..., duration_ms: _Optional[int] = ..., last_node_id: _Optional[str] = ...) -> None: ...

class IvrHttpCalled(_message.Message):
    __slots__ = ("flow_id", "node_id", "method", "url", "status", "error", "duration_ms")
    FLOW_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    flow_id: str
    node_id: str
    method: str
    url: str
    status: int
    error: str
    duration_ms: int
    def __init__(self, flow_id: _Optional[str] = ..., node_id: _Optional[str] = ..., method: _Optional[str] = ..., url: _Optional[str] = ..., status: _Optional[int] = ..., error: _Optional[str] = ..., duration_ms: _Optional[int] = ...) -> None: ...

class IvrVoicemailLeft(_message.Message):
    __slots__ = ("voicemail_id", "mailbox", "caller_number", "flow_id", "node_id", "duration_ms", "media_id")
    VOICEMAIL_ID_FIELD_NUMBER: _ClassVar[int]
    MAILBOX_FIELD_NUMBER: _ClassVar[int]
    CALLER_NUMBER_FIELD_NUMBER: _ClassVar[int]
    FLOW_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    MEDIA_ID_FIELD_NUMBER: _ClassVar[int]
    voicemail_id: str
    mailbox: str
    caller_number: str
    flow_id: str
    node_id: str
    duration_ms: int
    media_id: str
    def __init__(self, voicemail_id: _Optional[str] = ..., mailbox: _Optional[str] = ..., caller_number: _Optional[str] = ..., flow_id: _Optional[str] = ..., node_id: _Optional[str] = ..., duration_ms: _Optional[int] = ..., media_id: _Optional[str] = ...) -> None: ...

class IvrFlowPublished(_message.Message):
    __slots__ = ("flow_id", "version", "published_by", "rollback")
    FLOW_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_BY_FIELD_NUMBER: _ClassVar[int]
    ROLLBACK_FIELD_NUMBER: _ClassVar[int]
    flow_id: str
    version: int
    published_by: str
    rollback: bool
    def __init__(self, flow_id: _Optional[str] = ..., version: _Optional[int] = ..., published_by: _Optional[str] = ..., rollback: _Optional[bool] = ...) -> None: ...

class IvrBlacklistHit(_message.Message):
    __slots__ = ("entry_id", "caller_number", "flow_id", "node_id")
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    CALLER_NUMBER_FIELD_NUMBER: _ClassVar[int]
    FLOW_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    entry_id: str
    caller_number: str
    flow_id: str
    node_id: str
    def __init__(self, entry_id: _Optional[str] = ..., caller_number: _Optional[str] = ..., flow_id: _Optional[str] = ..., node_id: _Optional[str] = ...) -> None: ...
