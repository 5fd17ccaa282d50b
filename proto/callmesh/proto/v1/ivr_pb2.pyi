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
