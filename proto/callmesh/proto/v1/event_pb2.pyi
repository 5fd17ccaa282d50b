import datetime

from callmesh.proto.v1 import agent_pb2 as _agent_pb2
from callmesh.proto.v1 import call_pb2 as _call_pb2
from callmesh.proto.v1 import common_pb2 as _common_pb2
from callmesh.proto.v1 import ivr_pb2 as _ivr_pb2
from callmesh.proto.v1 import node_pb2 as _node_pb2
from callmesh.proto.v1 import queue_pb2 as _queue_pb2
from callmesh.proto.v1 import tenant_pb2 as _tenant_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Event(_message.Message):
    __slots__ = ("event_id", "tenant_id", "time", "call_id", "source", "call_created", "call_ringing", "call_answered", "call_bridged", "call_unbridged", "call_held", "call_unheld", "call_transferred", "call_dtmf", "recording_started", "recording_stopped", "call_hung_up", "agent_logged_in", "agent_logged_out", "agent_state_changed", "agent_offered", "agent_answered", "agent_no_answer", "queue_entered", "queue_position_changed", "queue_left", "queue_overflowed", "ivr_node_entered", "ivr_input_received", "ivr_variable_set", "ivr_flow_left", "ivr_http_called", "ivr_voicemail_left", "ivr_flow_published", "ivr_blacklist_hit", "node_heartbeat", "node_up", "node_down", "tenant_created", "tenant_updated", "tenant_suspended", "tenant_resumed", "tenant_deleted", "tenant_restored", "tenant_numbers_changed", "tenant_directory_changed", "tenant_calendars_changed", "tenant_quota_exceeded")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    CALL_CREATED_FIELD_NUMBER: _ClassVar[int]
    CALL_RINGING_FIELD_NUMBER: _ClassVar[int]
    CALL_ANSWERED_FIELD_NUMBER: _ClassVar[int]
    CALL_BRIDGED_FIELD_NUMBER: _ClassVar[int]
    CALL_UNBRIDGED_FIELD_NUMBER: _ClassVar[int]
    CALL_HELD_FIELD_NUMBER: _ClassVar[int]
    CALL_UNHELD_FIELD_NUMBER: _ClassVar[int]
    CALL_TRANSFERRED_FIELD_NUMBER: _ClassVar[int]
    CALL_DTMF_FIELD_NUMBER: _ClassVar[int]
    RECORDING_STARTED_FIELD_NUMBER: _ClassVar[int]
    RECORDING_STOPPED_FIELD_NUMBER: _ClassVar[int]
    CALL_HUNG_UP_FIELD_NUMBER: _ClassVar[int]
    AGENT_LOGGED_IN_FIELD_NUMBER: _ClassVar[int]
    AGENT_LOGGED_OUT_FIELD_NUMBER: _ClassVar[int]
    AGENT_STATE_CHANGED_FIELD_NUMBER: _ClassVar[int]
    AGENT_OFFERED_FIELD_NUMBER: _ClassVar[int]
    AGENT_ANSWERED_FIELD_NUMBER: _ClassVar[int]
    AGENT_NO_ANSWER_FIELD_NUMBER: _ClassVar[int]
    QUEUE_ENTERED_FIELD_NUMBER: _ClassVar[int]
    QUEUE_POSITION_CHANGED_FIELD_NUMBER: _ClassVar[int]
    QUEUE_LEFT_FIELD_NUMBER: _ClassVar[int]
    QUEUE_OVERFLOWED_FIELD_NUMBER: _ClassVar[int]
    IVR_NODE_ENTERED_FIELD_NUMBER: _ClassVar[int]
    IVR_INPUT_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    IVR_VARIABLE_SET_FIELD_NUMBER: _ClassVar[int]
    IVR_FLOW_LEFT_FIELD_NUMBER: _ClassVar[int]
    IVR_HTTP_CALLED_FIELD_NUMBER: _ClassVar[int]
    IVR_VOICEMAIL_LEFT_FIELD_NUMBER: _ClassVar[int]
    IVR_FLOW_PUBLISHED_FIELD_NUMBER: _ClassVar[int]
    IVR_BLACKLIST_HIT_FIELD_NUMBER: _ClassVar[int]
    NODE_HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    NODE_UP_FIELD_NUMBER: _ClassVar[int]
    NODE_DOWN_FIELD_NUMBER: _ClassVar[int]
    TENANT_CREATED_FIELD_NUMBER: _ClassVar[int]
    TENANT_UPDATED_FIELD_NUMBER: _ClassVar[int]
    TENANT_SUSPENDED_FIELD_NUMBER: _ClassVar[int]
    TENANT_RESUMED_FIELD_NUMBER: _ClassVar[int]
    TENANT_DELETED_FIELD_NUMBER: _ClassVar[int]
    TENANT_RESTORED_FIELD_NUMBER: _ClassVar[int]
    TENANT_NUMBERS_CHANGED_FIELD_NUMBER: _ClassVar[int]
    TENANT_DIRECTORY_CHANGED_FIELD_NUMBER: _ClassVar[int]
    TENANT_CALENDARS_CHANGED_FIELD_NUMBER: _ClassVar[int]
    TENANT_QUOTA_EXCEEDED_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    tenant_id: str
    time: _timestamp_pb2.Timestamp
    call_id: str
    source: _common_pb2.Source
    call_created: _call_pb2.CallCreated
    call_ringing: _call_pb2.CallRinging
    call_answered: _call_pb2.CallAnswered
    call_bridged: _call_pb2.CallBridged
    call_unbridged: _call_pb2.CallUnbridged
    call_held: _call_pb2.CallHeld
    call_unheld: _call_pb2.CallUnheld
    call_transferred: _call_pb2.CallTransferred
    call_dtmf: _call_pb2.CallDtmf
    recording_started: _call_pb2.RecordingStarted
    recording_stopped: _call_pb2.RecordingStopped
    call_hung_up: _call_pb2.CallHungUp
    agent_logged_in: _agent_pb2.AgentLoggedIn
    agent_logged_out: _agent_pb2.AgentLoggedOut
    agent_state_changed: _agent_pb2.AgentStateChanged
    agent_offered: _agent_pb2.AgentOffered
    agent_answered: _agent_pb2.AgentAnswered
    agent_no_answer: _agent_pb2.AgentNoAnswer
    queue_entered: _queue_pb2.QueueEntered
    queue_position_changed: _queue_pb2.QueuePositionChanged
    queue_left: _queue_pb2.QueueLeft
    queue_overflowed: _queue_pb2.QueueOverflowed
    ivr_node_entered: _ivr_pb2.IvrNodeEntered
    ivr_input_received: _ivr_pb2.IvrInputReceived
    ivr_variable_set: _ivr_pb2.IvrVariableSet
    ivr_flow_left: _ivr_pb2.IvrFlowLeft
    ivr_http_called: _ivr_pb2.IvrHttpCalled
    ivr_voicemail_left: _ivr_pb2.IvrVoicemailLeft
    ivr_flow_published: _ivr_pb2.IvrFlowPublished
    ivr_blacklist_hit: _ivr_pb2.IvrBlacklistHit
    node_heartbeat: _node_pb2.NodeHeartbeat
    node_up: _node_pb2.NodeUp
    node_down: _node_pb2.NodeDown
    tenant_created: _tenant_pb2.TenantCreated
    tenant_updated: _tenant_pb2.TenantUpdated
    tenant_suspended: _tenant_pb2.TenantSuspended
    tenant_resumed: _tenant_pb2.TenantResumed
    tenant_deleted: _tenant_pb2.TenantDeleted
    tenant_restored: _tenant_pb2.TenantRestored
    tenant_numbers_changed: _tenant_pb2.TenantNumbersChanged
    tenant_directory_changed: _tenant_pb2.TenantDirectoryChanged
    tenant_calendars_changed: _tenant_pb2.TenantCalendarsChanged
    tenant_quota_exceeded: _tenant_pb2.TenantQuotaExceeded
    def __init__(self, event_id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., call_id: _Optional[str] = ..., source: _Optional[_Union[_common_pb2.Source, _Mapping]] = ..., call_created: _Optional[_Union[_call_pb2.CallCreated, _Mapping]] = ..., call_ringing: _Optional[_Union[_call_pb2.CallRinging, _Mapping]] = ..., call_answered: _Optional[_Union[_call_pb2.CallAnswered, _Mapping]] = ..., call_bridged: _Optional[_Union[_call_pb2.CallBridged, _Mapping]] = ..., call_unbridged: _Optional[_Union[_call_pb2.CallUnbridged, _Mapping]] = ..., call_held: _Optional[_Union[_call_pb2.CallHeld, _Mapping]] = ..., call_unheld: _Optional[_Union[_call_pb2.CallUnheld, _Mapping]] = ..., call_transferred: _Optional[_Union[_call_pb2.CallTransferred, _Mapping]] = ..., call_dtmf: _Optional[_Union[_call_pb2.CallDtmf, _Mapping]] = ..., recording_started: _Optional[_Union[_call_pb2.RecordingStarted, _Mapping]] = ..., recording_stopped: _Optional[_Union[_call_pb2.RecordingStopped, _Mapping]] = ..., call_hung_up: _Optional[_Union[_call_pb2.CallHungUp, _Mapping]] = ..., agent_logged_in: _Optional[_Union[_agent_pb2.AgentLoggedIn, _Mapping]] = ..., agent_logged_out: _Optional[_Union[_agent_pb2.AgentLoggedOut, _Mapping]] = ..., agent_state_changed: _Optional[_Union[_agent_pb2.AgentStateChanged, _Mapping]] = ..., agent_offered: _Optional[_Union[_agent_pb2.AgentOffered, _Mapping]] = ..., agent_answered: _Optional[_Union[_agent_pb2.AgentAnswered, _Mapping]] = ..., agent_no_answer: _Optional[_Union[_agent_pb2.AgentNoAnswer, _Mapping]] = ..., queue_entered: _Optional[_Union[_queue_pb2.QueueEntered, _Mapping]] = ..., queue_position_changed: _Optional[_Union[_queue_pb2.QueuePositionChanged, _Mapping]] = ..., queue_left: _Optional[_Union[_queue_pb2.QueueLeft, _Mapping]] = ..., queue_overflowed: _Optional[_Union[_queue_pb2.QueueOverflowed, _Mapping]] = ..., ivr_node_entered: _Optional[_Union[_ivr_pb2.IvrNodeEntered, _Mapping]] = ..., ivr_input_received: _Optional[_Union[_ivr_pb2.IvrInputReceived, _Mapping]] = ..., ivr_variable_set: _Optional[_Union[_ivr_pb2.IvrVariableSet, _Mapping]] = ..., ivr_flow_left: _Optional[_Union[_ivr_pb2.IvrFlowLeft, _Mapping]] = ..., ivr_http_called: _Optional[_Union[_ivr_pb2.IvrHttpCalled, _Mapping]] = ..., ivr_voicemail_left: _Optional[_Union[_ivr_pb2.IvrVoicemailLeft, _Mapping]] = ..., ivr_flow_published: _Optional[_Union[_ivr_pb2.IvrFlowPublished, _Mapping]] = ..., ivr_blacklist_hit: _Optional[_Union[_ivr_pb2.IvrBlacklistHit, _Mapping]] = ..., node_heartbeat: _Optional[_Union[_node_pb2.NodeHeartbeat, _Mapping]] = ..., node_up: _Optional[_Union[_node_pb2.NodeUp, _Mapping]] = ..., node_down: _Optional[_Union[_node_pb2.NodeDown, _Mapping]] = ..., tenant_created: _Optional[_Union[_tenant_pb2.TenantCreated, _Mapping]] = ..., tenant_updated: _Optional[_Union[_tenant_pb2.TenantUpdated, _Mapping]] = ..., tenant_suspended: _Optional[_Union[_tenant_pb2.TenantSuspended, _Mapping]] = ..., tenant_resumed: _Optional[_Union[_tenant_pb2.TenantResumed, _Mapping]] = ..., tenant_deleted: _Optional[_Union[_tenant_pb2.TenantDeleted, _Mapping]] = ..., tenant_restored: _Optional[_Union[_tenant_pb2.TenantRestored, _Mapping]] = ..., tenant_numbers_changed: _Optional[_Union[_tenant_pb2.TenantNumbersChanged, _Mapping]] = ..., tenant_directory_changed: _Optional[_Union[_tenant_pb2.TenantDirectoryChanged, _Mapping]] = ..., tenant_calendars_changed: _Optional[_Union[_tenant_pb2.TenantCalendarsChanged, _Mapping]] = ..., tenant_quota_exceeded: _Optional[_Union[_tenant_pb2.TenantQuotaExceeded, _Mapping]] = ...) -> None: ...
