"""Section "p2" (issue 4): 16 concurrent imports in one ``pulumi up`` vs one import.

A throw-away project declares ``imports`` :class:`~dicom_transfer.DicomImport` resources, each
reading its own emulator bucket (two files) into the run's own store, so every resource is
its own operation (checked against the emulator's request log). The emulator's
``operationSeconds`` fault makes every operation take the same ``operation_s``. Each run is a
new stack, timed from ``pulumi up --yes`` starting to its exit (preview, provider start-up
and the waits included):

* ``single_s``: 1 import;
* ``sixteen_s``: ``imports`` (16) imports, served by one provider process whose thread pool
  the first call widened (``worker_pool.py``); ``ratio`` = sixteen_s / single_s (target
  <= 1.25). The engine runs at most ``--parallel`` resource operations at once:
  ``PULUMI_PARALLEL``, which ``tools/pulumi_host/pulumi-env.sh`` sets to 64 unless the user did
  (``engine_parallel``);
* ``engine_default_s`` / ``engine_default_ratio``: the same with the engine's own default of
  4 x CPUs (``engine_default_parallel``; 8 on 2 CPUs: the creates run in waves whatever the
  provider does), measured only when that default is below ``imports``;
* contrasts (first round only, unless turned off): ``sdk_pool_s`` / ``sdk_pool_ratio``,
  ``imports`` imports with ``DICOM_TRANSFER_PROVIDER_WORKERS=4`` -- the SDK's own pool of four,
  about ``ceil(imports / 4)`` operation durations (``sdk_pool_waves``); ``sharded_s`` /
  ``sharded_ratio``, the same pool of four but ``DICOM_TRANSFER_PROVIDER_SHARDS=4`` provider
  processes (the fallback for SDKs whose pool is not widened).

One untimed ``pulumi preview`` first warms the page cache and bytecode up.
With ``rounds`` > 1 the runs alternate (single, sixteen, engine default, single, ...) and the
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
from bench_pulumi import PARALLEL_ENV, PulumiProject, default_parallel
from dicom_transfer.healthcare.credentials import HEALTHCARE_EMULATOR_ENV, STORAGE_EMULATOR_ENV
from dicom_transfer.healthcare.journal import STATE_DIR_ENV
from dicom_transfer.sharding import FALLBACK_SHARDS, SHARDS_ENV
from dicom_transfer.worker_pool import SDK_WORKERS, WORKERS_ENV
from dicom_transfer_emulator.clients import healthcare_client
from dicom_transfer_emulator.launch import EmulatorProcess

BUCKET_PREFIX = "bench-p2-src"
FILES_PER_IMPORT = 2
TARGET_RATIO = 1.25

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
class P2Figures:
    """Wall times (seconds) of ``pulumi up --yes``, per kind of run."""

    imports: int
    operation_s: float
    engine_parallel: int | None = None
    engine_default_parallel: int | None = None
    single_runs_s: list[float] = field(default_factory=list)
    sixteen_runs_s: list[float] = field(default_factory=list)
    engine_default_runs_s: list[float] = field(default_factory=list)
    sdk_pool_runs_s: list[float] = field(default_factory=list)
    sharded_runs_s: list[float] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The documented figures (``ratio``, ``single_s``, ``sixteen_s``, ...)."""
        single = statistics.median(self.single_runs_s)
        figures: dict[str, Any] = {
            "ratio": _ratio(self.sixteen_runs_s, single),
            "single_s": _seconds(self.single_runs_s),
            "sixteen_s": _seconds(self.sixteen_runs_s),
            "operation_s": self.operation_s,
            "imports": self.imports,
            "provider_processes": 1,
            "engine_parallel": self.engine_parallel,
            "engine_default_parallel": self.engine_default_parallel,
            "rounds": len(self.single_runs_s),
            "overhead_s": round(single - self.operation_s, 2),
            "target_ratio": TARGET_RATIO,
        }
        if self.engine_default_runs_s:
            figures["engine_default_ratio"] = _ratio(self.engine_default_runs_s, single)
            figures["engine_default_s"] = _seconds(self.engine_default_runs_s)
        if self.sdk_pool_runs_s:
            figures["sdk_pool_ratio"] = _ratio(self.sdk_pool_runs_s, single)
            figures["sdk_pool_s"] = _seconds(self.sdk_pool_runs_s)
            figures["sdk_pool_waves"] = math.ceil(self.imports / SDK_WORKERS)
        if self.sharded_runs_s:
            figures["sharded_ratio"] = _ratio(self.sharded_runs_s, single)
            figures["sharded_s"] = _seconds(self.sharded_runs_s)
            figures["shards"] = FALLBACK_SHARDS
        figures["runs_s"] = {
            kind: [round(s, 2) for s in runs]
            for kind, runs in (
                ("single", self.single_runs_s),
                ("sixteen", self.sixteen_runs_s),
                ("engine_default", self.engine_default_runs_s),
                ("sdk_pool", self.sdk_pool_runs_s),
                ("sharded", self.sharded_runs_s),
            )
            if runs
        }
        return figures


