"""Section "p2" (issues 4 and 8): 64 concurrent imports in one ``pulumi up`` vs one import,
on both ends of the SDK matrix.

A throw-away project declares ``transfers`` :class:`~dicom_transfer.DicomImport` resources,
each reading its own emulator bucket (two files) into the run's own store, so every resource is
its own operation (checked against the emulator's request log). The emulator's
``operation-seconds`` fault makes every operation take the same ``operation_s``. Each run is a
new stack, timed from ``pulumi up --yes`` starting to its exit (preview, provider start-up
and the waits included). For each ``pulumi`` SDK of the matrix (``sdk_matrix``: this
interpreter's ``.venv``, the newest locked SDK, and ``.venv-sdk-lowest``, the lowest supported
one; program, language host and provider all run in that virtualenv):

* ``single_s``: 1 import;
* ``many_s``: ``transfers`` (64) imports, served by one provider process whose thread pool the
  first call widened (``worker_pool.py``); ``ratio`` = many_s / single_s (target <= 1.25).
  The engine runs at most ``--parallel`` resource operations at once: ``PULUMI_PARALLEL``,
  which ``tools/pulumi_host/pulumi-env.sh`` sets to 64 unless the user did
  (``engine_parallel``); the provider's ceiling is ``DICOM_TRANSFER_PROVIDER_WORKERS`` (64 by
  default).

The section's ``ratio`` is the worst of the matrix; ``single_s``, ``many_s`` and the contrasts
are those of the newest SDK. Contrasts (first round, newest SDK only, unless turned off), each
with ``contrast_transfers`` = min(transfers, 16) imports so that they finish in minutes:
``engine_default_s`` / ``engine_default_ratio``, the engine's own ``--parallel`` default of
4 x CPUs (``engine_default_parallel``; 8 on 2 CPUs: the creates run in waves whatever the
provider does), measured only when that default is below ``contrast_transfers``;
``sdk_pool_s`` / ``sdk_pool_ratio``, ``DICOM_TRANSFER_PROVIDER_WORKERS=4`` -- the SDK's own
pool of four, about ``ceil(contrast_transfers / 4)`` operation durations (``sdk_pool_waves``);
``sharded_s`` / ``sharded_ratio``, the same pool of four but ``DICOM_TRANSFER_PROVIDER_SHARDS=4``
provider processes (the fallback for SDKs whose pool is not widened).

One untimed ``pulumi preview`` per SDK first warms the page cache and bytecode up. With
``rounds`` > 1 the runs alternate (each SDK: single, many; then the next round) and the
figures are medians.
"""

from __future__ import annotations

import math
import statistics
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench_common import (
    create_dataset,
    create_store,
    fresh_copies,
    http_json,
    upload_objects,
)
from bench_pulumi import (
    PARALLEL_ENV,
    PulumiProject,
    default_parallel,
    sdk_matrix_pythons,
    sdk_version,
)
from dicom_transfer.healthcare.credentials import HEALTHCARE_EMULATOR_ENV, STORAGE_EMULATOR_ENV
from dicom_transfer.healthcare.journal import STATE_DIR_ENV
from dicom_transfer.sharding import FALLBACK_SHARDS, SHARDS_ENV
from dicom_transfer.worker_pool import SDK_WORKERS, WORKERS_ENV
from dicom_transfer_emulator.testing.clients import healthcare_client
from dicom_transfer_emulator.testing.launch import EmulatorProcess

BUCKET_PREFIX = "bench-p2-src"
FILES_PER_IMPORT = 2
TARGET_RATIO = 1.25
CONTRAST_TRANSFERS = 16
"""Imports of each contrast run (the SDK's pool of four would take 16 waves of 64)."""

PROGRAM = """\
import pulumi
from dicom_transfer import DicomImport

config = pulumi.Config()
for index in range(config.require_int("imports")):
    DicomImport(
        f"import-{index:02d}",
        dicom_store=config.require("store"),
        gcs_uri=f"gs://{config.require('buckets')}-{index:02d}/in/**.dcm",
        triggers=[pulumi.get_stack()],
    )
"""


