"""Outbound Event Socket: the `socket` application connecting to `host:port [async] [full]`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from callmesh.fsemu.esl_conn import EslConnection

if TYPE_CHECKING:
    from callmesh.fsemu.switch import Channel

log = logging.getLogger("callmesh.fsemu.esl")

CONNECT_TIMEOUT = 5.0


async def socket_app(ch: Channel, data: str) -> None:
    """socket_function: connect out, serve the session, park (async) or run inline (static)."""
    from callmesh.fsemu.apps import park_loop

    argv = data.split()
    if not argv:
        log.error("%s: socket: Parse Error!", ch.name)
        return
    flags = {a.lower() for a in argv[1:]}
    full = "full" in flags
    async_mode = "async" in flags
    streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    for target in argv[0].split("|"):
        host, _, port_text = target.rpartition(":")
        if not host:
            host, port_text = target, "8084"
        port_text, _, path = port_text.partition("/")
        if path:
            ch.set_var("socket_path", path)
        ch.set_var("socket_host", host)
        try:
            port = int(port_text)
            streams = await asyncio.wait_for(asyncio.open_connection(host, port), CONNECT_TIMEOUT)
            break
        except (OSError, ValueError, TimeoutError) as err:
            log.warning("%s: socket %s: %s", ch.name, target, err)
    if streams is None:
        return
    reader, writer = streams
    conn = EslConnection(
        ch.switch,
        reader,
        writer,
        session=ch,
        outbound=True,
        async_mode=async_mode,
        full=full,
    )
    ch.socket_listeners.append(conn)
    try:
        if not async_mode:
            await conn.serve(first_reply=False)
            return
        task = asyncio.ensure_future(conn.serve(first_reply=False))
        task.add_done_callback(lambda _t: ch.release_control())
        waiter = asyncio.ensure_future(conn.connected.wait())
        hung = asyncio.ensure_future(ch._hangup_evt.wait())
        try:
            await asyncio.wait({waiter, hung, task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            hung.cancel()
        if ch.ready and not task.done():
            await park_loop(ch)
        if not task.done():
            # The listener keeps its session until the channel goes away.
            ch.spawn(_finish_later(ch, task))
    finally:
        with contextlib.suppress(ValueError):
            ch.socket_listeners.remove(conn)


async def _finish_later(ch: Channel, task: asyncio.Future[None]) -> None:
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.shield(task)
