"""The world against the real switch, read through a real Event Socket subscribed to ALL."""

from __future__ import annotations

from pathlib import Path

from callmesh.fsemu.world.callers import CallerScript
from callmesh.fsemu.world.distributions import Fixed
from callmesh.fsemu.world.scenario import (
    BUILTIN_PROFILES,
    CarrierSpec,
    DigitStep,
    PhoneProfile,
    TrafficSpec,
    load_scenario,
    parse_scenario,
)

from .conftest import Env, matches

DOMAIN = "acme.callmesh.test"
SMOKE = Path(__file__).resolve().parents[2] / "scenarios" / "smoke.yaml"
REGISTER_HEADERS = [
    "profile-name",
    "from-user",
    "from-host",
    "presence-hosts",
    "contact",
    "call-id",
    "rpid",
    "status",
    "expires",
    "to-user",
    "to-host",
    "network-ip",
    "network-port",
    "username",
    "realm",
    "user-agent",
]


def own_headers(event: object) -> list[str]:
    """The headers after the common block (Event-Name … Event-Subclass)."""
    names = [k for k, _ in event.headers]  # type: ignore[attr-defined]
    return names[names.index("Event-Subclass") + 1 :]


async def test_a_phone_registers_with_mod_sofias_header_set_and_order(env: Env) -> None:
    phone = env.world.phones.add("1001", DOMAIN, BUILTIN_PROFILES["answer"], expires=3600)
    env.world.phones.register(phone)
    event = await env.wait_for(lambda e: matches(e, "sofia::register", from_user="1001"))
    assert event.name == "CUSTOM"
    assert own_headers(event)[: len(REGISTER_HEADERS)] == REGISTER_HEADERS
    assert event.get("from-host") == DOMAIN
    assert event.get("status") == "Registered(UDP)"
    assert event.get("expires") == "3600"
    assert event.get("contact") == f'"1001" <sip:1001@127.0.0.1:{phone.network_port}>'


async def test_a_phone_re_registers_before_expiry_with_the_same_call_id(env: Env) -> None:
    phone = env.world.phones.add("1002", DOMAIN, BUILTIN_PROFILES["answer"], expires=60)
    env.world.phones.register(phone)
    await env.wait_for(lambda e: matches(e, "sofia::register", from_user="1002"))
    await env.wait_for(
        lambda e: len(env.named("sofia::register", from_user="1002")) >= 3, timeout=10
    )
    call_ids = {e.get("call-id") for e in env.named("sofia::register", from_user="1002")}
    assert call_ids == {phone.call_id}


async def test_unregistering_fires_unregister_and_calls_then_fail(env: Env) -> None:
    phone = env.world.phones.add("1003", DOMAIN, BUILTIN_PROFILES["answer"])
    env.world.phones.register(phone)
    env.world.phones.unregister(phone)
    event = await env.wait_for(lambda e: matches(e, "sofia::unregister", from_user="1003"))
    assert own_headers(event) == [
        "profile-name",
        "username",
        "from-user",
        "from-host",
        "contact",
        "call-id",
        "rpid",
        "realm",
        "network-ip",
        "network-port",
        "user-agent",
        "expires",
    ]
    assert event.get("expires") == "0"
    reply = await env.client.api(f"originate user/1003@{DOMAIN} &park()")
    assert reply.strip() == "-ERR USER_NOT_REGISTERED"


async def test_a_phone_that_goes_offline_expires(env: Env) -> None:
    phone = env.world.phones.add("1004", DOMAIN, BUILTIN_PROFILES["answer"], expires=30)
    env.world.phones.register(phone)
    env.world.phones.go_offline(phone)
    # mod_sofia's expire (sofia_reg_del_callback) names the user in `user` and the domain in `host`.
    event = await env.wait_for(lambda e: matches(e, "sofia::expire", user="1004"))
    assert event.get("host") == DOMAIN
    assert event.get("profile-name") == "internal"
    assert phone.state == "expired"
    reply = await env.client.api(f"originate user/1004@{DOMAIN} &park()")
    assert reply.strip() == "-ERR USER_NOT_REGISTERED"


