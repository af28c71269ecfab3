"""Section "p1" (issue 4): completion-detection lag, our provider vs ``gcloud``.

For each emulated duration D (the emulator's ``operation-seconds`` fault: every operation
takes at least D seconds, its counters advancing evenly over D as it imports the source
files), two imports of the same files run concurrently, each into its own store:

* **ours**: ``DicomImportProvider().create(props)`` in this process (what the Pulumi engine
  calls), with a private journal directory and the emulator declared the way users declare
  one (``HEALTHCARE_EMULATOR_HOST``: anonymous calls);
* **gcloud**: ``gcloud healthcare dicom-stores import gcs`` (waits with its own poller) with a
  private configuration, no credentials and the endpoint override.

Measured per waiter, from the emulator's own records:

* ``lag_s``: from the operation's ``endTime`` (set by the emulator when it finished) to the
  waiter returning -- ``create`` returning for ours, the ``gcloud`` process exiting for gcloud;
* ``detect_s``: from ``endTime`` to the end of the ``operations.get`` that saw it done (the
  poller's share of the lag, without process start-up/exit);
* ``gets``: ``operations.get`` calls of that operation in the emulator's request log;
* ``polls_s`` (JSON only): when each of those GETs arrived, in seconds after ``createTime``;
* ``counter_moved`` (JSON only): whether the operation's processed counter (success +
  failure) took two different values while ``pending`` was above 0, from ``operations.list``
  sampled every second during the run (a list is no ``operations.get``: not counted above).

With ``repeat`` > 1 the figures are medians. Target (issue 4): ``lag_s <= max(1 s, 5 % of
D)`` with no more GETs than gcloud -- reported, never asserted.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bench_common import (
    DATASET,
    LOCATION,
    PROJECT,
    create_dataset,
    create_store,
    datasets,
    fresh_copies,
    http_json,
    upload_objects,
)
from dicom_transfer.healthcare.credentials import HEALTHCARE_EMULATOR_ENV
from dicom_transfer.healthcare.journal import STATE_DIR_ENV
from dicom_transfer.providers import DicomImportProvider
from dicom_transfer_emulator.testing.clients import gcloud_environment, healthcare_client
from dicom_transfer_emulator.testing.launch import EmulatorProcess

BUCKET = "bench-p1-src"
PREFIX = "src"
GCLOUD_TIMEOUT_S = 900.0


@dataclass(frozen=True)
class WaiterRun:
    """One waiter's figures for one operation."""

    operation: str
    lag_s: float
    detect_s: float
    gets: int
    polls_s: tuple[float, ...]
    counter_moved: bool | None = None


@dataclass
class WaiterFigures:
    """One waiter's runs for one duration."""

    runs: list[WaiterRun] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """``{"lag_s", "gets"}`` (medians) plus ``detect_s`` and the per-run lags."""
        return {
            "lag_s": round(statistics.median(r.lag_s for r in self.runs), 3),
            "gets": _median_count([r.gets for r in self.runs]),
            "detect_s": round(statistics.median(r.detect_s for r in self.runs), 3),
            "lags_s": [round(r.lag_s, 3) for r in self.runs],
            "polls_s": [list(r.polls_s) for r in self.runs],
            "counter_moved": _any_moved([r.counter_moved for r in self.runs]),
        }


def _any_moved(values: list[bool | None]) -> bool | None:
    """True if any run's counter moved, None if no run was sampled while running."""
    if any(values):
        return True
    return None if all(v is None for v in values) else False


def _median_count(values: list[int]) -> int | float:
    median = statistics.median(values)
    return int(median) if float(median).is_integer() else median


@dataclass
class DurationFigures:
    """Both waiters' runs for one emulated duration."""

    duration_s: float
    instances: int
    ours: WaiterFigures = field(default_factory=WaiterFigures)
    gcloud: WaiterFigures = field(default_factory=WaiterFigures)

    @property
    def target_lag_s(self) -> float:
        """The issue's bound: max(1 s, 5 % of the duration)."""
        return max(1.0, 0.05 * self.duration_s)

    def to_json(self) -> dict[str, Any]:
        """The documented entry (``duration_s``, ``ours``, ``gcloud``) plus the target."""
        return {
            "duration_s": self.duration_s,
            "ours": self.ours.to_json(),
            "gcloud": self.gcloud.to_json(),
            "target_lag_s": round(self.target_lag_s, 3),
            "instances": self.instances,
            "repeat": len(self.ours.runs),
        }


