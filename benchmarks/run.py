"""The project's benchmarks: ``python benchmarks/run.py`` prints a table, ``--json`` one object.

Sections (``--only import,p1`` runs a subset; all by default):

* ``import`` (issue 3): 1,000 real DICOM files imported through the emulator, instances per
  second next to a bare read-parse-copy loop over the same files; the ratio (target >= 0.5)
  and the emulator's peak RSS.
* ``p1`` (issue 4): completion-detection lag of our provider's create vs ``gcloud healthcare
  dicom-stores import gcs`` for emulated operations of 5 s, 20 s and 60 s, and the number of
  ``operations.get`` calls of each (target: lag <= max(1 s, 5 % of the duration) with no more
  GETs than gcloud).
* ``p1_flat`` (issue 9): the same for one-file imports of 10 s, 60 s and 200 s, whose counter
  does not move before the end (target: lag <= half of gcloud's with no more GETs).
* ``p2`` (issues 4, 8): wall time of ``pulumi up --yes`` (real engine, offline) with 64 imports
  of 15 s each vs 1, ratio (target <= 1.25), on the newest and on the lowest supported
  ``pulumi`` SDK (``.venv`` and ``.venv-sdk-lowest``: ``make setup-lowest``); for contrast,
  with 16 imports, the engine's own ``--parallel`` default (when below 16), the SDK's own
  provider pool of four (``DICOM_TRANSFER_PROVIDER_WORKERS=4``: ~4x) and the fallback of four
  shard processes of four calls each.
* ``p3`` (issues 4, 8): ``pulumi preview`` of 200 transfers vs 200 no-op dynamic resources,
  medians of alternating runs, ratio (target <= 1.15), for new and unchanged stacks; the peak
  RSS of the provider processes (target <= 100 MB each) and what the previews asked the
  emulator (0).
* ``p2_native`` (issue 15): ``pulumi up --yes`` of 64 imports through the native provider
  ``dicomtransfer`` vs 1 (same operation length as ``p2``), ratio (target <= 1.25).
* ``p3_native`` (issue 15): ``pulumi preview`` of 200 transfers through the native provider vs
  the same 200 as dynamic resources, ratio (target <= 1.0), and the provider process's peak
  RSS (target <= 100 MB).
* ``p4`` (issue 10): the emulator at scale, state on disk (``--data-dir``): import of 10,000
  instances (500 studies) vs a bare read-parse-copy-to-disk loop, ratio (target >= 0.5); the
  emulator's peak RSS (target <= 300 MB); median of QIDO study searches over them (target
  <= 100 ms); export of the 10,000 to BigQuery (seconds).

Every figure is a ratio or a difference measured side by side in one run (the machine is
shared and noisy); targets are printed next to the figures, never asserted.

JSON (``--json``)::

    {"meta": {...},
     "import": {"instances", "emulator_per_s", "bare_per_s", "ratio", "emulator_peak_rss_mb", ...},
     "p1": [{"duration_s", "ours": {"lag_s", "gets"}, "gcloud": {"lag_s", "gets"}, ...}, ...],
     "p1_flat": [{"duration_s", "ours": {"lag_s", "gets"}, "gcloud": {"lag_s", "gets"}, ...}],
     "p2": {"ratio", "transfers": 64, "sdk_matrix": [{"sdk", "ratio", "single_s", "many_s"},
            ...], "single_s", "many_s", "operation_s", "sdk_pool_ratio", ...},
     "p3": {"ratio", "rss_mb", "transfers": 200, "transfers_s", "noop_s",
            "provider_processes", ...},
     "p2_native": {"ratio", "single_s", "many_s", "transfers", "operation_s", ...},
     "p3_native": {"ratio", "native_s", "dynamic_s", "rss_mb", "resources", ...},
     "p4": {"instances", "import_ratio", "rss_mb", "qido_median_ms", "bq_export_s", ...}}

``p2``'s ``ratio`` is the worst of its ``sdk_matrix``.

A section that is not implemented yet answers ``{"measured": false, "note": "not measured in
this run"}``; one that failed answers ``{"measured": false, "error": "..."}`` (and the exit
status is 1). ``--quick`` is a smoke run for tests (50 files, one 3 s operation of each P1
kind, 4 imports of 2 s on both SDKs, 6 previewed resources, one run each; 200
instances in p4).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

NOT_MEASURED = "not measured in this run"


@dataclass(frozen=True)
class Options:
    """What to measure and how much.

    Attributes:
        quick: Smoke run (small sizes).
        instances: Files imported by section ``import``.
        import_rounds: Alternating (bare loop, emulator import) rounds of section ``import``.
        persist: Run the ``import`` emulator with a data directory (state on disk).
        durations: Emulated operation durations of section ``p1`` (seconds).
        repeat: Runs per duration of section ``p1``.
        p1_instances: Files per import of section ``p1``.
        flat_durations: Emulated operation durations of section ``p1_flat`` (seconds).
        p2_imports: Imports of the concurrent ``pulumi up`` of section ``p2`` (per SDK).
        p2_operation_s: Emulated duration of every operation of section ``p2``.
        p2_rounds: Alternating rounds of section ``p2``.
        p3_resources: Resources per previewed stack of section ``p3``.
        p3_runs: Previews of each kind of section ``p3``.
        contrasts: Sections ``p2`` and ``p3`` also measure the SDK's pool and the shards.
        p4_instances: Instances of section ``p4``.
    """

    quick: bool = False
    instances: int = 1000
    import_rounds: int = 3
    persist: bool = False
    durations: tuple[float, ...] = (5.0, 20.0, 60.0)
    repeat: int = 1
    p1_instances: int = 20
    flat_durations: tuple[float, ...] = (10.0, 60.0, 200.0)
    p2_imports: int = 64
    p2_operation_s: float = 15.0
    p2_rounds: int = 3
    p3_resources: int = 200
    p3_runs: int = 3
    contrasts: bool = True
    p4_instances: int = 10_000


Result = dict[str, Any] | list[dict[str, Any]] | None
"""A section's JSON figures; None when the section does not measure anything yet."""


