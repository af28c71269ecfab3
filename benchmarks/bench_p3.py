"""Section "p3" (issues 4, 8): ``pulumi preview`` of 200 transfers vs 200 no-op dynamic resources.

One throw-away project declares ``resources`` resources with valid inputs: every other one a
:class:`~dicom_transfer.DicomImport`, the rest :class:`~dicom_transfer.DicomExport` to Cloud
Storage and to BigQuery in turn. With the ``noop`` config flag the same program declares, with
the same names and inputs, :class:`bench_noop.NoOp` resources instead (a dynamic provider whose
create and diff do nothing, pickled by reference like ours) without importing our library; with
the ``native`` flag, the same transfers through the native provider (section ``p3_native``,
:mod:`bench_native`).

Timed from ``pulumi preview`` starting to its exit; the runs alternate (transfers, no-op,
[contrasts], transfers, ...) and each figure is the median of ``runs``:

* **fresh**: previews of new stacks (the engine calls ``check`` on every resource):
  ``transfers_s``, ``noop_s``, ``ratio`` = transfers_s / noop_s (target <= 1.15);
  contrasts (unless turned off), both with ``DICOM_TRANSFER_PROVIDER_SHARDS=4`` (the fallback
  for SDKs whose provider pool is not widened): ``sharded_s`` / ``sharded_ratio``, the
  transfers over four shard provider processes; ``noop_sharded_s`` / ``noop_sharded_ratio``,
  the no-op resources spread over the same shard providers (``sharded`` config flag) -- what
  the extra processes cost without any of our code in them;
* **steady** (unless turned off): both stacks are brought up once (0 s operations), then
  previewed with no change (``check`` and ``diff`` on every resource): ``steady``.

While the transfer previews run, :class:`bench_pulumi.ProcessSampler` follows the peak RSS
(``VmHWM``) of every dynamic-provider process they start: ``rss_mb`` is the largest (target
<= 100 MB per process), ``provider_processes`` how many one preview starts. The emulator's
request log is cleared before the previews: ``emulator_requests`` counts what previews sent it
(expected 0: check and diff need no API call). One untimed preview warms the caches up first.
"""

from __future__ import annotations

import statistics
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench_common import (
    PROJECT,
    create_dataset,
    create_store,
    fresh_copies,
    http_json,
    upload_objects,
)
from bench_pulumi import ProcessSampler, ProviderProcess, PulumiProject
from dicom_transfer.healthcare.credentials import HEALTHCARE_EMULATOR_ENV, STORAGE_EMULATOR_ENV
from dicom_transfer.healthcare.journal import STATE_DIR_ENV
from dicom_transfer.sharding import FALLBACK_SHARDS, SHARDS_ENV
from dicom_transfer_emulator.testing.clients import healthcare_client
from dicom_transfer_emulator.testing.launch import EmulatorProcess

SOURCE_BUCKET = "bench-p3-src"
EXPORT_BUCKET = "bench-p3-out"
TARGET_RATIO = 1.15
TARGET_RSS_MB = 100.0

PROGRAM = """\
import pulumi

config = pulumi.Config()
store, source, bucket, dataset = (
    config.require(key) for key in ("store", "source", "exportBucket", "bigqueryDataset")
)
if config.require_bool("noop"):
    # The baseline program does not import our library (unless told to use its shards).
    from bench_noop import NoOp

    shard = lambda: None
    if config.get_bool("sharded"):
        from dicom_transfer.sharding import provider_options

        shard = lambda: provider_options(None)

    def declare(kind, name, args):
        NoOp(name, args, shard())

elif config.get_bool("native"):
    # The native provider dicomtransfer (section p3_native): the schema's camelCase names.
    def camel(value):
        if not isinstance(value, dict):
            return value
        parts = {key: key.split("_") for key in value}
        return {p[0] + "".join(w.title() for w in p[1:]): camel(value[k]) for k, p in parts.items()}

    def declare(kind, name, args):
        pulumi.CustomResource(f"dicomtransfer:index:Dicom{kind.title()}", name, camel(args))

else:
    from dicom_transfer import DicomExport, DicomImport

    def declare(kind, name, args):
        (DicomImport if kind == "import" else DicomExport)(name, **args)


for index in range(config.require_int("resources")):
    if index % 2 == 0:
        kind, name = "import", f"import-{index:02d}"
        args = {"gcs_uri": source}
    elif index % 4 == 1:
        kind, name = "export", f"export-gcs-{index:02d}"
        args = {"gcs_destination": {"uri_prefix": f"gs://{bucket}/out-{index:02d}"}}
    else:
        kind, name = "export", f"export-bq-{index:02d}"
        table = f"bq://{dataset}.meta_{index:02d}"
        args = {"bigquery_destination": {"table_uri": table, "write_disposition": "WRITE_APPEND"}}
    declare(kind, name, {**args, "dicom_store": store})
"""


