"""Let the dynamic-provider process serve more than four calls at once.

Every Python dynamic resource of a stack is served by one ``python -m pulumi.dynamic`` process,
whose gRPC server hands each call to a ``ThreadPoolExecutor(max_workers=4)``. A ``create``
holds its thread for as long as its operation runs, so without help a fifth transfer waits for
one of the first four to finish. The SDK offers no setting for that pool, so the first call our
provider serves raises the ceiling of the pool that runs it (the executor keeps adding threads on
demand, up to the new ceiling; idle ones are reused). Other dynamic resources of the same stack
share the wider pool; the engine's ``--parallel`` still bounds what runs at once.

Nothing happens outside that process (unit tests, mocks). The widening is enabled where

* the installed ``pulumi`` SDK is in :data:`VERIFIED_SDK_RANGE`: from the lowest version the SDK
  matrix of ``make test`` proves (``requirements/lock-sdk-lowest.txt``, the lower bound of
  ``pulumi`` in ``pyproject.toml``) to the next major version; the newest locked SDK is the
  matrix's other end;
* the SDK's provider host still has the structure the widening relies on
  (:func:`host_structure_problem`): ``pulumi.dynamic.__main__.main`` builds its gRPC server on
  a ``concurrent.futures.ThreadPoolExecutor``, and the calling thread is a worker of such a pool.

Otherwise the widening turns itself off and says why once (``sharding.py`` in the program's
output when the SDK fails the first two checks, and then spreads transfers over four provider
processes; this module in the provider's output when only the last check fails), and transfers
run four at a time per process, as with any dynamic provider. ``DICOM_TRANSFER_PROVIDER_WORKERS``
sets the ceiling (4, the SDK's own, turns widening off). The e2e tests prove the widening with
the real provider process of both ends of the matrix.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
import threading
import types
import weakref
from concurrent.futures import ThreadPoolExecutor

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from dicom_transfer.output import write_line

__all__ = [
    "DEFAULT_WORKERS",
    "LOWEST_VERIFIED_SDK",
    "VERIFIED_SDK_RANGE",
    "WORKERS_ENV",
    "host_structure_problem",
    "in_provider_host",
    "widen_worker_pool",
    "widening_problem",
    "widening_verified",
    "worker_ceiling",
]

DEFAULT_WORKERS = 64
"""Ceiling of concurrent calls (threads are only started when calls wait for one)."""
SDK_WORKERS = 4
"""The ceiling ``pulumi.dynamic`` sets itself."""
MAX_WORKERS = 256
WORKERS_ENV = "DICOM_TRANSFER_PROVIDER_WORKERS"
LOWEST_VERIFIED_SDK = "3.231.0"
"""The lowest ``pulumi`` SDK the widening is proven with: the lowest leg of the SDK matrix of
``make test`` (``requirements/lock-sdk-lowest.txt``) and the lower bound in ``pyproject.toml``
(``tests/unit/test_worker_pool.py`` keeps the three equal)."""
VERIFIED_SDK_RANGE = SpecifierSet(f">={LOWEST_VERIFIED_SDK},<4")
"""``pulumi`` SDK versions the widening is enabled for, if the host passes the structure check."""
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


def _host_main(module: types.ModuleType | None = None) -> types.CodeType | None:
    """The code of the provider host's ``main``: of the running module, else compiled unrun."""
    if module is not None:
        main = getattr(module, "main", None)
        return getattr(main, "__code__", None)
    try:
        spec = importlib.util.find_spec(PROVIDER_HOST_MODULE)
    except (ImportError, ValueError):
        return None
    loader = getattr(spec, "loader", None)
    get_code = getattr(loader, "get_code", None)
    # Compiling is enough: importing ``pulumi.dynamic.__main__`` would start a provider.
    code = get_code(PROVIDER_HOST_MODULE) if get_code is not None else None
    if not isinstance(code, types.CodeType):
        return None
    return next(
        (c for c in code.co_consts if isinstance(c, types.CodeType) and c.co_name == "main"),
        None,
    )


