"""mod_xml_curl emulation: the dialplan look-up POSTed to a real HTTP server, hunted as
mod_dialplan_xml does, with the static dialplan as the fallback."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import pytest
import uvicorn
from fastapi import FastAPI

from callmesh.core.bus import Bus
from callmesh.core.esl import Frame, FrameParser, url_decode
from callmesh.core.tenancy import NumberDirectory
from callmesh.cti.api.xml_curl import NOT_FOUND, XmlCurlContext, dialplan_document, routers
from callmesh.fsemu.switch import Channel, Switch
from callmesh.fsemu.xml_curl import XmlCurlDialplan, substitute
from callmesh.proto.subjects import Service
from callmesh.proto.v1.admin_pb2 import NumberLookup, NumberLookupReply

from .conftest import Recorder

Handler = Callable[[dict[str, str]], tuple[int, str]]


@dataclass
class Request:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def form(self) -> dict[str, str]:
        """The form fields (first value of each name)."""
        out: dict[str, str] = {}
        for key, value in parse_qsl(self.body.decode(), keep_blank_values=True):
            out.setdefault(key, value)
        return out


@dataclass
class HttpServer:
    """A minimal HTTP/1.1 server on a real socket: answers each POST with handler(form)."""

    handler: Handler
    requests: list[Request] = field(default_factory=list)
    url: str = ""
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    async def start(self) -> None:
        """Listen on a free port."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    async def close(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                request = Request(method, path, headers, body)
                self.requests.append(request)
                status, text = self.handler(request.form)
                data = text.encode()
                writer.write(
                    f"HTTP/1.1 {status} X\r\nContent-Type: text/xml\r\n"
                    f"Content-Length: {len(data)}\r\n\r\n".encode()
                    + data
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()


@pytest.fixture
async def http() -> AsyncIterator[HttpServer]:
    """The HTTP server; tests set its handler."""
    server = HttpServer(lambda form: (200, NOT_FOUND))
    await server.start()
    yield server
    await server.close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def document(context: str, extensions: str) -> str:
    """A freeswitch/xml dialplan document with one context."""
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
        '<document type="freeswitch/xml">\n  <section name="dialplan">\n'
        f'    <context name="{context}">\n{extensions}    </context>\n'
        "  </section>\n</document>\n"
    )


async def _ended(ch: Channel) -> str:
    return await asyncio.wait_for(ch.wait_hangup(), 30)


def _apps(recorder: Recorder, uuid: str) -> list[tuple[str | None, str | None]]:
    return [
        (e.get("Application"), e.get("Application-Data"))
        for e in recorder.events
        if e.name == "CHANNEL_EXECUTE" and e.get("Unique-ID") == uuid
    ]


async def test_the_lookup_is_posted_form_encoded_as_mod_xml_curl_sends_it(
    switch: Switch, http: HttpServer
) -> None:
    switch.set_xml_curl(XmlCurlDialplan(http.url))
    switch.set_dialplan({"*": [("hangup", "")]})
    ch = await switch.inbound_call(
        caller_number="+15551234",
        destination_number="+33100000001",
        caller_name="Zoë Q",
        variables={"sip_to_host": "acme.example"},
    )
    await _ended(ch)
    request = http.requests[0]
    assert (request.method, request.path) == ("POST", "/fs/dialplan")
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.headers["user-agent"] == "freeswitch-xml/1.0"
    raw = request.body.decode()
    assert raw.startswith(
        "hostname=fsemu-test&section=dialplan&tag_name=&key_name=&key_value="
        "&Event-Name=REQUEST_PARAMS&Core-UUID="
    )
    # Values are switch_url_encode'd: '+' and ' ' escaped, UTF-8 byte by byte.
    assert "&Caller-Caller-ID-Number=%2B15551234&" in raw
    assert "&Caller-Caller-ID-Name=Zo%C3%AB%20Q&" in raw
    form = request.form
    assert form["Event-Calling-File"] == "mod_dialplan_xml.c"
    assert form["Event-Calling-Function"] == "dialplan_xml_locate"
    assert form["FreeSWITCH-Hostname"] == "fsemu-test"
    assert form["Unique-ID"] == ch.uuid
    assert form["Caller-Destination-Number"] == "+33100000001"
    assert form["Hunt-Destination-Number"] == "+33100000001"
    assert form["Caller-Context"] == form["Hunt-Context"] == "public"
    assert form["Channel-State"] == "CS_ROUTING"
    assert form["variable_sip_to_host"] == "acme.example"
    assert list(form).index("Hunt-Direction") > list(form).index("Caller-Direction")


