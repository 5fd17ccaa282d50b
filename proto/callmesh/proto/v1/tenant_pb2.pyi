from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional

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