@dataclass(frozen=True)
class Section:
    """One benchmark section.

    Attributes:
        title: Heading of the table.
        run: Measures and returns the JSON figures (None: not implemented yet).
        render: Table lines of the figures.
    """

    title: str
    run: Callable[[Options], Result]
    render: Callable[[Any], list[str]]


# --- import ------------------------------------------------------------------------------


def run_import(options: Options) -> Result:
    """Section ``import`` (see :mod:`bench_import`)."""
    import bench_import

    figures = bench_import.measure(
        options.instances, rounds=options.import_rounds, persist=options.persist
    )
    return figures.to_json()


def render_import(figures: dict[str, Any]) -> list[str]:
    """Table lines of section ``import``."""
    server = figures.get("emulator_server_per_s")
    server_text = f"  (endTime - createTime: {server:,.0f}/s)" if server else ""
    return [
        f"  instances: {figures['instances']:,} ({figures['corpus_mb']} MB), "
        f"rounds: {figures['rounds']} (medians), emulator state in {figures['emulator_state']}",
        f"  emulator import, submit to done   {figures['emulator_per_s']:>9,.1f} instances/s"
        + server_text,
        f"  bare pydicom read+parse+copy      {figures['bare_per_s']:>9,.1f} instances/s",
        f"  ratio emulator / bare             {figures['ratio']:>9.3f}"
        f"    (target >= {figures['target_ratio']})",
        f"  emulator peak RSS (VmHWM)         {figures['emulator_peak_rss_mb']:>9.1f} MB"
        f"   ({figures['emulator_rss_before_import_mb']} MB with the files uploaded, "
        "before the first import)",
    ]


# --- p1 ----------------------------------------------------------------------------------


def run_p1(options: Options) -> Result:
    """Section ``p1`` (see :mod:`bench_p1`)."""
    import bench_p1

    figures = bench_p1.measure(
        list(options.durations), repeat=options.repeat, instances=options.p1_instances
    )
    return [entry.to_json() for entry in figures]


def render_p1(entries: list[dict[str, Any]]) -> list[str]:
    """Table lines of section ``p1``."""
    if not entries:
        return ["  (no durations)"]
    first = entries[0]
    lines = [
        f"  {first['instances']} instances per import; medians of {first['repeat']} run(s); "
        "lag = endTime -> waiter returned (detect = endTime -> end of the GET that saw done)",
        f"  {'duration':>8}  {'target':>7}  {'ours lag':>8}  {'detect':>6}  {'GETs':>4}"
        f"  {'gcloud lag':>10}  {'detect':>6}  {'GETs':>4}",
    ]
    for entry in entries:
        ours, gcloud = entry["ours"], entry["gcloud"]
        lines.append(
            f"  {entry['duration_s']:>6g} s  {entry['target_lag_s']:>5.2f} s  "
            f"{ours['lag_s']:>6.2f} s  {ours['detect_s']:>6.2f}  {ours['gets']:>4}  "
            f"{gcloud['lag_s']:>8.2f} s  {gcloud['detect_s']:>6.2f}  {gcloud['gets']:>4}"
        )
    return lines


