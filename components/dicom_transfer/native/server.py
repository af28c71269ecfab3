"""The plugin's gRPC server: the SDK's servicer with clean failures and partial state.

The SDK's servicer (``pulumi.provider.experimental.server``) reports any exception of a
provider method as its message plus a Python traceback. Failures of our provider are meant for
the user: :class:`~dicom_transfer.native.provider.ProviderFailure` becomes one message (no
traceback); :class:`~dicom_transfer.native.provider.InitializationFailure` also carries the
resource's state as the protocol's ``ErrorResourceInitFailed`` detail, so the engine records the
resource with its outputs and an initialization error. An unexpected exception is reported in
one line too, its traceback going to the plugin's stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

import grpc  # type: ignore[import-untyped]
from pulumi.provider.experimental.property_value import PropertyValue
from pulumi.provider.experimental.server import ProviderServicer
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc, status_pb2

from dicom_transfer.native.provider import (
    DicomTransferProvider,
    InitializationFailure,
    ProviderFailure,
)
from dicom_transfer.native.schema import PACKAGE, package_version

__all__ = ["CleanServicer", "serve"]

_Handler = Callable[[Any, Any, Any], Awaitable[Any]]
_RPCS = (
    "GetSchema",
    "CheckConfig",
    "Configure",
    "Check",
    "Diff",
    "Create",
    "Read",
    "Update",
    "Delete",
)


def _provider_failure(error: BaseException) -> ProviderFailure | None:
    """Our failure behind ``error`` (the SDK re-raises it as a plain Exception)."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ProviderFailure):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


async def _abort(context: Any, error: Exception) -> None:
    failure = _provider_failure(error)
    if failure is None:
        traceback.print_exception(error, file=sys.stderr)
        message = f"{PACKAGE}: internal error: {type(error).__name__}: {error}".split("\n")[0]
        await context.abort(grpc.StatusCode.UNKNOWN, message)
        return
    message = str(failure)
    if not isinstance(failure, InitializationFailure):
        await context.abort(grpc.StatusCode.UNKNOWN, message)
        return
    status = status_pb2.Status(code=grpc.StatusCode.UNKNOWN.value[0], message=message)
    status.details.add().Pack(
        provider_pb2.ErrorResourceInitFailed(
            id=failure.resource_id,
            properties=PropertyValue.marshal_map(failure.properties),
            inputs=PropertyValue.marshal_map(failure.inputs),
            reasons=[message],
        )
    )
    await context.abort(
        grpc.StatusCode.UNKNOWN,
        message,
        trailing_metadata=(("grpc-status-details-bin", status.SerializeToString()),),
    )


def _clean(rpc: _Handler) -> _Handler:
    async def handler(self: Any, request: Any, context: Any) -> Any:
        try:
            return await rpc(self, request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as error:
            await _abort(context, error)

    return handler


class CleanServicer(ProviderServicer):
    """The SDK's servicer; each resource RPC reports failures as described above."""


for _rpc in _RPCS:
    setattr(CleanServicer, _rpc, _clean(getattr(ProviderServicer, _rpc)))


async def serve(engine_address: str, args: list[str]) -> None:
    """Serves the provider on a free local port, printed on stdout (the plugin handshake).

    Args:
        engine_address: The engine's gRPC address.
        args: The plugin's command-line arguments.
    """
    from pulumi.runtime._grpc_settings import _GRPC_CHANNEL_OPTIONS

    server = grpc.aio.server(options=_GRPC_CHANNEL_OPTIONS)
    servicer = CleanServicer(
        args,
        package_version(),
        DicomTransferProvider(engine_address),
        engine_address=engine_address,
    )
    provider_pb2_grpc.add_ResourceProviderServicer_to_server(servicer, server)
    port = server.add_insecure_port(address="127.0.0.1:0")
    await server.start()
    sys.stdout.write(f"{port}\n")
    sys.stdout.flush()
    try:
        await server.wait_for_termination()
    finally:
        # Stopped inside the loop: a server left to the garbage collector schedules its
        # shutdown on a closed loop and prints a traceback to the engine's log.
        await server.stop(None)


def main(argv: list[str] | None = None) -> None:
    """``pulumi-resource-dicomtransfer ENGINE_ADDRESS [--logtostderr] [-v=N] ...``."""
    args = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog=f"pulumi-resource-{PACKAGE}")
    parser.add_argument("engine", help="the Pulumi engine's gRPC address")
    known, _ = parser.parse_known_args(args)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(known.engine, args))


if __name__ == "__main__":
    main()
