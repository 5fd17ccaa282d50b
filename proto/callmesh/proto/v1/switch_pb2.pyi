from callmesh.proto.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TransferLeg(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRANSFER_LEG_UNSPECIFIED: _ClassVar[TransferLeg]
    TRANSFER_LEG_A: _ClassVar[TransferLeg]
    TRANSFER_LEG_B: _ClassVar[TransferLeg]
    TRANSFER_LEG_BOTH: _ClassVar[TransferLeg]

class BroadcastLeg(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BROADCAST_LEG_UNSPECIFIED: _ClassVar[BroadcastLeg]
    BROADCAST_LEG_A: _ClassVar[BroadcastLeg]
    BROADCAST_LEG_B: _ClassVar[BroadcastLeg]
    BROADCAST_LEG_BOTH: _ClassVar[BroadcastLeg]

class EavesdropMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EAVESDROP_MODE_UNSPECIFIED: _ClassVar[EavesdropMode]
    EAVESDROP_MODE_LISTEN: _ClassVar[EavesdropMode]
    EAVESDROP_MODE_WHISPER: _ClassVar[EavesdropMode]
    EAVESDROP_MODE_BARGE: _ClassVar[EavesdropMode]

class SwitchErrorCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SWITCH_ERROR_CODE_UNSPECIFIED: _ClassVar[SwitchErrorCode]
    SWITCH_ERROR_CODE_STALE_FENCING_TOKEN: _ClassVar[SwitchErrorCode]
    SWITCH_ERROR_CODE_TIMEOUT: _ClassVar[SwitchErrorCode]
    SWITCH_ERROR_CODE_NO_SUCH_CHANNEL: _ClassVar[SwitchErrorCode]
    SWITCH_ERROR_CODE_INVALID_ARGUMENT: _ClassVar[SwitchErrorCode]
    SWITCH_ERROR_CODE_SWITCH_ERROR: _ClassVar[SwitchErrorCode]
    SWITCH_ERROR_CODE_NOT_CONNECTED: _ClassVar[SwitchErrorCode]
TRANSFER_LEG_UNSPECIFIED: TransferLeg
TRANSFER_LEG_A: TransferLeg
TRANSFER_LEG_B: TransferLeg
TRANSFER_LEG_BOTH: TransferLeg
BROADCAST_LEG_UNSPECIFIED: BroadcastLeg
BROADCAST_LEG_A: BroadcastLeg
BROADCAST_LEG_B: BroadcastLeg
BROADCAST_LEG_BOTH: BroadcastLeg
EAVESDROP_MODE_UNSPECIFIED: EavesdropMode
EAVESDROP_MODE_LISTEN: EavesdropMode
EAVESDROP_MODE_WHISPER: EavesdropMode
EAVESDROP_MODE_BARGE: EavesdropMode
SWITCH_ERROR_CODE_UNSPECIFIED: SwitchErrorCode
SWITCH_ERROR_CODE_STALE_FENCING_TOKEN: SwitchErrorCode
SWITCH_ERROR_CODE_TIMEOUT: SwitchErrorCode
SWITCH_ERROR_CODE_NO_SUCH_CHANNEL: SwitchErrorCode
SWITCH_ERROR_CODE_INVALID_ARGUMENT: SwitchErrorCode
SWITCH_ERROR_CODE_SWITCH_ERROR: SwitchErrorCode
SWITCH_ERROR_CODE_NOT_CONNECTED: SwitchErrorCode

class Endpoint(_message.Message):
    __slots__ = ("user", "gateway", "node", "dial_string")
    USER_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    DIAL_STRING_FIELD_NUMBER: _ClassVar[int]
    user: str
    gateway: GatewayDial
    node: NodeDial
    dial_string: str
    def __init__(self, user: _Optional[str] = ..., gateway: _Optional[_Union[GatewayDial, _Mapping]] = ..., node: _Optional[_Union[NodeDial, _Mapping]] = ..., dial_string: _Optional[str] = ...) -> None: ...

class GatewayDial(_message.Message):
    __slots__ = ("gateway", "number")
    GATEWAY_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    gateway: str
    number: str
    def __init__(self, gateway: _Optional[str] = ..., number: _Optional[str] = ...) -> None: ...

class NodeDial(_message.Message):
    __slots__ = ("node_id", "number")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    number: str
    def __init__(self, node_id: _Optional[str] = ..., number: _Optional[str] = ...) -> None: ...

class Originate(_message.Message):
    __slots__ = ("channel_uuid", "endpoint", "caller_id", "answer_timeout_s", "variables", "application", "application_args")
    class VariablesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CHANNEL_UUID_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    CALLER_ID_FIELD_NUMBER: _ClassVar[int]
    ANSWER_TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_ARGS_FIELD_NUMBER: _ClassVar[int]
    channel_uuid: str
    endpoint: Endpoint
    caller_id: _common_pb2.Party
    answer_timeout_s: int
    variables: _containers.ScalarMap[str, str]
    application: str
    application_args: str
    def __init__(self, channel_uuid: _Optional[str] = ..., endpoint: _Optional[_Union[Endpoint, _Mapping]] = ..., caller_id: _Optional[_Union[_common_pb2.Party, _Mapping]] = ..., answer_timeout_s: _Optional[int] = ..., variables: _Optional[_Mapping[str, str]] = ..., application: _Optional[str] = ..., application_args: _Optional[str] = ...) -> None: ...

class Bridge(_message.Message):
    __slots__ = ("a_channel_uuid", "b_channel_uuid")
    A_CHANNEL_UUID_FIELD_NUMBER: _ClassVar[int]
    B_CHANNEL_UUID_FIELD_NUMBER: _ClassVar[int]
    a_channel_uuid: str
    b_channel_uuid: str
    def __init__(self, a_channel_uuid: _Optional[str] = ..., b_channel_uuid: _Optional[str] = ...) -> None: ...

class Transfer(_message.Message):
    __slots__ = ("channel_uuid", "destination", "dialplan", "context", "leg")
    CHANNEL_UUID_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    DIALPLAN_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    LEG_FIELD_NUMBER: _ClassVar[int]
    channel_uuid: str
    destination: str
    dialplan: str
    context: str
    leg: TransferLeg
    def __init__(self, channel_uuid: _Optional[str] = ..., destination: _Optional[str] = ..., dialplan: _Optional[str] = ..., context: _Optional[str] = ..., leg: _Optional[_Union[TransferLeg, str]] = ...) -> None: ...

class Hangup(_message.Message):
    __slots__ = ("channel_uuid", "cause")
    CHANNEL_UUID_FIELD_NUMBER: _ClassVar[int]
    CAUSE_FIELD_NUMBER: _ClassVar[int]
    channel_uuid: str
    cause: str
    def __init__(self, channel_uuid: _Optional[str] = ..., cause: _Optional[str] = ...) -> None: ...

class Play(_message.Message):
    __slots__ = ("channel_uuid", "files", "loop")
    CHANNEL_UUID_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    LOOP_FIELD_NUMBER: _ClassVar[int]
    channel_uuid: str
    files: _containers.RepeatedScalarFieldContainer[str]
    loop: bool
    def __init__(self, channel_uuid: _Optional[str] = ..., files: _Optional[_Iterable[str]] = ..., loop: _Optional[bool] = ...) -> None: ...

class Broadcast(_message.Message):
    __slots__ = ("channel_uuid", "file", "leg")
    CHANNEL_UUID_FIELD_NUMBER: _ClassVar[int]
    FILE_FIELD_NUMBER: _ClassVar[int]
    LEG_FIELD_NUMBER: _ClassVar[int]
    channel_uuid: str
    file: str
    leg: BroadcastLeg
    def __init__(self, channel_uuid: _Optional[str] = ..., file: _Optional[str] = ..., leg: _Optional[_Union[BroadcastLeg, str]] = ...) -> None: ...

class StopMedia(_message.Message):
    __slots__ = ("channel_uuid",)
    CHANNEL_UUID_FIELD_NUMBER: _ClassVar[int]
    channel_uuid: str
    def __init__(self, channel_uuid: _Optional[str] = ...) -> None: ...

class RecordStart(_message.Message):
    __slots__ = ("channel_uuid", "path", "limit_s", "recording_id")
    CHANNEL_UUID_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    LIMIT_S_FIELD_NUMBER: _ClassVar[int]
    RECORDING_ID_FIELD_NUMBER: _ClassVar[int]
    channel_uuid: str
    path: str
    limit_s: int
    recording_id: str
    def __init__(self, channel_uuid: _Optional[str] = ..., path: _Optional[str] = ..., limit_s: _Optional[int] = ..., recording_id: _Optional[str] = ...) -> None: ...

class RecordStop(_message.Message):
    __slots__ = ("channel_uuid", "path")
    CHANNEL_UUID_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    channel_uuid: str
    path: str
    def __init__(self, channel_uuid: _Optional[str] = ..., path: _Optional[str] = ...) -> None: ...

class Hold(_message.Message):
    __slots__ = ("channel_uuid",)
    CHANNEL_UUID_FIELD_NUMBER: _ClassVar[int]
    channel_uuid: str
    def __init__(self, channel_uuid: _Optional[str] = ...) -> None: ...

class Unhold(_message.Message):
    __slots__ = ("channel_uuid",)
    CHANNEL_UUID_FIELD_NUMBER: _ClassVar[int]
    channel_uuid: str
    def __init__(self, channel_uuid: _Optional[str] = ...) -> None: ...

class Eavesdrop(_message.Message):
    __slots__ = ("supervisor", "target_channel_uuid", "mode", "supervisor_channel_uuid")
    SUPERVISOR_FIELD_NUMBER: _ClassVar[int]
    TARGET_CHANNEL_UUID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    SUPERVISOR_CHANNEL_UUID_FIELD_NUMBER: _ClassVar[int]
    supervisor: Endpoint
    target_channel_uuid: str
    mode: EavesdropMode
    supervisor_channel_uuid: str
    def __init__(self, supervisor: _Optional[_Union[Endpoint, _Mapping]] = ..., target_channel_uuid: _Optional[str] = ..., mode: _Optional[_Union[EavesdropMode, str]] = ..., supervisor_channel_uuid: _Optional[str] = ...) -> None: ...

class Park(_message.Message):
    __slots__ = ("channel_uuid",)
    CHANNEL_UUID_FIELD_NUMBER: _ClassVar[int]
    channel_uuid: str
    def __init__(self, channel_uuid: _Optional[str] = ...) -> None: ...

class SetVariable(_message.Message):
    __slots__ = ("channel_uuid", "name", "value")
    CHANNEL_UUID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    channel_uuid: str
    name: str
    value: str
    def __init__(self, channel_uuid: _Optional[str] = ..., name: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class SendDtmf(_message.Message):
    __slots__ = ("channel_uuid", "digits", "duration_ms")
    CHANNEL_UUID_FIELD_NUMBER: _ClassVar[int]
    DIGITS_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    channel_uuid: str
    digits: str
    duration_ms: int
    def __init__(self, channel_uuid: _Optional[str] = ..., digits: _Optional[str] = ..., duration_ms: _Optional[int] = ...) -> None: ...

class SwitchCommand(_message.Message):
    __slots__ = ("command_id", "tenant_id", "call_id", "lease", "fencing_token", "timeout_ms", "source", "originate", "bridge", "transfer", "hangup", "play", "broadcast", "stop_media", "record_start", "record_stop", "hold", "unhold", "eavesdrop", "park", "set_variable", "send_dtmf")
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    FENCING_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    ORIGINATE_FIELD_NUMBER: _ClassVar[int]
    BRIDGE_FIELD_NUMBER: _ClassVar[int]
    TRANSFER_FIELD_NUMBER: _ClassVar[int]
    HANGUP_FIELD_NUMBER: _ClassVar[int]
    PLAY_FIELD_NUMBER: _ClassVar[int]
    BROADCAST_FIELD_NUMBER: _ClassVar[int]
    STOP_MEDIA_FIELD_NUMBER: _ClassVar[int]
    RECORD_START_FIELD_NUMBER: _ClassVar[int]
    RECORD_STOP_FIELD_NUMBER: _ClassVar[int]
    HOLD_FIELD_NUMBER: _ClassVar[int]
    UNHOLD_FIELD_NUMBER: _ClassVar[int]
    EAVESDROP_FIELD_NUMBER: _ClassVar[int]
    PARK_FIELD_NUMBER: _ClassVar[int]
    SET_VARIABLE_FIELD_NUMBER: _ClassVar[int]
    SEND_DTMF_FIELD_NUMBER: _ClassVar[int]
    command_id: str
    tenant_id: str
    call_id: str
    lease: str
    fencing_token: int
    timeout_ms: int
    source: _common_pb2.Source
    originate: Originate
    bridge: Bridge
    transfer: Transfer
    hangup: Hangup
    play: Play
    broadcast: Broadcast
    stop_media: StopMedia
    record_start: RecordStart
    record_stop: RecordStop
    hold: Hold
    unhold: Unhold
    eavesdrop: Eavesdrop
    park: Park
    set_variable: SetVariable
    send_dtmf: SendDtmf
    def __init__(self, command_id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., call_id: _Optional[str] = ..., lease: _Optional[str] = ..., fencing_token: _Optional[int] = ..., timeout_ms: _Optional[int] = ..., source: _Optional[_Union[_common_pb2.Source, _Mapping]] = ..., originate: _Optional[_Union[Originate, _Mapping]] = ..., bridge: _Optional[_Union[Bridge, _Mapping]] = ..., transfer: _Optional[_Union[Transfer, _Mapping]] = ..., hangup: _Optional[_Union[Hangup, _Mapping]] = ..., play: _Optional[_Union[Play, _Mapping]] = ..., broadcast: _Optional[_Union[Broadcast, _Mapping]] = ..., stop_media: _Optional[_Union[StopMedia, _Mapping]] = ..., record_start: _Optional[_Union[RecordStart, _Mapping]] = ..., record_stop: _Optional[_Union[RecordStop, _Mapping]] = ..., hold: _Optional[_Union[Hold, _Mapping]] = ..., unhold: _Optional[_Union[Unhold, _Mapping]] = ..., eavesdrop: _Optional[_Union[Eavesdrop, _Mapping]] = ..., park: _Optional[_Union[Park, _Mapping]] = ..., set_variable: _Optional[_Union[SetVariable, _Mapping]] = ..., send_dtmf: _Optional[_Union[SendDtmf, _Mapping]] = ...) -> None: ...

class SwitchReply(_message.Message):
    __slots__ = ("command_id", "ok", "error_code", "message", "job_uuid", "channel_uuid", "output")
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    JOB_UUID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_UUID_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    command_id: str
    ok: bool
    error_code: SwitchErrorCode
    message: str
    job_uuid: str
    channel_uuid: str
    output: str
    def __init__(self, command_id: _Optional[str] = ..., ok: _Optional[bool] = ..., error_code: _Optional[_Union[SwitchErrorCode, str]] = ..., message: _Optional[str] = ..., job_uuid: _Optional[str] = ..., channel_uuid: _Optional[str] = ..., output: _Optional[str] = ...) -> None: ...