def run_p1_flat(options: Options) -> Result:
    """Section ``p1_flat`` (see :mod:`bench_p1_flat`)."""
    import bench_p1_flat

    figures = bench_p1_flat.measure(list(options.flat_durations), repeat=options.repeat)
    return [entry.to_json() for entry in figures]


def render_p1_flat(entries: list[dict[str, Any]]) -> list[str]:
    """Table lines of section ``p1_flat``."""
    if not entries:
        return ["  (no durations)"]
    lines = [
        f"  1 file per import (no moving counter); medians of {entries[0]['repeat']} run(s); "
        "target: lag <= half of gcloud's, GETs <= gcloud's",
        f"  {'duration':>8}  {'ours lag':>8}  {'GETs':>4}  {'gcloud lag':>10}  {'GETs':>4}"
        f"  {'lag target':>10}  met (lag, GETs)  counter moved (ours, gcloud)",
    ]
    for entry in entries:
        ours, gcloud, met = entry["ours"], entry["gcloud"], entry["met"]
        lines.append(
            f"  {entry['duration_s']:>6g} s  {ours['lag_s']:>6.2f} s  {ours['gets']:>4}  "
            f"{gcloud['lag_s']:>8.2f} s  {gcloud['gets']:>4}  {entry['target']['lag_s']:>8.2f} s"
            f"  {_yes(met['lag']):>3}, {_yes(met['gets']):<3}      "
            f"{_yes(ours['counter_moved'])}, {_yes(gcloud['counter_moved'])}"
        )
    return lines


def _yes(value: bool | None) -> str:
    return "?" if value is None else ("yes" if value else "no")


# --- p2, p3: the real Pulumi engine ----------------------------------------------------


def run_p2(options: Options) -> Result:
    """Section ``p2`` (see :mod:`bench_p2`)."""
    import bench_p2

    figures = bench_p2.measure(
        transfers=options.p2_imports,
        operation_s=options.p2_operation_s,
        contrasts=options.contrasts,
        rounds=options.p2_rounds,
    )
    return figures.to_json()


def render_p2(figures: dict[str, Any]) -> list[str]:
    """Table lines of section ``p2``."""
    transfers = figures["transfers"]
    contrast = figures["contrast_transfers"]

    def row(label: str, seconds: float, note: str) -> str:
        return f"  {label:<48}{seconds:>7.2f} s   {note}"

    lines = [
        f"  every operation {figures['operation_s']:g} s; wall time of `pulumi up --yes` of a new "
        f"stack, medians of {figures['rounds']} alternating round(s)",
    ]
    for leg in figures["sdk_matrix"]:
        sdk = f"pulumi {leg['sdk']}:"
        lines += [
            row(f"{sdk} 1 import", leg["single_s"], ""),
            row(
                f"{sdk} {transfers} imports, 1 widened process",
                leg["many_s"],
                f"ratio {leg['ratio']:.3f}  (target <= {figures['target_ratio']})",
            ),
        ]
    lines.append(
        f"  worst ratio of the matrix {figures['ratio']:.3f}; --parallel "
        f"{figures['engine_parallel']}; newest SDK: {figures['overhead_s']:.2f} s more than "
        "the operation for 1 import"
    )
    if "engine_default_s" in figures:
        lines.append(
            row(
                f"{contrast} imports, engine default --parallel "
                f"{figures['engine_default_parallel']}",
                figures["engine_default_s"],
                f"ratio {figures['engine_default_ratio']:.3f}  (4 x CPUs: no PULUMI_PARALLEL)",
            )
        )
    if "sdk_pool_s" in figures:
        lines.append(
            row(
                f"{contrast} imports, the SDK's pool of 4 calls",
                figures["sdk_pool_s"],
                f"ratio {figures['sdk_pool_ratio']:.3f}  ({figures['sdk_pool_waves']} wave(s) "
                "expected; first round only)",
            )
        )
    if "sharded_s" in figures:
        lines.append(
            row(
                f"{contrast} imports, pool of 4 over {figures['shards']} shard processes",
                figures["sharded_s"],
                f"ratio {figures['sharded_ratio']:.3f}  (the fallback; first round only)",
            )
        )
    return lines


