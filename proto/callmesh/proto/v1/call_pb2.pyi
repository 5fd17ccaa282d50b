from callmesh.proto.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TransferKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRANSFER_KIND_UNSPECIFIED: _ClassVar[TransferKind]
    TRANSFER_KIND_BLIND: _ClassVar[TransferKind]
    TRANSFER_KIND_ATTENDED: _ClassVar[TransferKind]

class DtmfSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DTMF_SOURCE_UNSPECIFIED: _ClassVar[DtmfSource]
    DTMF_SOURCE_RTP: _ClassVar[DtmfSource]
    DTMF_SOURCE_INBAND: _ClassVar[DtmfSource]
    DTMF_SOURCE_INFO: _ClassVar[DtmfSource]
    DTMF_SOURCE_APP: _ClassVar[DtmfSource]

class HangupSide(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HANGUP_SIDE_UNSPECIFIED: _ClassVar[HangupSide]
    HANGUP_SIDE_CALLER: _ClassVar[HangupSide]
    HANGUP_SIDE_CALLEE: _ClassVar[HangupSide]
    HANGUP_SIDE_AGENT: _ClassVar[HangupSide]
    HANGUP_SIDE_SUPERVISOR: _ClassVar[HangupSide]
    HANGUP_SIDE_SYSTEM: _ClassVar[HangupSide]
TRANSFER_KIND_UNSPECIFIED: TransferKind
TRANSFER_KIND_BLIND: TransferKind
TRANSFER_KIND_ATTENDED: TransferKind
DTMF_SOURCE_UNSPECIFIED: DtmfSource
DTMF_SOURCE_RTP: DtmfSource
DTMF_SOURCE_INBAND: DtmfSource
DTMF_SOURCE_INFO: DtmfSource
DTMF_SOURCE_APP: DtmfSource
HANGUP_SIDE_UNSPECIFIED: HangupSide
HANGUP_SIDE_CALLER: HangupSide
HANGUP_SIDE_CALLEE: HangupSide
HANGUP_SIDE_AGENT: HangupSide
HANGUP_SIDE_SUPERVISOR: HangupSide
HANGUP_SIDE_SYSTEM: HangupSide

class CallCreated(_message.Message):
    __slots__ = ("channel_uuid", "direction", "caller", "callee", "destination_number", "media_channel", "role", "variables")
    class VariablesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CHANNEL_UUID_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    CALLER_FIELD_NUMBER: _ClassVar[int]
    CALLEE_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_NUMBER_FIELD_NUMBER: _ClassVar[int]
    MEDIA_CHANNEL_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    channel_uuid: str
    direction: _common_pb2.CallDirection
    caller: _common_pb2.Party
    callee: _common_pb2.Party
    destination_number: str
    media_channel: _common_pb2.MediaChannel
    role: _common_pb2.LegRole
    variables: _containers.ScalarMap[str, str]
    def __init__(self, channel_uuid: _Optional[str] = ..., direction: _Optional[_Union[_common_pb2.CallDirection, str]] = ..., caller: _Optional[_Union[_common_pb2.Party, _Mapping]] = ..., callee: _Optional[_Union[_common_pb2.Party, _Mapping]] = ..., destination_number: _Optional[str] = ..., media_channel: _Optional[_Union[_common_pb2.MediaChannel, str]] = ..., role: _Optional[_Union[_common_pb2.LegRole, str]] = ..., variables: _Optional[_Mapping[str, str]] = ...) -> None: ...

class CallRinging(_message.Message):
    __slots__ = ("channel_uuid", "early_media")
    CHANNEL_UUID_FIELD_NUMBER: _ClassVar[int]
    EARLY_MEDIA_FIELD_NUMBER: _ClassVar[int]
    channel_uuid: str
    early_media: bool
    def __init__(self, channel_uuid: _Optional[str] = ..., early_media: _Optional[bool] = ...) -> None: ...

class CallAnswered(_message.Message):
    __slots__ = ("channel_uuid", "role")
    CHANNEL_UUID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    channel_uuid: str
    role: _common_pb2.LegRole
    def __init__(self, channel_uuid: _Optional[str] = ..., role: _Optional[_Union[_common_pb2.LegRole, str]] = ...) -> None: ...

class CallBridged(_message.Message):
    __slots__ = ("a_channel_uuid", "b_channel_uuid")
    A_CHANNEL_UUID_FIELD_NUMBER: _ClassVar[int]
    B_CHANNEL_UUID_FIELD_NUMBER: _ClassVar[int]
    a_channel_uuid: str
    b_channel_uuid: str
    def __init__(self, a_channel_uuid: _Optional[str] = ..., b_channel_uuid: _Optional[str] = ...) -> None: ...

class CallUnbridged(_message.Message):
    __slots__ = ("a_channel_uuid", "b_channel_uuid")
    A_CHANNEL_UUID_FIELD_NUMBER: _ClassVar[int]
    B_CHANNEL_UUID_FIELD_NUMBER: _ClassVar[int]
    a_channel_uuid: str
    b_channel_uuid: str
    def __init__(self, a_channel_uuid: _Optional[str] = ..., b_channel_uuid: _Optional[str] = ...) -> None: ...

class CallHeld(_message.Message):
    __slots__ = ("channel_uuid",)
    CHANNEL_UUID_FIELD_NUMBER: _ClassVar[int]
    channel_uuid: str
    def __init__(self, channel_uuid: _Optional[str] = ...) -> None: ...

class CallUnheld(_message.Message):
    __slots__ = ("channel_uuid",)
    CHANNEL_UUID_FIELD_NUMBER: _ClassVar[int]
    channel_uuid: str
    def __init__(self, channel_uuid: _Optional[str] = ...) -> None: ...

class CallTransferred(_message.Message):
    __slots__ = ("channel_uuid", "kind", "destination", "dialplan", "context", "target_kind", "target_id")
    CHANNEL_UUID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    DIALPLAN_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    TARGET_KIND_FIELD_NUMBER: _ClassVar[int]
    TARGET_ID_FIELD_NUMBER: _ClassVar[int]
    channel_uuid: str
    kind: TransferKind
    destination: str
    dialplan: str
    context: str
    target_kind: str
    target_id: str
    def __init__(self, channel_uuid: _Optional[str] = ..., kind: _Optional[_Union[TransferKind, str]] = ..., destination: _Optional[str] = ..., dialplan: _Optional[str] = ..., context: _Optional[str] = ..., target_kind: _Optional[str] = ..., target_id: _Optional[str] = ...) -> None: ...

class CallDtmf(_message.Message):
    __slots__ = ("channel_uuid", "digit", "duration_ms", "source")
    CHANNEL_UUID_FIELD_NUMBER: _ClassVar[int]
    DIGIT_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    channel_uuid: str
    digit: str
    duration_ms: int
    source: DtmfSource
    def __init__(self, channel_uuid: _Optional[str] = ..., digit: _Optional[str] = ..., duration_ms: _Optional[int] = ..., source: _Optional[_Union[DtmfSource, str]] = ...) -> None: ...

class RecordingStarted(_message.Message):
    __slots__ = ("channel_uuid", "recording_id", "path")
    CHANNEL_UUID_FIELD_NUMBER: _ClassVar[int]
    RECORDING_ID_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    channel_uuid: str
    recording_id: str
    path: str
    def __init__(self, channel_uuid: _Optional[str] = ..., recording_id: _Optional[str] = ..., path: _Optional[str] = ...) -> None: ...

class RecordingStopped(_message.Message):
    __slots__ = ("channel_uuid", "recording_id", "path", "media_id", "duration_ms", "size_bytes", "completion_cause")
    CHANNEL_UUID_FIELD_NUMBER: _ClassVar[int]
    RECORDING_ID_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    MEDIA_ID_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_CAUSE_FIELD_NUMBER: _ClassVar[int]
    channel_uuid: str
    recording_id: str
    path: str
    media_id: str
    duration_ms: int
    size_bytes: int
    completion_cause: str
    def __init__(self, channel_uuid: _Optional[str] = ..., recording_id: _Optional[str] = ..., path: _Optional[str] = ..., media_id: _Optional[str] = ..., duration_ms: _Optional[int] = ..., size_bytes: _Optional[int] = ..., completion_cause: _Optional[str] = ...) -> None: ...

class CallHungUp(_message.Message):
    __slots__ = ("channel_uuid", "cause", "q850_code", "side", "duration_ms", "billsec_ms", "role")
    CHANNEL_UUID_FIELD_NUMBER: _ClassVar[int]
    CAUSE_FIELD_NUMBER: _ClassVar[int]
    Q850_CODE_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    BILLSEC_MS_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    channel_uuid: str
    cause: str
    q850_code: int
    side: HangupSide
    duration_ms: int
    billsec_ms: int
    role: _common_pb2.LegRole
    def __init__(self, channel_uuid: _Optional[str] = ..., cause: _Optional[str] = ..., q850_code: _Optional[int] = ..., side: _Optional[_Union[HangupSide, str]] = ..., duration_ms: _Optional[int] = ..., billsec_ms: _Optional[int] = ..., role: _Optional[_Union[_common_pb2.LegRole, str]] = ...) -> None: ...