def host_structure_problem(module: types.ModuleType | None = None) -> str | None:
    """Why the SDK's provider host does not look as the widening expects, or None.

    The widening relies on ``pulumi.dynamic.__main__.main`` building its gRPC server as
    ``grpc.server(futures.ThreadPoolExecutor(max_workers=4), ...)`` (every SDK of
    :data:`VERIFIED_SDK_RANGE` the matrix ran; read in the SDK's source): its code must name
    ``ThreadPoolExecutor`` and ``server``.

    Args:
        module: The running host module (inside the provider process); None compiles the
            installed SDK's host module without running it (any process).

    Returns:
        None, or a sentence naming what differs.
    """
    code = _host_main(module)
    if code is None:
        return f"{PROVIDER_HOST_MODULE} has no main() to inspect"
    missing = {"ThreadPoolExecutor", "server"} - set(code.co_names)
    if missing:
        return (
            f"{PROVIDER_HOST_MODULE}.main() no longer builds its gRPC server on a "
            f"ThreadPoolExecutor (it names no {', '.join(sorted(missing))})"
        )
    return None


def _sdk_problem() -> str | None:
    """Why the installed ``pulumi`` SDK is outside :data:`VERIFIED_SDK_RANGE`, or None."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version("pulumi")
    except PackageNotFoundError:
        return "the pulumi SDK is not installed"
    try:
        if Version(installed) in VERIFIED_SDK_RANGE:
            return None
    except InvalidVersion:
        pass
    return f"pulumi SDK {installed} is outside the verified range {VERIFIED_SDK_RANGE}"


@functools.cache
def widening_problem() -> str | None:
    """Why the installed SDK's provider process cannot be widened, or None (cached).

    Checks the SDK version and the host module's structure without starting a provider, so
    the program process (``sharding.py``) and the provider process decide alike.
    """
    return _sdk_problem() or host_structure_problem()


def widening_verified() -> bool:
    """Whether the installed SDK's provider host passes :func:`widening_problem`'s checks."""
    return widening_problem() is None


def _calling_executor() -> ThreadPoolExecutor | None:
    """The executor whose worker thread is running this call, if it is one."""
    # A worker thread is started with ``target=_worker, args=(weakref.ref(executor), ...)``
    # (CPython 3.8 to 3.14); ``Thread`` keeps its args until the target returns.
    args = getattr(threading.current_thread(), "_args", ())
    reference = args[0] if isinstance(args, tuple) and args else None
    executor = reference() if isinstance(reference, weakref.ref) else None
    return executor if isinstance(executor, ThreadPoolExecutor) else None


_warned = threading.Event()


def _warn_once(ceiling: int, problem: str) -> None:
    """Says (once per process, in the CLI's output) that transfers run four at a time."""
    if ceiling <= SDK_WORKERS or _warned.is_set():
        return
    _warned.set()
    write_line(
        f"dicom-transfer: could not widen this provider process's thread pool ({problem}); "
        "at most 4 transfers run at once in it. Set DICOM_TRANSFER_PROVIDER_SHARDS=4 to spread "
        "them over 4 provider processes."
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
    if widening_problem() is not None:
        return False  # sharding.py said why in the program's output and spreads transfers
    # The running host, not only the installed file (force: tests, whose __main__ is pytest).
    problem = None if force else host_structure_problem(sys.modules["__main__"])
    executor = _calling_executor()
    if problem is None and (
        executor is None or not isinstance(getattr(executor, "_max_workers", None), int)
    ):
        problem = "the calling thread is no worker of a concurrent.futures ThreadPoolExecutor"
    if problem is not None or executor is None:
        _warn_once(ceiling, problem or "")
        return False
    with _lock:
        if executor._max_workers < ceiling:
            executor._max_workers = ceiling
    return True