def run_p3(options: Options) -> Result:
    """Section ``p3`` (see :mod:`bench_p3`)."""
    import bench_p3

    figures = bench_p3.measure(
        resources=options.p3_resources, runs=options.p3_runs, contrasts=options.contrasts
    )
    return figures.to_json()


def render_p3(figures: dict[str, Any]) -> list[str]:
    """Table lines of section ``p3``."""
    lines = [
        f"  {figures['resources']} transfers (imports, exports to GCS and BigQuery) vs as many "
        f"no-op dynamic resources; `pulumi preview`, medians of {figures['runs']} alternating runs",
        f"  {'':24}{'transfers':>10}{'no-op':>9}{'ratio':>8}",
        f"  {'new stacks':24}{figures['transfers_s']:>8.2f} s{figures['noop_s']:>7.2f} s"
        f"{figures['ratio']:>8.3f}  (target <= {figures['target_ratio']})",
    ]
    if "sharded_s" in figures:
        lines += [
            f"  {'new, 4 shards':24}{figures['sharded_s']:>8.2f} s{'':9}"
            f"{figures['sharded_ratio']:>8.3f}  (the fallback: 4 shard provider processes)",
            f"  {'new, no-op sharded':24}{'':10}{figures['noop_sharded_s']:>7.2f} s"
            f"{figures['noop_sharded_ratio']:>8.3f}  (no-op resources over the 4 shard providers)",
        ]
    steady = figures.get("steady")
    if steady:
        lines.append(
            f"  {'unchanged stacks':24}{steady['transfers_s']:>8.2f} s{steady['noop_s']:>7.2f} s"
            f"{steady['ratio']:>8.3f}"
        )
    lines += [
        f"  provider processes: {figures['provider_processes']}, peak RSS up to "
        f"{figures['rss_mb']:.1f} MB each (target <= {figures['target_rss_mb']:g} MB); "
        f"no-op: {figures['noop_provider_processes']} of {figures['noop_rss_mb']:.1f} MB",
        f"  provider CPU per preview {figures['provider_cpu_s']:.2f} s (no-op "
        f"{figures['noop_provider_cpu_s']:.2f} s); last one started "
        f"{figures['last_provider_start_s']:.2f} s into the preview (no-op "
        f"{figures['noop_last_provider_start_s']:.2f} s)",
        f"  requests the previews sent the emulator: {figures['emulator_requests']}",
    ]
    return lines


# --- p4: the emulator at scale ---------------------------------------------------------


def run_p4(options: Options) -> Result:
    """Section ``p4`` (see :mod:`bench_p4`)."""
    import bench_p4

    return bench_p4.measure(options.p4_instances).to_json()


def render_p4(figures: dict[str, Any]) -> list[str]:
    """Table lines of section ``p4``."""
    targets = figures["targets"]
    kinds = ", ".join(f"{k} {v:g}" for k, v in figures["qido_kind_median_ms"].items())
    return [
        f"  {figures['instances']:,} instances ({figures['studies']} studies, "
        f"{figures['corpus_mb']} MB), emulator state on disk; one run",
        f"  import, submit to done            {figures['import_per_s']:>9,.1f} instances/s"
        f"   (upload before it: {figures['upload_s']:.1f} s)",
        f"  bare read+parse+copy to disk      {figures['bare_per_s']:>9,.1f} instances/s"
        f"   (copy to memory: {figures['bare_memory_per_s']:,.1f}/s)",
        f"  ratio import / bare               {figures['import_ratio']:>9.3f}"
        f"    (target >= {targets['import_ratio']})",
        f"  emulator peak RSS (VmHWM)         {figures['rss_mb']:>9.1f} MB"
        f"   (target <= {targets['rss_mb']:g}; {figures['rss_after_import_mb']} MB after the "
        f"import, {figures['rss_before_import_mb']} MB before)",
        f"  QIDO study search, median         {figures['qido_median_ms']:>9.1f} ms"
        f"   (target <= {targets['qido_median_ms']:g}; {figures['qido_searches']} searches, "
        f"max {figures['qido_max_ms']:g} ms; {kinds})",
        f"  export of all to BigQuery         {figures['bq_export_s']:>9.2f} s"
        f"    ({figures['bq_rows']:,} rows)",
    ]


def render_figures(figures: Any) -> list[str]:
    """Generic table lines: one ``key: value`` line per figure."""
    if isinstance(figures, dict):
        return [f"  {key}: {value}" for key, value in figures.items()]
    return [f"  {figures}"]


