"""Spread transfers over several dynamic-provider processes: the fallback to a wider pool.

Every Python dynamic resource of a stack is served by one ``pulumi-python`` provider process
whose gRPC server runs at most four calls at a time. Where ``worker_pool.py`` can widen that
process's pool (the SDK versions it was proven against) one process serves every transfer and
this module does nothing by default. Elsewhere, or when ``DICOM_TRANSFER_PROVIDER_SHARDS`` asks
for it, transfers are assigned, in the order the program declares them, to a small pool of
explicit ``pulumi-python`` provider resources ("shards"), each its own process, four transfers
to a shard before the next shard is opened, wrapping around when all are full: with 4 shards,
16 transfers wait side by side. Each shard process costs every preview ~0.1-0.15 s, as the
engine starts plugins one after another.

A transfer moving to another shard, or back to the default provider, is not replaced: the
shards have identical (empty) configuration, and the engine only replaces a resource whose
provider's configuration changed.

``DICOM_TRANSFER_PROVIDER_SHARDS`` sets the pool size (1: every transfer uses the default
provider process, as plain dynamic resources do). A transfer given an explicit ``provider`` in
its options keeps it.
"""

from __future__ import annotations

import os
import threading

import pulumi
from pulumi.runtime.settings import get_monitor

from dicom_transfer.worker_pool import widening_problem

__all__ = ["FALLBACK_SHARDS", "SHARDS_ENV", "default_shards", "provider_options"]

FALLBACK_SHARDS = 4
"""Shards used where the provider process's pool cannot be widened: 16 transfers at once."""
CALLS_PER_PROCESS = 4
"""Concurrent calls one ``python -m pulumi.dynamic`` process serves (its gRPC thread pool)."""
SHARDS_ENV = "DICOM_TRANSFER_PROVIDER_SHARDS"
PROVIDER_PACKAGE = "pulumi-python"


class _ShardPool:
    """The program's shard providers, created on first use, filled four transfers at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._run: object = None
        self._providers: dict[int, pulumi.ProviderResource] = {}
        self._next = 0

    def next_provider(self, shards: int) -> pulumi.ProviderResource:
        with self._lock:
            # A new resource monitor means a new program run (tests run several programs in
            # one interpreter): providers registered with an earlier one must not be reused.
            run = get_monitor()
            if run is not self._run:
                self._run, self._providers, self._next = run, {}, 0
            index = (self._next // CALLS_PER_PROCESS) % shards
            self._next += 1
            provider = self._providers.get(index)
            if provider is None:
                provider = pulumi.ProviderResource(
                    PROVIDER_PACKAGE, f"dicom-transfer-shard-{index}", {}
                )
                self._providers[index] = provider
            return provider


_POOL = _ShardPool()


_warned = threading.Event()


def default_shards() -> int:
    """1 where the provider process widens its own pool, else :data:`FALLBACK_SHARDS`.

    The first time it answers :data:`FALLBACK_SHARDS` in a process it says why, as a warning
    in the CLI's output (the program runs once per ``pulumi`` command).
    """
    problem = widening_problem()
    if problem is None:
        return 1
    if not _warned.is_set():
        _warned.set()
        pulumi.log.warn(
            f"dicom-transfer: the provider process's thread pool is not widened ({problem}); "
            f"transfers are spread over {FALLBACK_SHARDS} provider processes, "
            f"{CALLS_PER_PROCESS} at a time each ({SHARDS_ENV} sets how many)."
        )
    return FALLBACK_SHARDS


def shard_count(environ: dict[str, str] | None = None) -> int:
    """The configured number of shards (at least 1; default: :func:`default_shards`).

    Raises:
        ValueError: ``DICOM_TRANSFER_PROVIDER_SHARDS`` is not a whole number from 1 to 64.
    """
    raw = (environ if environ is not None else dict(os.environ)).get(SHARDS_ENV, "")
    if not raw:
        return default_shards()
    if not raw.isdigit() or not 1 <= int(raw) <= 64:
        raise ValueError(f"{SHARDS_ENV}: got {raw!r}; expected a whole number from 1 to 64")
    return int(raw)


def provider_options(opts: pulumi.ResourceOptions | None) -> pulumi.ResourceOptions | None:
    """``opts`` with a shard provider, unless the user chose a provider or sharding is off."""
    if opts is not None and (opts.provider is not None or opts.providers):
        return opts
    shards = shard_count()
    if shards == 1:
        return opts
    shard = pulumi.ResourceOptions(provider=_POOL.next_provider(shards))
    return pulumi.ResourceOptions.merge(opts, shard)
