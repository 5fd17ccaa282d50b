import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class NumberLookup(_message.Message):
    __slots__ = ("number",)
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    number: str
    def __init__(self, number: _Optional[str] = ...) -> None: ...

class NumberLookupReply(_message.Message):
    __slots__ = ("found", "number", "tenant_id", "tenant_status", "language", "time_zone")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_STATUS_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    found: bool
    number: str
    tenant_id: str
    tenant_status: str
    language: str
    time_zone: str
    def __init__(self, found: _Optional[bool] = ..., number: _Optional[str] = ..., tenant_id: _Optional[str] = ..., tenant_status: _Optional[str] = ..., language: _Optional[str] = ..., time_zone: _Optional[str] = ...) -> None: ...

class DirectoryLookup(_message.Message):
    __slots__ = ("domain", "username")
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    domain: str
    username: str
    def __init__(self, domain: _Optional[str] = ..., username: _Optional[str] = ...) -> None: ...

class DirectoryLookupReply(_message.Message):
    __slots__ = ("found", "tenant_id", "username", "a1_hash", "user_id", "display_name", "site_id", "kind")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    A1_HASH_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    found: bool
    tenant_id: str
    username: str
    a1_hash: str
    user_id: str
    display_name: str
    site_id: str
    kind: str
    def __init__(self, found: _Optional[bool] = ..., tenant_id: _Optional[str] = ..., username: _Optional[str] = ..., a1_hash: _Optional[str] = ..., user_id: _Optional[str] = ..., display_name: _Optional[str] = ..., site_id: _Optional[str] = ..., kind: _Optional[str] = ...) -> None: ...

class CalendarStateRequest(_message.Message):
    __slots__ = ("calendar_id", "at")
    CALENDAR_ID_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    calendar_id: str
    at: _timestamp_pb2.Timestamp
    def __init__(self, calendar_id: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CalendarStateReply(_message.Message):
    __slots__ = ("found", "open", "reason", "next_change", "time_zone")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    OPEN_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    NEXT_CHANGE_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    found: bool
    open: bool
    reason: str
    next_change: _timestamp_pb2.Timestamp
    time_zone: str
    def __init__(self, found: _Optional[bool] = ..., open: _Optional[bool] = ..., reason: _Optional[str] = ..., next_change: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., time_zone: _Optional[str] = ...) -> None: ...
