"""The small asyncio ESL client: a bad event is recorded and skipped, reading goes on."""

from __future__ import annotations

import asyncio

from callmesh.core.esl import event_frame, serialize_event_plain
from callmesh.fsemu.world.eslclient import EslClient


async def test_a_malformed_event_is_recorded_and_the_next_one_still_arrives() -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Content-Type: auth/request\n\n")
        await reader.readuntil(b"\n\n")
        writer.write(b"Content-Type: command/reply\nReply-Text: +OK accepted\n\n")
        writer.write(event_frame(b"no colon on this line\n\n"))
        writer.write(event_frame(serialize_event_plain([("Event-Name", "HEARTBEAT")])))
        await writer.drain()
        await reader.read()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = await EslClient.connect("127.0.0.1", port)
    try:
        event = await client.next_event(lambda e: True)
        assert event.name == "HEARTBEAT"
        assert len(client.malformed) == 1
    finally:
        await client.close()
        server.close()
        await server.wait_closed()
