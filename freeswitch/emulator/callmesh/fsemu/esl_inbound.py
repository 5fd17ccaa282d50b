"""The inbound Event Socket server (mod_event_socket listening on 8021)."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from callmesh.fsemu.esl_conn import EslConnection

if TYPE_CHECKING:
    from callmesh.fsemu.switch import Switch

log = logging.getLogger("callmesh.fsemu.esl")

__all__ = ["EslServer", "start_esl_server"]


class EslServer:
    """A running inbound ESL server."""

    def __init__(self, switch: Switch, password: str, acl: Sequence[str] | None = None) -> None:
        self.switch = switch
        self.password = password
        self.acl = [ipaddress.ip_network(net, strict=False) for net in acl] if acl else []
        self.port = 0
        self.host = ""
        self._server: asyncio.Server | None = None
        self._connections: set[EslConnection] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def _allowed(self, writer: asyncio.StreamWriter) -> bool:
        if not self.acl:
            return True
        peer = writer.get_extra_info("peername")
        try:
            address = ipaddress.ip_address(peer[0])
        except (TypeError, ValueError, IndexError):
            return False
        return any(address in net for net in self.acl)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self._allowed(writer):
            # listener_run: the ACL check comes before auth/request.
            message = b"Access Denied, go away.\n"
            writer.write(
                b"Content-Type: text/rude-rejection\nContent-Length: %d\n\n" % len(message)
                + message
            )
            with contextlib.suppress(Exception):
                await writer.drain()
                writer.close()
                await writer.wait_closed()
            return
        conn = EslConnection(self.switch, reader, writer, password=self.password)
        self._connections.add(conn)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await conn.serve()
        except Exception:
            log.exception("esl connection failed")
        finally:
            self._connections.discard(conn)
            if task is not None:
                self._tasks.discard(task)

    async def start(self, host: str, port: int) -> None:
        """Listen on host:port (port 0 picks a free one)."""
        self._server = await asyncio.start_server(self._handle, host, port)
        sock = self._server.sockets[0].getsockname()
        self.host, self.port = sock[0], sock[1]

    @property
    def connections(self) -> int:
        """How many clients are connected."""
        return len(self._connections)

    async def close(self) -> None:
        """Stop listening and close every connection."""
        if self._server is not None:
            self._server.close()
        for conn in list(self._connections):
            await conn.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)


async def start_esl_server(
    switch: Switch,
    host: str = "127.0.0.1",
    port: int = 8021,
    password: str = "ClueCon",
    *,
    acl: Sequence[str] | None = None,
) -> EslServer:
    """Start the inbound ESL server for `switch` (`acl`: networks allowed to connect)."""
    server = EslServer(switch, password, acl)
    await server.start(host, port)
    return server
