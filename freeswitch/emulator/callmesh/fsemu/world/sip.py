"""SIP final responses and the hang-up causes FreeSWITCH gives them (mod_sofia)."""

from __future__ import annotations

# Copied from mod_sofia's sofia_glue.c (sofia_glue_sip_cause_to_freeswitch): a phone or carrier
# answering an INVITE with one of these codes ends the B leg with this cause.
SIP_CAUSES: dict[int, str] = {
    400: "NORMAL_TEMPORARY_FAILURE",
    401: "CALL_REJECTED",
    402: "CALL_REJECTED",
    403: "CALL_REJECTED",
    404: "UNALLOCATED_NUMBER",
    405: "SERVICE_UNAVAILABLE",
    406: "SERVICE_NOT_IMPLEMENTED",
    407: "CALL_REJECTED",
    408: "RECOVERY_ON_TIMER_EXPIRE",
    410: "NUMBER_CHANGED",
    415: "SERVICE_NOT_IMPLEMENTED",
    480: "NO_USER_RESPONSE",
    481: "NORMAL_TEMPORARY_FAILURE",
    484: "INVALID_NUMBER_FORMAT",
    485: "NO_ROUTE_DESTINATION",
    486: "USER_BUSY",
    487: "ORIGINATOR_CANCEL",
    488: "INCOMPATIBLE_DESTINATION",
    500: "NORMAL_TEMPORARY_FAILURE",
    501: "SERVICE_NOT_IMPLEMENTED",
    502: "NETWORK_OUT_OF_ORDER",
    503: "NORMAL_TEMPORARY_FAILURE",
    504: "RECOVERY_ON_TIMER_EXPIRE",
    600: "USER_BUSY",
    603: "CALL_REJECTED",
    604: "NO_ROUTE_DESTINATION",
    606: "INCOMPATIBLE_DESTINATION",
    607: "UNWANTED",
    608: "CALL_REJECTED",
}


def sip_cause(code: int) -> str:
    """The cause FreeSWITCH reports for a SIP final response (NORMAL_UNSPECIFIED if unknown)."""
    return SIP_CAUSES.get(code, "NORMAL_UNSPECIFIED")
