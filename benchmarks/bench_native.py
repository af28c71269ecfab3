"""Sections "p2_native" and "p3_native" (issue 15): the native provider in the real engine.

* ``p2_native``: ``pulumi up --yes`` of ``transfers`` (64) imports through the native provider
  ``dicomtransfer`` vs 1, every operation ``operation_s`` long (the emulator's fault), each
  import reading its own bucket into the run's own store -- :mod:`bench_p2`'s set-up and timed
  run, with a program of ``dicomtransfer:index:DicomImport`` resources instead of the dynamic
  ``DicomImport``. ``ratio`` = many_s / single_s (target <= 1.25). One provider process
  serves them all on its own pool (``TRANSFER_WORKERS``); the engine's ``--parallel`` is
  ``PULUMI_PARALLEL`` (64, ``tools/pulumi_host/pulumi-env.sh``).
* ``p3_native``: ``pulumi preview`` of a new stack of ``resources`` (200) transfers through
  the provider vs the same transfers as dynamic resources (imports, exports to Cloud Storage
  and to BigQuery in turn: :mod:`bench_p3`'s program; medians of alternating runs):
  ``ratio`` = native_s / dynamic_s (target <= 1.0); ``rss_mb``, the provider process's peak
  RSS (target <= 100 MB); and what the previews asked the emulator (expected 0).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bench_p3
from bench_common import PROJECT, create_dataset, create_store, http_json
from bench_p2 import RunKind, SdkRuns, seed_imports, timed_up, warm_up
from bench_pulumi import ProcessSampler, PulumiProject, sdk_version
from dicom_transfer.healthcare.credentials import HEALTHCARE_EMULATOR_ENV, STORAGE_EMULATOR_ENV
from dicom_transfer.healthcare.journal import STATE_DIR_ENV
from dicom_transfer_emulator.testing.clients import healthcare_client
from dicom_transfer_emulator.testing.launch import EmulatorProcess

P2_TARGET_RATIO = 1.25
P3_TARGET_RATIO = 1.0
TARGET_RSS_MB = 100.0
PLUGIN = "pulumi-resource-dicomtransfer"
"""In the provider process's command line (the console script of the library's wheel)."""

P2_PROGRAM = """\
import pulumi

config = pulumi.Config()
for index in range(config.require_int("imports")):
    pulumi.CustomResource(
        "dicomtransfer:index:DicomImport",
        f"import-{index:02d}",
        {
            "dicomStore": config.require("store"),
            "gcsUri": f"gs://{config.require('buckets')}-{index:02d}/in/**.dcm",
            "triggers": [pulumi.get_stack()],
            "successCount": None,
        },
    )
"""


def measure_p2(*, transfers: int = 64, operation_s: float = 15.0, rounds: int = 1) -> SdkRuns:
    """Runs section ``p2_native`` (alternating rounds of 1 and ``transfers`` imports).

    Returns:
        The runs (this interpreter's SDK serves the program; the provider is its own process).

    Raises:
        RuntimeError: A run failed or did not submit one import per resource.
    """
    runs = SdkRuns(sdk_version(Path(sys.executable)), sys.executable)
    with tempfile.TemporaryDirectory(prefix="bench-p2n-") as tmp, EmulatorProcess() as emulator:
        client, env = seed_imports(emulator, transfers, operation_s, Path(tmp))
        project = PulumiProject(Path(tmp) / "p2-native", P2_PROGRAM, env=env)
        warm_up(project, client, transfers, "native")
        for round_ in range(rounds):
            for kind in (
                RunKind("native-single", 1, runs.single_runs_s),
                RunKind("native-many", transfers, runs.many_runs_s),
            ):
                kind.runs.append(timed_up(project, client, emulator.healthcare_url, kind, round_))
    return runs


def p2_json(runs: SdkRuns, transfers: int, operation_s: float) -> dict[str, Any]:
    """The figures of section ``p2_native``."""
    return {
        **runs.to_json(),
        "transfers": transfers,
        "operation_s": operation_s,
        "rounds": len(runs.single_runs_s),
        "target_ratio": P2_TARGET_RATIO,
    }


@dataclass
class P3NativeFigures:
    """``pulumi preview`` wall times (seconds) and the provider's memory."""

    resources: int
    native_runs_s: list[float] = field(default_factory=list)
    dynamic_runs_s: list[float] = field(default_factory=list)
    provider_rss_mb: list[float] = field(default_factory=list)
    emulator_requests: int = 0

    def to_json(self) -> dict[str, Any]:
        """``{"ratio", "native_s", "dynamic_s", "rss_mb", "resources", ...}``."""
        native = statistics.median(self.native_runs_s)
        dynamic = statistics.median(self.dynamic_runs_s)
        return {
            "ratio": round(native / dynamic, 3),
            "native_s": round(native, 2),
            "dynamic_s": round(dynamic, 2),
            "rss_mb": round(max(self.provider_rss_mb, default=0.0), 1),
            "resources": self.resources,
            "runs": len(self.native_runs_s),
            "emulator_requests": self.emulator_requests,
            "target_ratio": P3_TARGET_RATIO,
            "target_rss_mb": TARGET_RSS_MB,
        }


def measure_p3(*, resources: int = 200, runs: int = 3) -> P3NativeFigures:
    """Runs section ``p3_native`` (alternating previews: native, dynamic, native, ...).

    Raises:
        RuntimeError: A preview failed, or the provider process was not seen.
    """
    figures = P3NativeFigures(resources)
    with tempfile.TemporaryDirectory(prefix="bench-p3n-") as tmp, EmulatorProcess() as emulator:
        client = healthcare_client(emulator.healthcare_url)
        create_dataset(client)
        store = create_store(client, "p3n")
        bucket = "bench-p3n"
        http_json(
            emulator.storage_url, "POST", f"/storage/v1/b?project={PROJECT}", {"name": bucket}
        )
        project = PulumiProject(
            Path(tmp) / "p3-native",
            bench_p3.PROGRAM,
            env={
                HEALTHCARE_EMULATOR_ENV: emulator.healthcare_url,
                STORAGE_EMULATOR_ENV: emulator.storage_url,
                STATE_DIR_ENV: str(Path(tmp) / "journal"),
            },
        )
        for stack, native in (("native", "true"), ("dynamic", "false")):
            config = {
                "resources": str(resources),
                "store": store,
                "source": f"gs://{bucket}/in/**.dcm",
                "exportBucket": bucket,
                "bigqueryDataset": f"{PROJECT}.bench_p3n",
                "noop": "false",
                "native": native,
            }
            project.new_stack(stack, config)
        project.run("preview", "--stack", "native")  # untimed: cold caches
        project.run("preview", "--stack", "dynamic")
        http_json(emulator.healthcare_url, "DELETE", "/_emulator/requests")
        for _ in range(runs):
            sampler = ProcessSampler(marker=PLUGIN)
            figures.native_runs_s.append(
                project.run("preview", "--stack", "native", sampler=sampler).seconds
            )
            if not sampler.processes:
                raise RuntimeError(f"no {PLUGIN} process was seen during the preview")
            figures.provider_rss_mb += [p.peak_rss_mb for p in sampler.processes.values()]
            figures.dynamic_runs_s.append(project.run("preview", "--stack", "dynamic").seconds)
        log = http_json(emulator.healthcare_url, "GET", "/_emulator/requests")
        figures.emulator_requests = len(log["requests"])
    return figures