def run_p2_native(options: Options) -> Result:
    """Section ``p2_native`` (see :mod:`bench_native`)."""
    import bench_native

    runs = bench_native.measure_p2(
        transfers=options.p2_imports, operation_s=options.p2_operation_s, rounds=options.p2_rounds
    )
    return bench_native.p2_json(runs, options.p2_imports, options.p2_operation_s)


def render_p2_native(figures: dict[str, Any]) -> list[str]:
    """Table lines of section ``p2_native``."""
    return [
        f"  every operation {figures['operation_s']:g} s; wall time of `pulumi up --yes` of a new "
        f"stack, medians of {figures['rounds']} alternating round(s)",
        f"  {'1 import (native provider)':<48}{figures['single_s']:>7.2f} s",
        f"  {str(figures['transfers']) + ' imports, 1 provider process':<48}"
        f"{figures['many_s']:>7.2f} s   ratio {figures['ratio']:.3f}  "
        f"(target <= {figures['target_ratio']})",
    ]


def run_p3_native(options: Options) -> Result:
    """Section ``p3_native`` (see :mod:`bench_native`)."""
    import bench_native

    figures = bench_native.measure_p3(resources=options.p3_resources, runs=options.p3_runs)
    return figures.to_json()


def render_p3_native(figures: dict[str, Any]) -> list[str]:
    """Table lines of section ``p3_native``."""
    return [
        f"  {figures['resources']} transfers; `pulumi preview` of a new stack, medians of "
        f"{figures['runs']} alternating runs",
        f"  native provider {figures['native_s']:.2f} s, dynamic resources "
        f"{figures['dynamic_s']:.2f} s: ratio {figures['ratio']:.3f}  "
        f"(target <= {figures['target_ratio']})",
        f"  provider peak RSS {figures['rss_mb']:.1f} MB (target <= {figures['target_rss_mb']:g} "
        f"MB); emulator requests during the previews: {figures['emulator_requests']}",
    ]


SECTIONS: dict[str, Section] = {
    "import": Section(
        "import (issue 3): bulk import through the emulator", run_import, render_import
    ),
    "p1": Section("p1 (issue 4): completion-detection lag, ours vs gcloud", run_p1, render_p1),
    "p1_flat": Section(
        "p1_flat (issue 9): lag without a moving counter (1 file), ours vs gcloud",
        run_p1_flat,
        render_p1_flat,
    ),
    "p2": Section(
        "p2 (issues 4, 8): 64 imports in one `pulumi up` vs one, lowest and newest SDK",
        run_p2,
        render_p2,
    ),
    "p3": Section(
        "p3 (issues 4, 8): `pulumi preview` of 200 transfers vs 200 no-op resources",
        run_p3,
        render_p3,
    ),
    "p2_native": Section(
        "p2_native (issue 15): 64 imports through the native provider vs one",
        run_p2_native,
        render_p2_native,
    ),
    "p3_native": Section(
        "p3_native (issue 15): `pulumi preview` of 200 native vs 200 dynamic transfers",
        run_p3_native,
        render_p3_native,
    ),
    "p4": Section("p4 (issue 10): the emulator at scale, 10,000 instances", run_p4, render_p4),
}


# --- command line ------------------------------------------------------------------------


def _numbers(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected numbers separated by commas: {text!r}"
        ) from None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"expected non-negative numbers: {text!r}")
    return values