@dataclass
class PreviewRuns:
    """Preview wall times (seconds) of one phase."""

    transfers: list[float] = field(default_factory=list)
    noop: list[float] = field(default_factory=list)
    sharded: list[float] = field(default_factory=list)
    noop_sharded: list[float] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """``{"ratio", "transfers_s", "noop_s", [contrasts], "runs_s"}``."""
        transfers, noop = statistics.median(self.transfers), statistics.median(self.noop)
        figures: dict[str, Any] = {
            "ratio": round(transfers / noop, 3),
            "transfers_s": round(transfers, 2),
            "noop_s": round(noop, 2),
        }
        for key, runs in (("sharded", self.sharded), ("noop_sharded", self.noop_sharded)):
            if runs:
                figures[f"{key}_s"] = round(statistics.median(runs), 2)
                figures[f"{key}_ratio"] = round(statistics.median(runs) / noop, 3)
        figures["runs_s"] = {
            key: [round(s, 2) for s in runs]
            for key, runs in (
                ("transfers", self.transfers),
                ("noop", self.noop),
                ("sharded", self.sharded),
                ("noop_sharded", self.noop_sharded),
            )
            if runs
        }
        return figures


@dataclass
class P3Figures:
    """Everything the section measured."""

    resources: int
    fresh: PreviewRuns = field(default_factory=PreviewRuns)
    steady: PreviewRuns | None = None
    transfer_providers: list[list[ProviderProcess]] = field(default_factory=list)
    """The provider processes of each transfer preview (both phases)."""
    noop_providers: list[list[ProviderProcess]] = field(default_factory=list)
    """The provider processes of each no-op preview (both phases)."""
    emulator_requests: int = 0

    def to_json(self) -> dict[str, Any]:
        """The documented figures (``ratio``, ``transfers_s``, ``noop_s``, ``rss_mb``, ...)."""
        figures = self.fresh.to_json()
        figures.update(_providers_json("", self.transfer_providers))
        figures.update(_providers_json("noop_", self.noop_providers))
        figures.update(
            {
                "resources": self.resources,
                "transfers": self.resources,
                "runs": len(self.fresh.transfers),
                "emulator_requests": self.emulator_requests,
                "target_ratio": TARGET_RATIO,
                "target_rss_mb": TARGET_RSS_MB,
            }
        )
        if self.steady is not None:
            figures["steady"] = self.steady.to_json()
        return figures


def _providers_json(prefix: str, runs: list[list[ProviderProcess]]) -> dict[str, Any]:
    """Provider-process figures over all previews of one stack (medians per preview)."""
    if not any(runs):
        raise RuntimeError("no dynamic-provider process was seen during the previews")
    return {
        f"{prefix}rss_mb": round(max(p.peak_rss_mb for run in runs for p in run), 1),
        f"{prefix}provider_processes": max(len(run) for run in runs),
        # CPU time of all provider processes of one preview, and when the last one started.
        f"{prefix}provider_cpu_s": round(
            statistics.median(sum(p.cpu_s for p in r) for r in runs), 2
        ),
        f"{prefix}last_provider_start_s": round(
            statistics.median(max(p.started_s for p in run) for run in runs if run), 2
        ),
    }