async def test_the_cti_document_sets_the_tenant_and_hands_the_call_to_the_ivr_socket(
    switch: Switch, recorder: Recorder, http: HttpServer
) -> None:
    ivr_seen: list[dict[str, str]] = []

    async def ivr(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"connect\n\n")
        await writer.drain()
        parser = FrameParser()
        while not ivr_seen:
            for frame in parser.feed(await reader.read(65536)):
                # The connect reply: CHANNEL_DATA as the header block, values URL-encoded.
                assert isinstance(frame, Frame)
                ivr_seen.append({k: url_decode(v) for k, v in frame.headers})
        writer.write(b"sendmsg\ncall-command: hangup\nhangup-cause: NORMAL_CLEARING\n\n")
        await writer.drain()
        with contextlib.suppress(ConnectionError):
            await reader.read()
        writer.close()

    ivr_server = await asyncio.start_server(ivr, "127.0.0.1", 0)
    ivr_port = ivr_server.sockets[0].getsockname()[1]
    ctx = XmlCurlContext(ivr_socket=f"127.0.0.1:{ivr_port}")

    def handler(form: dict[str, str]) -> tuple[int, str]:
        number = form["Caller-Destination-Number"]
        return 200, dialplan_document(form["Caller-Context"], number, "acme", "active", ctx)

    http.handler = handler
    binding = XmlCurlDialplan(http.url)
    switch.set_xml_curl(binding)
    try:
        ch = await switch.inbound_call(caller_number="1000", destination_number="+33100000001")
        assert await _ended(ch) == "NORMAL_CLEARING"
    finally:
        ivr_server.close()
    assert ch.variables["callmesh_tenant"] == "acme"
    assert ch.variables["callmesh_call_id"] == ch.uuid
    assert ch.variables["callmesh_role"] == "caller"
    apps = [app for app, _ in _apps(recorder, ch.uuid)]
    assert apps[-1] == "socket"  # the IVR hung up: nothing after it ran
    assert set(apps[:-1]) <= {"export", "set"}
    reply = ivr_seen[0]
    assert reply["Reply-Text"] == "+OK\n"
    assert reply["variable_callmesh_tenant"] == "acme"
    assert reply["Control"] == "full"
    assert reply["Socket-Mode"] == "async"
    assert dict(binding.stats) == {"lookups": 1, "found": 1}


async def test_an_unreachable_ivr_runs_the_fallback_then_the_static_fallback_extension(
    switch: Switch, recorder: Recorder, http: HttpServer
) -> None:
    ctx = XmlCurlContext(ivr_socket=f"127.0.0.1:{_closed_port()}")

    def handler(form: dict[str, str]) -> tuple[int, str]:
        number = form["Hunt-Destination-Number"]
        if number == "callmesh_fallback":
            return 200, NOT_FOUND
        return 200, dialplan_document(form["Hunt-Context"], number, "acme", "active", ctx)

    http.handler = handler
    binding = XmlCurlDialplan(http.url)
    switch.set_xml_curl(binding)
    switch.set_dialplan({"callmesh_fallback": [("hangup", "NORMAL_TEMPORARY_FAILURE")]})
    ch = await switch.inbound_call(caller_number="1000", destination_number="5000")
    assert await _ended(ch) == "NORMAL_TEMPORARY_FAILURE"
    apps = [app for app, _ in _apps(recorder, ch.uuid)]
    steps = ["socket", "answer", "playback", "transfer", "hangup"]
    assert [app for app in apps if app in steps] == steps
    assert apps[-1] == "hangup"
    second = http.requests[1].form
    assert second["Hunt-Context"] == "callmesh-fallback"
    assert second["Caller-Transfer-Source"].endswith("callmesh_fallback/callmesh-fallback/XML")
    assert dict(binding.stats) == {"lookups": 2, "found": 1, "not_found": 1, "fallbacks": 1}


