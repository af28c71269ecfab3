"""Messages of the native provider to the engine, on the resource's row.

An engine ``Log`` call with the resource's URN shows in that resource's row; with
``ephemeral=True`` it shows in the Info column while the resource runs and is dropped from the
final diagnostics (measured with pulumi 3.274, see the reference notes). The gRPC channel to
the engine is created inside the running event loop (an asyncio channel must be); worker
threads hand their lines to that loop. Without an engine (tests, a plugin run by hand) lines go
to stderr whole (:func:`~dicom_transfer.output.write_line`), as the dynamic providers' do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import grpc  # type: ignore[import-untyped]
from pulumi.runtime.proto import engine_pb2, engine_pb2_grpc

from dicom_transfer.output import write_line

__all__ = ["EngineLog"]

_DELIVERY_SECONDS = 5.0
"""How long a worker thread waits for a line to reach the engine (keeps lines in order)."""


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class EngineLog:
    """Sends info lines to the engine, or to stderr when there is no engine (tests).

    Args:
        address: The engine's gRPC address (the plugin's first argument), or None.
    """

    def __init__(self, address: str | None) -> None:
        self._address = address
        self._stub: engine_pb2_grpc.EngineStub | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _connect(self) -> engine_pb2_grpc.EngineStub | None:
        if self._address is None:
            return None
        if self._stub is None:
            self._loop = asyncio.get_running_loop()
            self._stub = engine_pb2_grpc.EngineStub(grpc.aio.insecure_channel(self._address))
        return self._stub

    async def info(self, urn: str, message: str, *, ephemeral: bool = False) -> None:
        """Shows ``message`` on the row of ``urn`` (a status line when ``ephemeral``)."""
        stub = self._connect()
        if stub is None:
            write_line(message)
            return
        request = engine_pb2.LogRequest(
            severity=engine_pb2.INFO, message=message, urn=urn, ephemeral=ephemeral
        )
        await stub.Log(request)

    def progress(self, urn: str) -> Callable[[str], None]:
        """A progress sink for a worker thread: each line becomes an ephemeral row status.

        Must be called on the event loop (it binds the loop the sink hands its lines to).
        """
        self._connect()
        loop = self._loop
        tasks: set[asyncio.Task[None]] = set()  # strong references until each line is sent

        def emit(line: str) -> None:
            if loop is None:
                write_line(line)
                return
            if _running_loop() is loop:
                # On the loop itself: waiting for the line would block the loop that sends it.
                task = loop.create_task(self.info(urn, line, ephemeral=True))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                return
            future = asyncio.run_coroutine_threadsafe(self.info(urn, line, ephemeral=True), loop)
            try:
                future.result(timeout=_DELIVERY_SECONDS)
            except Exception:
                future.cancel()

        return emit
