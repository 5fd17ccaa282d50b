"""The mod_xml_curl dialplan documents the link answers: what a caller of each tenant state gets."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from callmesh.cti.api.xml_curl import XmlCurlContext, dialplan_document


def actions(document: str) -> list[tuple[str | None, str | None]]:
    condition = ET.fromstring(document).find(".//extension/condition")
    assert condition is not None
    return [(a.get("application"), a.get("data")) for a in condition.iter("action")]


def test_an_active_tenants_caller_goes_to_ivr_and_hears_one_apology_if_ivr_is_unreachable() -> None:
    steps = actions(dialplan_document("public", "+33140000000", "acme", "active", XmlCurlContext()))
    socket = steps.index(("socket", "127.0.0.1:8084 async full"))
    assert ("set", "continue_on_fail=true") in steps[:socket]
    after = steps[socket + 1 :]
    # The fallback context skips its own apology once this one was played.
    assert after.index(("set", "callmesh_fallback_prompted=true")) < after.index(
        ("playback", "ivr/ivr-technical_difficulties.wav")
    )
    assert after[-1] == ("transfer", "callmesh_fallback XML callmesh-fallback")


def test_a_suspended_tenants_caller_hears_the_announcement_and_is_released() -> None:
    steps = actions(dialplan_document("public", "4001", "acme", "suspended", XmlCurlContext()))
    assert ("export", "callmesh_tenant=acme") in steps
    assert not [step for step in steps if step[0] in ("socket", "transfer")]
    assert steps[-3:] == [
        ("answer", None),
        ("playback", "ivr/ivr-technical_difficulties.wav"),
        ("hangup", "CALL_REJECTED"),
    ]
