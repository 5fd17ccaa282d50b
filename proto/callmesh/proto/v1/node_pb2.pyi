from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class NodeHeartbeat(_message.Message):
    __slots__ = ("node_id", "site", "version", "esl_connected", "channels", "calls", "uptime_s")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    SITE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ESL_CONNECTED_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    CALLS_FIELD_NUMBER: _ClassVar[int]
    UPTIME_S_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    site: str
    version: str
    esl_connected: bool
    channels: int
    calls: int
    uptime_s: int
    def __init__(self, node_id: _Optional[str] = ..., site: _Optional[str] = ..., version: _Optional[str] = ..., esl_connected: _Optional[bool] = ..., channels: _Optional[int] = ..., calls: _Optional[int] = ..., uptime_s: _Optional[int] = ...) -> None: ...

class NodeUp(_message.Message):
    __slots__ = ("node_id", "site", "version", "esl_endpoint")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    SITE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ESL_ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    site: str
    version: str
    esl_endpoint: str
    def __init__(self, node_id: _Optional[str] = ..., site: _Optional[str] = ..., version: _Optional[str] = ..., esl_endpoint: _Optional[str] = ...) -> None: ...

class NodeDown(_message.Message):
    __slots__ = ("node_id", "site", "reason")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    SITE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    site: str
    reason: str
    def __init__(self, node_id: _Optional[str] = ..., site: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...