@pytest.mark.parametrize(
    "reply",
    [
        (500, "oops"),
        (200, "<document><section name='dialplan'>"),
        (200, '<document type="freeswitch/xml"><section name="directory"/></document>'),
    ],
)
async def test_an_error_falls_back_to_the_static_dialplan(
    switch: Switch, recorder: Recorder, http: HttpServer, reply: tuple[int, str]
) -> None:
    http.handler = lambda form: reply
    binding = XmlCurlDialplan(http.url)
    switch.set_xml_curl(binding)
    switch.set_dialplan({"5000": [("hangup", "USER_BUSY")]})
    ch = await switch.inbound_call(caller_number="1000", destination_number="5000")
    assert await _ended(ch) == "USER_BUSY"
    assert dict(binding.stats) == {"lookups": 1, "errors": 1, "fallbacks": 1}


async def test_an_unreachable_server_falls_back_to_the_static_dialplan(
    switch: Switch, recorder: Recorder
) -> None:
    binding = XmlCurlDialplan(f"http://127.0.0.1:{_closed_port()}", timeout=2)
    switch.set_xml_curl(binding)
    switch.set_dialplan({"5000": [("hangup", "USER_BUSY")]})
    ch = await switch.inbound_call(caller_number="1000", destination_number="5000")
    assert await _ended(ch) == "USER_BUSY"
    assert binding.stats["errors"] == 1


async def test_a_document_without_a_matching_extension_is_no_route(
    switch: Switch, recorder: Recorder, http: HttpServer
) -> None:
    extensions = """      <extension name="other">
        <condition field="destination_number" expression="^9999$">
          <action application="hangup" data="USER_BUSY"/>
        </condition>
      </extension>
"""
    http.handler = lambda form: (200, document("public", extensions))
    binding = XmlCurlDialplan(http.url)
    switch.set_xml_curl(binding)
    switch.set_dialplan({"*": [("hangup", "USER_BUSY")]})
    ch = await switch.inbound_call(caller_number="1000", destination_number="5000")
    assert await _ended(ch) == "NO_ROUTE_DESTINATION"
    assert binding.stats["no_route"] == 1


async def test_conditions_follow_mod_dialplan_xml(
    switch: Switch, recorder: Recorder, http: HttpServer
) -> None:
    extensions = """      <extension name="tag" continue="true">
        <condition field="caller_id_number" expression="^(\\d{3})(\\d+)$">
          <action application="set" data="area=$1" inline="true"/>
          <action application="set" data="rest=$2"/>
        </condition>
      </extension>
      <extension name="skipped">
        <condition field="destination_number" expression="^nope$">
          <action application="set" data="skipped=yes"/>
        </condition>
      </extension>
      <extension name="main">
        <condition field="${area}" expression="^555$" break="never">
          <action application="set" data="local=true"/>
          <anti-action application="set" data="local=false"/>
        </condition>
        <condition field="destination_number" expression="^nomatch$" break="never">
          <anti-action application="set" data="anti=ran"/>
        </condition>
        <condition field="destination_number" expression="^(50)(\\d\\d)$">
          <action application="set">ext=$2</action>
          <action application="log" data="INFO x" loop="2"/>
          <!-- Hunting sees inline sets only: local=true is not set yet. -->
          <condition field="${local}" expression="^$">
            <action application="hangup" data="USER_BUSY"/>
          </condition>
        </condition>
      </extension>
      <extension name="after">
        <condition field="destination_number" expression="^5000$">
          <action application="set" data="after=yes"/>
        </condition>
      </extension>
"""
    http.handler = lambda form: (200, document("public", extensions))
    switch.set_xml_curl(XmlCurlDialplan(http.url))
    ch = await switch.inbound_call(caller_number="5551234", destination_number="5012")
    assert await _ended(ch) == "USER_BUSY"
    assert _apps(recorder, ch.uuid) == [
        ("set", "area=555"),  # inline: run while hunting, seen by ${area} below
        ("set", "rest=1234"),
        ("set", "local=true"),
        ("set", "anti=ran"),
        ("set", "ext=12"),
        ("log", "INFO x"),
        ("log", "INFO x"),
        ("hangup", "USER_BUSY"),
    ]
    assert "skipped" not in ch.variables
    assert "after" not in ch.variables