async def test_an_answering_phone_answers_an_originate(env: Env) -> None:
    phone = env.world.phones.add("1005", DOMAIN, PhoneProfile(ring=Fixed(value=2)))
    env.world.phones.register(phone)
    reply = await env.client.api(f"originate user/1005@{DOMAIN} &park()")
    assert reply.startswith("+OK ")
    uuid = reply.split()[1]
    await env.wait_for(lambda e: matches(e, "CHANNEL_ANSWER", Unique_ID=uuid))
    await env.wait_for(lambda e: matches(e, "CHANNEL_PARK", Unique_ID=uuid))
    await env.client.api(f"uuid_kill {uuid}")
    hangup = await env.wait_for(lambda e: matches(e, "CHANNEL_HANGUP_COMPLETE", Unique_ID=uuid))
    assert hangup.get("Hangup-Cause") == "NORMAL_CLEARING"


async def test_a_phone_with_talk_time_hangs_up_by_itself(env: Env) -> None:
    phone = env.world.phones.add(
        "1006", DOMAIN, PhoneProfile(ring=Fixed(value=1), talk=Fixed(value=5))
    )
    env.world.phones.register(phone)
    reply = await env.client.api(f"originate user/1006@{DOMAIN} &park()")
    uuid = reply.split()[1]
    hangup = await env.wait_for(lambda e: matches(e, "CHANNEL_HANGUP_COMPLETE", Unique_ID=uuid))
    assert hangup.get("Hangup-Cause") == "NORMAL_CLEARING"


async def test_refusing_phones_fail_the_originate_with_freeswitchs_causes(env: Env) -> None:
    profiles = {
        "2001": (BUILTIN_PROFILES["busy"], "USER_BUSY"),
        "2002": (BUILTIN_PROFILES["reject"], "CALL_REJECTED"),
        "2003": (BUILTIN_PROFILES["dnd"], "USER_BUSY"),
        "2004": (PhoneProfile(behaviour="dnd", sip_code=480), "NO_USER_RESPONSE"),
    }
    for user, (profile, _) in profiles.items():
        env.world.phones.register(env.world.phones.add(user, DOMAIN, profile))
    for user, (_, cause) in profiles.items():
        reply = await env.client.api(f"originate user/{user}@{DOMAIN} &park()")
        assert reply.strip() == f"-ERR {cause}", user


async def test_a_phone_that_does_not_answer_rings_until_the_originate_timeout(env: Env) -> None:
    phone = env.world.phones.add("1007", DOMAIN, BUILTIN_PROFILES["no_answer"])
    env.world.phones.register(phone)
    reply = await env.client.api(f"originate {{originate_timeout=5}}user/1007@{DOMAIN} &park()")
    assert reply.strip() == "-ERR NO_ANSWER"
    ringing = env.named("CHANNEL_PROGRESS")
    assert ringing, "the phone rang"


async def test_a_phone_at_its_call_limit_is_busy(env: Env) -> None:
    phone = env.world.phones.add("1008", DOMAIN, PhoneProfile(ring=Fixed(value=0), max_calls=1))
    env.world.phones.register(phone)
    first = await env.client.api(f"originate user/1008@{DOMAIN} &park()")
    assert first.startswith("+OK ")
    second = await env.client.api(f"originate user/1008@{DOMAIN} &park()")
    assert second.strip() == "-ERR USER_BUSY"


