from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class MediaChannel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MEDIA_CHANNEL_UNSPECIFIED: _ClassVar[MediaChannel]
    MEDIA_CHANNEL_PSTN: _ClassVar[MediaChannel]
    MEDIA_CHANNEL_SIP: _ClassVar[MediaChannel]
    MEDIA_CHANNEL_WEB: _ClassVar[MediaChannel]

class CallDirection(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CALL_DIRECTION_UNSPECIFIED: _ClassVar[CallDirection]
    CALL_DIRECTION_INBOUND: _ClassVar[CallDirection]
    CALL_DIRECTION_OUTBOUND: _ClassVar[CallDirection]
    CALL_DIRECTION_INTERNAL: _ClassVar[CallDirection]

class LegRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LEG_ROLE_UNSPECIFIED: _ClassVar[LegRole]
    LEG_ROLE_CUSTOMER: _ClassVar[LegRole]
    LEG_ROLE_AGENT: _ClassVar[LegRole]
    LEG_ROLE_SUPERVISOR: _ClassVar[LegRole]
    LEG_ROLE_EXTERNAL: _ClassVar[LegRole]
    LEG_ROLE_IVR: _ClassVar[LegRole]
MEDIA_CHANNEL_UNSPECIFIED: MediaChannel
MEDIA_CHANNEL_PSTN: MediaChannel
MEDIA_CHANNEL_SIP: MediaChannel
MEDIA_CHANNEL_WEB: MediaChannel
CALL_DIRECTION_UNSPECIFIED: CallDirection
CALL_DIRECTION_INBOUND: CallDirection
CALL_DIRECTION_OUTBOUND: CallDirection
CALL_DIRECTION_INTERNAL: CallDirection
LEG_ROLE_UNSPECIFIED: LegRole
LEG_ROLE_CUSTOMER: LegRole
LEG_ROLE_AGENT: LegRole
LEG_ROLE_SUPERVISOR: LegRole
LEG_ROLE_EXTERNAL: LegRole
LEG_ROLE_IVR: LegRole

class Source(_message.Message):
    __slots__ = ("node_id", "service", "instance", "site")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_FIELD_NUMBER: _ClassVar[int]
    SITE_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    service: str
    instance: str
    site: str
    def __init__(self, node_id: _Optional[str] = ..., service: _Optional[str] = ..., instance: _Optional[str] = ..., site: _Optional[str] = ...) -> None: ...

class Party(_message.Message):
    __slots__ = ("number", "name")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    number: str
    name: str
    def __init__(self, number: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...