async def test_the_global_context_is_hunted_when_the_channels_is_missing(
    switch: Switch, recorder: Recorder, http: HttpServer
) -> None:
    extensions = """      <extension name="any">
        <condition>
          <action application="hangup" data="CALL_REJECTED"/>
        </condition>
      </extension>
"""
    http.handler = lambda form: (200, document("global", extensions))
    switch.set_xml_curl(XmlCurlDialplan(http.url))
    ch = await switch.inbound_call(caller_number="1000", destination_number="5000")
    assert await _ended(ch) == "CALL_REJECTED"


def test_substitution_replaces_groups_and_keeps_escaped_dollars() -> None:
    import re

    match = re.search(r"^(\d)(\d)$", "42")
    assert substitute("a$1b$2c$3 \\$1", match) == "a4b2c $1"
    assert substitute("$1", None) == "$1"


def test_a_bad_url_or_timeout_is_refused_with_the_field() -> None:
    with pytest.raises(ValueError, match="xml_curl url"):
        XmlCurlDialplan("ftp://x")
    with pytest.raises(ValueError, match="xml_curl timeout"):
        XmlCurlDialplan("http://x", timeout=0)


@pytest.mark.slow
async def test_the_cti_links_real_router_routes_a_tenants_number(
    switch: Switch, recorder: Recorder, bus: Bus
) -> None:
    """cti's mod_xml_curl router (its own code) behind uvicorn on a real port, its number
    directory asking admin's number_lookup on a real bus (answered here for one number)."""

    async def number_lookup(request: NumberLookup) -> NumberLookupReply:
        if request.number == "+33140000000":
            return NumberLookupReply(
                found=True, number=request.number, tenant_id="acme", tenant_status="active"
            )
        return NumberLookupReply(found=False)

    await bus.serve(
        bus.subjects.platform_command(Service.ADMIN, "number_lookup"), NumberLookup, number_lookup
    )
    numbers = NumberDirectory(bus)
    await numbers.start()
    ctx = XmlCurlContext(numbers=numbers, ivr_socket=f"127.0.0.1:{_closed_port()}")
    app = FastAPI()
    for router in routers(ctx):
        app.include_router(router)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="off")
    )
    serving = asyncio.create_task(server.serve())
    try:
        for _ in range(500):
            if server.started:
                break
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        binding = XmlCurlDialplan(f"http://127.0.0.1:{port}")
        switch.set_xml_curl(binding)
        switch.set_dialplan({"*": [("hangup", "UNALLOCATED_NUMBER")]})
        ch = await switch.inbound_call(
            caller_number="+33612345678", destination_number="+33140000000"
        )
        # ivr is down: cti's fallback runs, and its transfer target is not cti's to answer.
        await _ended(ch)
        assert ch.variables["callmesh_tenant"] == "acme"
        assert ch.variables["callmesh_call_id"] == ch.uuid
        apps = [app for app, _ in _apps(recorder, ch.uuid)]
        # The document's own order (cti may add sets between these; their order is fixed).
        steps = ["socket", "answer", "playback", "transfer"]
        assert [app for app in apps if app in steps] == steps
        other = await switch.inbound_call(caller_number="+33612345678", destination_number="+33999")
        assert await _ended(other) == "UNALLOCATED_NUMBER"
        assert binding.stats["found"] == 1
        assert binding.stats["fallbacks"] >= 2
    finally:
        server.should_exit = True
        await serving
        await numbers.stop()
