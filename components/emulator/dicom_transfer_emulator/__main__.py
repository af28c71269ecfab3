"""Command line: ``python -m dicom_transfer_emulator`` / ``dicom-transfer-emulator``.

Serves the Healthcare API on ``--port`` and the Cloud Storage JSON API on ``--storage-port``
(0 picks free ports), prints exactly one JSON line ``{"healthcare": URL, "storage": URL}`` on
stdout once both accept connections, logs one line per request on stderr, and stops cleanly
(exit status 0) on SIGINT or SIGTERM. See :mod:`.faults` for the ``--fault`` syntax.

``dicom-transfer-emulator seed [...]`` seeds a running emulator instead (:func:`.seed.main`).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from .app import Emulator
from .errors import ApiException
from .faults import FaultInjector


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the emulator command."""
    parser = argparse.ArgumentParser(
        prog="dicom-transfer-emulator",
        description="Local emulator of the Cloud Healthcare API (DICOM) and Cloud Storage.",
        epilog=(
            "Fault syntax: [SCOPE@]METHOD:PATH_REGEX=ACTION[xCOUNT] or "
            "[SCOPE@]API_METHOD=ACTION[xCOUNT] (API_METHOD a discovery id such as "
            "storage.objects.insert) with ACTION an HTTP status (503, 429, ...), "
            "delay<SECONDS>s, reset or reset-after, COUNT a number or * (default 1); e.g. "
            "'POST:.*:import=503x2'. SCOPE limits the fault to requests with the header "
            "x-emulator-fault-scope: SCOPE. Also operation-seconds=S, instance-seconds=S, "
            "fail-operation=CODE[:MESSAGE], and fail-instance=[import:|export:]uid:UID"
            "[:CODE[:MESSAGE]] or fail-instance=[import:|export:]path:GLOB[:CODE[:MESSAGE]] "
            "(every matching instance fails, the others succeed). "
            "'dicom-transfer-emulator seed --help': seed a running emulator with a DICOM "
            "store, buckets and sample files."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="Healthcare API port (0: any)")
    parser.add_argument(
        "--storage-port", type=int, default=9023, help="Cloud Storage JSON API port (0: any)"
    )
    parser.add_argument("--data-dir", help="persist state here (default: memory only)")
    parser.add_argument(
        "--permission-checks",
        action="store_true",
        help="import/export need the service agent's role in the bucket IAM policy",
    )
    parser.add_argument(
        "--propagation-delay",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="seconds before a new bucket IAM grant takes effect (default 0)",
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help="inject a fault (repeatable), e.g. 'POST:.*:import=503x2'",
    )
    parser.add_argument(
        "--max-body-mb", type=float, default=128.0, help="largest request body (default 128)"
    )
    parser.add_argument("--quiet", action="store_true", help="do not log requests")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the emulator until SIGINT/SIGTERM.

    Args:
        argv: Arguments (``sys.argv[1:]`` when None).

    Returns:
        The exit status (0 after a clean stop).
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["seed"]:
        from .seed import main as seed_main  # needs the [clients] extra, which serving does not

        return seed_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    for spec in args.fault:
        try:
            FaultInjector().add_spec(spec)
        except ApiException as exc:
            parser.error(f"--fault: {exc.message}")
    if args.propagation_delay < 0:
        parser.error("--propagation-delay must be >= 0")
    try:
        emulator = Emulator(
            host=args.host,
            port=args.port,
            storage_port=args.storage_port,
            data_dir=args.data_dir,
            permission_checks=args.permission_checks,
            propagation_delay_s=args.propagation_delay,
            log_stream=None if args.quiet else sys.stderr,
            max_body_bytes=int(args.max_body_mb * 1024 * 1024),
            faults=args.fault,
        )
    except OSError as exc:
        print(f"dicom-transfer-emulator: cannot listen: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    emulator.start()
    print(json.dumps(emulator.endpoints()), flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        emulator.stop()
    print("dicom-transfer-emulator: stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
