"""Let the dynamic-provider process serve more than four calls at once.

Every Python dynamic resource of a stack is served by one ``python -m pulumi.dynamic`` process,
whose gRPC server hands each call to a ``ThreadPoolExecutor(max_workers=4)``. A ``create``
holds its thread for as long as its operation runs, so without help a fifth transfer waits for
one of the first four to finish. The SDK offers no setting for that pool, so the first call our
provider serves raises the ceiling of the pool that runs it (the executor keeps adding threads on
demand, up to the new ceiling; idle ones are reused). Other dynamic resources of the same stack
share the wider pool; the engine's ``--parallel`` still bounds what runs at once.

Nothing happens outside that process (unit tests, mocks), and nothing is forced when the
calling thread is not a pool worker: the call then reports ``False``, says so once in the
CLI's output, and transfers run four at a time, as with any dynamic provider
(``DICOM_TRANSFER_PROVIDER_SHARDS`` spreads them over more processes instead; see
``sharding.py``). ``DICOM_TRANSFER_PROVIDER_WORKERS`` sets the ceiling (4, the SDK's own,
turns widening off). The e2e tests prove the widening with the pinned SDK's
real provider process; ``VERIFIED_SDK_VERSIONS`` names the SDK versions it was proven with.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor

__all__ = [
    "DEFAULT_WORKERS",
    "VERIFIED_SDK_VERSIONS",
    "WORKERS_ENV",
    "in_provider_host",
    "widen_worker_pool",
    "widening_verified",
    "worker_ceiling",
]

DEFAULT_WORKERS = 64
"""Ceiling of concurrent calls (threads are only started when calls wait for one)."""
SDK_WORKERS = 4
"""The ceiling ``pulumi.dynamic`` sets itself."""
MAX_WORKERS = 256
WORKERS_ENV = "DICOM_TRANSFER_PROVIDER_WORKERS"
VERIFIED_SDK_VERSIONS = frozenset({"3.252.0"})
"""``pulumi`` SDK versions whose provider host the widening was proven against (e2e tests)."""
PROVIDER_HOST_MODULE = "pulumi.dynamic.__main__"
"""The module the ``pulumi-resource-pulumi-python`` plugin runs (``python -m pulumi.dynamic``)."""

_lock = threading.Lock()


def in_provider_host() -> bool:
    """Whether this interpreter is the SDK's dynamic-provider process."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return getattr(spec, "name", None) == PROVIDER_HOST_MODULE


def worker_ceiling(environ: dict[str, str] | None = None) -> int:
    """The configured ceiling of concurrent provider calls.

    Raises:
        ValueError: ``DICOM_TRANSFER_PROVIDER_WORKERS`` is not a whole number from 4 to 256.
    """
    raw = (environ if environ is not None else dict(os.environ)).get(WORKERS_ENV, "")
    if not raw:
        return DEFAULT_WORKERS
    if not raw.isdigit() or not SDK_WORKERS <= int(raw) <= MAX_WORKERS:
        raise ValueError(
            f"{WORKERS_ENV}: got {raw!r}; expected a whole number from {SDK_WORKERS} "
            f"(the SDK's own ceiling) to {MAX_WORKERS}"
        )
    return int(raw)


@functools.cache
def widening_verified() -> bool:
    """Whether the installed ``pulumi`` SDK is one the widening was proven against."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pulumi") in VERIFIED_SDK_VERSIONS
    except PackageNotFoundError:
        return False


def _calling_executor() -> ThreadPoolExecutor | None:
    """The executor whose worker thread is running this call, if it is one."""
    # A worker thread is started with ``target=_worker, args=(weakref.ref(executor), ...)``
    # (CPython 3.8 to 3.14); ``Thread`` keeps its args until the target returns.
    args = getattr(threading.current_thread(), "_args", ())
    reference = args[0] if isinstance(args, tuple) and args else None
    executor = reference() if isinstance(reference, weakref.ref) else None
    return executor if isinstance(executor, ThreadPoolExecutor) else None


_warned = threading.Event()


def _warn_once(ceiling: int) -> None:
    """Says (once per process, in the CLI's output) that transfers run four at a time."""
    if ceiling <= SDK_WORKERS or _warned.is_set():
        return
    _warned.set()
    print(
        "dicom-transfer: could not widen this provider process's thread pool (unexpected "
        "pulumi SDK or Python internals); at most 4 transfers run at once. Set "
        "DICOM_TRANSFER_PROVIDER_SHARDS=4 to spread them over 4 provider processes.",
        file=sys.stderr,
        flush=True,
    )


def widen_worker_pool(workers: int | None = None, *, force: bool = False) -> bool:
    """Raises the calling pool's ceiling to ``workers``; idempotent and cheap.

    Args:
        workers: The new ceiling (default: :func:`worker_ceiling`); a pool already that wide is
            left alone, a wider one is never narrowed.
        force: Also outside the provider host (tests).

    Returns:
        Whether the calling thread's pool now allows ``workers`` concurrent calls.

    Raises:
        ValueError: ``DICOM_TRANSFER_PROVIDER_WORKERS`` is malformed.
    """
    ceiling = worker_ceiling() if workers is None else workers
    if not force and not in_provider_host():
        return False
    executor = _calling_executor()
    if executor is None or not isinstance(getattr(executor, "_max_workers", None), int):
        _warn_once(ceiling)
        return False
    with _lock:
        if executor._max_workers < ceiling:
            executor._max_workers = ceiling
    return True