async def test_a_phone_places_a_call_on_its_sip_profile(env: Env) -> None:
    phone = env.world.phones.add("1009", DOMAIN, BUILTIN_PROFILES["answer"])
    env.world.phones.register(phone)
    channel = await env.world.phone_call(phone, "5000")
    create = await env.wait_for(lambda e: matches(e, "CHANNEL_CREATE", Unique_ID=channel.uuid))
    assert create.get("Caller-Caller-ID-Number") == "1009"
    assert create.get("Caller-Destination-Number") == "5000"
    assert create.get("variable_sip_from_host") == DOMAIN


async def test_carriers_answer_refuse_or_fail_as_their_numbers_say(env: Env) -> None:
    env.world.carriers.add(
        CarrierSpec(
            gateway="gw1",
            numbers={"100": "human", "486": "busy", "404": "invalid"},
            talk=None,
        )
    )
    human = await env.client.api("originate sofia/gateway/gw1/100 &park()")
    assert human.startswith("+OK ")
    assert (await env.client.api("originate sofia/gateway/gw1/486 &park()")).strip() == (
        "-ERR USER_BUSY"
    )
    assert (await env.client.api("originate sofia/gateway/gw1/404 &park()")).strip() == (
        "-ERR UNALLOCATED_NUMBER"
    )
    assert (await env.client.api("originate sofia/gateway/nope/1 &park()")).strip() == (
        "-ERR INVALID_GATEWAY"
    )


async def test_an_answering_machine_beeps_like_mod_avmd(env: Env) -> None:
    env.world.carriers.add(CarrierSpec(gateway="gw2", numbers={"200": "machine"}))
    reply = await env.client.api("originate sofia/gateway/gw2/200 &park()")
    uuid = reply.split()[1]
    beep = await env.wait_for(lambda e: matches(e, "avmd::beep", Unique_ID=uuid))
    assert beep.get("Beep-Status") == "DETECTED"
    channel = env.switch.channel(uuid)
    assert channel is not None
    assert channel.variables["avmd_detect"] == "TRUE"
    assert channel.variables["amd_result"] == "MACHINE"


async def test_a_scripted_caller_presses_digits_on_the_prompt_and_gives_up(env: Env) -> None:
    env.switch.set_dialplan({"5000": [("answer", ""), ("playback", str(env.prompt)), ("park", "")]})
    script = CallerScript(
        # At the test's speed (1000x) the timed digits come 0.5 s of real time after the call
        # starts, well after the prompt's even on a loaded machine, and before patience runs out.
        steps=(DigitStep(digits="7", on_prompt=1, delay=0.2), DigitStep(digits="9#", at=500)),
        patience_s=900,
        talk_s=None,
    )
    channel = await env.world.place_call(number="5000", caller="+33612345678", script=script)
    uuid = channel.uuid
    dtmf = await env.wait_for(lambda e: matches(e, "DTMF", Unique_ID=uuid))
    assert dtmf.get("DTMF-Digit") == "7"
    hangup = await env.wait_for(lambda e: matches(e, "CHANNEL_HANGUP_COMPLETE", Unique_ID=uuid))
    assert hangup.get("Hangup-Cause") == "NORMAL_CLEARING"
    digits = [e.get("DTMF-Digit") for e in env.named("DTMF", Unique_ID=uuid)]
    assert digits == ["7", "9", "#"]
    await env.wait_for(lambda e: env.world.caller_outcomes["abandoned"] == 1 or False, timeout=5)


async def test_a_caller_bridged_to_a_phone_talks_then_hangs_up(env: Env) -> None:
    env.world.phones.register(env.world.phones.add("1010", DOMAIN, BUILTIN_PROFILES["answer"]))
    env.switch.set_dialplan({"6000": [("bridge", f"user/1010@{DOMAIN}")]})
    script = CallerScript(patience_s=60, talk_s=10)
    channel = await env.world.place_call(number="6000", caller="+33600000001", script=script)
    await env.wait_for(lambda e: matches(e, "CHANNEL_BRIDGE", Unique_ID=channel.uuid))
    await env.wait_for(lambda e: matches(e, "CHANNEL_HANGUP_COMPLETE", Unique_ID=channel.uuid))
    await env.wait_for(lambda e: env.world.caller_outcomes["completed"] == 1 or False, timeout=5)