def _epoch(rfc3339: str) -> float:
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


class _Bench:
    """The emulator, clients and scratch directories shared by all runs of the section."""

    def __init__(self, emulator: EmulatorProcess, scratch: Path, instances: int) -> None:
        self.emulator = emulator
        self.instances = instances
        self.client = healthcare_client(emulator.healthcare_url)
        self.gcloud_env = gcloud_environment(
            emulator.healthcare_url, emulator.storage_url, scratch / "gcloud-config", PROJECT
        )
        self.source = f"gs://{BUCKET}/{PREFIX}/**.dcm"
        self.runs = 0

    def run_pair(self, duration_s: float) -> tuple[WaiterRun, WaiterRun]:
        """Runs one import with each waiter, concurrently, each into a new store."""
        self.runs += 1
        ours_store = create_store(self.client, f"ours-{self.runs}")
        gcloud_store = create_store(self.client, f"gcloud-{self.runs}")
        http_json(
            self.emulator.healthcare_url,
            "POST",
            "/_emulator/faults",
            {"spec": f"operation-seconds={duration_s}"},
        )
        known = self._operation_names()
        watch = _CounterWatch(self.emulator.healthcare_url)
        ours: dict[str, Any] = {}
        worker = threading.Thread(
            target=self._ours, args=(ours_store, f"p1-{self.runs}", ours), daemon=True
        )
        command = [
            "gcloud",
            "healthcare",
            "dicom-stores",
            "import",
            "gcs",
            gcloud_store.rsplit("/", 1)[1],
            f"--dataset={DATASET}",
            f"--location={LOCATION}",
            f"--gcs-uri={self.source}",
        ]
        gcloud = subprocess.Popen(
            command,
            env=self.gcloud_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        worker.start()
        with watch:
            try:
                _, stderr = gcloud.communicate(timeout=GCLOUD_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                gcloud.kill()
                gcloud.communicate()
                raise
            gcloud_returned = time.time()
            worker.join(GCLOUD_TIMEOUT_S)
        if "error" in ours:
            raise RuntimeError(f"our create failed: {ours['error']!r}") from ours["error"]
        if gcloud.returncode != 0:
            raise RuntimeError(f"gcloud import failed ({gcloud.returncode}): {stderr[-2000:]}")
        new = self._operation_names() - known - {ours["operation"]}
        if len(new) != 1:
            raise RuntimeError(f"expected one gcloud operation, found {sorted(new)}")
        gcloud_operation = new.pop()
        return (
            self._figures(str(ours["operation"]), float(ours["returned"]), watch),
            self._figures(gcloud_operation, gcloud_returned, watch),
        )

    def _ours(self, store: str, resource_name: str, out: dict[str, Any]) -> None:
        props = {
            "dicom_store": store,
            "gcs_uri": self.source,
            "resource_name": resource_name,
        }
        try:
            result = DicomImportProvider().create(props)
            out["returned"] = time.time()
            out["operation"] = result.id
        except Exception as exc:
            out["error"] = exc

    def _operation_names(self) -> set[str]:
        name = f"projects/{PROJECT}/locations/{LOCATION}/datasets/{DATASET}"
        names: set[str] = set()
        request = datasets(self.client).operations().list(name=name, pageSize=1000)
        while request is not None:
            page = request.execute()
            names.update(op["name"] for op in page.get("operations", []))
            request = datasets(self.client).operations().list_next(request, page)
        return names

    def _figures(self, operation_name: str, returned: float, watch: _CounterWatch) -> WaiterRun:
        operation = datasets(self.client).operations().get(name=operation_name).execute()
        if not operation.get("done") or "error" in operation:
            raise RuntimeError(f"operation did not succeed: {operation}")
        ended = _epoch(operation["metadata"]["endTime"])
        op_id = operation_name.rsplit("/", 1)[1]
        gets = http_json(
            self.emulator.healthcare_url,
            "GET",
            f"/_emulator/requests?method=GET&path={re.escape('/operations/' + op_id)}%24",
        )["requests"]
        # The last GET is the one that saw "done" (both pollers stop there); the check
        # above is our own and comes after the waiter returned, so it is left out.
        gets = [g for g in gets if g["time"] < returned]
        if not gets:
            raise RuntimeError(f"no operations.get of {operation_name} in the request log")
        detected = max(g["time"] + g["durationMs"] / 1000 for g in gets)
        created = _epoch(operation["metadata"]["createTime"])
        polls = tuple(round(g["time"] - created, 2) for g in gets)
        return WaiterRun(
            operation_name,
            returned - ended,
            detected - ended,
            len(gets),
            polls,
            watch.moved(operation_name),
        )


class _CounterWatch:
    """Samples the dataset's ``operations.list`` every second while a pair of imports runs.

    Its own connection per request (:func:`http_json`): the benchmark's Healthcare client is
    not shared across threads.
    """

    def __init__(self, healthcare_url: str, interval_s: float = 1.0) -> None:
        self._url = healthcare_url
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._seen: dict[str, set[int]] = {}
        self._error: Exception | None = None

    def __enter__(self) -> _CounterWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        if self._error is not None:
            raise RuntimeError(f"sampling operations.list failed: {self._error!r}")

    def moved(self, operation_name: str) -> bool | None:
        """Whether two different processed counts were seen while ``pending`` was above 0;
        None when no sample saw the operation running."""
        seen = self._seen.get(operation_name)
        return None if seen is None else len(seen) > 1

    def _run(self) -> None:
        try:
            self._sample()
        except Exception as exc:
            self._error = exc

    def _sample(self) -> None:
        path = f"/v1/projects/{PROJECT}/locations/{LOCATION}/datasets/{DATASET}/operations"
        while not self._stop.wait(self._interval_s):
            page = http_json(self._url, "GET", f"{path}?pageSize=1000")
            for operation in page.get("operations", []):
                counter = operation.get("metadata", {}).get("counter", {})
                if operation.get("done") or int(counter.get("pending", 0)) <= 0:
                    continue
                processed = int(counter.get("success", 0)) + int(counter.get("failure", 0))
                self._seen.setdefault(operation["name"], set()).add(processed)


def measure(
    durations: list[float], *, repeat: int = 1, instances: int = 20, section: str = "p1"
) -> list[DurationFigures]:
    """Runs the section.

    Args:
        durations: Emulated operation durations in seconds (issue 4: 5, 20, 60).
        repeat: Runs per duration (medians are reported).
        instances: Files per import (their counters advance evenly over the duration; one
            file's counter moves only when it is done, at the end).
        section: Name used in error messages (``p1_flat`` measures with one file).

    Raises:
        RuntimeError: No ``gcloud`` on ``PATH``, or a waiter or an import failed.
    """
    if shutil.which("gcloud") is None:
        raise RuntimeError(f"the gcloud CLI is needed for section {section}")
    copies = fresh_copies(instances)
    figures = [DurationFigures(d, instances) for d in durations]
    with (
        tempfile.TemporaryDirectory(prefix="bench-p1-") as tmp,
        EmulatorProcess() as emulator,
        _environment(
            {
                STATE_DIR_ENV: str(Path(tmp) / "journal"),
                HEALTHCARE_EMULATOR_ENV: emulator.healthcare_url,
            }
        ),
    ):
        upload_objects(emulator.storage_url, BUCKET, PREFIX, copies)
        bench = _Bench(emulator, Path(tmp), instances)
        create_dataset(bench.client)
        # Our provider prints progress lines to stderr (the engine shows them): keep the
        # benchmark's output to its table.
        with contextlib.redirect_stderr(io.StringIO()):
            for _ in range(repeat):
                for entry in figures:
                    ours, gcloud = bench.run_pair(entry.duration_s)
                    entry.ours.runs.append(ours)
                    entry.gcloud.runs.append(gcloud)
    return figures


@contextlib.contextmanager
def _environment(variables: dict[str, str]) -> Iterator[None]:
    """Sets environment variables meanwhile (the provider reads its journal directory and
    the emulator host from the environment, as under ``pulumi up``)."""
    before = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
