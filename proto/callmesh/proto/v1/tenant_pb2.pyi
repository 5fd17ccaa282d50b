import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TenantCreated(_message.Message):
    __slots__ = ("slug", "name", "language", "time_zone")
    SLUG_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    slug: str
    name: str
    language: str
    time_zone: str
    def __init__(self, slug: _Optional[str] = ..., name: _Optional[str] = ..., language: _Optional[str] = ..., time_zone: _Optional[str] = ...) -> None: ...

class TenantUpdated(_message.Message):
    __slots__ = ("changed_fields", "name", "language", "time_zone")
    CHANGED_FIELDS_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    changed_fields: _containers.RepeatedScalarFieldContainer[str]
    name: str
    language: str
    time_zone: str
    def __init__(self, changed_fields: _Optional[_Iterable[str]] = ..., name: _Optional[str] = ..., language: _Optional[str] = ..., time_zone: _Optional[str] = ...) -> None: ...

class TenantSuspended(_message.Message):
    __slots__ = ("reason", "by")
    REASON_FIELD_NUMBER: _ClassVar[int]
    BY_FIELD_NUMBER: _ClassVar[int]
    reason: str
    by: str
    def __init__(self, reason: _Optional[str] = ..., by: _Optional[str] = ...) -> None: ...

class TenantResumed(_message.Message):
    __slots__ = ("by",)
    BY_FIELD_NUMBER: _ClassVar[int]
    by: str
    def __init__(self, by: _Optional[str] = ...) -> None: ...

class TenantDeleted(_message.Message):
    __slots__ = ("by", "purge_after")
    BY_FIELD_NUMBER: _ClassVar[int]
    PURGE_AFTER_FIELD_NUMBER: _ClassVar[int]
    by: str
    purge_after: _timestamp_pb2.Timestamp
    def __init__(self, by: _Optional[str] = ..., purge_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class TenantRestored(_message.Message):
    __slots__ = ("by",)
    BY_FIELD_NUMBER: _ClassVar[int]
    by: str
    def __init__(self, by: _Optional[str] = ...) -> None: ...

class TenantNumbersChanged(_message.Message):
    __slots__ = ("added", "removed")
    ADDED_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    added: _containers.RepeatedScalarFieldContainer[str]
    removed: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, added: _Optional[_Iterable[str]] = ..., removed: _Optional[_Iterable[str]] = ...) -> None: ...

class TenantDirectoryChanged(_message.Message):
    __slots__ = ("usernames",)
    USERNAMES_FIELD_NUMBER: _ClassVar[int]
    usernames: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, usernames: _Optional[_Iterable[str]] = ...) -> None: ...

class TenantCalendarsChanged(_message.Message):
    __slots__ = ("calendar_ids",)
    CALENDAR_IDS_FIELD_NUMBER: _ClassVar[int]
    calendar_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, calendar_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class TenantQuotaExceeded(_message.Message):
    __slots__ = ("kind", "limit", "used", "requested", "service")
    KIND_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    USED_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    kind: str
    limit: int
    used: int
    requested: int
    service: str
    def __init__(self, kind: _Optional[str] = ..., limit: _Optional[int] = ..., used: _Optional[int] = ..., requested: _Optional[int] = ..., service: _Optional[str] = ...) -> None: ...