def _sections(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [name for name in names if name not in SECTIONS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown section(s) {', '.join(unknown) or '(none)'}; "
            f"expected some of {', '.join(SECTIONS)}"
        )
    return names


def parse_args(argv: Sequence[str] | None = None) -> tuple[argparse.Namespace, Options]:
    """Parses the command line into display flags and :class:`Options`."""
    parser = argparse.ArgumentParser(
        description="Run the dicom-transfer benchmarks (figures, never pass/fail)."
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--only", type=_sections, default=tuple(SECTIONS), help="sections, e.g. import,p1"
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: small sizes")
    parser.add_argument("--repeat", type=int, default=None, help="p1, p1_flat: runs per duration")
    parser.add_argument("--instances", type=int, default=None, help="import: number of files")
    parser.add_argument("--import-rounds", type=int, default=None, help="import: rounds")
    parser.add_argument(
        "--persist", action="store_true", help="import: emulator state on disk (--data-dir)"
    )
    parser.add_argument(
        "--durations", type=_numbers, default=None, help="p1: seconds, e.g. 5,20,60"
    )
    parser.add_argument(
        "--flat-durations", type=_numbers, default=None, help="p1_flat: seconds, e.g. 10,60,200"
    )
    parser.add_argument("--p2-imports", type=int, default=None, help="p2: concurrent imports")
    parser.add_argument(
        "--p2-seconds", type=float, default=None, help="p2: duration of every operation"
    )
    parser.add_argument("--p2-rounds", type=int, default=None, help="p2: alternating rounds")
    parser.add_argument("--p3-resources", type=int, default=None, help="p3: resources per stack")
    parser.add_argument("--p3-runs", type=int, default=None, help="p3: previews of each kind")
    parser.add_argument(
        "--no-contrasts",
        action="store_true",
        help="p2, p3: skip the SDK-pool and shard contrasts (p2: ~5 operation durations)",
    )
    args = parser.parse_args(argv)
    base = (
        Options(
            instances=50,
            import_rounds=1,
            durations=(3.0,),
            flat_durations=(3.0,),
            quick=True,
            p2_imports=4,
            p2_operation_s=2.0,
            p2_rounds=1,
            p3_resources=6,
            p3_runs=1,
            p4_instances=200,
        )
        if args.quick
        else Options()
    )
    options = Options(
        quick=base.quick,
        instances=args.instances if args.instances is not None else base.instances,
        import_rounds=(
            args.import_rounds if args.import_rounds is not None else base.import_rounds
        ),
        persist=args.persist,
        durations=args.durations if args.durations is not None else base.durations,
        repeat=args.repeat if args.repeat is not None else base.repeat,
        p1_instances=base.p1_instances,
        flat_durations=(
            args.flat_durations if args.flat_durations is not None else base.flat_durations
        ),
        p2_imports=args.p2_imports if args.p2_imports is not None else base.p2_imports,
        p2_operation_s=args.p2_seconds if args.p2_seconds is not None else base.p2_operation_s,
        p2_rounds=args.p2_rounds if args.p2_rounds is not None else base.p2_rounds,
        p3_resources=args.p3_resources if args.p3_resources is not None else base.p3_resources,
        p3_runs=args.p3_runs if args.p3_runs is not None else base.p3_runs,
        contrasts=not args.no_contrasts,
        p4_instances=base.p4_instances,
    )
    for name, value in (
        ("--instances", options.instances),
        ("--import-rounds", options.import_rounds),
        ("--repeat", options.repeat),
        ("--p2-imports", options.p2_imports),
        ("--p2-rounds", options.p2_rounds),
        ("--p3-resources", options.p3_resources),
        ("--p3-runs", options.p3_runs),
    ):
        if value < 1:
            parser.error(f"{name} must be at least 1")
    return args, options


def meta(options: Options) -> dict[str, Any]:
    """Where and how the figures were taken."""
    return {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "quick": options.quick,
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the selected sections; prints a table or one JSON object.

    Returns:
        0, or 1 when a section failed (its error is reported in place of its figures).
    """
    args, options = parse_args(argv)
    output: dict[str, Any] = {"meta": meta(options)}
    failed = False
    if not args.json:
        print(_header(output["meta"]), flush=True)
    for name in args.only:
        section = SECTIONS[name]
        started = time.perf_counter()
        try:
            result = section.run(options)
        except Exception as exc:
            failed = True
            detail = "".join(traceback.format_exception_only(exc)).strip()
            traceback.print_exc(file=sys.stderr)
            output[name] = {"measured": False, "error": detail}
            lines = [f"  FAILED: {detail}"]
        else:
            if result is None:
                output[name] = {"measured": False, "note": NOT_MEASURED}
                lines = [f"  {NOT_MEASURED}"]
            else:
                output[name] = result
                lines = section.render(result)
        if not args.json:
            elapsed = time.perf_counter() - started
            print(f"\n{section.title}  [{elapsed:.0f} s]", flush=True)
            print("\n".join(lines), flush=True)
    if args.json:
        print(json.dumps(output, indent=2))
    return 1 if failed else 0


def _header(info: dict[str, Any]) -> str:
    load = ", ".join(str(x) for x in info["load_average"])
    quick = " (quick smoke run)" if info["quick"] else ""
    return (
        f"dicom-transfer benchmarks{quick}: {info['started']}, {info['cpus']} CPU(s), "
        f"load average {load}, Python {info['python']}"
    )


if __name__ == "__main__":
    sys.exit(main())
