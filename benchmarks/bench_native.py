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
  and to BigQuery in turn; medians of alternating runs): ``ratio`` = native_s / dynamic_s
  (target <= 1.0); ``rss_mb``, the provider process's peak RSS (target <= 100 MB); and what
  the previews asked the emulator (expected 0).
"""

from __future__ import annotations

import statistics
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench_common import PROJECT, create_dataset, create_store, http_json
from bench_p2 import RunKind, seed_imports, timed_up, warm_up
from bench_pulumi import ProcessSampler, PulumiProject
from dicom_transfer.healthcare.credentials import HEALTHCARE_EMULATOR_ENV, STORAGE_EMULATOR_ENV
from dicom_transfer.healthcare.journal import STATE_DIR_ENV
from dicom_transfer_emulator.clients import healthcare_client
from dicom_transfer_emulator.launch import EmulatorProcess

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

P3_PROGRAM = """\
import pulumi

config = pulumi.Config()
store, bucket, dataset = (config.require(key) for key in ("store", "exportBucket", "dataset"))
native = config.require_bool("native")
if not native:
    from dicom_transfer import DicomExport, DicomImport


def camel(value):
    if not isinstance(value, dict):
        return value
    parts = {key: key.split("_") for key in value}
    return {p[0] + "".join(w.title() for w in p[1:]): camel(value[k]) for k, p in parts.items()}


for index in range(config.require_int("resources")):
    if index % 2 == 0:
        kind, name, args = "Import", f"import-{index:02d}", {"gcs_uri": f"gs://{bucket}/in/**.dcm"}
    elif index % 4 == 1:
        kind, name = "Export", f"export-gcs-{index:02d}"
        args = {"gcs_destination": {"uri_prefix": f"gs://{bucket}/out-{index:02d}"}}
    else:
        kind, name = "Export", f"export-bq-{index:02d}"
        table = f"bq://{dataset}.meta_{index:02d}"
        args = {"bigquery_destination": {"table_uri": table, "write_disposition": "WRITE_APPEND"}}
    args["dicom_store"] = store
    if native:
        pulumi.CustomResource(f"dicomtransfer:index:Dicom{kind}", name, camel(args))
    else:
        (DicomImport if kind == "Import" else DicomExport)(name, **args)
"""


@dataclass
class P2NativeFigures:
    """``pulumi up`` wall times (seconds) through the native provider."""

    transfers: int
    operation_s: float
    single_runs_s: list[float] = field(default_factory=list)
    many_runs_s: list[float] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """``{"ratio", "single_s", "many_s", "transfers", "operation_s", ...}``."""
        single = statistics.median(self.single_runs_s)
        many = statistics.median(self.many_runs_s)
        return {
            "ratio": round(many / single, 3),
            "single_s": round(single, 2),
            "many_s": round(many, 2),
            "transfers": self.transfers,
            "operation_s": self.operation_s,
            "rounds": len(self.single_runs_s),
            "target_ratio": P2_TARGET_RATIO,
        }


def measure_p2(
    *, transfers: int = 64, operation_s: float = 15.0, rounds: int = 1
) -> P2NativeFigures:
    """Runs section ``p2_native`` (alternating rounds of 1 and ``transfers`` imports).

    Raises:
        RuntimeError: A run failed or did not submit one import per resource.
    """
    figures = P2NativeFigures(transfers, operation_s)
    with tempfile.TemporaryDirectory(prefix="bench-p2n-") as tmp, EmulatorProcess() as emulator:
        client, env = seed_imports(emulator, transfers, operation_s, Path(tmp))
        project = PulumiProject(Path(tmp) / "p2-native", P2_PROGRAM, env=env)
        warm_up(project, client, transfers, "native")
        for round_ in range(rounds):
            for kind in (
                RunKind("native-single", 1, figures.single_runs_s),
                RunKind("native-many", transfers, figures.many_runs_s),
            ):
                kind.runs.append(timed_up(project, client, emulator.healthcare_url, kind, round_))
    return figures


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
            P3_PROGRAM,
            env={
                HEALTHCARE_EMULATOR_ENV: emulator.healthcare_url,
                STORAGE_EMULATOR_ENV: emulator.storage_url,
                STATE_DIR_ENV: str(Path(tmp) / "journal"),
            },
        )
        for stack, native in (("native", "true"), ("dynamic", "false")):
            config = {"resources": str(resources), "store": store, "exportBucket": bucket}
            project.new_stack(
                stack, {**config, "dataset": f"{PROJECT}.bench_p3n", "native": native}
            )
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