@dataclass
class SdkRuns:
    """Wall times (seconds) of ``pulumi up --yes`` under one ``pulumi`` SDK."""

    sdk: str
    python: str
    single_runs_s: list[float] = field(default_factory=list)
    many_runs_s: list[float] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return _ratio(self.many_runs_s, statistics.median(self.single_runs_s))

    def to_json(self) -> dict[str, Any]:
        """``{"sdk", "ratio", "single_s", "many_s", "python", "runs_s"}``."""
        return {
            "sdk": self.sdk,
            "ratio": self.ratio,
            "single_s": _seconds(self.single_runs_s),
            "many_s": _seconds(self.many_runs_s),
            "python": self.python,
            "runs_s": {
                "single": [round(s, 2) for s in self.single_runs_s],
                "many": [round(s, 2) for s in self.many_runs_s],
            },
        }


@dataclass
class P2Figures:
    """Everything the section measured."""

    transfers: int
    operation_s: float
    contrast_transfers: int
    matrix: list[SdkRuns] = field(default_factory=list)
    """The newest SDK first."""
    engine_parallel: int | None = None
    engine_default_parallel: int | None = None
    engine_default_runs_s: list[float] = field(default_factory=list)
    sdk_pool_runs_s: list[float] = field(default_factory=list)
    sharded_runs_s: list[float] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The documented figures (``ratio``, ``transfers``, ``sdk_matrix``, ...)."""
        newest = self.matrix[0]
        single = statistics.median(newest.single_runs_s)
        figures: dict[str, Any] = {
            "ratio": max(runs.ratio for runs in self.matrix),
            "transfers": self.transfers,
            "sdk_matrix": [runs.to_json() for runs in self.matrix],
            "single_s": _seconds(newest.single_runs_s),
            "many_s": _seconds(newest.many_runs_s),
            "operation_s": self.operation_s,
            "provider_processes": 1,
            "engine_parallel": self.engine_parallel,
            "engine_default_parallel": self.engine_default_parallel,
            "rounds": len(newest.single_runs_s),
            "overhead_s": round(single - self.operation_s, 2),
            "target_ratio": TARGET_RATIO,
            "contrast_transfers": self.contrast_transfers,
        }
        if self.engine_default_runs_s:
            figures["engine_default_ratio"] = _ratio(self.engine_default_runs_s, single)
            figures["engine_default_s"] = _seconds(self.engine_default_runs_s)
        if self.sdk_pool_runs_s:
            figures["sdk_pool_ratio"] = _ratio(self.sdk_pool_runs_s, single)
            figures["sdk_pool_s"] = _seconds(self.sdk_pool_runs_s)
            figures["sdk_pool_waves"] = math.ceil(self.contrast_transfers / SDK_WORKERS)
        if self.sharded_runs_s:
            figures["sharded_ratio"] = _ratio(self.sharded_runs_s, single)
            figures["sharded_s"] = _seconds(self.sharded_runs_s)
            figures["shards"] = FALLBACK_SHARDS
        return figures


def _seconds(runs: list[float]) -> float:
    return round(statistics.median(runs), 2)


def _ratio(runs: list[float], single_s: float) -> float:
    return round(statistics.median(runs) / single_s, 3)


@dataclass(frozen=True)
class RunKind:
    """One kind of run: how many imports, with which environment."""

    name: str
    imports: int
    runs: list[float]
    env: dict[str, str] = field(default_factory=dict)


def measure(
    *,
    transfers: int = 64,
    operation_s: float = 15.0,
    contrasts: bool = True,
    rounds: int = 1,
    pythons: list[Path] | None = None,
) -> P2Figures:
    """Runs the section.

    Args:
        transfers: Imports of the concurrent runs (issue 8: 64).
        operation_s: Emulated duration of every operation.
        contrasts: Also time :data:`CONTRAST_TRANSFERS` imports with the engine's default
            ``--parallel``, with the SDK's pool of four, and over the fallback shards (first
            round, newest SDK only).
        rounds: Alternating rounds (medians are reported).
        pythons: Interpreters of the SDK matrix (default: :func:`sdk_matrix_pythons`).

    Raises:
        RuntimeError: ``.venv-sdk-lowest`` is missing, or a run failed or did not submit one
            import per resource.
    """
    pythons = sdk_matrix_pythons() if pythons is None else pythons
    contrast_transfers = min(transfers, CONTRAST_TRANSFERS)
    figures = P2Figures(transfers, operation_s, contrast_transfers)
    with (
        tempfile.TemporaryDirectory(prefix="bench-p2-") as tmp,
        EmulatorProcess() as emulator,
    ):
        client, env = seed_imports(emulator, transfers, operation_s, Path(tmp))
        projects = []
        for leg, python in enumerate(pythons):
            project = PulumiProject(Path(tmp) / f"p2-sdk{leg}", PROGRAM, env=env, python=python)
            figures.matrix.append(SdkRuns(sdk_version(python), str(python)))
            warm_up(project, client, transfers, f"sdk{leg}")
            projects.append(project)
        newest_project = projects[0]
        engine_default = {PARALLEL_ENV: ""}
        figures.engine_parallel = default_parallel(newest_project)
        figures.engine_default_parallel = default_parallel(newest_project, engine_default)
        sdk_pool = {WORKERS_ENV: str(SDK_WORKERS)}
        contrast_kinds = [
            RunKind("sdk-pool", contrast_transfers, figures.sdk_pool_runs_s, env=sdk_pool),
            RunKind(
                "sharded",
                contrast_transfers,
                figures.sharded_runs_s,
                env={**sdk_pool, SHARDS_ENV: str(FALLBACK_SHARDS)},
            ),
        ]
        if (figures.engine_default_parallel or 0) < contrast_transfers:
            contrast_kinds.insert(
                0,
                RunKind(
                    "default", contrast_transfers, figures.engine_default_runs_s, env=engine_default
                ),
            )
        for round_ in range(rounds):
            for leg, (project, runs) in enumerate(zip(projects, figures.matrix, strict=True)):
                kinds = [
                    RunKind(f"sdk{leg}-single", 1, runs.single_runs_s),
                    RunKind(f"sdk{leg}-many", transfers, runs.many_runs_s),
                ]
                for kind in kinds:
                    kind.runs.append(
                        timed_up(project, client, emulator.healthcare_url, kind, round_)
                    )
            if contrasts and round_ == 0:
                for kind in contrast_kinds:
                    kind.runs.append(
                        timed_up(newest_project, client, emulator.healthcare_url, kind, round_)
                    )
    return figures


def seed_imports(
    emulator: EmulatorProcess, transfers: int, operation_s: float, tmp: Path
) -> tuple[Any, dict[str, str]]:
    """Seeds ``transfers`` source buckets and makes every operation take ``operation_s``.

    Returns:
        The Healthcare client (for stores) and the environment of the Pulumi commands.
    """
    client = healthcare_client(emulator.healthcare_url)
    create_dataset(client)
    copies = fresh_copies(transfers * FILES_PER_IMPORT)
    for index in range(transfers):
        chunk = copies[index * FILES_PER_IMPORT : (index + 1) * FILES_PER_IMPORT]
        upload_objects(emulator.storage_url, f"{BUCKET_PREFIX}-{index:02d}", "in", chunk)
    http_json(
        emulator.healthcare_url,
        "POST",
        "/_emulator/faults",
        {"spec": f"operation-seconds={operation_s}"},
    )
    env = {
        HEALTHCARE_EMULATOR_ENV: emulator.healthcare_url,
        STORAGE_EMULATOR_ENV: emulator.storage_url,
        STATE_DIR_ENV: str(tmp / "journal"),
    }
    return client, env


def timed_up(
    project: PulumiProject, client: Any, healthcare_url: str, kind: RunKind, round_: int
) -> float:
    """One ``pulumi up --yes`` of a new stack; checks that it submitted one import each."""
    stack = f"{kind.name}-{round_}"
    store = create_store(client, stack)
    project.new_stack(
        stack, {"imports": str(kind.imports), "store": store, "buckets": BUCKET_PREFIX}
    )
    before = _imports_submitted(healthcare_url)
    seconds = project.run("up", "--yes", "--stack", stack, env=kind.env).seconds
    submitted = _imports_submitted(healthcare_url) - before
    if submitted != kind.imports:
        raise RuntimeError(f"stack {stack}: expected {kind.imports} imports, {submitted} submitted")
    return seconds


def warm_up(project: PulumiProject, client: Any, imports: int, name: str) -> None:
    """An untimed preview: the first run of a program pays for cold caches."""
    stack = f"{name}-warm-up"
    store = create_store(client, stack)
    project.new_stack(stack, {"imports": str(imports), "store": store, "buckets": BUCKET_PREFIX})
    project.run("preview", "--stack", stack)


def _imports_submitted(healthcare_url: str) -> int:
    """``dicomStores.import`` calls in the emulator's request log so far."""
    log = http_json(healthcare_url, "GET", "/_emulator/requests?method=POST&path=%3Aimport%24")
    return len(log["requests"])