async def test_traffic_places_its_calls_and_every_one_ends(env: Env) -> None:
    env.switch.set_dialplan({"5000": [("answer", ""), ("playback", str(env.prompt)), ("park", "")]})
    spec = TrafficSpec(
        name="t",
        rate=50,
        numbers=["5000"],
        holding=Fixed(value=5),
        patience=Fixed(value=5),
        max_calls=20,
    )
    generator = env.world.start_traffic(spec)
    await env.wait_for(
        lambda e: len(env.named("CHANNEL_HANGUP_COMPLETE")) >= 20 or False, timeout=30
    )
    assert generator.started == 20
    assert len(env.named("CHANNEL_CREATE")) == 20
    assert len(env.named("CHANNEL_ANSWER")) == 20
    assert env.world.stats.calls_started == 20


async def test_the_same_seed_places_the_same_callers(env: Env) -> None:
    spec = TrafficSpec(
        name="s", rate=100, numbers=["5000", "5001"], max_calls=10, patience=Fixed(value=1)
    )
    env.world.start_traffic(spec)
    await env.wait_for(lambda e: len(env.named("CHANNEL_CREATE")) >= 10 or False, timeout=30)
    first = [
        (e.get("Caller-Caller-ID-Number"), e.get("Caller-Destination-Number"))
        for e in env.named("CHANNEL_CREATE")
    ]
    from callmesh.fsemu.world.world import World

    twin = World(env.switch, seed=7)
    twin.start_traffic(spec.model_copy(update={"name": "s2"}))
    await env.wait_for(lambda e: len(env.named("CHANNEL_CREATE")) >= 20 or False, timeout=30)
    second = [
        (e.get("Caller-Caller-ID-Number"), e.get("Caller-Destination-Number"))
        for e in env.named("CHANNEL_CREATE")[10:]
    ]
    await twin.close()
    assert sorted(first) == sorted(second)


async def test_a_scenario_registers_its_phones_and_runs_its_callers(env: Env) -> None:
    scenario = parse_scenario(
        {
            "phones": [{"domain": DOMAIN, "users": ["3001-3003"], "profile": "agent"}],
            "dialplan": {"5000": ["answer", f"playback {env.prompt}", "park"]},
            "callers": [
                {"number": "5000", "patience": 2, "digits": [{"on_prompt": 1, "digits": "1"}]}
            ],
        }
    )
    await env.world.load(scenario)
    await env.wait_for(lambda e: len(env.named("sofia::register")) >= 3)
    assert {e.get("from-user") for e in env.named("sofia::register")} == {"3001", "3002", "3003"}
    await env.wait_for(lambda e: matches(e, "DTMF", DTMF_Digit="1"))
    await env.wait_for(lambda e: matches(e, "CHANNEL_HANGUP_COMPLETE"))


async def test_the_smoke_scenario_registers_its_phones_and_its_callers_press_digits(
    env: Env,
) -> None:
    await env.world.load(load_scenario(SMOKE))
    await env.wait_for(lambda e: len(env.named("sofia::register")) >= 13)
    digits = await env.wait_for(lambda e: matches(e, "DTMF", DTMF_Digit="1"))
    caller = await env.wait_for(
        lambda e: matches(e, "CHANNEL_HANGUP_COMPLETE", Unique_ID=digits.get("Unique-ID") or "")
    )
    assert caller.get("Caller-Caller-ID-Number") == "+33612345678"
    busy = await env.client.api(f"originate user/1007@{DOMAIN} &park()")
    assert busy.strip() == "-ERR USER_BUSY"
    invalid = await env.client.api("originate sofia/gateway/carrier-a/+15550000404 &park()")
    assert invalid.strip() == "-ERR UNALLOCATED_NUMBER"