def measure(
    *, resources: int = 200, runs: int = 3, contrasts: bool = True, steady: bool = True
) -> P3Figures:
    """Runs the section.

    Args:
        resources: Resources per stack (issue 8: 200).
        runs: Previews of each kind per phase (medians are reported).
        contrasts: Also the fallback's cost: new transfers and new no-op resources over four
            shard provider processes.
        steady: Also bring both stacks up and preview them unchanged.
    """
    figures = P3Figures(resources)
    with (
        tempfile.TemporaryDirectory(prefix="bench-p3-") as tmp,
        EmulatorProcess() as emulator,
    ):
        client = healthcare_client(emulator.healthcare_url)
        create_dataset(client)
        store = create_store(client, "p3")
        upload_objects(emulator.storage_url, SOURCE_BUCKET, "in", fresh_copies(2))
        bucket = {"name": EXPORT_BUCKET}
        http_json(emulator.storage_url, "POST", f"/storage/v1/b?project={PROJECT}", bucket)
        project = PulumiProject(
            Path(tmp) / "p3",
            PROGRAM,
            env={
                HEALTHCARE_EMULATOR_ENV: emulator.healthcare_url,
                STORAGE_EMULATOR_ENV: emulator.storage_url,
                STATE_DIR_ENV: str(Path(tmp) / "journal"),
            },
        )
        stacks = [("transfers", "false", "false"), ("noop", "true", "false")]
        if contrasts:
            stacks.append(("noop-sharded", "true", "true"))
        for stack, noop, sharded in stacks:
            config = {
                "resources": str(resources),
                "store": store,
                "source": f"gs://{SOURCE_BUCKET}/in/**.dcm",
                "exportBucket": EXPORT_BUCKET,
                "bigqueryDataset": f"{PROJECT}.bench_p3",
                "noop": noop,
                "sharded": sharded,
            }
            project.new_stack(stack, config)

        # Untimed: the first run of a program pays for cold caches (page cache, bytecode).
        project.run("preview", "--stack", "transfers")
        log = _RequestLog(emulator.healthcare_url)
        log.clear()
        _previews(project, figures, figures.fresh, runs, contrasts)
        if steady:
            requests = log.count()
            for stack in ("transfers", "noop"):
                project.run("up", "--yes", "--skip-preview", "--stack", stack)
            log.clear()
            figures.steady = PreviewRuns()
            _previews(project, figures, figures.steady, runs, contrasts=False)
            figures.emulator_requests = requests + log.count()
        else:
            figures.emulator_requests = log.count()
    return figures


def _previews(
    project: PulumiProject, figures: P3Figures, phase: PreviewRuns, runs: int, contrasts: bool
) -> None:
    """Alternating previews of one phase; records times and provider memory."""
    for _ in range(runs):
        sampler = ProcessSampler()
        timed = project.run("preview", "--stack", "transfers", sampler=sampler)
        phase.transfers.append(timed.seconds)
        figures.transfer_providers.append(list(sampler.processes.values()))
        sampler = ProcessSampler()
        phase.noop.append(project.run("preview", "--stack", "noop", sampler=sampler).seconds)
        figures.noop_providers.append(list(sampler.processes.values()))
        if contrasts:
            sharded = {SHARDS_ENV: str(FALLBACK_SHARDS)}
            timed = project.run("preview", "--stack", "transfers", env=sharded)
            phase.sharded.append(timed.seconds)
            timed = project.run("preview", "--stack", "noop-sharded", env=sharded)
            phase.noop_sharded.append(timed.seconds)


@dataclass(frozen=True)
class _RequestLog:
    """The emulator's request log (admin endpoint; both of its APIs)."""

    healthcare_url: str

    def clear(self) -> None:
        http_json(self.healthcare_url, "DELETE", "/_emulator/requests")

    def count(self) -> int:
        return len(http_json(self.healthcare_url, "GET", "/_emulator/requests")["requests"])