def _seconds(runs: list[float]) -> float:
    return round(statistics.median(runs), 2)


def _ratio(runs: list[float], single_s: float) -> float:
    return round(statistics.median(runs) / single_s, 3)


@dataclass(frozen=True)
class _Kind:
    """One kind of run: how many imports, with which environment."""

    name: str
    imports: int
    runs: list[float]
    env: dict[str, str] = field(default_factory=dict)


def measure(
    *, imports: int = 16, operation_s: float = 8.0, contrasts: bool = True, rounds: int = 1
) -> P2Figures:
    """Runs the section.

    Args:
        imports: Imports of the concurrent runs (issue 4: 16).
        operation_s: Emulated duration of every operation.
        contrasts: Also time the concurrent run with the SDK's pool of four, in one process
            and over the fallback shards (first round only).
        rounds: Alternating rounds (medians are reported).
    """
    figures = P2Figures(imports, operation_s)
    with (
        tempfile.TemporaryDirectory(prefix="bench-p2-") as tmp,
        EmulatorProcess() as emulator,
    ):
        client = healthcare_client(emulator.healthcare_url)
        create_dataset(client)
        copies = fresh_copies(imports * FILES_PER_IMPORT)
        for index in range(imports):
            chunk = copies[index * FILES_PER_IMPORT : (index + 1) * FILES_PER_IMPORT]
            upload_objects(emulator.storage_url, f"{BUCKET_PREFIX}-{index:02d}", "in", chunk)
        http_json(
            emulator.healthcare_url, "POST", "/_emulator/faults", {"operationSeconds": operation_s}
        )
        project = PulumiProject(
            Path(tmp) / "p2",
            PROGRAM,
            env={
                HEALTHCARE_EMULATOR_ENV: emulator.healthcare_url,
                STORAGE_EMULATOR_ENV: emulator.storage_url,
                STATE_DIR_ENV: str(Path(tmp) / "journal"),
            },
        )
        engine_default = {PARALLEL_ENV: ""}
        figures.engine_parallel = default_parallel(project)
        figures.engine_default_parallel = default_parallel(project, engine_default)
        kinds = [
            _Kind("single", 1, figures.single_runs_s),
            _Kind("sixteen", imports, figures.sixteen_runs_s),
        ]
        if (figures.engine_default_parallel or 0) < imports:
            kinds.append(
                _Kind("default", imports, figures.engine_default_runs_s, env=engine_default)
            )
        sdk_pool = {WORKERS_ENV: str(SDK_WORKERS)}
        contrast_kinds = [
            _Kind("sdk-pool", imports, figures.sdk_pool_runs_s, env=sdk_pool),
            _Kind(
                "sharded",
                imports,
                figures.sharded_runs_s,
                env={**sdk_pool, SHARDS_ENV: str(FALLBACK_SHARDS)},
            ),
        ]
        _warm_up(project, client, imports)
        for round_ in range(rounds):
            extra = contrast_kinds if contrasts and round_ == 0 else []
            for kind in kinds + extra:
                kind.runs.append(_run(project, client, emulator.healthcare_url, kind, round_))
    return figures


def _run(
    project: PulumiProject, client: Any, healthcare_url: str, kind: _Kind, round_: int
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


def _warm_up(project: PulumiProject, client: Any, imports: int) -> None:
    """An untimed preview: the first run of a program pays for cold caches."""
    store = create_store(client, "warm-up")
    project.new_stack(
        "warm-up", {"imports": str(imports), "store": store, "buckets": BUCKET_PREFIX}
    )
    project.run("preview", "--stack", "warm-up")


def _imports_submitted(healthcare_url: str) -> int:
    """``dicomStores.import`` calls in the emulator's request log so far."""
    log = http_json(healthcare_url, "GET", "/_emulator/requests?method=POST&path=%3Aimport%24")
    return len(log["requests"])
