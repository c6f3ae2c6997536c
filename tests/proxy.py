"""A TCP proxy in front of a real server that can lose a reply on purpose.

``drop_reply_to(marker)`` arms it: the next client data containing ``marker``
is forwarded to the server (which executes it), and the connection is then cut
before the server's reply reaches the client. That is the one failure a client
cannot resolve by itself: did the command run? The proxy runs its own event
loop in a thread, so sync and async clients use it alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

from tests.servers import free_port


class ReplyDroppingProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self.forwarded: list[bytes] = []  # every client chunk sent upstream, in order
        self._markers: list[bytes] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def drop_reply_to(self, marker: bytes) -> None:
        """Lose the reply to the next request containing ``marker`` (once)."""
        with self._lock:
            self._markers.append(marker)

    def count(self, marker: bytes) -> int:
        """How many forwarded chunks contained ``marker``."""
        with self._lock:
            return sum(marker in chunk for chunk in self.forwarded)

    def _take_marker(self, data: bytes) -> bool:
        with self._lock:
            self.forwarded.append(data)
            for marker in self._markers:
                if marker in data:
                    self._markers.remove(marker)
                    return True
            return False

    async def _handle(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        with contextlib.suppress(asyncio.CancelledError):  # the proxy stopping: not an error
            await self._relay(client_in, client_out)

    async def _relay(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        try:
            server_in, server_out = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except BaseException:
            client_out.close()
            raise
        cut = asyncio.Event()

        async def upstream() -> None:
            while data := await client_in.read(65536):
                drop = self._take_marker(data)
                if drop:
                    cut.set()  # before the server can answer
                server_out.write(data)
                await server_out.drain()
                if drop:
                    return

        async def downstream() -> None:
            while data := await server_in.read(65536):
                if cut.is_set():
                    return  # the server answered; the client never hears it
                client_out.write(data)
                await client_out.drain()

        tasks = [asyncio.create_task(upstream()), asyncio.create_task(downstream())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if cut.is_set():
                await tasks[1]  # wait for the reply, so the command surely ran
        finally:
            for task in tasks:
                task.cancel()
            for writer in (client_out, server_out):
                writer.close()  # both at once: a cancellation below cannot leave one open
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.gather(
                client_out.wait_closed(), server_out.wait_closed(), return_exceptions=True
            )

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", self.port)
        )
        self._server = server
        self._ready.set()
        self._loop.run_forever()
        server.close()
        self._loop.run_until_complete(server.wait_closed())
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.close()

    def start(self) -> ReplyDroppingProxy:
        self._thread.start()
        self._ready.wait(5)
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


@contextlib.contextmanager
def reply_dropping_proxy(upstream_port: int) -> Iterator[ReplyDroppingProxy]:
    proxy = ReplyDroppingProxy(upstream_port).start()
    try:
        yield proxy
    finally:
        proxy.stop()
