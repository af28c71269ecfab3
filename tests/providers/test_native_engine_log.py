"""EngineLog: progress lines reach the engine as ephemeral messages on the resource's row."""

from __future__ import annotations

import asyncio
from typing import Any

from dicom_transfer.native.engine_log import EngineLog
from support.lifecycle_cases import run_async

URN = "urn:pulumi:local::p::dicomtransfer:index:DicomImport::load"


class FakeEngine:
    """Records the Log requests an EngineLog sends."""

    def __init__(self) -> None:
        self.requests: list[Any] = []

    async def Log(self, request: Any) -> None:
        self.requests.append(request)


def test_progress_from_a_worker_thread_and_from_the_loop_reaches_the_row() -> None:
    engine = FakeEngine()

    async def scenario() -> list[str]:
        log = EngineLog("127.0.0.1:0")
        log._stub = engine  # type: ignore[assignment]
        log._loop = asyncio.get_running_loop()
        emit = log.progress(URN)
        # From a worker thread (a waiting transfer): delivered before emit returns.
        await asyncio.get_running_loop().run_in_executor(None, emit, "from a thread")
        assert [r.message for r in engine.requests] == ["from a thread"]
        # On the loop itself emit must not wait for the loop (it would block it): queued.
        emit("on the loop")
        assert len(engine.requests) == 1
        await asyncio.sleep(0.01)
        return [r.message for r in engine.requests]

    assert run_async(scenario()) == ["from a thread", "on the loop"]
    assert all(r.urn == URN and r.ephemeral for r in engine.requests)
